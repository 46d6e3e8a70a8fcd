//! Downloads: bounded in parallel (the HTTP client's limiter), hashed while
//! streaming to a temp file inside the cache, compared with the expected hash
//! (from the lock, else from the registry), and only then renamed into the
//! content-addressed blob store. Nothing unverified ever gets a final name.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::integrity::{Algo, Computed, Hasher, Integrity};
use crate::lock::FileLock;
use crate::redact;
use crate::registry::http::{Fault, Http, describe};
use crate::settings::{Credential, NpmConfig};

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

impl Fetcher {
    /// An npm tarball, verified against `expected`; returns its path and sha512.
    pub async fn npm_tarball(
        &self,
        label: &str,
        url: &Url,
        registry: &Url,
        expected: &Integrity,
        source: Expected,
    ) -> Result<(PathBuf, Integrity)> {
        if let Some(path) = self.cache.blob_path(expected)
            && path.is_file()
        {
            return Ok((path, expected.clone()));
        }
        let credential = self.npm.credential_for(url).cloned();
        let (path, computed) = self
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
        Ok((path, sha512))
    }

    /// Make sure the archive is in the blob store, verified. Returns its path
    /// and, when it was downloaded now, its hashes.
    pub async fn blob(&self, req: BlobRequest<'_>) -> Result<(PathBuf, Option<Computed>)> {
        let label = req.label;
        if let Some(path) = req.expected.and_then(|e| self.cache.blob_path(e))
            && path.is_file()
        {
            return Ok((path, None));
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
        let lock_path = self
            .cache
            .lock_path(&format!("blob-{}", &key[..32.min(key.len())]));
        let _guard = tokio::task::spawn_blocking(move || {
            FileLock::acquire(&lock_path, "the download cache")
        })
        .await
        .map_err(|e| Error::internal(format!("lock task failed: {e}")))??;
        if let Some(path) = req.expected.and_then(|e| self.cache.blob_path(e))
            && path.is_file()
        {
            return Ok((path, None));
        }

        let tmp = self.cache.tmp_file("dl")?;
        let computed = self.download(&req, &tmp).await;
        let computed = match computed {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if let Some(expected) = req.expected
            && !expected.matches(&computed)
        {
            let _ = std::fs::remove_file(&tmp);
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
            return Err(Error::integrity(format!(
                "`{label}` does not match {whose}: expected `{expected}`, got `{got}`"
            ))
            .with_hint(hint));
        }
        let name_by = match req.expected.map(|e| e.strongest.algo) {
            Some(Algo::Sha512) | Some(Algo::Sha1) => computed.sha512_integrity(),
            Some(Algo::Sha256) | None => Integrity::from_sha256_hex(&computed.sha256_hex())?,
        };
        let dest = self
            .cache
            .blob_path(&name_by)
            .ok_or_else(|| Error::internal("blob path for a computed hash"))?;
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::rename(&tmp, &dest)?;
        Ok((dest, Some(computed)))
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
                let mut file = tokio::fs::File::create(tmp).await.map_err(|e| {
                    Fault::Fatal(Error::io(format!("cannot create `{}`: {e}", tmp.display())))
                })?;
                let mut hasher = Hasher::for_expected(req.expected);
                if req.expected.is_none() {
                    hasher = Hasher::all();
                }
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| {
                        Fault::Transient(Error::registry(format!(
                            "download of `{shown}` broke off: {}",
                            describe(e)
                        )))
                    })?;
                    hasher.update(&chunk);
                    file.write_all(&chunk).await.map_err(|e| {
                        Fault::Fatal(Error::io(format!("cannot write `{}`: {e}", tmp.display())))
                    })?;
                }
                file.sync_all().await.map_err(|e| {
                    Fault::Fatal(Error::io(format!("cannot write `{}`: {e}", tmp.display())))
                })?;
                Ok(hasher.finish())
            })
            .await
    }
}
