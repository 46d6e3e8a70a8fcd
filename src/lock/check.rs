//! A lock entry must agree with itself before anything is built from it.
//!
//! The lockfile is plain text that anyone with write access to it can edit,
//! and an entry is trusted wholesale: safex fetches what it lists and checks
//! the bytes against the hashes it lists. An edit that keeps every hash
//! honest can still swap what runs: a root recorded at another version than
//! its key, a dependency moved to another (real, correctly hashed) version,
//! an extra package placed where Node will `require` it (a probed optional
//! module such as `supports-color`). So every entry is checked here, when
//! the lockfile is parsed, in every mode (tofu, frozen, offline) and by every
//! reader, before any of it is used:
//!
//! - every root in the key is in the tree, under its own name and at the
//!   exact version of the key (`1.0.0` is not `1.0.0+x`);
//! - every package is reachable from a root through the entry's own edges,
//!   and each edge leads (by Node's `node_modules` lookup for npm, by name
//!   for PyPI) to a package of exactly the version the edge records;
//! - paths and npm versions are well formed; paths and names are unique.
//!
//! Names, hashes and PyPI versions arrive typed (`crate::lock::raw` parsed them, and
//! refused a weak hash: SRI `sha512` for npm tarballs, 64 hex digits of
//! `sha256` for wheels), so nothing here parses them again.
//!
//! Whether the recorded versions satisfy the ranges the packages declare is
//! checked against the packages themselves once their archives are verified
//! ([`check_npm_ranges`]): only hashed bytes can say that.
//!
//! The cost is a few hash-map look-ups per package; it runs only when the
//! lockfile is parsed, which the warm path skips (`lock::summary`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::str::FromStr;

use crate::lock::{NpmEntry, PypiEntry};
use crate::npm::spec::{self, NpmName};
use crate::redact::shown;

/// What is wrong with an entry, and which package of it (npm tree path or
/// PyPI name) the problem is at, so the caller can name the line; for a
/// malformed field, the field as written (`integrity = "..."`), so the line
/// named is that field's.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub package: Option<String>,
    pub field: Option<String>,
    pub what: String,
}

impl Problem {
    pub fn entry(what: String) -> Problem {
        Problem {
            package: None,
            field: None,
            what,
        }
    }
    pub fn at(package: &str, what: String) -> Problem {
        Problem {
            package: Some(package.to_owned()),
            field: None,
            what,
        }
    }
    /// The problem is the value of `key` (`value` as read) in its package.
    pub fn in_field(mut self, key: &str, value: &str) -> Problem {
        self.field = Some(format!("{key} = \"{value}\""));
        self
    }
}

/// The path Node's `require(folder)` would find from the package at `from`,
/// among `present` paths: `from/node_modules/folder`, then each ancestor's,
/// then the top `node_modules/folder`.
pub fn node_lookup(present: &HashMap<&str, usize>, from: &str, folder: &str) -> Option<usize> {
    let mut base = from;
    loop {
        let candidate = if base.is_empty() {
            format!("node_modules/{folder}")
        } else {
            format!("{base}/node_modules/{folder}")
        };
        if let Some(&i) = present.get(candidate.as_str()) {
            return Some(i);
        }
        if base.is_empty() {
            return None;
        }
        base = match base.rfind("/node_modules/") {
            Some(i) => &base[..i],
            None => "",
        };
    }
}

/// Check an npm entry (see the module comment).
pub fn check_npm(entry: &NpmEntry) -> Result<(), Problem> {
    if entry.roots.is_empty() {
        return Err(Problem::entry("no roots".into()));
    }
    let mut by_path: HashMap<&str, usize> = HashMap::with_capacity(entry.packages.len());
    for (i, p) in entry.packages.iter().enumerate() {
        let at = |what: String| Problem::at(&p.path, what);
        if by_path.insert(p.path.as_str(), i).is_some() {
            return Err(at("a second package at the same path".into()));
        }
        crate::npm::tree::check_tree_path(&p.path)
            .map_err(|_| at("a path that is not a `node_modules` path".into()))?;
        semver::Version::parse(&p.version).map_err(|_| {
            at(format!(
                "an invalid version `{}`",
                shown(p.version.as_str())
            ))
        })?;
    }
    let mut queue = VecDeque::new();
    let mut seen = vec![false; entry.packages.len()];
    for root in &entry.roots {
        let spec = match spec::parse_root(root) {
            Ok(Ok(s)) => s,
            _ => {
                return Err(Problem::entry(format!(
                    "a root `{}` that is not an exact `name@version`",
                    shown(root)
                )));
            }
        };
        let path = format!("node_modules/{}", spec.name);
        let Some(&i) = by_path.get(path.as_str()) else {
            return Err(Problem::entry(format!(
                "no package at `{path}` for its root `{}`",
                shown(root)
            )));
        };
        let p = &entry.packages[i];
        let same_version = semver::Version::parse(&p.version).is_ok_and(|v| v == spec.version);
        if p.name != spec.name || !same_version {
            return Err(Problem::at(
                &p.path,
                format!(
                    "`{}@{}` where its key says `{}`",
                    shown(p.name.as_str()),
                    shown(p.version.as_str()),
                    shown(root)
                ),
            ));
        }
        if !seen[i] {
            seen[i] = true;
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        let p = &entry.packages[i];
        for (folder, version) in &p.dependencies {
            if NpmName::parse_legacy(folder).is_err() {
                return Err(Problem::at(
                    &p.path,
                    format!(
                        "a dependency `{}` that is not a package name",
                        shown(folder)
                    ),
                ));
            }
            let Some(t) = node_lookup(&by_path, &p.path, folder) else {
                return Err(Problem::at(
                    &p.path,
                    format!(
                        "a dependency `{}@{}` that is not in the tree",
                        shown(folder),
                        shown(version)
                    ),
                ));
            };
            let target = &entry.packages[t];
            if &target.version != version {
                return Err(Problem::at(
                    &p.path,
                    format!(
                        "a dependency `{}@{}`, but Node would load `{}` at version `{}`",
                        shown(folder),
                        shown(version),
                        target.path,
                        shown(&target.version)
                    ),
                ));
            }
            if !seen[t] {
                seen[t] = true;
                queue.push_back(t);
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        let p = &entry.packages[i];
        return Err(Problem::at(
            &p.path,
            format!(
                "`{}@{}`, which no root depends on through the entry's edges",
                shown(p.name.as_str()),
                shown(p.version.as_str())
            ),
        ));
    }
    Ok(())
}

/// Does the package `target` (by name and version) satisfy the spec `raw`
/// that a dependent declares for the folder `folder`? npm's rules, with
/// [`spec::range_admits`] for build metadata; a dist-tag (`latest`) cannot
/// be judged without the registry and is taken as the resolver took it.
fn declared_admits(folder: &str, raw: &str, target_name: &str, target_version: &str) -> bool {
    use crate::npm::spec::DepSpec;
    let Ok(v) = nodejs_semver::Version::parse(target_version) else {
        return false;
    };
    let fits = |spec: &DepSpec| match spec {
        DepSpec::Range(r) => spec::range_admits(r, &v),
        DepSpec::Tag(_) => true,
        DepSpec::Alias(..) => false,
    };
    match DepSpec::parse(raw) {
        Ok(DepSpec::Alias(real, inner)) => real.as_str() == target_name && fits(&inner),
        Ok(spec) => folder == target_name && fits(&spec),
        Err(_) => false,
    }
}

/// The versions of a locked npm tree against what each package declares in
/// its own `package.json` (`declared`, by tree path, read from tarballs that
/// were just verified against the entry's hashes):
///
/// - every edge is a dependency the package declares, and the package Node
///   will load for it satisfies the declared spec (a dependency moved to
///   another real, correctly hashed version is refused here);
/// - a regular dependency with no edge (the registry did not list it, or the
///   edge was deleted) must not resolve to a package that does not satisfy it.
///
/// Optional dependencies skipped for this platform, and peers left
/// unresolved, have no edge and are not judged: npm installs such trees too.
pub fn check_npm_ranges(
    entry: &NpmEntry,
    declared: &HashMap<&str, &crate::npm::inspect::Declared>,
) -> Result<(), Problem> {
    use crate::npm::inspect::DepKind;
    let by_path: HashMap<&str, usize> = entry
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.path.as_str(), i))
        .collect();
    for p in &entry.packages {
        let Some(d) = declared.get(p.path.as_str()) else {
            continue;
        };
        let label = format!("{}@{}", shown(p.name.as_str()), shown(p.version.as_str()));
        for (folder, version) in &p.dependencies {
            let Some((raw, _)) = d.deps.get(folder) else {
                return Err(Problem::at(
                    &p.path,
                    format!(
                        "a dependency `{}@{}` that `{label}` does not declare",
                        shown(folder),
                        shown(version)
                    ),
                ));
            };
            let Some(t) = node_lookup(&by_path, &p.path, folder) else {
                continue; // `check_npm` refuses this already.
            };
            let target = &entry.packages[t];
            if !declared_admits(folder, raw, target.name.as_str(), &target.version) {
                return Err(Problem::at(
                    &p.path,
                    format!(
                        "`{}@{}` for `{label}`, which declares `{}@{}`",
                        shown(target.name.as_str()),
                        shown(&target.version),
                        shown(folder),
                        shown(raw)
                    ),
                ));
            }
        }
        for (folder, (raw, kind)) in &d.deps {
            if *kind != DepKind::Prod
                || p.dependencies.contains_key(folder)
                || d.bundled.contains(folder)
            {
                continue;
            }
            if let Some(t) = node_lookup(&by_path, &p.path, folder) {
                let target = &entry.packages[t];
                if !declared_admits(folder, raw, target.name.as_str(), &target.version) {
                    return Err(Problem::at(
                        &p.path,
                        format!(
                            "no edge for `{}`, which `{label}` declares as `{}`, and Node would load `{}@{}` for it",
                            shown(folder),
                            shown(raw),
                            shown(target.name.as_str()),
                            shown(&target.version)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Does the locked `version` satisfy `specs`? PEP 440, except that a local
/// version (`1.0.0+x`) is admitted only by a specifier that names it exactly
/// (`docs/pypi-contract.md`).
fn pypi_admits(specs: &pep440_rs::VersionSpecifiers, version: &pep440_rs::Version) -> bool {
    use pep440_rs::Operator;
    if !specs.contains(version) {
        return false;
    }
    !version.is_local()
        || specs.iter().any(|s| {
            matches!(s.operator(), Operator::Equal | Operator::ExactEqual) && s.version() == version
        })
}

/// The versions of a locked PyPI tree against the `Requires-Dist` of each
/// package's own (just verified) wheel, with markers evaluated for the
/// interpreter that will run it and the extras the tree asks for. Python
/// imports by name from one flat environment, so every requirement that
/// applies here and names a package of the tree must be satisfied by it; a
/// requirement naming a package the tree does not have (the lock was made
/// for another interpreter's markers) is not judged here.
pub fn check_pypi_ranges(
    entry: &PypiEntry,
    metadata: &HashMap<&str, &crate::pypi::metadata::Metadata>,
    markers: &pep508_rs::MarkerEnvironment,
) -> Result<(), Problem> {
    use pep508_rs::{ExtraName, VersionOrUrl};
    let versions: HashMap<&str, &pep440_rs::Version> = entry
        .packages
        .iter()
        .map(|p| (p.name.as_ref(), p.version.parsed()))
        .collect();
    // The extras each package is installed with: the roots', then what
    // applicable requirements ask for, to a fixed point.
    let mut extras: HashMap<String, HashSet<ExtraName>> = HashMap::new();
    for root in &entry.roots {
        if let Ok(Ok(spec)) = crate::pypi::spec::parse_root(root) {
            extras
                .entry(spec.name.to_string())
                .or_default()
                .extend(spec.extras);
        }
    }
    let applies =
        |req: &pep508_rs::Requirement, of: &str, extras: &HashMap<String, HashSet<ExtraName>>| {
            let active: Vec<ExtraName> = extras
                .get(of)
                .map(|e| e.iter().cloned().collect())
                .unwrap_or_default();
            req.marker.evaluate(markers, &active)
        };
    loop {
        let mut grew = false;
        for p in &entry.packages {
            let Some(meta) = metadata.get(p.name.as_ref()) else {
                continue;
            };
            for req in &meta.requires_dist {
                if req.extras.is_empty() || !applies(req, p.name.as_ref(), &extras) {
                    continue;
                }
                let set = extras.entry(req.name.to_string()).or_default();
                for e in &req.extras {
                    grew |= set.insert(e.clone());
                }
            }
        }
        if !grew {
            break;
        }
    }
    for p in &entry.packages {
        let Some(meta) = metadata.get(p.name.as_ref()) else {
            continue;
        };
        for req in &meta.requires_dist {
            let name = req.name.to_string();
            let Some(locked) = versions.get(name.as_str()) else {
                continue;
            };
            if !applies(req, p.name.as_ref(), &extras) {
                continue;
            }
            let ok = match &req.version_or_url {
                None => !locked.is_local(),
                Some(VersionOrUrl::VersionSpecifier(specs)) => pypi_admits(specs, locked),
                Some(VersionOrUrl::Url(_)) => false,
            };
            if !ok {
                return Err(Problem::at(
                    p.name.as_ref(),
                    format!(
                        "`{name}=={locked}` for `{}=={}`, which requires `{}`",
                        p.name,
                        shown(p.version.as_str()),
                        shown(&req.to_string())
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Check a PyPI entry (see the module comment).
pub fn check_pypi(entry: &PypiEntry) -> Result<(), Problem> {
    if entry.roots.is_empty() {
        return Err(Problem::entry("no roots".into()));
    }
    let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(entry.packages.len());
    for (i, p) in entry.packages.iter().enumerate() {
        let at = |what: String| Problem::at(p.name.as_ref(), what);
        if by_name.insert(p.name.as_ref(), i).is_some() {
            return Err(at("a second package of the same name".into()));
        }
        let mut files = HashSet::new();
        for w in &p.wheels {
            if !wheel_of(&w.file, p.name.as_ref(), &p.version) {
                return Err(at(format!(
                    "wheel `{}`, which is not a wheel of `{}=={}`",
                    shown(&w.file),
                    p.name,
                    shown(p.version.as_str())
                )));
            }
            if !files.insert(w.file.as_str()) {
                return Err(at(format!("wheel `{}` twice", shown(&w.file))));
            }
        }
    }
    let mut queue = VecDeque::new();
    let mut seen = vec![false; entry.packages.len()];
    for root in &entry.roots {
        let spec = match crate::pypi::spec::parse_root(root) {
            Ok(Ok(s)) => s,
            _ => {
                return Err(Problem::entry(format!(
                    "a root `{}` that is not an exact `name==version`",
                    shown(root)
                )));
            }
        };
        let Some(&i) = by_name.get(spec.name.as_ref()) else {
            return Err(Problem::entry(format!(
                "no package `{}` for its root `{}`",
                spec.name,
                shown(root)
            )));
        };
        // `Version` equality is PEP 440's, local label included: `1.0` is
        // `1.0.0`, but never `1.0+x`.
        let p = &entry.packages[i];
        if *p.version.parsed() != spec.version {
            return Err(Problem::at(
                p.name.as_ref(),
                format!(
                    "`{}=={}` where its key says `{}`",
                    p.name,
                    shown(p.version.as_str()),
                    shown(root)
                ),
            ));
        }
        if !seen[i] {
            seen[i] = true;
            queue.push_back(i);
        }
    }
    while let Some(i) = queue.pop_front() {
        let p = &entry.packages[i];
        for dep in &p.dependencies {
            let Some(&t) = by_name.get(dep.as_str()) else {
                return Err(Problem::at(
                    p.name.as_ref(),
                    format!("a dependency `{}` that is not in the tree", shown(dep)),
                ));
            };
            if !seen[t] {
                seen[t] = true;
                queue.push_back(t);
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        let p = &entry.packages[i];
        return Err(Problem::at(
            p.name.as_ref(),
            format!(
                "`{}=={}`, which no root depends on through the entry's edges",
                p.name,
                shown(p.version.as_str())
            ),
        ));
    }
    Ok(())
}

/// Is `file` a wheel file name of `name` (normalized) at `version`? The
/// name and version parts only (the tags choose among a package's wheels;
/// they cannot make a wheel another package's): a string comparison when
/// the file spells the version as the lock does, which is nearly always.
fn wheel_of(file: &str, name: &str, version: &crate::lock::PypiVersion) -> bool {
    let Some(stem) = file.strip_suffix(".whl") else {
        return false;
    };
    let mut parts = stem.split('-');
    let (Some(n), Some(v)) = (parts.next(), parts.next()) else {
        return false;
    };
    let rest = parts.count();
    if !(rest == 3 || rest == 4) || crate::pypi::tags::normalize(n) != name {
        return false;
    }
    v == version.as_str() || pep440_rs::Version::from_str(v).is_ok_and(|v| &v == version.parsed())
}

/// The 1-based line of the entry keyed `roots` in `text`, of the line that
/// starts `package` in it (`path = "..."` for npm, `name = "..."` for PyPI),
/// and of `field` (a whole line, `key = "value"`) after that, before the
/// next package: the most precise one found, for the message. Only runs
/// when an entry is refused.
pub fn locate(
    text: &str,
    roots: &[String],
    package: Option<&str>,
    key: &str,
    field: Option<&str>,
) -> Option<usize> {
    let quoted: Vec<String> = roots.iter().map(|r| format!("\"{r}\"")).collect();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| {
        let l = l.trim_start();
        l.starts_with("roots") && quoted.iter().all(|q| l.contains(q.as_str()))
    })?;
    let Some(package) = package else {
        return Some(start + 1);
    };
    let want = format!("{key} = \"{package}\"");
    let next_entry = |l: &str| l.starts_with("roots");
    let Some(at) = (start + 1..lines.len())
        .take_while(|&i| !next_entry(lines[i].trim()))
        .find(|&i| lines[i].trim() == want)
    else {
        return Some(start + 1);
    };
    let Some(field) = field else {
        return Some(at + 1);
    };
    let next_package = |l: &str| l.starts_with(&format!("{key} = "));
    let found = (at + 1..lines.len())
        .take_while(|&i| {
            let l = lines[i].trim();
            !next_entry(l) && !next_package(l)
        })
        .find(|&i| lines[i].trim() == field);
    Some(found.unwrap_or(at) + 1)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::integrity::{Integrity, Sha256Digest};
    use crate::lock::{LockedPackage, LockedWheel, PypiPackage, PypiVersion};

    fn sri(byte: u8) -> Integrity {
        Integrity::sha512(vec![byte; 64])
    }

    fn pkg(path: &str, name: &str, version: &str, deps: &[(&str, &str)]) -> LockedPackage {
        LockedPackage {
            path: path.into(),
            name: NpmName::parse_legacy(name).unwrap(),
            version: version.into(),
            integrity: sri(path.len() as u8),
            dependencies: deps
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            bundled: BTreeMap::new(),
        }
    }

    /// The shapes npm trees take, as safex writes them: a nested duplicate
    /// at another version, an `npm:` alias (folder differs from the name),
    /// scoped names, a prerelease, a shared dependency, a cycle.
    fn good() -> NpmEntry {
        NpmEntry {
            roots: vec!["@s/root@1.0.0-rc.1".into()],
            packages: vec![
                pkg(
                    "node_modules/@s/root",
                    "@s/root",
                    "1.0.0-rc.1",
                    &[("a", "1.0.0"), ("b", "2.0.0"), ("str", "4.1.0")],
                ),
                pkg("node_modules/a", "a", "1.0.0", &[("b", "1.0.0")]),
                pkg(
                    "node_modules/a/node_modules/b",
                    "b",
                    "1.0.0",
                    &[("a", "1.0.0")],
                ),
                pkg("node_modules/b", "b", "2.0.0", &[]),
                pkg("node_modules/str", "string-width", "4.1.0", &[]),
            ],
        }
    }

    fn problem(e: &NpmEntry) -> String {
        let p = check_npm(e).expect_err("must be refused");
        format!("{}: {}", p.package.unwrap_or_default(), p.what)
    }

    #[test]
    fn trees_safex_writes_agree_with_themselves() {
        check_npm(&good()).unwrap();
        // Several roots launched together (`-p`), one depending on the other.
        let mut two = good();
        two.roots = vec!["@s/root@1.0.0-rc.1".into(), "a@1.0.0".into()];
        check_npm(&two).unwrap();
    }

    #[test]
    fn a_root_at_another_version_than_its_key_is_refused() {
        let mut e = good();
        e.packages[0].version = "1.0.1".into();
        assert!(
            problem(&e).contains("where its key says"),
            "{}",
            problem(&e)
        );
        // Build metadata is another version, not the same one.
        let mut e = good();
        e.packages[0].version = "1.0.0-rc.1+evil".into();
        assert!(
            problem(&e).contains("where its key says"),
            "{}",
            problem(&e)
        );
        let mut e = good();
        e.packages[0].name = NpmName::parse_legacy("@s/other").unwrap();
        assert!(
            problem(&e).contains("where its key says"),
            "{}",
            problem(&e)
        );
        let mut e = good();
        e.packages.remove(0);
        assert!(problem(&e).contains("no package at"), "{}", problem(&e));
    }

    #[test]
    fn an_extra_package_no_edge_reaches_is_refused() {
        let mut e = good();
        e.packages.push(pkg(
            "node_modules/a/node_modules/supports-color",
            "supports-color",
            "1.0.0",
            &[],
        ));
        let got = problem(&e);
        assert!(
            got.starts_with("node_modules/a/node_modules/supports-color: ")
                && got.contains("no root depends on"),
            "{got}"
        );
    }

    #[test]
    fn an_edge_that_node_would_resolve_elsewhere_is_refused() {
        // `a` says b@2.0.0, but Node finds its nested b@1.0.0.
        let mut e = good();
        e.packages[1]
            .dependencies
            .insert("b".into(), "2.0.0".into());
        let got = problem(&e);
        assert!(
            got.starts_with("node_modules/a: ") && got.contains("Node would load"),
            "{got}"
        );
        // A dependency moved to another version without its edge following.
        let mut e = good();
        e.packages[3].version = "2.0.1".into();
        assert!(problem(&e).contains("Node would load"), "{}", problem(&e));
        // An edge to nothing.
        let mut e = good();
        e.packages[3]
            .dependencies
            .insert("zzz".into(), "1.0.0".into());
        assert!(problem(&e).contains("not in the tree"), "{}", problem(&e));
    }

    #[test]
    fn malformed_paths_and_versions_are_refused() {
        let mut e = good();
        e.packages[4].path = "node_modules/a".into();
        assert!(problem(&e).contains("same path"), "{}", problem(&e));
        let mut e = good();
        e.packages[4].path = "node_modules/../x".into();
        assert!(problem(&e).contains("not a `node_modules` path"));
        let mut e = good();
        e.packages[4].version = "latest".into();
        assert!(problem(&e).contains("invalid version"));
    }

    fn wheel(name: &str, version: &str, byte: char) -> LockedWheel {
        LockedWheel {
            file: format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")),
            sha256: Sha256Digest::parse_lower_hex(&byte.to_string().repeat(64)).unwrap(),
        }
    }

    fn py(name: &str, version: &str, deps: &[&str]) -> PypiPackage {
        PypiPackage {
            name: name.parse().unwrap(),
            version: PypiVersion::parse(version).unwrap(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            wheels: vec![wheel(name, version, 'a')],
        }
    }

    fn good_py() -> PypiEntry {
        PypiEntry {
            roots: vec!["my-server[cli]==1.0".into()],
            packages: vec![
                py("my-server", "1.0", &["pydantic", "typer"]),
                py("pydantic", "2.0.0", &["typing-extensions"]),
                py("typer", "0.9.0", &["typing-extensions"]),
                py("typing-extensions", "4.0.0", &[]),
            ],
        }
    }

    fn py_problem(e: &PypiEntry) -> String {
        let p = check_pypi(e).expect_err("must be refused");
        format!("{}: {}", p.package.unwrap_or_default(), p.what)
    }

    #[test]
    fn pypi_trees_agree_with_themselves() {
        check_pypi(&good_py()).unwrap();
        // PEP 440 equality: the key's `1.0` is the lock's `1.0.0`.
        let mut e = good_py();
        e.packages[0].version = PypiVersion::parse("1.0.0").unwrap();
        e.packages[0].wheels = vec![wheel("my-server", "1.0.0", 'b')];
        check_pypi(&e).unwrap();
    }

    #[test]
    fn pypi_edits_are_refused() {
        let mut e = good_py();
        e.packages[0].version = PypiVersion::parse("1.1").unwrap();
        e.packages[0].wheels = vec![wheel("my-server", "1.1", 'b')];
        assert!(py_problem(&e).contains("where its key says"));
        let mut e = good_py();
        e.packages[0].version = PypiVersion::parse("1.0+evil").unwrap();
        e.packages[0].wheels = vec![wheel("my-server", "1.0+evil", 'b')];
        assert!(py_problem(&e).contains("where its key says"));
        let mut e = good_py();
        e.packages.push(py("sitecustom", "1.0", &[]));
        assert!(
            py_problem(&e).starts_with("sitecustom: "),
            "{}",
            py_problem(&e)
        );
        assert!(py_problem(&e).contains("no root depends on"));
        let mut e = good_py();
        e.packages[1].dependencies.push("evil".into());
        assert!(py_problem(&e).contains("not in the tree"));
        let mut e = good_py();
        e.packages[1].wheels[0].file = "other-2.0.0-py3-none-any.whl".into();
        assert!(py_problem(&e).contains("not a wheel of `pydantic==2.0.0`"));
    }

    /// The cost of the checks on a real lockfile:
    /// `SAFEX_BENCH_LOCK=path cargo test --lib lock::check -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs a real lockfile in SAFEX_BENCH_LOCK"]
    fn cost_on_a_real_lockfile() {
        let Ok(path) = std::env::var("SAFEX_BENCH_LOCK") else {
            eprintln!("SKIPPED: set SAFEX_BENCH_LOCK to a lockfile to measure");
            return;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let lock = crate::lock::LockFile::parse(&text, std::path::Path::new(&path)).unwrap();
        let biggest = match std::env::var("SAFEX_BENCH_ROOT") {
            Ok(root) => lock.npm.iter().find(|e| e.roots == [root.clone()]),
            Err(_) => lock.npm.iter().max_by_key(|e| e.packages.len()),
        };
        let n = 200;
        let t = std::time::Instant::now();
        for _ in 0..n {
            if let Some(e) = biggest {
                check_npm(std::hint::black_box(e)).unwrap();
            }
        }
        let one = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..20 {
            for e in &lock.npm {
                check_npm(e).unwrap();
            }
            for e in &lock.pypi {
                check_pypi(e).unwrap();
            }
        }
        let all = t.elapsed() / 20;
        let t = std::time::Instant::now();
        for _ in 0..20 {
            let _: crate::lock::raw::RawLockFile =
                toml::from_str(std::hint::black_box(&text)).unwrap();
        }
        let parse = t.elapsed() / 20;
        eprintln!(
            "check_npm on `{}` ({} packages): {one:?}; all {} npm + {} pypi entries: {all:?}; TOML parse of the file ({} bytes): {parse:?}",
            biggest.map(|e| e.roots.join(" ")).unwrap_or_default(),
            biggest.map_or(0, |e| e.packages.len()),
            lock.npm.len(),
            lock.pypi.len(),
            text.len()
        );
    }

    #[test]
    fn the_message_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("safex.lock");
        let mut e = good();
        e.packages[3].version = "2.0.1".into();
        e.packages[3].integrity = sri(77);
        let lock = crate::lock::LockFile {
            version: 1,
            npm: vec![e],
            pypi: Vec::new(),
        };
        let text = toml::to_string(&lock).unwrap();
        let err = crate::lock::LockFile::parse(&text, &path).unwrap_err();
        // `a` is the first package whose edge disagrees: name its line.
        let line = text
            .lines()
            .position(|l| l == "path = \"node_modules/@s/root\"")
            .unwrap()
            + 1;
        assert!(
            err.message
                .contains(&format!("safex.lock:{line}`: the entry for `@s/root@1.0.0-rc.1`, package `node_modules/@s/root`, has")),
            "{}\n{text}",
            err.message
        );
        assert_eq!(err.exit_code(), 7);
    }
}
