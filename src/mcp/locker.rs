//! `safex lock` run for `safex mcp pin`, by the write and the dry run alike.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli::Globals;
use crate::error::{Error, Kind, Result};

/// Runs `safex lock <tool> ...` as a child process of this same binary, for
/// the write and the dry run alike, so that the dry run refuses what the
/// write would (fetching, verifying, unpacking and inspecting included, not
/// only the policy's lists). A dry run locks into a scratch copy of the
/// lockfile (read-only when the real one is), so the real one is never
/// written; the cache does get what was fetched.
pub struct Locker {
    policy: Option<std::path::PathBuf>,
    /// The scratch directory of a dry run, and the real lockfile.
    scratch: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Locker {
    pub fn new(g: &Globals, write: bool, lockfile: &Path) -> Result<Locker> {
        let mut l = Locker {
            policy: g.policy.clone(),
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

    /// `Err((exit code, what the child said))`.
    pub fn lock(&self, args: &[String]) -> std::result::Result<(), (i32, String)> {
        let exe = std::env::current_exe().map_err(|e| {
            (
                Kind::Internal.exit_code(),
                format!("cannot find the safex executable: {e}"),
            )
        })?;
        let mut cmd = Command::new(exe);
        if let Some(p) = &self.policy {
            cmd.arg("--policy").arg(p);
        }
        if let Some((dir, _)) = &self.scratch {
            cmd.env(crate::env_vars::SAFEX_LOCKFILE, dir.join("safex.lock"))
                .env(crate::env_vars::SAFEX_AUDIT_LOG, dir.join("audit.log"));
        }
        let out = cmd
            .arg("lock")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| (Kind::Internal.exit_code(), format!("cannot run safex: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        let mut why = last_error(&String::from_utf8_lossy(&out.stderr));
        // Say which lockfile the write would use, not the scratch copy.
        if let Some((dir, real)) = &self.scratch {
            why = why.replace(
                &dir.join("safex.lock").display().to_string(),
                &real.display().to_string(),
            );
        }
        Err((out.status.code().unwrap_or(Kind::Internal.exit_code()), why))
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        if let Some((dir, _)) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The error safex ended with: its last `error: ...` line and the `hint:`
/// after it (the form `docs/exit-codes.md` promises), as one line; else all
/// it printed.
fn last_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let Some(at) = lines.iter().rposition(|l| l.starts_with("error: ")) else {
        return stderr.trim().to_owned();
    };
    let mut why = lines[at]["error: ".len()..].to_owned();
    if let Some(h) = lines.get(at + 1).and_then(|l| l.strip_prefix("hint: ")) {
        why.push_str(&format!(" (hint: {h})"));
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_and_its_hint() {
        let e = "warning: x\nerror: first\nerror: `a@1` is denied\nhint: pick another\n";
        assert_eq!(last_error(e), "`a@1` is denied (hint: pick another)");
        assert_eq!(last_error("error: plain\n"), "plain");
        assert_eq!(last_error("  panicked  \n"), "panicked");
    }
}
