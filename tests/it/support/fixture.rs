//! An npm registry inside the test process.
//!
//! Packages are described with [`Pkg`]; the registry builds each tarball once
//! when it is published and derives the packument from the same description on
//! every request, so a test can publish, republish and re-tag while `safex`
//! runs. It speaks just enough HTTP/1.1 (keep-alive, `Content-Length`) on
//! 127.0.0.1, one thread per connection, and it can misbehave on purpose per
//! path ([`Fault`]). Every request is logged so that tests can assert what
//! `safex` fetched, and what it did not.
//!
//! Tarballs are written header by header rather than with `tar::Builder`,
//! because the interesting ones are those no packer would produce: `..` and
//! absolute paths written straight into the header bytes, links, devices, and
//! gigabytes of zeros (a bomb) that must still be small on the wire.
//!
//! The registry metadata and the tarball's `package.json` come from one
//! description but can be made to disagree ([`Pkg::registry_field`],
//! [`Pkg::tarball_field`]): that is "manifest confusion", where npm clients
//! trusted the registry's copy while the tarball carried other scripts.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use flate2::{Compress, Compression, FlushCompress, Status};
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha512};

use super::env::TestEnv;

// ---------------------------------------------------------------------------
// Package descriptions
// ---------------------------------------------------------------------------

/// One version of one package: its `package.json`, its files, and whatever
/// the registry should say about it.
#[derive(Clone, Debug)]
pub struct Pkg {
    name: String,
    version: String,
    /// Fields shared by the registry's version document and the tarball's
    /// `package.json` (`name` and `version` are added when building).
    manifest: Map<String, Value>,
    /// Regular files under `package/`.
    files: Vec<Entry>,
    /// Entries written exactly as given, after the files.
    raw: Vec<Entry>,
    registry_patch: Vec<Patch>,
    tarball_patch: Vec<Patch>,
    integrity: DistField,
    shasum: DistField,
    tarball_url: TarballUrl,
    published: String,
    with_package_json: bool,
    /// The tarball's top folder (npm strips it, whatever it is).
    top: String,
}

#[derive(Clone, Debug)]
enum Patch {
    Set(String, Value),
    Remove(String),
}

/// A `dist` field: the true value, a lie, or absent.
#[derive(Clone, Debug)]
enum DistField {
    Computed,
    Override(String),
    Absent,
}

/// Where `dist.tarball` points.
#[derive(Clone, Debug)]
enum TarballUrl {
    /// This registry, at the conventional npm path.
    Registry,
    /// The conventional path and this registry's port, on another host name
    /// (`127.0.0.2`, `localhost`): same bytes, different origin.
    Host(String),
    /// Any URL, verbatim.
    Absolute(String),
}

/// A tar entry. Paths are written into the header bytes as given: nothing is
/// normalised or checked, which is the point.
#[derive(Clone, Debug)]
pub enum Entry {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Dir {
        path: String,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    CharDevice {
        path: String,
        major: u32,
        minor: u32,
    },
    Fifo {
        path: String,
    },
    /// A regular file of `size` zero bytes, never held in memory: a bomb.
    Zeros {
        path: String,
        size: u64,
    },
}

impl Entry {
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.into(),
            data: data.into(),
            mode: 0o644,
        }
    }
    pub fn dir(path: &str) -> Entry {
        Entry::Dir { path: path.into() }
    }
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }
    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::Hardlink {
            path: path.into(),
            target: target.into(),
        }
    }
    /// A character device; `1, 3` is `/dev/null` on Linux.
    pub fn char_device(path: &str, major: u32, minor: u32) -> Entry {
        Entry::CharDevice {
            path: path.into(),
            major,
            minor,
        }
    }
    /// A named pipe: unpacked, it would hold any reader of it.
    pub fn fifo(path: &str) -> Entry {
        Entry::Fifo { path: path.into() }
    }
    pub fn zeros(path: &str, size: u64) -> Entry {
        Entry::Zeros {
            path: path.into(),
            size,
        }
    }
    /// This entry with its leading `package/` replaced by `top/`.
    fn under_top(&self, top: &str) -> Entry {
        let mut e = self.clone();
        if let Entry::File { path, .. } = &mut e
            && let Some(rest) = path.strip_prefix("package/")
        {
            *path = format!("{top}/{rest}");
        }
        e
    }
}

impl Pkg {
    pub fn new(name: &str, version: &str) -> Pkg {
        Pkg {
            name: name.into(),
            version: version.into(),
            manifest: Map::new(),
            files: Vec::new(),
            raw: Vec::new(),
            registry_patch: Vec::new(),
            tarball_patch: Vec::new(),
            integrity: DistField::Computed,
            shasum: DistField::Computed,
            tarball_url: TarballUrl::Registry,
            published: "2021-01-01T00:00:00.000Z".into(),
            with_package_json: true,
            top: "package".into(),
        }
    }

    /// A package with one bin, named like the package (without its scope),
    /// whose `cli.js` runs `js` under node.
    pub fn program(name: &str, version: &str, js: &str) -> Pkg {
        Pkg::new(name, version)
            .bin(unscoped(name), "cli.js")
            .file("cli.js", format!("#!/usr/bin/env node\n{js}\n"))
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Any `package.json` field, in both the registry metadata and the tarball.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Pkg {
        self.manifest.insert(key.into(), value.into());
        self
    }

    fn map_entry(mut self, field: &str, key: &str, value: Value) -> Pkg {
        let slot = self.manifest.entry(field).or_insert_with(|| json!({}));
        slot.as_object_mut()
            .unwrap_or_else(|| panic!("`{field}` is not an object"))
            .insert(key.into(), value);
        self
    }

    pub fn dep(self, name: &str, range: &str) -> Pkg {
        self.map_entry("dependencies", name, range.into())
    }
    pub fn optional_dep(self, name: &str, range: &str) -> Pkg {
        self.map_entry("optionalDependencies", name, range.into())
    }
    pub fn peer_dep(self, name: &str, range: &str) -> Pkg {
        self.map_entry("peerDependencies", name, range.into())
    }
    pub fn bundle_deps(self, names: &[&str]) -> Pkg {
        self.field("bundleDependencies", json!(names))
    }
    pub fn script(self, hook: &str, command: &str) -> Pkg {
        self.map_entry("scripts", hook, command.into())
    }
    /// One entry of `"bin": {name: path}`.
    pub fn bin(self, name: &str, path: &str) -> Pkg {
        self.map_entry("bin", name, path.into())
    }
    /// The string form, `"bin": "path"` (the bin is named like the package).
    pub fn bin_path(self, path: &str) -> Pkg {
        self.field("bin", path)
    }
    pub fn os(self, os: &[&str]) -> Pkg {
        self.field("os", json!(os))
    }
    pub fn cpu(self, cpu: &[&str]) -> Pkg {
        self.field("cpu", json!(cpu))
    }

    /// A regular file at `package/<path>`.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Pkg {
        self.files
            .push(Entry::file(&format!("package/{path}"), contents));
        self
    }
    /// `binding.gyp`, which makes npm run `node-gyp rebuild` implicitly when
    /// the package has no `install`/`preinstall` script of its own.
    pub fn binding_gyp(self, contents: &str) -> Pkg {
        self.file("binding.gyp", contents)
    }
    /// Put the `package.json` and every [`Pkg::file`] under `top/` instead of
    /// `package/`, as `@types/*` tarballs do (`node/`, `express/`).
    pub fn top_folder(mut self, top: &str) -> Pkg {
        self.top = top.into();
        self
    }
    /// A tar entry written exactly as given (its path is the full tar path,
    /// `package/` prefix included or not).
    pub fn entry(mut self, entry: Entry) -> Pkg {
        self.raw.push(entry);
        self
    }

    /// A field of the registry's version document only (the tarball keeps
    /// its own `package.json`).
    pub fn registry_field(mut self, key: &str, value: impl Into<Value>) -> Pkg {
        self.registry_patch
            .push(Patch::Set(key.into(), value.into()));
        self
    }
    pub fn registry_remove(mut self, key: &str) -> Pkg {
        self.registry_patch.push(Patch::Remove(key.into()));
        self
    }
    /// A field of the tarball's `package.json` only.
    pub fn tarball_field(mut self, key: &str, value: impl Into<Value>) -> Pkg {
        self.tarball_patch
            .push(Patch::Set(key.into(), value.into()));
        self
    }

    /// Declare this `dist.integrity` instead of the true one.
    pub fn integrity(mut self, sri: &str) -> Pkg {
        self.integrity = DistField::Override(sri.into());
        self
    }
    /// Declare no `dist.integrity` (old packages have only `shasum`).
    pub fn no_integrity(mut self) -> Pkg {
        self.integrity = DistField::Absent;
        self
    }
    /// Declare this `dist.shasum` instead of the true one.
    pub fn shasum(mut self, hex: &str) -> Pkg {
        self.shasum = DistField::Override(hex.into());
        self
    }
    /// Point `dist.tarball` at the usual path on another host name, same port.
    pub fn tarball_host(mut self, host: &str) -> Pkg {
        self.tarball_url = TarballUrl::Host(host.into());
        self
    }
    /// Point `dist.tarball` at any URL.
    pub fn tarball_url(mut self, url: &str) -> Pkg {
        self.tarball_url = TarballUrl::Absolute(url.into());
        self
    }
    /// The publication time in the packument's `time` map (ISO 8601).
    pub fn published_at(mut self, time: &str) -> Pkg {
        self.published = time.into();
        self
    }

    fn base_manifest(&self) -> Map<String, Value> {
        let mut m = self.manifest.clone();
        m.insert("name".into(), self.name.clone().into());
        m.insert("version".into(), self.version.clone().into());
        m
    }

    /// The tarball's `package.json`.
    pub fn tarball_manifest(&self) -> Value {
        let mut m = self.base_manifest();
        apply(&mut m, &self.tarball_patch);
        Value::Object(m)
    }

    /// The gzipped tarball, as npm serves it.
    pub fn tarball(&self) -> Vec<u8> {
        let mut tar = TarWriter::default();
        if self.with_package_json {
            let json = serde_json::to_vec_pretty(&self.tarball_manifest()).unwrap();
            tar.entry(&Entry::file(&format!("{}/package.json", self.top), json));
        }
        for e in &self.files {
            tar.entry(&e.under_top(&self.top));
        }
        for e in &self.raw {
            tar.entry(e);
        }
        gzip(&tar.finish())
    }
}

fn apply(m: &mut Map<String, Value>, patches: &[Patch]) {
    for p in patches {
        match p {
            Patch::Set(k, v) => {
                m.insert(k.clone(), v.clone());
            }
            Patch::Remove(k) => {
                m.remove(k);
            }
        }
    }
}

/// `@scope/name` → `name`.
pub fn unscoped(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(_, n)| n)
}

/// `sha512-<base64>`, the SRI string npm puts in `dist.integrity`.
pub fn sri_sha512(bytes: &[u8]) -> String {
    let digest = Sha512::digest(bytes);
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

// ---------------------------------------------------------------------------
// Tarball writing
// ---------------------------------------------------------------------------

/// npm packs every entry with this mtime (1985-10-26T08:15:00Z).
const NPM_MTIME: u64 = 499_162_500;

/// A tar stream as runs of literal bytes and runs of zeros, so that a bomb
/// of gigabytes is described (and compressed) without ever existing.
#[derive(Default)]
struct TarWriter {
    segments: Vec<Segment>,
}

enum Segment {
    Bytes(Vec<u8>),
    Zeros(u64),
}

impl TarWriter {
    fn entry(&mut self, entry: &Entry) {
        use tar::EntryType as T;
        match entry {
            Entry::File { path, data, mode } => {
                self.header(path, T::Regular, data.len() as u64, *mode, None, (0, 0));
                self.bytes(data.clone());
                self.pad(data.len() as u64);
            }
            Entry::Dir { path } => self.header(path, T::Directory, 0, 0o755, None, (0, 0)),
            Entry::Symlink { path, target } => {
                self.header(path, T::Symlink, 0, 0o777, Some(target), (0, 0))
            }
            Entry::Hardlink { path, target } => {
                self.header(path, T::Link, 0, 0o644, Some(target), (0, 0))
            }
            Entry::CharDevice { path, major, minor } => {
                self.header(path, T::Char, 0, 0o666, None, (*major, *minor))
            }
            Entry::Fifo { path } => self.header(path, T::Fifo, 0, 0o644, None, (0, 0)),
            Entry::Zeros { path, size } => {
                self.header(path, T::Regular, *size, 0o644, None, (0, 0));
                self.segments
                    .push(Segment::Zeros(size.next_multiple_of(512)));
            }
        }
    }

    fn header(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        size: u64,
        mode: u32,
        link: Option<&str>,
        device: (u32, u32),
    ) {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(NPM_MTIME);
        h.set_uid(0);
        h.set_gid(0);
        if kind == tar::EntryType::Char {
            h.set_device_major(device.0).unwrap();
            h.set_device_minor(device.1).unwrap();
        }
        let ustar = h.as_ustar_mut().unwrap();
        write_raw_path(&mut ustar.name, &mut ustar.prefix, path);
        if let Some(target) = link {
            assert!(
                target.len() <= 100,
                "fixture link target too long: {target}"
            );
            ustar.linkname[..target.len()].copy_from_slice(target.as_bytes());
        }
        h.set_cksum();
        self.bytes(h.as_bytes().to_vec());
    }

    /// Literal bytes, merged into the previous run so that a tarball of many
    /// small entries compresses as one stream.
    fn bytes(&mut self, b: Vec<u8>) {
        match self.segments.last_mut() {
            Some(Segment::Bytes(prev)) => prev.extend(b),
            _ => self.segments.push(Segment::Bytes(b)),
        }
    }

    fn pad(&mut self, len: u64) {
        let pad = len.next_multiple_of(512) - len;
        self.bytes(vec![0; pad as usize]);
    }

    /// The end-of-archive marker: two zero blocks.
    fn finish(mut self) -> Vec<Segment> {
        self.bytes(vec![0; 1024]);
        self.segments
    }
}

/// Write `path` into a ustar header as raw bytes: into `name` if it fits,
/// else split at a `/` into `prefix` + `name`, as ustar readers rejoin them.
fn write_raw_path(name: &mut [u8; 100], prefix: &mut [u8; 155], path: &str) {
    let b = path.as_bytes();
    if b.len() <= 100 {
        name[..b.len()].copy_from_slice(b);
        return;
    }
    let split = (0..b.len())
        .rev()
        .find(|&i| b[i] == b'/' && i <= 155 && b.len() - i - 1 <= 100)
        .unwrap_or_else(|| panic!("fixture path does not fit a ustar header: {path}"));
    prefix[..split].copy_from_slice(&b[..split]);
    name[..b.len() - split - 1].copy_from_slice(&b[split + 1..]);
}

/// Gzip a segmented stream. Each segment is deflated separately and ended
/// with a full flush (byte-aligned, no back-references across it), so the
/// pieces concatenate into one valid deflate stream, and one compressed MiB of
/// zeros can be repeated to stand for gigabytes. The CRC of the zero runs is
/// computed arithmetically ([`crc32_zeros`]).
fn gzip(segments: &[Segment]) -> Vec<u8> {
    const MIB: u64 = 1 << 20;
    static ZERO_MIB: OnceLock<Vec<u8>> = OnceLock::new();

    // Header: magic, deflate, no flags, mtime 0, no extra flags, OS = Unix.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let mut crc = 0u32;
    let mut len = 0u64;
    for s in segments {
        match s {
            Segment::Bytes(b) => {
                out.extend(raw_deflate(b, FlushCompress::Full));
                crc = crc32_update(crc, b);
                len += b.len() as u64;
            }
            Segment::Zeros(n) => {
                let block = ZERO_MIB
                    .get_or_init(|| raw_deflate(&vec![0; MIB as usize], FlushCompress::Full));
                for _ in 0..n / MIB {
                    out.extend_from_slice(block);
                }
                let rest = vec![0; (n % MIB) as usize];
                out.extend(raw_deflate(&rest, FlushCompress::Full));
                crc = crc32_zeros(crc, *n);
                len += n;
            }
        }
    }
    out.extend(raw_deflate(&[], FlushCompress::Finish));
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
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

const CRC_POLY: u32 = 0xEDB8_8320;

fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ CRC_POLY
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut c = !crc;
    for &b in data {
        c = table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The CRC-32 of `crc`'s data followed by `n` zero bytes, without the bytes.
/// Shifting a zero bit through the CRC register is linear over GF(2), so it is
/// a 32×32 bit matrix; `n` zero bytes are that matrix to the power `8n`,
/// computed by repeated squaring.
fn crc32_zeros(crc: u32, n: u64) -> u32 {
    type Matrix = [u32; 32];
    fn times(m: &Matrix, mut v: u32) -> u32 {
        let mut r = 0;
        let mut i = 0;
        while v != 0 {
            if v & 1 == 1 {
                r ^= m[i];
            }
            v >>= 1;
            i += 1;
        }
        r
    }
    fn square(m: &Matrix) -> Matrix {
        std::array::from_fn(|i| times(m, m[i]))
    }
    // One zero bit: column 0 is the polynomial, column i is bit i-1.
    let mut op: Matrix = std::array::from_fn(|i| if i == 0 { CRC_POLY } else { 1 << (i - 1) });
    for _ in 0..3 {
        op = square(&op); // 2, 4, 8 bits: one byte
    }
    let mut reg = !crc;
    let mut n = n;
    while n > 0 {
        if n & 1 == 1 {
            reg = times(&op, reg);
        }
        op = square(&op);
        n >>= 1;
    }
    !reg
}

// ---------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------

pub use super::http::{Fault, Request};
use super::http::{Locked, Response, Routes, Server};

/// `/<name>`, the packument's path (scoped names unescaped: `/@s/n`).
pub fn packument_path(name: &str) -> String {
    format!("/{name}")
}

/// `/<name>/-/<unscoped name>-<version>.tgz`, npm's tarball path.
pub fn tarball_path(name: &str, version: &str) -> String {
    format!("/{name}/-/{}", tarball_file(name, version))
}

fn tarball_file(name: &str, version: &str) -> String {
    format!("{}-{version}.tgz", unscoped(name))
}

struct Published {
    pkg: Pkg,
    tarball: Arc<Vec<u8>>,
}

#[derive(Default)]
struct State {
    /// name → version → published package.
    packages: BTreeMap<String, BTreeMap<String, Published>>,
    /// Explicit dist-tags; `latest` defaults to the highest release.
    tags: HashMap<String, BTreeMap<String, String>>,
}

pub struct FixtureRegistry {
    addr: SocketAddr,
    server: Server<State>,
}

#[derive(Default)]
pub struct Builder {
    packages: Vec<Pkg>,
    tags: Vec<(String, String, String)>,
}

impl Builder {
    pub fn package(mut self, pkg: Pkg) -> Builder {
        self.packages.push(pkg);
        self
    }
    pub fn dist_tag(mut self, name: &str, tag: &str, version: &str) -> Builder {
        self.tags.push((name.into(), tag.into(), version.into()));
        self
    }
    pub fn build(self) -> FixtureRegistry {
        let reg = FixtureRegistry::start();
        for p in self.packages {
            reg.publish(p);
        }
        for (name, tag, version) in self.tags {
            reg.dist_tag(&name, &tag, &version);
        }
        reg
    }
}

impl FixtureRegistry {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// An empty registry, listening on 127.0.0.1 at a free port.
    pub fn start() -> FixtureRegistry {
        let server = Server::start(State::default());
        let addr = server.addr();
        FixtureRegistry { addr, server }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
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

    /// Publish a version, or republish it with other bytes: the packument
    /// then declares the new bytes' hashes.
    pub fn publish(&self, pkg: Pkg) {
        let tarball = Arc::new(pkg.tarball());
        let mut st = self.state();
        st.packages
            .entry(pkg.name.clone())
            .or_default()
            .insert(pkg.version.clone(), Published { pkg, tarball });
    }

    pub fn dist_tag(&self, name: &str, tag: &str, version: &str) {
        self.state()
            .tags
            .entry(name.into())
            .or_default()
            .insert(tag.into(), version.into());
    }

    /// The served tarball bytes of a published version.
    pub fn tarball_bytes(&self, name: &str, version: &str) -> Vec<u8> {
        let st = self.state();
        let p = st.packages.get(name).and_then(|v| v.get(version));
        p.unwrap_or_else(|| panic!("{name}@{version} is not published"))
            .tarball
            .to_vec()
    }

    /// The true SRI of a published version's tarball.
    pub fn integrity_of(&self, name: &str, version: &str) -> String {
        sri_sha512(&self.tarball_bytes(name, version))
    }

    /// Misbehave on the next `times` requests for `path` (see
    /// [`packument_path`], [`tarball_path`]). Faults queue in order.
    pub fn fault(&self, path: &str, fault: Fault, times: usize) {
        self.state()
            .faults
            .entry(path.into())
            .or_default()
            .push_back((fault, times));
    }

    /// Misbehave on every request for `path`.
    pub fn fault_always(&self, path: &str, fault: Fault) {
        self.fault(path, fault, usize::MAX);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().log.clone()
    }

    /// `METHOD /path` for every request so far: for assertion messages.
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

    /// How many requests (any method) were made for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state().log.iter().filter(|r| r.path == path).count()
    }

    pub fn packument_hits(&self, name: &str) -> usize {
        self.hits(&packument_path(name))
    }

    pub fn tarball_hits(&self, name: &str, version: &str) -> usize {
        self.hits(&tarball_path(name, version))
    }

    /// Requests for any packument (anything that is not a tarball).
    pub fn metadata_requests(&self) -> Vec<String> {
        let st = self.state();
        st.log
            .iter()
            .filter(|r| !r.path.contains("/-/"))
            .map(|r| r.target.clone())
            .collect()
    }

    /// `safex` in `env`, pointed at this registry with `SAFEX_NPM_REGISTRY`.
    pub fn safex(&self, env: &TestEnv) -> Command {
        let mut cmd = env.safex();
        cmd.env("SAFEX_NPM_REGISTRY", self.url());
        cmd
    }

    /// `safex npx ARGS` against this registry, run to completion.
    pub fn npx(&self, env: &TestEnv, args: &[&str]) -> Output {
        run(self.safex(env).arg("npx").args(args))
    }
}

fn packument(st: &State, name: &str, port: u16) -> Option<Value> {
    let versions = st.packages.get(name).filter(|v| !v.is_empty())?;
    let mut docs = Map::new();
    let mut time = Map::new();
    for (v, p) in versions {
        docs.insert(v.clone(), version_doc(p, port));
        time.insert(v.clone(), p.pkg.published.clone().into());
    }
    let first = versions.values().map(|p| p.pkg.published.clone()).min();
    let last = versions.values().map(|p| p.pkg.published.clone()).max();
    time.insert("created".into(), first.into());
    time.insert("modified".into(), last.into());

    let mut tags = Map::new();
    if let Some(latest) = highest(versions.keys().map(String::as_str)) {
        tags.insert("latest".into(), latest.into());
    }
    for (tag, v) in st.tags.get(name).into_iter().flatten() {
        tags.insert(tag.clone(), v.clone().into());
    }
    Some(json!({
        "_id": name,
        "name": name,
        "dist-tags": tags,
        "versions": docs,
        "time": time,
    }))
}

fn version_doc(p: &Published, port: u16) -> Value {
    let pkg = &p.pkg;
    let mut m = pkg.base_manifest();
    apply(&mut m, &pkg.registry_patch);
    m.insert("_id".into(), format!("{}@{}", pkg.name, pkg.version).into());

    let path = tarball_path(&pkg.name, &pkg.version);
    let tarball = match &pkg.tarball_url {
        TarballUrl::Registry => format!("http://127.0.0.1:{port}{path}"),
        TarballUrl::Host(host) => format!("http://{host}:{port}{path}"),
        TarballUrl::Absolute(url) => url.clone(),
    };
    let mut dist = Map::new();
    dist.insert("tarball".into(), tarball.into());
    let fields = [
        ("integrity", &pkg.integrity, sri_sha512(&p.tarball)),
        ("shasum", &pkg.shasum, sha1_hex(&p.tarball)),
    ];
    for (key, field, computed) in fields {
        match field {
            DistField::Computed => dist.insert(key.into(), computed.into()),
            DistField::Override(v) => dist.insert(key.into(), v.clone().into()),
            DistField::Absent => None,
        };
    }
    m.insert("dist".into(), Value::Object(dist));
    Value::Object(m)
}

/// The highest release, or the highest prerelease if there is no release:
/// what npm makes `latest` by default.
fn highest<'a>(versions: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    versions.max_by(|a, b| {
        let (ka, kb) = (version_key(a), version_key(b));
        (ka.1.is_none(), ka.0)
            .cmp(&(kb.1.is_none(), kb.0))
            .then_with(|| cmp_pre(&ka.1, &kb.1))
    })
}

fn version_key(v: &str) -> ([u64; 3], Option<String>) {
    let v = v.split('+').next().unwrap_or(v);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p.to_string())),
        None => (v, None),
    };
    let mut nums = core.split('.').map(|n| n.parse().unwrap_or(0));
    (
        [
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
        ],
        pre,
    )
}

fn cmp_pre(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    let (Some(a), Some(b)) = (a, b) else {
        return std::cmp::Ordering::Equal;
    };
    let ids = |s: &str| {
        s.split('.')
            .map(|i| i.parse::<u64>().map_err(|_| i.to_string()))
            .collect::<Vec<_>>()
    };
    // Numeric identifiers sort before alphanumeric ones, as in semver.
    ids(a).cmp(&ids(b))
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

impl Routes for State {
    fn route(&self, req: &Request, port: u16) -> Response {
        route(self, req, port)
    }
    fn error(status: u16) -> Response {
        error_response(status)
    }
    fn normalize(target: &str) -> String {
        normalize(target)
    }
}

/// Drop the query and decode what clients encode in package names.
fn normalize(target: &str) -> String {
    let path = target.split('?').next().unwrap_or(target);
    path.replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%40", "@")
}

fn route(st: &State, req: &Request, port: u16) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return error_response(405);
    }
    let path = req.path.strip_prefix('/').unwrap_or(&req.path);
    if let Some((name, file)) = path.split_once("/-/") {
        let found = st.packages.get(name).and_then(|versions| {
            versions
                .values()
                .find(|p| tarball_file(&p.pkg.name, &p.pkg.version) == file)
        });
        return match found {
            Some(p) => Response::ok("application/octet-stream", p.tarball.clone()),
            None => error_response(404),
        };
    }
    match packument(st, path, port) {
        Some(doc) => Response::ok("application/json", serde_json::to_vec(&doc).unwrap()),
        None => error_response(404),
    }
}

fn error_response(status: u16) -> Response {
    let body = json!({ "error": super::http::reason(status) });
    Response {
        status,
        content_type: "application/json".into(),
        body: Arc::new(serde_json::to_vec(&body).unwrap()),
        location: None,
    }
}

/// What [`raw_get`] received.
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET on a fresh connection, for testing the fixture
/// itself.
pub fn raw_get(addr: SocketAddr, target: &str) -> std::io::Result<RawResponse> {
    raw_get_with(addr, target, &[])
}

/// [`raw_get`] with extra request headers.
pub fn raw_get_with(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<RawResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header terminator"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(RawResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

// ---------------------------------------------------------------------------
// Helpers for tests that launch safex against the fixture
// ---------------------------------------------------------------------------

/// A program that prints its arguments as JSON.
pub const ECHO_ARGV: &str = "console.log(JSON.stringify(process.argv.slice(2)));";

/// A JavaScript statement that creates the file at `path`.
pub fn js_touch(path: &Path) -> String {
    format!(
        "require('fs').writeFileSync({}, 'x');",
        json!(path.to_str().unwrap())
    )
}

/// A lifecycle-script command that creates the file at `path`: what a
/// malicious `postinstall` does, minus the harm.
pub fn touch_script(path: &Path) -> String {
    let p = path.to_str().unwrap();
    assert!(
        !p.contains(['\'', '"', '\\']),
        "marker path needs quoting: {p}"
    );
    format!("node -e \"require('fs').writeFileSync('{p}','x')\"")
}

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Run `cmd` to completion with stdin closed, killing it after a generous
/// timeout so that a hung `safex` fails the test instead of the suite.
pub fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn safex");
    wait_with_timeout(&mut child, RUN_TIMEOUT)
}

pub fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> Output {
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out_pipe.read_to_end(&mut b);
        b
    });
    let err = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err_pipe.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            panic!("safex did not finish in {timeout:?} ({status}); stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
}

/// Checks the exit code. The run is echoed so that `--nocapture` shows what
/// each test saw.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    eprintln!("{}", describe(out));
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\n{}",
        describe(out)
    );
}

/// The launch succeeded and the program printed exactly `stdout`.
#[track_caller]
pub fn assert_ran(out: &Output, stdout: &str) {
    assert_code(out, 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        stdout,
        "program output\n{}",
        describe(out)
    );
}

/// Some line of stderr starts with `warning:` and contains every word.
#[track_caller]
pub fn assert_warning(out: &Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let found = stderr
        .lines()
        .any(|l| l.trim_start().starts_with("warning:") && words.iter().all(|w| l.contains(w)));
    assert!(
        found,
        "no `warning:` line mentioning all of {words:?}\n{}",
        describe(out)
    );
}

/// A refusal: the exit code, nothing on stdout, an `error:` on stderr that
/// names each of `names`, no marker file, and nothing written outside the
/// cache except the paths the test itself created (`created`; a directory
/// covers everything under it).
#[track_caller]
pub fn assert_refused(
    env: &TestEnv,
    out: &Output,
    code: i32,
    names: &[&str],
    markers: &[&Path],
    created: &[&Path],
) {
    assert_no_problems(
        out,
        refusal_problems(env, out, code, names, markers, created),
    );
}

/// Why `out` is not a refusal as [`assert_refused`] means it (empty if it
/// is one): for tables that report every failing case at once.
pub fn refusal_problems(
    env: &TestEnv,
    out: &Output,
    code: i32,
    names: &[&str],
    markers: &[&Path],
    created: &[&Path],
) -> Vec<String> {
    let mut problems = message_problems(out, code, names);
    for m in markers.iter().filter(|m| m.exists()) {
        problems.push(format!("install-time code ran: {} exists", m.display()));
    }
    let stray = stray_writes(env, created);
    if !stray.is_empty() {
        problems.push(format!("safex wrote outside its cache: {stray:#?}"));
    }
    problems
}

/// What a refusal says, without the checks on the file system
/// ([`assert_refused`]): the exit code, nothing on stdout, an `error:` on
/// stderr without escape codes (tests run with `NO_COLOR`), naming each of
/// `names`.
#[track_caller]
pub fn assert_refusal_message(out: &Output, code: i32, names: &[&str]) {
    assert_no_problems(out, message_problems(out, code, names));
}

fn message_problems(out: &Output, code: i32, names: &[&str]) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(code) {
        problems.push(format!("exit {:?}, expected {code}", out.status.code()));
    }
    if !out.stdout.is_empty() {
        problems.push("safex wrote to stdout".into());
    }
    if !stderr.contains("error:") {
        problems.push("no `error:` on stderr".into());
    }
    if stderr.contains('\x1b') {
        problems.push("escape codes on stderr with NO_COLOR".into());
    }
    for n in names.iter().filter(|n| !stderr.contains(**n)) {
        problems.push(format!("stderr does not name `{n}`"));
    }
    problems
}

/// Fails with every problem at once. The run is echoed either way (as by
/// [`assert_code`]), so that `--nocapture` shows what each test saw.
#[track_caller]
fn assert_no_problems(out: &Output, problems: Vec<String>) {
    eprintln!("{}", describe(out));
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        describe(out)
    );
}

/// Stderr contains each of `words`.
#[track_caller]
pub fn assert_stderr_mentions(out: &Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    for w in words {
        assert!(
            stderr.contains(w),
            "stderr does not mention `{w}`\n{}",
            describe(out)
        );
    }
}

#[track_caller]
pub fn assert_no_markers(markers: &[&Path]) {
    for m in markers {
        assert!(!m.exists(), "install-time code ran: {} exists", m.display());
    }
}

#[track_caller]
pub fn assert_nothing_written_outside_cache(env: &TestEnv, created: &[&Path]) {
    let stray = stray_writes(env, created);
    assert!(
        stray.is_empty(),
        "safex wrote outside its cache: {stray:#?}"
    );
}

/// What safex wrote outside its cache, other than `created` and what is
/// under it.
fn stray_writes(env: &TestEnv, created: &[&Path]) -> Vec<PathBuf> {
    env.written_outside_cache()
        .into_iter()
        .filter(|p| !created.iter().any(|c| p.starts_with(c)))
        .collect()
}
