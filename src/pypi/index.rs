//! The Python simple index: project pages in HTML (PEP 503) or JSON
//! (PEP 691), the index the user's pip or uv already uses, and the
//! credentials that go with it.
//!
//! Pages are untrusted input, parsed by hand here: a file's name comes from
//! its URL (never from the link text), every hash is checked to be one, and a
//! name that is not a plain file name is an unsafe package. Credentials come
//! from the index URL's userinfo or `~/.netrc` and are sent only to the
//! configured index's own origin (scheme, host and port), never in the URL.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;
use url::Url;

use crate::env_vars as ev;
use crate::error::{Error, Result};
use crate::http::{Fault, Http};
use crate::pypi::tags::{WheelName, normalize, sdist_version, valid_project_name};
use crate::redact;
use crate::settings::Credential;

/// PEP 691 content negotiation: JSON preferred, HTML (PEP 503) accepted.
const SIMPLE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// pip's and uv's own settings, honoured when safex's are absent.
const PIP_INDEX_URL: &str = "PIP_INDEX_URL";
const PIP_EXTRA_INDEX_URL: &str = "PIP_EXTRA_INDEX_URL";
const PIP_CONFIG_FILE: &str = "PIP_CONFIG_FILE";
const UV_DEFAULT_INDEX: &str = "UV_DEFAULT_INDEX";
const UV_INDEX_URL: &str = "UV_INDEX_URL";
const UV_INDEX: &str = "UV_INDEX";
const NETRC: &str = "NETRC";

/// One file that a project page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The last segment of the URL's path, percent-decoded; a plain name.
    pub filename: String,
    /// Absolute; fragment and userinfo removed (credentials come only from
    /// `PypiConfig::credential_for`). Any scheme and host: the foreign-host
    /// rule is the caller's to apply.
    pub url: Url,
    /// Lowercase hex, checked to be 64 hex digits.
    pub sha256: Option<String>,
    pub requires_python: Option<String>,
    pub yanked: bool,
    /// PEP 658/714: `Some` when a `<url>.metadata` file is offered; the inner
    /// value is its sha256 when the index gives one.
    pub metadata: Option<Option<String>>,
    /// PEP 700, JSON pages only.
    pub upload_time: Option<String>,
}

// ---------------------------------------------------------------------------
// HTML (PEP 503)

/// The files of a PEP 503 page. `page` is the URL the page was served from
/// (without userinfo): relative links resolve against it, or against the
/// first `<base href>`, which HTML applies to the whole document.
pub fn parse_html(page: &Url, html: &str) -> Result<Vec<IndexFile>> {
    let tags = scan_tags(html);
    let mut base = page.clone();
    if let Some(href) = tags
        .iter()
        .filter(|t| t.name == "base")
        .find_map(|t| t.attr("href"))
    {
        base = page.join(href.trim()).map_err(|e| {
            Error::registry(format!(
                "the index page `{}` has a `<base href>` that is not a URL: {e}",
                redact::url(page)
            ))
        })?;
    }
    let mut files = Vec::new();
    for a in tags.iter().filter(|t| t.name == "a") {
        let Some(href) = a.attr("href") else {
            continue;
        };
        let url = base.join(href.trim()).map_err(|e| {
            Error::registry(format!(
                "the index page `{}` links to `{}`, which is not a URL: {e}",
                redact::url(page),
                href.escape_debug()
            ))
        })?;
        let Some((filename, url, fragment)) = file_of(page, url)? else {
            continue;
        };
        let sha256 = match fragment.split('&').find_map(|f| f.strip_prefix("sha256=")) {
            Some(h) => Some(checked_sha256(h, &filename, page)?),
            None => None,
        };
        // PEP 714 renamed `data-dist-info-metadata` to `data-core-metadata`.
        let metadata = match a
            .attr("data-core-metadata")
            .or_else(|| a.attr("data-dist-info-metadata"))
        {
            None => None,
            Some(v) if v.trim().eq_ignore_ascii_case("false") => None,
            Some(v) => Some(match v.trim().strip_prefix("sha256=") {
                Some(h) => Some(checked_sha256(h, &filename, page)?),
                None => None,
            }),
        };
        files.push(IndexFile {
            filename,
            url,
            sha256,
            requires_python: a
                .attr("data-requires-python")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            yanked: a.attr("data-yanked").is_some(),
            metadata,
            upload_time: None,
        });
    }
    Ok(files)
}

/// A start tag: lowercase name, attributes with lowercase names and
/// entity-decoded values, the first of duplicates kept (as HTML does).
struct HtmlTag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl HtmlTag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Start tags in document order. Comments, doctypes, end tags and the
/// content of `<script>`/`<style>` are skipped: a link there is not a link.
fn scan_tags(html: &str) -> Vec<HtmlTag> {
    let b = html.as_bytes();
    let n = b.len();
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        i += off + 1;
        let rest = &html[i..];
        if let Some(comment) = rest.strip_prefix("!--") {
            i = comment.find("-->").map_or(n, |e| i + 3 + e + 3);
            continue;
        }
        if rest.starts_with(['!', '?', '/']) {
            i = rest.find('>').map_or(n, |e| i + e + 1);
            continue;
        }
        let start = i;
        while i < n && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i == start {
            continue; // a literal `<`
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            while i < n && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= n {
                break;
            }
            if b[i] == b'>' {
                i += 1;
                break;
            }
            let a_start = i;
            while i < n && !b[i].is_ascii_whitespace() && !matches!(b[i], b'>' | b'/' | b'=') {
                i += 1;
            }
            if i == a_start {
                i += 1; // a stray `=`
                continue;
            }
            let a_name = html[a_start..i].to_ascii_lowercase();
            while i < n && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = "";
            if i < n && b[i] == b'=' {
                i += 1;
                while i < n && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i < n && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i] as char;
                    let v_start = i + 1;
                    let end = html[v_start..].find(q).map_or(n, |e| v_start + e);
                    value = &html[v_start..end];
                    i = (end + 1).min(n);
                } else {
                    let v_start = i;
                    while i < n && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = &html[v_start..i];
                }
            }
            if !attrs.iter().any(|(k, _)| *k == a_name) {
                attrs.push((a_name, decode_entities(value)));
            }
        }
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            i = html[i..]
                .to_ascii_lowercase()
                .find(&close)
                .map_or(n, |e| i + e);
        }
        tags.push(HtmlTag { name, attrs });
    }
    tags
}

/// Character references in attribute values: the named ones an index uses
/// (`&gt;=3.8` in `data-requires-python` is the common case) and numeric
/// ones. Anything else stays as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&e| e <= 10).and_then(|e| {
            let c = match &rest[1..e] {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                num => num.strip_prefix('#').and_then(|d| {
                    let code = match d.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => d.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// JSON (PEP 691)

#[derive(Deserialize)]
struct JsonPage {
    #[serde(default)]
    meta: Option<JsonMeta>,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonMeta {
    #[serde(rename = "api-version", default)]
    api_version: Option<String>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: Value,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Value,
    #[serde(rename = "core-metadata", default)]
    core_metadata: Value,
    /// The PEP 658 name, and the spelling some indexes used for it.
    #[serde(
        rename = "dist-info-metadata",
        alias = "data-dist-info-metadata",
        default
    )]
    dist_info_metadata: Value,
    #[serde(rename = "upload-time", default)]
    upload_time: Option<String>,
}

/// The files of a PEP 691 JSON page; relative `url`s resolve against `page`.
pub fn parse_json(page: &Url, bytes: &[u8]) -> Result<Vec<IndexFile>> {
    let shown = redact::url(page);
    let doc: JsonPage = serde_json::from_slice(bytes).map_err(|e| {
        Error::registry(format!(
            "the index page `{shown}` is not a valid simple-API JSON page: {e}"
        ))
    })?;
    // PEP 691: a client must refuse a major API version it does not know.
    if let Some(v) = doc.meta.and_then(|m| m.api_version)
        && v.split('.').next() != Some("1")
    {
        return Err(Error::registry(format!(
            "the index page `{shown}` uses simple API version `{}`; safex reads version 1",
            v.escape_debug()
        ))
        .with_hint("ask the index's operator, or point safex at an index that serves version 1"));
    }
    let mut files = Vec::with_capacity(doc.files.len());
    for f in doc.files {
        let url = page.join(f.url.trim()).map_err(|e| {
            Error::registry(format!(
                "the index page `{shown}` gives `{}` the URL `{}`, which is not a URL: {e}",
                f.filename.escape_debug(),
                f.url.escape_debug()
            ))
        })?;
        let mut url = without_userinfo(&url);
        url.set_fragment(None);
        let filename = checked_filename(&f.filename, page)?;
        let sha256 = match f.hashes.get("sha256") {
            None | Some(Value::Null) => None,
            Some(Value::String(h)) => Some(checked_sha256(h, &filename, page)?),
            Some(_) => return Err(bad_hash(&filename, page)),
        };
        // PEP 714: `core-metadata` when present, else the older name.
        let offered = if f.core_metadata.is_null() {
            &f.dist_info_metadata
        } else {
            &f.core_metadata
        };
        let metadata = match offered {
            Value::Bool(true) => Some(None),
            Value::Object(m) => Some(match m.get("sha256") {
                Some(Value::String(h)) => Some(checked_sha256(h, &filename, page)?),
                None => None,
                Some(_) => return Err(bad_hash(&filename, page)),
            }),
            _ => None,
        };
        files.push(IndexFile {
            filename,
            url,
            sha256,
            requires_python: f
                .requires_python
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty()),
            yanked: match f.yanked {
                Value::Bool(b) => b,
                Value::String(_) => true,
                _ => false,
            },
            metadata,
            upload_time: f.upload_time,
        });
    }
    Ok(files)
}

// ---------------------------------------------------------------------------
// Shared checks

/// The file an anchor names: `(filename, url without fragment or userinfo,
/// fragment)`, or `None` for a link to a directory (not a file).
fn file_of(page: &Url, url: Url) -> Result<Option<(String, Url, String)>> {
    let fragment = url.fragment().unwrap_or_default().to_owned();
    let mut url = without_userinfo(&url);
    url.set_fragment(None);
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default()
        .to_owned();
    if last.is_empty() {
        return Ok(None);
    }
    let decoded = percent_decode(&last).ok_or_else(|| {
        Error::unsafe_pkg(format!(
            "the index page `{}` lists a file whose name is not UTF-8: `{last}`",
            redact::url(page)
        ))
    })?;
    Ok(Some((checked_filename(&decoded, page)?, url, fragment)))
}

/// A file name from an index is a plain name: no separators, no `..`, no
/// control characters. Anything else is an attempt to write elsewhere.
fn checked_filename(name: &str, page: &Url) -> Result<String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if plain {
        Ok(name.to_owned())
    } else {
        Err(Error::unsafe_pkg(format!(
            "the index page `{}` lists a file named `{}`, which is not a plain file name",
            redact::url(page),
            name.escape_debug()
        ))
        .with_hint("the index may be broken or hostile; tell its operator"))
    }
}

fn checked_sha256(value: &str, filename: &str, page: &Url) -> Result<String> {
    let v = value.trim().to_ascii_lowercase();
    if v.len() == 64 && v.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(bad_hash(filename, page))
    }
}

fn bad_hash(filename: &str, page: &Url) -> Error {
    Error::registry(format!(
        "the index page `{}` gives `{}` a sha256 that is not 64 hex digits",
        redact::url(page),
        filename.escape_debug()
    ))
    .with_hint("the index is broken or tampered with; tell its operator")
}

/// `%XX` decoding; `None` if the result is not UTF-8. A `%` not followed by
/// two hex digits stays as written.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && h.bytes().all(|c| c.is_ascii_hexdigit())
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------
// Configuration

/// Where pip's configuration and the netrc file are, in pip's order.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// `pip.conf` files, lowest precedence first (a later file overrides an
    /// earlier one, as in pip): site-wide, `~/.pip/pip.conf`, the XDG user
    /// file, then `$PIP_CONFIG_FILE`. Missing files are skipped.
    pub pip_conf: Vec<PathBuf>,
    pub netrc: Option<PathBuf>,
}

impl ConfigSources {
    /// The files pip would read, given the environment and home directory.
    /// As in pip, an existing `$PIP_CONFIG_FILE` replaces the user files.
    pub fn discover(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> ConfigSources {
        let basename = if cfg!(windows) { "pip.ini" } else { "pip.conf" };
        let mut pip_conf = Vec::new();
        if cfg!(windows) {
            if let Some(p) = var("ProgramData") {
                pip_conf.push(Path::new(&p).join("pip").join(basename));
            }
        } else if cfg!(target_os = "macos") {
            pip_conf.push(PathBuf::from("/Library/Application Support/pip").join(basename));
        } else {
            let dirs = var("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
            for d in dirs.split(':').filter(|d| !d.is_empty()) {
                pip_conf.push(Path::new(d).join("pip").join(basename));
            }
            pip_conf.push(Path::new("/etc").join(basename));
        }
        // `PIP_CONFIG_FILE=/dev/null` is pip's way to say "no user config".
        let env_file = var(PIP_CONFIG_FILE).map(PathBuf::from);
        if !env_file.as_ref().is_some_and(|p| p.exists()) {
            if let Some(home) = home {
                let legacy = if cfg!(windows) { "pip" } else { ".pip" };
                pip_conf.push(home.join(legacy).join(basename));
            }
            let user_dir = if cfg!(windows) {
                var("APPDATA").map(|a| Path::new(&a).join("pip"))
            } else if cfg!(target_os = "macos")
                && let Some(lib) = home
                    .map(|h| h.join("Library/Application Support/pip"))
                    .filter(|d| d.is_dir())
            {
                Some(lib)
            } else {
                var("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .or_else(|| home.map(|h| h.join(".config")))
                    .map(|d| d.join("pip"))
            };
            if let Some(d) = user_dir {
                pip_conf.push(d.join(basename));
            }
        }
        pip_conf.extend(env_file);
        let netrc = var(NETRC).map(PathBuf::from).or_else(|| {
            let home = home?;
            let dot = home.join(".netrc");
            if cfg!(windows) && !dot.is_file() {
                Some(home.join("_netrc"))
            } else {
                Some(dot)
            }
        });
        ConfigSources { pip_conf, netrc }
    }
}

/// The index safex reads, and what it knows of the user's pip/uv setup.
#[derive(Default)]
pub struct PypiConfig {
    /// The index and where that setting came from, for messages. May carry
    /// userinfo (the credential for its origin); never shown unredacted.
    pub index: Option<(Url, String)>,
    /// Extra indexes configured for pip or uv. safex reads only `index`
    /// (one index: no dependency confusion); these count as configured
    /// origins for `credential_for`. Entries that are not valid index URLs
    /// are left out, as they are never read.
    pub extra: Vec<Url>,
    /// `(host, login, password)` from netrc; the host `""` is `default`.
    pub netrc: Vec<(String, String, String)>,
}

impl fmt::Debug for PypiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PypiConfig")
            .field(
                "index",
                &self.index.as_ref().map(|(u, s)| (redact::url(u), s)),
            )
            .field(
                "extra",
                &self.extra.iter().map(redact::url).collect::<Vec<_>>(),
            )
            .field(
                "netrc",
                &self.netrc.iter().map(|(h, _, _)| h).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PypiConfig {
    /// `explicit` is the index the caller chose from `--index-url`,
    /// `SAFEX_PYPI_INDEX` or safex's config, with where it came from. Else
    /// `PIP_INDEX_URL`, `UV_DEFAULT_INDEX`, `UV_INDEX_URL`, then `index-url`
    /// from `pip.conf`.
    pub fn load(
        explicit: Option<(String, String)>,
        allowed_hosts: Option<&[String]>,
    ) -> Result<PypiConfig> {
        let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
        let sources = ConfigSources::discover(&ev::get, home.as_deref());
        Self::load_with(explicit, &ev::get, &sources, allowed_hosts)
    }

    /// `load`, with the environment and files given (for tests and for
    /// callers that have resolved them already). Empty variables are unset.
    pub fn load_with(
        explicit: Option<(String, String)>,
        var: &dyn Fn(&str) -> Option<String>,
        sources: &ConfigSources,
        allowed_hosts: Option<&[String]>,
    ) -> Result<PypiConfig> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let before_conf = explicit
            .or_else(|| var(PIP_INDEX_URL).map(|u| (u, PIP_INDEX_URL.to_owned())))
            .or_else(|| var(UV_DEFAULT_INDEX).map(|u| (u, UV_DEFAULT_INDEX.to_owned())))
            .or_else(|| var(UV_INDEX_URL).map(|u| (u, UV_INDEX_URL.to_owned())));
        let mut conf_index = None;
        let mut conf_extra = None;
        for path in &sources.pip_conf {
            let text = match fs_err::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // Unreadable but not needed: the index is chosen already.
                Err(_) if before_conf.is_some() => continue,
                Err(e) => {
                    return Err(Error::from(e).with_hint(format!(
                        "make pip's config file readable, or set `{}`",
                        ev::SAFEX_PYPI_INDEX
                    )));
                }
            };
            let (index, extra) = pip_conf_values(&text);
            if let Some(i) = index {
                conf_index = Some((i, format!("index-url in {}", path.display())));
            }
            if let Some(x) = extra {
                conf_extra = Some(x);
            }
        }
        let chosen = before_conf.or(conf_index);
        let index = match chosen {
            Some((raw, source)) => Some((parse_index_url(&raw, &source, allowed_hosts)?, source)),
            None => None,
        };
        let mut extra: Vec<Url> = var(PIP_EXTRA_INDEX_URL)
            .or(conf_extra)
            .into_iter()
            .chain(var(UV_INDEX))
            .flat_map(|list| {
                list.split_whitespace()
                    .map(|e| uv_index_url(e).to_owned())
                    .collect::<Vec<_>>()
            })
            .filter_map(|raw| parse_index_url(&raw, "extra", allowed_hosts).ok())
            .collect();
        extra.dedup();
        let netrc = sources
            .netrc
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| parse_netrc(&t))
            .unwrap_or_default();
        Ok(PypiConfig {
            index,
            extra,
            netrc,
        })
    }

    /// The index to read; an error that says how to configure one if none is.
    pub fn index(&self) -> Result<&Url> {
        self.index
            .as_ref()
            .map(|(u, _)| u)
            .ok_or_else(no_index_error)
    }

    /// The credential for a request to `url`, only when `url` has the origin
    /// (scheme, host, port) of the index safex reads: that index URL's
    /// userinfo (else that of an extra index on the same origin), else the
    /// netrc entry for the host (or netrc's `default`). A file on another
    /// host, the same host on another port, or another configured index
    /// gets nothing: safex never reads the extra indexes, so their
    /// credentials are never sent anywhere.
    pub fn credential_for(&self, url: &Url) -> Option<Credential> {
        let origin = url.origin();
        let (index, _) = self.index.as_ref()?;
        if index.origin() != origin || !origin.is_tuple() {
            return None;
        }
        let same_origin =
            std::iter::once(index).chain(self.extra.iter().filter(|u| u.origin() == origin));
        if let Some(u) = same_origin.clone().find(|u| !u.username().is_empty()) {
            let user = percent_decode(u.username())?;
            let pass = percent_decode(u.password().unwrap_or_default())?;
            return Some(basic(&user, &pass));
        }
        let host = url.host_str()?;
        self.netrc
            .iter()
            .find(|(h, _, _)| h.eq_ignore_ascii_case(host))
            .or_else(|| self.netrc.iter().find(|(h, _, _)| h.is_empty()))
            .map(|(_, login, password)| basic(login, password))
    }

    /// The other configured indexes (pip's and uv's extras) on an origin
    /// that is not the index's own: safex never fetches from them.
    pub fn other_indexes(&self) -> Vec<Url> {
        let own = self.index.as_ref().map(|(u, _)| u.origin());
        self.extra
            .iter()
            .filter(|u| Some(u.origin()) != own)
            .cloned()
            .collect()
    }
}

fn basic(user: &str, pass: &str) -> Credential {
    Credential::Basic(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

pub fn no_index_error() -> Error {
    Error::usage("no Python package index is configured").with_hint(format!(
        "pass `--index-url URL`, set `{}`, or set `{PIP_INDEX_URL}` or `index-url` in `pip.conf`",
        ev::SAFEX_PYPI_INDEX
    ))
}

/// `UV_INDEX` entries may be named: `name=https://...`.
fn uv_index_url(entry: &str) -> &str {
    match entry.split_once('=') {
        Some((name, url)) if !name.contains(':') && !name.contains('/') => url,
        _ => entry,
    }
}

/// An index base URL: the rule npm registry URLs follow
/// ([`crate::settings::parse_base_url`]).
fn parse_index_url(raw: &str, source: &str, allowed_hosts: Option<&[String]>) -> Result<Url> {
    crate::settings::parse_base_url(raw, "index", source, allowed_hosts)
}

/// `index-url` and `extra-index-url` from a `pip.conf` (INI). As in pip,
/// keys are case- and `_`/`-`-insensitive, a `[install]` value beats a
/// `[global]` one, and indented lines continue the previous value.
fn pip_conf_values(text: &str) -> (Option<String>, Option<String>) {
    let mut section = String::new();
    let mut entries: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t'])
            && let Some(last) = entries.last_mut()
        {
            last.2.push('\n');
            last.2.push_str(trimmed);
            continue;
        }
        if let Some(s) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_ascii_lowercase();
            continue;
        }
        let Some(sep) = trimmed.find(['=', ':']) else {
            continue;
        };
        let key = trimmed[..sep].trim().to_ascii_lowercase().replace('_', "-");
        entries.push((section.clone(), key, trimmed[sep + 1..].trim().to_owned()));
    }
    let get = |key: &str| {
        let find = |sec: &str| {
            entries
                .iter()
                .rev()
                .find(|(s, k, v)| s == sec && k == key && !v.trim().is_empty())
                .map(|(_, _, v)| v.trim().to_owned())
        };
        find("install").or_else(|| find("global"))
    };
    (get("index-url"), get("extra-index-url"))
}

/// `machine`/`login`/`password` entries of a netrc file, and `default` (as
/// the host `""`). `account` is skipped, `macdef` bodies too; `#` starts a
/// comment; tokens may be double-quoted. Entries without a password are left
/// out.
pub fn parse_netrc(text: &str) -> Vec<(String, String, String)> {
    let mut tokens = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&c) = chars.peek() else { break };
            if c == '#' {
                break;
            }
            let mut tok = String::new();
            if c == '"' {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => tok.extend(chars.next()),
                        c => tok.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    tok.push(c);
                }
            }
            tokens.push(tok);
        }
        if tokens.len() >= 2 && tokens[tokens.len() - 2] == "macdef" {
            // A macro body runs to the next empty line.
            tokens.truncate(tokens.len() - 2);
            for body in lines.by_ref() {
                if body.trim().is_empty() {
                    break;
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut current: Option<(String, String, Option<String>)> = None;
    let mut flush = |cur: &mut Option<(String, String, Option<String>)>| {
        if let Some((h, l, Some(p))) = cur.take() {
            out.push((h, l, p));
        }
    };
    let mut it = tokens.into_iter();
    while let Some(t) = it.next() {
        match t.as_str() {
            "machine" => {
                flush(&mut current);
                current = it.next().map(|h| (h, String::new(), None));
            }
            "default" => {
                flush(&mut current);
                current = Some((String::new(), String::new(), None));
            }
            "login" => {
                if let (Some(c), Some(v)) = (current.as_mut(), it.next()) {
                    c.1 = v;
                }
            }
            "password" => {
                if let (Some(c), Some(v)) = (current.as_mut(), it.next()) {
                    c.2 = Some(v);
                }
            }
            "account" => {
                it.next();
            }
            _ => {}
        }
    }
    flush(&mut current);
    out
}

fn without_userinfo(url: &Url) -> Url {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u
}

// ---------------------------------------------------------------------------
// The client

/// Project pages, fetched at most once each per run, and ahead of need
/// (`prefetch`) so that the resolver rarely waits on the network.
pub struct SimpleIndex {
    http: Arc<Http>,
    config: Arc<PypiConfig>,
    cells: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One project page, fetched once; the error is kept so every waiter sees it.
type Slot = OnceCell<std::result::Result<Arc<Vec<IndexFile>>, Error>>;

impl SimpleIndex {
    pub fn new(http: Arc<Http>, config: Arc<PypiConfig>) -> Arc<Self> {
        Arc::new(SimpleIndex {
            http,
            config,
            cells: Mutex::new(HashMap::new()),
        })
    }

    fn cell(&self, name: &str) -> Arc<Slot> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(name.to_owned()).or_default().clone()
    }

    /// Start fetching in the background; `project` picks up the result.
    pub fn prefetch(self: &Arc<Self>, name: &str) {
        if !valid_project_name(name) {
            return; // `project` says why
        }
        let name = normalize(name);
        let cell = self.cell(&name);
        if cell.initialized() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            cell.get_or_init(|| me.fetch(name.clone())).await;
        });
    }

    /// The files of a project (PEP 503-normalized name), from `<index>/<name>/`.
    pub async fn project(&self, name: &str) -> Result<Vec<IndexFile>> {
        if !valid_project_name(name) {
            return Err(Error::usage(format!(
                "`{}` is not a valid Python project name",
                name.escape_debug()
            ))
            .with_hint("a name has letters, digits, `-`, `_` and `.`, and starts and ends with a letter or digit"));
        }
        let name = normalize(name);
        let cell = self.cell(&name);
        let files = cell
            .get_or_init(|| self.fetch(name.clone()))
            .await
            .clone()?;
        Ok(files.as_ref().clone())
    }

    async fn fetch(&self, name: String) -> Result<Arc<Vec<IndexFile>>> {
        let index = self.config.index()?;
        let url = index
            .join(&format!("{name}/"))
            .map_err(|e| Error::internal(format!("cannot build the URL of `{name}`: {e}")))?;
        let cred = self.config.credential_for(&url);
        let url = without_userinfo(&url);
        let shown = redact::url(index);
        let (page, json, bytes) = self
            .http
            .retry(&url, || async {
                let resp = match self.http.get(&url, SIMPLE_ACCEPT, cred.as_ref()).await {
                    Err(Fault::Refused { status: 404, .. }) => {
                        return Err(Fault::Fatal(
                            Error::registry(format!(
                                "project `{name}` was not found on the index `{shown}`"
                            ))
                            .with_hint(format!(
                                "check the name, and that the index (`--index-url`, `{}`, `{PIP_INDEX_URL}` or `pip.conf`) is the one that has it{}",
                                ev::SAFEX_PYPI_INDEX,
                                if self.config.extra.is_empty() {
                                    ""
                                } else {
                                    "; safex reads only that one index, never the extra indexes configured for pip or uv (`extra-index-url`, `PIP_EXTRA_INDEX_URL`, `UV_INDEX`), so that another index cannot supply a project of the same name"
                                }
                            )),
                        ));
                    }
                    Err(f) => return Err(auth_hint(f).map(|e| in_context(&name, e))),
                    Ok(r) => r,
                };
                let page = without_userinfo(resp.url());
                let json = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case(SIMPLE_JSON));
                let bytes = self
                    .http
                    .body(
                        resp,
                        format!("reading the index page of `{name}` from `{shown}`"),
                    )
                    .all()
                    .await?;
                Ok((page, json, bytes))
            })
            .await?;
        let files = if json {
            parse_json(&page, &bytes)?
        } else {
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                Error::registry(format!(
                    "the index page of `{name}` at `{}` is not UTF-8",
                    redact::url(&page)
                ))
            })?;
            parse_html(&page, text)?
        };
        Ok(Arc::new(own_files(&name, files)))
    }

    /// The bytes at `url` (a PEP 658 metadata file, say), with the index's
    /// credential if `url` is on its origin. Userinfo in `url` is not sent.
    pub async fn get_bytes(&self, url: &Url) -> Result<Vec<u8>> {
        let cred = self.config.credential_for(url);
        let url = without_userinfo(url);
        let shown = redact::url(&url);
        let bytes = self
            .http
            .retry(&url, || async {
                let resp = self
                    .http
                    .get(&url, "*/*", cred.as_ref())
                    .await
                    .map_err(auth_hint)?;
                self.http
                    .body(resp, format!("reading `{shown}`"))
                    .all()
                    .await
            })
            .await?;
        Ok(bytes)
    }
}

fn in_context(name: &str, e: Error) -> Error {
    Error {
        message: format!("cannot get the index page of `{name}`: {}", e.message),
        ..e
    }
}

/// `Http::get` hints at `.npmrc` for 401/403; an index's credentials live
/// elsewhere.
fn auth_hint(f: Fault) -> Fault {
    match f {
        Fault::Refused {
            status: status @ (401 | 403),
            error,
        } => Fault::Refused {
            status,
            error: error.with_hint("the index wants credentials: put them in the index URL (`https://user:token@host/simple/`) or in `~/.netrc`"),
        },
        f => f,
    }
}

/// The files of a page that belong to project `name` (PEP 503-normalized):
/// wheels whose file name parses with that name, and sdists whose name pip
/// would read as that project's (see [`sdist_version`]). Anything else is
/// skipped, as pip and uv skip it: real pages keep files from before PEP 440
/// and PEP 427 (`regex-2013-02-16.tar.gz`, `mpmath-all-0.17.tar.gz`, eggs,
/// installers), and a page that lists another project's file must not make
/// safex pick it, fetch it, or refuse the project for it.
fn own_files(name: &str, files: Vec<IndexFile>) -> Vec<IndexFile> {
    files
        .into_iter()
        .filter(|f| {
            let own = match WheelName::parse(&f.filename) {
                Ok(w) => w.name == name,
                Err(_) => sdist_version(&f.filename, name).is_some(),
            };
            if !own {
                crate::error::debug(|| {
                    format!(
                        "the index page of `{name}` lists `{}`, which is not a file of `{name}` safex can read: skipped",
                        crate::redact::shown(&f.filename)
                    )
                });
            }
            own
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn page() -> Url {
        Url::parse("https://idx.example/simple/foo/").unwrap()
    }

    #[test]
    fn html_anchors() {
        let html = format!(
            r#"<!DOCTYPE html>
<html><head><title>Links for foo</title></head><body>
<h1>Links for foo</h1>
<!-- <a href="commented-1.0.tar.gz">x</a> -->
<a href="../../files/foo-1.0-py3-none-any.whl#sha256={upper}" data-requires-python="&gt;=3.8,&lt;4" data-dist-info-metadata="sha256={SHA}">whatever text</a><br/>
<A HREF=https://u:p@cdn.example/f/foo-1.1.tar.gz#md5=abc data-yanked>foo-1.1.tar.gz</A>
<a href='foo-1.2-py3-none-any.whl#md5=00&amp;sha256={SHA}' data-requires-python='&#62;=3.9' data-yanked="broken build" data-core-metadata=true data-dist-info-metadata="sha256={SHA}">x</a>
<a href="/abs/foo%2Bbar-1.3-py3-none-any.whl" data-requires-python="&#x3e;=3.10&quot;&amp;&#39;" data-core-metadata="false">y</a>
<a name="no-href">nothing</a>
<a href="sub/">a directory</a>
<script>var s = '<a href="evil-9.9-py3-none-any.whl">';</script>
</body></html>"#,
            upper = SHA.to_uppercase()
        );
        let files = parse_html(&page(), &html).unwrap();
        assert_eq!(files.len(), 4, "{files:#?}");

        assert_eq!(files[0].filename, "foo-1.0-py3-none-any.whl");
        assert_eq!(
            files[0].url.as_str(),
            "https://idx.example/files/foo-1.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some(SHA));
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8,<4"));
        assert!(!files[0].yanked);
        assert_eq!(files[0].metadata, Some(Some(SHA.to_owned())));
        assert_eq!(files[0].upload_time, None);

        assert_eq!(files[1].filename, "foo-1.1.tar.gz");
        assert_eq!(
            files[1].url.as_str(),
            "https://cdn.example/f/foo-1.1.tar.gz"
        );
        assert_eq!(files[1].sha256, None);
        assert!(files[1].yanked);
        assert_eq!(files[1].metadata, None);

        assert_eq!(
            files[2].url.as_str(),
            "https://idx.example/simple/foo/foo-1.2-py3-none-any.whl"
        );
        assert_eq!(files[2].sha256.as_deref(), Some(SHA));
        assert_eq!(files[2].requires_python.as_deref(), Some(">=3.9"));
        assert!(files[2].yanked);
        // `data-core-metadata` (PEP 714) wins over the older name.
        assert_eq!(files[2].metadata, Some(None));

        assert_eq!(files[3].filename, "foo+bar-1.3-py3-none-any.whl");
        assert_eq!(
            files[3].url.as_str(),
            "https://idx.example/abs/foo%2Bbar-1.3-py3-none-any.whl"
        );
        assert_eq!(files[3].requires_python.as_deref(), Some(">=3.10\"&'"));
        assert_eq!(files[3].metadata, None);
    }

    #[test]
    fn html_base_href() {
        // The first `<base>` applies to the whole document, links before it too.
        let html = r#"<a href="foo-1.0.tar.gz">a</a><BASE href="https://mirror.example/pkgs/"><base href="https://other.example/"><a href=foo-2.0.tar.gz>b</a>"#;
        let files = parse_html(&page(), html).unwrap();
        let urls: Vec<&str> = files.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://mirror.example/pkgs/foo-1.0.tar.gz",
                "https://mirror.example/pkgs/foo-2.0.tar.gz"
            ]
        );
        let relative =
            parse_html(&page(), r#"<base href="../../dl/"><a href="x-1.0.zip">"#).unwrap();
        assert_eq!(relative[0].url.as_str(), "https://idx.example/dl/x-1.0.zip");
    }

    #[test]
    fn html_hostile() {
        for (html, kind) in [
            (r#"<a href="x%2F..%2Fevil.whl">"#, Kind::Unsafe),
            (r#"<a href="x%5Cevil.whl">"#, Kind::Unsafe),
            (r#"<a href="x%0Aevil.whl">"#, Kind::Unsafe),
            (r#"<a href="x%FFevil.whl">"#, Kind::Unsafe),
            (r#"<a href="foo-1.0.tar.gz#sha256=abc">"#, Kind::Registry),
            (
                r#"<a href="foo-1.0.tar.gz" data-core-metadata="sha256=zz">"#,
                Kind::Registry,
            ),
            (r#"<a href="http://[::1">"#, Kind::Registry),
        ] {
            let e = parse_html(&page(), html).expect_err(html);
            assert_eq!(e.kind, kind, "{html}: {}", e.message);
        }
        // Unterminated markup ends the scan without panicking.
        for html in [
            "<a href=\"x",
            "<a href",
            "<!-- x",
            "<",
            "<a =>",
            "<a href=x.whl",
            "&#xFFFFFFFF; <",
        ] {
            let _ = parse_html(&page(), html);
        }
        assert_eq!(
            parse_html(&page(), "<a href=x-1.0.zip").unwrap()[0].filename,
            "x-1.0.zip"
        );
    }

    #[test]
    fn entities() {
        for (raw, decoded) in [
            ("&gt;=3.8", ">=3.8"),
            ("&lt;&amp;&quot;&apos;&#39;", "<&\"''"),
            ("&#62;&#x3e;&#X3E;", ">>>"),
            ("a & b", "a & b"),
            ("&unknown;", "&unknown;"),
            ("&#99999999;", "&#99999999;"),
            ("&gt", "&gt"),
        ] {
            assert_eq!(decode_entities(raw), decoded, "{raw}");
        }
    }

    #[test]
    fn json_files() {
        let json = format!(
            r#"{{
  "meta": {{"api-version": "1.1"}},
  "name": "foo",
  "files": [
    {{"filename": "foo-1.0-py3-none-any.whl", "url": "../../files/foo-1.0-py3-none-any.whl#sha256={SHA}",
      "hashes": {{"sha256": "{upper}", "md5": "00"}}, "requires-python": ">=3.8", "yanked": false,
      "core-metadata": {{"sha256": "{SHA}"}}, "upload-time": "2025-01-02T03:04:05.000000Z"}},
    {{"filename": "foo-1.1.tar.gz", "url": "https://tok@cdn.example/foo-1.1.tar.gz", "hashes": {{}},
      "yanked": "do not use", "dist-info-metadata": true}},
    {{"filename": "foo-1.2.tar.gz", "url": "foo-1.2.tar.gz", "hashes": {{"sha256": "{SHA}"}},
      "requires-python": null, "yanked": true, "core-metadata": false, "dist-info-metadata": true}},
    {{"filename": "foo-1.3.tar.gz", "url": "foo-1.3.tar.gz", "hashes": {{}}, "data-dist-info-metadata": {{}}}}
  ]
}}"#,
            upper = SHA.to_uppercase()
        );
        let files = parse_json(&page(), json.as_bytes()).unwrap();
        assert_eq!(files.len(), 4);
        assert_eq!(
            files[0],
            IndexFile {
                filename: "foo-1.0-py3-none-any.whl".into(),
                url: Url::parse("https://idx.example/files/foo-1.0-py3-none-any.whl").unwrap(),
                sha256: Some(SHA.into()),
                requires_python: Some(">=3.8".into()),
                yanked: false,
                metadata: Some(Some(SHA.into())),
                upload_time: Some("2025-01-02T03:04:05.000000Z".into()),
            }
        );
        assert_eq!(files[1].url.as_str(), "https://cdn.example/foo-1.1.tar.gz");
        assert_eq!(files[1].sha256, None);
        assert!(files[1].yanked);
        assert_eq!(files[1].metadata, Some(None));
        assert_eq!(
            files[2].url.as_str(),
            "https://idx.example/simple/foo/foo-1.2.tar.gz"
        );
        assert_eq!(files[2].requires_python, None);
        assert!(files[2].yanked);
        // `core-metadata: false` is the answer, whatever the old key says.
        assert_eq!(files[2].metadata, None);
        assert_eq!(files[3].metadata, Some(None));
    }

    #[test]
    fn json_refusals() {
        let one =
            |file: &str| format!(r#"{{"meta": {{"api-version": "1.0"}}, "files": [{file}]}}"#);
        for (doc, kind) in [
            ("not json".to_owned(), Kind::Registry),
            (
                r#"{"meta": {"api-version": "2.0"}, "files": []}"#.to_owned(),
                Kind::Registry,
            ),
            (r#"{"meta": {}}"#.to_owned(), Kind::Registry),
            (
                one(r#"{"filename": "../x.whl", "url": "x.whl", "hashes": {}}"#),
                Kind::Unsafe,
            ),
            (
                one(r#"{"filename": "a\\b.whl", "url": "x.whl", "hashes": {}}"#),
                Kind::Unsafe,
            ),
            (
                one(r#"{"filename": "", "url": "x.whl", "hashes": {}}"#),
                Kind::Unsafe,
            ),
            (
                one(r#"{"filename": "x.whl", "url": "x.whl", "hashes": {"sha256": "12"}}"#),
                Kind::Registry,
            ),
            (
                one(r#"{"filename": "x.whl", "url": "x.whl", "hashes": {"sha256": 12}}"#),
                Kind::Registry,
            ),
            (
                one(r#"{"filename": "x.whl", "url": "x.whl", "core-metadata": {"sha256": "no"}}"#),
                Kind::Registry,
            ),
        ] {
            let e = parse_json(&page(), doc.as_bytes()).expect_err(&doc);
            assert_eq!(e.kind, kind, "{doc}: {}", e.message);
        }
        // No `meta` means version 1.0 (PEP 691).
        assert!(parse_json(&page(), br#"{"files": []}"#).unwrap().is_empty());
    }

    #[test]
    fn netrc() {
        let entries = parse_netrc(
            "# comment\nmachine idx.example login alice password s3cret\n\
             machine other.example\n  login bob\n  account acct\n  password \"with space\\\"q\"\n\
             macdef init\n  machine evil.example login x password y\n\n\
             machine nopass.example login carol\n\
             default login anon password anon@ # trailing comment\n",
        );
        assert_eq!(
            entries,
            [
                (
                    "idx.example".to_owned(),
                    "alice".to_owned(),
                    "s3cret".to_owned()
                ),
                (
                    "other.example".to_owned(),
                    "bob".to_owned(),
                    "with space\"q".to_owned()
                ),
                (String::new(), "anon".to_owned(), "anon@".to_owned()),
            ]
        );
        assert!(parse_netrc("").is_empty());
        assert!(parse_netrc("machine").is_empty());
    }

    fn cred(cfg: &PypiConfig, url: &str) -> Option<String> {
        match cfg.credential_for(&Url::parse(url).unwrap()) {
            Some(Credential::Basic(b)) => Some(
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap())
                    .unwrap(),
            ),
            Some(Credential::Bearer(_)) => panic!("bearer"),
            None => None,
        }
    }

    #[test]
    fn credentials_stay_on_their_origin() {
        let with_userinfo = PypiConfig {
            index: Some((
                parse_index_url("https://me:p%40ss@idx.example:8443/simple", "t", None).unwrap(),
                "t".into(),
            )),
            netrc: vec![("idx.example".into(), "n".into(), "netrc".into())],
            ..Default::default()
        };
        let c = |u| cred(&with_userinfo, u);
        assert_eq!(
            c("https://idx.example:8443/simple/foo/"),
            Some("me:p@ss".into())
        );
        assert_eq!(
            c("https://idx.example:8443/files/x.whl"),
            Some("me:p@ss".into())
        );
        assert_eq!(
            c("https://idx.example/simple/foo/"),
            None,
            "same host, other port"
        );
        assert_eq!(c("https://idx.example:8444/simple/foo/"), None);
        assert_eq!(
            c("http://idx.example:8443/simple/foo/"),
            None,
            "other scheme"
        );
        assert_eq!(c("https://cdn.example:8443/x.whl"), None);
        assert_eq!(c("https://sub.idx.example:8443/x.whl"), None);

        let netrc_only = PypiConfig {
            index: Some((
                parse_index_url("https://idx.example/simple/", "t", None).unwrap(),
                "t".into(),
            )),
            extra: vec![parse_index_url("http://127.0.0.1:3141/root/", "t", None).unwrap()],
            netrc: vec![
                ("IDX.example".into(), "alice".into(), "s3cret".into()),
                ("cdn.example".into(), "x".into(), "y".into()),
                (String::new(), "anon".into(), "dflt".into()),
            ],
        };
        let c = |u| cred(&netrc_only, u);
        assert_eq!(
            c("https://idx.example/simple/foo/"),
            Some("alice:s3cret".into())
        );
        assert_eq!(c("https://idx.example:443/x"), Some("alice:s3cret".into()));
        assert_eq!(c("https://idx.example:444/x"), None);
        // netrc names cdn.example, but no configured index is there.
        assert_eq!(c("https://cdn.example/x.whl"), None);
        // An extra index is never read, so it gets no credential: not its
        // userinfo, not netrc's.
        assert_eq!(c("http://127.0.0.1:3141/root/foo/"), None);
        assert_eq!(c("http://127.0.0.1:3142/root/foo/"), None);
        let extra_userinfo = PypiConfig {
            index: Some((
                parse_index_url("https://idx.example/simple/", "t", None).unwrap(),
                "t".into(),
            )),
            extra: vec![
                parse_index_url("https://bob:pb@other.example/simple/", "t", None).unwrap(),
                parse_index_url("https://carol:pc@idx.example/extra/", "t", None).unwrap(),
            ],
            netrc: vec![],
        };
        let c = |u| cred(&extra_userinfo, u);
        assert_eq!(c("https://other.example/simple/foo/"), None);
        assert_eq!(c("https://other.example/files/x.whl"), None);
        // Same origin as the index: that origin's own credential.
        assert_eq!(
            c("https://idx.example/files/x.whl"),
            Some("carol:pc".into())
        );
        assert_eq!(
            extra_userinfo
                .other_indexes()
                .iter()
                .map(|u| u.host_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>(),
            ["other.example"]
        );
        assert_eq!(cred(&PypiConfig::default(), "https://idx.example/"), None);
    }

    #[test]
    fn index_urls() {
        assert_eq!(
            parse_index_url("https://idx.example/simple", "t", None)
                .unwrap()
                .as_str(),
            "https://idx.example/simple/"
        );
        assert!(parse_index_url("http://127.0.0.1:8080/simple/", "t", None).is_ok());
        assert!(parse_index_url("http://[::1]:8080/", "t", None).is_ok());
        assert!(parse_index_url("http://localhost/", "t", None).is_ok());
        assert_eq!(
            parse_index_url("http://10.0.0.1/simple", "t", None)
                .unwrap_err()
                .kind,
            Kind::Policy
        );
        assert_eq!(
            parse_index_url("file:///srv/simple", "t", None)
                .unwrap_err()
                .kind,
            Kind::Usage
        );
        assert_eq!(
            parse_index_url("not a url", "t", None).unwrap_err().kind,
            Kind::Usage
        );
        let e = parse_index_url("http://me:secret@10.0.0.1/", "t", None).unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert_eq!(
            uv_index_url("corp=https://idx.example/simple/"),
            "https://idx.example/simple/"
        );
        assert_eq!(
            uv_index_url("https://idx.example/simple/?a=b"),
            "https://idx.example/simple/?a=b"
        );
    }

    #[test]
    fn pip_conf_sections() {
        let (i, x) = pip_conf_values(
            "[global]\nindex_url = https://g.example/simple\nextra-index-url =\n  https://a.example/\n  https://b.example/\n; c\n[install]\nIndex-URL: https://i.example/simple\n[download]\nindex-url = https://d.example/\n",
        );
        assert_eq!(i.as_deref(), Some("https://i.example/simple"));
        assert_eq!(x.as_deref(), Some("https://a.example/\nhttps://b.example/"));
        let (i, x) = pip_conf_values("index-url = https://nosection.example/\n[global]\n");
        assert_eq!((i, x), (None, None));
    }

    /// An environment and home directory of the test's own: the process
    /// environment is never touched (setting it is `unsafe` in edition 2024,
    /// and this crate forbids `unsafe`).
    struct Fixture {
        dir: tempfile::TempDir,
        env: HashMap<String, String>,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
                env: HashMap::new(),
            }
        }
        fn home(&self) -> PathBuf {
            self.dir.path().join("home")
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        }
        fn set(&mut self, k: &str, v: &str) {
            self.env.insert(k.into(), v.into());
        }
        fn load(&self, explicit: Option<(&str, &str)>) -> Result<PypiConfig> {
            let var = |k: &str| self.env.get(k).cloned();
            let mut sources = ConfigSources::discover(&var, Some(&self.home()));
            // Only this test's files: not the machine's `/etc/pip.conf`.
            sources.pip_conf.retain(|p| p.starts_with(self.dir.path()));
            PypiConfig::load_with(
                explicit.map(|(u, s)| (u.to_owned(), s.to_owned())),
                &var,
                &sources,
                None,
            )
        }
        fn index(&self, explicit: Option<(&str, &str)>) -> Option<(String, String)> {
            self.load(explicit)
                .unwrap()
                .index
                .map(|(u, s)| (u.to_string(), s))
        }
    }

    #[cfg(not(any(windows, target_os = "macos")))]
    #[test]
    fn config_precedence() {
        let mut f = Fixture::new();
        assert_eq!(f.index(None), None);
        assert_eq!(f.load(None).unwrap().index().unwrap_err().kind, Kind::Usage);

        let legacy = f.write(
            "home/.pip/pip.conf",
            "[global]\nindex-url = https://legacy.example/simple\n",
        );
        let got = f.index(None).unwrap();
        assert_eq!(got.0, "https://legacy.example/simple/");
        assert_eq!(got.1, format!("index-url in {}", legacy.display()));

        let xdg = f.write(
            "home/.config/pip/pip.conf",
            "[global]\nindex-url = https://xdg.example/simple/\n",
        );
        assert_eq!(
            f.index(None).unwrap().1,
            format!("index-url in {}", xdg.display())
        );

        // `$XDG_CONFIG_HOME` replaces `~/.config`.
        let moved = f.write(
            "xdg/pip/pip.conf",
            "[global]\nindex-url = https://moved.example/\n",
        );
        f.set(
            "XDG_CONFIG_HOME",
            f.dir.path().join("xdg").to_str().unwrap(),
        );
        assert_eq!(
            f.index(None).unwrap().1,
            format!("index-url in {}", moved.display())
        );

        // An existing `$PIP_CONFIG_FILE` wins, and replaces the user files.
        let envfile = f.write(
            "env.conf",
            "[global]\nextra-index-url = https://extra.example/\n",
        );
        f.set("PIP_CONFIG_FILE", envfile.to_str().unwrap());
        assert_eq!(f.index(None), None);
        assert_eq!(
            f.load(None).unwrap().extra[0].as_str(),
            "https://extra.example/"
        );
        f.write(
            "env.conf",
            "[global]\nindex-url = https://envfile.example/\n",
        );
        assert_eq!(f.index(None).unwrap().0, "https://envfile.example/");
        // `/dev/null` is pip's "no config files".
        f.set("PIP_CONFIG_FILE", "/dev/null");
        assert_eq!(f.index(None), None);
        // A missing one does not.
        f.set(
            "PIP_CONFIG_FILE",
            f.dir.path().join("absent.conf").to_str().unwrap(),
        );
        assert_eq!(f.index(None).unwrap().0, "https://moved.example/");

        f.set("UV_INDEX_URL", "https://uv-index-url.example/simple");
        assert_eq!(
            f.index(None).unwrap(),
            (
                "https://uv-index-url.example/simple/".into(),
                "UV_INDEX_URL".into()
            )
        );
        f.set("UV_DEFAULT_INDEX", "https://uv-default.example/simple");
        assert_eq!(f.index(None).unwrap().1, "UV_DEFAULT_INDEX");
        f.set("PIP_INDEX_URL", "");
        assert_eq!(
            f.index(None).unwrap().1,
            "UV_DEFAULT_INDEX",
            "empty is unset"
        );
        f.set("PIP_INDEX_URL", "https://pip-env.example/simple");
        assert_eq!(f.index(None).unwrap().1, "PIP_INDEX_URL");
        assert_eq!(
            f.index(Some(("http://127.0.0.1:9/simple", "SAFEX_PYPI_INDEX")))
                .unwrap(),
            (
                "http://127.0.0.1:9/simple/".into(),
                "SAFEX_PYPI_INDEX".into()
            )
        );

        // A bad URL names where it came from.
        f.set("PIP_INDEX_URL", "http://10.1.2.3/simple");
        let e = f.load(None).unwrap_err();
        assert_eq!(e.kind, Kind::Policy);
        assert!(e.message.contains("PIP_INDEX_URL"), "{}", e.message);

        // Extras: `PIP_EXTRA_INDEX_URL` over pip.conf, plus `UV_INDEX`; bad ones left out.
        f.set("PIP_INDEX_URL", "https://pip-env.example/simple");
        f.set(
            "PIP_EXTRA_INDEX_URL",
            "https://e1.example/ http://10.0.0.9/",
        );
        f.set("UV_INDEX", "corp=https://e2.example/simple");
        let extra: Vec<String> = f
            .load(None)
            .unwrap()
            .extra
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(extra, ["https://e1.example/", "https://e2.example/simple/"]);
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_pip_conf() {
        let f = Fixture::new();
        // A directory where the file should be: reading it fails.
        std::fs::create_dir_all(f.home().join(".pip/pip.conf")).unwrap();
        assert_eq!(f.load(None).unwrap_err().kind, Kind::Io);
        // Not needed when the index comes from elsewhere.
        let cfg = f.load(Some(("https://idx.example/simple/", "t"))).unwrap();
        assert_eq!(cfg.index().unwrap().as_str(), "https://idx.example/simple/");
    }

    #[test]
    fn netrc_location() {
        let mut f = Fixture::new();
        f.write("home/.netrc", "machine idx.example login a password b\n");
        let cfg = f.load(Some(("https://idx.example/simple/", "t"))).unwrap();
        assert_eq!(
            cred(&cfg, "https://idx.example/simple/x/"),
            Some("a:b".into())
        );
        let other = f.write("other-netrc", "machine idx.example login c password d\n");
        f.set("NETRC", other.to_str().unwrap());
        let cfg = f.load(Some(("https://idx.example/simple/", "t"))).unwrap();
        assert_eq!(
            cred(&cfg, "https://idx.example/simple/x/"),
            Some("c:d".into())
        );
        // Debug output shows hosts and sources, never a secret.
        f.write(
            "other-netrc",
            "machine idx.example login c password zz-netrc-zz\n",
        );
        let cfg = f
            .load(Some(("https://me:zz-url-zz@idx.example/simple/", "t")))
            .unwrap();
        let shown = format!("{cfg:?}");
        assert!(shown.contains("idx.example"), "{shown}");
        assert!(!shown.contains("zz-"), "{shown}");
    }

    /// A one-thread HTTP/1.1 server on 127.0.0.1 that records each request's
    /// path and `Authorization` header and answers from a fixed table.
    type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

    fn serve() -> (u16, RequestLog) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        auth = Some(v.trim().to_owned());
                    }
                }
                seen.lock().unwrap().push((path.clone(), auth));
                let (status, ctype, body) = match path.as_str() {
                    "/simple/foo/" => (
                        "200 OK",
                        "application/vnd.pypi.simple.v1+json",
                        format!(
                            r#"{{"meta":{{"api-version":"1.0"}},"files":[{{"filename":"foo-1.0-py3-none-any.whl","url":"../../files/foo-1.0-py3-none-any.whl","hashes":{{"sha256":"{SHA}"}},"core-metadata":true}}]}}"#
                        ),
                    ),
                    "/simple/bar/" => (
                        "200 OK",
                        "text/html; charset=utf-8",
                        format!(r#"<a href="/files/bar-2.0.tar.gz#sha256={SHA}">bar</a>"#),
                    ),
                    "/files/foo-1.0-py3-none-any.whl.metadata" => (
                        "200 OK",
                        "application/octet-stream",
                        "Name: foo\n".to_owned(),
                    ),
                    "/simple/private/" => ("401 Unauthorized", "text/plain", "no".to_owned()),
                    "/files/locked.metadata" => ("403 Forbidden", "text/plain", "no".to_owned()),
                    _ => ("404 Not Found", "text/plain", "no".to_owned()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (port, log)
    }

    #[test]
    fn simple_index_client() {
        let (port, log) = serve();
        let config = PypiConfig::load_with(
            Some((
                format!("http://me:pw@127.0.0.1:{port}/simple"),
                "test".into(),
            )),
            &|_| None,
            &ConfigSources::default(),
            None,
        )
        .unwrap();
        let index = SimpleIndex::new(
            Arc::new(Http::new(&[], &crate::http::Deadlines::default()).unwrap()),
            Arc::new(config),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("me:pw")
        );
        rt.block_on(async {
            index.prefetch("bar");
            let foo = index.project("Foo").await.unwrap();
            assert_eq!(foo.len(), 1);
            assert_eq!(
                foo[0].url.as_str(),
                format!("http://127.0.0.1:{port}/files/foo-1.0-py3-none-any.whl")
            );
            assert_eq!(foo[0].metadata, Some(None));
            // Cached: the second call asks nothing.
            assert_eq!(index.project("foo").await.unwrap(), foo);
            let bar = index.project("bar").await.unwrap();
            assert_eq!(bar[0].filename, "bar-2.0.tar.gz");
            assert_eq!(bar[0].sha256.as_deref(), Some(SHA));

            let e = index.project("missing").await.unwrap_err();
            assert_eq!(e.kind, Kind::Registry);
            assert_eq!(
                e.message,
                format!("project `missing` was not found on the index `http://***:***@127.0.0.1:{port}/simple/`")
            );
            assert!(e.hint.is_some());
            let e = index.project("../etc").await.unwrap_err();
            assert_eq!(e.kind, Kind::Usage);
            assert!(e.message.starts_with("`../etc`"), "{}", e.message);

            // A refused credential: the hint is about the index's
            // credentials, not npm's.
            let index_hint = "the index wants credentials: put them in the index URL (`https://user:token@host/simple/`) or in `~/.netrc`";
            let e = index.project("private").await.unwrap_err();
            assert_eq!(
                e.message,
                format!("cannot get the index page of `private`: `http://127.0.0.1:{port}/simple/private/` answered HTTP 401 Unauthorized")
            );
            assert_eq!(e.hint.as_deref(), Some(index_hint));
            let locked = Url::parse(&format!("http://127.0.0.1:{port}/files/locked.metadata")).unwrap();
            let e = index.get_bytes(&locked).await.unwrap_err();
            assert_eq!(
                e.message,
                format!("`http://127.0.0.1:{port}/files/locked.metadata` answered HTTP 403 Forbidden")
            );
            assert_eq!(e.hint.as_deref(), Some(index_hint));

            let meta = Url::parse(&format!("{}.metadata", foo[0].url)).unwrap();
            assert_eq!(index.get_bytes(&meta).await.unwrap(), b"Name: foo\n");
            // Another origin (same server, other host name): no credential,
            // and userinfo in the URL itself is not sent either.
            let elsewhere = Url::parse(&format!(
                "http://u:p@localhost:{port}/files/foo-1.0-py3-none-any.whl.metadata"
            ))
            .unwrap();
            assert_eq!(index.get_bytes(&elsewhere).await.unwrap(), b"Name: foo\n");
        });
        let log = log.lock().unwrap();
        let paths: Vec<&str> = log.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths.iter().filter(|p| **p == "/simple/foo/").count(), 1);
        assert_eq!(paths.iter().filter(|p| **p == "/simple/bar/").count(), 1);
        let auths: Vec<Option<&str>> = log.iter().map(|(_, a)| a.as_deref()).collect();
        assert_eq!(
            auths[..auths.len() - 1],
            vec![Some(basic.as_str()); auths.len() - 1]
        );
        assert_eq!(auths.last().unwrap(), &None);
    }
}
