//! End to end: real MCP servers, exactly as an MCP client config launches
//! them (`safex npx -y <name>@<version> ...` with a minimal environment),
//! resolved through a local Verdaccio that proxies this machine's npm
//! registry, then launched again offline from the cache and the lockfile.
//!
//! Each server must answer a JSON-RPC `initialize` on stdout, and stdout must
//! carry nothing but the protocol.

use std::time::Duration;

use crate::support::env::{TestEnv, read_lock};
use crate::support::mcp::exchange;
use crate::support::verdaccio::{Options, Verdaccio, locked_tree, upstream_registry};

/// Exact versions, current when this test was written.
const FILESYSTEM: (&str, &str) = ("@modelcontextprotocol/server-filesystem", "2026.8.31");
const MEMORY: (&str, &str) = ("@modelcontextprotocol/server-memory", "2026.8.31");
const EVERYTHING: (&str, &str) = ("@modelcontextprotocol/server-everything", "2026.8.31");

const COLD_TIMEOUT: Duration = Duration::from_secs(120);
const WARM_TIMEOUT: Duration = Duration::from_secs(60);

struct Server {
    name: &'static str,
    version: &'static str,
    args: Vec<String>,
}

impl Server {
    fn spec(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Start `safex npx -y <spec> <args>`, send `initialize`, and wait for the
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
    cmd.args(["npx", "-y", &spec]).args(&server.args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    exchange(cmd, &spec, timeout, context)
}

#[test]
fn real_mcp_servers_initialize_cold_then_offline() {
    let mut registry = Verdaccio::start(Options::with_uplink(upstream_registry()));
    let env = TestEnv::new();
    let allowed = env.root().join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::write(allowed.join("hello.txt"), "hello\n").unwrap();

    let servers = [
        Server {
            name: FILESYSTEM.0,
            version: FILESYSTEM.1,
            args: vec![allowed.to_string_lossy().into_owned()],
        },
        Server {
            name: MEMORY.0,
            version: MEMORY.1,
            args: vec![],
        },
        Server {
            name: EVERYTHING.0,
            version: EVERYTHING.1,
            args: vec!["stdio".into()],
        },
    ];
    let url = registry.url();

    let mut cold = Vec::new();
    for s in &servers {
        let (msg, took) = initialize(
            &env,
            s,
            &[("SAFEX_NPM_REGISTRY", &url)],
            COLD_TIMEOUT,
            &|| registry.logs(),
        );
        eprintln!(
            "[e2e] {} cold: initialize answered in {took:.2?} by {} (protocol {})",
            s.spec(),
            msg["result"]["serverInfo"]["name"],
            msg["result"]["protocolVersion"]
        );
        cold.push(took);
    }

    let lock = read_lock(&env);
    for s in &servers {
        match locked_tree(&lock, s.name, s.version) {
            Some(tree) => eprintln!(
                "[e2e] {}: {} packages in its locked tree",
                s.spec(),
                tree.len()
            ),
            None => eprintln!(
                "[e2e] {}: no lock entry found by the generic scan",
                s.spec()
            ),
        }
    }

    // No registry at all from here on: everything comes from cache and lock.
    registry.stop();
    for (s, cold_took) in servers.iter().zip(&cold) {
        let (_, took) = initialize(
            &env,
            s,
            &[("SAFEX_NPM_REGISTRY", &url), ("SAFEX_OFFLINE", "1")],
            WARM_TIMEOUT,
            &String::new,
        );
        eprintln!(
            "[e2e] {} offline: initialize answered in {took:.2?} (cold {cold_took:.2?})",
            s.spec()
        );
    }
}
