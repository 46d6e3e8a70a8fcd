//! safex: launch pinned npm packages safely.
//!
//! The pipeline, top to bottom: cli → settings → spec → lock (warm path:
//! marker check, exec) → resolve → fetch + verify → unpack → inspect → cache
//! → environment → exec. See `docs/architecture.md`.

#![forbid(unsafe_code)]

pub mod archive;
pub mod audit;
pub mod cache;
pub mod cli;
pub mod env_vars;
pub mod environment;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod inspect;
pub mod integrity;
pub mod locate;
pub mod lock;
pub mod lock_check;
pub mod mcp;
pub mod npx;
pub mod policy;
pub mod pypi;
pub mod redact;
pub mod registry;
pub mod resolve;
pub mod settings;
pub mod spec;
pub mod time;
pub mod uvx;
pub mod verify;

use std::ffi::OsString;

use clap::Parser;

use cache::Cache;
use cli::{CacheAction, Cli, Command, Globals, LockTool, PolicyAction};
use error::{Error, Result};
use settings::{Overrides, Settings};

/// Run safex with these arguments; the return value is the exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                error::Kind::Usage.exit_code()
            } else {
                0
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let g = Globals {
        quiet: cli.quiet,
        policy: cli.policy.clone(),
        env: cli.env.clone(),
    };
    match cli.command {
        Command::Npx { args } => audited("npm", |ctx| npx::run(cli::parse_npx(&args)?, &g, ctx)),
        Command::Uvx { args } => audited("pypi", |ctx| uvx::run(cli::parse_uvx(&args)?, &g, ctx)),
        Command::Lock { tool } => lock_or_check(tool, &g, false),
        Command::Policy {
            action: PolicyAction::Check { tool },
        } => lock_or_check(tool, &g, true),
        Command::Policy {
            action: PolicyAction::Show,
        } => {
            let settings = Settings::load(&Overrides {
                quiet: g.quiet,
                policy: g.policy.clone(),
                ..Default::default()
            })?;
            print!("{}", policy::show(&settings.policy));
            Ok(0)
        }
        Command::Mcp { action } => mcp::run(action, &g),
        Command::Cache { action } => {
            let settings = Settings::load(&Overrides {
                quiet: g.quiet,
                policy: g.policy.clone(),
                ..Default::default()
            })?;
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
                    let _guard = lock::FileLock::acquire(
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

/// `safex lock ...` and `safex policy check ...`: one spec, no program arguments.
fn lock_or_check(tool: LockTool, g: &Globals, check: bool) -> Result<i32> {
    let verb = if check { "policy check" } else { "lock" };
    match tool {
        LockTool::Npx { args } => audited("npm", |ctx| {
            let a = cli::parse_npx(&args)?;
            if !a.program_args.is_empty() {
                return Err(Error::usage(format!(
                    "`safex {verb} npx` takes one package spec and no program arguments"
                ))
                .with_hint(format!("usage: safex {verb} npx <name>@<exact-version>")));
            }
            if check {
                npx::check(a, g, ctx)
            } else {
                npx::lock(a, g, ctx)
            }
        }),
        LockTool::Uvx { args } => audited("pypi", |ctx| {
            let a = cli::parse_uvx(&args)?;
            if !a.program_args.is_empty() && a.from.is_none() {
                return Err(Error::usage(format!(
                    "`safex {verb} uvx` takes one package spec and no program arguments"
                ))
                .with_hint(format!("usage: safex {verb} uvx <name>==<exact-version>")));
            }
            if check {
                uvx::check(a, g, ctx)
            } else {
                uvx::lock(a, g, ctx)
            }
        }),
    }
}

/// Run a launch, lock or check, and log a refusal to the audit log.
fn audited(
    ecosystem: &'static str,
    f: impl FnOnce(&mut audit::Context) -> Result<i32>,
) -> Result<i32> {
    let mut ctx = audit::Context::new(ecosystem);
    let result = f(&mut ctx);
    if let Err(e) = &result {
        ctx.refuse(e);
    }
    result
}

/// The async runtime, started only on cold paths (the warm path needs none).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}
