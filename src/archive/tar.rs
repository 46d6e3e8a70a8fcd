//! Unpacking npm tarballs (gzip'ed tar, every file under one top folder).
//!
//! npm (pacote, with node-tar's `strip: 1`) drops the first component of
//! every entry name, whatever it is: most tarballs use `package/`, but every
//! `@types/*` package uses its own name (`node/`, `express/`), and others use
//! `name-v1.2.3/` or a git export's folder. safex strips it the same way, as
//! raw text split on `/` (so `./package/x` keeps `package/x`, as under npm).
//! An entry with nothing left after the strip is the package directory
//! itself: a directory entry is fine, and a file there is dropped, as
//! node-tar drops it (it cannot replace the directory it is unpacked into).
//!
//! We walk the entries ourselves instead of calling the `tar` crate's
//! `unpack`/`unpack_in`: those *skip* entries they consider unsafe and follow
//! their own rules for links and permissions, and a security wrapper must
//! refuse instead (see the module docs of [`crate::archive`]).
//!
//! What is refused, and why:
//!
//! - Names that leave the package: `..`, absolute paths, backslashes and
//!   Windows drive prefixes such as `C:` (node-tar's CVE-2021-32804 and
//!   CVE-2021-37713 were exactly these). They are refused on every platform so
//!   that a lockfile means the same thing everywhere.
//! - Anything but regular files and directories: a symlink or hardlink can
//!   point a later entry outside the package (node-tar's CVE-2021-32803,
//!   CVE-2021-37701; cargo's CVE-2022-36113); devices and FIFOs have no place
//!   in a package.
//! - A file and a directory of one path, or an entry below a file: which of
//!   the two wins depends on the tool that unpacks. Two entries for one
//!   regular file are fine (`socks-proxy-agent@8.0.5` has them): tar is read
//!   in order and the later one wins, in every tar reader and under npm, so
//!   safex writes the later one too. Only a path this archive already wrote
//!   as a file is ever opened again, never anything else. On case-insensitive
//!   file systems two names that differ only in case meet at `create_new` and
//!   are refused: there they would be one file, and the tree would differ from
//!   the one every other machine unpacks.
//! - Bombs: counts and sizes are checked *while* streaming, before each chunk
//!   is written, against the header's claimed size and against the bytes
//!   actually read; the decompressed stream itself is metered too, so bytes
//!   hidden in headers or in skipped entry data cannot expand unchecked.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use tar::{Archive, Entry, EntryType};

use super::{Limits, bomb_hint};
use crate::error::{Error, Result};

/// What [`unpack_npm`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files written.
    pub files: u64,
    /// Bytes written into those files.
    pub bytes: u64,
}

/// Decompressed bytes allowed per entry beyond the file data itself: a
/// 512-byte header plus up to 511 bytes of padding.
const STREAM_SLACK_PER_ENTRY: u64 = 1024;
/// Bytes copied per read/write while streaming a file.
const CHUNK: usize = 64 * 1024;

const HINT_OUTSIDE: &str = "npm drops the first folder of every entry name and \
    writes the rest inside the package; safex refuses names that could write anywhere else";
const HINT_TYPE: &str = "safex unpacks only regular files and directories; \
    links and special files could reach outside the package";
const HINT_BOMB: &str = "this looks like a decompression bomb; \
    safex stops unpacking before it fills the disk";
const HINT_MALFORMED: &str = "the bytes matched the expected hash, \
    so the published package itself is malformed";

/// Unpack an npm tarball (gzip'ed tar) whose bytes were already verified, into `dest`,
/// an existing empty directory. `label` names the package in messages ("name@version").
///
/// The first component of every entry name is stripped (npm's `strip: 1`). Any unsafe entry refuses
/// the whole archive with [`Kind::Unsafe`](crate::error::Kind::Unsafe); `dest`
/// may then hold a partial tree, which the caller deletes.
pub fn unpack_npm(tgz: &Path, dest: &Path, label: &str, limits: &Limits) -> Result<UnpackStats> {
    unpack_npm_from(fs_err::File::open(tgz)?, dest, label, limits)
}

/// [`unpack_npm`] from an open file (a [`crate::fetch::Verified`] handle:
/// the bytes that were hashed are the bytes unpacked).
pub fn unpack_npm_from(
    file: fs_err::File,
    dest: &Path,
    label: &str,
    limits: &Limits,
) -> Result<UnpackStats> {
    if fs_err::read_dir(dest)?.next().is_some() {
        return Err(Error::internal(format!(
            "cannot unpack `{label}` into `{}`: the directory is not empty",
            dest.display()
        )));
    }
    let compressed = file.metadata()?.len();
    let ratio_cap = limits.ratio_cap(compressed);
    let stream_cap = limits
        .max_total_bytes
        .min(ratio_cap)
        .saturating_add(limits.max_entries.saturating_mul(STREAM_SLACK_PER_ENTRY));
    let stream_read = Rc::new(Cell::new(0));
    let mut archive = Archive::new(Metered {
        inner: GzDecoder::new(file),
        read: Rc::clone(&stream_read),
        cap: stream_cap,
    });

    let mut unpacker = Unpacker {
        dest,
        label,
        limits,
        compressed,
        ratio_cap,
        stream_read,
        stream_cap,
        tree: HashMap::new(),
        entries: 0,
        place: Place::Start,
        stats: UnpackStats::default(),
    };
    let mut buf = vec![0; CHUNK];
    let entries = archive.entries().map_err(|e| unpacker.read_error(e))?;
    for entry in entries {
        let entry = entry.map_err(|e| unpacker.read_error(e))?;
        unpacker.entry(entry, &mut buf)?;
        if let Place::In(name) = std::mem::replace(&mut unpacker.place, Place::Start) {
            unpacker.place = Place::After(name);
        }
    }
    Ok(unpacker.stats)
}

/// A path inside the package, parsed from an entry name: the first
/// component stripped as node-tar strips it (raw text up to the first `/`),
/// empty and `.` components dropped, and nothing left that could resolve
/// outside `dest`. `""` is the package root.
#[derive(Debug, PartialEq, Eq)]
struct EnclosedPath(String);

/// Absolute, `..`, a backslash, a NUL or a drive prefix: refused, even in
/// the component that is stripped (no real package has one there).
#[derive(Debug, PartialEq, Eq)]
struct Outside;

impl EnclosedPath {
    fn parse(name: &str) -> Result<Self, Outside> {
        if name.starts_with('/') || name.contains(['\\', '\0']) {
            return Err(Outside);
        }
        let mut raw = name.split('/');
        let top = raw.next().unwrap_or_default();
        if top == ".." || has_drive_prefix(top) {
            return Err(Outside);
        }
        let parts: Vec<&str> = raw.filter(|c| !c.is_empty() && *c != ".").collect();
        if parts.iter().any(|c| *c == ".." || has_drive_prefix(c)) {
            return Err(Outside);
        }
        Ok(EnclosedPath(parts.join("/")))
    }

    fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The directories this path lies in, outermost first, without the root.
    fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(i, _)| &self.0[..i])
    }

    fn under(&self, dest: &Path) -> PathBuf {
        under(dest, &self.0)
    }
}

fn under(dest: &Path, rel: &str) -> PathBuf {
    rel.split('/')
        .filter(|c| !c.is_empty())
        .fold(dest.to_path_buf(), |path, c| path.join(c))
}

/// `C:` and friends: on Windows a component like `C:..\x` is drive-relative.
fn has_drive_prefix(component: &str) -> bool {
    let b = component.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Where in the archive unpacking is, for messages.
enum Place {
    Start,
    /// Reading this entry (its raw name).
    In(String),
    /// Between this entry and the next one.
    After(String),
}

/// What is already at a path in `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File,
    Dir,
}

struct Unpacker<'a> {
    dest: &'a Path,
    label: &'a str,
    limits: &'a Limits,
    compressed: u64,
    ratio_cap: u64,
    stream_read: Rc<Cell<u64>>,
    stream_cap: u64,
    /// Every path created so far, keyed by its [`EnclosedPath`] string.
    tree: HashMap<String, Node>,
    entries: u64,
    /// Where in the archive we are, for messages.
    place: Place,
    stats: UnpackStats,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: Entry<'_, R>, buf: &mut [u8]) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        self.place = Place::In(name.clone());
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.refuse(
                format!(
                    "has more than {} entries (stopped at `{name}`)",
                    self.limits.max_entries
                ),
                &bomb_hint("archives.max_entries"),
            ));
        }
        let is_file = match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => true,
            EntryType::Directory => false,
            // Archive-wide metadata (e.g. a comment): nothing to write.
            EntryType::XGlobalHeader => return Ok(()),
            other => {
                let what = match other {
                    EntryType::Symlink => "a symlink".to_owned(),
                    EntryType::Link => "a hardlink".to_owned(),
                    EntryType::Char => "a character device".to_owned(),
                    EntryType::Block => "a block device".to_owned(),
                    EntryType::Fifo => "a FIFO".to_owned(),
                    EntryType::GNUSparse => "a sparse file".to_owned(),
                    _ => format!("an entry of unsupported type `{}`", other.as_byte()),
                };
                return Err(self.refuse(format!("has {what} `{name}`"), HINT_TYPE));
            }
        };
        let text = std::str::from_utf8(&raw).map_err(|_| {
            self.refuse(
                format!("has an entry `{name}` whose name is not UTF-8"),
                HINT_MALFORMED,
            )
        })?;
        let path = EnclosedPath::parse(text).map_err(|Outside| {
            self.refuse(
                format!("has an entry `{name}` outside the package"),
                HINT_OUTSIDE,
            )
        })?;
        if is_file {
            self.file(&mut entry, &name, &path, buf)
        } else {
            self.claim(&name, &path, Node::Dir).map(|_| ())
        }
    }

    /// Record `path` as `node`, creating its parent directories. Returns
    /// whether `path` was already written as a regular file (a repeated file
    /// entry: the later one wins). Refuses a file and a directory of one
    /// path, and an entry below a file.
    fn claim(&mut self, name: &str, path: &EnclosedPath, node: Node) -> Result<bool> {
        for dir in path.ancestors() {
            match self.tree.get(dir) {
                Some(Node::File) => {
                    return Err(self.refuse(
                        format!("has an entry `{name}` below the file `{dir}` it already has"),
                        HINT_MALFORMED,
                    ));
                }
                Some(Node::Dir) => {}
                None => {
                    self.make_dir(name, &under(self.dest, dir))?;
                    self.tree.insert(dir.to_owned(), Node::Dir);
                }
            }
        }
        let again = match (self.tree.get(&path.0), node) {
            (None, Node::Dir) => {
                if !path.is_root() {
                    self.make_dir(name, &path.under(self.dest))?;
                }
                false
            }
            (None, Node::File) => false,
            (Some(Node::Dir), Node::Dir) => false,
            (Some(Node::File), Node::File) => true,
            (Some(_), _) => {
                return Err(self.refuse(
                    format!("has both a file and a directory named `{name}`"),
                    HINT_MALFORMED,
                ));
            }
        };
        self.tree.insert(path.0.clone(), node);
        Ok(again)
    }

    fn make_dir(&self, name: &str, dir: &Path) -> Result<()> {
        fs_err::create_dir(dir).map_err(|e| self.write_error(name, e))?;
        set_dir_mode(dir)?;
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut Entry<'_, R>,
        name: &str,
        path: &EnclosedPath,
        buf: &mut [u8],
    ) -> Result<()> {
        if path.is_root() {
            // A file with no folder (`package.json` beside `package/`): npm
            // drops it, since it would replace the package directory. Its
            // bytes still pass through the stream meter.
            return Ok(());
        }
        let claimed = entry.size();
        self.check_sizes(name, claimed, self.stats.bytes.saturating_add(claimed))?;
        let mode = entry.header().mode().map_err(|_| {
            self.refuse(
                format!("has an entry `{name}` with an unreadable mode"),
                HINT_MALFORMED,
            )
        })?;
        let again = self.claim(name, path, Node::File)?;

        let target = path.under(self.dest);
        // The later of two entries for one file wins, as in every tar reader.
        // `again` is true only for a path this archive wrote as a regular file.
        let out = if again {
            fs_err::File::create(&target)
        } else {
            fs_err::File::create_new(&target)
        };
        let mut out = out.map_err(|e| self.write_error(name, e))?;
        let mut written = 0u64;
        loop {
            let n = match entry.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            written += n as u64;
            self.stats.bytes += n as u64;
            self.check_sizes(name, written, self.stats.bytes)?;
            out.write_all(&buf[..n])?;
        }
        if written != claimed {
            return Err(self.refuse(
                format!("ends inside `{name}` ({written} of {claimed} bytes)"),
                HINT_MALFORMED,
            ));
        }
        set_file_mode(&out, mode & 0o111 != 0)?;
        if !again {
            self.stats.files += 1;
        }
        Ok(())
    }

    /// Refuse a file of `file_bytes` that would bring the total to `total`.
    fn check_sizes(&self, name: &str, file_bytes: u64, total: u64) -> Result<()> {
        let limits = self.limits;
        if file_bytes > limits.max_file_bytes {
            return Err(self.refuse(
                format!(
                    "has a file `{name}` larger than {} bytes",
                    limits.max_file_bytes
                ),
                &bomb_hint("archives.max_file_size"),
            ));
        }
        if total > limits.max_total_bytes {
            return Err(self.too_big(limits.max_total_bytes));
        }
        if total > self.ratio_cap {
            return Err(self.too_expanded());
        }
        Ok(())
    }

    /// Where unpacking stopped, for messages.
    fn at(&self) -> String {
        match &self.place {
            Place::Start => "stopped before the first entry".to_owned(),
            Place::In(name) => format!("stopped at `{name}`"),
            Place::After(name) => format!("stopped after `{name}`"),
        }
    }

    fn too_big(&self, bytes: u64) -> Error {
        self.refuse(
            format!("unpacks to more than {bytes} bytes ({})", self.at()),
            &bomb_hint("archives.max_total_size"),
        )
    }

    fn too_expanded(&self) -> Error {
        self.refuse(
            format!(
                "expands to more than {} times its {} compressed bytes ({})",
                self.limits.max_ratio,
                self.compressed,
                self.at()
            ),
            HINT_BOMB,
        )
    }

    /// An error from the decompressed stream: the meter tripping, or a
    /// gzip/tar format error (the bytes were verified: the package is bad).
    fn read_error(&self, e: io::Error) -> Error {
        if self.stream_read.get() > self.stream_cap {
            return if self.ratio_cap < self.limits.max_total_bytes {
                self.too_expanded()
            } else {
                self.too_big(self.stream_cap)
            };
        }
        self.refuse(
            format!("is not a valid gzip'ed tar ({}): {e}", self.at()),
            HINT_MALFORMED,
        )
    }

    /// `AlreadyExists` from `create_new`/`create_dir` means two names met on
    /// disk that differ in the archive (case or Unicode normalization).
    fn write_error(&self, name: &str, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::AlreadyExists {
            return self.refuse(
                format!(
                    "has an entry `{name}` that collides with an earlier one on this file system"
                ),
                "names that differ only in case or Unicode normalization \
                 are one file on this file system",
            );
        }
        e.into()
    }

    fn refuse(&self, what: String, hint: &str) -> Error {
        Error::unsafe_pkg(format!("archive of `{}` {what}", self.label)).with_hint(hint)
    }
}

/// Counts decompressed bytes and fails once past `cap`, so that bytes the
/// `tar` crate consumes on its own (long names, PAX headers, data of entries
/// it skips) cannot expand without bound.
struct Metered<R> {
    inner: R,
    read: Rc<Cell<u64>>,
    cap: u64,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.read.get().saturating_add(n as u64);
        self.read.set(total);
        if total > self.cap {
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        Ok(n)
    }
}

/// Keep only the exec bit: 0o755 or 0o644, whatever the header says.
fn set_file_mode(file: &fs_err::File, exec: bool) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if exec { 0o755 } else { 0o644 };
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (file, exec);
    Ok(())
}

fn set_dir_mode(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    const MIB: u64 = 1024 * 1024;

    /// One raw tar entry; the name goes into the header bytes as is, so
    /// hostile names the `tar` builder would refuse can be written.
    struct Raw<'a> {
        name: &'a str,
        kind: EntryType,
        mode: u32,
        data: Box<dyn Read + 'a>,
        size: u64,
        link: &'a str,
    }

    fn file<'a>(name: &'a str, data: &'static [u8]) -> Raw<'a> {
        Raw {
            name,
            kind: EntryType::Regular,
            mode: 0o644,
            data: Box::new(data),
            size: data.len() as u64,
            link: "",
        }
    }

    fn special<'a>(name: &'a str, kind: EntryType, link: &'a str) -> Raw<'a> {
        Raw {
            kind,
            mode: 0o755,
            link,
            ..file(name, b"")
        }
    }

    fn dir(name: &str) -> Raw<'_> {
        special(name, EntryType::Directory, "")
    }

    fn zeros(name: &str, size: u64) -> Raw<'_> {
        Raw {
            data: Box::new(io::repeat(0).take(size)),
            size,
            ..file(name, b"")
        }
    }

    fn tgz(dir: &Path, entries: Vec<Raw<'_>>) -> PathBuf {
        let path = dir.join("pkg.tgz");
        let gz = GzEncoder::new(fs_err::File::create(&path).unwrap(), Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_old_mut().name;
            name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
            header.set_entry_type(entry.kind);
            header.set_mode(entry.mode);
            header.set_size(entry.size);
            if !entry.link.is_empty() {
                header.set_link_name(entry.link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, entry.data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        path
    }

    fn unpack_with(
        entries: Vec<Raw<'_>>,
        limits: &Limits,
    ) -> (tempfile::TempDir, Result<UnpackStats>) {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tgz(tmp.path(), entries);
        let dest = tmp.path().join("out");
        fs_err::create_dir(&dest).unwrap();
        let result = unpack_npm(&archive, &dest, "left-pad@1.0.0", limits);
        (tmp, result)
    }

    /// Unpacking must be refused as unsafe, with a message naming `needle`.
    #[track_caller]
    fn refused(entries: Vec<Raw<'_>>, limits: &Limits, needle: &str) -> String {
        let (_tmp, result) = unpack_with(entries, limits);
        let err = result.expect_err("unpacking should be refused");
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains(needle), "{needle:?} not in: {err}");
        assert!(
            err.message.starts_with("archive of `left-pad@1.0.0` "),
            "{err}"
        );
        err.message
    }

    #[test]
    fn normal_package_unpacks_with_content_and_exec_bits() {
        let entries = vec![
            dir("package/"),
            file("package/package.json", b"{\"name\":\"left-pad\"}"),
            Raw {
                mode: 0o700,
                ..file("package/bin/cli.js", b"#!/usr/bin/env node\n")
            },
            Raw {
                mode: 0o666,
                ..file("package/lib/deep/index.js", b"module.exports = 1;\n")
            },
            file("package/./README.md", b"# left-pad\n"),
            dir("package/lib/"),
            special("pax_global_header", EntryType::XGlobalHeader, ""),
        ];
        let (tmp, result) = unpack_with(entries, &Limits::default());
        let stats = result.unwrap();
        assert_eq!(stats.files, 4);
        assert_eq!(stats.bytes, 19 + 20 + 20 + 11);
        let out = tmp.path().join("out");
        let read = |p: &str| fs_err::read_to_string(out.join(p)).unwrap();
        assert_eq!(read("package.json"), "{\"name\":\"left-pad\"}");
        assert_eq!(read("bin/cli.js"), "#!/usr/bin/env node\n");
        assert_eq!(read("lib/deep/index.js"), "module.exports = 1;\n");
        assert_eq!(read("README.md"), "# left-pad\n");
        assert!(!out.join("package").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &str| fs_err::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("bin/cli.js"), 0o755);
            assert_eq!(mode("lib/deep/index.js"), 0o644);
            assert_eq!(mode("package.json"), 0o644);
            assert_eq!(mode("lib/deep"), 0o755);
        }
    }

    #[test]
    fn long_names_from_the_tar_builder_unpack() {
        let tmp = tempfile::tempdir().unwrap();
        let long = format!("package/{}/file.txt", "d".repeat(150));
        let path = tmp.path().join("pkg.tgz");
        let gz = GzEncoder::new(fs_err::File::create(&path).unwrap(), Compression::default());
        let mut builder = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        builder.append_data(&mut header, &long, &b"hi"[..]).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        let dest = tmp.path().join("out");
        fs_err::create_dir(&dest).unwrap();
        let stats = unpack_npm(&path, &dest, "x@1.0.0", &Limits::default()).unwrap();
        assert_eq!(stats, UnpackStats { files: 1, bytes: 2 });
        let rel = long.strip_prefix("package/").unwrap();
        assert_eq!(fs_err::read_to_string(dest.join(rel)).unwrap(), "hi");
    }

    #[test]
    fn refuses_traversal() {
        let msg = refused(
            vec![file("package/../x", b"x")],
            &Limits::default(),
            "`package/../x`",
        );
        assert!(msg.contains("outside the package"), "{msg}");
    }

    #[test]
    fn refuses_absolute_path() {
        refused(
            vec![file("/etc/x", b"x")],
            &Limits::default(),
            "`/etc/x` outside the package",
        );
    }

    #[test]
    fn refuses_windows_drive_and_backslash() {
        refused(
            vec![file("package/C:../x", b"x")],
            &Limits::default(),
            "`package/C:../x`",
        );
        refused(
            vec![file("package\\..\\x", b"x")],
            &Limits::default(),
            "`package\\..\\x`",
        );
    }

    #[test]
    fn any_top_folder_is_stripped_as_npm_strips_it() {
        // `@types/node` uses `node/`, `ejs@6.0.1` uses `ejs-v6.0.1/`, and a
        // git export a folder with a commit in its name; `./package/x` keeps
        // `package/` (node-tar splits the raw name on `/`).
        let entries = vec![
            file("node v17.0/package.json", b"{}"),
            file("node v17.0/index.d.ts", b"1"),
            file("other/extra.d.ts", b"2"),
            file("./package/inner.js", b"3"),
        ];
        let (tmp, result) = unpack_with(entries, &Limits::default());
        assert_eq!(result.unwrap().files, 4);
        let out = tmp.path().join("out");
        for p in [
            "package.json",
            "index.d.ts",
            "extra.d.ts",
            "package/inner.js",
        ] {
            assert!(out.join(p).is_file(), "{p} missing");
        }
    }

    #[test]
    fn refuses_symlink() {
        let entries = vec![special("package/link", EntryType::Symlink, "/etc/passwd")];
        refused(entries, &Limits::default(), "symlink `package/link`");
    }

    #[test]
    fn refuses_hardlink() {
        let entries = vec![
            file("package/a", b"a"),
            special("package/b", EntryType::Link, "package/a"),
        ];
        refused(entries, &Limits::default(), "hardlink `package/b`");
    }

    #[test]
    fn refuses_char_device() {
        let entries = vec![special("package/tty", EntryType::Char, "")];
        refused(
            entries,
            &Limits::default(),
            "character device `package/tty`",
        );
    }

    #[test]
    fn refuses_fifo() {
        let entries = vec![special("package/pipe", EntryType::Fifo, "")];
        refused(entries, &Limits::default(), "FIFO `package/pipe`");
    }

    #[test]
    fn repeated_file_entry_the_later_wins() {
        // `socks-proxy-agent@8.0.5` repeats regular files; tar readers and
        // npm keep the last one.
        let entries = vec![
            Raw {
                mode: 0o755,
                ..file("package/a.js", b"first")
            },
            dir("package/d/"),
            file("package/./a.js", b"2"),
            dir("package/d"),
        ];
        let (tmp, result) = unpack_with(entries, &Limits::default());
        assert_eq!(result.unwrap().files, 1);
        let a = tmp.path().join("out/a.js");
        assert_eq!(fs_err::read_to_string(&a).unwrap(), "2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs_err::metadata(&a).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "the later entry's mode wins too");
        }
    }

    #[test]
    fn refuses_file_and_directory_of_one_name() {
        refused(
            vec![file("package/a", b"1"), dir("package/a/")],
            &Limits::default(),
            "both a file and a directory named `package/a/`",
        );
        refused(
            vec![dir("package/a/"), file("package/a", b"1")],
            &Limits::default(),
            "both a file and a directory named `package/a`",
        );
        refused(
            vec![file("package/a/b", b"1"), file("package/a", b"1")],
            &Limits::default(),
            "both a file and a directory named `package/a`",
        );
    }

    #[test]
    fn refuses_entry_below_a_file() {
        let entries = vec![file("package/a", b"1"), file("package/a/b", b"2")];
        refused(
            entries,
            &Limits::default(),
            "`package/a/b` below the file `a` it already has",
        );
    }

    #[test]
    fn refuses_too_many_entries() {
        let limits = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        let entries = vec![
            file("package/1", b"1"),
            file("package/2", b"2"),
            file("package/3", b"3"),
            file("package/4", b"4"),
        ];
        refused(
            entries,
            &limits,
            "more than 3 entries (stopped at `package/4`)",
        );
    }

    #[test]
    fn refuses_ratio_bomb_of_zeros() {
        let limits = Limits {
            ratio_floor_bytes: MIB,
            ..Limits::default()
        };
        let (tmp, result) = unpack_with(vec![zeros("package/zeros", 64 * MIB)], &limits);
        let err = result.expect_err("a 64 MiB file of zeros is a bomb");
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("times its"), "{err}");
        assert!(err.message.contains("`package/zeros`"), "{err}");
        // Stopped early: far less than 64 MiB reached the disk (here nothing,
        // as the header's claimed size already exceeds the cap).
        let written = fs_err::metadata(tmp.path().join("out/zeros")).map_or(0, |m| m.len());
        assert!(written <= 2 * MIB, "{written} bytes written");
    }

    /// Limits under which 64 MiB of zeros (about 64 KiB compressed) is a bomb.
    fn small_limits() -> Limits {
        Limits {
            ratio_floor_bytes: MIB,
            max_entries: 100,
            ..Limits::default()
        }
    }

    #[test]
    fn refuses_bomb_hidden_in_directory_data() {
        // The tar crate skips a directory's data by reading through it; the
        // meter on the decompressed stream must stop that too.
        let entries = vec![
            Raw {
                data: Box::new(io::repeat(0).take(64 * MIB)),
                size: 64 * MIB,
                ..dir("package/d/")
            },
            file("package/after", b"x"),
        ];
        let msg = refused(entries, &small_limits(), "(stopped after `package/d/`)");
        assert!(msg.contains("times its"), "{msg}");
    }

    #[test]
    fn refuses_bomb_hidden_in_pax_header() {
        // A PAX extension header is read into memory by the tar crate.
        let entries = vec![
            file("package/ok", b"ok"),
            Raw {
                kind: EntryType::XHeader,
                ..zeros("PaxHeader/x", 64 * MIB)
            },
            file("package/x", b"x"),
        ];
        let msg = refused(entries, &small_limits(), "(stopped after `package/ok`)");
        assert!(msg.contains("times its"), "{msg}");
    }

    #[test]
    fn refuses_file_over_max_file_bytes() {
        let limits = Limits {
            max_file_bytes: 1000,
            ..Limits::default()
        };
        let entries = vec![file("package/ok", b"small"), zeros("package/big", 1001)];
        refused(
            entries,
            &limits,
            "file `package/big` larger than 1000 bytes",
        );
    }

    #[test]
    fn refuses_total_over_max_total_bytes() {
        let limits = Limits {
            max_total_bytes: 1500,
            ..Limits::default()
        };
        let entries = vec![zeros("package/a", 1000), zeros("package/b", 1000)];
        refused(
            entries,
            &limits,
            "more than 1500 bytes (stopped at `package/b`)",
        );
    }

    #[test]
    fn file_in_place_of_package_dir_is_dropped_as_npm_drops_it() {
        let entries = vec![file("package", b"x"), file("package/a.js", b"a")];
        let (tmp, result) = unpack_with(entries, &Limits::default());
        assert_eq!(result.unwrap().files, 1);
        let names: Vec<_> = fs_err::read_dir(tmp.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.js"]);
    }

    #[test]
    fn refuses_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pkg.tgz");
        fs_err::write(&path, b"not a tarball at all").unwrap();
        let dest = tmp.path().join("out");
        fs_err::create_dir(&dest).unwrap();
        let err = unpack_npm(&path, &dest, "x@1.0.0", &Limits::default()).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("not a valid gzip'ed tar"), "{err}");
    }

    #[test]
    fn enclosed_path_table() {
        let ok = |s: &str| Ok::<_, Outside>(EnclosedPath(s.to_owned()));
        let cases: &[(&str, Result<EnclosedPath, Outside>)] = &[
            ("package/a.js", ok("a.js")),
            ("package/lib/a.js", ok("lib/a.js")),
            ("package/", ok("")),
            ("package", ok("")),
            ("package//lib/./a.js", ok("lib/a.js")),
            ("./package//lib/./a.js", ok("package/lib/a.js")),
            (".", ok("")),
            ("./", ok("")),
            ("", ok("")),
            ("evil/x", ok("x")),
            ("Package/x", ok("x")),
            ("express/index.d.ts", ok("index.d.ts")),
            ("..", Err(Outside)),
            ("../x", Err(Outside)),
            ("C:", Err(Outside)),
            ("package/..", Err(Outside)),
            ("package/../x", Err(Outside)),
            ("package/a/../../x", Err(Outside)),
            ("../package/x", Err(Outside)),
            ("/package/x", Err(Outside)),
            ("/etc/passwd", Err(Outside)),
            ("package\\x", Err(Outside)),
            ("package/a\\..\\..\\x", Err(Outside)),
            ("C:/x", Err(Outside)),
            ("package/C:x", Err(Outside)),
            ("package/c:", Err(Outside)),
        ];
        for (name, want) in cases {
            assert_eq!(&EnclosedPath::parse(name), want, "{name:?}");
        }
    }
}
