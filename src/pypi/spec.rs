//! PyPI root specs: `name==1.2.3`, `name@1.2.3`, `name[extra]==1.2.3`.
//! Anything that floats (bare names, `>=`, `~=`, `==1.*`, `@latest`) or that
//! points outside the index (URLs, git, paths) is refused before any work.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::{ExtraName, PackageName};

use crate::error::{Error, Result};
use crate::redact::shown;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PySpec {
    pub name: PackageName,
    pub extras: Vec<ExtraName>,
    pub version: Version,
}

impl fmt::Display for PySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_ref())?;
        if !self.extras.is_empty() {
            let extras: Vec<&str> = self.extras.iter().map(|e| e.as_ref()).collect();
            write!(f, "[{}]", extras.join(","))?;
        }
        write!(f, "=={}", self.version)
    }
}

/// A valid name whose version is not an exact pin.
#[derive(Debug, PartialEq)]
pub struct Floating {
    pub name: PackageName,
    pub requested: Option<String>,
}

/// PEP 508 names: letters, digits, `.`, `_`, `-`; alphanumeric at both ends.
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 200
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

pub fn parse_root(input: &str) -> Result<std::result::Result<PySpec, Floating>> {
    let s = input.trim();
    if outside_the_index(s) {
        return Err(Error::usage(format!(
            "`{}` is a URL, path or VCS reference, which runs code that no hash pins",
            shown(input)
        ))
        .with_hint("publish it to your index and launch it as `<name>==<exact-version>`"));
    }
    let (name, rest) = name_of(input, s)?;
    let (extras, rest) = extras_of(input, rest)?;
    let rest = rest.trim();
    if !(rest.is_empty() || rest.starts_with(['=', '@', '<', '>', '~', '!'])) {
        return Err(
            Error::usage(format!("`{}` is not a package spec", shown(input))).with_hint(
                "write `<name>==<exact-version>`, for example `mcp-server-time==2026.10.19`",
            ),
        );
    }
    Ok(match exact_version(rest) {
        Some(version) => Ok(PySpec {
            name,
            extras,
            version,
        }),
        None => Err(Floating {
            name,
            requested: (!rest.is_empty()).then(|| rest.to_owned()),
        }),
    })
}

/// A URL, a path, a VCS reference or an archive file: not a name on the
/// index.
fn outside_the_index(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    [
        "git+", "git:", "http:", "https:", "file:", "hg+", "svn+", "bzr+",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
        || s.contains(" @ ")
        || s.contains("://")
        || s.starts_with('.')
        || s.starts_with('/')
        || s.starts_with('~')
        || s.contains('\\')
        || lower.ends_with(".whl")
        || lower.ends_with(".tar.gz")
        || lower.ends_with(".zip")
}

/// The package name at the start of `s`, and what follows it.
fn name_of<'a>(input: &str, s: &'a str) -> Result<(PackageName, &'a str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(s.len());
    let (name_str, rest) = s.split_at(end);
    if !valid_name(name_str) {
        return Err(Error::usage(format!("`{}` is not a valid Python package name", shown(input)))
            .with_hint("names are letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit"));
    }
    let name = PackageName::from_str(name_str).map_err(|e| {
        Error::usage(format!(
            "`{}` is not a valid package name: {e}",
            shown(name_str)
        ))
    })?;
    Ok((name, rest))
}

/// The `[extra,...]` after the name, sorted and deduplicated (none without
/// brackets), and what follows it.
fn extras_of<'a>(input: &str, rest: &'a str) -> Result<(Vec<ExtraName>, &'a str)> {
    let Some(after) = rest.strip_prefix('[') else {
        return Ok((Vec::new(), rest));
    };
    let close = after
        .find(']')
        .ok_or_else(|| Error::usage(format!("`{}` has an unclosed `[`", shown(input))))?;
    let mut extras = Vec::new();
    for e in after[..close]
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if !valid_name(e) {
            return Err(Error::usage(format!(
                "`{}` has an invalid extra `{}`",
                shown(input),
                shown(e)
            )));
        }
        extras.push(ExtraName::from_str(e).map_err(|err| Error::usage(err.to_string()))?);
    }
    extras.sort();
    extras.dedup();
    Ok((extras, &after[close + 1..]))
}

/// The version `==x.y.z` or `@x.y.z` pins exactly; `None` for anything that
/// floats (`===`, ranges, wildcards, several clauses, markers, nothing).
fn exact_version(rest: &str) -> Option<Version> {
    let v = if let Some(v) = rest.strip_prefix("==") {
        if v.starts_with('=') {
            return None;
        }
        v.trim()
    } else {
        rest.strip_prefix('@')?.trim()
    };
    if v.contains('*') || v.contains(',') || v.contains(';') {
        return None;
    }
    // A local version (`1.0.0+cpu`) named exactly is an exact pin: it is
    // the only way to ask for one (an exact public pin never selects it).
    Version::from_str(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_pins() {
        for (input, shown) in [
            ("mcp-server-time==2026.10.19", "mcp-server-time==2026.10.19"),
            ("mcp-server-time@2026.10.19", "mcp-server-time==2026.10.19"),
            ("Mcp_Server.Time==1.0", "mcp-server-time==1.0"),
            ("pkg[cli]==1.0", "pkg[cli]==1.0"),
            ("pkg[b, a]==1.0rc1", "pkg[a,b]==1.0rc1"),
            ("pkg == 1.0.post1", "pkg==1.0.post1"),
            ("pkg==1.0+cpu", "pkg==1.0+cpu"),
            ("pkg@1.0.0+Cu121", "pkg==1.0.0+cu121"),
        ] {
            let spec = parse_root(input).unwrap().unwrap();
            assert_eq!(spec.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn floating_specs() {
        for (input, requested) in [
            ("pkg", None),
            ("pkg>=1.0", Some(">=1.0")),
            ("pkg~=1.0", Some("~=1.0")),
            ("pkg==1.*", Some("==1.*")),
            ("pkg@latest", Some("@latest")),
            ("pkg===1.0", Some("===1.0")),
            ("pkg!=1.0", Some("!=1.0")),
            ("pkg==1.0,<2", Some("==1.0,<2")),
        ] {
            let got = parse_root(input).unwrap().expect_err(input);
            assert_eq!(got.requested.as_deref(), requested, "{input}");
        }
    }

    #[test]
    fn refused_specs() {
        for input in [
            "git+https://h/x.git",
            "https://h/x-1.0-py3-none-any.whl",
            "pkg @ https://h/x.whl",
            "./dir",
            "/abs",
            "x-1.0-py3-none-any.whl",
            "x-1.0.tar.gz",
            "../evil==1.0",
            "a/b==1.0",
            "-pkg==1.0",
            "pkg-==1.0",
            "p%2e==1.0",
            "",
            "pkg[bad extra]==1.0",
            "pkg[x==1.0",
        ] {
            let err = parse_root(input).expect_err(input);
            assert_eq!(err.kind, crate::error::Kind::Usage, "{input}");
        }
    }
}
