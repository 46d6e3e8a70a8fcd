//! Package specs: what the user asked to launch, and what a dependency asks for.
//!
//! A root spec must be an exact pin (`name@1.2.3`). Everything else a user
//! might type into an MCP config (no version, a range, a dist-tag, a URL, a
//! git or file reference) is refused here, before any network or disk work,
//! because each of those runs code nobody reviewed at that version.

use std::fmt;

use crate::error::{Error, Result};
use crate::redact::shown;

/// A validated npm package name (`left-pad`, `@scope/name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NpmName(String);

impl NpmName {
    /// Names for new packages: lowercase, URL-safe, at most 214 bytes. Used for
    /// the package a user launches.
    pub fn parse_strict(s: &str) -> Result<Self> {
        Self::parse_inner(s, true)
    }

    /// Names as they exist in the registry, including legacy ones (`JSONStream`).
    /// Used for dependencies. Still never a path: no `/` beyond the scope, no
    /// leading `.`, nothing that needs escaping.
    pub fn parse_legacy(s: &str) -> Result<Self> {
        Self::parse_inner(s, false)
    }

    fn parse_inner(s: &str, strict: bool) -> Result<Self> {
        let bad = |why: &str| {
            Error::usage(format!("`{}` is not a valid npm package name: {why}", shown(s)))
                .with_hint("npm names look like `name` or `@scope/name`: lowercase letters, digits, `-`, `.`, `_`")
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.len() > 214 {
            return Err(bad("it is longer than 214 characters"));
        }
        let parts: Vec<&str> = match s.strip_prefix('@') {
            Some(rest) => {
                let Some((scope, name)) = rest.split_once('/') else {
                    return Err(bad("a scope needs a name after `/`"));
                };
                vec![scope, name]
            }
            None => vec![s],
        };
        for part in parts {
            if part.is_empty() {
                return Err(bad("a part is empty"));
            }
            if part.starts_with('.') || part.starts_with('_') {
                return Err(bad("a part starts with `.` or `_`"));
            }
            let ok_char = |c: char| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '-' | '.' | '_' | '~')
                    || (!strict
                        && (c.is_ascii_uppercase() || matches!(c, '!' | '\'' | '(' | ')' | '*')))
            };
            if let Some(c) = part.chars().find(|c| !ok_char(*c)) {
                return Err(bad(&format!("it contains `{}`", c.escape_default())));
            }
        }
        if matches!(s, "node_modules" | "favicon.ico") {
            return Err(bad("the name is reserved"));
        }
        Ok(NpmName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its scope: the tarball file stem and npx's default bin.
    pub fn unscoped(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The name as one URL path segment (`@scope%2fname`).
    pub fn url_segment(&self) -> String {
        self.0.replacen('/', "%2f", 1)
    }
}

impl fmt::Display for NpmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `name@exact-version`, the only form safex launches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NpmSpec {
    pub name: NpmName,
    pub version: semver::Version,
}

impl fmt::Display for NpmSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Why a root spec is not an exact pin; the caller turns it into an error
/// with a hint naming the registry's current version.
#[derive(Debug, PartialEq)]
pub enum Unpinned {
    /// `name` alone, `name@latest`, `name@^1`: the name is fine, the version is not.
    Floating {
        name: NpmName,
        requested: Option<String>,
    },
}

/// Parse a root spec. `Ok(Err(Unpinned))` when the name is valid but the
/// version floats, so the caller can look up the exact version for the hint.
pub fn parse_root(input: &str) -> Result<std::result::Result<NpmSpec, Unpinned>> {
    if let Some(kind) = non_registry_kind(input) {
        return Err(Error::usage(format!(
            "`{}` is a {kind}, which runs code that no hash pins",
            shown(input)
        ))
        .with_hint("publish it to your registry and launch it as `<name>@<exact-version>`"));
    }
    let (name, version) = split_name_version(input);
    // npm runs existing packages with legacy names (`JSONStream`), so safex
    // does too: the strict form is only for names being created, which
    // safex never does. Nothing in the cache is keyed by a name.
    let name = NpmName::parse_legacy(name)?;
    let Some(version) = version else {
        return Ok(Err(Unpinned::Floating {
            name,
            requested: None,
        }));
    };
    if version.starts_with("npm:") {
        return Err(Error::usage(format!("`{}` is an alias", shown(input)))
            .with_hint("launch the real package by its own name"));
    }
    match semver::Version::parse(version) {
        Ok(v) => Ok(Ok(NpmSpec { name, version: v })),
        Err(_) => Ok(Err(Unpinned::Floating {
            name,
            requested: Some(version.to_owned()),
        })),
    }
}

/// Split `name@version`, minding the scope's leading `@`.
pub fn split_name_version(input: &str) -> (&str, Option<&str>) {
    let search_from = usize::from(input.starts_with('@'));
    match input[search_from..].find('@') {
        Some(i) => (
            &input[..search_from + i],
            Some(&input[search_from + i + 1..]),
        ),
        None => (input, None),
    }
}

/// Specs that do not name a registry package: git, URLs, paths, GitHub shorthand.
fn non_registry_kind(input: &str) -> Option<&'static str> {
    let lower = input.to_ascii_lowercase();
    let (_, version) = split_name_version(input);
    let version = version.unwrap_or("");
    for (prefix, kind) in [
        ("git+", "git reference"),
        ("git:", "git reference"),
        ("github:", "GitHub reference"),
        ("gitlab:", "GitLab reference"),
        ("bitbucket:", "Bitbucket reference"),
        ("gist:", "gist reference"),
        ("http:", "URL"),
        ("https:", "URL"),
        ("file:", "local path"),
        ("link:", "local path"),
        ("workspace:", "workspace reference"),
    ] {
        if lower.starts_with(prefix) || version.to_ascii_lowercase().starts_with(prefix) {
            return Some(kind);
        }
    }
    if input.starts_with('.')
        || input.starts_with('/')
        || input.starts_with("~/")
        || input.contains('\\')
    {
        return Some("local path");
    }
    if lower.ends_with(".tgz") || lower.ends_with(".tar.gz") || lower.ends_with(".tar") {
        return Some("tarball path");
    }
    if !input.starts_with('@') && input.contains('/') {
        return Some("GitHub shorthand or path");
    }
    None
}

/// What a dependency's spec string asks for, as npm reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum DepSpec {
    Range(nodejs_semver::Range),
    Tag(String),
    /// `npm:real-name@spec`: installed under the dependency's key, but it is `real-name`.
    Alias(NpmName, Box<DepSpec>),
}

impl DepSpec {
    /// The registry package a dependency entry `key: raw` asks for, with the
    /// spec that applies to it: an alias's real name and inner spec, else
    /// the key itself. `None` for what is not a registry spec or a key that
    /// is not a package name.
    pub fn target(key: &str, raw: &str) -> Option<(NpmName, DepSpec)> {
        match DepSpec::parse(raw).ok()? {
            DepSpec::Alias(real, inner) => Some((real, *inner)),
            spec => Some((NpmName::parse_legacy(key).ok()?, spec)),
        }
    }

    /// Parse a dependency spec; `Err` carries a description of why it is not a
    /// registry spec (git, URL, path), for the caller to name the dependent.
    pub fn parse(raw: &str) -> std::result::Result<DepSpec, String> {
        let s = raw.trim();
        if let Some(rest) = s.strip_prefix("npm:") {
            let (name, ver) = split_name_version(rest);
            let name = NpmName::parse_legacy(name).map_err(|e| e.message)?;
            let inner = DepSpec::parse(ver.unwrap_or("*"))?;
            if matches!(inner, DepSpec::Alias(..)) {
                return Err("an alias of an alias".into());
            }
            return Ok(DepSpec::Alias(name, Box::new(inner)));
        }
        if let Some(kind) = non_registry_kind(s) {
            return Err(format!("a {kind}"));
        }
        let range_src = if s.is_empty() { "*" } else { s };
        match nodejs_semver::Range::parse(range_src) {
            Ok(r) => Ok(DepSpec::Range(r)),
            Err(_) if is_tag(s) => Ok(DepSpec::Tag(s.to_owned())),
            Err(_) => Err(format!(
                "`{}`, which is neither a version range nor a dist-tag",
                shown(s)
            )),
        }
    }
}

/// npm's `semver.satisfies`, except for build metadata. npm ignores it when
/// comparing (`1.0.0+evil` satisfies `1.0.0`, and sorts equal to it), so a
/// registry that lists `1.0.0+evil` beside or instead of `1.0.0` would get it
/// picked for a dependency pinned to `1.0.0`, under a name every audit, lock
/// review and deny list reads as `1.0.0`. Real registries strip build
/// metadata on publish, so a version that carries it is never admitted by a
/// range here: only an exactly pinned root names one.
pub fn range_admits(range: &nodejs_semver::Range, version: &nodejs_semver::Version) -> bool {
    version.build.is_empty() && range.satisfies(version)
}

/// dist-tags are URL-safe words that are not ranges (`latest`, `next`, `beta`).
fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == 'v')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_targets() {
        let t = |k: &str, raw: &str| DepSpec::target(k, raw).map(|(n, s)| (n.to_string(), s));
        let (name, spec) = t("b", "^1.2.0").unwrap();
        assert_eq!(name, "b");
        assert!(matches!(spec, DepSpec::Range(_)));
        let (name, spec) = t("b", "npm:@s/real@^3").unwrap();
        assert_eq!(name, "@s/real");
        assert!(matches!(spec, DepSpec::Range(_)));
        assert!(matches!(t("b", "next").unwrap().1, DepSpec::Tag(_)));
        assert!(t("b", "git+https://example.invalid/x.git").is_none());
        assert!(t("../b", "^1").is_none());
    }

    #[test]
    fn exact_pins() {
        for (input, name, ver) in [
            ("a@1.0.0", "a", "1.0.0"),
            ("@scope/name@1.2.3", "@scope/name", "1.2.3"),
            (
                "@acme/mcp-server@1.2.3-rc.1",
                "@acme/mcp-server",
                "1.2.3-rc.1",
            ),
            ("left-pad@1.3.0+build.5", "left-pad", "1.3.0+build.5"),
        ] {
            let spec = parse_root(input).unwrap().unwrap();
            assert_eq!(spec.name.as_str(), name);
            assert_eq!(spec.version.to_string(), ver);
        }
    }

    #[test]
    fn floating_specs_keep_their_name() {
        for (input, requested) in [
            ("a", None),
            ("@s/a", None),
            ("a@latest", Some("latest")),
            ("a@^1.0.0", Some("^1.0.0")),
            ("a@1.x", Some("1.x")),
            ("a@>=1", Some(">=1")),
            ("a@1.0", Some("1.0")),
            ("a@v1.0.0", Some("v1.0.0")),
            ("a@=1.0.0", Some("=1.0.0")),
            ("@s/a@next", Some("next")),
        ] {
            match parse_root(input).unwrap() {
                Err(Unpinned::Floating { requested: r, .. }) => {
                    assert_eq!(r.as_deref(), requested, "{input}")
                }
                Ok(s) => panic!("{input} parsed as pinned {s}"),
            }
        }
    }

    #[test]
    fn non_registry_and_hostile_specs_are_usage_errors() {
        let long = format!("{}@1.0.0", "a".repeat(300));
        for input in [
            "github:x/y",
            "git+https://h/x.git",
            "git://h/x.git",
            "./dir",
            "../dir",
            "/abs/dir",
            "file:../x",
            "http://127.0.0.1:1/x.tgz",
            "https://h/x.tgz",
            "x/y",
            "x.tgz",
            "a@npm:b@1.0.0",
            "../evil@1.0.0",
            "@scope/../x@1.0.0",
            "@scope/x/y@1.0.0",
            "a b@1.0.0",
            "%2e%2e@1.0.0",
            ".hidden@1.0.0",
            "_under@1.0.0",
            "@/x@1.0.0",
            "@s/@1.0.0",
            "node_modules@1.0.0",
            "a\u{0}b@1.0.0",
            &long,
        ] {
            let err = parse_root(input).expect_err(input);
            assert_eq!(err.kind, crate::error::Kind::Usage, "{input}");
        }
    }

    #[test]
    fn dependency_specs() {
        let r = |s: &str| matches!(DepSpec::parse(s), Ok(DepSpec::Range(_)));
        for s in [
            "^1.2",
            "^1.2 || >=2 <3",
            "1.x",
            "1.0.0 - 2.0.0",
            "*",
            "",
            "~1.2.3",
            ">=1.0.0-rc.1",
        ] {
            assert!(r(s), "{s}");
        }
        assert_eq!(DepSpec::parse("latest"), Ok(DepSpec::Tag("latest".into())));
        assert_eq!(DepSpec::parse("next"), Ok(DepSpec::Tag("next".into())));
        match DepSpec::parse("npm:string-width@^4.2.0").unwrap() {
            DepSpec::Alias(n, inner) => {
                assert_eq!(n.as_str(), "string-width");
                assert!(matches!(*inner, DepSpec::Range(_)));
            }
            other => panic!("{other:?}"),
        }
        for s in [
            "github:a/b",
            "git+ssh://x",
            "file:../a",
            "https://x/y.tgz",
            "a/b",
            "npm:../x@1",
        ] {
            assert!(DepSpec::parse(s).is_err(), "{s}");
        }
        assert!(NpmName::parse_legacy("JSONStream").is_ok());
        assert!(NpmName::parse_strict("JSONStream").is_err());
        match parse_root("JSONStream@1.3.5").unwrap() {
            Ok(spec) => assert_eq!(spec.to_string(), "JSONStream@1.3.5"),
            Err(e) => panic!("{e:?}"),
        }
        assert!(parse_root("../x@1.0.0").is_err());
    }
}
