//! safex: launch pinned npm and PyPI programs (MCP servers above all)
//! safely: the command line and its dispatch to the launch frame.
//!
//! One launch: `cli`/`spelling` parse → `session` (settings and policy,
//! once) → `launch` (the frame: policy, warm path, cold build through the
//! ecosystem's `npm::pipeline` or `pypi::pipeline`, lock record, exec). See
//! `docs/architecture.md`.

#![deny(unsafe_code)]

pub mod archive;
pub mod audit;
pub mod cache;
pub mod cli;
pub mod config_file;
pub mod ecosystem;
pub mod env_vars;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod filelock;
pub mod http;
pub mod integrity;
pub mod launch;
pub mod locate;
pub mod lock;
pub mod mcp;
pub mod npm;
pub mod policy;
pub mod pypi;
pub mod redact;
#[cfg(unix)]
pub mod relay;
pub mod sandbox;
pub mod secret;
pub mod session;
pub mod settings;
pub mod spelling;
pub mod time;
pub mod verify;

use std::ffi::OsString;

use clap::Parser;

use cache::Cache;
use cli::{CacheAction, Cli, Command, NpxArgs, PolicyAction, UvxArgs};
use ecosystem::Ecosystem;
use error::{Error, Result};
use session::{Globals, Session};
use settings::{Overrides, Settings};
use spelling::parse::Parsed;
use spelling::{To, Verb};

/// Run safex with these arguments; the return value is the exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    // safex as its own exec helper (`relay`): nothing else runs first.
    #[cfg(unix)]
    if args.get(1).is_some_and(|a| a == relay::EXEC_HELPER) {
        return relay::exec_helper(&args[2..]);
    }
    let result = match launch_words(&args) {
        Some((g, at)) => {
            let first = args[at].to_str().unwrap_or_default();
            spelled(first, &args[at + 1..], Verb::Run, &g)
        }
        None => match Cli::try_parse_from(args) {
            Ok(c) => run(c),
            Err(e) => return clap_exit(e),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

/// The launch form MCP clients run (`safex [-q] [--policy FILE] [--env
/// NAME]... <spelling> ...`), read without building clap's command tree of
/// every subcommand and spelling: that is on the warm path (a third of a
/// million instructions). Its globals and the index of the spelling's first
/// word; `None` for anything else, and for a launch whose later words clap
/// would read as its own global flags, so that both readings agree.
fn launch_words(args: &[OsString]) -> Option<(Globals, usize)> {
    let mut g = Globals::default();
    let mut i = 1;
    loop {
        let a = args.get(i)?.to_str()?;
        match a {
            "-q" | "--quiet" => g.quiet = true,
            "--policy" => {
                i += 1;
                g.policy = Some(std::path::PathBuf::from(args.get(i)?));
            }
            "--env" => {
                i += 1;
                g.env.push(args.get(i)?.to_str()?.to_owned());
            }
            "--allow-read" | "--allow-write" => {
                i += 1;
                let v = args.get(i)?.to_str()?.to_owned();
                let to = if a == "--allow-read" {
                    To::AllowRead
                } else {
                    To::AllowWrite
                };
                g.sandbox.set(to, Some(v));
            }
            "--allow-net" => g.sandbox.set(To::AllowNet, None),
            "--no-sandbox" => g.sandbox.set(To::NoSandbox, None),
            _ => {
                if let Some(p) = a.strip_prefix("--policy=") {
                    g.policy = Some(p.into());
                } else if let Some(e) = a.strip_prefix("--env=") {
                    g.env.push(e.to_owned());
                } else if let Some(v) = a.strip_prefix("--allow-read=") {
                    g.sandbox.set(To::AllowRead, Some(v.to_owned()));
                } else if let Some(v) = a.strip_prefix("--allow-write=") {
                    g.sandbox.set(To::AllowWrite, Some(v.to_owned()));
                } else if let Some(v) = a.strip_prefix("--allow-net=") {
                    g.sandbox
                        .set(To::AllowNet, (!v.is_empty()).then(|| v.to_owned()));
                } else {
                    break;
                }
            }
        }
        i += 1;
    }
    let first = args[i].to_str()?;
    if spelling::starting_with(first).is_empty() {
        return None;
    }
    let clap_global = |a: &OsString| {
        a.to_str().is_none_or(|a| {
            matches!(a, "-q" | "--quiet" | "--policy") || a.starts_with("--policy=")
        })
    };
    if args[i + 1..].iter().any(clap_global) {
        return None;
    }
    Some((g, i))
}

/// The settings of a command that is not a launch: the globals' only.
fn plain_settings(g: &Globals) -> Result<Settings> {
    Settings::load(&Overrides {
        quiet: g.quiet,
        policy: g.policy.clone(),
        ..Default::default()
    })
}

fn run(cli: Cli) -> Result<i32> {
    let mut sandbox = sandbox::Flags {
        read: cli.allow_read.clone(),
        write: cli.allow_write.clone(),
        off: cli.no_sandbox,
        ..Default::default()
    };
    for v in &cli.allow_net {
        sandbox.set(To::AllowNet, (!v.is_empty()).then(|| v.clone()));
    }
    let g = Globals {
        quiet: cli.quiet,
        policy: cli.policy.clone(),
        env: cli.env.clone(),
        sandbox,
    };
    if !g.env.is_empty() && !matches!(cli.command, Command::Launch(_)) {
        return Err(Error::usage(
            "`--env` passes a variable to a launched program, and this command launches none",
        )
        .with_hint("put it on a launch: `safex npx --env NAME <name>@<x.y.z>`"));
    }
    match cli.command {
        Command::Launch(l) => spelled(&l.first, &l.args, Verb::Run, &g),
        Command::Lock { tool } => spelled(&tool.first, &tool.args, Verb::Lock, &g),
        Command::Policy {
            action: PolicyAction::Check { tool },
        } => spelled(&tool.first, &tool.args, Verb::Check, &g),
        Command::Policy {
            action: PolicyAction::Show,
        } => {
            print!("{}", plain_settings(&g)?.policy.show());
            Ok(0)
        }
        Command::Mcp { action } => mcp::run(action, &g),
        Command::Secret { action } => secret::run(action, g.quiet),
        Command::Help { words } => help_of(&words),
        Command::Sandbox {
            action: cli::SandboxAction::Check,
        } => Ok(sandbox::check(&plain_settings(&g)?.policy)),
        Command::Cache { action } => {
            let settings = plain_settings(&g)?;
            let cache = Cache::new(&settings.cache_dir);
            match action {
                CacheAction::Dir => {
                    println!("{}", settings.cache_dir.display());
                    Ok(0)
                }
                CacheAction::Clean => {
                    // Its lock file lives in the root: never leave a root
                    // the next launch would refuse (umask 002).
                    cache::create_private_dirs(&settings.cache_dir)?;
                    let _guard = filelock::FileLock::acquire(
                        &settings.cache_dir.join("v1.clean.lock"),
                        "the cache",
                    )?;
                    cache.clean()?;
                    if !g.quiet {
                        eprintln!("removed `{}`", cache.root().display());
                    }
                    Ok(0)
                }
                CacheAction::Verify { deep } => verify::run(&settings, &cache, deep),
            }
        }
    }
}

/// A launcher spelling (`npx`, `npm exec`, `uv tool run`, ...) to run, lock
/// or check: the spelling's table parses it, then the npm or PyPI pipeline.
fn spelled(first: &str, args: &[OsString], verb: Verb, g: &Globals) -> Result<i32> {
    let Some((sp, rest)) = spelling::find(first, args, str::to_owned) else {
        return not_a_spelling(first, args, verb);
    };
    let fits_verb = |program_args: bool, env: &[String]| -> Result<()> {
        let shown = format!("safex {}{}", verb.prefix(), sp.name());
        if verb != Verb::Run && !env.is_empty() {
            return Err(Error::usage(format!(
                "`--env` passes a variable to a launched program; `{shown}` launches nothing"
            )));
        }
        if verb != Verb::Run && program_args {
            return Err(Error::usage(format!(
                "`{shown}` takes one package spec and no program arguments"
            ))
            .with_hint(format!("see `{shown} --help`")));
        }
        Ok(())
    };
    match sp.ecosystem {
        Ecosystem::Npm => {
            let a = match sp.parse::<NpxArgs>(verb, rest)? {
                Parsed::Help => return help(sp, verb),
                Parsed::Args(a) => a,
            };
            fits_verb(!a.program_args.is_empty(), &a.env)?;
            verb_of::<npm::pipeline::Npm>(a, verb, g)
        }
        Ecosystem::Pypi => {
            let a = match sp.parse::<UvxArgs>(verb, rest)? {
                Parsed::Help => return help(sp, verb),
                Parsed::Args(a) => a,
            };
            fits_verb(!a.program_args.is_empty() && a.from.is_none(), &a.env)?;
            verb_of::<pypi::pipeline::Pypi>(a, verb, g)
        }
    }
}

/// `safex mcp tools <spelling> ...`: the launch itself (lock, policy,
/// environment), which `exec` turns into a review of the server's tools.
pub(crate) fn launch_as_review(first: &str, args: &[OsString], g: &Globals) -> Result<i32> {
    if spelling::starting_with(first).is_empty() {
        return Err(Error::usage(format!(
            "`{first}` is not a launcher safex knows; `safex mcp tools` takes a launch"
        ))
        .with_hint("for example `safex mcp tools npx <name>@<x.y.z>`"));
    }
    spelled(first, args, Verb::Run, g)
}

/// `safex lock <spelling> ...` run in this process for `safex mcp pin`:
/// nothing printed; for a dry run, the lockfile and the audit log are the
/// scratch directory's.
pub(crate) fn lock_quietly(
    words: &[String],
    g: &Globals,
    scratch: Option<&std::path::Path>,
) -> Result<()> {
    let first = words.first().map(String::as_str).unwrap_or_default();
    let Some((sp, rest)) = spelling::find(first, &words[1..], str::to_owned) else {
        return not_a_spelling(first, &[], Verb::Lock).map(|_| ());
    };
    let rest: Vec<OsString> = rest.iter().map(OsString::from).collect();
    match sp.ecosystem {
        Ecosystem::Npm => match sp.parse::<NpxArgs>(Verb::Lock, &rest)? {
            Parsed::Help => Ok(()),
            Parsed::Args(a) => lock_into::<npm::pipeline::Npm>(a, g, scratch),
        },
        Ecosystem::Pypi => match sp.parse::<UvxArgs>(Verb::Lock, &rest)? {
            Parsed::Help => Ok(()),
            Parsed::Args(a) => lock_into::<pypi::pipeline::Pypi>(a, g, scratch),
        },
    }
}

fn lock_into<P: launch::Pipeline>(
    a: P::Args,
    g: &Globals,
    scratch: Option<&std::path::Path>,
) -> Result<()> {
    use launch::LaunchArgs;
    let eco = <P::Entry as lock::Entry>::ECOSYSTEM;
    let mut ctx = audit::Context::new(eco);
    if let Some(dir) = scratch {
        ctx.redirect(dir.join("audit.log"));
    }
    let locked = Session::load(g, a.overrides()?).and_then(|mut s| {
        if let Some(dir) = scratch {
            s.settings.lockfile = dir.join("safex.lock");
        }
        launch::lock_tree::<P>(s, &a, &mut ctx)
    });
    if let Err(e) = &locked {
        ctx.refuse(e);
    }
    locked.map(|_| ())
}

/// One verb of the launch frame, with its session, audited.
fn verb_of<P: launch::Pipeline>(a: P::Args, verb: Verb, g: &Globals) -> Result<i32> {
    use launch::LaunchArgs;
    let eco = <P::Entry as lock::Entry>::ECOSYSTEM;
    audited(eco, |ctx| {
        let s = Session::load(g, a.overrides()?)?;
        match verb {
            Verb::Run => launch::run::<P>(s, a, ctx),
            Verb::Lock => launch::lock::<P>(s, a, ctx),
            Verb::Check => launch::check::<P>(s, a, ctx),
        }
    })
}

fn help(sp: &spelling::Spelling, verb: Verb) -> Result<i32> {
    print!("{}", sp.help(verb));
    Ok(0)
}

/// `safex help WORDS...`: a launcher spelling's help is safex's own (it
/// knows the options); every other command's is clap's.
fn help_of(words: &[String]) -> Result<i32> {
    let (verb, rest) = match words {
        [w, rest @ ..] if w == "lock" => (Verb::Lock, rest),
        [p, c, rest @ ..] if p == "policy" && c == "check" => (Verb::Check, rest),
        rest => (Verb::Run, rest),
    };
    if let Some(first) = rest
        .first()
        .filter(|f| !spelling::starting_with(f).is_empty())
    {
        return match spelling::find(first, &rest[1..], str::to_owned) {
            Some((sp, [])) => help(sp, verb),
            _ => not_a_spelling(first, &[OsString::from("--help")], verb),
        };
    }
    let argv = std::iter::once("safex")
        .chain(words.iter().map(String::as_str))
        .chain(["--help"]);
    Ok(Cli::try_parse_from(argv).map_or_else(clap_exit, |_| 0))
}

/// Print clap's help or usage error; help is exit 0, an error is usage.
fn clap_exit(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() {
        error::Kind::Usage.exit_code()
    } else {
        0
    }
}

/// `safex npm install ...`: `npm` is a first word, but not of a launch.
fn not_a_spelling(first: &str, args: &[OsString], verb: Verb) -> Result<i32> {
    let names: Vec<String> = spelling::starting_with(first)
        .iter()
        .map(|s| format!("`safex {}{}`", verb.prefix(), s.name()))
        .collect();
    let text = format!(
        "`safex {}{first}` accepts {}",
        verb.prefix(),
        names.join(", ")
    );
    if args.first().is_some_and(|a| a == "-h" || a == "--help") {
        println!("{text}; each has its own `--help`.");
        return Ok(0);
    }
    let typed = match args.first() {
        Some(a) => format!("`safex {}{first} {}`", verb.prefix(), a.to_string_lossy()),
        None => format!("`safex {}{first}`", verb.prefix()),
    };
    Err(Error::usage(format!("{typed} is not a launcher safex knows")).with_hint(text))
}

/// Run a launch, lock or check, and log a refusal to the audit log.
fn audited(
    ecosystem: Ecosystem,
    f: impl FnOnce(&mut audit::Context) -> Result<i32>,
) -> Result<i32> {
    let mut ctx = audit::Context::new(ecosystem);
    let result = f(&mut ctx);
    if let Err(e) = &result {
        ctx.refuse(e);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// The launch form read without clap gives what clap gives: the same
    /// globals, the same spelling and the same tool arguments; every other
    /// form is left to clap.
    #[test]
    fn launch_words_agree_with_clap() {
        for argv in [
            &["safex", "npx", "-y", "a@1.0.0", "x"][..],
            &[
                "safex", "-q", "--policy", "p.toml", "--env", "A", "npx", "a@1.0.0",
            ],
            &[
                "safex",
                "--policy=p.toml",
                "--env=A",
                "--quiet",
                "uvx",
                "a==1",
            ],
            &["safex", "uv", "tool", "run", "a==1", "--env", "B"],
            &[
                "safex",
                "--allow-write",
                "/w",
                "--allow-write=/v",
                "--no-sandbox",
                "--allow-net",
                "npx",
                "a@1.0.0",
            ],
            &["safex", "npm", "exec", "--", "a@1.0.0"],
            &["safex", "bunx", "a@1.0.0", "--help"],
        ] {
            let argv = os(argv);
            let (g, at) = launch_words(&argv).unwrap_or_else(|| panic!("{argv:?}"));
            let cli = Cli::try_parse_from(argv.clone()).unwrap();
            assert_eq!(g.quiet, cli.quiet, "{argv:?}");
            assert_eq!(g.policy, cli.policy, "{argv:?}");
            assert_eq!(g.env, cli.env, "{argv:?}");
            assert_eq!(g.sandbox.write, cli.allow_write, "{argv:?}");
            assert_eq!(g.sandbox.off, cli.no_sandbox, "{argv:?}");
            let Command::Launch(l) = cli.command else {
                panic!("clap reads {argv:?} as another command");
            };
            assert_eq!(argv[at], OsString::from(&l.first), "{argv:?}");
            assert_eq!(argv[at + 1..], l.args[..], "{argv:?}");
        }
        for argv in [
            &["safex"][..],
            &["safex", "-q"],
            &["safex", "cache", "dir"],
            &["safex", "lock", "npx", "a@1.0.0"],
            &["safex", "--version"],
            &["safex", "npx", "a@1.0.0", "-q"],
            &["safex", "npx", "--policy=p.toml", "a@1.0.0"],
            &["safex", "--bogus", "npx", "a@1.0.0"],
        ] {
            assert!(launch_words(&os(argv)).is_none(), "{argv:?}");
        }
    }
}
