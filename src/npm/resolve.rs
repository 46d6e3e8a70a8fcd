//! npm's resolution, as npm 7+ does it for `npx`: the roots go to the top of
//! `node_modules`; every dependency is satisfied by the nearest package of that
//! name up the tree if its version fits, else the best version is placed as
//! high as it can go without changing what any already-resolved dependent
//! sees (hoisting, deduplication). Peer dependencies are placed beside their
//! dependent (npm 7+ installs them); optional dependencies that fail or do
//! not fit this platform are skipped; bundled dependencies come from the
//! tarball and are not resolved. The result is the layout Node's own
//! module resolution walks (`docs/architecture.md`).
//!
//! Each placement is final, so it is sent at once to the fetcher: archives
//! download while the rest of the tree is still being resolved.
//!
//! With the policy's cooldown on, a version published less than
//! `release.min_age` ago is passed over as if it were not yet on the
//! registry (npm's own `--before` works the same way); an exactly pinned root
//! that young is refused.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use nodejs_semver::{Range, Version};
use tokio::sync::mpsc::UnboundedSender;
use url::Url;

use crate::ecosystem::Ecosystem;
use crate::error::{Error, Result};
use crate::fetch::{Expected, Fetcher};
use crate::integrity::Integrity;
use crate::npm::config::NpmConfig;
use crate::npm::registry::{Packument, Packuments, VersionMeta};
use crate::npm::spec::{DepSpec, NpmName, NpmSpec, range_admits};
use crate::policy::{Cooldown, Policy};
use crate::redact::shown;
use crate::time::{Age, format_duration, format_rfc3339, judge_root_age};

/// A package placed in the tree, ready to fetch.
#[derive(Debug, Clone)]
pub struct Placed {
    pub path: String,
    pub name: NpmName,
    pub version: String,
    pub url: Url,
    pub registry: Url,
    pub expected: Integrity,
    pub source: Expected,
}

#[derive(Debug)]
pub struct Node {
    pub folder: String,
    pub name: NpmName,
    pub version: String,
    pub parent: usize,
    pub path: String,
    pub children: BTreeMap<String, usize>,
    /// Dependencies this node has resolved, by folder name, with their specs.
    pub edges: Vec<(String, DepSpec)>,
    meta: Option<Arc<VersionMeta>>,
}

impl Node {
    /// The registry metadata of this package (`None` for the virtual root).
    pub fn meta(&self) -> Option<&VersionMeta> {
        self.meta.as_deref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DepKind {
    Prod,
    Optional,
    Peer,
    PeerOptional,
}

pub struct Resolver {
    packuments: Arc<Packuments>,
    npm: Arc<NpmConfig>,
    pub nodes: Vec<Node>,
    tx: UnboundedSender<Placed>,
    pub warnings: Vec<String>,
    cooldown: Cooldown,
    ahead: Option<Ahead>,
}

/// Tarballs fetched ahead of placement (see [`Resolver::with_tarballs_ahead`]).
struct Ahead {
    fetcher: Arc<Fetcher>,
    policy: Arc<Policy>,
    /// `name@version` already started, so each is fetched once.
    started: Arc<Mutex<HashSet<String>>>,
}

impl Resolver {
    pub fn new(
        packuments: Arc<Packuments>,
        npm: Arc<NpmConfig>,
        tx: UnboundedSender<Placed>,
    ) -> Self {
        let root = Node {
            folder: String::new(),
            name: NpmName::parse_legacy("root").expect("static name"),
            version: String::new(),
            parent: 0,
            path: String::new(),
            children: BTreeMap::new(),
            edges: Vec::new(),
            meta: None,
        };
        Resolver {
            packuments,
            npm,
            nodes: vec![root],
            tx,
            warnings: Vec::new(),
            cooldown: Cooldown::off(),
            ahead: None,
        }
    }

    /// Fetch, while the tree is still being resolved, the tarball of the
    /// version each placed package's dependency will most likely get (the
    /// one [`Self::choose`] picks, when no placed version fits already), so
    /// downloads overlap resolution instead of following it. Only regular
    /// dependencies, only versions the policy allows (checked before a byte
    /// is fetched), only for their platform, and only without a cooldown;
    /// a fetched tarball is verified against the registry's hash like any
    /// other and lands in the blob store, nothing is unpacked. A wrong guess
    /// costs one tarball's download.
    pub fn with_tarballs_ahead(mut self, fetcher: Arc<Fetcher>, policy: Arc<Policy>) -> Self {
        if self.cooldown.is_off() {
            self.ahead = Some(Ahead {
                fetcher,
                policy,
                started: Arc::new(Mutex::new(HashSet::new())),
            });
        }
        self
    }

    fn fetch_ahead(&self, folder: &str, raw: &str) {
        let Some(ahead) = &self.ahead else { return };
        let Some((name, DepSpec::Range(range))) = DepSpec::target(folder, raw) else {
            return;
        };
        // A placed version that fits is most likely reused: nothing to fetch.
        if self.nodes.iter().any(|n| {
            n.name == name && Version::parse(&n.version).is_ok_and(|v| range_admits(&range, &v))
        }) {
            return;
        }
        let packuments = self.packuments.clone();
        let npm = self.npm.clone();
        let (fetcher, policy, started) = (
            ahead.fetcher.clone(),
            ahead.policy.clone(),
            ahead.started.clone(),
        );
        tokio::spawn(async move {
            let Ok(p) = packuments.get(&name).await else {
                return;
            };
            let Some(version) = pick_in_range(&p, &range, &Cooldown::off()) else {
                return;
            };
            let label = format!("{name}@{version}");
            let Some(meta) = p.versions.get(&version) else {
                return;
            };
            if !platform_ok(meta)
                || policy
                    .check_package(Ecosystem::Npm, name.as_str(), &version)
                    .is_err()
                || !started
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(label.clone())
            {
                return;
            }
            let (Ok(registry), Ok(expected), Ok(url)) = (
                npm.registry_for(name.as_str()).map(|r| r.url()),
                declared_integrity(meta, &label),
                Url::parse(&meta.dist.tarball),
            ) else {
                return;
            };
            // A failure here is the installer's to meet and report, if the
            // guess was right; a wrong guess needs no report.
            let _ = fetcher
                .npm_tarball(&label, &url, registry, &expected, Expected::Registry)
                .await;
        });
    }

    /// Apply the policy's release-age cooldown. Ages come from the packument's
    /// `time`, which corgi documents lack: when the cooldown is on and the
    /// packuments given to `new` are corgi ones, full documents are fetched
    /// instead (`Packuments::with_times`).
    pub fn with_cooldown(mut self, cooldown: Cooldown) -> Self {
        if !cooldown.is_off() {
            self.packuments = self.packuments.with_times();
        }
        self.cooldown = cooldown;
        self
    }

    /// Resolve the whole tree under `roots` (exact pins).
    pub async fn resolve(&mut self, roots: &[NpmSpec]) -> Result<()> {
        for r in roots {
            self.packuments.prefetch(&r.name);
        }
        for r in roots {
            let p = self.packuments.get(&r.name).await?;
            let version = r.version.to_string();
            let Some(meta) = p.versions.get(&version) else {
                let latest = p
                    .dist_tags
                    .get("latest")
                    .map(String::as_str)
                    .unwrap_or("none");
                // `1.0.0+x` is another version than `1.0.0` (see
                // `spec::range_admits`): say so, and how to name it.
                let with_build = p.versions.keys().find(|k| {
                    semver::Version::parse(k).is_ok_and(|v| {
                        !v.build.is_empty()
                            && v.major == r.version.major
                            && v.minor == r.version.minor
                            && v.patch == r.version.patch
                            && v.pre == r.version.pre
                    })
                });
                let hint = match with_build {
                    Some(b) => format!(
                        "the registry has `{}@{}`, with build metadata: that is another version, never taken for `{version}`; launch `{}@{}` only if you mean exactly that one",
                        r.name,
                        shown(b),
                        r.name,
                        shown(b)
                    ),
                    None => format!("the current version is `{}@{latest}`", r.name),
                };
                return Err(Error::registry(format!(
                    "`{}` has no version `{version}` on the registry",
                    r.name
                ))
                .with_hint(hint));
            };
            check_root_age(&p, &r.name, &version, &self.cooldown)?;
            let meta = Arc::new(meta.clone());
            let idx = self.add_node(0, r.name.as_str(), r.name.clone(), meta)?;
            let spec = DepSpec::Range(
                Range::parse(&version)
                    .map_err(|_| Error::usage(format!("`{r}` is not a version npm can match")))?,
            );
            self.nodes[0].edges.push((r.name.as_str().to_owned(), spec));
            let _ = idx;
        }
        let mut queue: VecDeque<usize> = (1..self.nodes.len()).collect();
        while let Some(n) = queue.pop_front() {
            for (folder, raw, kind) in self.deps_of(n) {
                if let Some(new) = self.resolve_edge(n, &folder, &raw, kind).await? {
                    queue.push_back(new);
                }
            }
        }
        Ok(())
    }

    /// The dependencies of node `n`, in npm's precedence (optional over
    /// regular), bundled ones left out, sorted by name for a stable tree.
    fn deps_of(&self, n: usize) -> Vec<(String, String, DepKind)> {
        let Some(meta) = &self.nodes[n].meta else {
            return Vec::new();
        };
        let bundled = meta.bundled();
        let mut deps: BTreeMap<String, (String, DepKind)> = BTreeMap::new();
        for (k, v) in &meta.peer_dependencies {
            let kind = if meta.peer_optional(k) {
                DepKind::PeerOptional
            } else {
                DepKind::Peer
            };
            deps.insert(k.clone(), (v.clone(), kind));
        }
        for (k, v) in &meta.dependencies {
            deps.insert(k.clone(), (v.clone(), DepKind::Prod));
        }
        for (k, v) in &meta.optional_dependencies {
            deps.insert(k.clone(), (v.clone(), DepKind::Optional));
        }
        deps.into_iter()
            .filter(|(k, _)| !bundled.contains(k))
            .map(|(k, (v, kind))| (k, v, kind))
            .collect()
    }

    fn label(&self, n: usize) -> String {
        let node = &self.nodes[n];
        format!("{}@{}", node.name, node.version)
    }

    async fn resolve_edge(
        &mut self,
        n: usize,
        folder: &str,
        raw: &str,
        kind: DepKind,
    ) -> Result<Option<usize>> {
        let optional = matches!(kind, DepKind::Optional | DepKind::PeerOptional);
        let dependent = self.label(n);
        let folder_name = match NpmName::parse_legacy(folder) {
            Ok(f) => f,
            Err(_) if optional => return Ok(None),
            Err(e) => {
                return Err(Error::unsafe_pkg(format!(
                    "`{dependent}` depends on `{}`, which is not a valid package name",
                    shown(folder)
                ))
                .with_hint(e.message));
            }
        };
        let spec = match DepSpec::parse(raw) {
            Ok(s) => s,
            Err(_) if optional => return Ok(None),
            Err(why) => {
                return Err(Error::policy(format!(
                    "`{dependent}` depends on `{folder}` as {why}: not a registry package, so no hash can pin it"
                ))
                .with_hint("safex installs only registry packages; ask the maintainer to publish that dependency"));
            }
        };
        let (real_name, range_spec) = match &spec {
            DepSpec::Alias(name, inner) => (name.clone(), (**inner).clone()),
            other => (folder_name.clone(), other.clone()),
        };
        let is_peer = matches!(kind, DepKind::Peer | DepKind::PeerOptional);
        let start = if is_peer { self.nodes[n].parent } else { n };

        // Already satisfied by what Node would find from here?
        if let Some(found) = self.resolve_from(start, folder) {
            if self.satisfies(found, &real_name, &range_spec).await? {
                self.nodes[n].edges.push((folder.to_owned(), spec));
                return Ok(None);
            }
        } else if kind == DepKind::PeerOptional {
            return Ok(None);
        }

        let chosen = match self.choose(&real_name, &range_spec).await {
            Ok(c) => c,
            Err(_) if optional => return Ok(None),
            Err(e) => {
                return Err(Error {
                    message: format!(
                        "{} (needed by `{dependent}` as `{folder}@{}`)",
                        e.message,
                        shown(raw)
                    ),
                    ..e
                });
            }
        };
        if optional && !platform_ok(&chosen) {
            return Ok(None);
        }
        let version = chosen.version.clone();
        match self.place(start, folder, &real_name, &version) {
            Placement::Reuse => {
                self.nodes[n].edges.push((folder.to_owned(), spec));
                Ok(None)
            }
            Placement::At(level) => {
                let idx = self.add_node(level, folder, real_name, chosen)?;
                self.nodes[n].edges.push((folder.to_owned(), spec));
                Ok(Some(idx))
            }
            Placement::Conflict if is_peer => {
                self.warnings.push(format!(
                    "peer dependency `{folder}@{}` of `{dependent}` conflicts with another version in the tree; left as is",
                    shown(raw)
                ));
                Ok(None)
            }
            Placement::Conflict if optional => Ok(None),
            Placement::Conflict => Err(Error::registry(format!(
                "cannot place `{folder}@{version}` for `{dependent}`: another version occupies its place"
            ))
            .with_hint("this tree needs a layout safex does not build yet; please report it")),
        }
    }

    fn add_node(
        &mut self,
        parent: usize,
        folder: &str,
        name: NpmName,
        meta: Arc<VersionMeta>,
    ) -> Result<usize> {
        let path = if parent == 0 {
            format!("node_modules/{folder}")
        } else {
            format!("{}/node_modules/{folder}", self.nodes[parent].path)
        };
        let version = meta.version.clone();
        let label = format!("{name}@{version}");
        let registry = self.npm.registry_for(name.as_str())?.url().clone();
        let expected = declared_integrity(&meta, &label)?;
        let url = Url::parse(&meta.dist.tarball).map_err(|_| {
            Error::registry(format!(
                "the registry gives `{label}` a tarball URL that is not a URL: `{}`",
                shown(&meta.dist.tarball)
            ))
        })?;
        let idx = self.nodes.len();
        self.nodes.push(Node {
            folder: folder.to_owned(),
            name: name.clone(),
            version: version.clone(),
            parent,
            path: path.clone(),
            children: BTreeMap::new(),
            edges: Vec::new(),
            meta: Some(meta.clone()),
        });
        self.nodes[parent].children.insert(folder.to_owned(), idx);
        for (dep, raw, kind) in self.deps_of(idx) {
            if kind == DepKind::Prod {
                self.fetch_ahead(&dep, &raw);
            }
            if let Some((target, _)) = DepSpec::target(&dep, &raw) {
                self.packuments.prefetch(&target);
            }
        }
        let _ = self.tx.send(Placed {
            path,
            name,
            version,
            url,
            registry,
            expected,
            source: Expected::Registry,
        });
        Ok(idx)
    }

    /// What Node's `require(folder)` finds from inside node `from`.
    fn resolve_from(&self, from: usize, folder: &str) -> Option<usize> {
        let mut cur = from;
        loop {
            if let Some(&c) = self.nodes[cur].children.get(folder) {
                return Some(c);
            }
            if cur == 0 {
                return None;
            }
            cur = self.nodes[cur].parent;
        }
    }

    async fn satisfies(&self, idx: usize, name: &NpmName, spec: &DepSpec) -> Result<bool> {
        let node = &self.nodes[idx];
        if &node.name != name {
            return Ok(false);
        }
        let Ok(v) = Version::parse(&node.version) else {
            return Ok(false);
        };
        Ok(match spec {
            DepSpec::Range(r) => range_admits(r, &v),
            DepSpec::Tag(t) => {
                let p = self.packuments.get(name).await?;
                pick_tag(&p, t, &self.cooldown).is_some_and(|tv| tv == node.version)
            }
            DepSpec::Alias(..) => false,
        })
    }

    /// The version npm picks: the `latest` tag when it fits, else the highest
    /// fitting version; a tag names its version directly. Under a cooldown,
    /// only versions old enough count (see [`pick_in_range`], [`pick_tag`]).
    async fn choose(&self, name: &NpmName, spec: &DepSpec) -> Result<Arc<VersionMeta>> {
        let p = self.packuments.get(name).await?;
        let c = &self.cooldown;
        let version = match spec {
            DepSpec::Tag(t) => {
                let Some(tagged) = p.dist_tags.get(t) else {
                    return Err(Error::registry(format!("`{name}` has no dist-tag `{t}`")));
                };
                pick_tag(&p, t, c).ok_or_else(|| tag_too_young(&p, name, t, tagged, c))?
            }
            DepSpec::Range(r) => match pick_in_range(&p, r, c) {
                Some(v) => v,
                None if !c.is_off() && pick_in_range(&p, r, &Cooldown::off()).is_some() => {
                    return Err(range_too_young(&p, name, r, c));
                }
                None => {
                    if let Some(b) = p.versions.keys().find(|k| {
                        Version::parse(k).is_ok_and(|v| !v.build.is_empty() && r.satisfies(&v))
                    }) {
                        return Err(Error::registry(format!(
                            "no version of `{name}` satisfies `{r}`: the registry has `{}`, whose build metadata makes it another version",
                            shown(b)
                        ))
                        .with_hint("safex never takes a `+build` version for a range (real registries strip build metadata on publish); the registry may be hostile or broken"));
                    }
                    return Err(
                        Error::registry(format!("no version of `{name}` satisfies `{r}`"))
                            .with_hint(format!(
                                "the registry has {} versions of `{name}`; its latest is `{}`",
                                p.versions.len(),
                                p.dist_tags
                                    .get("latest")
                                    .map(String::as_str)
                                    .unwrap_or("none")
                            )),
                    );
                }
            },
            DepSpec::Alias(..) => {
                return Err(Error::registry(format!("`{name}`: an alias of an alias")));
            }
        };
        let meta = p.versions.get(&version).ok_or_else(|| {
            Error::registry(format!(
                "`{name}@{version}` is tagged but not in the registry's versions"
            ))
        })?;
        Ok(Arc::new(meta.clone()))
    }

    /// Where to put `name@version` needed from `start`: as high as possible.
    fn place(&self, start: usize, folder: &str, name: &NpmName, version: &str) -> Placement {
        let mut best = None;
        let mut level = start;
        loop {
            match self.nodes[level].children.get(folder) {
                Some(&c) => {
                    if &self.nodes[c].name == name && self.nodes[c].version == version {
                        return Placement::Reuse;
                    }
                    break;
                }
                None => {
                    if self.shadow_ok(level, folder, name, version) {
                        best = Some(level);
                    } else {
                        break;
                    }
                }
            }
            if level == 0 {
                break;
            }
            level = self.nodes[level].parent;
        }
        best.map(Placement::At).unwrap_or(Placement::Conflict)
    }

    /// Placing `folder` at `level` changes what every resolved dependent below
    /// `level` finds, unless something closer shadows it. Each such dependent
    /// must still be satisfied.
    fn shadow_ok(&self, level: usize, folder: &str, name: &NpmName, version: &str) -> bool {
        let Ok(v) = Version::parse(version) else {
            return false;
        };
        let mut stack = vec![level];
        while let Some(d) = stack.pop() {
            for (f, spec) in &self.nodes[d].edges {
                if f != folder {
                    continue;
                }
                let shadowed_below = self.nearest_between(d, level, folder);
                if shadowed_below {
                    continue;
                }
                let ok = match spec {
                    DepSpec::Range(r) => name.as_str() == folder && range_admits(r, &v),
                    DepSpec::Alias(real, inner) => {
                        real == name && matches!(&**inner, DepSpec::Range(r) if range_admits(r, &v))
                    }
                    DepSpec::Tag(_) => false,
                };
                if !ok {
                    return false;
                }
            }
            stack.extend(self.nodes[d].children.values().copied());
        }
        true
    }

    /// Is there a `folder` in some node_modules on the way from `d` up to
    /// (not including) `level`?
    fn nearest_between(&self, d: usize, level: usize, folder: &str) -> bool {
        let mut cur = d;
        while cur != level {
            if self.nodes[cur].children.contains_key(folder) {
                return true;
            }
            if cur == 0 {
                return false;
            }
            cur = self.nodes[cur].parent;
        }
        false
    }

    /// Each node's edges as the final tree resolves them: folder → version.
    pub fn edges_of(&self, n: usize) -> BTreeMap<String, String> {
        let node = &self.nodes[n];
        let from_start = |folder: &str| self.resolve_from(n, folder);
        node.edges
            .iter()
            .filter_map(|(f, _)| from_start(f).map(|t| (f.clone(), self.nodes[t].version.clone())))
            .collect()
    }
}

enum Placement {
    Reuse,
    At(usize),
    Conflict,
}

/// May the cooldown pick `version` of `p`?
fn admitted(p: &Packument, version: &str, c: &Cooldown) -> bool {
    Age::of(c, p.published(version)).admits(c)
}

/// npm's choice within a range: `latest` when it fits (and is old enough),
/// else the highest fitting version that is old enough.
fn pick_in_range(p: &Packument, r: &Range, c: &Cooldown) -> Option<String> {
    if let Some(latest) = p.dist_tags.get("latest")
        && p.versions.contains_key(latest)
        && Version::parse(latest).is_ok_and(|v| range_admits(r, &v))
        && admitted(p, latest, c)
    {
        return Some(latest.clone());
    }
    p.versions
        .keys()
        .filter_map(|k| Version::parse(k).ok().map(|v| (v, k)))
        .filter(|(v, k)| range_admits(r, v) && admitted(p, k, c))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, k)| k.clone())
}

/// The version a dist-tag resolves to: the tagged one if old enough, else the
/// best old-enough version at or below it (as npm's `--before` does), so a
/// fresh `latest` falls back to the release it replaced.
fn pick_tag(p: &Packument, tag: &str, c: &Cooldown) -> Option<String> {
    let tagged = p.dist_tags.get(tag)?;
    if admitted(p, tagged, c) {
        return Some(tagged.clone());
    }
    let below = Range::parse(format!("<={tagged}")).ok()?;
    pick_in_range(p, &below, c)
}

/// An exactly pinned root must itself be old enough.
fn check_root_age(p: &Packument, name: &NpmName, version: &str, c: &Cooldown) -> Result<()> {
    judge_root_age(
        c,
        &format!("{name}@{version}"),
        p.published(version),
        "the registry",
        "its packument has no `time` entry for this version; pin a version the registry dates, or ask an administrator about `release.unknown`",
        || newest_admitted_instead(p, version, c).map(|v| format!("{name}@{v}")),
    )
}

/// A pin to suggest instead of a too-young `version`: the highest old-enough
/// release below it (a patch back, usually), else npm's pick among all
/// old-enough releases.
fn newest_admitted_instead(p: &Packument, version: &str, c: &Cooldown) -> Option<String> {
    let pinned = Version::parse(version).ok()?;
    p.versions
        .keys()
        .filter_map(|k| Version::parse(k).ok().map(|v| (v, k)))
        .filter(|(v, k)| !v.is_prerelease() && *v < pinned && admitted(p, k, c))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, k)| k.clone())
        .or_else(|| pick_in_range(p, &Range::any(), c))
}

/// Versions of `p` that fit `r` but are not admitted: (too young, with the
/// earliest date one becomes eligible; count of unknown age).
fn held_back(
    p: &Packument,
    fits: impl Fn(&str) -> bool,
    c: &Cooldown,
) -> (Option<(String, SystemTime)>, usize) {
    let mut first: Option<(String, SystemTime)> = None;
    let mut unknown = 0;
    for k in p.versions.keys().filter(|k| fits(k)) {
        match Age::of(c, p.published(k)) {
            Age::Young { eligible_on, .. }
                if first.as_ref().is_none_or(|(_, e)| eligible_on < *e) =>
            {
                first = Some((k.clone(), eligible_on));
            }
            Age::Unknown if !Age::Unknown.admits(c) => unknown += 1,
            _ => {}
        }
    }
    (first, unknown)
}

/// Why nothing is held back in words, for a hint.
fn held_back_hint(name: &NpmName, held: (Option<(String, SystemTime)>, usize)) -> String {
    let mut parts = Vec::new();
    if let Some((v, on)) = held.0 {
        parts.push(format!(
            "`{name}@{v}` is the first to become eligible, on {}",
            format_rfc3339(on)
        ));
    }
    if held.1 > 0 {
        let have = if held.1 == 1 {
            "1 fitting version has".to_owned()
        } else {
            format!("{} fitting versions have", held.1)
        };
        parts.push(format!(
            "{have} no publish time on the registry, and `release.unknown` is `refuse`"
        ));
    }
    parts.push("wait, or pin older versions of the packages that need it".to_owned());
    parts.join("; ")
}

fn range_too_young(p: &Packument, name: &NpmName, r: &Range, c: &Cooldown) -> Error {
    let fits = |k: &str| Version::parse(k).is_ok_and(|v| range_admits(r, &v));
    Error::policy(format!(
        "no version of `{name}` that satisfies `{r}` is older than the policy's `release.min_age` of {}",
        format_duration(c.min_age)
    ))
    .with_hint(held_back_hint(name, held_back(p, fits, c)))
}

fn tag_too_young(p: &Packument, name: &NpmName, tag: &str, tagged: &str, c: &Cooldown) -> Error {
    let below = Version::parse(tagged).ok();
    let fits = |k: &str| {
        Version::parse(k)
            .ok()
            .zip(below.as_ref())
            .is_some_and(|(v, b)| v <= *b)
    };
    Error::policy(format!(
        "`{name}@{tag}` is `{tagged}`, and neither it nor an earlier version is older than the policy's `release.min_age` of {}",
        format_duration(c.min_age)
    ))
    .with_hint(held_back_hint(name, held_back(p, fits, c)))
}

/// The hash the registry declares: `dist.integrity` (sha512), else the legacy
/// sha1 `shasum`; a version with neither cannot be verified and is refused.
pub fn declared_integrity(meta: &VersionMeta, label: &str) -> Result<Integrity> {
    if let Some(sri) = meta.dist.integrity.as_deref().filter(|s| !s.is_empty()) {
        return Integrity::parse_sri(sri).map_err(|e| Error {
            message: format!("{} (for `{label}`)", e.message),
            ..e
        });
    }
    if let Some(sha1) = meta.dist.shasum.as_deref().filter(|s| !s.is_empty()) {
        return Integrity::from_sha1_hex(sha1);
    }
    Err(
        Error::integrity(format!("the registry declares no hash for `{label}`")).with_hint(
            "safex needs `dist.integrity` or `dist.shasum` to verify a tarball before unpacking it",
        ),
    )
}

/// npm's `os`/`cpu`/`libc` check for optional dependencies.
pub fn platform_ok(meta: &VersionMeta) -> bool {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    };
    let libc_ok = meta.libc.is_empty() || os != "linux" || list_allows(&meta.libc, linux_libc());
    list_allows(&meta.os, os) && list_allows(&meta.cpu, cpu) && libc_ok
}

fn list_allows(list: &[String], value: &str) -> bool {
    if list.is_empty() {
        return true;
    }
    if list.iter().any(|x| x.strip_prefix('!') == Some(value)) {
        return false;
    }
    let positives: Vec<&String> = list.iter().filter(|x| !x.starts_with('!')).collect();
    positives.is_empty() || positives.iter().any(|x| *x == value || x.as_str() == "any")
}

fn linux_libc() -> &'static str {
    let musl = std::fs::read_dir("/lib")
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("ld-musl-"))
        })
        .unwrap_or(false);
    if musl { "musl" } else { "glibc" }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::UnknownAge;
    use crate::time::parse_rfc3339;

    #[test]
    fn platform_lists() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(list_allows(&s(&[]), "linux"));
        assert!(list_allows(&s(&["linux", "darwin"]), "linux"));
        assert!(!list_allows(&s(&["darwin"]), "linux"));
        assert!(!list_allows(&s(&["!linux"]), "linux"));
        assert!(list_allows(&s(&["!win32"]), "linux"));
    }

    #[test]
    fn npm_ranges_pick_like_npm() {
        let p: Packument = serde_json::from_value(serde_json::json!({
            "dist-tags": {"latest": "1.2.0"},
            "versions": {
                "1.0.0": {"version": "1.0.0"}, "1.2.0": {"version": "1.2.0"},
                "1.3.0": {"version": "1.3.0"}, "2.0.0": {"version": "2.0.0"},
                "2.1.0-beta.1": {"version": "2.1.0-beta.1"}, "3.0.0-rc.1": {"version": "3.0.0-rc.1"}
            }
        }))
        .unwrap();
        let pick = |r: &str| pick_in_range(&p, &Range::parse(r).unwrap(), &Cooldown::off());
        // `latest` wins when it fits, even over a higher fitting version.
        assert_eq!(pick("^1.0.0").as_deref(), Some("1.2.0"));
        assert_eq!(pick("^1.2 || >=2 <3").as_deref(), Some("1.2.0"));
        assert_eq!(pick(">=1.3.0").as_deref(), Some("2.0.0"));
        assert_eq!(pick("1.x").as_deref(), Some("1.2.0"));
        assert_eq!(pick("1.3.0 - 2.0.0").as_deref(), Some("2.0.0"));
        assert_eq!(pick("~1.3").as_deref(), Some("1.3.0"));
        // Pre-releases only when the range names one on the same tuple.
        assert_eq!(pick("^2.0.0").as_deref(), Some("2.0.0"));
        assert_eq!(pick("^2.1.0-beta.0").as_deref(), Some("2.1.0-beta.1"));
        assert_eq!(pick(">=3.0.0-rc.0").as_deref(), Some("3.0.0-rc.1"));
        assert_eq!(pick("^4"), None);
    }

    const DAY: u64 = 86_400;

    /// "Now" is 2025-09-15T00:00:00Z; a 7-day cooldown admits what was
    /// published by 2025-09-08T00:00:00Z.
    fn week(unknown: UnknownAge) -> Cooldown {
        Cooldown {
            min_age: Duration::from_secs(7 * DAY),
            unknown,
            now: parse_rfc3339("2025-09-15T00:00:00Z").unwrap(),
        }
    }

    fn timed() -> Packument {
        serde_json::from_value(serde_json::json!({
            "dist-tags": {"latest": "1.3.0", "next": "2.0.0-rc.2", "old": "1.0.0"},
            "versions": {
                "1.0.0": {"version": "1.0.0"}, "1.1.0": {"version": "1.1.0"},
                "1.2.0": {"version": "1.2.0"}, "1.2.1": {"version": "1.2.1"},
                "1.3.0": {"version": "1.3.0"}, "1.4.0": {"version": "1.4.0"},
                "2.0.0-rc.1": {"version": "2.0.0-rc.1"}, "2.0.0-rc.2": {"version": "2.0.0-rc.2"},
                "3.0.0": {"version": "3.0.0"}
            },
            "time": {
                "created": "2020-01-01T00:00:00.000Z",
                "modified": "2025-09-14T00:00:00.000Z",
                "1.0.0": "2024-01-01T00:00:00.000Z",
                // 1.1.0: no entry.
                "1.2.0": "2025-09-01T00:00:00.000Z",
                "1.2.1": "2025-09-08T00:00:00.000Z",
                "1.3.0": "2025-09-10T00:00:00.000Z",
                "1.4.0": "2025-09-01T12:00:00+02:00",
                "2.0.0-rc.1": "2025-08-01T00:00:00.000Z",
                "2.0.0-rc.2": "2025-09-14T00:00:00.000Z",
                "3.0.0": "2025-09-14T23:59:59.999Z"
            }
        }))
        .unwrap()
    }

    #[test]
    fn cooldown_passes_over_young_versions() {
        let p = timed();
        let c = week(UnknownAge::Allow);
        let pick = |r: &str, c: &Cooldown| pick_in_range(&p, &Range::parse(r).unwrap(), c);
        // `latest` (1.3.0) is 5 days old: the highest old-enough fit instead.
        assert_eq!(pick("^1.0.0", &c).as_deref(), Some("1.4.0"));
        assert_eq!(pick("~1.2.0", &c).as_deref(), Some("1.2.1"));
        // Exactly `min_age` old is old enough.
        assert_eq!(pick("1.2.1", &c).as_deref(), Some("1.2.1"));
        assert_eq!(pick("^3", &c), None);
        assert_eq!(pick(">=1.3.0 <1.4.0", &c), None);
        // No `time` entry: `release.unknown` decides.
        assert_eq!(pick("~1.1.0", &c).as_deref(), Some("1.1.0"));
        assert_eq!(pick("~1.1.0", &week(UnknownAge::Refuse)), None);
        assert_eq!(
            pick("<1.2.0", &week(UnknownAge::Refuse)).as_deref(),
            Some("1.0.0")
        );
        // Off: npm's plain choice, `latest` first.
        assert_eq!(pick("^1.0.0", &Cooldown::off()).as_deref(), Some("1.3.0"));
        assert_eq!(pick("^3", &Cooldown::off()).as_deref(), Some("3.0.0"));
    }

    #[test]
    fn cooldown_prefers_latest_when_old_enough() {
        let p = timed();
        // A week later, 1.3.0 is old enough and `latest` wins over 1.4.0.
        let c = Cooldown {
            now: parse_rfc3339("2025-09-17T00:00:00Z").unwrap(),
            ..week(UnknownAge::Allow)
        };
        let r = Range::parse("^1.0.0").unwrap();
        assert_eq!(pick_in_range(&p, &r, &c).as_deref(), Some("1.3.0"));
    }

    #[test]
    fn cooldown_tags_fall_back_to_an_earlier_release() {
        let p = timed();
        let c = week(UnknownAge::Allow);
        assert_eq!(pick_tag(&p, "latest", &c).as_deref(), Some("1.2.1"));
        assert_eq!(pick_tag(&p, "next", &c).as_deref(), Some("2.0.0-rc.1"));
        assert_eq!(pick_tag(&p, "old", &c).as_deref(), Some("1.0.0"));
        assert_eq!(pick_tag(&p, "nope", &c), None);
        assert_eq!(
            pick_tag(&p, "latest", &Cooldown::off()).as_deref(),
            Some("1.3.0")
        );
    }

    #[test]
    fn cooldown_refuses_a_young_pinned_root() {
        let p = timed();
        let c = week(UnknownAge::Allow);
        let name = NpmName::parse_legacy("pkg").unwrap();
        let e = check_root_age(&p, &name, "1.3.0", &c).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.to_string(),
            "error: `pkg@1.3.0` was published 2025-09-10T00:00:00Z, younger than the policy's `release.min_age` of 7d\n\
             hint: it becomes eligible on 2025-09-17T00:00:00Z; until then pin an older version such as `pkg@1.2.1`"
        );
        // Below 3.0.0 the newest eligible release is 1.4.0.
        let e = check_root_age(&p, &name, "3.0.0", &c).unwrap_err();
        assert!(e.hint.unwrap().ends_with("such as `pkg@1.4.0`"));
        assert!(check_root_age(&p, &name, "1.2.1", &c).is_ok());
        assert!(check_root_age(&p, &name, "1.1.0", &c).is_ok());
        assert!(check_root_age(&p, &name, "1.3.0", &Cooldown::off()).is_ok());

        let refuse = week(UnknownAge::Refuse);
        let e = check_root_age(&p, &name, "1.1.0", &refuse).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.message
                .starts_with("the registry does not say when `pkg@1.1.0` was published"),
            "{}",
            e.message
        );
        // A corgi document has no `time` at all: every root is unknown.
        let corgi: Packument = serde_json::from_value(serde_json::json!({
            "versions": {"1.0.0": {"version": "1.0.0"}}
        }))
        .unwrap();
        assert!(check_root_age(&corgi, &name, "1.0.0", &refuse).is_err());
        assert!(check_root_age(&corgi, &name, "1.0.0", &c).is_ok());
    }

    #[test]
    fn cooldown_names_package_range_and_age_when_nothing_fits() {
        let p = timed();
        let name = NpmName::parse_legacy("pkg").unwrap();
        let e = range_too_young(
            &p,
            &name,
            &Range::parse("^3").unwrap(),
            &week(UnknownAge::Allow),
        );
        assert_eq!(e.exit_code(), 3);
        assert!(
            e.message
                .starts_with("no version of `pkg` that satisfies `")
        );
        assert!(
            e.message
                .ends_with("is older than the policy's `release.min_age` of 7d")
        );
        assert_eq!(
            e.hint.as_deref(),
            Some(
                "`pkg@3.0.0` is the first to become eligible, on 2025-09-21T23:59:59Z; \
                 wait, or pin older versions of the packages that need it"
            )
        );
        let e = range_too_young(
            &p,
            &name,
            &Range::parse("~1.1.0").unwrap(),
            &week(UnknownAge::Refuse),
        );
        assert!(e.hint.unwrap().starts_with(
            "1 fitting version has no publish time on the registry, and `release.unknown` is `refuse`"
        ));
        let e = tag_too_young(&p, &name, "latest", "1.3.0", &week(UnknownAge::Allow));
        assert!(e.message.starts_with("`pkg@latest` is `1.3.0`"));
    }
}
