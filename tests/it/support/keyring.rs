//! A real Secret Service for the tests: a private D-Bus session bus and
//! GNOME Keyring's daemon on it, unlocked with a test password, started
//! before first use (so D-Bus activation never starts a second daemon that
//! would want a display). The Debian packages it needs (`dbus`,
//! `gnome-keyring`, `libsecret-tools` for an independent `secret-tool`
//! check) are installed on first use when missing and the tests run as
//! root, as on a fresh CI machine; otherwise the test fails with the reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TOOLS: &[(&str, &str)] = &[
    ("dbus-daemon", "dbus"),
    ("dbus-send", "dbus"),
    ("gnome-keyring-daemon", "gnome-keyring"),
    ("secret-tool", "libsecret-tools"),
];

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

static INSTALL: Mutex<bool> = Mutex::new(false);

/// Install the missing Debian packages (once per test process).
fn ensure_tools() {
    let mut done = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(bin, _)| !on_path(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        assert!(
            crate::support::env::is_root(),
            "the Secret Service tests need {missing:?} (Debian packages) and cannot install them without root: `apt-get install {}`",
            missing.join(" ")
        );
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .expect("run apt-get")
        };
        let mut out = install();
        if !out.status.success() {
            let _ = Command::new("apt-get").args(["update", "-q"]).output();
            out = install();
        }
        assert!(
            out.status.success(),
            "cannot install {missing:?} for the Secret Service tests:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    *done = true;
}

/// A running session bus with an unlocked GNOME Keyring on it; both are
/// stopped (by their PIDs) when dropped.
pub struct Keyring {
    _dir: tempfile::TempDir,
    runtime: PathBuf,
    address: String,
    bus: Child,
    daemon: Child,
}

impl Keyring {
    /// Start both for a user whose home is `home`.
    pub fn start(home: &Path) -> Keyring {
        ensure_tools();
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let socket = dir.path().join("bus");
        let address = format!("unix:path={}", socket.display());
        let bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dbus-daemon did not create its socket `{}`",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets", "--foreground"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gnome-keyring-daemon");
        {
            use std::io::Write;
            let mut stdin = daemon.stdin.take().unwrap();
            stdin.write_all(b"test-keyring-password").unwrap();
        }
        let mut k = Keyring {
            _dir: dir,
            runtime,
            address,
            bus,
            daemon,
        };
        let start = Instant::now();
        while !k.secrets_on_bus() {
            if let Ok(Some(status)) = k.daemon.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = k.daemon.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "gnome-keyring-daemon exited ({status}) before `org.freedesktop.secrets` was on the bus:\n{err}"
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "`org.freedesktop.secrets` is not on the test bus after 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        k
    }

    fn secrets_on_bus(&self) -> bool {
        Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/",
                "org.freedesktop.DBus.ListNames",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains("\"org.freedesktop.secrets\"")
            })
    }

    /// Give `cmd` this session (as a desktop login would).
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_RUNTIME_DIR", &self.runtime)
    }

    /// What `secret-tool` (libsecret, not safex) finds under `name`.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", "safex", "username", name])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("run secret-tool");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        for c in [&mut self.daemon, &mut self.bus] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
