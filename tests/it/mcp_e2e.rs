//! End to end over MCP: each server is started exactly as an MCP client
//! config starts it and must answer a JSON-RPC `initialize` on stdout, with
//! stdout carrying nothing but the protocol ([`exchange`]).
//!
//! - A fixture server (a tiny stdio MCP server in plain Node): a Claude
//!   Desktop config with an unpinned `npx -y @modelcontextprotocol/server-memory`
//!   entry is pinned and locked by `safex mcp pin --write` against the test
//!   registry, then the rewritten command is started with only `HOME`,
//!   `LOGNAME`, `PATH`, `SHELL`, `TERM`, `USER` (plus the test's `SAFEX_*`
//!   settings and the entry's own `env`), without touching the registry
//!   again.
//! - Real npm servers (`safex npx -y <name>@<version> ...`), resolved through
//!   a local Verdaccio that proxies this machine's npm registry, then
//!   launched again offline from the cache and the lockfile.
//! - Real Python servers (`safex uvx <name>==<version> ...`), resolved from a
//!   local pypiserver that serves the real wheels of the servers and all
//!   their dependencies (fetched once per machine with this machine's pip
//!   configuration), then launched again offline with the index gone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::env::{TestEnv, read_lock, stderr, stdout};
use crate::support::fixture::{FixtureRegistry, Pkg};
use crate::support::mcp::exchange;
use crate::support::pypiserver::{
    PypiServer, download_wheels, isolated_pip, locked_pypi_tree, python_program, venv_bin,
};
use crate::support::verdaccio::{Options, Verdaccio, locked_tree, upstream_registry};

// ---------------------------------------------------------------------------
// A fixture server, pinned from a client config
// ---------------------------------------------------------------------------

const NAME: &str = "@modelcontextprotocol/server-memory";
const VERSION: &str = "2026.1.26";

/// Answers `initialize` (and nothing else) with a valid result.
const SERVER_JS: &str = r#"#!/usr/bin/env node
const readline = require('readline');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch (e) { return; }
  if (msg.method === 'initialize') {
    const result = {
      protocolVersion: msg.params.protocolVersion,
      capabilities: { tools: {} },
      serverInfo: { name: 'memory-fixture', version: '2026.1.26' },
    };
    process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }) + '\n');
  }
});
"#;

fn desktop_config(home: &Path) -> PathBuf {
    if cfg!(target_os = "macos") {
        home.join("Library/Application Support/Claude/claude_desktop_config.json")
    } else if cfg!(windows) {
        home.join("AppData/Roaming/Claude/claude_desktop_config.json")
    } else {
        home.join(".config/Claude/claude_desktop_config.json")
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[test]
fn pinned_entry_answers_initialize_with_the_clients_minimal_environment() {
    let Some(node) = on_path("node") else {
        eprintln!("skipped: no `node` on PATH");
        return;
    };
    let registry = FixtureRegistry::builder()
        .package(
            Pkg::new(NAME, VERSION)
                .bin("mcp-server-memory", "dist/index.js")
                .file("dist/index.js", SERVER_JS),
        )
        .build();
    let env = TestEnv::new();
    let config = desktop_config(&env.home());
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let memory_file = env.root().join("memory.jsonl");
    std::fs::write(
        &config,
        format!(
            "{{\n  \"mcpServers\": {{\n    \"memory\": {{\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"{NAME}\"],\n      \"env\": {{ \"MEMORY_FILE_PATH\": {} }}\n    }}\n  }}\n}}\n",
            serde_json::to_string(&memory_file.display().to_string()).unwrap()
        ),
    )
    .unwrap();

    let out = registry
        .safex(&env)
        .args(["mcp", "pin", "--write", "--root"])
        .arg(env.home())
        .arg("--baseline")
        .arg(env.root().join("baseline.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pin failed\n--- stdout\n{}\n--- stderr\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!(
            "+      \"args\": [\"npx\", \"-y\", \"{NAME}@{VERSION}\"],"
        )),
        "{}",
        stdout(&out)
    );

    // The entry as the client now reads it.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let entry = &v["mcpServers"]["memory"];
    // The test binary is not on the PATH a GUI client has: its absolute
    // path is written; the registry came from the shell's environment: it
    // is recorded in the entry's `env`.
    assert_eq!(entry["command"], env!("CARGO_BIN_EXE_safex"));
    assert_eq!(
        entry["env"]["SAFEX_NPM_REGISTRY"],
        registry.url(),
        "{entry}"
    );
    let args: Vec<String> = entry["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args, ["npx", "-y", &format!("{NAME}@{VERSION}")]);
    let lock = std::fs::read_to_string(env.lockfile()).unwrap();
    assert!(lock.contains(&format!("\"{NAME}@{VERSION}\"")), "{lock}");

    // Start it as a GUI client would: the entry's command, args and env,
    // over a minimal environment (`node` on PATH; not safex).
    registry.clear_log();
    let path = node.parent().unwrap().to_path_buf();
    let mut cmd = Command::new(entry["command"].as_str().unwrap());
    cmd.args(&args)
        .env_clear()
        .env("HOME", env.home())
        .env("LOGNAME", "tester")
        .env("USER", "tester")
        .env("PATH", &path)
        .env("SHELL", "/bin/sh")
        .env("TERM", "dumb")
        .env("SAFEX_CACHE_DIR", env.cache())
        .env("SAFEX_LOCKFILE", env.lockfile())
        .env("SAFEX_CONFIG", env.root().join("config.toml"))
        .current_dir(env.work());
    for (k, v) in entry["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    let (msg, _) = exchange(cmd, NAME, Duration::from_secs(60), &String::new);
    assert_eq!(msg["id"], 1, "{msg}");
    assert_eq!(msg["result"]["protocolVersion"], "2025-06-18", "{msg}");
    assert_eq!(
        msg["result"]["serverInfo"]["name"], "memory-fixture",
        "{msg}"
    );
    assert_eq!(
        registry.request_lines(),
        Vec::<String>::new(),
        "the pinned, locked launch went to the registry"
    );
}

// ---------------------------------------------------------------------------
// Real servers, cold then offline
// ---------------------------------------------------------------------------

/// Exact versions, current when these tests were written.
const FILESYSTEM: (&str, &str) = ("@modelcontextprotocol/server-filesystem", "2026.8.31");
const MEMORY: (&str, &str) = ("@modelcontextprotocol/server-memory", "2026.8.31");
const EVERYTHING: (&str, &str) = ("@modelcontextprotocol/server-everything", "2026.8.31");
const TIME: (&str, &str) = ("mcp-server-time", "2026.10.19");
const FETCH: (&str, &str) = ("mcp-server-fetch", "2026.10.24");
const GIT: (&str, &str) = ("mcp-server-git", "2026.10.19");

const NPM_COLD_TIMEOUT: Duration = Duration::from_secs(120);
const PYPI_COLD_TIMEOUT: Duration = Duration::from_secs(180);
const WARM_TIMEOUT: Duration = Duration::from_secs(60);

/// One real server as a client config names it.
struct Server {
    name: &'static str,
    version: &'static str,
    /// `name@version` or `name==version`.
    spec: String,
    /// The launcher form with the spec: `npx -y <spec>`, `uvx <spec>`.
    launch: Vec<String>,
    /// The server's own arguments.
    args: Vec<String>,
}

impl Server {
    /// `safex npx -y <name>@<version> <args>`.
    fn npm((name, version): (&'static str, &'static str), args: &[&str]) -> Server {
        let spec = format!("{name}@{version}");
        let launch = vec!["npx".into(), "-y".into(), spec.clone()];
        Server::new(name, version, spec, launch, args)
    }

    /// `safex uvx <name>==<version> <args>`.
    fn pypi((name, version): (&'static str, &'static str), args: &[&str]) -> Server {
        let spec = format!("{name}=={version}");
        let launch = vec!["uvx".into(), spec.clone()];
        Server::new(name, version, spec, launch, args)
    }

    fn new(
        name: &'static str,
        version: &'static str,
        spec: String,
        launch: Vec<String>,
        args: &[&str],
    ) -> Server {
        Server {
            name,
            version,
            spec,
            launch,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `safex <launch> <args>` in `env`.
    fn safex(&self, env: &TestEnv) -> Command {
        let mut cmd = env.safex();
        cmd.args(&self.launch).args(&self.args);
        cmd
    }
}

/// Launch every server with `var` (the registry or index variable) set to
/// `url`, and report how each answered; the times it took.
fn cold(
    env: &TestEnv,
    servers: &[Server],
    (var, url): (&str, &str),
    timeout: Duration,
    context: &dyn Fn() -> String,
) -> Vec<Duration> {
    servers
        .iter()
        .map(|s| {
            let mut cmd = s.safex(env);
            cmd.env(var, url);
            let (msg, took) = exchange(cmd, &s.spec, timeout, context);
            eprintln!(
                "[mcp-e2e] {} cold: initialize answered in {took:.2?} by {} (protocol {})",
                s.spec, msg["result"]["serverInfo"]["name"], msg["result"]["protocolVersion"]
            );
            took
        })
        .collect()
}

/// Launch every server again with `SAFEX_OFFLINE=1`, the registry gone:
/// everything comes from the cache and the lockfile.
fn offline(env: &TestEnv, servers: &[Server], (var, url): (&str, &str), cold: &[Duration]) {
    for (s, cold_took) in servers.iter().zip(cold) {
        let mut cmd = s.safex(env);
        cmd.env(var, url).env("SAFEX_OFFLINE", "1");
        let (_, took) = exchange(cmd, &s.spec, WARM_TIMEOUT, &String::new);
        eprintln!(
            "[mcp-e2e] {} offline: initialize answered in {took:.2?} (cold {cold_took:.2?})",
            s.spec
        );
    }
}

/// How many packages each server's locked tree holds (`None`: not found).
fn report_trees(env: &TestEnv, servers: &[Server], tree: impl Fn(&str, &Server) -> Option<usize>) {
    let lock = read_lock(env);
    for s in servers {
        match tree(&lock, s) {
            Some(n) => eprintln!("[mcp-e2e] {}: {n} packages in its locked tree", s.spec),
            None => eprintln!("[mcp-e2e] {}: no lock entry found", s.spec),
        }
    }
}

#[test]
fn real_mcp_servers_initialize_cold_then_offline() {
    let mut registry = Verdaccio::start(Options::with_uplink(upstream_registry()));
    let env = TestEnv::new();
    let allowed = env.root().join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::write(allowed.join("hello.txt"), "hello\n").unwrap();
    let servers = [
        Server::npm(FILESYSTEM, &[&allowed.to_string_lossy()]),
        Server::npm(MEMORY, &[]),
        Server::npm(EVERYTHING, &["stdio"]),
    ];
    let url = registry.url();
    let at = ("SAFEX_NPM_REGISTRY", url.as_str());
    let took = cold(&env, &servers, at, NPM_COLD_TIMEOUT, &|| registry.logs());
    report_trees(&env, &servers, |lock, s| {
        locked_tree(lock, s.name, s.version).map(|t| t.len())
    });
    registry.stop();
    offline(&env, &servers, at, &took);
}

fn python_servers() -> [Server; 3] {
    [
        // No `/etc/localtime` in many containers: name the zone.
        Server::pypi(TIME, &["--local-timezone", "UTC"]),
        Server::pypi(FETCH, &[]),
        Server::pypi(GIT, &[]),
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
        download_wheels(&[&s.spec], packages.path());
    }
    let wheels = std::fs::read_dir(packages.path()).unwrap().count();
    eprintln!("[mcp-e2e] serving {wheels} wheels");
    packages
}

/// The harness on its own (no safex): the wheelhouse is complete, so a
/// plain `pip install` from the local index gets every server, and each
/// answers `initialize` when run straight from that venv.
#[test]
fn harness_wheelhouse_installs_and_servers_answer() {
    let servers = python_servers();
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
        .args(servers.iter().map(|s| &s.spec))
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
        let (msg, took) = exchange(cmd, &s.spec, WARM_TIMEOUT, &String::new);
        eprintln!(
            "[mcp-e2e] {} from a pip venv: initialize answered in {took:.2?} by {}",
            s.spec, msg["result"]["serverInfo"]["name"]
        );
    }
}

#[test]
fn real_python_mcp_servers_initialize_cold_then_offline() {
    let servers = python_servers();
    let packages = wheel_dir(&servers);
    let mut index = PypiServer::start(packages.path(), None);
    let env = TestEnv::new();
    let url = index.index_url();
    let at = ("SAFEX_PYPI_INDEX", url.as_str());
    let took = cold(&env, &servers, at, PYPI_COLD_TIMEOUT, &|| index.logs());
    report_trees(&env, &servers, |lock, s| {
        locked_pypi_tree(lock, s.name, s.version).map(|t| t.len())
    });
    index.stop();
    offline(&env, &servers, at, &took);
}
