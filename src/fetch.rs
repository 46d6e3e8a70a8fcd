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
    /// Hosts the policy allows archives on besides the registry's own.
    pub allowed_hosts: Vec<String>,
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
        let allowed_host = req
            .url
            .host_str()
            .is_some_and(|h| self.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(h)));
        if req.url.origin() != req.origin.origin() && !allowed_host {
            return Err(Error::policy(format!(
                "`{label}` is on `{}`, not on the registry `{}`",
                redact::url(req.url),
                redact::url(req.origin)
            ))
            .with_hint("safex fetches archives only from the configured registry's own host (or hosts the policy lists in `registries.allowed_hosts`); ask the registry's admin why it points elsewhere"));
        }
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
                let resp = self
                    .http
                    .get(req.url, "application/octet-stream", req.credential.as_ref())
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
