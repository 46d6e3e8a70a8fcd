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
use crate::integrity::{Hasher, Integrity};
use crate::lock::FileLock;
use crate::redact;
use crate::registry::http::{Fault, Http, describe};
use crate::settings::NpmConfig;

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
}

impl Fetcher {
    /// Make sure the archive for `label` (`name@version`) is in the blob store,
    /// verified against `expected`. Returns its path and its sha512.
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
        if self.offline {
            return Err(Error::registry(format!("`{label}` is not in the cache and safex is offline"))
                .with_hint("run the same command once with network access (without `--offline` / `SAFEX_OFFLINE`)"));
        }
        if url.origin() != registry.origin() {
            return Err(Error::policy(format!(
                "the tarball of `{label}` is on `{}`, not on the registry `{}`",
                redact::url(url),
                redact::url(registry)
            ))
            .with_hint("safex fetches archives only from the configured registry's own host; ask the registry's admin why it points elsewhere"));
        }
        // One downloader per archive: a concurrent launch waits, then finds the blob.
        let lock_key = format!(
            "blob-{}",
            &expected.strongest.hex()[..32.min(expected.strongest.hex().len())]
        );
        let lock_path = self.cache.lock_path(&lock_key);
        let _guard = tokio::task::spawn_blocking(move || {
            FileLock::acquire(&lock_path, "the download cache")
        })
        .await
        .map_err(|e| Error::internal(format!("lock task failed: {e}")))??;
        if let Some(path) = self.cache.blob_path(expected)
            && path.is_file()
        {
            return Ok((path, expected.clone()));
        }

        let cred = self.npm.credential_for(url);
        let tmp = self.cache.tmp_file("dl")?;
        let shown = redact::url(url);
        let computed = self
            .http
            .retry(|| async {
                let resp = self.http.get(url, "application/octet-stream", cred).await?;
                let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| {
                    Fault::Fatal(Error::io(format!("cannot create `{}`: {e}", tmp.display())))
                })?;
                let mut hasher = Hasher::for_expected(Some(expected));
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
            .await;
        let computed = match computed {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if !expected.matches(&computed) {
            let _ = std::fs::remove_file(&tmp);
            let got = computed.same_algo_as(expected);
            let (whose, hint) = match source {
                Expected::Lock => (
                    "the lockfile",
                    "the registry now serves other bytes for a version that was locked: treat it as a possible compromise; do not remove the lock entry unless you know why the bytes changed",
                ),
                Expected::Registry => (
                    "the registry's declared integrity",
                    "the download was altered or the registry's metadata is wrong; nothing was unpacked",
                ),
            };
            return Err(Error::integrity(format!(
                "`{label}` does not match {whose}: expected `{expected}`, got `{got}`"
            ))
            .with_hint(hint));
        }
        let sha512 = computed.sha512_integrity();
        let dest = self
            .cache
            .blob_path(&sha512)
            .ok_or_else(|| Error::internal("sha512 blob path"))?;
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::rename(&tmp, &dest)?;
        Ok((dest, sha512))
    }
}
