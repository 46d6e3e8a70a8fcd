//! Exclusive advisory file locks that wait with a deadline and say what
//! they wait for (the lockfile, the cache, one download).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// An exclusive advisory lock on a file, released on drop. Waits with a
/// timeout and says what it waits for, so a stuck holder is diagnosable.
pub struct FileLock {
    file: std::fs::File,
}

impl FileLock {
    pub fn acquire(path: &Path, what: &str) -> Result<FileLock> {
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?
            .into_parts()
            .0;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(FileLock { file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !told && start.elapsed() > Duration::from_secs(2) {
                        eprintln!(
                            "safex: waiting for another safex using {what} (`{}`)",
                            path.display()
                        );
                        told = true;
                    }
                    if start.elapsed() > Duration::from_secs(600) {
                        return Err(Error::io(format!(
                            "timed out waiting for the lock on `{}`",
                            path.display()
                        ))
                        .with_hint(
                            "another safex process holds it; if none is running, delete the file",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io(format!("cannot lock `{}`: {e}", path.display())));
                }
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}
