//! A Python package index inside the test process.
//!
//! Packages are described with [`PyPkg`]; the index builds their wheels (with
//! the `zip` crate) and sdists (`tar` + `flate2`) once when they are
//! published, and renders the PEP 503 HTML page, or the PEP 691 JSON page when
//! the client asks for it and the index was built with
//! [`PyIndexBuilder::json`], from the same description on every request. A
//! test can therefore publish, republish and unpublish while `safex` runs.
//!
//! Like the npm fixture (`fixture.rs`) it speaks just enough HTTP/1.1 on
//! 127.0.0.1, one thread per connection, logs every request, and misbehaves
//! on purpose per path ([`Fault`]). Pages live at `/simple/<normalized>/`,
//! files at `/files/<filename>`, PEP 658 metadata at
//! `/files/<filename>.metadata`.
//!
//! Well-formed wheels have a `*.dist-info/{METADATA,WHEEL,RECORD}` that pip
//! accepts, with RECORD lines `path,sha256=<urlsafe b64 nopad>,<size>`. The
//! hostile ones are written with the same writer, member by member, so that
//! exactly one thing is wrong with each: a `..` or absolute name, a symlink
//! (unix mode `0o120777`), a duplicated name (renamed into place after
//! writing, since the writer refuses duplicates), a member of gigabytes of
//! zeros (deflated by hand and copied in raw, so it costs no time), a RECORD
//! line that lies. Every hostile member is listed in RECORD with its true
//! hash, so that the hostile part is the only thing wrong.
//!
//! Payloads are harmless but observable: [`py_touch`] is a Python statement
//! that creates a marker file, and every code path that must never run
//! (console script, `.pth`, build backend, `setup.py`) is armed with one.

use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::env::TestEnv;
pub use super::fixture::{Fault, Request};
use super::fixture::{RawResponse, raw_get, raw_get_with, run};
use super::http::{Locked, Response, Routes, Server, reason};

// ---------------------------------------------------------------------------
// Names, hashes, payloads
// ---------------------------------------------------------------------------

/// PEP 503 normalization: runs of `-`, `_`, `.` become one `-`, lower case.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

/// The name as it appears in file names and `.dist-info`: normalized, with
/// `_` for `-` (PEP 427 / PEP 625 escaping).
pub fn dist_name(name: &str) -> String {
    normalize(name).replace('-', "_")
}

/// The importable module name of a fixture program: same as [`dist_name`].
pub fn module_name(name: &str) -> String {
    dist_name(name)
}

pub fn wheel_filename(name: &str, version: &str, tags: &str) -> String {
    format!("{}-{version}-{tags}.whl", dist_name(name))
}

pub fn sdist_filename(name: &str, version: &str) -> String {
    format!("{}-{version}.tar.gz", dist_name(name))
}

/// `/simple/<normalized>/`
pub fn page_path(name: &str) -> String {
    format!("/simple/{}/", normalize(name))
}

/// `/files/<filename>`
pub fn file_path(filename: &str) -> String {
    format!("/files/{filename}")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256=<urlsafe base64, no padding>`, the hash form of a RECORD line.
pub fn record_hash(bytes: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
    )
}

/// A Python string literal for `s` (JSON escapes are valid Python escapes).
pub fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A one-line Python statement that creates the file at `path`: what a
/// malicious hook does, minus the harm. Usable after `import os; ` in a
/// `.pth` line.
pub fn py_touch(path: &Path) -> String {
    format!(
        "open({}, 'w').write('x')",
        py_str(path.to_str().expect("UTF-8 marker path"))
    )
}

/// A program body that prints its arguments as compact JSON (the same text
/// `serde_json::to_string` gives for ASCII strings).
pub const PY_ECHO_ARGV: &str =
    "import json, sys\nprint(json.dumps(sys.argv[1:], separators=(',', ':')))";

/// The body of a program that prints `sys.executable` and `sys.prefix`, one
/// a line.

// ---------------------------------------------------------------------------
// Package descriptions
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Body {
    Bytes(Vec<u8>),
    /// A symlink: the target is the member's content, mode `0o120777`.
    Symlink(String),
    /// `n` zero bytes, deflated once per process and copied raw: a bomb.
    Zeros(u64),
}

/// One zip member, written with its name exactly as given.
#[derive(Clone, Debug)]
struct Member {
    name: String,
    body: Body,
    mode: u32,
    /// A second member of a name already written: not listed again in RECORD.
    duplicate: bool,
}

impl Member {
    fn file(name: &str, data: impl Into<Vec<u8>>) -> Member {
        Member {
            name: name.into(),
            body: Body::Bytes(data.into()),
            mode: 0o644,
            duplicate: false,
        }
    }
}

/// A lie in RECORD about one path.
#[derive(Clone, Debug, PartialEq)]
enum Tamper {
    /// The hash of other bytes (the size is true).
    WrongHash,
    /// The true hash, a size one byte larger.
    WrongSize,
    /// Not listed at all.
    Omit,
}

/// What the index declares as the file's sha256.
#[derive(Clone, Debug)]
enum Declared {
    Computed,
    Override(String),
    Absent,
}

/// Where a file's link points.
#[derive(Clone, Debug)]
enum FileUrl {
    /// `/files/<filename>` on this index.
    Index,
    /// The same path and port on another host name (`localhost`, `127.0.0.2`).
    Host(String),
    /// Any URL, verbatim (no `#sha256=` is added).
    Absolute(String),
    /// `<base>/files/<filename>`, with its hash: a file host of its own.
    Base(String),
}

/// What the sdist holds besides the package's modules.
#[derive(Clone, Debug)]
enum SdistKind {
    /// `setup.py` calling setuptools; it touches the marker first, if any.
    Legacy(Option<PathBuf>),
    /// `pyproject.toml` naming an in-tree build backend (`backend-path`)
    /// that touches the marker on import, and a `setup.py` that does too.
    BuildBackend(PathBuf),
}

/// One version of one project: its metadata, its files, and what the index
/// should say about them.
#[derive(Clone, Debug)]
pub struct PyPkg {
    name: String,
    version: String,
    requires_dist: Vec<String>,
    provides_extra: Vec<String>,
    requires_python: Option<String>,
    /// (group, name, value) lines of `entry_points.txt`.
    entry_points: Vec<(String, String, String)>,
    members: Vec<Member>,
    tamper: Vec<(String, Tamper)>,
    /// RECORD lines for files that are not in the wheel.
    phantom: Vec<String>,
    /// One wheel per tag string (`py3-none-any`, `cp311-cp311-...`).
    tags: Vec<String>,
    wheel: bool,
    sdist: Option<SdistKind>,
    declared: Declared,
    yanked: Option<String>,
    url: FileUrl,
    /// PEP 658 metadata file: `None` follows the index's default.
    metadata_file: Option<bool>,
    /// The PEP 691 `upload-time` of every file of this version.
    upload_time: String,
    /// Overrides the `data-requires-python` of the links (default: the
    /// package's Requires-Python).
    link_requires_python: Option<String>,
}

impl PyPkg {
    pub fn new(name: &str, version: &str) -> PyPkg {
        PyPkg {
            name: name.into(),
            version: version.into(),
            requires_dist: Vec::new(),
            provides_extra: Vec::new(),
            requires_python: None,
            entry_points: Vec::new(),
            members: Vec::new(),
            tamper: Vec::new(),
            phantom: Vec::new(),
            tags: vec!["py3-none-any".into()],
            wheel: true,
            sdist: None,
            declared: Declared::Computed,
            yanked: None,
            url: FileUrl::Index,
            metadata_file: None,
            link_requires_python: None,
            upload_time: "2021-01-01T00:00:00.000000Z".into(),
        }
    }

    /// A project with one console script, named like the project
    /// (normalized), that runs `body` as the body of `main()` in
    /// `<module>/cli.py`.
    pub fn program(name: &str, version: &str, body: &str) -> PyPkg {
        let m = module_name(name);
        PyPkg::new(name, version)
            .module(&format!("{m}/__init__.py"), "")
            .module(&format!("{m}/cli.py"), &main_function(body))
            .console_script(&normalize(name), &format!("{m}.cli:main"))
    }

    /// A library: `<module>/__init__.py` holding `VERSION = "<version>"` and
    /// `source`.
    pub fn library(name: &str, version: &str, source: &str) -> PyPkg {
        let m = module_name(name);
        PyPkg::new(name, version).module(
            &format!("{m}/__init__.py"),
            &format!("VERSION = {}\n{source}\n", py_str(version)),
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A `Requires-Dist` line, markers allowed (`x>=1; sys_platform == "win32"`).
    pub fn dep(mut self, requirement: &str) -> PyPkg {
        self.requires_dist.push(requirement.into());
        self
    }
    /// `Provides-Extra: extra` and `Requires-Dist: <requirement>; extra == "<extra>"`.
    pub fn extra_dep(mut self, extra: &str, requirement: &str) -> PyPkg {
        if !self.provides_extra.iter().any(|e| e == extra) {
            self.provides_extra.push(extra.into());
        }
        self.dep(&format!("{requirement}; extra == \"{extra}\""))
    }
    pub fn requires_python(mut self, spec: &str) -> PyPkg {
        self.requires_python = Some(spec.into());
        self
    }
    /// A `[console_scripts]` line: `name = value`, written verbatim.
    pub fn console_script(self, name: &str, value: &str) -> PyPkg {
        self.entry_point("console_scripts", name, value)
    }
    /// Any `entry_points.txt` line, written verbatim.
    pub fn entry_point(mut self, group: &str, name: &str, value: &str) -> PyPkg {
        self.entry_points
            .push((group.into(), name.into(), value.into()));
        self
    }
    /// A Python source file at `path` in the wheel root (purelib).
    pub fn module(self, path: &str, source: &str) -> PyPkg {
        self.file(path, source)
    }
    /// Any regular member, in RECORD with its true hash.
    pub fn file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> PyPkg {
        self.members.push(Member::file(path, bytes));
        self
    }
    /// A regular member with this unix mode.
    pub fn file_mode(mut self, path: &str, bytes: impl Into<Vec<u8>>, mode: u32) -> PyPkg {
        let mut m = Member::file(path, bytes);
        m.mode = mode;
        self.members.push(m);
        self
    }
    /// A `.pth` file in the wheel root: lines starting with `import` are run
    /// by `site` at every interpreter start; other lines are paths.
    pub fn pth(self, name: &str, contents: &str) -> PyPkg {
        self.file(name, contents)
    }
    /// A member of `<dist>-<version>.data/<path>` (`scripts/x`, `purelib/y`).
    pub fn data(self, path: &str, bytes: impl Into<Vec<u8>>) -> PyPkg {
        let dir = self.data_dir();
        self.file(&format!("{dir}/{path}"), bytes)
    }

    /// Publish only the sdist (a legacy `setup.py` one unless
    /// [`with_build_backend`](Self::with_build_backend)).
    pub fn sdist_only(mut self) -> PyPkg {
        self.wheel = false;
        self.sdist.get_or_insert(SdistKind::Legacy(None));
        self
    }
    /// Publish an sdist besides the wheel(s).
    pub fn sdist(mut self) -> PyPkg {
        self.sdist.get_or_insert(SdistKind::Legacy(None));
        self
    }
    /// The sdist's `setup.py` creates `marker` when run.
    pub fn setup_py(mut self, marker: &Path) -> PyPkg {
        self.sdist = Some(SdistKind::Legacy(Some(marker.into())));
        self
    }
    /// The sdist has a `pyproject.toml` whose in-tree build backend creates
    /// `marker` on import, and a `setup.py` that does too. Implies an sdist.
    pub fn with_build_backend(mut self, marker: &Path) -> PyPkg {
        self.sdist = Some(SdistKind::BuildBackend(marker.into()));
        self
    }

    /// The wheel's tag triple(s), e.g. `cp311-cp311-manylinux_2_17_x86_64`
    /// (default `py3-none-any`). Replaces the default.
    pub fn wheel_tags(mut self, tags: &str) -> PyPkg {
        self.tags = vec![tags.into()];
        self
    }
    /// One more wheel of the same contents, with these tags.
    pub fn also_wheel_tags(mut self, tags: &str) -> PyPkg {
        self.tags.push(tags.into());
        self
    }

    // --- hostile members ---

    /// A regular member whose name is written verbatim (`../x`, `/abs/x`,
    /// `C:/x`), listed in RECORD with its true hash so that the name is the
    /// only thing wrong with it.
    pub fn raw_member(self, name: &str, bytes: impl Into<Vec<u8>>) -> PyPkg {
        self.file(name, bytes)
    }
    /// A symlink member (unix mode `0o120777`) pointing at `target`.
    pub fn symlink(mut self, name: &str, target: &str) -> PyPkg {
        self.members.push(Member {
            name: name.into(),
            body: Body::Symlink(target.into()),
            mode: 0o120777,
            duplicate: false,
        });
        self
    }
    /// A second member named like an earlier one, with other bytes.
    pub fn duplicate(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> PyPkg {
        let mut m = Member::file(name, bytes);
        m.duplicate = true;
        self.members.push(m);
        self
    }
    /// A member of `size` zero bytes: a few MiB on the wire, listed in
    /// RECORD with its true hash.
    pub fn zip_bomb(mut self, name: &str, size: u64) -> PyPkg {
        self.members.push(Member {
            name: name.into(),
            body: Body::Zeros(size),
            mode: 0o644,
            duplicate: false,
        });
        self
    }

    // --- RECORD tampering ---

    /// RECORD lists `path` with the hash of other bytes.
    pub fn record_wrong_hash(mut self, path: &str) -> PyPkg {
        self.tamper.push((path.into(), Tamper::WrongHash));
        self
    }
    /// RECORD lists `path` with a wrong size.
    pub fn record_wrong_size(mut self, path: &str) -> PyPkg {
        self.tamper.push((path.into(), Tamper::WrongSize));
        self
    }
    /// RECORD does not list `path`.
    pub fn record_omit(mut self, path: &str) -> PyPkg {
        self.tamper.push((path.into(), Tamper::Omit));
        self
    }
    /// RECORD lists `path`, which the wheel does not hold.
    pub fn record_phantom(mut self, path: &str) -> PyPkg {
        self.phantom.push(path.into());
        self
    }

    // --- what the index says ---

    /// Declare this sha256 (hex) for every file of this version.
    pub fn declared_sha256(mut self, hex: &str) -> PyPkg {
        self.declared = Declared::Override(hex.into());
        self
    }
    /// Declare no hash at all.
    pub fn no_hash(mut self) -> PyPkg {
        self.declared = Declared::Absent;
        self
    }
    /// PEP 592: the files are yanked, with this reason.
    pub fn yanked(mut self, reason: &str) -> PyPkg {
        self.yanked = Some(reason.into());
        self
    }
    /// Links point at the same path and port on another host name.
    pub fn file_host(mut self, host: &str) -> PyPkg {
        self.url = FileUrl::Host(host.into());
        self
    }
    /// Links point at `<base>/files/<filename>` (`base` like
    /// `https://localhost:8443`), hashes declared as usual.
    pub fn file_base(mut self, base: &str) -> PyPkg {
        self.url = FileUrl::Base(base.trim_end_matches('/').into());
        self
    }
    /// Links point at `url`, verbatim.
    pub fn file_url(mut self, url: &str) -> PyPkg {
        self.url = FileUrl::Absolute(url.into());
        self
    }
    /// Offer (or not) a PEP 658 `.metadata` file, whatever the index default.
    pub fn metadata_file(mut self, on: bool) -> PyPkg {
        self.metadata_file = Some(on);
        self
    }
    /// The PEP 691 `upload-time` of the files (default 2021-01-01), as
    /// RFC 3339 (`2001-09-09T01:46:40.000000Z`): what a cooldown judges.
    pub fn uploaded_at(mut self, time: &str) -> PyPkg {
        self.upload_time = time.into();
        self
    }
    /// The links' `data-requires-python`, instead of the package's own.
    pub fn link_requires_python(mut self, spec: &str) -> PyPkg {
        self.link_requires_python = Some(spec.into());
        self
    }

    // --- building ---

    fn dist_info_dir(&self) -> String {
        format!("{}-{}.dist-info", dist_name(&self.name), self.version)
    }
    fn data_dir(&self) -> String {
        format!("{}-{}.data", dist_name(&self.name), self.version)
    }
    /// `<dist>-<version>.dist-info/<file>`, for RECORD tampering.
    pub fn dist_info(&self, file: &str) -> String {
        format!("{}/{file}", self.dist_info_dir())
    }

    /// The `METADATA` file (also served as the PEP 658 metadata file).
    pub fn metadata(&self) -> String {
        let mut s = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: safex test fixture\n",
            self.name, self.version
        );
        if let Some(rp) = &self.requires_python {
            s.push_str(&format!("Requires-Python: {rp}\n"));
        }
        for e in &self.provides_extra {
            s.push_str(&format!("Provides-Extra: {e}\n"));
        }
        for d in &self.requires_dist {
            s.push_str(&format!("Requires-Dist: {d}\n"));
        }
        s
    }

    fn wheel_metadata(&self, tags: &str) -> String {
        let purelib = tags.ends_with("-none-any");
        let mut s =
            format!("Wheel-Version: 1.0\nGenerator: safex-pyfixture\nRoot-Is-Purelib: {purelib}\n");
        for tag in expand_tags(tags) {
            s.push_str(&format!("Tag: {tag}\n"));
        }
        s
    }

    fn entry_points_txt(&self) -> Option<String> {
        if self.entry_points.is_empty() {
            return None;
        }
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (g, n, v) in &self.entry_points {
            groups.entry(g).or_default().push(format!("{n} = {v}"));
        }
        let mut s = String::new();
        for (g, lines) in groups {
            s.push_str(&format!("[{g}]\n{}\n\n", lines.join("\n")));
        }
        Some(s)
    }

    /// The wheel for the first tag string.
    pub fn wheel(&self) -> Vec<u8> {
        self.wheel_for(&self.tags[0])
    }

    /// The wheel with these tags in its name and its `WHEEL` file.
    pub fn wheel_for(&self, tags: &str) -> Vec<u8> {
        let mut members = self.members.clone();
        members.push(Member::file(&self.dist_info("METADATA"), self.metadata()));
        members.push(Member::file(
            &self.dist_info("WHEEL"),
            self.wheel_metadata(tags),
        ));
        if let Some(ep) = self.entry_points_txt() {
            members.push(Member::file(&self.dist_info("entry_points.txt"), ep));
        }
        let record_path = self.dist_info("RECORD");
        let mut record = String::new();
        for m in members.iter().filter(|m| !m.duplicate) {
            let tamper = self
                .tamper
                .iter()
                .find(|(p, _)| p == &m.name)
                .map(|(_, t)| t);
            let (hash, size) = member_hash(&m.body);
            let line = match tamper {
                None => format!("{},{hash},{size}", csv(&m.name)),
                Some(Tamper::WrongHash) => format!(
                    "{},{},{size}",
                    csv(&m.name),
                    record_hash(b"not what the wheel holds")
                ),
                Some(Tamper::WrongSize) => format!("{},{hash},{}", csv(&m.name), size + 1),
                Some(Tamper::Omit) => continue,
            };
            record.push_str(&line);
            record.push('\n');
        }
        for p in &self.phantom {
            record.push_str(&format!("{},{},7\n", csv(p), record_hash(b"phantom")));
        }
        record.push_str(&format!("{},,\n", csv(&record_path)));
        members.push(Member::file(&record_path, record));
        write_zip(&members)
    }

    /// The sdist: `<dist>-<version>/` with `PKG-INFO`, the package's regular
    /// files, and `setup.py` / `pyproject.toml` + backend as configured.
    pub fn sdist_bytes(&self) -> Vec<u8> {
        let top = format!("{}-{}", dist_name(&self.name), self.version);
        let mut files: Vec<(String, Vec<u8>)> =
            vec![("PKG-INFO".into(), self.metadata().into_bytes())];
        for m in &self.members {
            if let (Body::Bytes(b), false) = (&m.body, m.duplicate) {
                files.push((m.name.clone(), b.clone()));
            }
        }
        let setup = |marker: Option<&Path>| {
            let touch = marker
                .map(|m| format!("{}\n", py_touch(m)))
                .unwrap_or_default();
            format!(
                "{touch}from setuptools import setup\nsetup(name={}, version={})\n",
                py_str(&self.name),
                py_str(&self.version)
            )
        };
        match self.sdist.as_ref().expect("no sdist configured") {
            SdistKind::Legacy(marker) => {
                files.push(("setup.py".into(), setup(marker.as_deref()).into_bytes()));
            }
            SdistKind::BuildBackend(marker) => {
                files.push(("setup.py".into(), setup(Some(marker)).into_bytes()));
                files.push((
                    "pyproject.toml".into(),
                    format!(
                        "[build-system]\nrequires = []\nbuild-backend = \"{BACKEND_MODULE}\"\nbackend-path = [\".\"]\n\n[project]\nname = {}\nversion = {}\n",
                        py_str(&self.name),
                        py_str(&self.version)
                    )
                    .into_bytes(),
                ));
                files.push((
                    format!("{BACKEND_MODULE}.py"),
                    backend_source(marker).into_bytes(),
                ));
            }
        }
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, format!("{top}/{path}"), &data[..])
                .expect("tar entry");
        }
        tar.into_inner()
            .expect("tar finish")
            .finish()
            .expect("gzip finish")
    }
}

/// The module name of the in-tree build backend of
/// [`PyPkg::with_build_backend`].
pub const BACKEND_MODULE: &str = "safex_fixture_backend";

fn backend_source(marker: &Path) -> String {
    let mut s = format!("{}\n\n", py_touch(marker));
    for hook in [
        "get_requires_for_build_wheel",
        "get_requires_for_build_sdist",
        "prepare_metadata_for_build_wheel",
        "build_wheel",
        "build_sdist",
        "build_editable",
    ] {
        s.push_str(&format!(
            "def {hook}(*args, **kwargs):\n    {}\n    raise RuntimeError('fixture backend')\n\n",
            py_touch(marker)
        ));
    }
    s
}

/// `def main():` with `body` indented under it.
fn main_function(body: &str) -> String {
    let mut s = String::from("def main():\n");
    for line in body.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s.push_str("    return None\n");
    s
}

/// `py2.py3-none-any` → `py2-none-any`, `py3-none-any`.
fn expand_tags(tags: &str) -> Vec<String> {
    let parts: Vec<&str> = tags.splitn(3, '-').collect();
    let [py, abi, plat] = parts[..] else {
        panic!("bad wheel tags `{tags}`");
    };
    let mut out = Vec::new();
    for p in py.split('.') {
        for a in abi.split('.') {
            for pl in plat.split('.') {
                out.push(format!("{p}-{a}-{pl}"));
            }
        }
    }
    out
}

fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// RECORD hash and size of a member's content.
fn member_hash(body: &Body) -> (String, u64) {
    match body {
        Body::Bytes(b) => (record_hash(b), b.len() as u64),
        Body::Symlink(t) => (record_hash(t.as_bytes()), t.len() as u64),
        Body::Zeros(n) => (zeros_record_hash(*n), *n),
    }
}

/// The RECORD hash of `n` zero bytes. Hashing gigabytes in an unoptimized
/// test build takes a minute, so the bomb sizes the tests use are known
/// digests (computed with Python's `hashlib`, and checked against it by
/// `fixture_writes_hostile_members_verbatim`); other sizes are hashed.
fn zeros_record_hash(n: u64) -> String {
    const GIB: u64 = 1 << 30;
    let known = match n {
        _ if n == GIB => Some("Sbwg3xXkEqZEckIeE_6G_xxRZeGLKvzPFg1NwZ_mihQ"),
        _ if n == 2 * GIB => Some("p8dEwTzBAe1mwp9nL5JFVUeInMWGzm1E_naugklY6lE"),
        _ if n == 3 * GIB => Some("MFtmpZ0VslIJL72p0JcRIwxCnzUYl8vUMOe1WjX9O5c"),
        _ => None,
    };
    if let Some(b64) = known {
        return format!("sha256={b64}");
    }
    static CACHE: OnceLock<Mutex<HashMap<u64, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    c.entry(n)
        .or_insert_with(|| {
            let block = vec![0u8; 1 << 20];
            let mut h = Sha256::new();
            let mut left = n;
            while left > 0 {
                let k = left.min(block.len() as u64) as usize;
                h.update(&block[..k]);
                left -= k as u64;
            }
            format!(
                "sha256={}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
            )
        })
        .clone()
}

/// A one-member zip holding `n` deflated zeros, written by hand: one MiB of
/// zeros is deflated once, ending with a full flush (byte-aligned, no
/// back-references across it), and repeated, so gigabytes cost a few MiB
/// and no time; the CRC is combined per MiB. Its member is then copied raw
/// into the wheels that want a bomb. Below 4 GiB (no zip64).
fn zeros_zip(n: u64) -> Arc<Vec<u8>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Arc<Vec<u8>>>>> = OnceLock::new();
    const MIB: u64 = 1 << 20;
    assert!(n < u32::MAX as u64, "fixture bombs stay below 4 GiB");
    let cache = CACHE.get_or_init(Mutex::default);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    c.entry(n)
        .or_insert_with(|| {
            let zeros = vec![0u8; MIB as usize];
            let block = raw_deflate(&zeros, FlushCompress::Full);
            let mut block_crc = Crc::new();
            block_crc.update(&zeros);
            let mut data = Vec::new();
            let mut crc = Crc::new();
            for _ in 0..n / MIB {
                data.extend_from_slice(&block);
                crc.combine(&block_crc);
            }
            let rest = &zeros[..(n % MIB) as usize];
            data.extend(raw_deflate(rest, FlushCompress::Full));
            crc.update(rest);
            data.extend(raw_deflate(&[], FlushCompress::Finish));
            let crc = crc.sum();

            let name = b"zeros";
            let common = |z: &mut Vec<u8>| {
                z.extend(20u16.to_le_bytes()); // version needed
                z.extend(0u16.to_le_bytes()); // flags
                z.extend(8u16.to_le_bytes()); // deflate
                z.extend(0u16.to_le_bytes()); // time 00:00
                z.extend(0x21u16.to_le_bytes()); // date 1980-01-01
                z.extend(crc.to_le_bytes());
                z.extend((data.len() as u32).to_le_bytes());
                z.extend((n as u32).to_le_bytes());
                z.extend((name.len() as u16).to_le_bytes());
                z.extend(0u16.to_le_bytes()); // extra length
            };
            let mut z = Vec::with_capacity(data.len() + 256);
            z.extend(0x0403_4b50u32.to_le_bytes());
            common(&mut z);
            z.extend(name);
            z.extend(&data);
            let cd_offset = z.len();
            z.extend(0x0201_4b50u32.to_le_bytes());
            z.extend((3u16 << 8 | 20).to_le_bytes()); // made by: unix
            common(&mut z);
            z.extend(0u16.to_le_bytes()); // comment length
            z.extend(0u16.to_le_bytes()); // disk
            z.extend(0u16.to_le_bytes()); // internal attributes
            z.extend((0o100644u32 << 16).to_le_bytes());
            z.extend(0u32.to_le_bytes()); // local header offset
            z.extend(name);
            let cd_size = z.len() - cd_offset;
            z.extend(0x0605_4b50u32.to_le_bytes());
            z.extend([0u8; 4]); // disk numbers
            z.extend(1u16.to_le_bytes());
            z.extend(1u16.to_le_bytes());
            z.extend((cd_size as u32).to_le_bytes());
            z.extend((cd_offset as u32).to_le_bytes());
            z.extend(0u16.to_le_bytes()); // comment length
            Arc::new(z)
        })
        .clone()
}

fn raw_deflate(data: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 1024);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .expect("deflate");
        let all_in = c.total_in() as usize == data.len();
        if status == Status::StreamEnd || (all_in && out.len() < out.capacity()) {
            return out;
        }
        out.reserve(out.capacity().max(1024));
    }
}

fn file_options(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(mode)
}

/// Write the members in order, names verbatim. The zip writer refuses a
/// name twice, so a duplicate is written under a placeholder of the same
/// length, renamed in the finished bytes (local header and central
/// directory; names are stored uncompressed and their length is unchanged,
/// so nothing else moves).
fn write_zip(members: &[Member]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let mut renames = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let name = if m.duplicate {
            let tag = format!("~dup{i}~");
            assert!(
                m.name.len() >= tag.len(),
                "duplicate name `{}` is too short for a placeholder",
                m.name
            );
            let placeholder = format!("{tag:~<width$}", width = m.name.len());
            renames.push((placeholder.clone(), m.name.clone()));
            placeholder
        } else {
            m.name.clone()
        };
        match &m.body {
            Body::Bytes(b) => {
                w.start_file(name, file_options(m.mode)).unwrap();
                w.write_all(b).unwrap();
            }
            Body::Symlink(target) => {
                let opts = SimpleFileOptions::default().last_modified_time(DateTime::default());
                w.add_symlink(name, target, opts).unwrap();
            }
            Body::Zeros(n) => {
                let src = zeros_zip(*n);
                let mut archive = ZipArchive::new(Cursor::new(&src[..])).unwrap();
                let file = archive.by_index_raw(0).unwrap();
                w.raw_copy_file_rename(file, name).unwrap();
            }
        }
    }
    let mut bytes = w.finish().unwrap().into_inner();
    for (placeholder, name) in renames {
        let (p, n) = (placeholder.as_bytes(), name.as_bytes());
        let at: Vec<usize> = bytes
            .windows(p.len())
            .enumerate()
            .filter(|(_, w)| *w == p)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 2, "placeholder `{placeholder}` not found twice");
        for i in at {
            bytes[i..i + n.len()].copy_from_slice(n);
        }
    }
    bytes
}

// ---------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------

/// One published file.
struct PubFile {
    filename: String,
    bytes: Arc<Vec<u8>>,
    /// The PEP 658 metadata (wheels only).
    metadata: Option<Arc<Vec<u8>>>,
}

struct Published {
    pkg: PyPkg,
    files: Vec<PubFile>,
}

#[derive(Default)]
struct State {
    /// normalized name → version → published version.
    projects: BTreeMap<String, BTreeMap<String, Published>>,
    /// (page, project, version): the page also lists that version's files.
    foreign: Vec<(String, String, String)>,
    /// (page, file name): a link to `/files/<name>` that nothing serves.
    stray: Vec<(String, String)>,
    json: bool,
    metadata_files: bool,
    relative_urls: bool,
}

/// The index. Dropping it stops the accept loop.
pub struct PyIndex {
    addr: SocketAddr,
    server: Server<State>,
}

#[derive(Default)]
pub struct PyIndexBuilder {
    packages: Vec<PyPkg>,
    json: bool,
    metadata_files: bool,
    relative_urls: bool,
}

impl PyIndexBuilder {
    pub fn package(mut self, pkg: PyPkg) -> PyIndexBuilder {
        self.packages.push(pkg);
        self
    }
    /// Answer PEP 691 JSON to clients whose `Accept` prefers it.
    pub fn json(mut self, on: bool) -> PyIndexBuilder {
        self.json = on;
        self
    }
    /// Offer PEP 658 metadata files for every wheel (unless a package says
    /// otherwise).
    pub fn metadata_files(mut self, on: bool) -> PyIndexBuilder {
        self.metadata_files = on;
        self
    }
    /// Links relative to the page (`../../files/<f>`) instead of absolute.
    pub fn relative_urls(mut self, on: bool) -> PyIndexBuilder {
        self.relative_urls = on;
        self
    }
    pub fn build(self) -> PyIndex {
        let idx = PyIndex::start();
        {
            let mut st = idx.state();
            st.json = self.json;
            st.metadata_files = self.metadata_files;
            st.relative_urls = self.relative_urls;
        }
        for p in self.packages {
            idx.publish(p);
        }
        idx
    }
}

impl PyIndex {
    pub fn builder() -> PyIndexBuilder {
        PyIndexBuilder::default()
    }

    /// An empty HTML-only index on 127.0.0.1 at a free port.
    pub fn start() -> PyIndex {
        let server = Server::start(State::default());
        let addr = server.addr();
        PyIndex { addr, server }
    }

    /// `http://127.0.0.1:PORT/simple/`
    pub fn url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, Locked<State>> {
        self.server.state()
    }

    /// Publish a version, or republish it with other bytes: the page then
    /// declares the new bytes' hashes.
    pub fn publish(&self, pkg: PyPkg) {
        let mut files = Vec::new();
        if pkg.wheel {
            let metadata = Arc::new(pkg.metadata().into_bytes());
            for t in &pkg.tags {
                files.push(PubFile {
                    filename: wheel_filename(&pkg.name, &pkg.version, t),
                    bytes: Arc::new(pkg.wheel_for(t)),
                    metadata: Some(metadata.clone()),
                });
            }
        }
        if pkg.sdist.is_some() {
            files.push(PubFile {
                filename: sdist_filename(&pkg.name, &pkg.version),
                bytes: Arc::new(pkg.sdist_bytes()),
                metadata: None,
            });
        }
        let mut st = self.state();
        st.projects
            .entry(normalize(&pkg.name))
            .or_default()
            .insert(pkg.version.clone(), Published { pkg, files });
    }

    /// The page of `page` also lists the files of `project==version`, a
    /// file of another project.
    pub fn list_foreign(&self, page: &str, project: &str, version: &str) {
        self.state()
            .foreign
            .push((normalize(page), normalize(project), version.into()));
    }

    /// The page of `page` also links a file named `filename` (old files on
    /// real pages: `cffi-1.0.2-2.tar.gz`, `regex-2013-02-16.tar.gz`).
    pub fn list_stray(&self, page: &str, filename: &str) {
        self.state().stray.push((normalize(page), filename.into()));
    }

    /// The file names `name==version` publishes.
    pub fn filenames(&self, name: &str, version: &str) -> Vec<String> {
        self.with_published(name, version, |p| {
            p.files.iter().map(|f| f.filename.clone()).collect()
        })
    }

    /// The first wheel's file name.
    pub fn wheel_name(&self, name: &str, version: &str) -> String {
        self.with_published(name, version, |p| {
            p.files
                .iter()
                .find(|f| f.filename.ends_with(".whl"))
                .unwrap_or_else(|| panic!("{name}=={version} has no wheel"))
                .filename
                .clone()
        })
    }

    /// The served bytes of a file.
    pub fn file_bytes(&self, filename: &str) -> Vec<u8> {
        let st = self.state();
        find_file(&st, filename)
            .unwrap_or_else(|| panic!("no file {filename}"))
            .bytes
            .to_vec()
    }

    /// The bytes of the first wheel of `name==version`.
    pub fn wheel_bytes(&self, name: &str, version: &str) -> Vec<u8> {
        self.file_bytes(&self.wheel_name(name, version))
    }

    /// The true sha256 (hex) of the first wheel of `name==version`.
    pub fn wheel_sha256(&self, name: &str, version: &str) -> String {
        sha256_hex(&self.wheel_bytes(name, version))
    }

    fn with_published<T>(&self, name: &str, version: &str, f: impl FnOnce(&Published) -> T) -> T {
        let st = self.state();
        let p = st
            .projects
            .get(&normalize(name))
            .and_then(|v| v.get(version))
            .unwrap_or_else(|| panic!("{name}=={version} is not published"));
        f(p)
    }

    /// Misbehave on the next `times` requests for `path` ([`page_path`],
    /// [`file_path`]). Faults queue in order.
    pub fn fault(&self, path: &str, fault: Fault, times: usize) {
        self.state()
            .faults
            .entry(path.into())
            .or_default()
            .push_back((fault, times));
    }
    pub fn fault_always(&self, path: &str, fault: Fault) {
        self.fault(path, fault, usize::MAX);
    }
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().log.clone()
    }
    /// `METHOD target` for every request so far: for assertion messages.
    pub fn request_lines(&self) -> Vec<String> {
        self.state()
            .log
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect()
    }
    pub fn clear_log(&self) {
        self.state().log.clear();
    }
    /// Requests for `path` (query ignored).
    pub fn hits(&self, path: &str) -> usize {
        self.state().log.iter().filter(|r| r.path == path).count()
    }
    pub fn page_hits(&self, name: &str) -> usize {
        self.hits(&page_path(name))
    }
    pub fn file_hits(&self, filename: &str) -> usize {
        self.hits(&file_path(filename))
    }
    /// Requests for any file of `name==version` (metadata files included).
    pub fn version_file_hits(&self, name: &str, version: &str) -> usize {
        let names = self.filenames(name, version);
        self.state()
            .log
            .iter()
            .filter(|r| {
                names.iter().any(|f| {
                    r.path == file_path(f) || r.path == format!("{}.metadata", file_path(f))
                })
            })
            .count()
    }

    /// The page as it would be served now: HTML, or JSON if `json`.
    pub fn page(&self, name: &str, json: bool) -> Option<String> {
        let st = self.state();
        let files = page_files(&st, &normalize(name))?;
        Some(if json {
            render_json(&st, &normalize(name), &files, self.port())
        } else {
            render_html(&st, &normalize(name), &files, self.port())
        })
    }

    /// `safex` in `env`, pointed at this index with `SAFEX_PYPI_INDEX`.
    pub fn safex(&self, env: &TestEnv) -> Command {
        let mut cmd = env.safex();
        cmd.env("SAFEX_PYPI_INDEX", self.url());
        cmd
    }

    /// `safex uvx ARGS` against this index, run to completion.
    pub fn uvx(&self, env: &TestEnv, args: &[&str]) -> Output {
        run(self.safex(env).arg("uvx").args(args))
    }

    /// `safex lock uvx ARGS` against this index.
    pub fn lock_uvx(&self, env: &TestEnv, args: &[&str]) -> Output {
        run(self.safex(env).args(["lock", "uvx"]).args(args))
    }

    /// A plain GET with an `Accept` header, for testing the index itself.
    pub fn get(&self, target: &str, accept: Option<&str>) -> std::io::Result<RawResponse> {
        match accept {
            None => raw_get(self.addr, target),
            Some(a) => raw_get_with(self.addr, target, &[("Accept", a)]),
        }
    }
}

fn find_file<'a>(st: &'a State, filename: &str) -> Option<&'a PubFile> {
    st.projects
        .values()
        .flat_map(|v| v.values())
        .flat_map(|p| p.files.iter())
        .find(|f| f.filename == filename)
}

/// The (package, file) pairs a page lists: its own, then foreign ones.
fn page_files<'a>(st: &'a State, name: &str) -> Option<Vec<(&'a PyPkg, &'a PubFile)>> {
    let own = st.projects.get(name);
    let foreign: Vec<_> = st
        .foreign
        .iter()
        .filter(|(page, _, _)| page == name)
        .filter_map(|(_, project, version)| st.projects.get(project)?.get(version))
        .collect();
    if own.is_none_or(|v| v.is_empty()) && foreign.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for p in own.into_iter().flat_map(|v| v.values()).chain(foreign) {
        for f in &p.files {
            out.push((&p.pkg, f));
        }
    }
    Some(out)
}

fn metadata_offered(st: &State, pkg: &PyPkg, f: &PubFile) -> bool {
    f.metadata.is_some() && pkg.metadata_file.unwrap_or(st.metadata_files)
}

fn declared_sha256(pkg: &PyPkg, f: &PubFile) -> Option<String> {
    match &pkg.declared {
        Declared::Computed => Some(sha256_hex(&f.bytes)),
        Declared::Override(h) => Some(h.clone()),
        Declared::Absent => None,
    }
}

/// The link's URL without fragment.
fn file_url(st: &State, pkg: &PyPkg, f: &PubFile, port: u16) -> String {
    let path = file_path(&f.filename);
    match &pkg.url {
        FileUrl::Index if st.relative_urls => format!("../..{path}"),
        FileUrl::Index => format!("http://127.0.0.1:{port}{path}"),
        FileUrl::Host(h) => format!("http://{h}:{port}{path}"),
        FileUrl::Absolute(u) => u.clone(),
        FileUrl::Base(b) => format!("{b}{path}"),
    }
}

fn link_requires_python(pkg: &PyPkg) -> Option<&str> {
    pkg.link_requires_python
        .as_deref()
        .or(pkg.requires_python.as_deref())
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render_html(st: &State, name: &str, files: &[(&PyPkg, &PubFile)], port: u16) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n<title>Links for {name}</title>\n</head>\n<body>\n<h1>Links for {name}</h1>\n"
    );
    for (pkg, f) in files {
        let mut href = file_url(st, pkg, f, port);
        if let (Some(h), false) = (
            declared_sha256(pkg, f),
            matches!(pkg.url, FileUrl::Absolute(_)),
        ) {
            href.push_str(&format!("#sha256={h}"));
        }
        let mut attrs = format!("href=\"{}\"", html_escape(&href));
        if let Some(rp) = link_requires_python(pkg) {
            attrs.push_str(&format!(" data-requires-python=\"{}\"", html_escape(rp)));
        }
        if metadata_offered(st, pkg, f) {
            let h = sha256_hex(f.metadata.as_ref().unwrap());
            attrs.push_str(&format!(
                " data-dist-info-metadata=\"sha256={h}\" data-core-metadata=\"sha256={h}\""
            ));
        }
        if let Some(reason) = &pkg.yanked {
            attrs.push_str(&format!(" data-yanked=\"{}\"", html_escape(reason)));
        }
        s.push_str(&format!(
            "<a {attrs}>{}</a><br/>\n",
            html_escape(&f.filename)
        ));
    }
    for (page, filename) in &st.stray {
        if page == name {
            s.push_str(&format!(
                "<a href=\"{}\">{}</a><br/>\n",
                html_escape(&format!("http://127.0.0.1:{port}{}", file_path(filename))),
                html_escape(filename)
            ));
        }
    }
    s.push_str("</body>\n</html>\n");
    s
}

fn render_json(st: &State, name: &str, files: &[(&PyPkg, &PubFile)], port: u16) -> String {
    let mut versions: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (pkg, f) in files {
        if normalize(&pkg.name) == name && !versions.contains(&pkg.version) {
            versions.push(pkg.version.clone());
        }
        let mut m = Map::new();
        m.insert("filename".into(), f.filename.clone().into());
        m.insert("url".into(), file_url(st, pkg, f, port).into());
        let mut hashes = Map::new();
        if let Some(h) = declared_sha256(pkg, f) {
            hashes.insert("sha256".into(), h.into());
        }
        m.insert("hashes".into(), Value::Object(hashes));
        if let Some(rp) = link_requires_python(pkg) {
            m.insert("requires-python".into(), rp.into());
        }
        let meta = if metadata_offered(st, pkg, f) {
            json!({ "sha256": sha256_hex(f.metadata.as_ref().unwrap()) })
        } else {
            json!(false)
        };
        m.insert("core-metadata".into(), meta.clone());
        m.insert("dist-info-metadata".into(), meta);
        m.insert(
            "yanked".into(),
            match &pkg.yanked {
                Some(r) => r.clone().into(),
                None => false.into(),
            },
        );
        m.insert("size".into(), f.bytes.len().into());
        m.insert("upload-time".into(), pkg.upload_time.clone().into());
        out.push(Value::Object(m));
    }
    for (page, filename) in &st.stray {
        if page == name {
            out.push(json!({
                "filename": filename,
                "url": format!("http://127.0.0.1:{port}{}", file_path(filename)),
                "hashes": {},
            }));
        }
    }
    serde_json::to_string_pretty(&json!({
        "meta": { "api-version": "1.1" },
        "name": name,
        "versions": versions,
        "files": out,
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// The PEP 691 JSON media type.
pub const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";
/// The index's error and redirect bodies.
fn error(status: u16) -> Response {
    Response {
        status,
        content_type: "text/plain".into(),
        body: Arc::new(format!("{status} {}\n", reason(status)).into_bytes()),
        location: None,
    }
}

fn redirect(to: String) -> Response {
    Response {
        location: Some(to),
        ..error(301)
    }
}

impl Routes for State {
    fn route(&self, req: &Request, port: u16) -> Response {
        route(self, req, port)
    }
    fn error(status: u16) -> Response {
        error(status)
    }
    fn normalize(target: &str) -> String {
        target.split(['?', '#']).next().unwrap_or("").to_string()
    }
}

/// The q-value the `Accept` header gives `media` (exact type, `type/*` or
/// `*/*`; the most specific range wins), 0 if none matches, and whether the
/// type was named exactly.
fn accept_q(accept: &str, media: &str) -> (f32, bool) {
    let (ty, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let r = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let specificity = if r == media {
            3
        } else if r == format!("{ty}/*") {
            2
        } else if r == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or((0.0, false), |(s, q)| (q, s == 3))
}

/// Serve JSON if enabled and the client asks for it by name at least as
/// much as for any HTML form (a bare `*/*` gets the HTML default).
fn wants_json(st: &State, req: &Request) -> bool {
    if !st.json {
        return false;
    }
    let Some(accept) = req.header("accept") else {
        return false;
    };
    let (json_q, named) = accept_q(accept, JSON_TYPE);
    let html_q = accept_q(accept, "application/vnd.pypi.simple.v1+html")
        .0
        .max(accept_q(accept, "text/html").0);
    json_q > 0.0 && (json_q > html_q || (named && json_q >= html_q))
}

fn route(st: &State, req: &Request, port: u16) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return error(405);
    }
    let path = req.path.as_str();
    if let Some(file) = path.strip_prefix("/files/") {
        if let Some(f) = find_file(st, file) {
            return Response::ok("application/octet-stream", f.bytes.clone());
        }
        if let Some(wheel) = file.strip_suffix(".metadata") {
            let offered = st
                .projects
                .values()
                .flat_map(|v| v.values())
                .flat_map(|p| p.files.iter().map(move |f| (&p.pkg, f)))
                .find(|(pkg, f)| f.filename == wheel && metadata_offered(st, pkg, f));
            if let Some((_, f)) = offered {
                return Response::ok("text/plain", f.metadata.clone().unwrap());
            }
        }
        return error(404);
    }
    if path == "/simple/" || path == "/simple" {
        if path == "/simple" {
            return redirect("/simple/".into());
        }
        return root_page(st, req);
    }
    let Some(rest) = path.strip_prefix("/simple/") else {
        return error(404);
    };
    let name = rest.trim_end_matches('/');
    if name.is_empty() || name.contains('/') {
        return error(404);
    }
    let norm = normalize(name);
    if norm != name || !rest.ends_with('/') {
        return redirect(format!("/simple/{norm}/"));
    }
    let Some(files) = page_files(st, name) else {
        return error(404);
    };
    if wants_json(st, req) {
        Response::ok(JSON_TYPE, render_json(st, name, &files, port).into_bytes())
    } else {
        Response::ok(
            "text/html; charset=utf-8",
            render_html(st, name, &files, port).into_bytes(),
        )
    }
}

fn root_page(st: &State, req: &Request) -> Response {
    let names: Vec<&String> = st
        .projects
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, _)| n)
        .collect();
    if wants_json(st, req) {
        let projects: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
        let body = json!({ "meta": { "api-version": "1.1" }, "projects": projects });
        return Response::ok(JSON_TYPE, serde_json::to_vec(&body).unwrap());
    }
    let mut s = String::from("<!DOCTYPE html>\n<html><body>\n");
    for n in names {
        s.push_str(&format!("<a href=\"/simple/{n}/\">{n}</a><br/>\n"));
    }
    s.push_str("</body></html>\n");
    Response::ok("text/html; charset=utf-8", s.into_bytes())
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/// Whether `text` names `name`: as written, or in the escaped form that
/// wheel and sdist file names and `.dist-info` use (`pth_hook` for
/// `pth-hook`), so a message that names the package's file names it too.
pub fn names(text: &str, name: &str) -> bool {
    text.contains(name) || text.contains(&dist_name(name))
}

/// [`assert_refused`](super::fixture::assert_refused) for PyPI: the exit
/// code, nothing on stdout, an `error:` that names each of `names` (see
/// [`names`]), no marker, nothing written outside the cache but `created`.
#[track_caller]
pub fn assert_py_refused(
    env: &TestEnv,
    out: &Output,
    code: i32,
    names_: &[&str],
    markers: &[&Path],
    created: &[&Path],
) {
    super::fixture::assert_refused(env, out, code, &[], markers, created);
    let err = String::from_utf8_lossy(&out.stderr);
    for n in names_ {
        assert!(
            names(&err, n),
            "stderr does not name `{n}`\n{}",
            super::fixture::describe(out)
        );
    }
}

// ---------------------------------------------------------------------------
// Python on this machine
// ---------------------------------------------------------------------------

/// The real interpreter behind `python3` on `PATH` (its `sys.executable`,
/// so not a pyenv shim), or `None` if there is none.
pub fn python3() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND.get_or_init(|| interpreter_path("python3")).clone()
}

/// The real interpreter behind `program` (a name on `PATH` or a path).
pub fn interpreter_path(program: &str) -> Option<PathBuf> {
    let out = Command::new(program)
        .args(["-c", "import sys; print(sys.executable)"])
        .env_remove("PYTHONPATH")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    p.is_file().then_some(p)
}

/// `python3 ARGS` with a clean environment (`PATH` only, `HOME` = `home`):
/// for control tests and for checking fixtures with Python's own tools.
pub fn python(home: &Path, args: &[&str]) -> Output {
    let py = python3().expect("python3 on PATH");
    run(Command::new(py)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("PYTHONDONTWRITEBYTECODE", "1"))
}

/// `python3 -m pip ARGS` with no user or site configuration (no
/// `PIP_FIND_LINKS`, no `pip.conf`), no cache and no version check.
pub fn pip(home: &Path, args: &[&str]) -> Output {
    let py = python3().expect("python3 on PATH");
    run(Command::new(py)
        .args(["-m", "pip"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1"))
}

/// What Python's `zipfile` sees in `wheel`: (name, unix mode, size) of every
/// member, in order, duplicates included.
pub fn zip_listing(home: &Path, wheel: &[u8]) -> Vec<(String, u32, u64)> {
    let file = home.join("listing.zip");
    std::fs::write(&file, wheel).unwrap();
    let script = "import json, sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  print(json.dumps([[i.filename, i.external_attr >> 16, i.file_size] for i in z.infolist()]))";
    let out = python(home, &["-c", script, file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, u32, u64)> = serde_json::from_slice(&out.stdout).unwrap();
    std::fs::remove_file(&file).unwrap();
    v
}
