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

#[derive(Debug, Clone)]
pub struct Cache {
    v1: PathBuf,
    /// When this process opened the cache for a cold path: staging of ours
    /// made since then is this launch's own (see [`Cache::sweep_own`]).
    opened_at: u128,
}

/// The file inside a finished environment that records what it holds.
pub const ENV_MARKER: &str = ".safex-env.json";

impl Cache {
    pub fn new(root: &Path) -> Cache {
        Cache {
            v1: root.join("v1"),
            opened_at: 0,
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
            let mut b = std::fs::DirBuilder::new();
            // Private whatever the umask: the environment this becomes is
            // checked at every warm launch for exactly this.
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            match b.create(&p) {
                Ok(()) => {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
                    }
                    return Ok(p);
                }
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

// ---------------------------------------------------------------------------
// The cache is yours alone; failures leave nothing behind; damage heals.
// ---------------------------------------------------------------------------

/// The directories under `v1/` that safex writes into. Each is checked (or
/// created `0700`) once per cold path by [`Cache::open_cold`].
const PRIVATE_DIRS: &[&str] = &[
    "blobs",
    "blobs/sha512",
    "blobs/sha256",
    "npm",
    "npm/env",
    "pypi",
    "pypi/env",
    "pypi/python-for",
    "tmp",
    "locks",
    "lockindex",
];

/// Staging older than this, of a process that is gone, is debris. A live
/// download touches its file continuously, so only the dead are swept.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// What the one `lstat` of an environment directory says.
#[derive(Debug, PartialEq, Eq)]
pub enum EnvState {
    /// Nothing there: build it.
    Missing,
    /// A directory of ours that nobody else can write: read its marker.
    Dir,
    /// Something of ours that is not a directory: damaged, rebuild it.
    NotDir,
}

impl Cache {
    /// Open the cache for a cold path: resolve the root once (it may be a
    /// symlink the user made, e.g. a symlinked `~/.cache`), then check that
    /// the root and every directory safex uses under it is a real directory
    /// (never a symlink), owned by this user and not writable by group or
    /// others, creating missing ones `0700` whatever the umask. Then sweep
    /// staging left in `tmp/` by processes that are gone.
    ///
    /// Why refuse rather than fix: a directory someone else can write may
    /// already hold their files (a planted `npm/env` symlink sends the
    /// unpacked tree where they choose), so a `chmod` now would bless them.
    pub fn open_cold(root: &Path) -> Result<Cache> {
        let root = private_root(root)?;
        let v1 = root.join("v1");
        private_dir(&v1)?;
        for sub in PRIVATE_DIRS {
            private_dir(&v1.join(sub))?;
        }
        let cache = Cache {
            v1,
            opened_at: nanos(),
        };
        cache.sweep_stale();
        Ok(cache)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.v1.join("tmp")
    }

    /// The one `lstat` of the warm path: is `dir` an environment of ours
    /// that only we can change? A symlink, another user's entry or a
    /// group/world-writable one is refused: it is never run.
    pub fn env_state(dir: &Path) -> Result<EnvState> {
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EnvState::Missing),
            Err(e) => Err(Error::io(format!(
                "cannot inspect `{}`: {e}",
                dir.display()
            ))),
            Ok(m) => {
                check_private(dir, &m, "environment")?;
                Ok(if m.is_dir() {
                    EnvState::Dir
                } else {
                    EnvState::NotDir
                })
            }
        }
    }

    /// Move a finished staging dir to `dest`, repairing what is in the way:
    /// a winner's complete environment (`complete` says so) is kept and ours
    /// dropped; anything else of ours there (no marker, a damaged one, an
    /// unreadable directory, a file) is moved aside into `tmp/` and removed,
    /// and ours takes its place. Returns whether something was repaired.
    pub fn commit_env(
        &self,
        staging: &Path,
        dest: &Path,
        complete: impl Fn(&Path) -> bool,
    ) -> Result<bool> {
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mut repaired = false;
        let mut last = None;
        for _ in 0..3 {
            match std::fs::rename(staging, dest) {
                Ok(()) => return Ok(repaired),
                Err(e) => last = Some(e),
            }
            match Cache::env_state(dest)? {
                EnvState::Missing => continue,
                EnvState::Dir if complete(dest) => {
                    remove_dir_all_quiet(staging);
                    return Ok(repaired);
                }
                EnvState::Dir | EnvState::NotDir => {
                    self.move_aside(dest)?;
                    repaired = true;
                }
            }
        }
        Err(Error::io(format!(
            "cannot move `{}` to `{}`: {}",
            staging.display(),
            dest.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        ))
        .with_hint("another process keeps changing it; run `safex cache clean` and launch again"))
    }

    /// Rename a damaged entry into `tmp/` (one atomic step: no launch sees
    /// half of it), then remove it. A directory we own but cannot enter is
    /// made ours to remove first.
    pub fn move_aside(&self, path: &Path) -> Result<()> {
        let aside = self
            .tmp_dir()
            .join(format!("broken-{}-{}-0", std::process::id(), nanos()));
        fs_err::create_dir_all(self.tmp_dir())?;
        let first = std::fs::rename(path, &aside);
        if let Err(e) = first {
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(());
            }
            // Moving a directory to another parent rewrites its `..`: it
            // needs write permission on the directory itself.
            make_owner_rwx(path);
            std::fs::rename(path, &aside).map_err(|e| {
                Error::io(format!(
                    "cannot move the damaged `{}` aside: {e}",
                    path.display()
                ))
                .with_hint(format!("remove it yourself (`rm -rf {}`)", path.display()))
            })?;
        }
        remove_entry(&aside);
        Ok(())
    }

    /// After a cold path, failed or not: remove whatever this launch staged
    /// in `tmp/` and did not move into place (downloads, environments,
    /// venvs), named with our pid since the cache was opened. Call it once
    /// nothing of this launch runs any more (its async runtime dropped, so
    /// no unpack task still running can recreate a directory).
    pub fn sweep_own(&self) {
        let me = std::process::id();
        self.sweep(|pid, made, _| pid == me && made >= self.opened_at);
    }

    /// Remove staging of processes that are gone: the pid in its name is not
    /// alive and it is older than [`STALE_AFTER`] (by name and by mtime).
    /// Another live process's staging is never touched.
    pub fn sweep_stale(&self) {
        let me = std::process::id();
        let now = nanos();
        let old = STALE_AFTER.as_nanos();
        self.sweep(|pid, made, mtime| {
            pid != me
                && now.saturating_sub(made) > old
                && now.saturating_sub(mtime) > old
                && !pid_alive(pid)
        });
    }

    fn sweep(&self, remove: impl Fn(u32, u128, u128) -> bool) {
        let Ok(rd) = std::fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some((pid, made)) = name.to_str().and_then(staging_owner) else {
                continue;
            };
            let mtime = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            if remove(pid, made, mtime) {
                remove_entry(&e.path());
            }
        }
    }
}

/// `(pid, creation nanos)` from a `tmp/` name: `<label>-<pid>-<nanos>`
/// (files) or `<label>-<pid>-<nanos>-<attempt>` (directories); labels may
/// hold `-` themselves (`python-for`).
fn staging_owner(name: &str) -> Option<(u32, u128)> {
    let parts: Vec<&str> = name.split('-').collect();
    (1..parts.len()).rev().find_map(|i| {
        let made: u128 = parts[i].parse().ok()?;
        // Nanoseconds since 1970: anything else (an attempt number) is short.
        if made < 1_000_000_000_000_000 {
            return None;
        }
        let pid: u32 = parts[i - 1].parse().ok()?;
        Some((pid, made))
    })
}

fn remove_entry(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            if std::fs::remove_dir_all(p).is_err() {
                // An unreadable directory of ours: open it up, then retry.
                make_owner_rwx(p);
                remove_dir_all_quiet(p);
            }
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

#[cfg(unix)]
fn make_owner_rwx(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::symlink_metadata(p)
        && m.is_dir()
    {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
    }
}
#[cfg(not(unix))]
fn make_owner_rwx(_: &Path) {}

#[cfg(unix)]
fn pid_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(p) {
        Ok(()) => true,
        // It exists, it is just not ours to signal.
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}
#[cfg(not(unix))]
fn pid_alive(_: u32) -> bool {
    // No cheap, safe probe: never sweep what might be live.
    true
}

/// The cache root, resolved once. The root itself may be a symlink (a
/// symlinked `~/.cache` is common): it is followed if the link belongs to
/// this user or to root (a link someone else owns could be repointed), and
/// the directory it leads to is checked like any other. Missing: created,
/// the root itself `0700`.
fn private_root(root: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs_err::create_dir_all(parent)?;
            }
            private_dir(root)?;
        }
        Err(e) => {
            return Err(Error::io(format!(
                "cannot inspect the cache `{}`: {e}",
                root.display()
            )));
        }
        Ok(m) if m.file_type().is_symlink() => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                let me = current_uid();
                if m.uid() != me && m.uid() != 0 {
                    return Err(Error::io(format!(
                        "the cache root `{}` is a symbolic link owned by uid {}, not by you (uid {me}): its owner could point it anywhere",
                        root.display(),
                        m.uid()
                    ))
                    .with_hint("remove the link, or set `SAFEX_CACHE_DIR` to a directory of your own"));
                }
            }
        }
        Ok(_) => {}
    }
    let resolved = fs_err::canonicalize(root)?;
    private_dir(&resolved)?;
    Ok(resolved)
}

/// Create `dir` and its missing parents `0700` (the umask can only take
/// bits away), for writes that may come before [`Cache::open_cold`] checks
/// the cache, so that they never leave a directory it would refuse.
pub fn create_private_dirs(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| Error::io(format!("cannot create `{}`: {e}", dir.display())))
}

/// Check one directory (or create it `0700`, umask-independent).
fn private_dir(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) => check_private(p, &m, "cache directory"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            match b.create(p) {
                Ok(()) => {
                    // The umask may have taken bits from 0700 (never added).
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o700))?;
                    }
                    Ok(())
                }
                // A racing launch made it: check theirs like any other.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let m = fs_err::symlink_metadata(p)?;
                    check_private(p, &m, "cache directory")
                }
                Err(e) => Err(Error::io(format!("cannot create `{}`: {e}", p.display()))),
            }
        }
        Err(e) => Err(Error::io(format!("cannot inspect `{}`: {e}", p.display()))),
    }
}

/// The rule, from one `lstat`: not a symlink, owned by this user, not
/// writable by group or others. (`what` names it in the message.)
fn check_private(p: &Path, m: &std::fs::Metadata, what: &str) -> Result<()> {
    let shown = p.display();
    if m.file_type().is_symlink() {
        return Err(Error::io(format!(
            "the {what} `{shown}` is a symbolic link: safex does not follow links inside its cache"
        ))
        .with_hint(format!(
            "remove it (`rm {shown}`); safex recreates it on the next launch"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = current_uid();
        if m.uid() != me {
            return Err(Error::io(format!(
                "the {what} `{shown}` is owned by uid {}, not by you (uid {me}): another user could change what safex runs",
                m.uid()
            ))
            .with_hint(format!(
                "remove it (`rm -rf {shown}`; it may need that user or root), or use a cache of your own (`SAFEX_CACHE_DIR`)"
            )));
        }
        let mode = m.mode() & 0o7777;
        if mode & 0o022 != 0 {
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "its group and all users",
                (true, false) => "its group",
                _ => "all users",
            };
            return Err(Error::io(format!(
                "the {what} `{shown}` can be written by {who} (mode {mode:04o}): another user could change what safex runs"
            ))
            .with_hint(format!(
                "`chmod go-w {shown}` if you made it so; if you did not, remove it (`rm -rf {shown}`)"
            )));
        }
    }
    if what == "cache directory" && !m.is_dir() {
        return Err(
            Error::io(format!("the {what} `{shown}` is not a directory"))
                .with_hint(format!("remove it (`rm {shown}`); safex recreates it")),
        );
    }
    Ok(())
}

#[cfg(unix)]
fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Said when a damaged environment was replaced (both ecosystems).
pub fn repaired_note(dir: &std::path::Path) -> String {
    format!(
        "note: the environment `{}` was damaged (its completion marker was missing, damaged or unreadable): moved it aside and rebuilt it from verified archives",
        dir.display()
    )
}

#[cfg(test)]
mod private_tests {
    use super::*;

    #[test]
    fn staging_names_give_their_pid() {
        assert_eq!(
            staging_owner("env-4242-1764636000000000000-0"),
            Some((4242, 1764636000000000000))
        );
        assert_eq!(
            staging_owner("dl-7-1764636000000000000"),
            Some((7, 1764636000000000000))
        );
        assert_eq!(
            staging_owner("python-for-99-1764636000000000000"),
            Some((99, 1764636000000000000))
        );
        assert_eq!(staging_owner("somebody-elses-file"), None);
        assert_eq!(staging_owner("env-12-34-0"), None);
    }

    #[test]
    fn own_pid_is_alive_and_a_reaped_child_is_not() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }
}
