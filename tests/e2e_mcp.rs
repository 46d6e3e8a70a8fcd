//! End to end: real MCP servers, exactly as an MCP client config launches
//! them (`safex npx -y <name>@<version> ...` with a minimal environment),
//! resolved through a local Verdaccio that proxies this machine's npm
//! registry, then launched again offline from the cache and the lockfile.
//!
//! Each server must answer a JSON-RPC `initialize` on stdout, and stdout must
//! carry nothing but the protocol.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::env::TestEnv;
use support::verdaccio::{Options, Verdaccio, locked_tree, upstream_registry};

/// Exact versions, current when this test was written.
const FILESYSTEM: (&str, &str) = ("@modelcontextprotocol/server-filesystem", "2026.8.31");
const MEMORY: (&str, &str) = ("@modelcontextprotocol/server-memory", "2026.8.31");
const EVERYTHING: (&str, &str) = ("@modelcontextprotocol/server-everything", "2026.8.31");

const COLD_TIMEOUT: Duration = Duration::from_secs(120);
const WARM_TIMEOUT: Duration = Duration::from_secs(60);

const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","#,
    r#""capabilities":{},"clientInfo":{"name":"safex-test","version":"0"}}}"#,
    "\n"
);

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
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn safex");

    let (err_tx, err_rx) = mpsc::channel::<String>();
    let mut err_pipe = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        let _ = err_tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    let (line_tx, line_rx) = mpsc::channel::<Option<String>>();
    let out_pipe = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out_pipe).lines() {
            match line {
                Ok(l) => {
                    if line_tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = line_tx.send(None);
    });

    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(INITIALIZE.as_bytes())
        .expect("write initialize");
    stdin.flush().unwrap();

    let deadline = started + timeout;
    let mut seen = Vec::new();
    let outcome: Result<serde_json::Value, String> = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(Some(line)) => {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(msg) if msg.get("id") == Some(&serde_json::json!(1)) => break Ok(msg),
                    Ok(_) => seen.push(line),
                    Err(_) => {
                        break Err(format!(
                            "stdout carried a line that is not JSON-RPC: {line:?}"
                        ));
                    }
                }
            }
            Ok(None) => {
                break Err(format!(
                    "stdout closed before the answer (exit: {:?})",
                    child.wait().ok()
                ));
            }
            Err(_) => break Err(format!("no answer to initialize within {timeout:?}")),
        }
    };
    let elapsed = started.elapsed();
    drop(stdin);
    stop(&mut child);
    let stderr = {
        let _ = err_thread.join();
        err_rx.try_recv().unwrap_or_default()
    };
    match outcome {
        Ok(msg) => {
            let result = &msg["result"];
            assert!(
                result["serverInfo"]["name"].is_string() && result["protocolVersion"].is_string(),
                "{spec}: initialize answer lacks result.serverInfo.name or result.protocolVersion: {msg}\n--- stderr\n{stderr}"
            );
            (msg, elapsed)
        }
        Err(why) => panic!(
            "{spec}: {why}\n--- other stdout lines\n{}\n--- safex stderr\n{stderr}\n{}",
            seen.join("\n"),
            context()
        ),
    }
}

fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
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

    let lock = std::fs::read_to_string(env.lockfile()).unwrap_or_else(|e| {
        panic!(
            "no lockfile at {} after three launches: {e}",
            env.lockfile().display()
        )
    });
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
