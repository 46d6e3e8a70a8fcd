//! The launch frame both ecosystems share: the request judged by the policy,
//! the warm path, the refusals of a frozen or offline cold path,
//! trust-on-first-use (record, and rebuild from a racing launch's entry),
//! the commit of the environment, the exec, `safex lock`'s print and
//! `safex policy check`'s decisions. Each ecosystem's [`Pipeline`] supplies
//! only what truly differs: its request, its tree build, its program.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::audit;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::lock::{self, Entry, LockFile};
use crate::policy::LockMode;
use crate::session::Session;
use crate::settings::{Overrides, Settings};

/// A launcher's parsed arguments, as the frame reads them.
pub trait LaunchArgs {
    /// Passed to the program verbatim.
    fn program_args(&self) -> &[OsString];
    /// `--env NAME` given among the launcher's options.
    fn env(&self) -> &[String];
    /// `--allow-read`, `--allow-write`, `--allow-net`, `--no-sandbox`.
    fn sandbox(&self) -> &crate::sandbox::Flags;
    /// The settings this launch overrides (`--registry`, `--offline`, ...).
    fn overrides(&self) -> Result<Overrides>;
}

/// One ecosystem's side of the frame. The cold builds stay honestly
/// different (an npm tree, a venv); the frame around them is one.
pub trait Pipeline {
    type Args: LaunchArgs;
    /// A parsed request: pinned roots, their lock key, what to run.
    type Request;
    type Entry: Entry;
    /// What a finished environment says about itself (its marker file).
    type Marker;
    /// A tree built in staging, not yet committed.
    type Built;
    /// Between a name and its version in messages (`@`, `==`).
    const AT: &'static str;

    /// Parse the roots (an unpinned one is refused with the exact version).
    fn request(s: &Session, a: &Self::Args) -> Result<Self::Request>;
    /// `(name, version)` of each root, to judge before any work.
    fn roots(req: &Self::Request) -> Vec<(String, String)>;
    /// The first root as typed for messages (extras included).
    fn root_shown(req: &Self::Request) -> String;
    /// The lock key: the roots as the lockfile lists them.
    fn key(req: &Self::Request) -> &[String];
    /// The warm path's look: the environment for this digest, complete.
    fn ready(
        s: &Session,
        req: &mut Self::Request,
        digest: &str,
    ) -> Result<Option<(PathBuf, Self::Marker)>>;
    fn read_marker(dir: &Path) -> Result<Self::Marker>;
    /// Refusals the marker decides on every launch (the policy can change).
    fn check_marker(_s: &Session, _m: &Self::Marker) -> Result<()> {
        Ok(())
    }
    /// Cold path: fetch, verify, unpack, inspect into staging; from the
    /// entry when locked, else resolved.
    fn build(
        s: &Session,
        cache: &Cache,
        req: &mut Self::Request,
        entry: Option<Self::Entry>,
    ) -> Result<Self::Built>;
    fn built_entry(b: &Self::Built) -> &Self::Entry;
    /// Move the built environment into the cache under the entry in force.
    fn commit(
        s: &Session,
        cache: &Cache,
        req: &Self::Request,
        b: Self::Built,
        entry: &Self::Entry,
    ) -> Result<PathBuf>;
    /// The interpreter and the script it runs.
    fn program(
        s: &Session,
        req: &Self::Request,
        dir: &Path,
        m: &Self::Marker,
    ) -> Result<(PathBuf, OsString)>;
    /// `safex lock`'s print of an entry, one line per package.
    fn tree_lines(e: &Self::Entry) -> String;
    /// Every package of the tree with the install-time code its registry
    /// declares, for `safex policy check` (the entry, else resolved now).
    fn check_tree(
        s: &Session,
        req: &mut Self::Request,
        entry: Option<&Self::Entry>,
    ) -> Result<Vec<(String, String, Vec<String>)>>;
}

/// Parse the request and judge its roots by the policy (allow, deny,
/// known-compromised) before any network or disk work.
fn checked<P: Pipeline>(s: &Session, a: &P::Args, ctx: &mut audit::Context) -> Result<P::Request> {
    let req = P::request(s, a)?;
    let eco = <P::Entry as Entry>::ECOSYSTEM;
    let roots = P::roots(&req);
    ctx.package = Some(roots[0].0.clone());
    ctx.version = Some(roots[0].1.clone());
    for (name, version) in &roots {
        s.settings.policy.check_root(eco, name)?;
        s.settings.policy.check_package(eco, name, version)?;
    }
    Ok(req)
}

/// The entry in force for these roots, judged whole by the policy: a deny
/// or a known-compromised version made after the lock still applies.
fn locked<E: Entry>(settings: &Settings, key: &[String]) -> Result<Option<E>> {
    let entry = lock::find_in::<E>(settings.system_lockfile.as_deref(), &settings.lockfile, key)?;
    if let Some(e) = &entry {
        for (name, version) in e.tree() {
            settings
                .policy
                .check_package(E::ECOSYSTEM, &name, &version)?;
        }
    }
    Ok(entry)
}

/// Which lockfile holds the entry for these roots (the admin's is read
/// first), for messages about the entry.
pub fn lockfile_holding<'a, E: Entry>(settings: &'a Settings, roots: &[String]) -> &'a Path {
    settings
        .system_lockfile
        .as_deref()
        .filter(|sys| LockFile::read(sys).is_ok_and(|l| l.find::<E>(roots).is_some()))
        .unwrap_or(&settings.lockfile)
}

fn frozen_error(tool: &str, label: &str) -> Error {
    Error::policy(format!("`{label}` is not in the lockfile, and the lock mode is `frozen`")).with_hint(format!(
        "ask your admin to add it, or lock it yourself with `safex lock {tool} {label}` where the lock mode is `tofu`"
    ))
}

fn offline_error() -> Error {
    Error::registry("the tree is not locked, and safex is offline")
}

fn record_tree(ctx: &mut audit::Context, entry: &impl Entry) {
    ctx.tree = Some(entry.digest());
    ctx.packages = Some(entry.tree().len());
    ctx.bundled = entry.bundled();
}

/// The cold path with the cache opened for it (every directory checked),
/// and whatever this launch staged and did not move into place removed,
/// whether it failed or not.
fn cold<P: Pipeline>(
    s: &mut Session,
    req: &mut P::Request,
    entry: Option<P::Entry>,
) -> Result<(PathBuf, P::Entry)> {
    let cache = Cache::open_cold(&s.settings.cache_dir)?;
    let done = build_and_record::<P>(s, &cache, req, entry);
    // The runtime is gone, so nothing of this launch still writes there;
    // on success too: a speculative download cancelled midway is debris.
    s.close_network();
    cache.sweep_own();
    done
}

/// Build, record the entry (trust on first use), commit. When a racing
/// launch recorded these roots first, theirs is the lock in force, and the
/// tree is built again from it.
fn build_and_record<P: Pipeline>(
    s: &Session,
    cache: &Cache,
    req: &mut P::Request,
    mut entry: Option<P::Entry>,
) -> Result<(PathBuf, P::Entry)> {
    let settings = &s.settings;
    let key = P::key(req).to_vec();
    let label = key.join(" ");
    loop {
        if entry.is_none() {
            if settings.lock_mode == LockMode::Frozen {
                return Err(frozen_error(
                    <P::Entry as Entry>::ECOSYSTEM.launcher(),
                    &label,
                ));
            }
            if settings.offline {
                return Err(Error::registry(format!(
                    "`{label}` is not locked or cached, and safex is offline"
                ))
                .with_hint(
                    "launch it once with network access (without `--offline` / `SAFEX_OFFLINE`)",
                ));
            }
            // A read-only lockfile is never replaced: said before any download.
            lock::check_writable(&settings.lockfile, &label)?;
        }
        let built = P::build(s, cache, req, entry.take())?;
        let fresh = P::built_entry(&built).clone();
        let in_force = match lock::find_in::<P::Entry>(
            settings.system_lockfile.as_deref(),
            &settings.lockfile,
            &key,
        )? {
            Some(_) => fresh,
            None => {
                let kept = lock::record(&settings.lockfile, fresh.clone())?;
                if kept != fresh {
                    drop(built);
                    entry = Some(kept);
                    continue;
                }
                kept
            }
        };
        let dir = P::commit(s, cache, req, built, &in_force)?;
        return Ok((dir, in_force));
    }
}

/// `safex npx ...`, `safex uvx ...`: warm (locked, environment complete: no
/// network, no TOML parse of the lockfile, no hashing) or cold, then exec.
pub fn run<P: Pipeline>(mut s: Session, a: P::Args, ctx: &mut audit::Context) -> Result<i32> {
    ctx.set_args(a.program_args());
    ctx.configure(&s.settings);
    let mut req = checked::<P>(&s, &a, ctx)?;
    let key = P::key(&req).to_vec();
    let lockfiles = s.settings.lockfiles();
    let summary = lock::summary::<P::Entry>(&lockfiles, s.cache.root(), &key)?;
    let warm = match summary {
        Some(sum) => P::ready(&s, &mut req, &sum.digest)?.map(|r| (sum, r)),
        None => None,
    };
    let (dir, marker) = match warm {
        Some((sum, ready)) => {
            s.settings
                .policy
                .check_tree(<P::Entry as Entry>::ECOSYSTEM, &sum.packages)?;
            ctx.tree = Some(sum.digest);
            ctx.packages = Some(sum.packages.len());
            ctx.bundled = sum.bundled;
            ready
        }
        None => {
            let entry = locked::<P::Entry>(&s.settings, &key)?;
            let (dir, entry) = cold::<P>(&mut s, &mut req, entry)?;
            record_tree(ctx, &entry);
            // Derive the lock summary now (it is only a cache): the next
            // launch is then warm from its first instruction.
            let lockfiles = s.settings.lockfiles();
            let _ = lock::summary::<P::Entry>(&lockfiles, s.cache.root(), &key);
            let marker = P::read_marker(&dir)?;
            (dir, marker)
        }
    };
    P::check_marker(&s, &marker)?;
    let (interpreter, script) = P::program(&s, &req, &dir, &marker)?;
    let extra: Vec<String> = s.globals.env.iter().chain(a.env()).cloned().collect();
    ctx.env_passed = extra.clone();
    // `.npmrc`'s credential variables are safex's whichever ecosystem runs.
    let env = crate::exec::program_env(
        s.settings.policy.env_mode,
        &s.settings.policy.env_pass,
        &extra,
        &s.settings.npm.secret_vars,
    );
    let flags = s.globals.sandbox.clone().with(a.sandbox());
    let plan = crate::sandbox::plan(
        &s.settings.policy,
        &flags,
        &crate::sandbox::Launch {
            ecosystem: <P::Entry as Entry>::ECOSYSTEM,
            package: ctx.package.as_deref().unwrap_or_default(),
            program: &interpreter,
            tree: &dir,
            args: a.program_args(),
            state_root: &s.settings.state_dir,
        },
    )?;
    plan.announce(s.globals.quiet)?;
    ctx.sandbox = Some(plan.audit());
    let mut env = env;
    env.retain(|(k, _)| !plan.env.iter().any(|(p, _)| p == k));
    env.extend(plan.env.iter().cloned());
    for (k, v) in &plan.defaults {
        if !env.iter().any(|(have, _)| have == k) {
            if !s.globals.quiet {
                eprintln!(
                    "safex: sandbox: `{}` is `{}` (the server's data, in its state directory)",
                    k.to_string_lossy(),
                    v.to_string_lossy()
                );
            }
            env.push((k.clone(), v.clone()));
        }
    }
    // Last, so that nothing refused above has looked a secret up.
    let resolved = crate::secret::resolve::resolve(&mut env, a.program_args())?;
    if !s.globals.quiet {
        for w in &resolved.warnings {
            eprintln!("safex: warning: {w}");
        }
    }
    env.extend(resolved.env_added);
    ctx.secrets = resolved.used;
    let program_args = resolved.args.as_deref().unwrap_or(a.program_args());
    ctx.launch()?;
    let mediation = || crate::relay::Mediation {
        ecosystem: <P::Entry as Entry>::ECOSYSTEM,
        package: ctx.package.clone().unwrap_or_default(),
        version: ctx.version.clone().unwrap_or_default(),
        root: key.join(" "),
        tree: ctx.tree.clone(),
        policy: s.settings.policy.clone(),
        audit: ctx.clone(),
        lockfile: s.settings.lockfile.clone(),
        system_lockfile: s.settings.system_lockfile.clone(),
        sandbox: plan.is_on().then(|| plan.advice.clone()),
        secrets: resolved.redact,
    };
    crate::exec::run_program(&interpreter, &[script], program_args, env, &plan, mediation)
}

/// Lock the tree (building it, so that everything a launch would refuse is
/// refused now) and return the entry in force, printing nothing.
pub fn lock_tree<P: Pipeline>(
    mut s: Session,
    a: &P::Args,
    ctx: &mut audit::Context,
) -> Result<(P::Entry, Settings)> {
    ctx.set_args(a.program_args());
    ctx.configure(&s.settings);
    let mut req = checked::<P>(&s, a, ctx)?;
    let entry = locked::<P::Entry>(&s.settings, P::key(&req))?;
    let (dir, entry) = cold::<P>(&mut s, &mut req, entry)?;
    record_tree(ctx, &entry);
    P::check_marker(&s, &P::read_marker(&dir)?)?;
    ctx.lock()?;
    Ok((entry, s.settings))
}

/// `safex lock npx|uvx <spec>`: the tree on stdout, a summary on stderr.
pub fn lock<P: Pipeline>(s: Session, a: P::Args, ctx: &mut audit::Context) -> Result<i32> {
    let quiet = s.globals.quiet;
    let (entry, settings) = lock_tree::<P>(s, &a, ctx)?;
    let mut out = String::new();
    for r in entry.roots() {
        out.push_str(&format!("{r}\n"));
    }
    out.push_str(&P::tree_lines(&entry));
    print!("{out}");
    if !quiet {
        eprintln!(
            "locked {} packages for `{}` in `{}`",
            entry.listed(),
            entry.roots().join(" "),
            settings.lockfile.display()
        );
    }
    Ok(0)
}

/// `safex policy check npx|uvx <spec>`: the decision for the root and every
/// package of its tree (from the lock, else resolved now), without
/// installing or running anything.
pub fn check<P: Pipeline>(s: Session, a: P::Args, ctx: &mut audit::Context) -> Result<i32> {
    ctx.set_args(a.program_args());
    ctx.configure(&s.settings);
    let mut req = checked::<P>(&s, &a, ctx)?;
    let key = P::key(&req).to_vec();
    let entry = lock::find_in::<P::Entry>(
        s.settings.system_lockfile.as_deref(),
        &s.settings.lockfile,
        &key,
    )?;
    if entry.is_none() && s.settings.lock_mode == LockMode::Frozen {
        return Err(frozen_error(
            <P::Entry as Entry>::ECOSYSTEM.launcher(),
            &key.join(" "),
        ));
    }
    if entry.is_none() && s.settings.offline {
        return Err(offline_error());
    }
    let eco = <P::Entry as Entry>::ECOSYSTEM;
    let packages = P::check_tree(&s, &mut req, entry.as_ref())?;
    let mut refused = None;
    for (name, version, code) in &packages {
        let shown = format!("{name}{}{version}", P::AT);
        let decision = s
            .settings
            .policy
            .check_package(eco, name, version)
            .and_then(|()| s.settings.policy.check_install_code(&shown, code));
        match decision {
            Ok(()) => println!("allow   {shown}"),
            Err(e) => {
                println!("refuse  {shown}: {}", e.message);
                refused.get_or_insert(e);
            }
        }
    }
    match refused {
        Some(e) => Err(e),
        None => {
            if !s.globals.quiet {
                let n = packages.len();
                eprintln!(
                    "`{}`: allowed by the policy ({n} package{})",
                    P::root_shown(&req),
                    if n == 1 { "" } else { "s" }
                );
            }
            Ok(0)
        }
    }
}
