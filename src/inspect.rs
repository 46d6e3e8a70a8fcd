//! Looking inside an unpacked package before anything can run: its
//! `package.json` *from the tarball* (the registry's copy can disagree:
//! "manifest confusion"), its install-time hooks, and its `bin` entries.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::shown;

/// The hooks npm runs on install. safex runs none of them.
pub const INSTALL_HOOKS: [&str; 4] = ["preinstall", "install", "postinstall", "prepare"];

#[derive(Debug, Default, Clone)]
pub struct Inspection {
    /// Install-time code that would have run under npm: hook names, and
    /// `binding.gyp` for npm's implicit `node-gyp rebuild`.
    pub install_code: Vec<String>,
    /// Bin name → path inside the package, both checked.
    pub bins: BTreeMap<String, String>,
    pub engines_node: Option<String>,
    /// The dependencies the tarball's own `package.json` declares: what a
    /// locked tree's versions are checked against.
    pub declared: Declared,
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
    if !has_own_install && dir.join("binding.gyp").is_file() {
        install_code.push("binding.gyp".to_owned());
    }

    let bins = bins(&pkg, name, &label)?;
    let engines_node = pkg
        .get("engines")
        .and_then(|e| e.get("node"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Inspection {
        install_code,
        bins,
        engines_node,
        declared: Declared::read(&pkg),
    })
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
}
