//! `safex mcp`: find the MCP client configs on this machine, report what is
//! unsafe in them (`scan`), and rewrite their `npx`/`uvx` entries to pinned,
//! locked `safex` launches (`pin`).
//!
//! Users adopt safex through these files, not by typing commands, so the
//! rewrite has to be one they can trust: a splice into the original bytes
//! (comments, order, indentation, `env`, interpolation tokens untouched),
//! checked by re-reading the result, shown as a diff first, written
//! atomically after a backup, and a no-op the second time. See `docs/mcp.md`.

pub mod baseline;
pub mod clients;
pub mod diff;
pub mod formats;
pub mod gui;
pub mod launch;
pub mod locker;
pub mod model;
pub mod pin;
pub mod rewrite;
pub mod scan;
pub mod secrets;

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::session::Globals;
use crate::settings::{Overrides, Settings};

#[derive(Debug, clap::Subcommand)]
pub enum McpCommand {
    /// Find MCP client configs and report unpinned, unlocked, injected or
    /// secret-bearing server entries.
    Scan(ScanArgs),
    /// Pin `npx`/`uvx` entries to exact versions, lock them, and rewrite them
    /// to `safex npx`/`safex uvx` (a dry run unless `--write`).
    Pin(PinArgs),
    /// Start a server as its launch would, list its tools with their pin
    /// state (pinned, changed, new, removed, unpinned, denied), and with
    /// `--accept` record the definitions it lists now. Exit status 10: a
    /// tool differs from its pin and `--accept` was not given.
    #[command(
        after_help = "Examples:\n  safex mcp tools npx @modelcontextprotocol/server-everything@2026.8.31\n  safex mcp tools --accept uvx mcp-server-time==2025.9.25"
    )]
    Tools(ToolsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ToolsArgs {
    /// Record the definitions the server lists now as its pins.
    #[arg(long)]
    pub accept: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The launch, as after `safex`: `npx <name>@<x.y.z> [args...]`, `uvx ...`.
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "LAUNCH"
    )]
    pub launch: Vec<std::ffi::OsString>,
}

/// Options shared by `scan` and `pin`.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Read this config file instead of discovering configs (repeatable).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Treat DIR as the home directory when discovering configs.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The baseline file (default: `mcp-baseline.json` in safex's data directory).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub common: Common,
    /// Exit with status 3 when a finding at or above this level exists.
    #[arg(long, value_name = "LEVEL", value_enum)]
    pub fail_on: Option<scan::Level>,
}

#[derive(Debug, clap::Args)]
pub struct PinArgs {
    #[command(flatten)]
    pub common: Common,
    /// Apply the rewrite (after a backup next to each file); without it,
    /// print the diff and change nothing.
    #[arg(long)]
    pub write: bool,
    /// Also move each literal secret of an entry's `env` (and a Postgres
    /// URL's password in `args`) into the OS credential store, and write
    /// its `safex-secret:NAME` reference instead (entries safex launches).
    #[arg(long)]
    pub move_secrets: bool,
}

pub fn run(cmd: McpCommand, g: &Globals) -> Result<i32> {
    match cmd {
        McpCommand::Scan(a) => scan::run(&a, g),
        McpCommand::Pin(a) => pin::run(&a, g),
        McpCommand::Tools(a) => tools(a, g),
    }
}

/// `safex mcp tools <launch>`: the launch, run as a review of its tools.
fn tools(a: ToolsArgs, g: &Globals) -> Result<i32> {
    #[cfg(unix)]
    {
        crate::relay::review::request(crate::relay::review::Review {
            accept: a.accept,
            json: a.json,
        });
        let first = a.launch[0].to_str().unwrap_or_default().to_owned();
        crate::launch_as_review(&first, &a.launch[1..], g)
    }
    #[cfg(not(unix))]
    {
        let _ = (a, g);
        Err(Error::usage("`safex mcp tools` runs on Unix only"))
    }
}

/// A config file and what could be read from it.
#[derive(Debug)]
pub struct Loaded {
    pub target: clients::Target,
    pub text: String,
    pub servers: std::result::Result<Vec<model::Server>, clients::Unread>,
}

/// The files to work on: `--config` files, else every config discovered.
pub fn load(c: &Common) -> Result<Vec<Loaded>> {
    let targets = if c.config.is_empty() {
        if let Some(r) = &c.root
            && !r.is_dir()
        {
            return Err(Error::usage(format!(
                "`--root {}` is not a directory",
                r.display()
            )));
        }
        clients::discover(c.root.as_deref())
    } else {
        let mut t = Vec::new();
        for p in &c.config {
            if !p.is_file() {
                return Err(
                    Error::usage(format!("config file `{}` does not exist", p.display()))
                        .with_hint("give the path of an MCP client's config file"),
                );
            }
            t.push(clients::guess(p));
        }
        t
    };
    Ok(targets
        .into_iter()
        .map(|target| {
            let (text, servers) = match std::fs::read(&target.path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => {
                        let servers = clients::read(&target, &text);
                        (text, servers)
                    }
                    Err(_) => (
                        String::new(),
                        Err(clients::Unread::Failed("the file is not UTF-8".to_owned())),
                    ),
                },
                Err(e) => (String::new(), Err(clients::Unread::Failed(e.to_string()))),
            };
            Loaded {
                target,
                text,
                servers,
            }
        })
        .collect())
}

pub fn settings(g: &Globals) -> Result<Settings> {
    Settings::load(&Overrides {
        quiet: g.quiet,
        policy: g.policy.clone(),
        ..Default::default()
    })
}

pub fn baseline_path(c: &Common) -> Result<PathBuf> {
    c.baseline
        .clone()
        .or_else(baseline::default_path)
        .ok_or_else(|| {
            Error::io("cannot tell where the MCP baseline goes: no home directory")
                .with_hint("pass `--baseline FILE`")
        })
}
