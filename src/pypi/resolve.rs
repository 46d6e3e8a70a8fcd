//! PyPI resolution with PubGrub: PEP 440 versions and specifiers, PEP 508
//! markers evaluated for the chosen interpreter, extras as virtual packages,
//! `Requires-Python`, wheels only, and a conflict explained in words.
//!
//! Candidates are the versions that have a wheel compatible with this
//! interpreter. A version with only sdists (or only wheels for other
//! platforms) is never a candidate: safex never builds. When nothing in a
//! range has a usable wheel, resolution stops with an error naming the
//! package instead of PubGrub's generic "no versions".
//!
//! With the policy's cooldown on, a version is as old as the earliest upload
//! among its files (PEP 700 `upload-time`, which only JSON pages carry; HTML
//! pages leave it unknown, and `release.unknown` decides). A version younger
//! than `release.min_age` is not a candidate; an exactly pinned root that
//! young is refused.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider, DerivationTree,
    External, PackageResolutionStatistics, PubGrubError, Ranges, Reporter,
};
use tokio::runtime::Handle;

use crate::error::{Error, Kind, Result};
use crate::fetch::{BlobRequest, Expected, Fetcher};
use crate::integrity::Integrity;
use crate::policy::Cooldown;
use crate::pypi::config::PypiConfig;
use crate::pypi::index::SimpleIndex;
use crate::pypi::interpreter::Info;
use crate::pypi::metadata::{self, Metadata};
use crate::pypi::simple::IndexFile;
use crate::pypi::spec::PySpec;
use crate::pypi::tags::{Tags, WheelName, normalize};
use crate::time::{Age, format_duration, format_rfc3339, judge_root_age, parse_rfc3339};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    Root,
    Name(PackageName),
    Extra(PackageName, ExtraName),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the requested packages"),
            Pkg::Name(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// The files of one version that matter here.
#[derive(Debug, Clone, Default)]
pub struct VersionFiles {
    /// Compatible wheels, best first.
    pub(crate) usable: Vec<IndexFile>,
    /// Every wheel file of this version (any platform), for the lockfile.
    pub(crate) all_wheels: Vec<IndexFile>,
    pub has_sdist: bool,
    pub yanked: bool,
    /// `requires-python` of a wheel that fits this platform but not this Python.
    pub python_excluded: Option<String>,
    /// The earliest upload time among this version's wheels and sdists
    /// (PEP 700); `None` when the index gives none (HTML pages).
    pub published: Option<SystemTime>,
}

impl VersionFiles {
    /// Count `file`'s upload time towards the version's age.
    fn uploaded(&mut self, file: &IndexFile) {
        if let Some(t) = file.upload_time.as_deref().and_then(parse_rfc3339) {
            self.published = Some(self.published.map_or(t, |p| p.min(t)));
        }
    }
}

/// One resolved package.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: PackageName,
    pub version: Version,
    pub files: VersionFiles,
    pub dependencies: Vec<String>,
}

pub struct Provider {
    index: Arc<SimpleIndex>,
    fetcher: Arc<Fetcher>,
    rt: Handle,
    tags: Arc<Tags>,
    markers: MarkerEnvironment,
    python: Version,
    roots: Vec<PySpec>,
    projects: RefCell<HashMap<PackageName, Arc<BTreeMap<Version, VersionFiles>>>>,
    metadata: RefCell<HashMap<(PackageName, Version), Arc<Metadata>>>,
    /// Requirements seen per version (extras included), for the lock's edges.
    edges: RefCell<HashMap<(PackageName, Version), BTreeSet<String>>>,
    config: Arc<PypiConfig>,
    info: Info,
    /// Names whose likely wheel is already being fetched in the background.
    speculated: RefCell<BTreeSet<PackageName>>,
    cooldown: Cooldown,
}

impl Provider {
    /// The interpreter this resolution is for.
    pub fn info(&self) -> &Info {
        &self.info
    }

    pub(crate) fn new(
        index: Arc<SimpleIndex>,
        config: Arc<PypiConfig>,
        fetcher: Arc<Fetcher>,
        rt: Handle,
        info: &Info,
        roots: Vec<PySpec>,
    ) -> Result<Self> {
        Ok(Provider {
            info: info.clone(),
            config,
            index,
            fetcher,
            rt,
            tags: Arc::new(info.tags()),
            speculated: RefCell::default(),
            markers: info.marker_env()?,
            python: info.version(),
            roots,
            projects: RefCell::default(),
            metadata: RefCell::default(),
            edges: RefCell::default(),
            cooldown: Cooldown::off(),
        })
    }

    /// Apply the policy's release-age cooldown.
    pub fn with_cooldown(mut self, cooldown: Cooldown) -> Self {
        self.cooldown = cooldown;
        self
    }

    fn pinned(&self, name: &PackageName) -> Option<&Version> {
        self.roots
            .iter()
            .find(|r| &r.name == name)
            .map(|r| &r.version)
    }

    /// The index page of a project, grouped by version.
    pub fn project(&self, name: &PackageName) -> Result<Arc<BTreeMap<Version, VersionFiles>>> {
        if let Some(p) = self.projects.borrow().get(name) {
            return Ok(p.clone());
        }
        let files = self.rt.block_on(self.index.project(name.as_ref()))?;
        let mut by_version: BTreeMap<Version, VersionFiles> = BTreeMap::new();
        for f in files.iter() {
            // `SimpleIndex` keeps only the project's own files (see
            // `own_files`); the name is compared again so that a candidate
            // can never be another project's file, whatever the index gave.
            if let Ok(w) = WheelName::parse(&f.filename)
                && w.name == name.as_ref()
            {
                let entry = by_version.entry(w.version.clone()).or_default();
                entry.uploaded(f);
                entry.yanked |= f.yanked;
                entry.all_wheels.push(f.clone());
                let python_ok = f.requires_python.as_deref().is_none_or(|rp| {
                    pep440_rs::VersionSpecifiers::from_str(rp)
                        .map(|s| s.contains(&self.python))
                        .unwrap_or(true)
                });
                if self.tags.priority(&w).is_some() {
                    if python_ok {
                        entry.usable.push(f.clone());
                    } else {
                        entry.python_excluded = f.requires_python.clone();
                    }
                }
            } else if let Some(v) = crate::pypi::tags::sdist_version(&f.filename, name.as_ref()) {
                let entry = by_version.entry(v).or_default();
                entry.has_sdist = true;
                entry.uploaded(f);
            }
        }
        for vf in by_version.values_mut() {
            vf.usable.sort_by_key(|f| {
                WheelName::parse(&f.filename)
                    .ok()
                    .and_then(|w| self.tags.priority(&w))
                    .unwrap_or(usize::MAX)
            });
        }
        let arc = Arc::new(by_version);
        self.projects.borrow_mut().insert(name.clone(), arc.clone());
        Ok(arc)
    }

    /// Metadata of one version: the PEP 658 file if offered, else the wheel.
    fn metadata_of(&self, name: &PackageName, version: &Version) -> Result<Arc<Metadata>> {
        let key = (name.clone(), version.clone());
        if let Some(m) = self.metadata.borrow().get(&key) {
            return Ok(m.clone());
        }
        let project = self.project(name)?;
        let files = project
            .get(version)
            .ok_or_else(|| Error::registry(format!("`{name}=={version}` is not on the index")))?;
        let best = files
            .usable
            .first()
            .ok_or_else(|| no_wheel(name, version, files, &self.python))?;
        let label = format!("{name}=={version}");
        let meta = match &best.metadata {
            Some(hash) => {
                let mut url = best.url.clone();
                url.set_path(&format!("{}.metadata", best.url.path()));
                let origin = index_origin_for(&self.config, &url);
                self.fetcher
                    .hosts
                    .check_other_index(&best.filename, &url, &origin)?;
                let bytes = self.rt.block_on(self.index.get_bytes(&url))?;
                if let Some(h) = hash {
                    let expected = Integrity::from_sha256_hex(h)?;
                    let mut hasher = crate::integrity::Hasher::for_expected(Some(&expected));
                    hasher.update(&bytes);
                    if !expected.matches(&hasher.finish()) {
                        return Err(Error::integrity(format!(
                            "the metadata file of `{label}` does not match the index's hash"
                        )));
                    }
                }
                metadata::parse(&String::from_utf8_lossy(&bytes), &label)?
            }
            None => {
                let verified = self.fetch_wheel(best, None)?;
                metadata::from_wheel(verified.reader()?, &label, &self.fetcher.limits)?
            }
        };
        if normalize(&meta.name) != name.as_ref()
            || Version::from_str(&meta.version).ok().as_ref() != Some(version)
        {
            return Err(Error::unsafe_pkg(format!(
                "the index says `{label}`, but its metadata says `{}=={}`",
                crate::redact::shown(&meta.name),
                crate::redact::shown(&meta.version)
            ))
            .with_hint("the index and the package disagree; do not use this version"));
        }
        let meta = Arc::new(meta);
        self.metadata.borrow_mut().insert(key, meta.clone());
        Ok(meta)
    }

    /// Bring a wheel into the blob store, verified against the index's hash.
    pub(crate) fn fetch_wheel(
        &self,
        file: &IndexFile,
        lock_sha256: Option<&str>,
    ) -> Result<crate::fetch::Verified> {
        let (expected, source) = match (lock_sha256, &file.sha256) {
            (Some(h), _) => (Some(Integrity::from_sha256_hex(h)?), Expected::Lock),
            (None, Some(h)) => (Some(Integrity::from_sha256_hex(h)?), Expected::Registry),
            (None, None) => (None, Expected::Registry),
        };
        let origin = index_origin_for(&self.config, &file.url);
        let credential = self.config.credential_for(&file.url);
        let (verified, _) = self.rt.block_on(self.fetcher.blob(BlobRequest {
            label: &file.filename,
            url: &file.url,
            origin: &origin,
            expected: expected.as_ref(),
            source,
            credential,
        }))?;
        Ok(verified)
    }

    /// PubGrub asks for one package at a time; the network should not wait
    /// for it. For each newly seen dependency, fetch its index page and (when
    /// the index offers no PEP 658 metadata) the wheel of the version most
    /// likely to be chosen, in the background. The blob store's file lock
    /// makes the later real fetch wait for this one instead of repeating it.
    fn speculate(&self, name: &PackageName, range: &Ranges<Version>) {
        if !self.speculated.borrow_mut().insert(name.clone()) {
            return;
        }
        self.index.prefetch(name.as_ref());
        let (index, fetcher, tags, config, cooldown) = (
            self.index.clone(),
            self.fetcher.clone(),
            self.tags.clone(),
            self.config.clone(),
            self.cooldown.clone(),
        );
        let (name, range, python) = (name.clone(), range.clone(), self.python.clone());
        self.rt.spawn(async move {
            let Ok(files) = index.project(name.as_ref()).await else {
                return;
            };
            let best = files
                .iter()
                .filter(|f| !f.yanked && f.metadata.is_none())
                .filter(|f| {
                    let published = f.upload_time.as_deref().and_then(parse_rfc3339);
                    Age::of(&cooldown, published).admits(&cooldown)
                })
                .filter(|f| {
                    f.requires_python.as_deref().is_none_or(|rp| {
                        pep440_rs::VersionSpecifiers::from_str(rp)
                            .map(|s| s.contains(&python))
                            .unwrap_or(true)
                    })
                })
                .filter_map(|f| {
                    let w = WheelName::parse(&f.filename).ok()?;
                    let prio = tags.priority(&w)?;
                    (range.contains(&w.version) && !w.version.any_prerelease())
                        .then_some((w.version, prio, f))
                })
                .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            let Some((_, _, file)) = best else { return };
            let Some(expected) = file
                .sha256
                .as_deref()
                .and_then(|h| Integrity::from_sha256_hex(h).ok())
            else {
                return;
            };
            let origin = index_origin_for(&config, &file.url);
            let _ = fetcher
                .blob(BlobRequest {
                    label: &file.filename,
                    url: &file.url,
                    origin: &origin,
                    expected: Some(&expected),
                    source: Expected::Registry,
                    credential: config.credential_for(&file.url),
                })
                .await;
        });
    }

    fn requirements(
        &self,
        pkg: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>> {
        let mut deps = Constraints::default();
        match pkg {
            Pkg::Root => self.root_requirements(&mut deps),
            Pkg::Name(name) | Pkg::Extra(name, _) => {
                let meta = self.metadata_of(name, version)?;
                if let Some(why) = self.python_does_not_fit(name, version, &meta)? {
                    return Ok(Dependencies::Unavailable(why));
                }
                let extras: Vec<ExtraName> = match pkg {
                    Pkg::Extra(_, e) => vec![e.clone()],
                    _ => Vec::new(),
                };
                if let Pkg::Extra(..) = pkg {
                    deps.add(Pkg::Name(name.clone()), Ranges::singleton(version.clone()));
                }
                self.declared_requirements(name, version, &meta, &extras, &mut deps)?;
            }
        }
        Ok(Dependencies::Available(
            deps.0.into_iter().collect::<DependencyConstraints<_, _>>(),
        ))
    }

    /// The root's: each requested package at its pinned version, and each
    /// of its extras.
    fn root_requirements(&self, deps: &mut Constraints) {
        for r in &self.roots {
            deps.add(
                Pkg::Name(r.name.clone()),
                Ranges::singleton(r.version.clone()),
            );
            for e in &r.extras {
                deps.add(
                    Pkg::Extra(r.name.clone(), e.clone()),
                    Ranges::singleton(r.version.clone()),
                );
            }
        }
    }

    /// `Requires-Python` against this Python: a pinned root that does not
    /// fit is an error that says which Python it needs; any other version
    /// that does not fit is unavailable (`Some(why)`).
    fn python_does_not_fit(
        &self,
        name: &PackageName,
        version: &Version,
        meta: &Metadata,
    ) -> Result<Option<String>> {
        let Some(rp) = &meta.requires_python else {
            return Ok(None);
        };
        if rp.contains(&self.python) {
            return Ok(None);
        }
        if self.pinned(name) == Some(version) {
            return Err(Error::new(
                Kind::Runtime,
                format!(
                    "`{name}=={version}` requires Python `{rp}`, and this Python is {}",
                    self.python
                ),
            )
            .with_hint("pass a Python that fits with `--python`; safex never downloads one")
            .needs(crate::error::Need::Python(rp.to_string())));
        }
        Ok(Some(format!("it requires Python {rp}")))
    }

    /// `Requires-Dist` whose markers hold here (with `extras` active), each
    /// recorded as an edge and looked up ahead; a URL requirement is
    /// refused.
    fn declared_requirements(
        &self,
        name: &PackageName,
        version: &Version,
        meta: &Metadata,
        extras: &[ExtraName],
        deps: &mut Constraints,
    ) -> Result<()> {
        for req in &meta.requires_dist {
            if !req.marker.evaluate(&self.markers, extras) {
                continue;
            }
            if &req.name == name && req.extras.is_empty() {
                continue;
            }
            let range: Ranges<Version> = match &req.version_or_url {
                None => Ranges::full(),
                Some(VersionOrUrl::VersionSpecifier(s)) => Ranges::from(s.clone()),
                Some(VersionOrUrl::Url(u)) => {
                    return Err(Error::policy(format!(
                        "`{name}=={version}` depends on `{}` at the URL `{u}`: not an index package, so no hash pins it",
                        req.name
                    ))
                    .with_hint("safex installs only index packages"));
                }
            };
            self.edges
                .borrow_mut()
                .entry((name.clone(), version.clone()))
                .or_default()
                .insert(req.name.to_string());
            self.speculate(&req.name, &range);
            deps.add(Pkg::Name(req.name.clone()), range.clone());
            for e in &req.extras {
                deps.add(Pkg::Extra(req.name.clone(), e.clone()), range.clone());
            }
        }
        Ok(())
    }
}

/// One package's dependencies as PubGrub takes them: a package named twice
/// gets the intersection of its ranges.
#[derive(Default)]
struct Constraints(BTreeMap<Pkg, Ranges<Version>>);

impl Constraints {
    fn add(&mut self, p: Pkg, r: Ranges<Version>) {
        let merged = match self.0.get(&p) {
            Some(existing) => existing.intersection(&r),
            None => r,
        };
        self.0.insert(p, merged);
    }
}

/// The index a file URL must come from: the one whose page listed it.
pub(crate) fn index_origin_for(config: &PypiConfig, _url: &url::Url) -> url::Url {
    // Every page safex reads comes from the one configured index, so every
    // file it lists is that index's: a file on an extra index's origin is
    // then refused by the fetcher (`FileHosts::other_indexes`), never taken
    // as that index's own.
    config
        .index
        .as_ref()
        .map(|(u, _)| u.url().clone())
        .unwrap_or_else(|| url::Url::parse("https://invalid.invalid/").expect("static URL"))
}

fn no_wheel(
    name: &PackageName,
    version: &Version,
    files: &VersionFiles,
    python: &Version,
) -> Error {
    if let Some(rp) = &files.python_excluded {
        return Error::new(
            Kind::Runtime,
            format!(
                "`{name}=={version}` requires Python `{}`, and this Python is {python}",
                crate::redact::shown(rp)
            ),
        )
        .with_hint("pass a Python that fits with `--python`; safex never downloads one")
        .needs(crate::error::Need::Python(rp.clone()));
    }
    let what = if files.all_wheels.is_empty() && files.has_sdist {
        "has only a source distribution"
    } else if files.all_wheels.is_empty() {
        "has no files"
    } else {
        "has no wheel for this Python and platform"
    };
    Error::policy(format!(
        "`{name}=={version}` {what}; safex installs wheels only and no build backend will run"
    ))
    .with_hint("ask for a wheel to be published to your index, or choose a version that has one")
}

impl DependencyProvider for Provider {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Priority = u32;
    type Err = Error;

    /// Exact pins first, then the packages that conflicted most.
    fn prioritize(
        &self,
        _package: &Pkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> u32 {
        let exact = u32::from(range.as_singleton().is_some());
        exact * 1_000_000 + stats.conflict_count()
    }

    fn choose_version(&self, package: &Pkg, range: &Ranges<Version>) -> Result<Option<Version>> {
        let name = match package {
            Pkg::Root => return Ok(Some(Version::new([0]))),
            Pkg::Name(n) | Pkg::Extra(n, _) => n,
        };
        let project = self.project(name)?;
        let pinned = self.pinned(name);
        let c = &self.cooldown;
        if let Some(p) = pinned
            && range.contains(p)
            && let Some(files) = project.get(p)
        {
            check_root_age(name, p, files, &project, c)?;
        }
        if let Some(v) = pick_version(&project, range, pinned, c) {
            return Ok(Some(v.clone()));
        }
        // Held back by the cooldown: let PubGrub try other versions of the
        // dependents; `resolve` names the cooldown if nothing works.
        if !held_back(&project, range, c).is_empty() {
            return Ok(None);
        }
        if let Some((v, f)) = project.iter().rev().find(|(v, _)| range.contains(v))
            && f.usable.is_empty()
        {
            return Err(no_wheel(name, v, f, &self.python));
        }
        Ok(None)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>> {
        self.requirements(package, version)
    }
}

/// Every "no versions of `p` in `range`" that a failed resolution rests on.
fn no_versions(
    tree: &DerivationTree<Pkg, Ranges<Version>, String>,
    out: &mut Vec<(PackageName, Ranges<Version>)>,
) {
    match tree {
        DerivationTree::External(External::NoVersions(Pkg::Name(n) | Pkg::Extra(n, _), r)) => {
            out.push((n.clone(), r.clone()));
        }
        DerivationTree::External(_) => {}
        DerivationTree::Derived(d) => {
            no_versions(&d.cause1, out);
            no_versions(&d.cause2, out);
        }
    }
}

/// When a failed resolution ran out of versions that the cooldown held back,
/// the cooldown is the reason to report (exit 3), not a conflict.
fn cooldown_refusal(
    provider: &Provider,
    empty: &[(PackageName, Ranges<Version>)],
    report: &str,
) -> Result<Option<Error>> {
    if provider.cooldown.is_off() {
        return Ok(None);
    }
    for (name, range) in empty {
        let project = provider.project(name)?;
        if let Some(e) = range_too_young(name, range, &project, &provider.cooldown, report) {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// An exact public pin (`==1.0.0`, root or dependency) that found no version
/// while the index has `1.0.0+label`: say so, and how to name it.
///
/// PEP 440 lets a public `==1.0.0` match a candidate's local label, so pip
/// and uv would install `1.0.0+evil` for it. safex does not (issue 11, see
/// `docs/pypi-contract.md`): a local version is another build of the
/// project, made by whoever published it, under a name every review, lock
/// and deny list reads as `1.0.0`. It is taken only when named exactly
/// (`==1.0.0+cpu`). The pin's range is PubGrub's singleton of the public
/// version, which a local version is not in; this only explains the result.
fn local_refusal(
    provider: &Provider,
    empty: &[(PackageName, Ranges<Version>)],
) -> Result<Option<Error>> {
    for (name, range) in empty {
        let Some(pin) = range.as_singleton() else {
            continue;
        };
        if pin.is_local() {
            continue;
        }
        let project = provider.project(name)?;
        let locals: Vec<String> = project
            .keys()
            .filter(|v| v.is_local() && &(*v).clone().without_local() == pin)
            .map(|v| format!("`{name}=={v}`"))
            .collect();
        if let Some(first) = locals.first() {
            let pinned_root = provider.pinned(name) == Some(pin);
            let how = if pinned_root {
                format!("launch {first} to take that one")
            } else {
                format!(
                    "a dependency asks for `{name}=={pin}`; only the dependency's maintainer can ask for {first}"
                )
            };
            return Ok(Some(
                Error::registry(format!(
                    "`{name}=={pin}` is not on the index; it has the local version{} {}, which `=={pin}` never selects",
                    if locals.len() == 1 { "" } else { "s" },
                    locals.join(", ")
                ))
                .with_hint(format!(
                    "a local version (`+label`) is another build than the public one, and is taken only when named exactly: {how}"
                )),
            ));
        }
    }
    Ok(None)
}

/// May the cooldown pick a version with these files?
fn admitted(c: &Cooldown, files: &VersionFiles) -> bool {
    Age::of(c, files.published).admits(c)
}

/// The version to try in `range`: the newest with a usable wheel that is not
/// yanked (unless pinned) and is old enough; pre-releases only when nothing
/// else fits (as pip does) or when pinned.
fn pick_version<'a>(
    project: &'a BTreeMap<Version, VersionFiles>,
    range: &Ranges<Version>,
    pinned: Option<&Version>,
    c: &Cooldown,
) -> Option<&'a Version> {
    let candidates: Vec<(&Version, &VersionFiles)> = project
        .iter()
        .rev()
        .filter(|(v, _)| range.contains(v))
        .collect();
    let usable = |v: &Version, f: &VersionFiles| {
        !f.usable.is_empty() && (!f.yanked || pinned == Some(v)) && admitted(c, f)
    };
    candidates
        .iter()
        .find(|(v, f)| !v.any_prerelease() && usable(v, f))
        .or_else(|| candidates.iter().find(|(v, f)| usable(v, f)))
        .map(|(v, _)| *v)
}

/// Versions in `range` with a usable wheel that the cooldown does not admit.
fn held_back<'a>(
    project: &'a BTreeMap<Version, VersionFiles>,
    range: &Ranges<Version>,
    c: &Cooldown,
) -> Vec<(&'a Version, &'a VersionFiles)> {
    project
        .iter()
        .filter(|(v, f)| range.contains(v) && !f.usable.is_empty() && !admitted(c, f))
        .collect()
}

/// An exactly pinned root must itself be old enough.
fn check_root_age(
    name: &PackageName,
    version: &Version,
    files: &VersionFiles,
    project: &BTreeMap<Version, VersionFiles>,
    c: &Cooldown,
) -> Result<()> {
    // The newest old-enough release below the pin, else the newest.
    let older = || {
        let fine = |v: &Version, f: &VersionFiles| {
            !v.any_prerelease() && !f.usable.is_empty() && !f.yanked && admitted(c, f)
        };
        project
            .iter()
            .rev()
            .find(|(v, f)| *v < version && fine(v, f))
            .or_else(|| project.iter().rev().find(|(v, f)| fine(v, f)))
            .map(|(v, _)| format!("{name}=={v}"))
    };
    judge_root_age(
        c,
        &format!("{name}=={version}"),
        files.published,
        "the index",
        "upload times come only in JSON index pages (PEP 700 `upload-time`); use an index that serves them, or ask an administrator about `release.unknown`",
        older,
    )
}

/// The refusal when every fitting version of `name` in `range` is held back
/// by the cooldown; `None` when something else emptied the range.
fn range_too_young(
    name: &PackageName,
    range: &Ranges<Version>,
    project: &BTreeMap<Version, VersionFiles>,
    c: &Cooldown,
    report: &str,
) -> Option<Error> {
    let held = held_back(project, range, c);
    if held.is_empty() {
        return None;
    }
    let mut hint = Vec::new();
    let first = held
        .iter()
        .filter_map(|(v, f)| match Age::of(c, f.published) {
            Age::Young { eligible_on, .. } => Some((eligible_on, *v)),
            _ => None,
        })
        .min();
    if let Some((on, v)) = first {
        hint.push(format!(
            "`{name}=={v}` is the first to become eligible, on {}",
            format_rfc3339(on)
        ));
    }
    let unknown = held
        .iter()
        .filter(|(_, f)| Age::of(c, f.published) == Age::Unknown)
        .count();
    if unknown > 0 {
        hint.push(format!(
            "{} no upload time on the index, and `release.unknown` is `refuse`",
            fitting_versions_have(unknown)
        ));
    }
    hint.push("wait, or pin older versions of the packages that need it".to_owned());
    Some(
        Error::policy(format!(
            "no version of `{name}` that satisfies `{range}` is older than the policy's `release.min_age` of {}:\n{report}",
            format_duration(c.min_age)
        ))
        .with_hint(hint.join("; ")),
    )
}

fn fitting_versions_have(n: usize) -> String {
    if n == 1 {
        "1 fitting version has".to_owned()
    } else {
        format!("{n} fitting versions have")
    }
}

/// Resolve `roots` for this interpreter. Runs PubGrub on the calling
/// (blocking) thread; network I/O goes through `rt`.
pub fn resolve(provider: &Provider) -> Result<Vec<Resolved>> {
    // Prefetches are spawned onto the runtime from this (non-async) thread.
    let _enter = provider.rt.enter();
    for r in &provider.roots {
        provider.speculate(&r.name, &Ranges::singleton(r.version.clone()));
    }
    let solution = match pubgrub::resolve(provider, Pkg::Root, Version::new([0])) {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(tree)) => {
            let mut tree = tree;
            let mut empty = Vec::new();
            no_versions(&tree, &mut empty);
            tree.collapse_no_versions();
            // The virtual root has a version only because PubGrub needs one.
            let report = DefaultStringReporter::report(&tree)
                .replace(&format!("{} 0", Pkg::Root), &Pkg::Root.to_string());
            if let Some(e) = cooldown_refusal(provider, &empty, &report)? {
                return Err(e);
            }
            if let Some(e) = local_refusal(provider, &empty)? {
                return Err(e);
            }
            return Err(Error::registry(format!(
                "these packages cannot be installed together:\n{report}"
            ))
            .with_hint("pin versions that agree, or ask the maintainers to widen their ranges"));
        }
        Err(PubGrubError::ErrorChoosingVersion { source, .. })
        | Err(PubGrubError::ErrorRetrievingDependencies { source, .. }) => return Err(source),
        Err(e) => return Err(Error::internal(format!("resolver failed: {e}"))),
    };
    let mut out = Vec::new();
    for (pkg, version) in solution {
        let Pkg::Name(name) = pkg else { continue };
        let project = provider.project(&name)?;
        let files = project.get(&version).cloned().unwrap_or_default();
        let dependencies = provider
            .edges
            .borrow()
            .get(&(name.clone(), version.clone()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        out.push(Resolved {
            name,
            version,
            files,
            dependencies,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::UnknownAge;

    const DAY: u64 = 86_400;

    fn file(name: &str, uploaded: Option<&str>) -> IndexFile {
        IndexFile {
            filename: name.to_owned(),
            url: url::Url::parse(&format!("https://files.example/{name}")).unwrap(),
            sha256: None,
            requires_python: None,
            yanked: false,
            metadata: None,
            upload_time: uploaded.map(str::to_owned),
        }
    }

    /// Versions of `pkg`, each with one usable wheel uploaded at the given
    /// time (PEP 700 form) or at an unknown time.
    fn project(versions: &[(&str, Option<&str>)]) -> BTreeMap<Version, VersionFiles> {
        versions
            .iter()
            .map(|(v, t)| {
                let wheel = file(&format!("pkg-{v}-py3-none-any.whl"), *t);
                let mut files = VersionFiles::default();
                files.uploaded(&wheel);
                files.usable.push(wheel.clone());
                files.all_wheels.push(wheel);
                (Version::from_str(v).unwrap(), files)
            })
            .collect()
    }

    /// "Now" is 2025-09-15T00:00:00Z; a 7-day cooldown admits what was
    /// uploaded by 2025-09-08T00:00:00Z.
    fn week(unknown: UnknownAge) -> Cooldown {
        Cooldown {
            min_age: Duration::from_secs(7 * DAY),
            unknown,
            now: parse_rfc3339("2025-09-15T00:00:00Z").unwrap(),
        }
    }

    fn sample() -> BTreeMap<Version, VersionFiles> {
        project(&[
            ("1.0.0", Some("2024-01-01T00:00:00.000000Z")),
            ("1.1.0", None),
            ("1.2.0", Some("2025-09-08T00:00:00.000000Z")),
            ("1.3.0", Some("2025-09-10T00:00:00.000000Z")),
            ("2.0.0rc1", Some("2025-08-01T00:00:00Z")),
            ("2.0.0rc2", Some("2025-09-14T00:00:00Z")),
        ])
    }

    fn range(spec: &str) -> Ranges<Version> {
        Ranges::from(pep440_rs::VersionSpecifiers::from_str(spec).unwrap())
    }

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    #[test]
    fn a_version_is_as_old_as_its_earliest_file() {
        let mut files = VersionFiles::default();
        assert_eq!(files.published, None);
        files.uploaded(&file("pkg-1.0.tar.gz", Some("2025-09-10T00:00:00Z")));
        files.uploaded(&file("pkg-1.0-py3-none-any.whl", None));
        files.uploaded(&file("pkg-1.0-cp312-abi3-any.whl", Some("not a time")));
        files.uploaded(&file(
            "pkg-1.0-py2-none-any.whl",
            Some("2025-09-01T00:00:00.123456Z"),
        ));
        files.uploaded(&file(
            "pkg-1.0-py4-none-any.whl",
            Some("2025-09-12T00:00:00Z"),
        ));
        assert_eq!(
            files.published,
            parse_rfc3339("2025-09-01T00:00:00.123456Z")
        );
    }

    #[test]
    fn cooldown_passes_over_young_versions() {
        let p = sample();
        let c = week(UnknownAge::Allow);
        let pick = |r: &str, c: &Cooldown| pick_version(&p, &range(r), None, c).cloned();
        assert_eq!(pick(">=1", &c), Some(v("1.2.0")));
        assert_eq!(pick(">=1", &Cooldown::off()), Some(v("1.3.0")));
        assert_eq!(pick("<1.2", &c), Some(v("1.1.0")));
        assert_eq!(pick("<1.2", &week(UnknownAge::Refuse)), Some(v("1.0.0")));
        assert_eq!(pick(">=1.3,<1.4", &c), None);
        // Pre-releases only when no release fits, and only old enough ones.
        assert_eq!(pick(">=1.3", &Cooldown::off()), Some(v("1.3.0")));
        assert_eq!(pick(">=1.3", &c), Some(v("2.0.0rc1")));
        assert_eq!(pick(">=2.0.0rc1", &c), Some(v("2.0.0rc1")));
        assert_eq!(pick(">=2.0.0rc1", &Cooldown::off()), Some(v("2.0.0rc2")));

        let held: Vec<&Version> = held_back(&p, &range(">=1.1"), &week(UnknownAge::Refuse))
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(held, [&v("1.1.0"), &v("1.3.0"), &v("2.0.0rc2")]);
        assert!(held_back(&p, &range(">=1"), &Cooldown::off()).is_empty());
    }

    #[test]
    fn cooldown_refuses_a_young_pinned_root() {
        let p = sample();
        let name = PackageName::from_str("pkg").unwrap();
        let c = week(UnknownAge::Allow);
        let check = |ver: &str, c: &Cooldown| {
            let ver = v(ver);
            check_root_age(&name, &ver, &p[&ver], &p, c)
        };
        let e = check("1.3.0", &c).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.to_string(),
            "error: `pkg==1.3.0` was published 2025-09-10T00:00:00Z, younger than the policy's `release.min_age` of 7d\n\
             hint: it becomes eligible on 2025-09-17T00:00:00Z; until then pin an older version such as `pkg==1.2.0`"
        );
        assert!(check("1.2.0", &c).is_ok());
        assert!(check("1.1.0", &c).is_ok());
        assert!(check("1.3.0", &Cooldown::off()).is_ok());
        let e = check("1.1.0", &week(UnknownAge::Refuse)).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.message
                .starts_with("the index does not say when `pkg==1.1.0` was published"),
            "{}",
            e.message
        );
        // Nothing older is old enough: no pin to suggest.
        let fresh = project(&[("0.1.0", Some("2025-09-14T00:00:00Z"))]);
        let e = check_root_age(&name, &v("0.1.0"), &fresh[&v("0.1.0")], &fresh, &c).unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("it becomes eligible on 2025-09-21T00:00:00Z; no other version is old enough yet")
        );
    }

    #[test]
    fn cooldown_names_package_range_and_age_when_nothing_fits() {
        let p = sample();
        let name = PackageName::from_str("pkg").unwrap();
        let c = week(UnknownAge::Refuse);
        let e = range_too_young(&name, &range(">=1.1"), &p, &c, "REPORT").unwrap();
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.message
                .starts_with("no version of `pkg` that satisfies `")
        );
        assert!(
            e.message
                .ends_with("is older than the policy's `release.min_age` of 7d:\nREPORT"),
            "{}",
            e.message
        );
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "`pkg==1.3.0` is the first to become eligible, on 2025-09-17T00:00:00Z; \
                 1 fitting version has no upload time on the index, and `release.unknown` is `refuse`; \
                 wait, or pin older versions of the packages that need it"
            )
        );
        // Nothing held back: the range was empty for another reason.
        assert!(range_too_young(&name, &range(">=3"), &p, &c, "").is_none());
        assert!(range_too_young(&name, &range(">=1"), &p, &Cooldown::off(), "").is_none());
    }
}
