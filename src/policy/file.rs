//! One policy file as written: every key optional, unknown keys refused, and
//! every value kept with its position so an error can name the line.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub registries: Option<RawRegistries>,
    pub packages: Option<RawPackages>,
    pub release: Option<RawRelease>,
    pub scripts: Option<RawMode>,
    pub python: Option<RawPython>,
    pub lock: Option<RawMode>,
    pub archives: Option<RawArchives>,
    pub env: Option<RawEnv>,
    pub audit: Option<RawAudit>,
    pub known_compromised: Option<RawKnown>,
    pub tools: Option<super::tools::RawTools>,
    pub mcp: Option<super::tools::RawMcp>,
    pub sandbox: Option<RawSandbox>,
    /// `[servers."<pattern>"]`: per-server grants.
    pub servers: Option<std::collections::BTreeMap<String, Spanned<RawServer>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSandbox {
    pub mode: Option<Spanned<String>>,
    pub net: Option<Spanned<String>>,
    pub allow_net: Option<Spanned<Vec<String>>>,
    pub read: Option<Spanned<Vec<String>>>,
    pub write: Option<Spanned<Vec<String>>>,
    pub cwd: Option<Spanned<String>>,
    pub profile: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub allow_net: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistries {
    pub npm: Option<Spanned<String>>,
    pub pypi: Option<Spanned<String>>,
    pub allowed_hosts: Option<Spanned<Vec<String>>>,
    pub file_hosts: Option<Spanned<Vec<String>>>,
    pub require_configured: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    pub allow: Option<Spanned<Vec<String>>>,
    pub deny: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelease {
    pub min_age: Option<Spanned<String>>,
    pub unknown: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMode {
    pub mode: Option<Spanned<String>>,
}

/// Sizes as `"4GiB"`, `"512MiB"`, `"100KiB"` or a byte count.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArchives {
    pub max_file_size: Option<Spanned<String>>,
    pub max_total_size: Option<Spanned<String>>,
    pub max_entries: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPython {
    pub pth: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnv {
    pub mode: Option<Spanned<String>>,
    pub pass: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub log: Option<Spanned<String>>,
    pub arguments: Option<Spanned<String>>,
}

/// Entries of the known-compromised list (the shipped file, or an admin's
/// additions under `[known_compromised]` in any layer).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKnown {
    #[serde(default)]
    pub npm: Vec<KnownEntry>,
    #[serde(default)]
    pub pypi: Vec<KnownEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownEntry {
    pub name: String,
    pub versions: Vec<String>,
    pub reference: String,
    #[serde(default)]
    pub incident: Option<String>,
}

/// A parsed file and the text it came from (for line numbers).
pub struct Parsed {
    pub raw: RawPolicy,
    pub text: String,
    pub source: String,
}

impl Parsed {
    pub fn parse(text: String, source: &str) -> Result<Parsed> {
        let raw: RawPolicy = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(0);
            let what = match e.span().and_then(|s| key_at(&text, s.start)) {
                Some(k) => format!("`{k}`: {}", e.message().trim()),
                None => e.message().trim().to_owned(),
            };
            Error::usage(format!("policy file {source}, line {line}: {what}"))
                .with_hint("see docs/policy.md for the keys and their values")
        })?;
        Ok(Parsed {
            raw,
            text,
            source: source.to_owned(),
        })
    }

    pub fn read(path: &Path, layer: &str) -> Result<Option<Parsed>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(text, &format!("`{}` ({layer})", path.display())).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!(
                "cannot read policy file `{}`: {e}",
                path.display()
            ))),
        }
    }

    /// An error about one key's value, naming the file, line and key.
    pub fn bad(&self, key: &str, span: Range<usize>, why: &str) -> Error {
        Error::usage(format!(
            "policy file {}, line {}: `{key}` {why}",
            self.source,
            line_of(&self.text, span.start)
        ))
        .with_hint("see docs/policy.md for the keys and their values")
    }
}

/// The dotted key whose value sits at `offset`: the `key = ` on that line,
/// under the nearest `[table]` header above it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
