//! The simple API's two page formats (PEP 691 JSON, PEP 503 HTML) read into one file list.
//!
//! Both become one list of [`IndexFile`]s, the project's own files only.
//!
//! Pages are untrusted input, parsed by hand here: a file's name comes from
//! its URL (never from the link text), every hash is checked to be one, and a
//! name that is not a plain file name is an unsafe package.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::error::{Error, Result};
use crate::pypi::tags::{WheelName, sdist_version};
use crate::redact;

/// One file that a project page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexFile {
    /// The last segment of the URL's path, percent-decoded; a plain name.
    pub(crate) filename: String,
    /// Absolute; fragment and userinfo removed (credentials come only from
    /// `PypiConfig::credential_for`). Any scheme and host: the foreign-host
    /// rule is the caller's to apply.
    pub(crate) url: Url,
    /// Lowercase hex, checked to be 64 hex digits.
    pub(crate) sha256: Option<String>,
    pub(crate) requires_python: Option<String>,
    pub(crate) yanked: bool,
    /// PEP 658/714: `Some` when a `<url>.metadata` file is offered; the inner
    /// value is its sha256 when the index gives one.
    pub(crate) metadata: Option<Option<String>>,
    /// PEP 700, JSON pages only.
    pub(crate) upload_time: Option<String>,
}

/// The files of project `name`'s page (PEP 503-normalized name), served
/// from `page` (without userinfo) as JSON (PEP 691) when `json`, else as
/// HTML (PEP 503).
pub(super) fn project_files(
    name: &str,
    page: &Url,
    json: bool,
    bytes: &[u8],
) -> Result<Vec<IndexFile>> {
    let files = if json {
        parse_json(page, bytes)?
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Error::registry(format!(
                "the index page of `{name}` at `{}` is not UTF-8",
                redact::url(page)
            ))
        })?;
        parse_html(page, text)?
    };
    Ok(own_files(name, files))
}

// ---------------------------------------------------------------------------
// HTML (PEP 503)

/// The files of a PEP 503 page. `page` is the URL the page was served from
/// (without userinfo): relative links resolve against it, or against the
/// first `<base href>`, which HTML applies to the whole document.
fn parse_html(page: &Url, html: &str) -> Result<Vec<IndexFile>> {
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
fn parse_json(page: &Url, bytes: &[u8]) -> Result<Vec<IndexFile>> {
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
pub(super) fn percent_decode(s: &str) -> Option<String> {
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

/// `url` without its user name and password.
pub(super) fn without_userinfo(url: &Url) -> Url {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u
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
}
