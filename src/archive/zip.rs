//! Opening wheels (zip archives) so that nothing unsafe is ever written.
//!
//! [`open_wheel`] reads the central directory and checks *every* member
//! before the caller writes a single byte; only then does [`ValidatedZip`]
//! hand out member contents, streamed through a sha256 hasher and metered
//! again against the limits. As for tarballs (see [`crate::archive`]), anything
//! unsafe refuses the whole wheel with [`Kind::Unsafe`](crate::error::Kind::Unsafe).
//!
//! What is refused, and why:
//!
//! - Names that leave the install root: `..`, absolute paths, backslashes,
//!   drive prefixes such as `C:` and NUL bytes ("zip slip",
//!   <https://security.snyk.io/research/zip-slip-vulnerability>). Names that
//!   are not plain relative paths (empty, `.` or empty components, control
//!   characters) are refused too: RECORD names files exactly, and no wheel
//!   builder writes such names.
//! - Anything but regular files and directories, judged by the Unix file type
//!   in the high 16 bits of the external attributes: a symlink member is a
//!   link on disk for `unzip` and several installers, so a later member could
//!   be written through it.
//! - Two members with one name, or names that differ only in case, or a member
//!   below a file: which one wins differs between zip readers (a central
//!   directory reader takes the last record, a streaming one may take the
//!   first local header), and on macOS and Windows two such names are one
//!   file. Unlike tar, where every reader agrees that the later entry wins
//!   (see [`crate::archive::tar`]), a zip has two indexes, and a repeated
//!   name is exactly what turns off the check that they agree (the zip crate
//!   cannot pair local headers with records once two share a name). So a
//!   repeated name stays refused; no wheel of the 138 real PyPI trees of the
//!   conformance corpus has one.
//! - Local headers that disagree with the central directory, data hidden
//!   between members, bytes before the first member: these are the parser
//!   differentials uv hardened against in
//!   <https://github.com/astral-sh/uv/pull/15136>, where a wheel shows one
//!   set of files to one tool (a scanner, PyPI) and another to the installer.
//! - Encrypted members and compression methods other than stored and deflate:
//!   wheel builders write only those two, and every further decoder is attack
//!   surface.
//! - Bombs: entry count, declared sizes (each file and the sum, and the sum
//!   against the compressed size as [`Limits::ratio_cap`] says) before
//!   anything is written; then the bytes actually decompressed, while
//!   streaming, before each chunk is handed on.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use zip::read::{ArchiveOffset, Config, ZipFileEntry};
use zip::{CompressionMethod, ZipArchive};

use super::{Limits, bomb_hint};
use crate::error::{Error, Result};

/// Bytes copied per read/write while streaming a member.
const CHUNK: usize = 64 * 1024;

/// Unix file-type bits in the high half of a member's external attributes.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// General-purpose flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 0x0800;

const HINT_OUTSIDE: &str = "every file of a wheel must stay inside the environment it is \
    installed into; safex refuses wheels that could write anywhere else";
const HINT_TYPE: &str = "safex installs only regular files and directories from a wheel; \
    links and special files could reach outside the environment";
const HINT_COLLIDE: &str = "names that differ only in case are one file on macOS and Windows, \
    and duplicate names mean different files to different zip readers";
const HINT_BOMB: &str = "this looks like a decompression bomb; \
    safex stops unpacking before it fills the disk";
const HINT_MALFORMED: &str = "the bytes matched the expected hash, \
    so the published wheel itself is malformed";
const HINT_METHOD: &str = "wheels are written with the `stored` or `deflate` methods only; \
    safex refuses others, and encryption";

/// A regular file in a [`ValidatedZip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name: a relative `/`-separated path, already checked to
    /// stay inside the install root (no `..`, `.`, empty components, drive
    /// prefixes, backslashes or control characters).
    pub name: String,
    /// The uncompressed size the archive declares; streaming enforces it.
    pub size: u64,
    /// Whether any execute bit is set in the member's Unix mode.
    pub executable: bool,
    /// Index in the archive's central directory.
    index: usize,
}

/// What streaming one member produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest {
    /// sha256 of the uncompressed bytes.
    pub sha256: [u8; 32],
    /// Uncompressed bytes.
    pub size: u64,
}

impl FileDigest {
    /// The digest of bytes already in memory.
    pub fn of(bytes: &[u8]) -> FileDigest {
        use sha2::Digest;
        FileDigest {
            sha256: sha2::Sha256::digest(bytes).into(),
            size: bytes.len() as u64,
        }
    }
}

/// A wheel whose every member passed the checks in the module docs.
pub struct ValidatedZip {
    label: String,
    archive: ZipArchive<BufReader<fs_err::File>>,
    files: Vec<Member>,
    limits: Limits,
    compressed: u64,
    ratio_cap: u64,
    /// Bytes decompressed so far, over all members read.
    read: u64,
}

impl std::fmt::Debug for ValidatedZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedZip")
            .field("label", &self.label)
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

/// Open the wheel at `path` (bytes already verified against their expected
/// hash) and check every member before anything is written. `label` names
/// the wheel in messages (its file name).
pub fn open_wheel(path: &Path, label: &str, limits: &Limits) -> Result<ValidatedZip> {
    open_wheel_from(fs_err::File::open(path)?, label, limits)
}

/// [`open_wheel`] from an open file (a [`crate::fetch::Verified`] handle:
/// the bytes that were hashed are the bytes read).
pub fn open_wheel_from(file: fs_err::File, label: &str, limits: &Limits) -> Result<ValidatedZip> {
    let path = file.path().to_owned();
    let compressed = file.metadata()?.len();
    let archive = checked_archive(file, &path, label, limits)?;
    let mut sizes = Sizes {
        limits,
        compressed,
        ratio_cap: limits.ratio_cap(compressed),
        declared: 0,
    };
    let mut tree = Tree::default();
    let mut files = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(|e| {
            refusal(
                label,
                format!("has an unreadable member #{index}: {e}"),
                HINT_MALFORMED,
            )
        })?;
        let (path, shown, is_dir) = member_name(&entry, label)?;
        let mode = member_type(&entry, is_dir, &shown, label)?;
        let size = entry.size();
        sizes.count(is_dir, size, &shown, label)?;
        tree.claim(path, is_dir)
            .map_err(|what| refusal(label, what, HINT_COLLIDE))?;
        if !is_dir {
            files.push(Member {
                name: path.to_owned(),
                size,
                executable: mode & 0o111 != 0,
                index,
            });
        }
    }
    Ok(ValidatedZip {
        label: label.to_owned(),
        archive,
        files,
        limits: limits.clone(),
        compressed,
        ratio_cap: sizes.ratio_cap,
        read: 0,
    })
}

/// The archive as a whole: read from offset 0, no two members of one name,
/// no more members than the limit, local headers that agree with the
/// central directory.
fn checked_archive(
    file: fs_err::File,
    path: &Path,
    label: &str,
    limits: &Limits,
) -> Result<ZipArchive<BufReader<fs_err::File>>> {
    let refuse = |what: String, hint: &str| refusal(label, what, hint);
    // `Known(0)`: a wheel starts with its first member. With `Detect`, bytes
    // prepended to the archive would be skipped silently.
    let config = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    let mut archive = ZipArchive::with_config(config, BufReader::new(file))
        .map_err(|e| refuse(format!("is not a valid zip archive: {e}"), HINT_MALFORMED))?;
    if archive.has_duplicate_names() {
        let which = duplicate_name(path, archive.central_directory_start())
            .map_or_else(String::new, |name| format!(" `{name}`"));
        return Err(refuse(
            format!("has more than one member named{which}"),
            HINT_COLLIDE,
        ));
    }
    if archive.len() as u64 > limits.max_entries {
        return Err(refuse(
            format!(
                "has {} members, more than {}",
                archive.len(),
                limits.max_entries
            ),
            &bomb_hint("archives.max_entries"),
        ));
    }
    archive.validate_header_consistency().map_err(|e| {
        refuse(
            format!("has local headers that disagree with its central directory: {e}"),
            "a zip whose two indexes disagree shows different files to different tools; \
             the published wheel is malformed or crafted",
        )
    })?;
    Ok(archive)
}

/// A member's name: UTF-8 (marked as such when not ASCII), a plain relative
/// path inside the wheel. Returns the path (without a directory's trailing
/// `/`), the name as shown in messages, and whether it is a directory.
fn member_name<'e>(entry: &'e ZipFileEntry<'_>, label: &str) -> Result<(&'e str, String, bool)> {
    let refuse = |what: String, hint: &str| refusal(label, what, hint);
    let raw = entry.name_raw();
    let shown = String::from_utf8_lossy(raw).into_owned();
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(refuse(
            format!("has a member `{shown}` whose name is not UTF-8"),
            HINT_MALFORMED,
        ));
    };
    if !text.is_ascii() && entry.flags().as_u16() & FLAG_UTF8 == 0 {
        // Python's zipfile would read this name as CP437: another file.
        return Err(refuse(
            format!("has a member `{shown}` with a non-ASCII name not marked as UTF-8"),
            HINT_MALFORMED,
        ));
    }
    let (path, is_dir) = match text.strip_suffix('/') {
        Some(dir) => (dir, true),
        None => (text, false),
    };
    match check_name(path) {
        Ok(()) => Ok((path, shown, is_dir)),
        Err(NameProblem::Outside) => Err(refuse(
            format!("has a member `{shown}` outside the wheel"),
            HINT_OUTSIDE,
        )),
        Err(NameProblem::NotPlain) => Err(refuse(
            format!("has a member `{shown}` whose name is not a plain relative path"),
            HINT_OUTSIDE,
        )),
    }
}

/// A member's type and encoding: a regular file or a directory as its name
/// says, not encrypted, stored or deflated. Returns its Unix mode bits.
fn member_type(entry: &ZipFileEntry<'_>, is_dir: bool, shown: &str, label: &str) -> Result<u32> {
    let refuse = |what: String, hint: &str| refusal(label, what, hint);
    let mode = entry.external_attributes() >> 16;
    let kind = mode & S_IFMT;
    let type_ok = matches!((is_dir, kind), (_, 0) | (false, S_IFREG) | (true, S_IFDIR));
    if !type_ok {
        let what = match kind {
            S_IFLNK => "a symlink".to_owned(),
            S_IFREG | S_IFDIR => "a member whose name and type disagree".to_owned(),
            other => format!("a special file (mode {other:o})"),
        };
        return Err(refuse(format!("has {what} `{shown}`"), HINT_TYPE));
    }
    if entry.encrypted() {
        return Err(refuse(
            format!("has an encrypted member `{shown}`"),
            HINT_METHOD,
        ));
    }
    let method = entry.compression();
    if !matches!(
        method,
        CompressionMethod::Stored | CompressionMethod::Deflated
    ) {
        return Err(refuse(
            format!("has a member `{shown}` compressed with method `{method}`"),
            HINT_METHOD,
        ));
    }
    Ok(mode)
}

/// The declared sizes counted against the limits while the central
/// directory is read: each file, the total, and the total against the
/// compressed size (the ratio cap).
struct Sizes<'a> {
    limits: &'a Limits,
    compressed: u64,
    ratio_cap: u64,
    /// Declared bytes of the files counted so far.
    declared: u64,
}

impl Sizes<'_> {
    fn count(&mut self, is_dir: bool, size: u64, shown: &str, label: &str) -> Result<()> {
        let refuse = |what: String, hint: &str| refusal(label, what, hint);
        let limits = self.limits;
        if is_dir {
            if size != 0 {
                return Err(refuse(
                    format!("has a directory `{shown}` with {size} bytes of content"),
                    HINT_MALFORMED,
                ));
            }
            return Ok(());
        }
        if size > limits.max_file_bytes {
            return Err(refuse(
                format!(
                    "has a file `{shown}` larger than {} bytes",
                    limits.max_file_bytes
                ),
                &bomb_hint("archives.max_file_size"),
            ));
        }
        self.declared = self.declared.saturating_add(size);
        if self.declared > limits.max_total_bytes {
            return Err(refuse(
                format!(
                    "unpacks to more than {} bytes (stopped at `{shown}`)",
                    limits.max_total_bytes
                ),
                &bomb_hint("archives.max_total_size"),
            ));
        }
        if self.declared > self.ratio_cap {
            return Err(refuse(
                format!(
                    "expands to more than {} times its {} compressed bytes \
                     (stopped at `{shown}`)",
                    limits.max_ratio, self.compressed
                ),
                HINT_BOMB,
            ));
        }
        Ok(())
    }
}

impl ValidatedZip {
    /// The wheel's name in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every regular file, in central-directory order. Directory members were
    /// checked but are not listed: writing a file creates its parents.
    pub fn files(&self) -> &[Member] {
        &self.files
    }

    /// The file named exactly `name`, if there is one.
    pub fn file(&self, name: &str) -> Option<&Member> {
        self.files.iter().find(|m| m.name == name)
    }

    /// Stream `member` into `out`, computing its sha256 and size. Sizes are
    /// checked against the limits before each chunk reaches `out`, and the
    /// member must yield exactly its declared size with a matching CRC-32.
    pub fn copy_to(&mut self, member: &Member, out: &mut dyn Write) -> Result<FileDigest> {
        let label = self.label.clone();
        let refuse = |what: String, hint: &str| refusal(&label, what, hint);
        let name = &member.name;
        let mut reader = self.archive.by_index(member.index).map_err(|e| {
            refuse(
                format!("has a member `{name}` that cannot be read: {e}"),
                HINT_MALFORMED,
            )
        })?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0; CHUNK];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(refuse(
                        format!("has a member `{name}` that does not decompress: {e}"),
                        HINT_MALFORMED,
                    ));
                }
            };
            size += n as u64;
            self.read = self.read.saturating_add(n as u64);
            if size > member.size {
                return Err(refuse(
                    format!(
                        "has a member `{name}` longer than its declared {} bytes",
                        member.size
                    ),
                    HINT_MALFORMED,
                ));
            }
            if size > self.limits.max_file_bytes {
                return Err(refuse(
                    format!(
                        "has a file `{name}` larger than {} bytes",
                        self.limits.max_file_bytes
                    ),
                    &bomb_hint("archives.max_file_size"),
                ));
            }
            if self.read > self.limits.max_total_bytes {
                return Err(refuse(
                    format!(
                        "unpacks to more than {} bytes (stopped at `{name}`)",
                        self.limits.max_total_bytes
                    ),
                    &bomb_hint("archives.max_total_size"),
                ));
            }
            if self.read > self.ratio_cap {
                return Err(refuse(
                    format!(
                        "expands to more than {} times its {} compressed bytes (stopped at `{name}`)",
                        self.limits.max_ratio, self.compressed
                    ),
                    HINT_BOMB,
                ));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        if size != member.size {
            return Err(refuse(
                format!("ends inside `{name}` ({size} of {} bytes)", member.size),
                HINT_MALFORMED,
            ));
        }
        Ok(FileDigest {
            sha256: hasher.finalize().into(),
            size,
        })
    }

    /// Read `member` into memory, refusing it (as a bomb) if it declares more
    /// than `max` bytes. For small metadata files: `RECORD`, `WHEEL`, `.pth`.
    pub fn read(&mut self, member: &Member, max: u64) -> Result<(Vec<u8>, FileDigest)> {
        if member.size > max {
            return Err(refusal(
                &self.label,
                format!(
                    "has a file `{}` of {} bytes, more than the {max} allowed for it",
                    member.name, member.size
                ),
                HINT_BOMB,
            ));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(member.size).unwrap_or(0));
        let digest = self.copy_to(member, &mut bytes)?;
        Ok((bytes, digest))
    }
}

fn refusal(label: &str, what: String, hint: &str) -> Error {
    Error::unsafe_pkg(format!("wheel `{label}` {what}")).with_hint(hint)
}

#[derive(Debug, PartialEq, Eq)]
enum NameProblem {
    /// Absolute, `..`, a backslash, a NUL or a drive prefix.
    Outside,
    /// Empty, `.` or empty components, control characters.
    NotPlain,
}

/// Check a member name (without a directory's trailing `/`).
fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.starts_with('/') || name.contains(['\\', '\0']) {
        return Err(NameProblem::Outside);
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.iter().any(|c| *c == ".." || has_drive_prefix(c)) {
        return Err(NameProblem::Outside);
    }
    if parts.iter().any(|c| c.is_empty() || *c == ".") || name.chars().any(char::is_control) {
        return Err(NameProblem::NotPlain);
    }
    Ok(())
}

/// `C:` and friends: on Windows a component like `C:..\x` is drive-relative.
fn has_drive_prefix(component: &str) -> bool {
    let b = component.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Every path seen so far, keyed by its lowercase form, to find names that
/// collide on a case-insensitive file system.
#[derive(Default)]
struct Tree {
    nodes: HashMap<String, Node>,
}

struct Node {
    /// The path as the archive spelled it.
    name: String,
    dir: bool,
    /// Named by a member of its own (not only as the parent of one).
    explicit: bool,
}

impl Tree {
    /// Record `path`; the error says which earlier path it collides with.
    fn claim(&mut self, path: &str, dir: bool) -> Result<(), String> {
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match self.nodes.entry(parent.to_lowercase()) {
                Entry::Vacant(v) => {
                    v.insert(Node {
                        name: parent.to_owned(),
                        dir: true,
                        explicit: false,
                    });
                }
                Entry::Occupied(o) => {
                    let seen = o.get();
                    if !seen.dir {
                        return Err(format!(
                            "has a member `{path}` below the file `{}`",
                            seen.name
                        ));
                    }
                    if seen.name != parent {
                        return Err(format!(
                            "has members `{}` and `{path}` whose directories differ only in case",
                            seen.name
                        ));
                    }
                }
            }
        }
        match self.nodes.entry(path.to_lowercase()) {
            Entry::Vacant(v) => {
                v.insert(Node {
                    name: path.to_owned(),
                    dir,
                    explicit: true,
                });
                Ok(())
            }
            Entry::Occupied(mut o) => {
                let seen = o.get_mut();
                if seen.name == path && dir && seen.dir && !seen.explicit {
                    seen.explicit = true;
                    return Ok(());
                }
                if seen.name == path {
                    Err(format!("has more than one member named `{path}`"))
                } else {
                    Err(format!(
                        "has members `{}` and `{path}` whose names differ only in case",
                        seen.name
                    ))
                }
            }
        }
    }
}

/// The first name that the central directory lists twice. The zip crate keeps
/// only one record per name, so read the raw records again, for the message.
fn duplicate_name(path: &Path, central_directory: u64) -> Option<String> {
    const SIGNATURE: u32 = 0x0201_4b50;
    const FIXED: usize = 46;
    let mut file = BufReader::new(fs_err::File::open(path).ok()?);
    file.seek(SeekFrom::Start(central_directory)).ok()?;
    let mut seen = std::collections::HashSet::new();
    let mut header = [0u8; FIXED];
    loop {
        file.read_exact(&mut header).ok()?;
        if u32::from_le_bytes([header[0], header[1], header[2], header[3]]) != SIGNATURE {
            return None;
        }
        let len = |at: usize| usize::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let (name_len, extra_len, comment_len) = (len(28), len(30), len(32));
        let mut name = vec![0u8; name_len];
        file.read_exact(&mut name).ok()?;
        let skip = i64::try_from(extra_len + comment_len).ok()?;
        file.seek_relative(skip).ok()?;
        if !seen.insert(name.clone()) {
            return Some(String::from_utf8_lossy(&name).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use zip::write::SimpleFileOptions;

    const MIB: u64 = 1024 * 1024;

    fn stored() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
    }

    /// Write a zip of `(name, bytes, unix mode)` members.
    fn build(dir: &Path, members: &[(&str, &[u8], u32)]) -> std::path::PathBuf {
        let path = dir.join("t.whl");
        let mut w = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        for (name, data, mode) in members {
            if name.ends_with('/') {
                w.add_directory(*name, stored().unix_permissions(*mode))
                    .unwrap();
            } else {
                w.start_file(*name, stored().unix_permissions(*mode))
                    .unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap();
        path
    }

    #[track_caller]
    fn refused(path: &Path, limits: &Limits, needle: &str) -> String {
        let err = open_wheel(path, "t.whl", limits).expect_err("should be refused");
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.starts_with("wheel `t.whl` "), "{err}");
        assert!(err.message.contains(needle), "{needle:?} not in: {err}");
        err.message
    }

    /// Replace every occurrence of `from` by `to` (same length) in the file.
    fn patch(path: &Path, from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let mut bytes = fs_err::read(path).unwrap();
        let mut hits = 0;
        for i in 0..=bytes.len() - from.len() {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
                hits += 1;
            }
        }
        assert!(hits > 0, "nothing to patch");
        fs_err::write(path, bytes).unwrap();
    }

    #[test]
    fn streams_members_with_digest_and_exec_bit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = build(
            tmp.path(),
            &[
                ("pkg/", b"", 0o755),
                ("pkg/__init__.py", b"x = 1\n", 0o644),
                ("pkg/tool", b"#!/bin/sh\n", 0o755),
            ],
        );
        let mut zip = open_wheel(&path, "t.whl", &Limits::default()).unwrap();
        let files = zip.files().to_vec();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].name, "pkg/__init__.py");
        assert!(!files[0].executable);
        assert!(files[1].executable);
        let mut out = Vec::new();
        let digest = zip.copy_to(&files[0], &mut out).unwrap();
        assert_eq!(out, b"x = 1\n");
        assert_eq!(digest.size, 6);
        assert_eq!(digest.sha256, <[u8; 32]>::from(Sha256::digest(b"x = 1\n")));
        let (bytes, _) = zip.read(&files[1], 100).unwrap();
        assert_eq!(bytes, b"#!/bin/sh\n");
        assert!(zip.read(&files[1], 3).is_err());
    }

    #[test]
    fn refuses_bad_names() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, needle) in [
            ("../evil.py", "outside the wheel"),
            ("/etc/evil", "outside the wheel"),
            ("pkg/../../evil", "outside the wheel"),
            ("C:/evil", "outside the wheel"),
            ("pkg\\..\\evil", "outside the wheel"),
            ("pkg/./x", "not a plain relative path"),
            ("pkg//x", "not a plain relative path"),
            ("pkg/a\nb", "not a plain relative path"),
        ] {
            let path = build(tmp.path(), &[(name, b"x", 0o644)]);
            refused(&path, &Limits::default(), needle);
        }
    }

    #[test]
    fn refuses_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.whl");
        let mut w = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        w.add_symlink("pkg/link", "/etc/passwd", stored()).unwrap();
        w.finish().unwrap();
        refused(&path, &Limits::default(), "symlink `pkg/link`");
    }

    #[test]
    fn refuses_fifo() {
        let tmp = tempfile::tempdir().unwrap();
        let path = build(tmp.path(), &[("pkg/x", b"", 0o644)]);
        // The Unix mode, in the high half of the central record's external
        // attributes (offset 38), becomes a FIFO's.
        let mut bytes = fs_err::read(&path).unwrap();
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 40..cd + 42].copy_from_slice(&0o010_644u16.to_le_bytes());
        fs_err::write(&path, &bytes).unwrap();
        refused(
            &path,
            &Limits::default(),
            "special file (mode 10000) `pkg/x`",
        );
    }

    #[test]
    fn refuses_duplicates_and_case_collisions() {
        let tmp = tempfile::tempdir().unwrap();
        let path = build(
            tmp.path(),
            &[("pkg/a.py", b"1", 0o644), ("pkg/b.py", b"2", 0o644)],
        );
        patch(&path, b"pkg/b.py", b"pkg/a.py");
        refused(
            &path,
            &Limits::default(),
            "more than one member named `pkg/a.py`",
        );

        let path = build(
            tmp.path(),
            &[("pkg/a.py", b"1", 0o644), ("pkg/A.py", b"2", 0o644)],
        );
        refused(&path, &Limits::default(), "`pkg/a.py` and `pkg/A.py`");

        let path = build(
            tmp.path(),
            &[("Pkg/a.py", b"1", 0o644), ("pkg/b.py", b"2", 0o644)],
        );
        refused(&path, &Limits::default(), "directories differ only in case");

        let path = build(
            tmp.path(),
            &[("pkg", b"1", 0o644), ("pkg/b.py", b"2", 0o644)],
        );
        refused(&path, &Limits::default(), "below the file `pkg`");
    }

    #[test]
    fn refuses_unknown_method_and_encryption() {
        let tmp = tempfile::tempdir().unwrap();
        let path = build(tmp.path(), &[("pkg/a.py", b"1", 0o644)]);
        let mut bytes = fs_err::read(&path).unwrap();
        // Method 12 (bzip2) in the local header (offset 8) and the central
        // record (offset 10 from its signature).
        bytes[8] = 12;
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 10] = 12;
        fs_err::write(&path, &bytes).unwrap();
        refused(&path, &Limits::default(), "compressed with method");

        let path = build(tmp.path(), &[("pkg/a.py", b"1", 0o644)]);
        let mut bytes = fs_err::read(&path).unwrap();
        bytes[6] |= 1;
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 8] |= 1;
        fs_err::write(&path, &bytes).unwrap();
        refused(&path, &Limits::default(), "encrypted member `pkg/a.py`");
    }

    #[test]
    fn refuses_local_header_disagreeing_with_central_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let path = build(tmp.path(), &[("pkg/a.py", b"1", 0o644)]);
        let mut bytes = fs_err::read(&path).unwrap();
        // The local header's name (at offset 30) says `pkg/b.py`.
        bytes[34] = b'b';
        fs_err::write(&path, &bytes).unwrap();
        refused(
            &path,
            &Limits::default(),
            "disagree with its central directory",
        );
    }

    #[test]
    fn refuses_prepended_bytes_and_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let path = build(tmp.path(), &[("pkg/a.py", b"1", 0o644)]);
        let mut bytes = b"#!/bin/sh\nexit 0\n".to_vec();
        bytes.extend(fs_err::read(&path).unwrap());
        fs_err::write(&path, &bytes).unwrap();
        refused(&path, &Limits::default(), "is not a valid zip archive");

        fs_err::write(&path, b"not a zip").unwrap();
        refused(&path, &Limits::default(), "is not a valid zip archive");
    }

    #[test]
    fn refuses_bombs_before_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.whl");
        let mut w = zip::ZipWriter::new(fs_err::File::create(&path).unwrap());
        w.start_file("pkg/zeros", SimpleFileOptions::default())
            .unwrap();
        io::copy(&mut io::repeat(0).take(64 * MIB), &mut w).unwrap();
        w.finish().unwrap();
        let limits = Limits {
            ratio_floor_bytes: MIB,
            ..Limits::default()
        };
        refused(&path, &limits, "times its");
        let limits = Limits {
            max_file_bytes: MIB,
            ..Limits::default()
        };
        refused(&path, &limits, "file `pkg/zeros` larger than 1048576 bytes");
        let limits = Limits {
            max_total_bytes: MIB,
            ..Limits::default()
        };
        refused(&path, &limits, "more than 1048576 bytes");

        let many: Vec<(String, &[u8], u32)> = (0..5)
            .map(|i| (format!("pkg/{i}"), &b"x"[..], 0o644))
            .collect();
        let many: Vec<(&str, &[u8], u32)> =
            many.iter().map(|(n, d, m)| (n.as_str(), *d, *m)).collect();
        let path = build(tmp.path(), &many);
        let limits = Limits {
            max_entries: 4,
            ..Limits::default()
        };
        refused(&path, &limits, "5 members, more than 4");
    }

    #[test]
    fn refuses_declared_size_that_lies() {
        let tmp = tempfile::tempdir().unwrap();
        let path = build(tmp.path(), &[("pkg/a.py", b"0123456789", 0o644)]);
        // Declared uncompressed size 10 -> 4, in both headers; the CRC and the
        // data still describe 10 bytes.
        let mut bytes = fs_err::read(&path).unwrap();
        bytes[22] = 4;
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 24] = 4;
        fs_err::write(&path, &bytes).unwrap();
        let mut zip = open_wheel(&path, "t.whl", &Limits::default()).unwrap();
        let member = zip.files()[0].clone();
        let err = zip.copy_to(&member, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("`pkg/a.py`"), "{err}");
        assert!(err.message.contains("declared"), "{err}");
    }

    #[test]
    fn name_table() {
        use NameProblem::*;
        let cases: &[(&str, Result<(), NameProblem>)] = &[
            ("a.py", Ok(())),
            ("pkg/sub/a.py", Ok(())),
            ("pkg-1.0.dist-info/RECORD", Ok(())),
            ("..", Err(Outside)),
            ("../x", Err(Outside)),
            ("a/../../x", Err(Outside)),
            ("/x", Err(Outside)),
            ("a\\b", Err(Outside)),
            ("c:", Err(Outside)),
            ("a/C:x", Err(Outside)),
            ("a\0b", Err(Outside)),
            ("", Err(NotPlain)),
            (".", Err(NotPlain)),
            ("a//b", Err(NotPlain)),
            ("./a", Err(NotPlain)),
            ("a/\u{7f}", Err(NotPlain)),
        ];
        for (name, want) in cases {
            assert_eq!(&check_name(name), want, "{name:?}");
        }
    }
}
