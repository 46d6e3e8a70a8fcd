//! The npm side of the launch frame: roots parsed with the exact-version
//! hint, the tree built (resolve or read the lock → fetch + verify → unpack
//! → inspect), assembled as `node_modules` with its bins, and the bin to run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::{self, Cache, StagingGuard};
use crate::cli::NpxArgs;
use crate::error::{Error, Result};
use crate::launch::{LaunchArgs, Pipeline};
use crate::lock::{self, LockedPackage, NpmEntry};
use crate::npm::registry::{Packuments, conventional_tarball_url};
use crate::npm::resolve::{Placed, Resolver};
use crate::npm::spec::{self, NpmName, NpmSpec, Unpinned};
use crate::npm::tree::{self, EnvMarker, Installed, RootBins};
use crate::policy::ScriptsMode;
use crate::session::Session;
use crate::settings::{Overrides, Settings};
use crate::{fetch, locate};

/// The npm side of the launch frame.
pub struct Npm;

/// A parsed npm launch: the roots (sorted, deduplicated), their lock key,
/// and with `-p` the command to run.
pub struct Request {
    roots: Vec<NpmSpec>,
    key: Vec<String>,
    command: Option<String>,
}

impl LaunchArgs for NpxArgs {
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
        Ok(Overrides {
            registry: self.registry.clone(),
            offline: self.offline,
            quiet: self.quiet,
            ..Default::default()
        })
    }
}

impl Pipeline for Npm {
    type Args = NpxArgs;
    type Request = Request;
    type Entry = NpmEntry;
    type Marker = EnvMarker;
    type Built = Built;
    const AT: &'static str = "@";

    fn request(s: &Session, a: &NpxArgs) -> Result<Request> {
        let (raw, command) = if a.packages.is_empty() {
            (vec![a.target.clone()], None)
        } else {
            (a.packages.clone(), Some(a.target.clone()))
        };
        let roots = parse_roots(s, &raw)?;
        let key = roots.iter().map(|r| r.to_string()).collect();
        Ok(Request {
            roots,
            key,
            command,
        })
    }

    fn roots(req: &Request) -> Vec<(String, String)> {
        req.roots
            .iter()
            .map(|r| (r.name.to_string(), r.version.to_string()))
            .collect()
    }

    fn root_shown(req: &Request) -> String {
        req.roots[0].to_string()
    }

    fn key(req: &Request) -> &[String] {
        &req.key
    }

    /// One `lstat` (a directory of ours nobody else can write, else
    /// refused) and the marker, which it reads anyway. A missing, damaged
    /// or foreign-digest marker, or a file in the directory's place, sends
    /// the launch down the cold path, which moves the damaged entry aside
    /// and rebuilds it.
    fn ready(
        s: &Session,
        _req: &mut Request,
        digest: &str,
    ) -> Result<Option<(PathBuf, EnvMarker)>> {
        let dir = s.cache.npm_env(digest);
        Ok(match Cache::env_state(&dir)? {
            cache::EnvState::Dir => EnvMarker::read(&dir)
                .filter(|m| m.digest == digest)
                .map(|m| (dir, m)),
            cache::EnvState::Missing | cache::EnvState::NotDir => None,
        })
    }

    fn read_marker(dir: &Path) -> Result<EnvMarker> {
        EnvMarker::read(dir).ok_or_else(|| {
            Error::io(format!(
                "the environment `{}` has a damaged marker",
                dir.display()
            ))
            .with_hint("run `safex cache clean` and launch again")
        })
    }

    /// Install-time code never runs; `scripts.mode = "refuse"` refuses a
    /// tree that has some.
    fn check_marker(s: &Session, m: &EnvMarker) -> Result<()> {
        m.skipped_install_code
            .iter()
            .try_for_each(|(pkg, code)| s.settings.policy.check_install_code(pkg, code))
    }

    fn build(
        s: &Session,
        cache: &Cache,
        req: &mut Request,
        entry: Option<NpmEntry>,
    ) -> Result<Built> {
        build(s, cache, &req.roots, entry)
    }

    fn built_entry(b: &Built) -> &NpmEntry {
        &b.entry
    }

    fn commit(
        s: &Session,
        cache: &Cache,
        req: &Request,
        b: Built,
        entry: &NpmEntry,
    ) -> Result<PathBuf> {
        commit(s, cache, &req.roots, b, entry)
    }

    fn program(
        s: &Session,
        req: &Request,
        dir: &Path,
        m: &EnvMarker,
    ) -> Result<(PathBuf, OsString)> {
        let (root_path, name, bin) = pick_bin(m, &req.roots, req.command.as_deref())?;
        let node = locate::node(s.settings.node.as_deref(), m.node.as_deref())?;
        let script = if m.bin_links {
            dir.join(tree::BIN_DIR).join(name)
        } else {
            dir.join(&root_path).join(&bin)
        };
        Ok((node, script.into_os_string()))
    }

    fn tree_lines(entry: &NpmEntry) -> String {
        let mut out = String::new();
        for p in &entry.packages {
            let depth = p.path.matches("node_modules/").count();
            out.push_str(&format!(
                "{}{}@{}  {}\n",
                "  ".repeat(depth),
                p.name,
                p.version,
                p.integrity
            ));
            for (path, version) in &p.bundled {
                out.push_str(&format!(
                    "{}{}@{}  (bundled)\n",
                    "  ".repeat(depth + 1),
                    lock::bundled_name(path),
                    crate::redact::shown(version)
                ));
            }
        }
        out
    }

    /// A tree already built answers with what its launch read from the
    /// tarballs: the same decision, without the network. Else the
    /// registry's packuments say (resolving when not locked; nothing is
    /// fetched).
    fn check_tree(
        s: &Session,
        req: &mut Request,
        entry: Option<&NpmEntry>,
    ) -> Result<Vec<(String, String, Vec<String>)>> {
        let settings = &s.settings;
        let refuse_scripts = settings.policy.scripts == ScriptsMode::Refuse;
        let built = match entry {
            Some(e) => Self::ready(s, req, &e.digest())?.map(|(_, m)| m),
            None => None,
        };
        if let (Some(e), Some(m)) = (entry, &built) {
            return Ok(hooks_built(e, m));
        }
        if entry.is_none() || (refuse_scripts && !settings.offline) {
            return declared_hooks(s, &req.roots, entry);
        }
        Ok(entry
            .iter()
            .flat_map(|e| &e.packages)
            .map(|p| (p.name.to_string(), p.version.clone(), Vec::new()))
            .collect())
    }
}

/// `(name, version, install hooks)` of a built tree, from its marker.
fn hooks_built(e: &NpmEntry, m: &EnvMarker) -> Vec<(String, String, Vec<String>)> {
    let mut rows: Vec<_> = e
        .packages
        .iter()
        .map(|p| {
            let code = m
                .skipped_install_code
                .get(&format!("{}@{}", p.name, p.version))
                .cloned()
                .unwrap_or_default();
            (p.name.to_string(), p.version.clone(), code)
        })
        .collect();
    // Bundled packages' hooks, named as the marker names them.
    rows.extend(
        m.skipped_install_code
            .iter()
            .filter(|(k, _)| k.contains(" (bundled in "))
            .filter_map(|(k, code)| {
                let (name, version) = k.split_once(" (bundled in ")?.0.rsplit_once('@')?;
                Some((name.to_owned(), version.to_owned(), code.clone()))
            }),
    );
    rows
}

/// `(name, version, install hooks the registry declares)` of every package
/// of the locked tree, else of the tree resolved now (nothing is fetched).
fn declared_hooks(
    s: &Session,
    roots: &[NpmSpec],
    entry: Option<&NpmEntry>,
) -> Result<Vec<(String, String, Vec<String>)>> {
    let settings = &s.settings;
    let http = s.http()?;
    let npm = Arc::new(settings.npm.clone());
    let cooldown = settings.policy.cooldown();
    s.runtime()?.block_on(async {
        match entry {
            Some(e) => {
                let packuments = Packuments::new(http, npm);
                for p in &e.packages {
                    packuments.prefetch(&p.name);
                }
                let mut out = Vec::new();
                for p in &e.packages {
                    let doc = packuments.get(&p.name).await?;
                    let scripts = doc
                        .versions
                        .get(&p.version)
                        .map(|m| m.declared_install_hooks())
                        .unwrap_or_default();
                    out.push((p.name.to_string(), p.version.clone(), scripts));
                }
                Ok::<_, Error>(out)
            }
            None => {
                // Nobody listens on the placement channel: nothing is fetched.
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Placed>();
                drop(rx);
                let packuments = Packuments::new(http, npm.clone());
                let mut resolver = Resolver::new(packuments, npm, tx).with_cooldown(cooldown);
                resolver.resolve(roots).await?;
                Ok(resolver
                    .nodes
                    .iter()
                    .skip(1)
                    .map(|n| {
                        let scripts = n
                            .meta()
                            .map(|m| m.declared_install_hooks())
                            .unwrap_or_default();
                        (n.name.to_string(), n.version.clone(), scripts)
                    })
                    .collect())
            }
        }
    })
}

/// Parse root specs; a floating one is refused with the exact current version.
fn parse_roots(s: &Session, raw: &[String]) -> Result<Vec<NpmSpec>> {
    let mut out = Vec::new();
    for r in raw {
        match spec::parse_root(r)? {
            Ok(s) => out.push(s),
            Err(Unpinned::Floating { name, requested }) => {
                return Err(unpinned_error(s, &name, requested.as_deref()));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn unpinned_error(s: &Session, name: &NpmName, requested: Option<&str>) -> Error {
    let what = match requested {
        None => format!("`{name}` has no version"),
        Some(r) => format!(
            "`{name}@{}` is not an exact version",
            crate::redact::shown(r)
        ),
    };
    let err = Error::usage(format!("{what}: safex launches only exact pins"));
    let exact = if s.settings.offline {
        None
    } else {
        current_version(s, name, requested)
    };
    match exact {
        Some(v) => err.with_hint(format!(
            "pin the exact version: `safex npx {name}@{v}` (current on the registry)"
        )),
        None => err.with_hint(format!(
            "pin an exact version: `safex npx {name}@<major.minor.patch>`"
        )),
    }
}

/// The version a floating spec points to today (the hint for an unpinned
/// spec, and `safex mcp pin`). `None` when the registry cannot say.
pub fn current_version(s: &Session, name: &NpmName, requested: Option<&str>) -> Option<String> {
    let http = s.http().ok()?;
    s.runtime().ok()?.block_on(async {
        let npm = Arc::new(s.settings.npm.clone());
        let p = Packuments::new(http, npm).get(name).await.ok()?;
        match requested.map(spec::DepSpec::parse) {
            None => p.dist_tags.get("latest").cloned(),
            Some(Ok(spec::DepSpec::Tag(t))) => p.dist_tags.get(&t).cloned(),
            Some(Ok(spec::DepSpec::Range(r))) => p
                .versions
                .keys()
                .filter_map(|k| {
                    nodejs_semver::Version::parse(k)
                        .ok()
                        .map(|v| (v, k.clone()))
                })
                .filter(|(v, _)| spec::range_admits(&r, v))
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, k)| k),
            _ => p.dist_tags.get("latest").cloned(),
        }
    })
}

/// A tree fetched, verified, unpacked and inspected in staging.
pub struct Built {
    entry: NpmEntry,
    installed: Vec<Installed>,
    staging: PathBuf,
    guard: StagingGuard,
}

/// Cold path: resolve (or read the lock), fetch and verify every archive,
/// unpack and inspect into staging; the tree's ranges checked against the
/// packages' own `package.json`.
fn build(s: &Session, cache: &Cache, roots: &[NpmSpec], entry: Option<NpmEntry>) -> Result<Built> {
    let settings = &s.settings;
    let http = s.http()?;
    let npm = Arc::new(settings.npm.clone());
    let fetcher = Arc::new(fetch::Fetcher {
        http: http.clone(),
        npm: npm.clone(),
        cache: Arc::new(cache.clone()),
        offline: settings.offline,
        // The default and the scoped registries: a tarball that one of them
        // lists on another one's origin is refused (`FileHosts`).
        hosts: crate::fetch::FileHosts {
            other_indexes: settings
                .npm
                .default_registry()
                .ok()
                .into_iter()
                .map(|(u, _)| u)
                .chain(settings.npm.scoped.values())
                .map(|u| u.url().clone())
                .collect(),
            ..crate::fetch::FileHosts::from_policy(&settings.policy)
        },
        limits: settings.policy.limits.clone(),
    });
    let staging = cache.staging_dir("env")?;
    let guard = StagingGuard(Some(staging.clone()));
    let from_lock = entry.is_some();

    let (entry, installed) = s.runtime()?.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Placed>();
        let installer = tokio::spawn(tree::install_all(
            fetcher.clone(),
            staging.clone(),
            Arc::new(settings.policy.clone()),
            rx,
        ));
        match entry {
            Some(entry) => {
                for p in &entry.packages {
                    let placed = match placed_from_lock(&npm, p, settings.offline) {
                        Ok(placed) => placed,
                        Err(e) => {
                            drop(tx);
                            let _ = join(installer).await;
                            return Err(e);
                        }
                    };
                    // The installer stops at its first failure and drops
                    // its end: that failure is the error, not the send.
                    if tx.send(placed).is_err() {
                        drop(tx);
                        join(installer).await?;
                        return Err(Error::internal(
                            "the installer ended before every locked package was sent",
                        ));
                    }
                }
                drop(tx);
                let installed = join(installer).await?;
                check_bundled(&entry, &installed)?;
                Ok::<_, Error>((entry, installed))
            }
            None => {
                let packuments = Packuments::new(http.clone(), npm.clone()).speculate();
                let mut resolver = Resolver::new(packuments, npm.clone(), tx)
                    .with_cooldown(settings.policy.cooldown())
                    .with_tarballs_ahead(fetcher.clone(), Arc::new(settings.policy.clone()));
                let resolved = resolver.resolve(roots).await;
                if let Err(e) = resolved {
                    drop(resolver);
                    let _ = join(installer).await;
                    return Err(e);
                }
                let warnings = std::mem::take(&mut resolver.warnings);
                let edges: Vec<(String, std::collections::BTreeMap<String, String>)> = (1
                    ..resolver.nodes.len())
                    .map(|i| (resolver.nodes[i].path.clone(), resolver.edges_of(i)))
                    .collect();
                drop(resolver);
                let installed = join(installer).await?;
                if !settings.quiet {
                    for w in warnings {
                        eprintln!("warning: {w}");
                    }
                }
                Ok((entry_from(roots, &installed, edges), installed))
            }
        }
    })?;

    check_ranges(settings, &entry, &installed, from_lock)?;
    Ok(Built {
        entry,
        installed,
        staging,
        guard,
    })
}

/// Assemble `node_modules`, link the bins, write the marker, and move the
/// environment into the cache.
fn commit(
    s: &Session,
    cache: &Cache,
    roots: &[NpmSpec],
    b: Built,
    entry: &NpmEntry,
) -> Result<PathBuf> {
    let settings = &s.settings;
    let Built {
        installed,
        staging,
        mut guard,
        ..
    } = b;
    warn_dropped(settings, &installed);
    tree::assemble(&staging, &installed)?;
    let digest = entry.digest();
    let mut marker = marker_for(&digest, roots, &installed);
    marker.bin_links = tree::link_bins(&staging, &marker.roots)?;
    marker.node = node_for(settings, &marker.roots);
    let marker_json =
        serde_json::to_vec_pretty(&marker).map_err(|e| Error::internal(e.to_string()))?;
    fs_err::write(staging.join(cache::ENV_MARKER), marker_json)?;
    let env_dir = cache.npm_env(&digest);
    let repaired = cache.commit_env(&staging, &env_dir, |d| {
        EnvMarker::read(d).is_some_and(|m| m.digest == digest)
    })?;
    guard.0 = None;
    if repaired && !settings.quiet {
        eprintln!("{}", cache::repaired_note(&env_dir));
    }
    // A refusal comes from `check_install_code`, after the build.
    if settings.policy.scripts == ScriptsMode::Strip {
        warn_install_code(settings, &marker);
    }
    Ok(env_dir)
}

/// The tree's versions against the ranges its packages declare in their
/// own (just verified) `package.json` files (`lock::check::check_npm_ranges`).
/// From the lock, a mismatch means the entry was edited: its hashes are
/// honest but it runs versions its packages do not ask for. Freshly
/// resolved, it means the registry's metadata and the tarballs disagree.
fn check_ranges(
    settings: &Settings,
    entry: &NpmEntry,
    installed: &[Installed],
    from_lock: bool,
) -> Result<()> {
    let declared: std::collections::HashMap<&str, &crate::npm::inspect::Declared> = installed
        .iter()
        .map(|i| (i.path.as_str(), &i.inspection.declared))
        .collect();
    let Err(p) = crate::lock::check::check_npm_ranges(entry, &declared) else {
        return Ok(());
    };
    let at = p.package.unwrap_or_default();
    let key = crate::redact::shown(&entry.roots.join(" "));
    if from_lock {
        let file = crate::launch::lockfile_holding::<NpmEntry>(settings, &entry.roots);
        Err(Error::io(format!(
            "lockfile `{}`: the entry for `{key}`, package `{at}`, has {}",
            file.display(),
            p.what
        ))
        .with_hint(
            "the entry does not agree with the packages it lists, so it was edited or damaged: restore the lockfile, or remove that entry and lock it again",
        ))
    } else {
        Err(Error::unsafe_pkg(format!(
            "the tree resolved for `{key}` gives `{at}` {}",
            p.what
        ))
        .with_hint("the registry's metadata and the package's own `package.json` disagree (manifest confusion); do not use this version"))
    }
}

/// The node for a tree being built (cold path), to be remembered in its
/// marker when it is not the one the warm path finds by itself: the
/// setting wins; else `PATH`'s, unless the roots' `engines.node` excludes
/// it and a version manager has one that fits (then that one, said on
/// stderr); with no `node` on `PATH`, the newest a manager has (one that
/// fits first). No node fits: a warning, as with npm, and the default runs.
fn node_for(settings: &Settings, roots: &[RootBins]) -> Option<PathBuf> {
    let ranges: Vec<(&RootBins, nodejs_semver::Range)> = roots
        .iter()
        .filter_map(|r| {
            Some((
                r,
                nodejs_semver::Range::parse(r.engines_node.as_ref()?).ok()?,
            ))
        })
        .collect();
    let fits = |v: &nodejs_semver::Version| ranges.iter().all(|(_, r)| r.satisfies(v));
    let on_path = locate::path_node();
    let default = match settings.node.as_deref() {
        Some(p) => Some(p.to_path_buf()),
        None => on_path.clone(),
    };
    if ranges.is_empty() && default.is_some() {
        return None;
    }
    let default_version = default.as_deref().and_then(node_version);
    if settings.node.is_some() || default_version.as_ref().is_some_and(&fits) {
        warn_engines(
            settings,
            &ranges,
            default.as_deref(),
            default_version.as_ref(),
        );
        return None;
    }
    let mut looked = Vec::new();
    let installs = locate::node_installs(&mut looked);
    let same = |p: &Path| {
        default
            .as_deref()
            .is_some_and(|d| std::fs::canonicalize(d).ok() == std::fs::canonicalize(p).ok())
    };
    for i in installs.iter().filter(|i| !same(&i.path)) {
        // The directory's name rules out most without running them.
        if let Some(v) = semver_of(&i.version)
            && !fits(&v)
        {
            continue;
        }
        let Some(v) = node_version(&i.path) else {
            continue;
        };
        if !fits(&v) {
            continue;
        }
        if !settings.quiet {
            let why = match (&default, &default_version, ranges.first()) {
                (Some(d), Some(dv), Some((r, _))) => format!(
                    "`{}@{}` wants node `{}`, and PATH's is v{dv} (`{}`)",
                    r.name,
                    r.version,
                    crate::redact::shown(r.engines_node.as_deref().unwrap_or_default()),
                    d.display()
                ),
                _ => "no `node` is on PATH".to_owned(),
            };
            eprintln!(
                "note: {why}; using {}'s `{}` (v{v})",
                i.manager,
                i.path.display()
            );
        }
        return Some(i.path.clone());
    }
    // None fits: PATH's node, else the newest install, with the warning.
    let (chosen, remember) = match default {
        Some(d) => (Some(d), None),
        None => match installs.first() {
            Some(i) => (Some(i.path.clone()), Some(i.path.clone())),
            None => (None, None),
        },
    };
    let version = chosen.as_deref().and_then(node_version);
    warn_engines(settings, &ranges, chosen.as_deref(), version.as_ref());
    remember
}

/// `node --version`, parsed (cold path only).
fn node_version(node: &Path) -> Option<nodejs_semver::Version> {
    let out = std::process::Command::new(node)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    nodejs_semver::Version::parse(text.trim().trim_start_matches('v')).ok()
}

/// `[22, 1]` as `22.1.0`.
fn semver_of(v: &[u64]) -> Option<nodejs_semver::Version> {
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    (!v.is_empty()).then(|| nodejs_semver::Version {
        major: at(0),
        minor: at(1),
        patch: at(2),
        build: Vec::new(),
        pre_release: Vec::new(),
    })
}

/// `engines.node` that the node chosen does not satisfy is a warning, as
/// with npm. Said once, when the tree is built, not on every launch.
fn warn_engines(
    settings: &Settings,
    ranges: &[(&RootBins, nodejs_semver::Range)],
    node: Option<&Path>,
    version: Option<&nodejs_semver::Version>,
) {
    let (Some(node), Some(v)) = (node, version) else {
        return;
    };
    if settings.quiet {
        return;
    }
    for (r, range) in ranges {
        if !range.satisfies(v) {
            eprintln!(
                "warning: `{}@{}` wants node `{}`, this is node `{v}` (`{}`)",
                r.name,
                r.version,
                crate::redact::shown(r.engines_node.as_deref().unwrap_or_default()),
                node.display()
            );
        }
    }
}

async fn join(h: tokio::task::JoinHandle<Result<Vec<Installed>>>) -> Result<Vec<Installed>> {
    h.await
        .map_err(|e| Error::internal(format!("installer failed: {e}")))?
}

/// A lock entry's package as a download: the conventional tarball URL on the
/// package's registry, checked against the locked hash. No metadata request.
/// The entry was checked when the lockfile was read (`lock::check`): its
/// path is a `node_modules` path, its version is semver, its hash sha512.
fn placed_from_lock(
    npm: &crate::npm::config::NpmConfig,
    p: &LockedPackage,
    offline: bool,
) -> Result<Placed> {
    let name = p.name.clone();
    // Offline, a locked tree rebuilds from cached archives alone: no
    // registry needs to be configured (an MCP client may pass no settings).
    // The address is never contacted: the fetcher refuses the network first.
    let registry = match npm.registry_for(name.as_str()) {
        Ok(r) => r.url().clone(),
        Err(_) if offline => url::Url::parse("http://offline.invalid/").expect("static URL"),
        Err(e) => return Err(e),
    };
    let url = conventional_tarball_url(&registry, &name, &p.version)?;
    Ok(Placed {
        path: p.path.clone(),
        name,
        version: p.version.clone(),
        url,
        registry,
        expected: p.integrity.clone(),
        source: fetch::Expected::Lock,
    })
}

fn entry_from(
    roots: &[NpmSpec],
    installed: &[Installed],
    edges: Vec<(String, std::collections::BTreeMap<String, String>)>,
) -> NpmEntry {
    let edges: std::collections::HashMap<String, std::collections::BTreeMap<String, String>> =
        edges.into_iter().collect();
    let mut packages: Vec<LockedPackage> = installed
        .iter()
        .map(|i| LockedPackage {
            path: i.path.clone(),
            name: i.name.clone(),
            version: i.version.clone(),
            integrity: i.integrity.clone(),
            dependencies: edges.get(&i.path).cloned().unwrap_or_default(),
            bundled: bundled_of(i),
        })
        .collect();
    packages.sort_by(|a, b| a.path.cmp(&b.path));
    NpmEntry {
        roots: lock::roots_key(&roots.iter().map(|r| r.to_string()).collect::<Vec<_>>()),
        packages,
    }
}

/// A package's bundled packages as the lock lists them: path → version.
fn bundled_of(i: &Installed) -> std::collections::BTreeMap<String, String> {
    i.inspection
        .bundled
        .iter()
        .map(|b| (b.path.clone(), b.version.clone()))
        .collect()
}

/// A locked tree is rebuilt from the same bytes, so each package's bundled
/// packages are what its lock entry lists; a listing that disagrees was
/// edited. (An entry without a listing predates it and is accepted.)
fn check_bundled(entry: &NpmEntry, installed: &[Installed]) -> Result<()> {
    for p in entry.packages.iter().filter(|p| !p.bundled.is_empty()) {
        let Some(i) = installed.iter().find(|i| i.path == p.path) else {
            continue;
        };
        let found = bundled_of(i);
        if found != p.bundled {
            let show = |m: &std::collections::BTreeMap<String, String>| {
                m.iter()
                    .map(|(k, v)| format!("{}@{}", lock::bundled_name(k), crate::redact::shown(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(Error::integrity(format!(
                "the lockfile entry for `{}@{}` lists the bundled packages [{}], but its verified tarball bundles [{}]",
                p.name,
                crate::redact::shown(&p.version),
                show(&p.bundled),
                show(&found)
            ))
            .with_hint(
                "the lockfile was edited or damaged; restore it, or remove that entry to lock again",
            ));
        }
    }
    Ok(())
}

/// Say, once, when the tree is built, what tarballs carried under
/// `node_modules/` without declaring it.
fn warn_dropped(settings: &Settings, installed: &[Installed]) {
    if settings.quiet {
        return;
    }
    for i in installed
        .iter()
        .filter(|i| !i.inspection.dropped.is_empty())
    {
        eprintln!(
            "warning: `{}@{}` ships {} that its `bundleDependencies` do not declare: not installed",
            i.name,
            i.version,
            i.inspection
                .dropped
                .iter()
                .map(|d| format!("`{}`", crate::redact::shown(d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn marker_for(digest: &str, roots: &[NpmSpec], installed: &[Installed]) -> EnvMarker {
    let mut skipped = std::collections::BTreeMap::new();
    for i in installed {
        if !i.inspection.install_code.is_empty() {
            skipped.insert(
                format!("{}@{}", i.name, i.version),
                i.inspection.install_code.clone(),
            );
        }
        for b in &i.inspection.bundled {
            if !b.install_code.is_empty() {
                skipped.insert(
                    format!(
                        "{}@{} (bundled in {}@{})",
                        b.name, b.version, i.name, i.version
                    ),
                    b.install_code.clone(),
                );
            }
        }
    }
    let roots = roots
        .iter()
        .filter_map(|r| {
            let path = format!("node_modules/{}", r.name);
            installed.iter().find(|i| i.path == path).map(|i| RootBins {
                name: r.name.to_string(),
                version: r.version.to_string(),
                path,
                bins: i.inspection.bins.clone(),
                engines_node: i.inspection.engines_node.clone(),
            })
        })
        .collect();
    EnvMarker {
        digest: digest.to_owned(),
        roots,
        skipped_install_code: skipped,
        bin_links: false,
        node: None,
    }
}

/// Said once, by the launch that built the tree: the install-time code that
/// was left out.
fn warn_install_code(settings: &Settings, marker: &EnvMarker) {
    let list = marker
        .skipped_install_code
        .iter()
        .filter_map(|(pkg, code)| {
            let code = crate::npm::inspect::run_at_install(code);
            (!code.is_empty()).then(|| format!("`{pkg}` ({})", code.join(", ")))
        })
        .collect::<Vec<_>>();
    if !list.is_empty() && !settings.quiet {
        eprintln!(
            "warning: install scripts not run (safex never runs them): {}",
            list.join(", ")
        );
    }
}

/// The bin to run, chosen as npx chooses it: the command named with `-p`; else
/// the package's only bin; else the bin named like the package without scope.
fn pick_bin(
    marker: &EnvMarker,
    roots: &[NpmSpec],
    command: Option<&str>,
) -> Result<(String, String, String)> {
    let all_bins = || {
        marker
            .roots
            .iter()
            .flat_map(|r| {
                r.bins
                    .keys()
                    .map(move |b| format!("`{b}` (from `{}`)", r.name))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(cmd) = command {
        for r in &marker.roots {
            if let Some(p) = r.bins.get(cmd) {
                return Ok((r.path.clone(), cmd.to_owned(), p.clone()));
            }
        }
        return Err(Error::usage(format!(
            "no package given with `-p` has a bin named `{}`",
            crate::redact::shown(cmd)
        ))
        .with_hint(format!("bins available: {}", none_if_empty(all_bins()))));
    }
    let root = &roots[0];
    let Some(r) = marker.roots.iter().find(|r| r.name == root.name.as_str()) else {
        return Err(Error::internal(format!(
            "the environment has no `{}`",
            root.name
        )));
    };
    // libnpmexec: one bin, or several that are all aliases of one file.
    // Started under the name npx would use: the package's own name when it
    // is one of the aliases, else the first.
    let unscoped = root.name.unscoped();
    let mut files = r.bins.values();
    if let Some(first) = files.next()
        && files.all(|p| p == first)
    {
        let name = if r.bins.contains_key(unscoped) {
            unscoped.to_owned()
        } else {
            r.bins.keys().next().cloned().unwrap_or_default()
        };
        return Ok((r.path.clone(), name, first.clone()));
    }
    if let Some(p) = r.bins.get(unscoped) {
        return Ok((r.path.clone(), unscoped.to_owned(), p.clone()));
    }
    if r.bins.is_empty() {
        return Err(
            Error::usage(format!("`{root}` has no `bin`: there is nothing to run")).with_hint(
                "check the package name; safex runs a package's executable, as npx does",
            ),
        );
    }
    Err(Error::usage(format!(
        "`{root}` has several bins and none is named `{}`",
        root.name.unscoped()
    ))
    .with_hint(format!(
        "choose one: `safex npx -p {root} <bin>`; bins: {}",
        all_bins()
    )))
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}
