//! Command line: clap for safex's own commands; a hand-written parser for the
//! `npx` argument forms, because everything after the package spec belongs to
//! the launched program verbatim, and an option safex does not know must be a
//! clear error rather than a package name.

use clap::{Parser, Subcommand};
use std::ffi::OsString;

use crate::error::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "safex",
    version,
    about = "Launch pinned npm packages safely: exact versions, verified hashes, no install scripts",
    after_help = "Examples:\n  safex npx @modelcontextprotocol/server-memory@2025.11.25\n  safex lock npx cowsay@1.6.0\n  safex cache verify"
)]
pub struct Cli {
    /// Say nothing but errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// A policy file for the command-line layer (also `SAFEX_POLICY`).
    #[arg(long, global = true, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// Pass this environment variable to the program (repeatable); with
    /// `env.mode = "declared"` only declared variables reach it.
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub env: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pinned npm package, as `npx` would (without install scripts).
    #[command(disable_help_flag = true)]
    Npx {
        /// npx options, the package spec, then the program's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Run a pinned PyPI package, as `uvx` would (wheels only, no build backend).
    #[command(disable_help_flag = true)]
    Uvx {
        /// uvx options, the package spec, then the program's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Resolve, fetch, verify and record a package in the lockfile; print its tree.
    Lock {
        #[command(subcommand)]
        tool: LockTool,
    },
    /// Show the effective policy, or check a package against it.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Inspect or maintain the cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Find MCP client configs, report what is unsafe, pin them to safex.
    Mcp {
        #[command(subcommand)]
        action: crate::mcp::McpCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum LockTool {
    /// Lock an npm package: `safex lock npx <name>@<version>`.
    #[command(disable_help_flag = true)]
    Npx {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// Lock a PyPI package: `safex lock uvx <name>==<version>`.
    #[command(disable_help_flag = true)]
    Uvx {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Every key, its value and the layer it came from.
    Show,
    /// The decision for a package and its whole tree, without launching it.
    Check {
        #[command(subcommand)]
        tool: LockTool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Print the cache root.
    Dir,
    /// Remove everything safex cached.
    Clean,
    /// Re-hash every cached archive against its name, and check every
    /// environment against its lock entry.
    Verify {
        /// Also re-read every unpacked file against its archive (npm) or
        /// its wheel's `RECORD` (PyPI).
        #[arg(long)]
        deep: bool,
    },
}

/// Options that apply to every command.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    pub quiet: bool,
    pub policy: Option<std::path::PathBuf>,
    pub env: Vec<String>,
}

/// `safex npx ...` after parsing: the options npx users put in MCP configs.
#[derive(Debug, Default, PartialEq)]
pub struct NpxArgs {
    /// `-p/--package` specs; when present the first positional is a command.
    pub packages: Vec<String>,
    /// The package spec (no `-p`) or the command name (with `-p`).
    pub target: String,
    /// Passed to the program verbatim.
    pub program_args: Vec<OsString>,
    pub registry: Option<String>,
    pub offline: bool,
    /// `--env NAME` given among the npx options.
    pub env: Vec<String>,
}

pub const NPX_USAGE: &str = "usage: safex npx [-y] [--registry URL] [--offline] <name>@<exact-version> [ARGS...]\n       safex npx [-y] -p <name>@<exact-version> [-p ...] <command> [ARGS...]";

/// Parse npx's argument forms. Options come first; the first non-option (or
/// whatever follows `--`) is the spec or command; the rest is the program's.
pub fn parse_npx(args: &[OsString]) -> Result<NpxArgs> {
    let mut out = NpxArgs::default();
    let mut i = 0;
    let value = |i: &mut usize, name: &str| -> Result<String> {
        *i += 1;
        args.get(*i)
            .and_then(|v| v.to_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::usage(format!("`{name}` needs a value")).with_hint(NPX_USAGE))
    };
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            return Err(Error::usage(format!(
                "argument `{}` is not valid UTF-8",
                args[i].to_string_lossy()
            )));
        };
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg, None),
        };
        match flag {
            "-y" | "--yes" => {}
            "--offline" => out.offline = true,
            // safex is always cache-first: a locked, cached tree never touches the network.
            "--prefer-offline" | "--prefer-online" => {}
            "-p" | "--package" => {
                let v = match inline {
                    Some(v) => v,
                    None => value(&mut i, flag)?,
                };
                out.packages.push(v);
            }
            "--registry" => {
                let v = match inline {
                    Some(v) => v,
                    None => value(&mut i, flag)?,
                };
                out.registry = Some(v);
            }
            "--env" => {
                let v = match inline {
                    Some(v) => v,
                    None => value(&mut i, flag)?,
                };
                out.env.push(v);
            }
            "-c" | "--call" => {
                return Err(Error::usage(format!(
                    "`{flag}` runs a shell string, which safex does not do"
                ))
                .with_hint("name the package and its arguments instead: `safex npx <name>@<version> [ARGS...]`"));
            }
            "-h" | "--help" => {
                return Err(Error::usage("help requested").with_hint(NPX_USAGE));
            }
            _ => {
                return Err(Error::usage(format!("unsupported npx option `{flag}`"))
                    .with_hint(format!("safex accepts `-y`, `-p/--package`, `--registry`, `--offline`, `--prefer-offline` before the package\n{NPX_USAGE}")));
            }
        }
        i += 1;
    }
    let Some(target) = args.get(i) else {
        return Err(Error::usage("no package given").with_hint(NPX_USAGE));
    };
    out.target = target
        .to_str()
        .ok_or_else(|| Error::usage("the package spec is not valid UTF-8"))?
        .to_owned();
    out.program_args = args[i + 1..].to_vec();
    Ok(out)
}

/// `safex uvx ...` after parsing.
#[derive(Debug, Default, PartialEq)]
pub struct UvxArgs {
    /// `--from SPEC`: the package; the first positional is then the command.
    pub from: Option<String>,
    /// `--with SPEC`, repeatable: more packages in the environment.
    pub with: Vec<String>,
    pub python: Option<String>,
    /// `--index-url` / `--default-index`.
    pub index_url: Option<String>,
    /// `--index`, repeatable: extra indexes, consulted first.
    pub extra_index: Vec<String>,
    pub offline: bool,
    /// `--env NAME` given among the uvx options.
    pub env: Vec<String>,
    /// The package spec (no `--from`) or the command name (with `--from`).
    pub target: String,
    pub program_args: Vec<OsString>,
}

pub const UVX_USAGE: &str = "usage: safex uvx [--python PY] [--index-url URL] [--offline] <name>==<exact-version> [ARGS...]\n       safex uvx --from <name>==<exact-version> [--with <name>==<version>] <command> [ARGS...]";

/// Parse uvx's argument forms, as MCP configs use them.
pub fn parse_uvx(args: &[OsString]) -> Result<UvxArgs> {
    let mut out = UvxArgs::default();
    let mut i = 0;
    let value = |i: &mut usize, name: &str| -> Result<String> {
        *i += 1;
        args.get(*i)
            .and_then(|v| v.to_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::usage(format!("`{name}` needs a value")).with_hint(UVX_USAGE))
    };
    while i < args.len() {
        let Some(arg) = args[i].to_str() else {
            return Err(Error::usage(format!(
                "argument `{}` is not valid UTF-8",
                args[i].to_string_lossy()
            )));
        };
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg, None),
        };
        let take = |i: &mut usize| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => value(i, flag),
            }
        };
        match flag {
            "--from" => out.from = Some(take(&mut i)?),
            "--with" | "-w" => out.with.push(take(&mut i)?),
            "--python" | "-p" => out.python = Some(take(&mut i)?),
            "--index-url" | "-i" | "--default-index" => out.index_url = Some(take(&mut i)?),
            "--index" | "--extra-index-url" => out.extra_index.push(take(&mut i)?),
            "--offline" => out.offline = true,
            "--env" => out.env.push(take(&mut i)?),
            // No-ops: safex is always isolated and never builds.
            "--isolated" | "--no-build" | "--no-cache" | "-q" | "--quiet" => {}
            "-h" | "--help" => {
                return Err(Error::usage("help requested").with_hint(UVX_USAGE));
            }
            _ => {
                return Err(Error::usage(format!("unsupported uvx option `{flag}`")).with_hint(
                    format!("safex accepts `--from`, `--with`, `--python`, `--index-url`, `--default-index`, `--index`, `--offline`, `--isolated`, `--no-build` before the package\n{UVX_USAGE}"),
                ));
            }
        }
        i += 1;
    }
    let Some(target) = args.get(i) else {
        return Err(Error::usage("no package given").with_hint(UVX_USAGE));
    };
    out.target = target
        .to_str()
        .ok_or_else(|| Error::usage("the package spec is not valid UTF-8"))?
        .to_owned();
    out.program_args = args[i + 1..].to_vec();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// input, `-p` packages, target, program args, registry, offline.
    type Case<'a> = (
        &'a [&'a str],
        &'a [&'a str],
        &'a str,
        &'a [&'a str],
        Option<&'a str>,
        bool,
    );

    #[test]
    fn npx_forms() {
        let cases: &[Case] = &[
            (&["a@1.0.0"], &[], "a@1.0.0", &[], None, false),
            (
                &["-y", "a@1.0.0", "--help", "x"],
                &[],
                "a@1.0.0",
                &["--help", "x"],
                None,
                false,
            ),
            (
                &["--yes", "--", "a@1.0.0", "-y"],
                &[],
                "a@1.0.0",
                &["-y"],
                None,
                false,
            ),
            (
                &["-p", "a@1.0.0", "cmd", "arg"],
                &["a@1.0.0"],
                "cmd",
                &["arg"],
                None,
                false,
            ),
            (
                &["--package=a@1.0.0", "cmd"],
                &["a@1.0.0"],
                "cmd",
                &[],
                None,
                false,
            ),
            (
                &["--registry", "http://r/", "--offline", "a@1.0.0"],
                &[],
                "a@1.0.0",
                &[],
                Some("http://r/"),
                true,
            ),
            (
                &["--registry=http://r/", "a@1.0.0", "--registry", "z"],
                &[],
                "a@1.0.0",
                &["--registry", "z"],
                Some("http://r/"),
                false,
            ),
        ];
        for (input, pkgs, target, rest, reg, offline) in cases {
            let got = parse_npx(&os(input)).unwrap();
            assert_eq!(
                got.packages,
                pkgs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{input:?}"
            );
            assert_eq!(got.target, *target, "{input:?}");
            assert_eq!(got.program_args, os(rest), "{input:?}");
            assert_eq!(got.registry.as_deref(), *reg, "{input:?}");
            assert_eq!(got.offline, *offline, "{input:?}");
        }
    }

    #[test]
    fn npx_refusals() {
        for input in [
            &["--bogus", "a@1.0.0"][..],
            &["-c", "echo hi"],
            &[],
            &["-y"],
            &["-p"],
        ] {
            let err = parse_npx(&os(input)).unwrap_err();
            assert_eq!(err.kind, crate::error::Kind::Usage, "{input:?}");
        }
        let err = parse_npx(&os(&["--bogus", "a@1.0.0"])).unwrap_err();
        assert!(err.message.contains("`--bogus`"), "{}", err.message);
    }

    #[test]
    fn uvx_forms() {
        let a = parse_uvx(&os(&["mcp-server-time==1.0", "--local-timezone", "UTC"])).unwrap();
        assert_eq!(a.target, "mcp-server-time==1.0");
        assert_eq!(a.program_args, os(&["--local-timezone", "UTC"]));
        let a = parse_uvx(&os(&[
            "--from",
            "a==1",
            "--with",
            "b==2",
            "--with=c==3",
            "--python",
            "3.11",
            "--index-url",
            "http://i/",
            "--index",
            "http://x/",
            "--offline",
            "--isolated",
            "--no-build",
            "cmd",
            "--from",
            "z",
        ]))
        .unwrap();
        assert_eq!(a.from.as_deref(), Some("a==1"));
        assert_eq!(a.with, vec!["b==2", "c==3"]);
        assert_eq!(a.python.as_deref(), Some("3.11"));
        assert_eq!(a.index_url.as_deref(), Some("http://i/"));
        assert_eq!(a.extra_index, vec!["http://x/"]);
        assert!(a.offline);
        assert_eq!(a.target, "cmd");
        assert_eq!(a.program_args, os(&["--from", "z"]));
        let a = parse_uvx(&os(&["--default-index=http://d/", "--", "a@1.0"])).unwrap();
        assert_eq!(a.index_url.as_deref(), Some("http://d/"));
        assert_eq!(a.target, "a@1.0");
        for bad in [&["--bogus", "a==1"][..], &[], &["--from"], &["--python"]] {
            assert_eq!(
                parse_uvx(&os(bad)).unwrap_err().kind,
                crate::error::Kind::Usage,
                "{bad:?}"
            );
        }
    }
}
