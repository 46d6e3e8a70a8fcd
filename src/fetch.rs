//! Downloads: bounded in parallel (the HTTP client's limiter), hashed while
//! streaming to a temp file inside the cache, compared with the expected hash
//! (from the lock, else from the registry), and only then renamed into the
//! content-addressed blob store. Nothing unverified ever gets a final name.
//!
//! Every write is checked, including the last one (tokio's `File` buffers, so
//! the error of a final write on a full disk only shows at `flush`), the
//! written length must equal the bytes received (and `Content-Length`), the
//! file is fsynced, re-read and hashed *as written*, renamed, and its
//! directory fsynced. A short file never lands under its hash.
//!
//! An archive already in the blob store is not trusted by its name: every
//! use goes through [`Verified`], a handle on a file whose bytes were hashed
//! through that same handle just now and matched. A cached archive that does
//! not match (a flipped byte, a planted file, a truncation) is removed and
//! downloaded again in the same launch, or, offline, refused with a message
//! that says so.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use url::Url;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::filelock::FileLock;
use crate::http::Credential;
use crate::http::{Fault, Http};
use crate::integrity::{Algo, Computed, Hasher, Integrity};
use crate::npm::config::NpmConfig;
use crate::redact;

/// How many times an archive whose bytes do not match is fetched again
/// before the mismatch is an integrity error (see [`Fetcher::download_verified`]).
const MISMATCH_REFETCHES: u32 = 1;

/// Where the expected hash came from, for the message when bytes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Lock,
    Registry,
}

pub struct Fetcher {
    pub http: Arc<Http>,
    pub npm: Arc<NpmConfig>,
    pub cache: Arc<Cache>,
    pub offline: bool,
    /// Where archives may come from besides the registry's own origin.
    pub hosts: FileHosts,
    /// What one archive may unpack to (policy `[archives]`).
    pub limits: crate::archive::Limits,
}

/// Where an archive may be downloaded from (DESIGN.md §5: trust comes from
/// the hash, not the host).
///
/// The largest PyPI index serves its files from a host of its own, PEP 503
/// lets a file URL point anywhere, and registries such as GitHub Packages
/// redirect downloads to blob storage. An archive is checked against the hash
/// the registry declared (or the lock recorded) before a byte is unpacked,
/// so the host only matters for what else travels with the request:
///
/// - the registry's own origin: always (it was accepted when configured);
/// - another host: over HTTPS, and only when the expected hash is strong
///   (sha512 or sha256; an npm sha1 `shasum` alone is not enough to trust
///   bytes from a host the registry does not answer for);
/// - plain HTTP elsewhere: only to a host the policy lists in
///   `registries.allowed_hosts`;
/// - `registries.file_hosts`, when a policy sets it, narrows "another host"
///   to the hosts it lists (`[]`: the registry's own origin only).
///
/// Credentials go only to the origin they were configured for: never to a
/// file host, never across a redirect to another origin.
///
/// One exception to "any HTTPS host": the origin of *another* index or
/// registry the user configured (pip's `extra-index-url`, uv's extra
/// indexes, which safex never reads; for npm, the default or a scoped
/// registry other than the package's own). A page or packument that points
/// there would make safex fetch from, and send that registry's token to, a
/// registry it was not asked to use for this package: the file is refused,
/// whatever its hash, so that an artifact always comes from the index that
/// listed it.
///
/// Why this is safe although lockfile injection once argued for
/// registry-only hosts: the lockfile records no URLs (DESIGN.md §4), so an
/// edited lock cannot point safex at a host; the URL always comes from the
/// configured registry's metadata, and the hash from the lock or that
/// metadata.
#[derive(Debug, Clone, Default)]
pub struct FileHosts {
    /// `registries.allowed_hosts`: hosts also accepted over plain HTTP.
    pub allowed: Vec<String>,
    /// `registries.file_hosts`: `None` is any HTTPS host.
    pub only: Option<Vec<String>>,
    /// The other indexes or registries the user configured (PyPI: the
    /// extras, which safex never reads; npm: the default and scoped
    /// registries): their origins are never a file host for a package
    /// another one listed (see above). Userinfo is never shown.
    pub other_indexes: Vec<Url>,
}

impl FileHosts {
    pub fn from_policy(policy: &crate::policy::Policy) -> FileHosts {
        FileHosts {
            allowed: policy.allowed_hosts.clone().unwrap_or_default(),
            only: policy.file_hosts.clone(),
            other_indexes: Vec::new(),
        }
    }

    /// Refuse `url` if it lies on the origin of another configured index
    /// than `origin`, the one whose page listed it.
    pub fn check_other_index(&self, label: &str, url: &Url, origin: &Url) -> Result<()> {
        if url.origin() == origin.origin() {
            return Ok(());
        }
        let Some(other) = self
            .other_indexes
            .iter()
            .find(|o| o.origin() == url.origin())
        else {
            return Ok(());
        };
        Err(Error::policy(format!(
            "`{label}` is listed by `{}` but lies on `{}`, the origin of another configured registry or index, `{}`",
            redact::url(origin),
            redact::url(url),
            redact::url(other)
        ))
        .with_hint(format!(
            "safex takes every file from the registry or index that listed it, and never fetches from, or sends credentials to, another configured one; publish the file on `{}`, or make `{}` the one safex reads for this package",
            redact::url(origin),
            redact::url(other)
        )))
    }

    /// May `label`, expected to hash to `expected`, be fetched from `url`
    /// for the registry at `origin`?
    pub fn check(
        &self,
        label: &str,
        url: &Url,
        origin: &Url,
        expected: Option<&Integrity>,
    ) -> Result<()> {
        if url.origin() == origin.origin() {
            return Ok(());
        }
        self.check_other_index(label, url, origin)?;
        let host = url.host_str().unwrap_or_default();
        let listed = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(host));
        let refuse = |why: String, hint: &str| {
            Err(Error::policy(format!(
                "`{label}` is on `{}`, not on the registry `{}`, {why}",
                redact::url(url),
                redact::url(origin)
            ))
            .with_hint(hint))
        };
        if let Some(only) = &self.only
            && !listed(only)
            && !listed(&self.allowed)
        {
            return refuse(
                "and the policy's `registries.file_hosts` does not list that host".into(),
                "add the host to `registries.file_hosts` if the registry's admin says files live there",
            );
        }
        match url.scheme() {
            "https" => {}
            "http" if listed(&self.allowed) => {}
            scheme => {
                return refuse(
                    format!("over `{scheme}`"),
                    "safex fetches archives from other hosts over https only (plain http only from hosts the policy lists in `registries.allowed_hosts`)",
                );
            }
        }
        let strong =
            expected.is_some_and(|e| matches!(e.strongest.algo, Algo::Sha512 | Algo::Sha256));
        if !strong && !listed(&self.allowed) {
            return refuse(
                "and the registry declares no sha256 or sha512 hash for it".into(),
                "safex trusts an archive from another host only by a strong hash; ask the registry's admin to publish one, or list the host in `registries.allowed_hosts`",
            );
        }
        Ok(())
    }
}

/// One archive to bring into the blob store.
pub struct BlobRequest<'a> {
    /// `name@version` or a wheel's file name, for messages.
    pub label: &'a str,
    pub url: &'a Url,
    /// The registry or index the archive must come from (same origin).
    pub origin: &'a Url,
    /// `None` only for an index that publishes no hash: then the computed
    /// sha256 becomes the record (trust on first use).
    pub expected: Option<&'a Integrity>,
    pub source: Expected,
    pub credential: Option<Credential>,
}

/// An archive in the blob store whose bytes were hashed just now, through the
/// open handle kept here, and matched the expected hash. Unpacking reads
/// through [`Verified::reader`], the same open file: a rename or a new file
/// planted at `path` afterwards does not change what is unpacked.
#[derive(Debug)]
pub struct Verified {
    pub path: PathBuf,
    file: std::fs::File,
}

impl Verified {
    /// The verified bytes, from their start.
    pub fn reader(&self) -> Result<fs_err::File> {
        let mut f = self
            .file
            .try_clone()
            .map_err(|e| Error::io(format!("cannot read `{}`: {e}", self.path.display())))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(format!("cannot read `{}`: {e}", self.path.display())))?;
        Ok(fs_err::File::from_parts(f, &self.path))
    }
}

/// What the blob store holds for an expected hash.
enum Cached {
    Good(Verified),
    Absent,
    /// The file is there but its bytes do not match (or cannot be read): why.
    Damaged(String),
}

/// The integrity error for bytes that do not match, naming whose hash they
/// failed: the lockfile's (a possible compromise) or the registry's.
fn mismatch(req: &BlobRequest<'_>, expected: &Integrity, computed: &Computed) -> Error {
    let got = computed.same_algo_as(expected);
    let (whose, hint) = match req.source {
        Expected::Lock => (
            "the lockfile",
            "the registry now serves other bytes for a version that was locked: treat it as a possible compromise; do not remove the lock entry unless you know why the bytes changed",
        ),
        Expected::Registry => (
            "the registry's declared hash",
            "the download was altered or the registry's metadata is wrong; nothing was unpacked",
        ),
    };
    Error::integrity(format!(
        "`{}` does not match {whose}: expected `{expected}`, got `{got}`",
        req.label
    ))
    .with_hint(hint)
}

/// Hash what is on disk, not only what was received: the handle returned
/// is the one the bytes were read through. `tmp` is removed on a failure.
async fn read_back(
    label: &str,
    tmp: &Path,
    expected: Option<&Integrity>,
    computed: &Computed,
) -> Result<std::fs::File> {
    let algo = match expected.map(|e| e.strongest.algo) {
        Some(Algo::Sha256) => Algo::Sha256,
        _ => Algo::Sha512,
    };
    let received = match algo {
        Algo::Sha256 => computed.sha256.clone(),
        _ => computed.sha512.clone(),
    };
    let written = {
        let tmp = tmp.to_path_buf();
        tokio::task::spawn_blocking(move || hash_handle(&tmp, algo))
            .await
            .map_err(|e| Error::internal(format!("hash task failed: {e}")))?
    };
    match written {
        Ok((file, on_disk)) if on_disk == received => Ok(file),
        Ok(_) => {
            let _ = std::fs::remove_file(tmp);
            Err(Error::io(format!(
                "`{label}` was written to `{}`, but the file does not hold the bytes received",
                tmp.display()
            ))
            .with_hint("the disk or filesystem that holds the cache lost data; check it, then launch again"))
        }
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            Err(Error::io(format!(
                "cannot read back `{}`: {e}",
                tmp.display()
            )))
        }
    }
}

/// Open `path` (a regular file only) and hash it, in `algo` only, through
/// that handle; the handle is returned at its start.
fn hash_handle(path: &Path, algo: Algo) -> std::io::Result<(std::fs::File, Vec<u8>)> {
    let mut file = open_regular(path)?;
    let digest = crate::integrity::digest_reader(&mut file, algo)?;
    file.seek(SeekFrom::Start(0))?;
    Ok((file, digest))
}

/// Open `path` for reading only if it is a regular file: a planted symbolic
/// link is not followed, and a FIFO or device (which would block a launch
/// or never end) is not read. Either is reported as damage, and removed.
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            return std::io::Error::other("it is a symbolic link");
        }
        e
    })?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

/// Re-hash the blob at `path` against `expected` (blocking).
fn check_cached(path: &Path, expected: &Integrity) -> Cached {
    let algo = expected.strongest.algo;
    match hash_handle(path, algo) {
        Ok((file, digest)) if digest == expected.strongest.bytes => Cached::Good(Verified {
            path: path.to_owned(),
            file,
        }),
        Ok((_, digest)) => Cached::Damaged(format!(
            "its bytes hash to `{}`, not its name",
            crate::integrity::Hash {
                algo,
                bytes: digest
            }
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cached::Absent,
        Err(e) => Cached::Damaged(format!("it cannot be read: {e}")),
    }
}

/// `label`'s archive in the cache was damaged and has been removed; offline,
/// that ends the launch.
fn damaged_offline(label: &str, path: &Path, why: &str) -> Error {
    Error::integrity(format!(
        "archive `{label}` in the cache is damaged ({why}): removed `{}`",
        path.display()
    ))
    .with_hint("run again with network access (without `--offline` / `SAFEX_OFFLINE`): safex downloads and verifies it again")
}

/// An I/O error while writing `path` into the cache, saying so in words when
/// the disk is full.
fn write_error(path: &Path, e: &std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::StorageFull || e.kind() == std::io::ErrorKind::QuotaExceeded
    {
        Error::io(format!(
            "cannot write `{}`: the disk that holds the cache is full ({e})",
            path.display()
        ))
        .with_hint("free some space there (or point `SAFEX_CACHE_DIR` at a disk with room), then launch again; nothing partial was kept")
    } else {
        Error::io(format!("cannot write `{}`: {e}", path.display()))
    }
}

/// fsync a directory, so that a rename into it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| write_error(dir, &e))
}

impl Fetcher {
    /// An npm tarball, verified against `expected` now (downloaded, or
    /// re-hashed in the cache); returns it and its sha512.
    pub async fn npm_tarball(
        &self,
        label: &str,
        url: &Url,
        registry: &Url,
        expected: &Integrity,
        source: Expected,
    ) -> Result<(Verified, Integrity)> {
        let credential = self.npm.credential_for(url).cloned();
        let (verified, computed) = self
            .blob(BlobRequest {
                label,
                url,
                origin: registry,
                expected: Some(expected),
                source,
                credential,
            })
            .await?;
        let sha512 = match computed {
            Some(c) => c.sha512_integrity(),
            None => expected.clone(),
        };
        Ok((verified, sha512))
    }

    /// The archive with hash `expected` from the blob store, re-hashed now.
    /// `None` when it is not there, or was damaged and has been removed (said
    /// on stderr; offline, a damaged archive is an error instead).
    pub async fn cached(&self, label: &str, expected: &Integrity) -> Result<Option<Verified>> {
        let Some(path) = self.cache.blob_path(expected) else {
            return Ok(None);
        };
        match self.check_blocking(&path, expected).await? {
            Cached::Good(v) => return Ok(Some(v)),
            Cached::Absent => return Ok(None),
            Cached::Damaged(_) => {}
        }
        // Removed only under the download lock, after a second look: a
        // concurrent launch may be putting good bytes there right now.
        let _guard = self.blob_lock(&expected.strongest.hex()).await?;
        self.cached_locked(label, &path, expected).await
    }

    /// [`Fetcher::cached`] with the blob's download lock held.
    async fn cached_locked(
        &self,
        label: &str,
        path: &Path,
        expected: &Integrity,
    ) -> Result<Option<Verified>> {
        match self.check_blocking(path, expected).await? {
            Cached::Good(v) => Ok(Some(v)),
            Cached::Absent => Ok(None),
            Cached::Damaged(why) => {
                fs_err::remove_file(path)?;
                if self.offline {
                    return Err(damaged_offline(label, path, &why));
                }
                eprintln!(
                    "warning: archive `{label}` in the cache is damaged ({why}): removed `{}`; downloading it again",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    async fn check_blocking(&self, path: &Path, expected: &Integrity) -> Result<Cached> {
        let (path, expected) = (path.to_owned(), expected.clone());
        tokio::task::spawn_blocking(move || check_cached(&path, &expected))
            .await
            .map_err(|e| Error::internal(format!("hash task failed: {e}")))
    }

    async fn blob_lock(&self, key: &str) -> Result<FileLock> {
        let lock_path = self
            .cache
            .lock_path(&format!("blob-{}", &key[..32.min(key.len())]));
        tokio::task::spawn_blocking(move || FileLock::acquire(&lock_path, "the download cache"))
            .await
            .map_err(|e| Error::internal(format!("lock task failed: {e}")))?
    }

    /// Make sure the archive is in the blob store, verified now. Returns it
    /// and, when it was downloaded now, its hashes.
    pub async fn blob(&self, req: BlobRequest<'_>) -> Result<(Verified, Option<Computed>)> {
        let label = req.label;
        if let Some(e) = req.expected
            && let Some(v) = self.cached(label, e).await?
        {
            return Ok((v, None));
        }
        if self.offline {
            return Err(Error::registry(format!("`{label}` is not in the cache and safex is offline"))
                .with_hint("run the same command once with network access (without `--offline` / `SAFEX_OFFLINE`)"));
        }
        self.hosts.check(label, req.url, req.origin, req.expected)?;
        // One downloader per archive: a concurrent launch waits, then finds the blob.
        let key = match req.expected {
            Some(e) => e.strongest.hex(),
            None => crate::integrity::sha256_hex(req.url.as_str().as_bytes()),
        };
        let _guard = self.blob_lock(&key).await?;
        if let Some(e) = req.expected
            && let Some(path) = self.cache.blob_path(e)
            && let Some(v) = self.cached_locked(label, &path, e).await?
        {
            return Ok((v, None));
        }

        let tmp = self.cache.tmp_file("dl")?;
        let computed = self.download_verified(&req, &tmp).await?;
        let file = read_back(label, &tmp, req.expected, &computed).await?;
        let dest = self.persist(&tmp, req.expected, &computed)?;
        Ok((Verified { path: dest, file }, Some(computed)))
    }

    /// Download into `tmp` and check the bytes against the expected hash;
    /// `tmp` is removed on any failure.
    async fn download_verified(&self, req: &BlobRequest<'_>, tmp: &Path) -> Result<Computed> {
        // A body cut short with a length that still adds up (a proxy that
        // cut the body and its `Content-Length`) shows only as a hash
        // mismatch: fetch it again, like a reset, a bounded number of times,
        // on every path (locked or not, npm or PyPI). Bytes that still
        // differ are the integrity error below.
        let mut refetches = 0;
        let computed = loop {
            let computed = match self.download(req, tmp).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = std::fs::remove_file(tmp);
                    return Err(e);
                }
            };
            if refetches < MISMATCH_REFETCHES
                && req
                    .expected
                    .is_some_and(|expected| !expected.matches(&computed))
            {
                refetches += 1;
                let _ = std::fs::remove_file(tmp);
                continue;
            }
            break computed;
        };
        if let Some(expected) = req.expected
            && !expected.matches(&computed)
        {
            let _ = std::fs::remove_file(tmp);
            return Err(mismatch(req, expected, &computed));
        }
        Ok(computed)
    }

    /// Rename the verified download into the blob store under the name of
    /// its strongest hash (sha256 when that is what was expected), and sync
    /// the directory.
    fn persist(
        &self,
        tmp: &Path,
        expected: Option<&Integrity>,
        computed: &Computed,
    ) -> Result<PathBuf> {
        let name_by = match expected.map(|e| e.strongest.algo) {
            Some(Algo::Sha512) | Some(Algo::Sha1) => computed.sha512_integrity(),
            Some(Algo::Sha256) | None => Integrity::from_sha256_hex(&computed.sha256_hex())?,
        };
        let dest = self
            .cache
            .blob_path(&name_by)
            .ok_or_else(|| Error::internal("blob path for a computed hash"))?;
        let parent = dest
            .parent()
            .ok_or_else(|| Error::internal("blob path without a directory"))?;
        if let Err(e) = fs_err::create_dir_all(parent) {
            let _ = std::fs::remove_file(tmp);
            return Err(e.into());
        }
        if let Err(e) = fs_err::rename(tmp, &dest) {
            let _ = std::fs::remove_file(tmp);
            return Err(e.into());
        }
        sync_dir(parent)?;
        Ok(dest)
    }

    async fn download(&self, req: &BlobRequest<'_>, tmp: &std::path::Path) -> Result<Computed> {
        let shown = redact::url(req.url);
        self.http
            .retry(req.url, || async {
                let allow =
                    |next: &Url| self.hosts.check(req.label, next, req.origin, req.expected);
                let resp = self
                    .http
                    .get_archive(req.url, req.credential.as_ref(), &allow)
                    .await?;
                let declared = resp.content_length();
                let fatal = |e: std::io::Error| Fault::Fatal(write_error(tmp, &e));
                let mut file = tokio::fs::File::create(tmp).await.map_err(fatal)?;
                let mut hasher = Hasher::for_expected(req.expected);
                if req.expected.is_none() {
                    hasher = Hasher::all();
                }
                let mut received: u64 = 0;
                // The stall and rate deadlines are the body's (`Http::body`).
                let mut body = self.http.body(resp, format!("the download of `{shown}`"));
                while let Some(chunk) = body.chunk().await? {
                    hasher.update(&chunk);
                    received += chunk.len() as u64;
                    file.write_all(&chunk).await.map_err(fatal)?;
                }
                if let Some(len) = declared
                    && len != received
                {
                    return Err(Fault::Transient(Error::registry(format!(
                        "download of `{shown}` broke off: {received} of {len} bytes received"
                    ))));
                }
                // tokio's File hands writes to a blocking thread: the error
                // of the last one (ENOSPC on a full disk) surfaces only here.
                file.flush().await.map_err(fatal)?;
                file.sync_all().await.map_err(fatal)?;
                let on_disk = file.metadata().await.map_err(fatal)?.len();
                if on_disk != received {
                    return Err(Fault::Fatal(Error::io(format!(
                        "`{}` holds {on_disk} bytes after writing {received}",
                        tmp.display()
                    )).with_hint("the disk that holds the cache may be full or failing; free space or check it, then launch again")));
                }
                Ok(hasher.finish())
            })
            .await
    }
}
