//! The PyPI side of the launch frame: specs parsed with the exact-version
//! hint, the interpreter found (and another that fits `Requires-Python`),
//! the tree built (probe → resolve with PubGrub or read the lock → fetch +
//! verify wheels → a venv in staging: safe unpack, RECORD, `.pth`, console
//! scripts), and the console script to run.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::archive::Limits;
use crate::cache::{self, Cache, EnvState, StagingGuard};
use crate::cli::UvxArgs;
use crate::ecosystem::Ecosystem;
use crate::error::{Error, Need, Result};
use crate::fetch::{BlobRequest, Expected, Fetcher};
use crate::integrity;
use crate::launch::{LaunchArgs, Pipeline};
use crate::lock::{self, Entry, LockedWheel, PypiEntry, PypiPackage};
use crate::pypi::config::PypiConfig;
use crate::pypi::index::SimpleIndex;
use crate::pypi::interpreter::{self, Info, Request as Python};
use crate::pypi::resolve::{Provider, index_origin_for};
use crate::pypi::spec::{self as pyspec, Floating, PySpec};
use crate::pypi::tags::{WheelName, normalize};
use crate::pypi::venv;
use crate::pypi::{startup_hooks, wheel};
use crate::redact::shown;
use crate::session::Session;
use crate::settings::{Overrides, Settings};

/// What a finished venv holds, written last before the rename.
#[derive(Debug, Serialize, Deserialize)]
pub struct VenvMarker {
    pub digest: String,
    pub python: PathBuf,
    pub python_version: String,
    /// Root name → its console scripts.
    pub scripts: BTreeMap<String, Vec<String>>,
}

/// What one `safex uvx` asks for: the pinned specs (root first, then
/// `--with`), their lock key, the console script to run, and the Python
/// found for it (found without running it).
pub struct Request {
    specs: Vec<PySpec>,
    key: Vec<String>,
    command: Option<String>,
    python: PathBuf,
    /// What was asked for (`--python`, `SAFEX_PYTHON`, config).
    python_req: Python,
    /// `python` described, once it has been run (cold path only).
    probed: Option<Info>,
}

impl Request {
    /// A Python asked for by path, name or `X.Y` is never replaced by
    /// another that fits `Requires-Python` better; the default and `3` may be.
    fn python_explicit(&self) -> bool {
        !matches!(self.python_req, Python::Default | Python::Version(_, None))
    }
}

/// The PyPI side of the launch frame.
pub struct Pypi;

impl LaunchArgs for UvxArgs {
    fn program_args(&self) -> &[OsString] {
        &self.program_args
    }
    fn sandbox(&self) -> &crate::sandbox::Flags {
        &self.sandbox
    }
    fn env(&self) -> &[String] {
        &self.env
    }
    fn overrides(&self) -> Result<Overrides> {
        let a = self;
        // One index only: searching several for the same name is how dependency
        // confusion happens, so `--index` is taken only as the sole index.
        let index_url = match (&a.index_url, a.extra_index.as_slice()) {
            (u, []) => u.clone(),
            (None, [one]) => Some(one.clone()),
            _ => {
                return Err(Error::usage("safex resolves from one index, and several were given")
                    .with_hint("pass a single `--index-url` (or `--index`); mirror other packages into that index"));
            }
        };
        Ok(Overrides {
            index_url,
            offline: a.offline,
            quiet: a.quiet,
            ..Default::default()
        })
    }
}

impl Pipeline for Pypi {
    type Args = UvxArgs;
    type Request = Request;
    type Entry = PypiEntry;
    type Marker = VenvMarker;
    type Built = Built;
    const AT: &'static str = "==";

    fn request(s: &Session, a: &UvxArgs) -> Result<Request> {
        request(s, a)
    }

    fn roots(req: &Request) -> Vec<(String, String)> {
        req.specs
            .iter()
            .map(|s| (s.name.to_string(), s.version.to_string()))
            .collect()
    }

    fn root_shown(req: &Request) -> String {
        req.specs[0].to_string()
    }

    fn key(req: &Request) -> &[String] {
        &req.key
    }

    /// The venv for this interpreter, complete, or for the one chosen
    /// earlier because the default did not fit. One `lstat` of the venv
    /// (ours, private, else refused) and its marker, read anyway; a missing
    /// or damaged one goes cold and is rebuilt. A venv on another version
    /// than `--python X.Y` asks for is not one (the name found on `PATH` is
    /// only a guess): its marker says.
    fn ready(
        s: &Session,
        req: &mut Request,
        digest: &str,
    ) -> Result<Option<(PathBuf, VenvMarker)>> {
        let ready = |python: &Path| -> Result<Option<(PathBuf, VenvMarker)>> {
            let dir = env_dir_for(&s.cache, digest, python);
            Ok(match Cache::env_state(&dir)? {
                EnvState::Dir => read_marker(&dir)
                    .ok()
                    .filter(|m| {
                        m.digest == digest && req.python_req.admits_version(&m.python_version)
                    })
                    .map(|m| (dir, m)),
                EnvState::Missing | EnvState::NotDir => None,
            })
        };
        if let Some(r) = ready(&req.python)? {
            return Ok(Some(r));
        }
        if let Some(p) = remembered_python(&s.cache, req)
            && let Some(r) = ready(&p)?
        {
            req.python = p;
            return Ok(Some(r));
        }
        Ok(None)
    }

    fn read_marker(dir: &Path) -> Result<VenvMarker> {
        read_marker(dir)
    }

    fn build(
        s: &Session,
        cache: &Cache,
        req: &mut Request,
        entry: Option<PypiEntry>,
    ) -> Result<Built> {
        build_fitting(s, cache, req, entry)
    }

    fn built_entry(b: &Built) -> &PypiEntry {
        &b.entry
    }

    fn commit(
        s: &Session,
        cache: &Cache,
        _req: &Request,
        b: Built,
        entry: &PypiEntry,
    ) -> Result<PathBuf> {
        commit(s, cache, b, entry)
    }

    fn program(
        _s: &Session,
        req: &Request,
        dir: &Path,
        m: &VenvMarker,
    ) -> Result<(PathBuf, OsString)> {
        let script = pick_script(m, req)?;
        let bin = dir.join(venv::bin_dir());
        Ok((
            bin.join(venv::python_name()),
            bin.join(script).into_os_string(),
        ))
    }

    fn tree_lines(entry: &PypiEntry) -> String {
        let mut out = String::new();
        for p in &entry.packages {
            out.push_str(&format!(
                "  {}=={}  ({} wheels)\n",
                p.name,
                p.version,
                p.wheels.len()
            ));
        }
        out
    }

    /// From the lock, else resolved now: wheels are fetched for their
    /// metadata, but nothing is installed or run. Wheels declare no
    /// install-time code.
    fn check_tree(
        s: &Session,
        req: &mut Request,
        entry: Option<&PypiEntry>,
    ) -> Result<Vec<(String, String, Vec<String>)>> {
        let settings = &s.settings;
        let packages: Vec<(String, String)> = match entry {
            Some(e) => e.tree(),
            None => {
                // The frame refused an offline check already.
                let cache = Cache::open_cold(&settings.cache_dir)?;
                let resolve = |req: &Request| {
                    let (provider, _index, _config, _fetcher) = provider_for(s, &cache, req, &[])?;
                    crate::pypi::resolve::resolve(&provider)
                };
                settle_python(settings, req)?;
                let resolved = match resolve(req) {
                    Err(e) => {
                        fitting_python(settings, req, e)?;
                        resolve(req)?
                    }
                    ok => ok?,
                };
                resolved
                    .into_iter()
                    .map(|r| (r.name.to_string(), r.version.to_string()))
                    .collect()
            }
        };
        Ok(packages
            .into_iter()
            .map(|(name, version)| (name, version, Vec::new()))
            .collect())
    }
}

fn request(s: &Session, a: &UvxArgs) -> Result<Request> {
    let settings = &s.settings;
    let (root_raw, command) = match &a.from {
        Some(f) => (f.clone(), Some(a.target.clone())),
        None => (a.target.clone(), None),
    };
    let mut specs = vec![parse_spec(s, &root_raw)?];
    for w in &a.with {
        specs.push(parse_spec(s, w)?);
    }
    let root_name = specs[0].name.clone();
    let mut key: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
    key = lock::roots_key(&key);
    // The command defaults to the root's name, as uvx does.
    let command = command.or_else(|| Some(root_name.to_string()));
    let python_req = match a.python.as_deref().or(settings.python.as_deref()) {
        Some(p) => Python::parse(p),
        None => Python::Default,
    };
    let python = interpreter::find(&python_req)?;
    Ok(Request {
        specs,
        key,
        command,
        python,
        python_req,
        probed: None,
    })
}

fn parse_spec(s: &Session, raw: &str) -> Result<PySpec> {
    match pyspec::parse_root(raw)? {
        Ok(s) => Ok(s),
        Err(Floating { name, requested }) => {
            let what = match &requested {
                None => format!("`{name}` has no version"),
                Some(r) => format!("`{name}{}` is not an exact version", shown(r)),
            };
            let err = Error::usage(format!("{what}: safex launches only exact pins"));
            let current = if s.settings.offline {
                None
            } else {
                current_version(s, &name)
            };
            Err(match current {
                Some(v) => err.with_hint(format!(
                    "pin the exact version: `safex uvx {name}=={v}` (current on the index)"
                )),
                None => err.with_hint(format!(
                    "pin an exact version: `safex uvx {name}==<version>`"
                )),
            })
        }
    }
}

/// The newest final, unyanked version on the index, for the hint.
pub fn current_version(s: &Session, name: &pep508_rs::PackageName) -> Option<String> {
    let python = interpreter::find(&Python::Default).ok()?;
    let config = Arc::new(index_config(&s.settings, &python).ok()?);
    config.index.as_ref()?;
    let http = s.http().ok()?;
    s.runtime().ok()?.block_on(async {
        let index = SimpleIndex::new(http, config);
        let files = index.project(name.as_ref()).await.ok()?;
        files
            .iter()
            .filter(|f| !f.yanked)
            .filter_map(|f| {
                WheelName::parse(&f.filename)
                    .ok()
                    .map(|w| w.version)
                    .or_else(|| crate::pypi::tags::sdist_version(&f.filename, name.as_ref()))
            })
            .filter(|v| !v.any_prerelease())
            .max()
            .map(|v| v.to_string())
    })
}

/// A venv is specific to the tree and to the interpreter that runs it.
fn env_dir(cache: &Cache, entry: &PypiEntry, python: &Path) -> PathBuf {
    env_dir_for(cache, &entry.digest(), python)
}

fn env_dir_for(cache: &Cache, digest: &str, python: &Path) -> PathBuf {
    let key = integrity::sha256_hex(format!("{digest}\0{}", python.display()).as_bytes());
    cache.pypi_env(&key[..40])
}

fn read_marker(dir: &Path) -> Result<VenvMarker> {
    let bytes = std::fs::read(dir.join(cache::ENV_MARKER)).map_err(|e| {
        Error::io(format!(
            "cannot read the venv marker in `{}`: {e}",
            dir.display()
        ))
    })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        Error::io(format!("the venv `{}` has a damaged marker", dir.display()))
            .with_hint("run `safex cache clean` and launch again")
    })
}

/// The console script to run: the command named with `--from`, else the one
/// named like the package, else the package's only one.
fn pick_script(marker: &VenvMarker, req: &Request) -> Result<String> {
    let root = normalize(req.specs[0].name.as_ref());
    let listed = || {
        let all: Vec<String> = marker
            .scripts
            .values()
            .flatten()
            .map(|s| format!("`{s}`"))
            .collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    };
    if let Some(cmd) = &req.command {
        if marker.scripts.values().flatten().any(|s| s == cmd) {
            return Ok(cmd.clone());
        }
        // As uvx (since uv 0.6): the command is never guessed. A project
        // whose console script has another name (`mcp-use` provides only
        // `create-mcp-use`) is run by naming that script.
        let root_scripts = marker.scripts.get(&root).cloned().unwrap_or_default();
        if req.specs[0].name.as_ref() == cmd && !root_scripts.is_empty() {
            return Err(Error::usage(format!(
                "`{}` provides no command named `{}`",
                req.specs[0],
                shown(cmd)
            ))
            .with_hint(format!(
                "it provides {}; run one with `safex uvx --from {} {}`",
                listed(),
                req.specs[0],
                root_scripts[0]
            )));
        }
        return Err(Error::usage(format!(
            "`{}` provides no command named `{}`",
            req.specs[0],
            shown(cmd)
        ))
        .with_hint(format!(
            "commands available: {}; pick one with `safex uvx --from {} <command>`",
            listed(),
            req.specs[0]
        )));
    }
    Err(Error::internal("no command chosen"))
}

/// [`build`], and when the default Python does not meet a pinned root's
/// `Requires-Python` (`networkx` needs 3.12), again with the newest Python
/// on this machine that does, found as uv finds one
/// ([`interpreter::candidates`]); the choice is said on stderr and
/// remembered for the warm path. A Python the user asked for is never
/// replaced.
fn build_fitting(
    s: &Session,
    cache: &Cache,
    req: &mut Request,
    entry: Option<PypiEntry>,
) -> Result<Built> {
    let found = req.python.clone();
    if req.probed.is_none() {
        settle_python(&s.settings, req)?;
    }
    let done = match build(s, cache, req, entry.clone()) {
        Err(err) => {
            fitting_python(&s.settings, req, err)?;
            build(s, cache, req, entry)?
        }
        ok => ok?,
    };
    if req.python != found {
        remember_python(cache, req);
    }
    Ok(done)
}

/// Run the Python found for the request ([`interpreter::select`]): for
/// `--python X.Y` (and the default) one that runs and is that version,
/// else the refusal listing what was found.
fn settle_python(settings: &Settings, req: &mut Request) -> Result<()> {
    let (python, info) = interpreter::select(&req.python_req, &req.python, settings.quiet)?;
    req.python = python;
    req.probed = Some(info);
    Ok(())
}

/// After `err`: the newest other Python that meets the `Requires-Python`
/// it names, said on stderr; else `err` again, its hint listing what was
/// tried (those that do not run among them). Only when `err` is about the
/// Python and none was asked for by path, name or `X.Y`.
fn fitting_python(settings: &Settings, req: &mut Request, err: Error) -> Result<()> {
    let Some(Need::Python(range)) = err.needs.clone() else {
        return Err(err);
    };
    let wanted = match pep440_rs::VersionSpecifiers::from_str(&range) {
        Ok(w) if !req.python_explicit() => w,
        _ => return Err(err),
    };
    let default = std::fs::canonicalize(&req.python).ok();
    let mut tried = Vec::new();
    for cand in interpreter::candidates() {
        let cand = cand.path;
        if std::fs::canonicalize(&cand).ok() == default {
            continue;
        }
        let info = match Info::probe(&cand) {
            Ok(i) if req.python_req.admits(i.major, i.minor) => i,
            Ok(_) => continue,
            Err(_) => {
                tried.push(format!("`{}` (does not run)", cand.display()));
                continue;
            }
        };
        tried.push(format!("`{}` ({})", cand.display(), info.full_version));
        if !wanted.contains(&info.version()) {
            continue;
        }
        if !settings.quiet {
            eprintln!(
                "note: `{}` requires Python `{range}`; using `{}` ({})",
                req.specs[0],
                cand.display(),
                info.full_version
            );
        }
        req.python = cand;
        req.probed = Some(info);
        return Ok(());
    }
    let tried = if tried.is_empty() {
        "no other Python was found".to_owned()
    } else {
        format!("also tried {}", tried.join(", "))
    };
    Err(Error {
        hint: Some(format!(
            "{tried}; install a Python that fits, or pass one with `--python`; safex never downloads one"
        )),
        ..err
    })
}

/// Where the Python chosen for these roots and this request is remembered:
/// the default's and `--python 3.12`'s are kept apart.
fn python_choice_path(cache: &Cache, req: &Request) -> PathBuf {
    let mut key = req.key.join(" ");
    if let Python::Version(m, n) = &req.python_req {
        key.push_str(&format!("\0python={m}.{n:?}"));
    }
    let key = integrity::sha256_hex(key.as_bytes());
    cache.pypi_python_choice(&key[..40])
}

/// The Python chosen for these roots on an earlier launch, when it was not
/// asked for by path or name and the file still names an interpreter.
fn remembered_python(cache: &Cache, req: &Request) -> Option<PathBuf> {
    if matches!(req.python_req, Python::Path(_) | Python::Name(_)) {
        return None;
    }
    let text = std::fs::read_to_string(python_choice_path(cache, req)).ok()?;
    let path = PathBuf::from(text.trim_end());
    path.is_file().then_some(path)
}

/// Best effort: without it, the next launch finds the same Python again.
fn remember_python(cache: &Cache, req: &Request) {
    let path = python_choice_path(cache, req);
    let (Some(dir), Ok(tmp)) = (path.parent(), cache.tmp_file("python-for")) else {
        return;
    };
    let text = format!("{}\n", req.python.display());
    let _ = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
}

/// A venv built in staging, not yet committed.
pub struct Built {
    entry: PypiEntry,
    staging: PathBuf,
    guard: StagingGuard,
    final_dir: PathBuf,
    info: Info,
    scripts: Scripts,
}

/// Cold path: resolve (or read the lock), fetch and verify the wheels, and
/// build the venv in staging.
fn build(s: &Session, cache: &Cache, req: &Request, entry: Option<PypiEntry>) -> Result<Built> {
    let settings = &s.settings;
    // Index pages needed whatever the interpreter: locked packages none of
    // whose wheels is cached, or else the roots.
    let ahead: Vec<&str> = match &entry {
        Some(e) => e
            .packages
            .iter()
            .filter(|p| {
                !p.wheels.iter().any(|w| {
                    cache
                        .blob_path(&w.sha256.integrity())
                        .is_some_and(|b| b.is_file())
                })
            })
            .map(|p| p.name.as_ref())
            .collect(),
        None => req.specs.iter().map(|s| s.name.as_ref()).collect(),
    };
    let (provider, index, config, fetcher) = provider_for(s, cache, req, &ahead)?;
    let rt = s.runtime()?;
    let info = provider.info().clone();

    // Which wheel of each package, with its verified path.
    let (entry, wheels) = match entry {
        Some(entry) => {
            let wheels = locked_wheels(
                &index,
                &config,
                &fetcher,
                rt,
                &info,
                &entry,
                settings.offline,
            )?;
            check_locked_ranges(settings, &entry, &wheels, &info)?;
            (entry, wheels)
        }
        None => resolved_wheels(s, req, &provider, &fetcher, &config)?,
    };
    drop(provider);

    let (staging, guard, final_dir, scripts) = build_venv(s, cache, req, &entry, &wheels, &info)?;
    Ok(Built {
        entry,
        staging,
        guard,
        final_dir,
        info,
        scripts,
    })
}

/// A fresh resolution: every package judged by the policy before any
/// install, the best wheel of each fetched and verified (in parallel: most
/// are in the blob store already, fetched for their metadata or
/// speculatively), and the entry to lock, every wheel of each version
/// with a hash listed (as uv.lock does).
fn resolved_wheels(
    s: &Session,
    req: &Request,
    provider: &Provider,
    fetcher: &Arc<Fetcher>,
    config: &Arc<PypiConfig>,
) -> Result<(PypiEntry, Vec<WheelToInstall>)> {
    let settings = &s.settings;
    let rt = s.runtime()?;
    let resolved = crate::pypi::resolve::resolve(provider)?;
    // Deny list and known-compromised versions, before any install.
    for r in &resolved {
        settings
            .policy
            .check_package(Ecosystem::Pypi, r.name.as_ref(), &r.version.to_string())?;
    }
    let mut packages = Vec::new();
    let mut wheels = Vec::new();
    let downloads: Vec<_> = resolved
        .iter()
        .map(|r| {
            let best = r.files.usable.first().cloned().ok_or_else(|| {
                Error::internal(format!(
                    "`{}=={}` resolved without a wheel",
                    r.name, r.version
                ))
            })?;
            Ok((r, best))
        })
        .collect::<Result<_>>()?;
    // In parallel: most are in the blob store already (fetched for
    // their metadata or speculatively during resolution).
    let fetches = downloads.iter().map(|(_, best)| {
        let (fetcher, config) = (fetcher, config);
        async move {
            let expected = best
                .sha256
                .as_deref()
                .map(integrity::Integrity::from_sha256_hex)
                .transpose()?;
            let origin = index_origin_for(config, &best.url);
            let (verified, _) = fetcher
                .blob(BlobRequest {
                    label: &best.filename,
                    url: &best.url,
                    origin: &origin,
                    expected: expected.as_ref(),
                    source: Expected::Registry,
                    credential: config.credential_for(&best.url),
                })
                .await?;
            Ok::<_, Error>(verified)
        }
    });
    let paths = rt.block_on(futures_util::future::join_all(fetches));
    for ((r, best), path) in downloads.into_iter().zip(paths) {
        let verified = path?;
        let chosen_sha = blob_sha256(&verified.path);
        let mut locked: Vec<LockedWheel> = r
            .files
            .all_wheels
            .iter()
            .filter_map(|f| {
                // A hash that is not sha256 hex pins nothing: that
                // wheel is left out (the chosen one was verified).
                let sha = match &f.sha256 {
                    Some(h) => integrity::Sha256Digest::parse_lower_hex(&h.to_ascii_lowercase()),
                    None if f.filename == best.filename => chosen_sha,
                    None => None,
                }?;
                Some(LockedWheel {
                    file: f.filename.clone(),
                    sha256: sha,
                })
            })
            .collect();
        locked.sort();
        locked.dedup();
        packages.push(PypiPackage {
            name: r.name.clone(),
            version: r.version.clone().into(),
            dependencies: r.dependencies.clone(),
            wheels: locked,
        });
        wheels.push((
            r.name.to_string(),
            r.version.to_string(),
            best.filename.clone(),
            verified,
        ));
    }
    packages.sort();
    Ok((
        PypiEntry {
            roots: req.key.clone(),
            packages,
        },
        wheels,
    ))
}

/// The venv in staging: created for the interpreter, every wheel installed
/// (members checked, `RECORD`, start-up hooks by the policy, console
/// scripts); what was left out is said once.
fn build_venv(
    s: &Session,
    cache: &Cache,
    req: &Request,
    entry: &PypiEntry,
    wheels: &[WheelToInstall],
    info: &Info,
) -> Result<(PathBuf, StagingGuard, PathBuf, Scripts)> {
    let settings = &s.settings;
    let final_dir = env_dir(cache, entry, &req.python);
    let staging = cache.staging_dir("venv")?;
    let guard = StagingGuard(Some(staging.clone()));
    let layout = venv::create(&staging, &final_dir, info)?;
    let root_names: Vec<String> = req
        .specs
        .iter()
        .map(|s| normalize(s.name.as_ref()))
        .collect();
    let pth = settings.policy.pth;
    let (scripts, mut stripped) =
        install_wheels(wheels, &layout, &root_names, pth, &settings.policy.limits)?;
    stripped.extend(startup_hooks::path_line_hooks(&layout.purelib, pth)?);
    if layout.platlib != layout.purelib {
        stripped.extend(startup_hooks::path_line_hooks(&layout.platlib, pth)?);
    }
    if !stripped.is_empty() && !settings.quiet {
        eprintln!(
            "warning: start-up code not installed (safex never runs it; policy `python.pth = \"refuse\"` refuses start-up hooks instead): {}",
            stripped.join(", ")
        );
    }

    Ok((staging, guard, final_dir, scripts))
}

/// Write the marker and move the venv into the cache.
fn commit(s: &Session, cache: &Cache, b: Built, entry: &PypiEntry) -> Result<PathBuf> {
    let Built {
        staging,
        mut guard,
        final_dir,
        info,
        scripts,
        ..
    } = b;
    let marker = VenvMarker {
        digest: entry.digest(),
        python: info.executable.clone(),
        python_version: info.full_version.clone(),
        scripts,
    };
    let json = serde_json::to_vec_pretty(&marker).map_err(|e| Error::internal(e.to_string()))?;
    fs_err::write(staging.join(cache::ENV_MARKER), json)?;
    let digest = entry.digest();
    let repaired = cache.commit_env(&staging, &final_dir, |d| {
        read_marker(d).is_ok_and(|m| m.digest == digest)
    })?;
    guard.0 = None;
    if repaired && !s.settings.quiet {
        eprintln!("{}", cache::repaired_note(&final_dir));
    }
    Ok(final_dir)
}

/// A locked tree's versions against the `Requires-Dist` of its own wheels,
/// just verified against the entry's hashes (`lock::check::check_pypi_ranges`):
/// an entry edited to another real, correctly hashed version that a package
/// does not allow is refused as a damaged lock.
fn check_locked_ranges(
    settings: &Settings,
    entry: &PypiEntry,
    wheels: &[WheelToInstall],
    info: &Info,
) -> Result<()> {
    let mut metas = Vec::with_capacity(wheels.len());
    for (name, version, file, path) in wheels {
        let label = format!("{name}=={version}");
        let meta =
            crate::pypi::metadata::from_wheel(path.reader()?, &label, &settings.policy.limits)
                .map_err(|e| Error {
                    message: format!("{} (reading `{file}`)", e.message),
                    ..e
                })?;
        metas.push((name.as_str(), meta));
    }
    let by_name: std::collections::HashMap<&str, &crate::pypi::metadata::Metadata> =
        metas.iter().map(|(n, m)| (*n, m)).collect();
    let markers = info.marker_env()?;
    let Err(p) = crate::lock::check::check_pypi_ranges(entry, &by_name, &markers) else {
        return Ok(());
    };
    let file = crate::launch::lockfile_holding::<PypiEntry>(settings, &entry.roots);
    Err(Error::io(format!(
        "lockfile `{}`: the entry for `{}`, package `{}`, has {}",
        file.display(),
        crate::redact::shown(&entry.roots.join(" ")),
        p.package.unwrap_or_default(),
        p.what
    ))
    .with_hint(
        "the entry does not agree with the packages it lists, so it was edited or damaged, or locked for a Python whose markers select other versions: restore the lockfile, or remove that entry and lock it again with this Python",
    ))
}

/// One wheel to install: name, version, file name, verified blob.
type WheelToInstall = (String, String, String, crate::fetch::Verified);
/// Root name → its console scripts.
type Scripts = BTreeMap<String, Vec<String>>;

/// Install every wheel into the venv. Wheels install into disjoint paths (a
/// collision is refused), so they go in parallel, one per core. Returns the
/// console scripts of the roots, and the `.pth` files installed without
/// their executable lines (`name==version`: `file` (line ...)), sorted.
fn install_wheels(
    wheels: &[WheelToInstall],
    layout: &wheel::VenvLayout,
    root_names: &[String],
    pth: crate::policy::PthPolicy,
    limits: &Limits,
) -> Result<(Scripts, Vec<String>)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let shared = wheel::SharedFiles::default();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(wheels.len().max(1));
    let install_some = || -> Result<(Scripts, Vec<String>)> {
        let mut found = Scripts::new();
        let mut stripped = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((name, version, file, path)) = wheels.get(i) else {
                return Ok((found, stripped));
            };
            // The handle whose bytes were hashed: never a path re-opened.
            let installed = path
                .reader()
                .and_then(|whl| {
                    wheel::install_wheel_from(whl, layout, name, version, pth, limits, &shared)
                })
                .map_err(|e| Error {
                    message: format!("{} (installing `{file}`)", e.message),
                    ..e
                })?;
            for s in &installed.stripped {
                stripped.push(format!("`{name}=={version}` {s}"));
            }
            if root_names.contains(name) {
                found
                    .entry(name.clone())
                    .or_default()
                    .extend(installed.console_scripts.iter().map(|ep| ep.name.clone()));
            }
        }
    };
    let results: Vec<Result<(Scripts, Vec<String>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(install_some)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::internal("a wheel install thread panicked")))
            })
            .collect()
    });
    let mut scripts = Scripts::new();
    let mut all_stripped = Vec::new();
    for r in results {
        let (found, stripped) = r?;
        for (name, names) in found {
            scripts.entry(name).or_default().extend(names);
        }
        all_stripped.extend(stripped);
    }
    all_stripped.sort();
    Ok((scripts, all_stripped))
}

type Parts = (Provider, Arc<SimpleIndex>, Arc<PypiConfig>, Arc<Fetcher>);

/// The index client, fetcher and resolver for a request (cold path only:
/// this probes the interpreter).
///
/// `ahead`: projects whose index pages will be needed whatever the
/// interpreter is; they are fetched while the interpreter is probed (a
/// version manager's shim can take longer to start it than the index takes
/// to answer).
fn provider_for(s: &Session, cache: &Cache, req: &Request, ahead: &[&str]) -> Result<Parts> {
    let settings = &s.settings;
    let config = Arc::new(index_config(settings, &req.python)?);
    let rt = s.runtime()?;
    let http = s.http()?;
    let index = SimpleIndex::new(http.clone(), config.clone());
    if !settings.offline {
        let _in_runtime = rt.enter();
        for name in ahead {
            index.prefetch(name);
        }
    }
    let info = match &req.probed {
        Some(i) => i.clone(),
        None => Info::probe(&req.python)?,
    };
    let fetcher = Arc::new(Fetcher {
        http,
        npm: Arc::new(Default::default()),
        cache: Arc::new(cache.clone()),
        offline: settings.offline,
        hosts: crate::fetch::FileHosts {
            other_indexes: config.other_indexes(),
            ..crate::fetch::FileHosts::from_policy(&settings.policy)
        },
        limits: settings.policy.limits.clone(),
    });
    let provider = Provider::new(
        index.clone(),
        config.clone(),
        fetcher.clone(),
        rt.handle().clone(),
        &info,
        req.specs.clone(),
    )?;

    let provider = provider.with_cooldown(settings.policy.cooldown());
    Ok((provider, index, config, fetcher))
}

/// The sha256 a blob is named by (`blobs/sha256/<hex>`).
fn blob_sha256(path: &Path) -> Option<integrity::Sha256Digest> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(integrity::Sha256Digest::parse_lower_hex)
}

/// For a locked tree: the best locked wheel of each package for this
/// interpreter, fetched in parallel (only those not cached) and checked
/// against the lock. The index is asked only for the URLs of missing files.
fn locked_wheels(
    index: &Arc<SimpleIndex>,
    config: &PypiConfig,
    fetcher: &Arc<Fetcher>,
    rt: &tokio::runtime::Runtime,
    info: &Info,
    entry: &PypiEntry,
    offline: bool,
) -> Result<Vec<WheelToInstall>> {
    let tags = info.tags();
    let mut chosen = Vec::new();
    for p in &entry.packages {
        let label = format!("{}=={}", p.name, p.version);
        let best = p
            .wheels
            .iter()
            .filter_map(|w| WheelName::parse(&w.file).ok().and_then(|n| tags.priority(&n)).map(|prio| (prio, w)))
            .min_by_key(|(prio, _)| *prio)
            .map(|(_, w)| w.clone())
            .ok_or_else(|| {
                Error::policy(format!("the lockfile has no wheel of `{label}` for this Python and platform"))
                    .with_hint("lock it again on this platform (remove the entry), or use a Python the lock was made for")
            })?;
        let expected = best.sha256.integrity();
        let cached = fetcher.cache.blob_path(&expected).filter(|p| p.is_file());
        if cached.is_none() && offline {
            return Err(Error::registry(format!(
                "`{}` is not in the cache and safex is offline",
                best.file
            ))
            .with_hint("run the same command once with network access"));
        }
        chosen.push((p, label, best, expected, cached));
    }
    let fetches = chosen.iter().map(|(p, label, best, expected, cached)| async move {
        // Cached: re-hashed now (a damaged one is removed and fetched again).
        if cached.is_some()
            && let Some(verified) = fetcher.cached(&best.file, expected).await?
        {
            return Ok(verified);
        }
        let files = index.project(p.name.as_ref()).await?;
        let file = files.iter().find(|f| f.filename == best.file).ok_or_else(|| {
            Error::registry(format!("the index no longer lists `{}` (locked for `{label}`)", best.file))
                .with_hint("the index changed; restore the file on the index, or remove the lock entry to resolve again")
        })?;
        let origin = index_origin_for(config, &file.url);
        let (verified, _) = fetcher
            .blob(BlobRequest {
                label: &file.filename,
                url: &file.url,
                origin: &origin,
                expected: Some(expected),
                source: Expected::Lock,
                credential: config.credential_for(&file.url),
            })
            .await?;
        Ok::<_, Error>(verified)
    });
    let paths = rt.block_on(futures_util::future::join_all(fetches));
    chosen
        .iter()
        .zip(paths)
        .map(|((p, _, best, _, _), path)| {
            Ok((
                p.name.to_string(),
                p.version.to_string(),
                best.file.clone(),
                path?,
            ))
        })
        .collect()
}

/// The index configuration for a cold path: safex's settings, pip's and
/// uv's; when none names an index, the one `python`'s pip uses (as the
/// user's own pip would), said on stderr — unless the policy's
/// `registries.require_configured` is set.
fn index_config(settings: &Settings, python: &Path) -> Result<PypiConfig> {
    let config = PypiConfig::load(
        settings.pypi_index.clone(),
        settings.policy.allowed_hosts.as_deref(),
    )?;
    if config.index.is_some() || settings.offline {
        return Ok(config);
    }
    if settings.policy.require_configured {
        return Err(no_index_error(None));
    }
    let (url, source) = interpreter::pip_index(python).map_err(|why| no_index_error(Some(&why)))?;
    let config = PypiConfig::load(
        Some((url, source.clone())),
        settings.policy.allowed_hosts.as_deref(),
    )?;
    if let Some((u, _)) = &config.index
        && !settings.quiet
    {
        eprintln!(
            "note: no Python package index is configured for safex; using the one pip uses, `{u}` ({source})"
        );
    }
    Ok(config)
}

/// `asked`: why pip could not name an index, when it was asked (`None`:
/// `registries.require_configured` forbids asking).
fn no_index_error(asked: Option<&str>) -> Error {
    let what = match asked {
        Some(why) => format!("no Python package index is configured, and pip could not say which it uses: {why}"),
        None => "no Python package index is configured (the policy's `registries.require_configured` is set)".to_owned(),
    };
    Error::usage(what).with_hint(format!(
        "pass `--index-url URL`, set `{}`, set `pypi_index` in safex's config file (`{}`), or set `PIP_INDEX_URL` / `index-url` in pip.conf",
        crate::env_vars::SAFEX_PYPI_INDEX,
        crate::config_file::config_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config.toml".into())
    ))
}
