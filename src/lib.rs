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

use std::ffi::OsString;

use clap::Parser;

use cache::Cache;
use cli::{CacheAction, Cli, Command, Globals, LockTool, PolicyAction};
use error::{Error, Result};
use lock::LockFile;
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
                CacheAction::Verify => verify_cache(&settings, &cache),
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

/// Re-hash every cached archive that a lockfile names.
fn verify_cache(settings: &Settings, cache: &Cache) -> Result<i32> {
    let mut locks = vec![settings.lockfile.clone()];
    locks.extend(settings.system_lockfile.clone());
    // (what, expected hash) for every archive any lock names. Wheels of
    // other platforms are listed in the lock but never cached here.
    let mut wanted: Vec<(String, std::result::Result<integrity::Integrity, ()>)> = Vec::new();
    for lf in locks {
        let lock = LockFile::read(&lf)?;
        for p in lock.npm.iter().flat_map(|e| &e.packages) {
            let what = format!("`{}@{}`", p.name, p.version);
            wanted.push((
                what,
                integrity::Integrity::parse_sri(&p.integrity).map_err(|_| ()),
            ));
        }
        for p in lock.pypi.iter().flat_map(|e| &e.packages) {
            for w in &p.wheels {
                let what = format!("`{}` of `{}=={}`", w.file, p.name, p.version);
                wanted.push((
                    what,
                    integrity::Integrity::from_sha256_hex(&w.sha256).map_err(|_| ()),
                ));
            }
        }
    }
    let (mut ok, mut missing, mut bad) = (0usize, 0usize, Vec::new());
    for (what, expected) in wanted {
        let Ok(expected) = expected else {
            bad.push(format!("{what}: the lock's hash is not valid"));
            continue;
        };
        let Some(blob) = cache.blob_path(&expected) else {
            continue;
        };
        if !blob.is_file() {
            missing += 1;
            continue;
        }
        if expected.matches(&integrity::hash_file(&blob)?) {
            ok += 1;
        } else {
            bad.push(format!("{what} at `{}`", blob.display()));
        }
    }
    println!(
        "{ok} archives verified, {missing} locked but not cached, {} corrupt",
        bad.len()
    );
    if bad.is_empty() {
        return Ok(0);
    }
    Err(Error::integrity(format!(
        "cached archives do not match the lockfile: {}",
        bad.join(", ")
    ))
    .with_hint("run `safex cache clean`; the next launch downloads and verifies them again"))
}
