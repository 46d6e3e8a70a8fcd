//! The lockfile: one TOML file, `version = 1`, an entry per launched root
//! listing its whole tree (path in `node_modules`, name, version, SRI hash,
//! dependency edges). No registry URL is recorded: the hash pins the bytes,
//! so a lock made against one mirror verifies against any other.
//!
//! Writes happen under an exclusive file lock, re-reading the file inside the
//! lock, then temp file + rename, so two racing launches never lose an entry
//! and a kill never leaves a half-written lockfile.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use pep508_rs::PackageName;
use serde::{Deserialize, Serialize, Serializer};

use crate::ecosystem::Ecosystem;
use crate::error::{Error, Result};
use crate::filelock::FileLock;
use crate::integrity::{Integrity, Sha256Digest};
use crate::npm::spec::NpmName;

pub mod check;
pub mod raw;

pub const FORMAT_VERSION: u32 = 1;

/// A lockfile read and checked: only [`LockFile::parse`] makes one from
/// text (through `crate::lock::raw`, which parses every field once), so each
/// typed field below holds a value that was well formed in the file.
#[derive(Debug, Default, Serialize)]
pub struct LockFile {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub npm: Vec<NpmEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pypi: Vec<PypiEntry>,
}

/// A PyPI root and its whole tree, resolved for one interpreter's markers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PypiEntry {
    /// `name[extras]==version` of each root (`--with` adds more), sorted.
    pub roots: Vec<String>,
    #[serde(rename = "package")]
    pub packages: Vec<PypiPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PypiPackage {
    /// PEP 503-normalized name (the file holds it normalized: one that is
    /// not is refused when the lockfile is read).
    #[serde(serialize_with = "as_text")]
    pub name: PackageName,
    pub version: PypiVersion,
    /// Edges: normalized names this package requires here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Every wheel of this version the index offered with a hash: the one
    /// chosen on another platform is then verifiable too (as uv.lock does).
    #[serde(rename = "wheel")]
    pub wheels: Vec<LockedWheel>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LockedWheel {
    pub file: String,
    #[serde(serialize_with = "as_text")]
    pub sha256: Sha256Digest,
}

/// A PyPI version as the lockfile spells it, and its PEP 440 value. The
/// text is kept because PEP 440 normalizes when it prints (`1.0-rc1` reads
/// as `1.0rc1`): the lockfile is written back as read, and the tree digest
/// (the environment's key) stays the one of the text. Equality and order
/// are the text's, as when the field was a string; compare `parsed()` for
/// PEP 440 equality (`1.0` is `1.0.0`).
#[derive(Debug, Clone)]
pub struct PypiVersion {
    text: String,
    parsed: pep440_rs::Version,
}

impl PypiVersion {
    /// `None` unless `text` is a PEP 440 version.
    pub fn parse(text: &str) -> Option<PypiVersion> {
        let parsed = text.parse().ok()?;
        Some(PypiVersion {
            text: text.to_owned(),
            parsed,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn parsed(&self) -> &pep440_rs::Version {
        &self.parsed
    }
}

/// A resolved version, spelled as PEP 440 prints it (as safex records it).
impl From<pep440_rs::Version> for PypiVersion {
    fn from(parsed: pep440_rs::Version) -> PypiVersion {
        PypiVersion {
            text: parsed.to_string(),
            parsed,
        }
    }
}

impl PartialEq for PypiVersion {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for PypiVersion {}
impl PartialOrd for PypiVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PypiVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl std::fmt::Display for PypiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for PypiVersion {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Typed fields are written as the text they were read from: the lockfile's
/// format is the strings `docs/lockfile.md` describes.
fn as_text<T: std::fmt::Display, S: Serializer>(
    value: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl PypiEntry {
    /// A stable digest of the tree: names, versions and every wheel hash.
    pub fn digest(&self) -> String {
        let mut s = String::new();
        for r in &self.roots {
            s.push_str(r);
            s.push('\n');
        }
        for p in &self.packages {
            s.push_str(&format!("{}\0{}\n", p.name, p.version));
            for w in &p.wheels {
                s.push_str(&format!("  {}\0{}\n", w.file, w.sha256));
            }
        }
        crate::integrity::sha256_hex(s.as_bytes())
    }
}

/// What the launch frame needs of either ecosystem's lock entry.
pub trait Entry: Clone + PartialEq {
    const ECOSYSTEM: Ecosystem;
    /// Entries are found by their sorted roots.
    fn roots(&self) -> &[String];
    /// A stable digest of what the tree *is*: the key of its environment.
    fn digest(&self) -> String;
    /// `(name, version)` of every package, bundled ones included.
    fn tree(&self) -> Vec<(String, String)>;
    /// How many packages the entry lists (bundled ones are inside them).
    fn listed(&self) -> usize;
    /// The bundled packages, `name@version (in parent@version)`.
    fn bundled(&self) -> Vec<String> {
        Vec::new()
    }
    /// This ecosystem's entries in a lockfile.
    fn all(lock: &LockFile) -> &[Self];
    fn all_mut(lock: &mut LockFile) -> &mut Vec<Self>;
}

impl Entry for NpmEntry {
    const ECOSYSTEM: Ecosystem = Ecosystem::Npm;
    fn roots(&self) -> &[String] {
        &self.roots
    }
    fn digest(&self) -> String {
        self.digest()
    }
    fn tree(&self) -> Vec<(String, String)> {
        self.all_packages()
    }
    fn listed(&self) -> usize {
        self.packages.len()
    }
    fn bundled(&self) -> Vec<String> {
        self.bundled_list()
    }
    fn all(lock: &LockFile) -> &[Self] {
        &lock.npm
    }
    fn all_mut(lock: &mut LockFile) -> &mut Vec<Self> {
        &mut lock.npm
    }
}

impl Entry for PypiEntry {
    const ECOSYSTEM: Ecosystem = Ecosystem::Pypi;
    fn roots(&self) -> &[String] {
        &self.roots
    }
    fn digest(&self) -> String {
        self.digest()
    }
    fn tree(&self) -> Vec<(String, String)> {
        self.packages
            .iter()
            .map(|p| (p.name.to_string(), p.version.to_string()))
            .collect()
    }
    fn listed(&self) -> usize {
        self.packages.len()
    }
    fn all(lock: &LockFile) -> &[Self] {
        &lock.pypi
    }
    fn all_mut(lock: &mut LockFile) -> &mut Vec<Self> {
        &mut lock.pypi
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NpmEntry {
    /// `name@version` of each package launched together (usually one).
    pub roots: Vec<String>,
    #[serde(rename = "package")]
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockedPackage {
    /// Where it lives in the tree: `node_modules/a/node_modules/b`.
    pub path: String,
    /// The real package name (differs from the folder for `npm:` aliases).
    #[serde(serialize_with = "as_text")]
    pub name: NpmName,
    pub version: String,
    /// Always a `sha512` value: the lockfile is refused otherwise.
    #[serde(serialize_with = "as_text")]
    pub integrity: Integrity,
    /// Edges: installed name → version, as resolved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, String>,
    /// Packages its tarball carries and its `bundleDependencies` declare:
    /// path inside this package (`node_modules/x`) → version. They come
    /// with this package's bytes (its hash pins them); nothing else under
    /// its `node_modules/` is installed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bundled: BTreeMap<String, String>,
}

impl NpmEntry {
    /// `(name, version)` of every package, the bundled ones included.
    pub fn all_packages(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in &self.packages {
            out.push((p.name.to_string(), p.version.clone()));
            for (path, version) in &p.bundled {
                out.push((bundled_name(path).to_owned(), version.clone()));
            }
        }
        out
    }

    /// The bundled packages, `name@version (in parent@version)`.
    pub fn bundled_list(&self) -> Vec<String> {
        self.packages
            .iter()
            .flat_map(|p| {
                p.bundled.iter().map(move |(path, version)| {
                    format!(
                        "{}@{version} (in {}@{})",
                        bundled_name(path),
                        p.name,
                        p.version
                    )
                })
            })
            .collect()
    }

    /// A stable digest of what the tree *is* (paths, names, versions, hashes):
    /// the key of its environment in the cache.
    pub fn digest(&self) -> String {
        let mut s = String::new();
        for r in &self.roots {
            s.push_str(r);
            s.push('\n');
        }
        for p in &self.packages {
            s.push_str(&format!(
                "{}\0{}\0{}\0{}\n",
                p.path, p.name, p.version, p.integrity
            ));
        }
        crate::integrity::sha256_hex(s.as_bytes())
    }
}

pub fn roots_key(roots: &[String]) -> Vec<String> {
    let mut r = roots.to_vec();
    r.sort();
    r.dedup();
    r
}

impl LockFile {
    /// Read a lockfile; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<LockFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LockFile {
                    version: FORMAT_VERSION,
                    ..Default::default()
                });
            }
            Err(e) => {
                return Err(Error::io(format!(
                    "cannot read lockfile `{}`: {e}",
                    path.display()
                )));
            }
        };
        Self::parse(&text, path)
    }

    /// Parse lockfile text (`path` only names it in messages). Each entry
    /// is typed field by field (`crate::lock::raw`) and must then agree with
    /// itself (`crate::lock::check`): an entry that does neither is damage,
    /// like a syntax error, and stops every reader.
    pub fn parse(text: &str, path: &Path) -> Result<LockFile> {
        let raw: crate::lock::raw::RawLockFile = toml::from_str(text).map_err(|e| {
            Error::io(format!(
                "lockfile `{}` is not valid: {}",
                path.display(),
                e.message()
            ))
            .with_hint(
                "fix or remove the broken entry; safex never rewrites a lockfile it cannot read",
            )
        })?;
        if raw.version != FORMAT_VERSION {
            return Err(Error::io(format!(
                "lockfile `{}` has format version {}, this safex reads version {FORMAT_VERSION}",
                path.display(),
                raw.version
            ))
            .with_hint("upgrade safex"));
        }
        let refused = |roots: &[String], p: crate::lock::check::Problem, field: &str| {
            let line = crate::lock::check::locate(
                text,
                roots,
                p.package.as_deref(),
                field,
                p.field.as_deref(),
            )
            .map(|n| format!(":{n}"))
            .unwrap_or_default();
            let at = p
                .package
                .map(|pk| format!(", package `{}`,", crate::redact::shown(&pk)))
                .unwrap_or_default();
            Error::io(format!(
                "lockfile `{}{line}`: the entry for `{}`{at} has {}",
                path.display(),
                crate::redact::shown(&roots.join(" ")),
                p.what
            ))
            .with_hint(
                "the entry does not agree with itself, so it was edited or damaged: restore the lockfile, or remove that entry and lock it again",
            )
        };
        let mut lock = LockFile {
            version: raw.version,
            npm: Vec::with_capacity(raw.npm.len()),
            pypi: Vec::with_capacity(raw.pypi.len()),
        };
        for e in raw.npm {
            let roots = e.roots.clone();
            let e = e
                .typed()
                .and_then(|e| crate::lock::check::check_npm(&e).map(|()| e))
                .map_err(|p| refused(&roots, p, "path"))?;
            lock.npm.push(e);
        }
        for e in raw.pypi {
            let roots = e.roots.clone();
            let e = e
                .typed()
                .and_then(|e| crate::lock::check::check_pypi(&e).map(|()| e))
                .map_err(|p| refused(&roots, p, "name"))?;
            lock.pypi.push(e);
        }
        Ok(lock)
    }

    /// The entry for these roots (in any order).
    pub fn find<E: Entry>(&self, roots: &[String]) -> Option<&E> {
        let key = roots_key(roots);
        E::all(self).iter().find(|e| e.roots() == key.as_slice())
    }
}

/// The entry for these roots in force: the admin's lockfile first, then
/// the user's.
pub fn find_in<E: Entry>(
    system: Option<&Path>,
    user: &Path,
    roots: &[String],
) -> Result<Option<E>> {
    if let Some(sys) = system
        && let Some(e) = LockFile::read(sys)?.find::<E>(roots)
    {
        return Ok(Some(e.clone()));
    }
    Ok(LockFile::read(user)?.find::<E>(roots).cloned())
}

/// Add an entry unless one for the same roots exists (then the existing one
/// wins: a racing launch recorded it first). Returns the entry in force.
pub fn record<E: Entry>(path: &Path, entry: E) -> Result<E> {
    let _guard = FileLock::acquire(&lock_path_for(path), "the lockfile")?;
    remove_killed_writes(path);
    let mut lock = LockFile::read(path)?;
    let entries = E::all_mut(&mut lock);
    if let Some(existing) = entries.iter().find(|e| e.roots() == entry.roots()) {
        return Ok(existing.clone());
    }
    check_writable(path, &entry.roots().join(" "))?;
    entries.push(entry.clone());
    entries.sort_by(|a, b| a.roots().cmp(b.roots()));
    let text = toml::to_string(&lock)
        .map_err(|e| Error::internal(format!("cannot serialize the lockfile: {e}")))?;
    let header = "# safex lockfile: every launched root with its whole tree and content hashes.\n# Written by safex; review changes like code.\n";
    write_atomic(path, format!("{header}{text}").as_bytes())?;
    Ok(entry)
}

/// The temp name [`write_atomic`] writes `path` through (before its rename).
fn temp_prefix(path: &Path) -> String {
    format!(
        ".{}.tmp-",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("safex")
    )
}

/// Temp files of a lockfile write that was killed before its rename. Only
/// called under the lockfile's lock, and every write of the lockfile holds
/// that lock, so any such file is a dead writer's: none is in progress.
fn remove_killed_writes(path: &Path) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = temp_prefix(path);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Why an existing file cannot be written in place, if it cannot: its
/// mode says read-only (even to root), or opening it for writing fails (an
/// immutable file, a read-only mount). `None` for a missing file.
pub fn why_read_only(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(e.to_string()),
        Ok(m) if m.permissions().readonly() => Some(mode_of(&m)),
        // Opened, never written: an immutable file or a read-only mount
        // says no here even to root.
        Ok(_) => match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(_) => None,
            Err(e) => Some(format!("cannot open it for writing: {e}")),
        },
    }
}

/// A read-only lockfile is never replaced (`docs/lockfile.md`): the user or
/// admin who made it so wants it left as it is, so safex treats it as
/// frozen for a root it has no entry for, and says so before any download.
///
/// "Read-only" is what the owner declared, not what the kernel would let
/// this process do: no write bit in its mode (root may write a `0444` file,
/// but the mode says not to), or a file that cannot be opened for writing
/// (an immutable file, a read-only mount, another user's file). A missing
/// lockfile is writable: the first launch creates it.
pub fn check_writable(path: &Path, roots: &str) -> Result<()> {
    let Some(why) = why_read_only(path) else {
        return Ok(());
    };
    let shown = path.display();
    Err(Error::policy(format!(
        "the lockfile `{shown}` is read-only ({why}): safex cannot record `{roots}` in it, so it treats the lockfile as frozen and launches only what it already lists"
    ))
    .with_hint(format!(
        "make it writable (`chmod u+w {shown}`) to let safex record new roots, or lock `{roots}` where the lockfile is writable and copy the entry in"
    )))
}

#[cfg(unix)]
fn mode_of(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::PermissionsExt;
    format!("mode {:04o}", m.permissions().mode() & 0o7777)
}
#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> String {
    "the read-only attribute is set".to_owned()
}

fn lock_path_for(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// Write a file so that readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let tmp = dir.join(format!("{}{}", temp_prefix(path), std::process::id()));
    {
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs_err::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid SRI sha512 value made of one repeated byte.
    fn sri(byte: u8) -> Integrity {
        Integrity::sha512(vec![byte; 64])
    }

    /// `root` (`name@1.0.0`) at `ver`, depending on `b@1.0.0`.
    fn entry(root: &str, ver: &str) -> NpmEntry {
        let name = root.rsplit_once('@').map(|(n, _)| n).unwrap_or(root);
        NpmEntry {
            roots: vec![root.into()],
            packages: vec![
                LockedPackage {
                    path: format!("node_modules/{name}"),
                    name: NpmName::parse_legacy(name).unwrap(),
                    version: ver.into(),
                    integrity: sri(1),
                    dependencies: BTreeMap::from([("b".into(), "1.0.0".into())]),
                    bundled: BTreeMap::new(),
                },
                LockedPackage {
                    path: "node_modules/b".into(),
                    name: NpmName::parse_legacy("b").unwrap(),
                    version: "1.0.0".into(),
                    integrity: sri(2),
                    dependencies: BTreeMap::new(),
                    bundled: BTreeMap::new(),
                },
            ],
        }
    }

    #[test]
    fn record_roundtrip_and_first_writer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/safex.lock");
        record(&path, entry("a@1.0.0", "1.0.0")).unwrap();
        record(&path, entry("c@1.0.0", "1.0.0")).unwrap();
        let mut other = entry("a@1.0.0", "1.0.0");
        other.packages[1].integrity = sri(3);
        let kept = record(&path, other).unwrap();
        assert_eq!(kept.packages[1].integrity, sri(2));
        let lock = LockFile::read(&path).unwrap();
        assert_eq!(lock.npm.len(), 2);
        assert_eq!(
            lock.find::<NpmEntry>(&["a@1.0.0".into()]).unwrap(),
            &entry("a@1.0.0", "1.0.0")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("version = 1"), "{text}");
        assert!(!text.contains("http"), "{text}");
    }

    #[test]
    fn digest_changes_with_any_hash() {
        let a = entry("a@1.0.0", "1.0.0");
        let mut b = a.clone();
        b.packages[0].integrity = sri(9);
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), a.clone().digest());
    }

    #[test]
    fn summary_follows_every_change_to_the_lockfile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("safex.lock");
        let cache = dir.path().join("cache");
        let key = vec!["a@1.0.0".to_owned()];
        record(&path, entry("a@1.0.0", "1.0.0")).unwrap();
        let first = summary::<NpmEntry>(&[&path], &cache, &key)
            .unwrap()
            .unwrap();
        assert_eq!(first.digest, entry("a@1.0.0", "1.0.0").digest());
        assert_eq!(
            first.packages,
            vec![
                ("a".to_owned(), "1.0.0".to_owned()),
                ("b".to_owned(), "1.0.0".to_owned())
            ]
        );
        // Served from the index the second time, with the same answer.
        assert_eq!(
            summary::<NpmEntry>(&[&path], &cache, &key)
                .unwrap()
                .unwrap()
                .digest,
            first.digest
        );
        // A hand edit of a hash changes the bytes, so the index misses and the
        // digest follows the edit (it names another environment).
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(&sri(2).to_string(), &sri(7).to_string());
        std::fs::write(&path, text).unwrap();
        let edited = summary::<NpmEntry>(&[&path], &cache, &key)
            .unwrap()
            .unwrap();
        assert_ne!(edited.digest, first.digest);
        assert!(
            summary::<NpmEntry>(&[&path], &cache, &["b@1.0.0".to_owned()])
                .unwrap()
                .is_none()
        );
        assert!(
            summary::<PypiEntry>(&[&path], &cache, &key)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn broken_lockfile_is_an_error_not_an_empty_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("safex.lock");
        std::fs::write(&path, "version = 1\n[[npm]]\nroots = 3\n").unwrap();
        assert!(LockFile::read(&path).is_err());
        std::fs::write(&path, "version = 7\n").unwrap();
        assert!(LockFile::read(&path).is_err());
    }
}

/// What the warm path needs of a lock entry: its digest (the environment's
/// key) and its packages (for the policy's deny and known-compromised
/// checks), without parsing the whole lockfile as TOML and hashing the
/// entry at every launch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub digest: String,
    /// `(name, version)` of every package, bundled ones included.
    pub packages: Vec<(String, String)>,
    /// The bundled packages, `name@version (in parent@version)`, for the
    /// audit line.
    #[serde(default)]
    pub bundled: Vec<String>,
}

/// The folder name of a bundled package from its path inside the carrying
/// package (`node_modules/x/node_modules/@s/y` → `@s/y`).
pub fn bundled_name(path: &str) -> &str {
    path.rsplit_once("node_modules/").map_or(path, |(_, n)| n)
}

/// The summary of the entry for `roots`, from the admin's lockfile first,
/// then the user's. Summaries are kept in `<cache v1>/lockindex/`, keyed by
/// the sha256 of the lockfile's bytes and the roots, so any change to the
/// lockfile (or a hand edit) simply misses and re-derives; they are written
/// atomically and are only a cache of the lockfile, never a source of truth.
pub fn summary<E: Entry>(
    lockfiles: &[&Path],
    cache_v1: &Path,
    roots: &[String],
) -> Result<Option<Summary>> {
    let eco = E::ECOSYSTEM;
    let key = roots_key(roots).join("\n");
    for path in lockfiles {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::io(format!(
                    "cannot read lockfile `{}`: {e}",
                    path.display()
                )));
            }
        };
        let mut material = bytes.clone();
        material.extend_from_slice(format!("\0{eco:?}\0{key}\0v2").as_bytes());
        let index = cache_v1
            .join("lockindex")
            .join(&crate::integrity::sha256_hex(&material)[..40]);
        if let Ok(json) = std::fs::read(&index)
            && let Ok(s) = serde_json::from_slice::<Option<Summary>>(&json)
        {
            match s {
                Some(s) => return Ok(Some(s)),
                None => continue,
            }
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::io(format!("lockfile `{}` is not UTF-8", path.display())))?;
        let lock = LockFile::parse(&text, path)?;
        let found = lock.find::<E>(roots).map(|e| Summary {
            digest: e.digest(),
            packages: e.tree(),
            bundled: e.bundled(),
        });
        if let Ok(json) = serde_json::to_vec(&found)
            && let Some(dir) = index.parent()
            && crate::cache::create_private_dirs(dir).is_ok()
        {
            let _ = write_atomic(&index, &json);
        }
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}
