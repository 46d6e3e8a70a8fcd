//! Command line: clap for safex's own commands; every launcher spelling
//! (`npx`, `npm exec`, `bunx`, `uvx`, `uv tool run`, ...) is a subcommand
//! whose arguments clap leaves alone and `crate::spelling` reads, because
//! everything after the package spec belongs to the launched program
//! verbatim, and an option safex does not know must be a clear error rather
//! than a package name.

use std::ffi::OsString;
use std::marker::PhantomData;

use clap::{Arg, ArgMatches, FromArgMatches, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::spelling::parse::{Parsed, ToolArgs};
use crate::spelling::{self, SPELLINGS, To, Verb};

#[derive(Debug, Parser)]
#[command(
    name = "safex",
    version,
    about = "Launch pinned npm and PyPI packages safely: exact versions, verified hashes, no install scripts",
    after_help = top_after_help(),
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Say nothing but errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// A policy file for the command-line layer (also `SAFEX_POLICY`).
    #[arg(long, global = true, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// Launch commands only: pass this environment variable to the program
    /// (repeatable); with `env.mode = "declared"` only declared variables
    /// reach it. Also accepted after the launcher: `safex npx --env NAME ...`.
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
    /// Launches: the program may read PATH (repeatable; also after the launcher).
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<String>,
    /// Launches: the program may read and write PATH (repeatable).
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<String>,
    /// Launches: `--allow-net=HOST[:PORT]` the program may reach; alone: any network.
    #[arg(long = "allow-net", value_name = "HOST", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub allow_net: Vec<String>,
    /// Launches: no sandbox (where the policy allows).
    #[arg(long = "no-sandbox")]
    pub no_sandbox: bool,
    #[command(subcommand)]
    pub command: Command,
}

fn top_after_help() -> String {
    format!(
        "{}\n\nExamples:\n  safex npx @modelcontextprotocol/server-memory@2025.11.25\n  safex uvx mcp-server-time==2025.9.25\n  safex lock npx cowsay@1.6.0\n  safex cache verify\n\nConfig file: `$SAFEX_CONFIG`, else `~/.config/safex/config.toml` (`$XDG_CONFIG_HOME/safex/config.toml`\nwhen set; macOS: `~/Library/Application Support/safex/config.toml`; Windows:\n`%APPDATA%\\safex\\config\\config.toml`).",
        Verb::Run.also_accepted()
    )
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// `npx ...`, `uvx ...` and the other launcher spellings.
    #[command(flatten)]
    Launch(Launch<RunVerb>),
    /// Resolve, fetch, verify and record a package in the lockfile; print its tree.
    #[command(after_help = Verb::Lock.also_accepted(), disable_help_subcommand = true)]
    Lock {
        #[command(subcommand)]
        tool: Launch<LockVerb>,
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
    /// Keep secrets in the OS credential store, for `safex-secret:NAME`
    /// references in MCP client configs.
    Secret {
        #[command(subcommand)]
        action: crate::secret::SecretCommand,
    },
    /// What the sandbox can do on this machine.
    Sandbox {
        #[command(subcommand)]
        action: SandboxAction,
    },
    /// Print the help of a command: `safex help lock npm exec`.
    Help {
        #[arg(num_args = 0.., value_name = "COMMAND")]
        words: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Every key, its value and the layer it came from.
    Show,
    /// The decision for a package and its whole tree, without launching it.
    #[command(after_help = Verb::Check.also_accepted(), disable_help_subcommand = true)]
    Check {
        #[command(subcommand)]
        tool: Launch<CheckVerb>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxAction {
    /// The Landlock ABI, seccomp, namespaces, the tier that applies and
    /// why, and what a launch would not get (exit 3 when the policy's
    /// `sandbox.mode = "enforce"` cannot be met).
    Check,
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

/// What a [`Launch`] subcommand does: run, lock or check.
pub trait VerbOf {
    const VERB: Verb;
}
#[derive(Debug)]
pub struct RunVerb;
#[derive(Debug)]
pub struct LockVerb;
#[derive(Debug)]
pub struct CheckVerb;
impl VerbOf for RunVerb {
    const VERB: Verb = Verb::Run;
}
impl VerbOf for LockVerb {
    const VERB: Verb = Verb::Lock;
}
impl VerbOf for CheckVerb {
    const VERB: Verb = Verb::Check;
}

/// A launcher spelling's first word and its raw arguments (`npm` +
/// `exec -y -- a@1.0.0`). One clap subcommand per first word in
/// [`SPELLINGS`]; `npx` and `uvx` are listed, the others named in the help's
/// footer. Help is not clap's: `Spelling::help` knows the options.
#[derive(Debug)]
pub struct Launch<V> {
    pub first: String,
    pub args: Vec<OsString>,
    verb: PhantomData<V>,
}

impl<V> Launch<V> {
    pub fn new(first: &str, args: Vec<OsString>) -> Launch<V> {
        Launch {
            first: first.to_owned(),
            args,
            verb: PhantomData,
        }
    }
}

impl<V: VerbOf> FromArgMatches for Launch<V> {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let Some((name, sub)) = m.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let args = sub
            .get_many::<OsString>("args")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        Ok(Launch::new(name, args))
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<V: VerbOf> Subcommand for Launch<V> {
    fn augment_subcommands(mut cmd: clap::Command) -> clap::Command {
        let mut firsts: Vec<&str> = Vec::new();
        for sp in SPELLINGS {
            if !firsts.contains(&sp.words[0]) {
                firsts.push(sp.words[0]);
            }
        }
        for first in firsts {
            let canonical = spelling::starting_with(first)
                .iter()
                .any(|s| s.is_canonical());
            cmd = cmd.subcommand(
                clap::Command::new(first)
                    .about(V::VERB.about(first))
                    .hide(!canonical)
                    .disable_help_flag(true)
                    .arg(
                        Arg::new("args")
                            .num_args(0..)
                            .trailing_var_arg(true)
                            .allow_hyphen_values(true)
                            .value_parser(clap::value_parser!(OsString)),
                    ),
            );
        }
        cmd
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }
    fn has_subcommand(name: &str) -> bool {
        SPELLINGS.iter().any(|s| s.words[0] == name)
    }
}

fn value_or_none(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

/// `safex npx ...` (or another npm spelling) after parsing.
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
    /// `--quiet`, `--silent`, `--loglevel silent`: safex's `-q`.
    pub quiet: bool,
    /// `--env NAME` given among the npx options.
    pub env: Vec<String>,
    /// `--allow-read`, `--allow-write`, `--allow-net`, `--no-sandbox`.
    pub sandbox: crate::sandbox::Flags,
}

impl ToolArgs for NpxArgs {
    fn set(&mut self, to: To, value: Option<String>) {
        let v = value.unwrap_or_default();
        match to {
            To::Package => self.packages.push(v),
            To::Registry => self.registry = Some(v),
            To::Offline => self.offline = true,
            To::Quiet => self.quiet = true,
            To::Env => self.env.push(v),
            To::AllowRead | To::AllowWrite | To::AllowNet | To::NoSandbox => {
                self.sandbox.set(to, value_or_none(&v))
            }
            _ => debug_assert!(false, "{to:?} is not an npm option"),
        }
    }
    fn finish(&mut self, target: String, program_args: Vec<OsString>) {
        self.target = target;
        self.program_args = program_args;
    }
    fn packages(&self) -> &[String] {
        &self.packages
    }
}

/// `safex uvx ...` (or `uv tool run`) after parsing.
#[derive(Debug, Default, PartialEq)]
pub struct UvxArgs {
    /// `--from SPEC`: the package; the first positional is then the command.
    pub from: Option<String>,
    /// `--with SPEC`, repeatable: more packages in the environment.
    pub with: Vec<String>,
    pub python: Option<String>,
    /// `--index-url` / `--default-index`.
    pub index_url: Option<String>,
    /// `--index`: taken as the index when it is the only one given.
    pub extra_index: Vec<String>,
    pub offline: bool,
    /// `-q/--quiet`: safex's `-q`.
    pub quiet: bool,
    /// `--env NAME` given among the uvx options.
    pub env: Vec<String>,
    /// `--allow-read`, `--allow-write`, `--allow-net`, `--no-sandbox`.
    pub sandbox: crate::sandbox::Flags,
    /// The package spec (no `--from`) or the command name (with `--from`).
    pub target: String,
    pub program_args: Vec<OsString>,
}

impl ToolArgs for UvxArgs {
    fn set(&mut self, to: To, value: Option<String>) {
        let v = value.unwrap_or_default();
        match to {
            To::From => self.from = Some(v),
            To::With => self.with.push(v),
            To::Python => self.python = Some(v),
            To::IndexUrl => self.index_url = Some(v),
            To::ExtraIndex => self.extra_index.push(v),
            To::Offline => self.offline = true,
            To::Quiet => self.quiet = true,
            To::Env => self.env.push(v),
            To::AllowRead | To::AllowWrite | To::AllowNet | To::NoSandbox => {
                self.sandbox.set(to, value_or_none(&v))
            }
            _ => debug_assert!(false, "{to:?} is not a PyPI option"),
        }
    }
    fn finish(&mut self, target: String, program_args: Vec<OsString>) {
        self.target = target;
        self.program_args = program_args;
    }
    fn packages(&self) -> &[String] {
        &[]
    }
}

/// Parse `npx`'s argument forms (for callers that hold an `npx` argument
/// list, such as `safex mcp pin`); help is not a launch.
pub fn parse_npx(args: &[OsString]) -> Result<NpxArgs> {
    parse_as(&SPELLINGS[0], args)
}

/// Parse `uvx`'s argument forms, as MCP configs use them.
pub fn parse_uvx(args: &[OsString]) -> Result<UvxArgs> {
    parse_as(&SPELLINGS[1], args)
}

/// Parse one spelling's arguments as a launch; help is not a launch.
pub fn parse_as<T: ToolArgs>(sp: &spelling::Spelling, args: &[OsString]) -> Result<T> {
    match sp.parse(Verb::Run, args)? {
        Parsed::Args(a) => Ok(a),
        Parsed::Help => Err(Error::usage(format!(
            "`{} --help` asks for help, not a launch",
            sp.name()
        ))),
    }
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
