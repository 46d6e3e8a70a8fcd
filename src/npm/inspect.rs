//! Looking inside an unpacked package before anything can run: its
//! `package.json` *from the tarball* (the registry's copy can disagree:
//! "manifest confusion"), its install-time hooks, its entry points (`bin`,
//! `main`, `exports`, `imports`: all inside the package), and the
//! `node_modules` it carries: only what its `bundleDependencies` declare is
//! kept.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::redact::shown;

/// The lifecycle hooks npm runs when it installs a tarball from a registry.
/// safex runs none of them. `prepare` (with `preprepare`/`postprepare`) is
/// not among them: npm runs it only for git and directory sources, where it
/// builds what a published tarball already holds.
pub const INSTALL_HOOKS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// Whether a name recorded as install-time code is code npm would run when
/// it installs a registry tarball: a hook of [`INSTALL_HOOKS`], the implicit
/// `node-gyp rebuild` of a `binding.gyp`, or the registry's bare
/// `hasInstallScript`. Environments built by earlier versions of safex also
/// recorded `prepare`, which this leaves out.
pub fn runs_at_install(code: &str) -> bool {
    INSTALL_HOOKS.contains(&code) || code == BINDING_GYP || code == DECLARED_ONLY
}

/// The part of a package's recorded install-time code that npm would run
/// for a registry tarball ([`runs_at_install`]).
pub fn run_at_install(code: &[String]) -> Vec<&str> {
    code.iter()
        .map(String::as_str)
        .filter(|c| runs_at_install(c))
        .collect()
}

/// How an implicit `node-gyp rebuild` is named in messages and markers.
pub const BINDING_GYP: &str = "binding.gyp";
/// How the registry's `hasInstallScript` without named hooks is named.
pub const DECLARED_ONLY: &str = "install scripts";

#[derive(Debug, Default, Clone)]
pub struct Inspection {
    /// Install-time code that would have run under npm: hook names, and
    /// `binding.gyp` for npm's implicit `node-gyp rebuild`.
    pub install_code: Vec<String>,
    /// Bin name → path inside the package, both checked.
    pub bins: BTreeMap<String, String>,
    pub engines_node: Option<String>,
    /// Packages its tarball carries under `node_modules/` that its
    /// `bundleDependencies` declare (with what they need inside the
    /// tarball), by path inside the package.
    pub bundled: Vec<Bundled>,
    /// What its tarball carried under `node_modules/` that no declaration
    /// covers: removed, never installed. Paths inside the package.
    pub dropped: Vec<String>,
    /// The dependencies the tarball's own `package.json` declares: what a
    /// locked tree's versions are checked against.
    pub declared: Declared,
}

/// A package shipped inside another's tarball, kept because declared.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Bundled {
    /// Inside the carrying package: `node_modules/x`.
    pub path: String,
    /// The folder name Node loads it by.
    pub name: String,
    pub version: String,
    /// As [`Inspection::install_code`], for this package.
    pub install_code: Vec<String>,
}

/// A package's declared dependencies, from its (hash-verified) tarball.
#[derive(Debug, Default, Clone)]
pub struct Declared {
    /// Name → spec, in npm's precedence: `optionalDependencies` over
    /// `dependencies` over `peerDependencies`.
    pub deps: BTreeMap<String, (String, DepKind)>,
    /// Names the tarball bundles (`bundleDependencies`): not resolved.
    pub bundled: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepKind {
    Prod,
    Optional,
    Peer,
}

impl Declared {
    fn read(pkg: &Value) -> Declared {
        let map = |key: &str| -> Vec<(String, String)> {
            pkg.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut deps = BTreeMap::new();
        for (kind, key) in [
            (DepKind::Peer, "peerDependencies"),
            (DepKind::Prod, "dependencies"),
            (DepKind::Optional, "optionalDependencies"),
        ] {
            for (k, v) in map(key) {
                deps.insert(k, (v, kind));
            }
        }
        let bundled = match pkg
            .get("bundleDependencies")
            .or_else(|| pkg.get("bundledDependencies"))
        {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            Some(Value::Bool(true)) => map("dependencies").into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        };
        Declared { deps, bundled }
    }
}

/// Read and check `<dir>/package.json` of `name@version`.
pub fn npm_package(dir: &Path, name: &str, version: &str) -> Result<Inspection> {
    let label = format!("{name}@{version}");
    let path = dir.join("package.json");
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::unsafe_pkg(format!(
            "the tarball of `{label}` has no readable `package.json`"
        ))
    })?;
    let pkg: Value = serde_json::from_str(&text).map_err(|e| {
        Error::unsafe_pkg(format!(
            "the `package.json` in the tarball of `{label}` is not valid JSON: {e}"
        ))
    })?;

    // Manifest confusion: the tarball must be the package the registry named.
    let tar_name = pkg.get("name").and_then(Value::as_str).unwrap_or("");
    let tar_version = pkg.get("version").and_then(Value::as_str).unwrap_or("");
    if tar_name != name || !same_version(tar_version, version) {
        return Err(Error::unsafe_pkg(format!(
            "the registry says `{label}`, but the tarball's `package.json` says `{}@{}`",
            shown(tar_name),
            shown(tar_version)
        ))
        .with_hint("the registry metadata and the package disagree (manifest confusion); do not use this version"));
    }

    let install_code = install_code(&pkg, dir);
    let bins = bins(&pkg, name, &label)?;
    entry_points(&pkg, &label)?;
    let (bundled, dropped) = bundle(dir, &pkg, &label)?;
    let engines_node = pkg
        .get("engines")
        .and_then(|e| e.get("node"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Inspection {
        install_code,
        bins,
        engines_node,
        bundled,
        dropped,
        declared: Declared::read(&pkg),
    })
}

/// The install hooks npm would run for the package in `dir`, and
/// `binding.gyp` for its implicit `node-gyp rebuild`.
fn install_code(pkg: &Value, dir: &Path) -> Vec<String> {
    let mut install_code = Vec::new();
    let scripts = pkg.get("scripts").and_then(Value::as_object);
    for hook in INSTALL_HOOKS {
        if scripts
            .and_then(|s| s.get(hook))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
        {
            install_code.push(hook.to_owned());
        }
    }
    let has_own_install = install_code
        .iter()
        .any(|h| h == "install" || h == "preinstall");
    if !has_own_install && dir.join(BINDING_GYP).is_file() {
        install_code.push(BINDING_GYP.to_owned());
    }
    install_code
}

/// `main`, and every target of `exports` and `imports` (all conditions,
/// nested, arrays, subpath patterns), must stay inside the package.
///
/// Node loads `main` with no check at all (`require` joins it to the
/// package directory; the ES loader resolves it as a URL, where `%2e%2e`
/// and `\` mean `..` and `/`), so a dependency whose `main` is
/// `../../x.js` runs a file it does not ship. Node itself refuses an
/// `exports` target that does not start with `./` or has a `..` segment,
/// but older versions did not: safex refuses every target that climbs out.
/// npm accepts any of these; no working package needs one (what lies
/// outside is another package's files), so this is a refusal, not a repair.
/// `main` values that do work — `index`, `./lib`, `lib/index`, `./`, `.` —
/// stay inside and are fine; so is an `imports` target that is a package
/// name (Node resolves it as a dependency).
fn entry_points(pkg: &Value, label: &str) -> Result<()> {
    let refuse = |field: &str, target: &str| {
        Error::unsafe_pkg(format!(
            "`{label}` declares `{field}` as `{}`, outside the package",
            shown(target)
        ))
        .with_hint("an entry point must stay inside its own package; this package is refused")
    };
    if let Some(main) = pkg.get("main").and_then(Value::as_str)
        && escapes(main)
    {
        return Err(refuse("main", main));
    }
    for field in ["exports", "imports"] {
        let mut targets = Vec::new();
        if let Some(v) = pkg.get(field) {
            collect_targets(v, 0, &mut targets);
        }
        for t in targets {
            let relative = t.starts_with("./") || t.starts_with(".\\");
            // A bare `imports` target is a package name, resolved by Node
            // as a dependency: not a path into this package.
            let bare = field == "imports" && !relative && !t.starts_with(['.', '/', '\\']);
            if !bare && escapes(t) {
                return Err(refuse(field, t));
            }
        }
    }
    Ok(())
}

/// Every string in an `exports`/`imports` value (a target, an array of
/// fallbacks, an object of subpaths or conditions), to a sane depth.
fn collect_targets<'a>(v: &'a Value, depth: usize, out: &mut Vec<&'a str>) {
    if depth > 32 {
        return;
    }
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| collect_targets(x, depth + 1, out)),
        Value::Object(m) => m.values().for_each(|x| collect_targets(x, depth + 1, out)),
        _ => {}
    }
}

/// Whether the path `p`, taken relative to a package directory, leaves it:
/// absolute, a drive or URL scheme, or more `..` than directories, with `\`
/// read as `/` and `%2e`/`%2f`/`%5c` decoded (as a URL resolver reads them).
fn escapes(p: &str) -> bool {
    let mut decoded = p.to_owned();
    for (enc, dec) in [
        ("%2e", "."),
        ("%2E", "."),
        ("%2f", "/"),
        ("%2F", "/"),
        ("%5c", "/"),
        ("%5C", "/"),
    ] {
        decoded = decoded.replace(enc, dec);
    }
    let unix = decoded.replace('\\', "/");
    if unix.starts_with('/') || unix.contains('\0') {
        return true;
    }
    // `C:`, `file:`, `node:`: not a path inside the package.
    if let Some(first) = unix.split('/').next()
        && first.contains(':')
    {
        return true;
    }
    let mut depth = 0usize;
    for c in unix.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    false
}

/// The names `bundleDependencies` (or `bundledDependencies`) declares:
/// an array of names, or `true` for every name in `dependencies`, as npm
/// reads it.
fn declared_bundle(pkg: &Value) -> Vec<String> {
    let v = pkg
        .get("bundleDependencies")
        .or_else(|| pkg.get("bundledDependencies"));
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::Bool(true)) => pkg
            .get("dependencies")
            .and_then(Value::as_object)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Keep of the tarball's `node_modules/` only the declared bundled packages
/// and what they need from inside the tarball (their `dependencies`,
/// `optionalDependencies` and `peerDependencies`, looked up as Node looks
/// them up: the nearest `node_modules` upwards, inside the package); remove
/// the rest. npm packs a bundle this way (npm-packlist includes a bundled
/// package and its dependencies from the tree), so a real bundle loses
/// nothing; anything else under `node_modules/` was put there by hand, is
/// listed in no lock and would shadow what the lock lists.
fn bundle(dir: &Path, pkg: &Value, label: &str) -> Result<(Vec<Bundled>, Vec<String>)> {
    let nm = dir.join("node_modules");
    if !std::fs::symlink_metadata(&nm).is_ok_and(|m| m.is_dir()) {
        if nm.exists() {
            fs_err::remove_file(&nm)?;
            return Ok((Vec::new(), vec!["node_modules".to_owned()]));
        }
        return Ok((Vec::new(), Vec::new()));
    }
    let mut reached: BTreeMap<String, Value> = BTreeMap::new();
    let mut queue: Vec<(String, String)> = declared_bundle(pkg)
        .into_iter()
        .map(|n| (String::new(), n))
        .collect();
    while let Some((from, name)) = queue.pop() {
        if crate::npm::spec::NpmName::parse_legacy(&name).is_err() {
            continue;
        }
        let Some(found) = lookup(dir, &from, &name) else {
            continue;
        };
        if reached.contains_key(&found) {
            continue;
        }
        let text =
            std::fs::read_to_string(dir.join(&found).join("package.json")).map_err(|_| {
                Error::unsafe_pkg(format!(
                    "`{label}` bundles `{}` without a readable `package.json`",
                    shown(&found)
                ))
            })?;
        let inner: Value = serde_json::from_str(&text).map_err(|e| {
            Error::unsafe_pkg(format!(
                "`{label}` bundles `{}`, whose `package.json` is not valid JSON: {e}",
                shown(&found)
            ))
        })?;
        for field in ["dependencies", "optionalDependencies", "peerDependencies"] {
            if let Some(deps) = inner.get(field).and_then(Value::as_object) {
                queue.extend(deps.keys().map(|k| (found.clone(), k.clone())));
            }
        }
        reached.insert(found, inner);
    }
    let mut dropped = Vec::new();
    prune(dir, "node_modules", &reached, &mut dropped)?;
    if std::fs::read_dir(&nm)?.next().is_none() {
        fs_err::remove_dir(&nm)?;
    }
    let mut bundled = Vec::new();
    for (path, inner) in &reached {
        let inner_label = format!("{path} (bundled in {label})");
        entry_points(inner, &inner_label)?;
        let name = path
            .rsplit_once("node_modules/")
            .map_or(path.as_str(), |(_, n)| n)
            .to_owned();
        bundled.push(Bundled {
            path: path.clone(),
            name,
            version: inner
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            install_code: install_code(inner, &dir.join(path)),
        });
    }
    Ok((bundled, dropped))
}

/// Where Node finds `name` required from the bundled package at `from`
/// (`""`: the carrying package itself), without leaving the tarball.
fn lookup(dir: &Path, from: &str, name: &str) -> Option<String> {
    let mut at = from.to_owned();
    loop {
        let candidate = if at.is_empty() {
            format!("node_modules/{name}")
        } else {
            format!("{at}/node_modules/{name}")
        };
        if std::fs::symlink_metadata(dir.join(&candidate)).is_ok_and(|m| m.is_dir()) {
            return Some(candidate);
        }
        if at.is_empty() {
            return None;
        }
        at = at
            .rsplit_once("/node_modules/")
            .map_or(String::new(), |(parent, _)| parent.to_owned());
    }
}

/// Remove what is not `reached` under `dir/rel` (a `node_modules`), and
/// recurse into the `node_modules` of what is.
fn prune(
    dir: &Path,
    rel: &str,
    reached: &BTreeMap<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(rel))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for n in names {
        let path = format!("{rel}/{n}");
        let full = dir.join(&path);
        let is_dir = std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir());
        let scope_holds_reached = n.starts_with('@')
            && is_dir
            && reached.keys().any(|r| r.starts_with(&format!("{path}/")));
        if scope_holds_reached {
            for sub in std::fs::read_dir(&full)? {
                let sub = sub?.file_name().to_string_lossy().into_owned();
                let p = format!("{path}/{sub}");
                keep_or_drop(dir, &p, reached, dropped)?;
            }
        } else if reached.contains_key(&path) {
            keep_or_drop(dir, &path, reached, dropped)?;
        } else {
            remove(&full)?;
            dropped.push(path);
        }
    }
    Ok(())
}

fn keep_or_drop(
    dir: &Path,
    path: &str,
    reached: &BTreeMap<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<()> {
    let full = dir.join(path);
    if reached.contains_key(path) {
        let inner = format!("{path}/node_modules");
        if std::fs::symlink_metadata(dir.join(&inner)).is_ok_and(|m| m.is_dir()) {
            prune(dir, &inner, reached, dropped)?;
            if std::fs::read_dir(dir.join(&inner))?.next().is_none() {
                fs_err::remove_dir(dir.join(&inner))?;
            }
        }
    } else {
        remove(&full)?;
        dropped.push(path.to_owned());
    }
    Ok(())
}

fn remove(p: &Path) -> Result<()> {
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
        fs_err::remove_dir_all(p)?;
    } else {
        fs_err::remove_file(p)?;
    }
    Ok(())
}

fn same_version(a: &str, b: &str) -> bool {
    a == b
        || matches!((semver::Version::parse(a), semver::Version::parse(b)), (Ok(x), Ok(y)) if x == y)
}

/// The `bin` field as npm normalizes it (npm-normalize-package-bin): a
/// string is one bin named like the package, an array names each bin after
/// its file, and every name is cut to its base name after `\\` and `:`
/// become `/` (`mcp-handler@1.1.0` declares `@vercel/mcp-adapter`, which
/// npm installs as `mcp-adapter`); a name with nothing left (`..`, `/`) is
/// dropped, as npm drops it, and of two names that meet the later wins.
/// safex creates no links for bins, so a name is only what a command is
/// matched against. Every path must stay inside the package (npm would
/// clamp `../x` to `x`; a package that points outside is refused).
fn bins(pkg: &Value, name: &str, label: &str) -> Result<BTreeMap<String, String>> {
    let mut out: Vec<(String, String)> = Vec::new();
    match pkg.get("bin") {
        Some(Value::String(p)) => out.push((name.to_owned(), p.clone())),
        Some(Value::Array(a)) => {
            for p in a.iter().filter_map(Value::as_str) {
                out.push((p.to_owned(), p.to_owned()));
            }
        }
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Some(p) = v.as_str() else { continue };
                out.push((k.clone(), p.to_owned()));
            }
        }
        _ => {}
    }
    let mut checked = BTreeMap::new();
    for (raw_name, bin_path) in out {
        let Some(bin_name) = bin_base_name(&raw_name) else {
            continue;
        };
        if bin_name.chars().any(char::is_control) {
            return Err(Error::unsafe_pkg(format!(
                "`{label}` declares a bin named `{}`, which has control characters",
                shown(&bin_name)
            ))
            .with_hint("a bin name is a command name; this package is refused"));
        }
        let Some(clean) = enclosed(&bin_path) else {
            return Err(Error::unsafe_pkg(format!(
                "`{label}` declares bin `{}` at `{}`, outside the package",
                shown(&bin_name),
                shown(&bin_path)
            ))
            .with_hint("a bin must point inside its own package; this package is refused"));
        };
        checked.insert(bin_name, clean);
    }
    Ok(checked)
}

/// npm's bin name: `\\` and `:` read as `/`, then the last component;
/// `None` when that is empty, `.` or `..`.
fn bin_base_name(raw: &str) -> Option<String> {
    let unix = raw.replace(['\\', ':'], "/");
    let base = unix.rsplit('/').find(|c| !c.is_empty())?;
    (base != "." && base != "..").then(|| base.to_owned())
}

/// A relative path that stays inside its base, normalized; `None` otherwise.
pub fn enclosed(p: &str) -> Option<String> {
    if p.contains('\0') || p.contains('\\') || p.contains(':') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclosed_paths() {
        for (p, want) in [
            ("cli.js", Some("cli.js")),
            ("./bin/cli.js", Some("bin/cli.js")),
            ("bin/../cli.js", Some("cli.js")),
            ("../cli.js", None),
            ("bin/../../x", None),
            ("/etc/passwd", None),
            ("C:\\x", None),
            ("c:/x", None),
            ("..", None),
            (".", None),
            ("", None),
            ("a\0b", None),
        ] {
            assert_eq!(enclosed(p).as_deref(), want, "{p:?}");
        }
    }

    #[test]
    fn bin_names() {
        for (n, want) in [
            ("cli", Some("cli")),
            ("@vercel/mcp-adapter", Some("mcp-adapter")),
            ("../x", Some("x")),
            ("../../../etc/passwd", Some("passwd")),
            ("a\\b", Some("b")),
            ("C:evil", Some("evil")),
            ("x/", Some("x")),
            ("..", None),
            (".", None),
            ("/", None),
            ("", None),
            ("x-y.js", Some("x-y.js")),
        ] {
            assert_eq!(bin_base_name(n).as_deref(), want, "{n}");
        }
    }

    #[test]
    fn bin_field_forms_as_npm_reads_them() {
        let d = tempfile::tempdir().unwrap();
        let bins = |bin: serde_json::Value| {
            pkg(
                d.path(),
                serde_json::json!({"name": "@s/tool", "version": "1.0.0", "bin": bin}),
            );
            npm_package(d.path(), "@s/tool", "1.0.0").map(|i| i.bins)
        };
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(
            bins(serde_json::json!("./cli.js")).unwrap(),
            one("tool", "cli.js")
        );
        assert_eq!(
            bins(serde_json::json!({"@vercel/mcp-adapter": "dist/cli.js", "..": "x.js"})).unwrap(),
            one("mcp-adapter", "dist/cli.js")
        );
        assert_eq!(
            bins(serde_json::json!(["bin/a.js"])).unwrap(),
            one("a.js", "bin/a.js")
        );
        assert!(bins(serde_json::json!({"t": "../../outside.js"})).is_err());
        assert!(bins(serde_json::json!({"t\u{7}": "cli.js"})).is_err());
    }

    fn pkg(dir: &Path, json: serde_json::Value) {
        std::fs::write(dir.join("package.json"), json.to_string()).unwrap();
    }

    #[test]
    fn hooks_binding_gyp_and_confusion() {
        let d = tempfile::tempdir().unwrap();
        pkg(
            d.path(),
            serde_json::json!({"name": "a", "version": "1.0.0", "scripts": {"postinstall": "x", "test": "y", "prepare": ""}, "bin": "cli.js"}),
        );
        let i = npm_package(d.path(), "a", "1.0.0").unwrap();
        assert_eq!(i.install_code, vec!["postinstall"]);
        assert_eq!(i.bins.get("a").map(String::as_str), Some("cli.js"));

        std::fs::write(d.path().join("binding.gyp"), "{}").unwrap();
        let i = npm_package(d.path(), "a", "1.0.0").unwrap();
        assert_eq!(i.install_code, vec!["postinstall", "binding.gyp"]);

        let e = npm_package(d.path(), "b", "1.0.0").unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Unsafe);
        let e = npm_package(d.path(), "a", "1.0.1").unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Unsafe);

        pkg(
            d.path(),
            serde_json::json!({"name": "a", "version": "1.0.0", "bin": {"x": "../../outside.js"}}),
        );
        assert_eq!(
            npm_package(d.path(), "a", "1.0.0").unwrap_err().kind,
            crate::error::Kind::Unsafe
        );
        pkg(
            d.path(),
            serde_json::json!({"name": "a", "version": "1.0.0", "bin": {"../../x": "cli.js"}}),
        );
        // npm installs that bin as `x`; safex creates no link for it at all.
        let i = npm_package(d.path(), "a", "1.0.0").unwrap();
        assert_eq!(i.bins.get("x").map(String::as_str), Some("cli.js"));
    }

    #[test]
    fn entry_point_paths_that_escape() {
        for (p, out) in [
            ("index", false),
            ("./lib", false),
            ("lib/index", false),
            ("./", false),
            (".", false),
            ("", false),
            ("lib/../index.js", false),
            ("./dist/*.js", false),
            ("../x.js", true),
            ("./../x.js", true),
            ("lib/../../x.js", true),
            ("%2e%2e/x.js", true),
            ("%2E%2e%2Fx.js", true),
            ("..\\x.js", true),
            ("/abs/x.js", true),
            ("\\\\host\\share\\x.js", true),
            ("C:/x.js", true),
            ("file:///etc/passwd", true),
            ("a\0b", true),
        ] {
            assert_eq!(escapes(p), out, "{p:?}");
        }
    }

    #[test]
    fn exports_targets_are_all_walked() {
        let check = |exports: Value| {
            entry_points(&serde_json::json!({"exports": exports}), "x@1.0.0").is_ok()
        };
        assert!(check(
            serde_json::json!({".": {"node": {"import": ["./a.mjs", null]}}})
        ));
        assert!(!check(
            serde_json::json!({".": {"node": {"import": ["./a.mjs", "./../b.js"]}}})
        ));
        assert!(!check(serde_json::json!({"./*": {"default": "./../../*"}})));
        // Not starting with `./`: Node refuses it itself; inside, so harmless.
        assert!(check(serde_json::json!("index.js")));
        let imports =
            |v: Value| entry_points(&serde_json::json!({"imports": v}), "x@1.0.0").is_ok();
        assert!(imports(serde_json::json!({"#dep": "some-package/sub"})));
        assert!(!imports(serde_json::json!({"#x": "../y.js"})));
    }

    #[test]
    fn bundle_keeps_the_declared_closure_and_drops_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let write = |rel: &str, json: Value| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, json.to_string()).unwrap();
        };
        write(
            "package.json",
            serde_json::json!({"name": "a", "version": "1.0.0", "dependencies": {"b": "1"}, "bundledDependencies": true}),
        );
        write(
            "node_modules/b/package.json",
            serde_json::json!({"name": "b", "version": "1.0.0", "dependencies": {"c": "1", "outside": "1"}}),
        );
        // `c` nested under `b` is found before a top-level one.
        write(
            "node_modules/b/node_modules/c/package.json",
            serde_json::json!({"name": "c", "version": "2.0.0"}),
        );
        write(
            "node_modules/b/node_modules/junk/package.json",
            serde_json::json!({"name": "junk", "version": "1.0.0"}),
        );
        write(
            "node_modules/c/package.json",
            serde_json::json!({"name": "c", "version": "1.0.0"}),
        );
        write(
            "node_modules/@s/x/package.json",
            serde_json::json!({"name": "@s/x", "version": "1.0.0"}),
        );
        std::fs::write(d.path().join("node_modules/.package-lock.json"), "{}").unwrap();
        let i = npm_package(d.path(), "a", "1.0.0").unwrap();
        let kept: Vec<_> = i
            .bundled
            .iter()
            .map(|b| (b.path.as_str(), b.name.as_str(), b.version.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("node_modules/b", "b", "1.0.0"),
                ("node_modules/b/node_modules/c", "c", "2.0.0")
            ]
        );
        assert_eq!(
            i.dropped,
            [
                "node_modules/.package-lock.json",
                "node_modules/@s",
                "node_modules/b/node_modules/junk",
                "node_modules/c"
            ]
        );
        assert!(
            d.path()
                .join("node_modules/b/node_modules/c/package.json")
                .exists()
        );
        for gone in [
            "node_modules/c",
            "node_modules/@s",
            "node_modules/b/node_modules/junk",
        ] {
            assert!(!d.path().join(gone).exists(), "{gone}");
        }

        // Nothing declared: the whole `node_modules` goes.
        write(
            "package.json",
            serde_json::json!({"name": "a", "version": "1.0.0"}),
        );
        let i = npm_package(d.path(), "a", "1.0.0").unwrap();
        assert!(i.bundled.is_empty());
        assert_eq!(i.dropped, ["node_modules/b"]);
        assert!(!d.path().join("node_modules").exists());
    }

    #[test]
    fn hostile_bundle_names_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("node_modules/ok")).unwrap();
        std::fs::write(
            d.path().join("package.json"),
            serde_json::json!({"name": "a", "version": "1.0.0", "bundleDependencies": ["../../etc", "ok/../..", "ok"]}).to_string(),
        )
        .unwrap();
        std::fs::write(
            d.path().join("node_modules/ok/package.json"),
            r#"{"name":"ok","version":"1.0.0"}"#,
        )
        .unwrap();
        let i = npm_package(d.path(), "a", "1.0.0").unwrap();
        assert_eq!(i.bundled.len(), 1);
        assert_eq!(i.bundled[0].path, "node_modules/ok");
    }
}
