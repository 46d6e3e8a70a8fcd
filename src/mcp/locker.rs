//! `safex lock` run for `safex mcp pin`, by the write and the dry run alike.

use std::path::Path;

use crate::error::{Error, Result};
use crate::session::Globals;

/// Runs `safex lock <tool> ...` in this process (quietly), for the write
/// and the dry run alike, so that the dry run refuses what the write would (fetching, verifying, unpacking and inspecting included, not
/// only the policy's lists). A dry run locks into a scratch copy of the
/// lockfile (read-only when the real one is), so the real one is never
/// written; the cache does get what was fetched.
pub struct Locker {
    globals: Globals,
    /// The scratch directory of a dry run, and the real lockfile.
    scratch: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Locker {
    pub fn new(g: &Globals, write: bool, lockfile: &Path) -> Result<Locker> {
        let mut l = Locker {
            globals: Globals {
                quiet: true,
                ..g.clone()
            },
            scratch: None,
        };
        if write {
            return Ok(l);
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("safex-pin-{}-{stamp}", std::process::id()));
        crate::cache::create_private_dirs(&dir)?;
        l.scratch = Some((dir.clone(), lockfile.to_path_buf()));
        let copy = dir.join("safex.lock");
        match std::fs::read(lockfile) {
            Ok(bytes) => fs_err::write(&copy, bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(format!(
                    "cannot read the lockfile `{}`: {e}",
                    lockfile.display()
                )));
            }
        }
        // A read-only lockfile exists (a missing one is writable): so does its copy.
        if crate::lock::why_read_only(lockfile).is_some() {
            let mut perms = fs_err::metadata(&copy)?.permissions();
            perms.set_readonly(true);
            fs_err::set_permissions(&copy, perms)?;
        }
        Ok(l)
    }

    /// `Err((exit code, why))`: the error as one line, its hint after it.
    pub fn lock(&self, words: &[String]) -> std::result::Result<(), (i32, String)> {
        let scratch = self.scratch.as_ref().map(|(dir, _)| dir.as_path());
        let e = match crate::lock_quietly(words, &self.globals, scratch) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let mut why = match &e.hint {
            Some(h) => format!("{} (hint: {h})", e.message),
            None => e.message.clone(),
        };
        // Say which lockfile the write would use, not the scratch copy.
        if let Some((dir, real)) = &self.scratch {
            why = why.replace(
                &dir.join("safex.lock").display().to_string(),
                &real.display().to_string(),
            );
        }
        Err((e.exit_code(), why))
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        if let Some((dir, _)) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
