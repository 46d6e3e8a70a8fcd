//! An isolated world for one run of the real `safex` binary: a temp HOME,
//! cache and lockfile, and an environment with nothing of the developer's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["home", "cache", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        TestEnv { dir }
    }
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    pub fn lockfile(&self) -> PathBuf {
        self.dir.path().join("safex.lock")
    }
    /// Where launches are logged (safex writes it; tests may read it).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// `safex` with a minimal environment, as an MCP client would start it:
    /// HOME, PATH, and safex's own settings pointing into the temp dir.
    /// A launched program runs in the default sandbox plus one grant: it
    /// may write the test's root, where fixture programs leave the
    /// markers that prove they ran (or did not). The sandbox's own tests
    /// use [`TestEnv::safex_confined`].
    pub fn safex(&self) -> Command {
        let mut cmd = self.safex_confined();
        cmd.arg("--allow-write").arg(self.root());
        cmd
    }

    /// `safex` as [`TestEnv::safex`], with only the sandbox's default grants.
    pub fn safex_confined(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_safex"));
        cmd.env_clear()
            .env("HOME", self.home())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SAFEX_CACHE_DIR", self.cache())
            .env("SAFEX_LOCKFILE", self.lockfile())
            .env("SAFEX_CONFIG", self.root().join("config.toml"))
            .env("SAFEX_AUDIT_LOG", self.audit_log())
            .env("NO_COLOR", "1")
            .current_dir(self.work());
        cmd
    }

    /// Every path under the temp root other than the cache and the lockfile
    /// (and its lock/temp siblings): what safex must never write.
    pub fn written_outside_cache(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(self.root(), &mut out);
        out.retain(|p| {
            !p.starts_with(self.cache())
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("safex.lock"))
                && !p.starts_with(self.home().join(".npmrc"))
                && *p != self.audit_log()
        });
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The lockfile's text; panics naming it when there is none.
pub fn read_lock(env: &TestEnv) -> String {
    std::fs::read_to_string(env.lockfile())
        .unwrap_or_else(|e| panic!("no lockfile at {}: {e}", env.lockfile().display()))
}

/// Every regular file under `dir` (symlinks and other kinds left out).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.retain(|p| p.symlink_metadata().is_ok_and(|m| m.is_file()));
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An executable shell script at `path` (parents created): `body` after
/// `#!/bin/sh`. Fake runtimes (a `node` of some version, a failing shim).
pub fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether the tests run as root (needed to run safex as another user).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
