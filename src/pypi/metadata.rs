//! Core metadata (`METADATA`, PEP 566/643): the fields resolution needs.
//! Read from a PEP 658 metadata file when the index offers one, else from
//! the wheel itself (never from an sdist: nothing is ever built).

use std::str::FromStr;

use pep440_rs::VersionSpecifiers;
use pep508_rs::Requirement;

use crate::error::{Error, Result};
use crate::redact::shown;

#[derive(Debug, Clone)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub requires_python: Option<VersionSpecifiers>,
    pub requires_dist: Vec<Requirement>,
}

/// Parse the RFC 822-style header block. Unknown or malformed
/// `Requires-Dist` lines are an error naming the package: silently dropping
/// a dependency would launch a broken or different tree.
pub fn parse(text: &str, label: &str) -> Result<Metadata> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(fk, _)| fk == k)
            .map(|(_, v)| v.clone())
    };
    let name = get("name")
        .ok_or_else(|| Error::unsafe_pkg(format!("the metadata of `{label}` has no `Name`")))?;
    let version = get("version")
        .ok_or_else(|| Error::unsafe_pkg(format!("the metadata of `{label}` has no `Version`")))?;
    let requires_python = match get("requires-python").filter(|s| !s.is_empty()) {
        Some(s) => Some(VersionSpecifiers::from_str(&s).map_err(|e| {
            Error::unsafe_pkg(format!(
                "`{label}` has an invalid `Requires-Python` `{}`: {e}",
                shown(&s)
            ))
        })?),
        None => None,
    };
    let mut requires_dist = Vec::new();
    for (k, v) in &fields {
        if k != "requires-dist" {
            continue;
        }
        let req = Requirement::from_str(v).map_err(|e| {
            Error::unsafe_pkg(format!(
                "`{label}` has an invalid `Requires-Dist` `{}`: {e}",
                shown(v)
            ))
        })?;
        requires_dist.push(req);
    }
    Ok(Metadata {
        name,
        version,
        requires_python,
        requires_dist,
    })
}

/// `METADATA` from inside a verified wheel: the one `*.dist-info/METADATA`
/// at the top level, read through the same checked zip reader that installs.
pub fn from_wheel(
    wheel: fs_err::File,
    label: &str,
    limits: &crate::archive::Limits,
) -> Result<Metadata> {
    let mut zip = crate::archive::zip::open_wheel_from(wheel, label, limits)?;
    let found: Vec<_> = zip
        .files()
        .iter()
        .filter(|m| {
            let mut parts = m.name.split('/');
            matches!((parts.next(), parts.next(), parts.next()), (Some(d), Some("METADATA"), None) if d.ends_with(".dist-info"))
        })
        .cloned()
        .collect();
    let [member] = found.as_slice() else {
        return Err(Error::unsafe_pkg(format!(
            "`{label}` has {} `*.dist-info/METADATA` files, a wheel has exactly one",
            found.len()
        )));
    };
    let (bytes, _) = zip.read(member, 16 * 1024 * 1024)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::unsafe_pkg(format!("`{}` in `{label}` is not UTF-8 text", member.name))
    })?;
    parse(&text, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let m = parse(
            "Metadata-Version: 2.1\nName: mcp-server-time\nVersion: 2026.10.19\nRequires-Python: >=3.10\nRequires-Dist: mcp>=1.0.0\nRequires-Dist: tzdata; sys_platform == \"win32\"\nRequires-Dist: pytest;\n  extra == \"test\"\nDescription-Content-Type: text/markdown\n\nRequires-Dist: not-a-header\n",
            "t",
        )
        .unwrap();
        assert_eq!(m.name, "mcp-server-time");
        assert_eq!(m.version, "2026.10.19");
        assert_eq!(m.requires_python.unwrap().to_string(), ">=3.10");
        assert_eq!(m.requires_dist.len(), 3);
        assert!(parse("Name: x\n", "t").is_err());
        assert!(parse("Name: x\nVersion: 1\nRequires-Dist: ???\n", "t").is_err());
    }
}
