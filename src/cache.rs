//! The content-addressed cache. Layout (see `docs/cache.md`):
//!
//! ```text
//! <root>/v1/blobs/sha512/<hex>      verified npm tarballs, named by their hash
//! <root>/v1/blobs/sha256/<hex>      verified wheels, named by their hash
//! <root>/v1/npm/env/<tree-digest>/  a tree's node_modules, complete once renamed in
//! <root>/v1/pypi/env/<key>/         a tree's venv for one interpreter, likewise
//! <root>/v1/pypi/env/<key>/         a tree's venv for one interpreter, likewise
//! <root>/v1/tmp/                    private staging dirs and downloads
//! <root>/v1/locks/                  advisory file locks
//! ```
//!
//! Everything is written under `tmp/` first and renamed into place when
//! complete, so a path that exists is whole: a kill at any instant leaves
//! only debris in `tmp/`, which nothing reads. Entries are immutable.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::integrity::Integrity;

pub struct Cache {
    v1: PathBuf,
}

/// The file inside a finished environment that records what it holds.
pub const ENV_MARKER: &str = ".safex-env.json";

impl Cache {
    pub fn new(root: &Path) -> Cache {
        Cache {
            v1: root.join("v1"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.v1
    }

    /// Where an archive with this hash lives: `blobs/sha512/<hex>` (npm) or
    /// `blobs/sha256/<hex>` (wheels). sha1 names no blob: it is too weak to
    /// address content by.
    pub fn blob_path(&self, integrity: &Integrity) -> Option<PathBuf> {
        let dir = match integrity.strongest.algo {
            crate::integrity::Algo::Sha512 => "sha512",
            crate::integrity::Algo::Sha256 => "sha256",
            crate::integrity::Algo::Sha1 => return None,
        };
        Some(
            self.v1
                .join("blobs")
                .join(dir)
                .join(integrity.strongest.hex()),
        )
    }

    pub fn npm_env(&self, digest: &str) -> PathBuf {
        self.v1.join("npm").join("env").join(digest)
    }

    pub fn pypi_env(&self, key: &str) -> PathBuf {
        self.v1.join("pypi").join("env").join(key)
    }

    /// The Python chosen for a PyPI root whose `Requires-Python` the default
    /// interpreter does not meet (`key`: a hash of the lock key).
    pub fn pypi_python_choice(&self, key: &str) -> PathBuf {
        self.v1.join("pypi").join("python-for").join(key)
    }

    pub fn lock_path(&self, key: &str) -> PathBuf {
        self.v1.join("locks").join(format!("{key}.lock"))
    }

    /// A fresh private directory under `tmp/` (same filesystem as the final
    /// place, so the final rename is atomic).
    pub fn staging_dir(&self, label: &str) -> Result<PathBuf> {
        let tmp = self.v1.join("tmp");
        fs_err::create_dir_all(&tmp)?;
        for attempt in 0..100u32 {
            let p = tmp.join(format!(
                "{label}-{}-{}-{attempt}",
                std::process::id(),
                nanos()
            ));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(p),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(format!("cannot create `{}`: {e}", p.display()))),
            }
        }
        Err(Error::io(format!(
            "cannot create a staging directory in `{}`",
            tmp.display()
        )))
    }

    pub fn tmp_file(&self, label: &str) -> Result<PathBuf> {
        let tmp = self.v1.join("tmp");
        fs_err::create_dir_all(&tmp)?;
        Ok(tmp.join(format!("{label}-{}-{}", std::process::id(), nanos())))
    }

    /// Move a finished staging dir into place. If another process got there
    /// first, keep theirs (identical by construction) and drop ours.
    pub fn commit_dir(&self, staging: &Path, dest: &Path) -> Result<()> {
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent)?;
        }
        match std::fs::rename(staging, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.join(ENV_MARKER).exists() => {
                remove_dir_all_quiet(staging);
                Ok(())
            }
            Err(e) => Err(Error::io(format!(
                "cannot move `{}` to `{}`: {e}",
                staging.display(),
                dest.display()
            ))),
        }
    }

    /// Remove everything, under the cache root's own lock.
    pub fn clean(&self) -> Result<()> {
        if self.v1.exists() {
            fs_err::remove_dir_all(&self.v1)?;
        }
        Ok(())
    }
}

pub fn remove_dir_all_quiet(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Removes a staging directory on drop unless it was committed.
pub struct StagingGuard(pub Option<PathBuf>);

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            remove_dir_all_quiet(&p);
        }
    }
}
