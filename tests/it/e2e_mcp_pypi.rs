//! End to end: real Python MCP servers, exactly as an MCP client config
//! launches them (`safex uvx <name>==<version> ...` with a minimal
//! environment), resolved from a local pypiserver that serves the real
//! wheels of the servers and all their dependencies (fetched once per
//! machine with this machine's pip configuration), then launched again
//! offline from the cache and the lockfile with the index gone.
//!
//! Each server must answer a JSON-RPC `initialize` on stdout, and stdout must
//! carry nothing but the protocol.

use std::process::Command;
use std::time::Duration;

use crate::support::env::{TestEnv, read_lock};
use crate::support::mcp::exchange;
use crate::support::pypiserver::{
    PypiServer, download_wheels, isolated_pip, locked_pypi_tree, python_program, venv_bin,
};

/// Exact versions, current when this test was written.
const TIME: (&str, &str) = ("mcp-server-time", "2026.10.19");
const FETCH: (&str, &str) = ("mcp-server-fetch", "2026.10.24");
const GIT: (&str, &str) = ("mcp-server-git", "2026.10.19");

const COLD_TIMEOUT: Duration = Duration::from_secs(180);
const WARM_TIMEOUT: Duration = Duration::from_secs(60);

struct Server {
    name: &'static str,
    version: &'static str,
    args: Vec<String>,
}

impl Server {
    fn new((name, version): (&'static str, &'static str), args: &[&str]) -> Server {
        Server {
            name,
            version,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }
    fn spec(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

/// Start `safex uvx <spec> <args>`, send `initialize`, and wait for the
/// answer. Returns the answer and the time it took. Panics (with safex's
/// stderr and `context`) on a timeout, an early exit, or a stdout line that
/// is not JSON.
fn initialize(
    env: &TestEnv,
    server: &Server,
    extra_env: &[(&str, &str)],
    timeout: Duration,
    context: &dyn Fn() -> String,
) -> (serde_json::Value, Duration) {
    let spec = server.spec();
    let mut cmd = env.safex();
    cmd.args(["uvx", &spec]).args(&server.args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    exchange(cmd, &spec, timeout, context)
}

fn servers() -> [Server; 3] {
    [
        // No `/etc/localtime` in many containers: name the zone.
        Server::new(TIME, &["--local-timezone", "UTC"]),
        Server::new(FETCH, &[]),
        Server::new(GIT, &[]),
    ]
}

/// Each server's wheels as pip picks them for it alone, all in one
/// directory for one index.
fn wheel_dir(servers: &[Server]) -> tempfile::TempDir {
    let packages = tempfile::Builder::new()
        .prefix("safex-pypi-wheels-")
        .tempdir()
        .unwrap();
    for s in servers {
        download_wheels(&[&s.spec()], packages.path());
    }
    let wheels = std::fs::read_dir(packages.path()).unwrap().count();
    eprintln!("[e2e-pypi] serving {wheels} wheels");
    packages
}

/// The harness on its own (no safex): the wheelhouse is complete, so a
/// plain `pip install` from the local index gets every server, and each
/// answers `initialize` when run straight from that venv.
#[test]
fn harness_wheelhouse_installs_and_servers_answer() {
    let servers = servers();
    let packages = wheel_dir(&servers);
    let index = PypiServer::start(packages.path(), None);
    let work = tempfile::tempdir().unwrap();
    let venv = work.path().join("venv");
    let o = Command::new(python_program())
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(o.status.success(), "python3 -m venv: {o:?}");
    let o = isolated_pip(&venv_bin(&venv, "python"), work.path())
        .args([
            "install",
            "--only-binary=:all:",
            "--index-url",
            &index.index_url(),
        ])
        .args(servers.iter().map(Server::spec))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pip install from the local index\n--- stdout\n{}\n--- stderr\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        index.logs()
    );
    for s in &servers {
        let mut cmd = Command::new(venv_bin(&venv, s.name));
        cmd.args(&s.args)
            .env_clear()
            .env("HOME", work.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        let (msg, took) = exchange(cmd, &s.spec(), WARM_TIMEOUT, &String::new);
        eprintln!(
            "[e2e-pypi] {} from a pip venv: initialize answered in {took:.2?} by {}",
            s.spec(),
            msg["result"]["serverInfo"]["name"]
        );
    }
}

#[test]
fn real_python_mcp_servers_initialize_cold_then_offline() {
    let servers = servers();
    let packages = wheel_dir(&servers);
    let mut index = PypiServer::start(packages.path(), None);
    let env = TestEnv::new();
    let url = index.index_url();

    let mut cold = Vec::new();
    for s in &servers {
        let (msg, took) = initialize(
            &env,
            s,
            &[("SAFEX_PYPI_INDEX", &url)],
            COLD_TIMEOUT,
            &|| index.logs(),
        );
        eprintln!(
            "[e2e-pypi] {} cold: initialize answered in {took:.2?} by {} (protocol {})",
            s.spec(),
            msg["result"]["serverInfo"]["name"],
            msg["result"]["protocolVersion"]
        );
        cold.push(took);
    }

    let lock = read_lock(&env);
    for s in &servers {
        match locked_pypi_tree(&lock, s.name, s.version) {
            Some(tree) => eprintln!(
                "[e2e-pypi] {}: {} packages in its locked tree",
                s.spec(),
                tree.len()
            ),
            None => eprintln!("[e2e-pypi] {}: no [[pypi]] entry found", s.spec()),
        }
    }

    // No index at all from here on: everything comes from cache and lock.
    index.stop();
    for (s, cold_took) in servers.iter().zip(&cold) {
        let (_, took) = initialize(
            &env,
            s,
            &[("SAFEX_PYPI_INDEX", &url), ("SAFEX_OFFLINE", "1")],
            WARM_TIMEOUT,
            &String::new,
        );
        eprintln!(
            "[e2e-pypi] {} offline: initialize answered in {took:.2?} (cold {cold_took:.2?})",
            s.spec()
        );
    }
}
