//! Real MCP servers inside safex's default sandbox (Linux: Landlock and
//! seccomp), and proof that the sandbox really confines them.
//!
//! Each test resolves its servers once, cold, from a local registry (a
//! Verdaccio that proxies this machine's npm registry; a pypiserver filled
//! with the real wheels), stops the registry, then speaks MCP to them
//! offline through the real binary, as a client would.
//!
//! Two kinds of assertion, kept apart:
//! - functional: the servers answer, their tools work on the files they
//!   were given (plain `assert!`, the test stops at the first);
//! - the sandbox contract ([`Contract`]): the launch line of the audit log
//!   says which layers were applied, the `--allow-write` / `--no-sandbox`
//!   options are taken, and what the server was not given it cannot read or
//!   write. Every breach is collected and all are reported together at the
//!   end, so one run shows the whole state of the sandbox.
//!
//! The denials are observed through the servers' own tools, never through
//! a helper program: `server-memory` reads and writes whatever file
//! `MEMORY_FILE_PATH` names, which makes it a faithful probe of what a real
//! server may touch. The write and HOME denials each have a `--no-sandbox`
//! control showing the same call succeeds (or leaks) without the sandbox,
//! so the failure seen is the sandbox's and not the server's (the package
//! tree's has none: unsandboxed, the server would write into the cache).
//!
//! Every launch is [`TestEnv::safex_confined`]: the default grants only
//! ([`TestEnv::safex`] also grants the whole test root, HOME and the cache
//! included, which would open everything these tests prove closed).
//!
//! On a machine without Landlock the tests say so on stderr and return.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::env::{TestEnv, files_under};
use crate::support::mcp::{Client, exchange};
use crate::support::pypiserver::{PypiServer, download_wheels};
use crate::support::verdaccio::{Options, Verdaccio, upstream_registry};

/// The versions `mcp_e2e` uses.
const FILESYSTEM: &str = "@modelcontextprotocol/server-filesystem@2026.8.31";
const MEMORY: &str = "@modelcontextprotocol/server-memory@2026.8.31";
const TIME: &str = "mcp-server-time==2026.10.19";

const NPM_COLD_TIMEOUT: Duration = Duration::from_secs(180);
const PYPI_COLD_TIMEOUT: Duration = Duration::from_secs(180);

/// What the fake private key holds: one line of `server-memory`'s own
/// format, so that a server that can read the file shows the marker in its
/// `read_graph` answer (the `--no-sandbox` control), and one that cannot,
/// does not.
const KEY_MARKER: &str = "FAKE-SSH-PRIVATE-KEY-7f3a9c";

// ---------------------------------------------------------------------------
// Is there a sandbox to test?
// ---------------------------------------------------------------------------

use crate::support::sandbox::require_sandbox;

// ---------------------------------------------------------------------------
// The sandbox contract, checked softly
// ---------------------------------------------------------------------------

/// What a launch line should say of the sandbox.
#[derive(Clone, Copy)]
enum Mode {
    On,
    Off,
}

/// The sandbox's promises, checked one by one; the breaches are reported
/// together by [`Contract::verify`].
#[derive(Default)]
struct Contract {
    breaches: Vec<String>,
    kept: usize,
}

impl Contract {
    fn check(&mut self, kept: bool, what: impl Display) {
        if kept {
            self.kept += 1;
            eprintln!("[sandbox] ok     {what}");
        } else {
            eprintln!("[sandbox] BROKEN {what}");
            self.breaches.push(what.to_string());
        }
    }

    fn breach(&mut self, what: impl Display) {
        self.check(false, what);
    }

    /// The launch line of `log` records the sandbox: on, with Landlock and
    /// seccomp applied, or off, with nothing applied.
    fn launch_line(&mut self, session: &str, log: &Path, mode: Mode) {
        let launches = audit(log, "launch");
        let Some(line) = launches.last() else {
            self.breach(format!(
                "{session}: no launch line in {} (a launch is always logged)",
                log.display()
            ));
            return;
        };
        let sandbox = &line["sandbox"];
        let applied: Vec<&str> = sandbox["applied"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let (kept, want) = match mode {
            Mode::On => (
                sandbox["mode"] == "on"
                    && applied.contains(&"landlock")
                    && applied.contains(&"seccomp"),
                r#"{"mode": "on", "applied": [.. "landlock", "seccomp" ..]}"#,
            ),
            Mode::Off => (
                sandbox["mode"] == "off"
                    && sandbox["applied"].as_array().is_some_and(|a| a.is_empty()),
                r#"{"mode": "off", "applied": []}"#,
            ),
        };
        self.check(
            kept,
            format!("{session}: launch line has sandbox {want}; it has `sandbox`: {sandbox}"),
        );
    }

    /// Panics listing every breach.
    fn verify(self, test: &str) {
        assert!(
            self.breaches.is_empty(),
            "{test}: the sandbox contract is broken in {} of {} checks:\n  - {}",
            self.breaches.len(),
            self.breaches.len() + self.kept,
            self.breaches.join("\n  - ")
        );
        eprintln!("[sandbox] {test}: all {} sandbox checks kept", self.kept);
    }
}

fn audit(log: &Path, event: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}

// ---------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------

/// One offline session: `safex -q <launcher> <sandbox options> <spec> <args>`,
/// its own audit log.
struct Launch<'a> {
    /// `["npx", "-y"]` or `["uvx"]`.
    launcher: &'a [&'a str],
    spec: &'a str,
    /// `--allow-write DIR`, `--no-sandbox`: among the launcher's options,
    /// before the spec.
    sandbox: Vec<String>,
    args: Vec<String>,
    env: Vec<(&'a str, String)>,
    /// The audit log's file name under the test's root.
    log: &'a str,
}

impl<'a> Launch<'a> {
    /// `safex -q npx -y <spec>`.
    fn npm(spec: &'a str, log: &'a str) -> Self {
        Launch::new(&["npx", "-y"], spec, log)
    }

    /// `safex -q uvx <spec>`.
    fn pypi(spec: &'a str, log: &'a str) -> Self {
        Launch::new(&["uvx"], spec, log)
    }

    fn new(launcher: &'a [&'a str], spec: &'a str, log: &'a str) -> Self {
        Launch {
            launcher,
            spec,
            sandbox: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            log,
        }
    }

    fn sandbox(mut self, opts: &[&str]) -> Self {
        self.sandbox.extend(opts.iter().map(|s| s.to_string()));
        self
    }

    fn allow_write(self, dir: &Path) -> Self {
        self.sandbox(&["--allow-write", &dir.to_string_lossy()])
    }

    fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }

    fn env(mut self, k: &'a str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.env
            .push((k, v.as_ref().to_string_lossy().into_owned()));
        self
    }

    fn command(&self, env: &TestEnv) -> Command {
        let mut cmd = env.safex_confined();
        cmd.env("SAFEX_OFFLINE", "1")
            .env("SAFEX_AUDIT_LOG", env.root().join(self.log))
            .arg("-q")
            .args(self.launcher)
            .args(&self.sandbox)
            .arg(self.spec)
            .args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Start the session and initialize it; `Err` (safex's exit and stderr)
    /// when safex ends before answering, e.g. refusing an option.
    fn open(&self, env: &TestEnv) -> Result<Session, String> {
        let started = Instant::now();
        let mut c = Client::start(self.command(env));
        c.send(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "safex-test", "version": "0"}}}),
        );
        loop {
            match c.next() {
                Some(v) if v["id"] == 1 && v.get("method").is_none() => {
                    assert!(
                        v["result"]["serverInfo"]["name"].is_string(),
                        "{}: initialize: {v}",
                        self.spec
                    );
                    c.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
                    eprintln!(
                        "[sandbox-mcp] {} {:?}: initialized in {:.2?}",
                        self.spec,
                        self.sandbox,
                        started.elapsed()
                    );
                    return Ok(Session {
                        client: c,
                        next_id: 2,
                        name: format!("{} {}", self.spec, self.sandbox.join(" ")),
                        log: env.root().join(self.log),
                    });
                }
                Some(other) => c.others.push(other),
                None => {
                    let (code, err) = c.wait();
                    return Err(format!("safex exited {code} before answering: {err}"));
                }
            }
        }
    }
}

struct Session {
    client: Client,
    next_id: u64,
    /// The spec and the sandbox options, for messages.
    name: String,
    log: PathBuf,
}

impl Session {
    fn ask(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.client.ask(id, method, params)
    }

    fn tools(&mut self) -> Vec<String> {
        let list = self.ask("tools/list", json!({}));
        list["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: tools/list: {list}", self.name))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.ask("tools/call", json!({"name": tool, "arguments": arguments}))
    }

    /// A successful call's text; panics on an error.
    fn call_ok(&mut self, tool: &str, arguments: Value) -> String {
        let got = self.call(tool, arguments);
        assert!(!failed(&got), "{}: {tool} failed: {got}", self.name);
        text(&got)
    }

    /// Close stdin, wait for safex to exit 0; its stderr.
    fn finish(self) -> String {
        let name = self.name;
        let (code, err) = self.client.finish();
        assert_eq!(code, 0, "{name}: safex exited {code}: {err}");
        err
    }
}

/// A JSON-RPC error, or a tool result flagged `isError`.
fn failed(answer: &Value) -> bool {
    answer.get("error").is_some() || answer["result"]["isError"] == true
}

/// Every text part of a tool result (or the error's message).
fn text(answer: &Value) -> String {
    if let Some(e) = answer.get("error") {
        return e.to_string();
    }
    answer["result"]["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn entity(name: &str) -> Value {
    json!({"entities": [{"name": name, "entityType": "test", "observations": ["made in a sandbox test"]}]})
}

// ---------------------------------------------------------------------------
// npm
// ---------------------------------------------------------------------------

/// `server-filesystem` and `server-memory` in the default sandbox.
///
/// The `allowed` directory is inside HOME (`$HOME/projects/allowed`), next
/// to the denied `$HOME/.ssh`: the usual case (a client gives the server a
/// project of the user's) and the harder one for the sandbox, which must
/// grant a directory given as an argument inside the HOME it otherwise
/// denies. The memory files are outside HOME, under the test's root, so
/// that their denial is about writes not granted, not about HOME.
#[test]
fn npm_servers_work_and_are_confined_in_the_default_sandbox() {
    require_sandbox!("npm_servers_work_and_are_confined_in_the_default_sandbox");
    let started = Instant::now();
    let env = TestEnv::new();
    let home = env.home();
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let key = home.join(".ssh/id_rsa");
    std::fs::write(
        &key,
        format!(
            "{}\n",
            json!({"type": "entity", "name": KEY_MARKER, "entityType": "secret",
                   "observations": ["-----BEGIN OPENSSH PRIVATE KEY----- fake"]})
        ),
    )
    .unwrap();
    let allowed = home.join("projects/allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::write(allowed.join("hello.txt"), "hello from the allowed dir\n").unwrap();

    // Cold, through the registry, once each: the trees and the lockfile.
    let mut registry = Verdaccio::start(Options::with_uplink(upstream_registry()));
    for (spec, args) in [(FILESYSTEM, vec![allowed.clone()]), (MEMORY, vec![])] {
        let mut cold = env.safex_confined();
        cold.env("SAFEX_NPM_REGISTRY", registry.url())
            .env("SAFEX_AUDIT_LOG", env.root().join("cold.log"))
            .args(["-q", "npx", "-y", spec])
            .args(&args);
        let (_, took) = exchange(cold, spec, NPM_COLD_TIMEOUT, &|| registry.logs());
        eprintln!("[sandbox-mcp] {spec} cold: initialize answered in {took:.2?}");
    }
    registry.stop();

    let mut contract = Contract::default();
    filesystem_reads_and_writes_the_directory_it_was_given(&env, &allowed, &mut contract);
    memory_writes_only_where_allowed(&env, &mut contract);
    memory_cannot_read_the_users_home(&env, &key, &mut contract);
    memory_keeps_its_default_file_in_its_state_directory(&env, &mut contract);
    eprintln!(
        "[sandbox-mcp] npm_servers_work_and_are_confined_in_the_default_sandbox took {:.1?}",
        started.elapsed()
    );
    contract.verify("npm_servers_work_and_are_confined_in_the_default_sandbox");
}

/// The directory given as an argument is granted read-write: its file is
/// read, a new one written, both through the server's tools.
fn filesystem_reads_and_writes_the_directory_it_was_given(
    env: &TestEnv,
    allowed: &Path,
    contract: &mut Contract,
) {
    let launch = Launch::npm(FILESYSTEM, "filesystem.log").arg(allowed);
    let mut s = launch.open(env).expect("server-filesystem starts");
    let tools = s.tools();
    // `read_file` is the deprecated name `read_text_file` replaced.
    let read = ["read_text_file", "read_file"]
        .into_iter()
        .find(|t| tools.iter().any(|n| n == t))
        .unwrap_or_else(|| panic!("no read tool in {tools:?}"));
    assert!(tools.iter().any(|n| n == "write_file"), "{tools:?}");
    eprintln!("[sandbox-mcp] server-filesystem tools: {tools:?}; reading with {read}");

    let hello = allowed.join("hello.txt");
    let got = s.call_ok(read, json!({"path": hello}));
    assert!(got.contains("hello from the allowed dir"), "{read}: {got}");

    let new = allowed.join("new.txt");
    let content = "written by server-filesystem inside the sandbox\n";
    s.call_ok("write_file", json!({"path": new, "content": content}));
    assert_eq!(
        std::fs::read_to_string(&new).unwrap_or_else(|e| panic!("{}: {e}", new.display())),
        content
    );
    let log = s.log.clone();
    s.finish();
    contract.launch_line("server-filesystem", &log, Mode::On);
}

/// `MEMORY_FILE_PATH` in a directory given with `--allow-write` works; in
/// one not given, the write is denied (and nothing appears); with
/// `--no-sandbox` the same call works again.
fn memory_writes_only_where_allowed(env: &TestEnv, contract: &mut Contract) {
    let dir = |name: &str| {
        let d = env.root().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };

    // Allowed: the functional case under the sandbox.
    let granted = dir("memory-granted");
    let file = granted.join("memory.json");
    let launch = Launch::npm(MEMORY, "memory-granted.log")
        .allow_write(&granted)
        .env("MEMORY_FILE_PATH", &file);
    match launch.open(env) {
        Ok(mut s) => {
            s.call_ok("create_entities", entity("granted-entity"));
            let graph = s.call_ok("read_graph", json!({}));
            assert!(graph.contains("granted-entity"), "read_graph: {graph}");
            let log = s.log.clone();
            s.finish();
            let on_disk = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(on_disk.contains("granted-entity"), "{on_disk}");
            contract.launch_line("server-memory --allow-write", &log, Mode::On);
        }
        Err(e) => contract.breach(format!("server-memory --allow-write DIR: not started: {e}")),
    }

    // Not allowed: the sandbox's denial, seen on a real server.
    let denied = dir("memory-denied");
    let file = denied.join("memory.json");
    let launch = Launch::npm(MEMORY, "memory-denied.log").env("MEMORY_FILE_PATH", &file);
    let mut s = launch.open(env).expect("server-memory starts");
    let got = s.call("create_entities", entity("denied-entity"));
    let log = s.log.clone();
    let stderr = s.finish();
    contract.check(
        failed(&got),
        format!("server-memory without --allow-write: create_entities fails; it answered {got}"),
    );
    // The error answer names the path; safex says how to allow it.
    contract.check(
        stderr.contains("was denied access to") && stderr.contains("--allow-write"),
        format!("server-memory without --allow-write: a hint on stderr: {stderr}"),
    );
    contract.check(
        !file.exists(),
        format!(
            "server-memory without --allow-write: no {} written",
            file.display()
        ),
    );
    contract.launch_line("server-memory", &log, Mode::On);

    // The control: the same, unsandboxed.
    let open = dir("memory-unsandboxed");
    let file = open.join("memory.json");
    let launch = Launch::npm(MEMORY, "memory-unsandboxed.log")
        .sandbox(&["--no-sandbox"])
        .env("MEMORY_FILE_PATH", &file);
    match launch.open(env) {
        Ok(mut s) => {
            s.call_ok("create_entities", entity("unsandboxed-entity"));
            let log = s.log.clone();
            s.finish();
            assert!(
                std::fs::read_to_string(&file).is_ok_and(|t| t.contains("unsandboxed-entity")),
                "--no-sandbox: {} not written",
                file.display()
            );
            contract.launch_line("server-memory --no-sandbox", &log, Mode::Off);
        }
        Err(e) => contract.breach(format!("server-memory --no-sandbox: not started: {e}")),
    }
}

/// `MEMORY_FILE_PATH=$HOME/.ssh/id_rsa`: `read_graph` reads the file. In the
/// sandbox the key's content must not come back; without it, it does (the
/// control that shows the probe would see a leak).
fn memory_cannot_read_the_users_home(env: &TestEnv, key: &Path, contract: &mut Contract) {
    let launch = Launch::npm(MEMORY, "memory-home.log").env("MEMORY_FILE_PATH", key);
    let mut s = launch.open(env).expect("server-memory starts");
    let got = s.call("read_graph", json!({}));
    let log = s.log.clone();
    s.finish();
    contract.check(
        !got.to_string().contains(KEY_MARKER),
        format!(
            "server-memory cannot read $HOME/.ssh/id_rsa: read_graph answered {}",
            got
        ),
    );
    contract.launch_line("server-memory reading HOME", &log, Mode::On);

    let launch = Launch::npm(MEMORY, "memory-home-unsandboxed.log")
        .sandbox(&["--no-sandbox"])
        .env("MEMORY_FILE_PATH", key);
    match launch.open(env) {
        Ok(mut s) => {
            let got = s.call_ok("read_graph", json!({}));
            s.finish();
            assert!(
                got.contains(KEY_MARKER),
                "--no-sandbox: read_graph did not show the key file, the probe is blind: {got}"
            );
        }
        Err(e) => contract.breach(format!(
            "server-memory --no-sandbox reading HOME: not started: {e}"
        )),
    }
}

/// Without `MEMORY_FILE_PATH`, `server-memory` keeps its graph next to its
/// own code, in the package tree in the cache, which the sandbox does not
/// let it write: safex points the variable into the server's state
/// directory instead, so the default config works and the tree stays as
/// verified.
fn memory_keeps_its_default_file_in_its_state_directory(env: &TestEnv, contract: &mut Contract) {
    let tree = package_tree(env, "@modelcontextprotocol/server-memory");
    let before = files_under(&tree);
    let launch = Launch::npm(MEMORY, "memory-tree.log");
    let mut s = launch.open(env).expect("server-memory starts");
    let got = s.call("create_entities", entity("tree-entity"));
    let graph = s.call("read_graph", serde_json::json!({}));
    let log = s.log.clone();
    s.finish();
    let added: Vec<PathBuf> = files_under(&tree)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    contract.check(
        !failed(&got) && text(&graph).contains("tree-entity"),
        format!("server-memory with its default file: create_entities answered {got}, read_graph {graph}"),
    );
    let state = env
        .home()
        .join(".local/state/safex/servers/npm/@modelcontextprotocol+server-memory/memory.jsonl");
    contract.check(
        state.is_file(),
        format!("the graph is in the state directory: {}", state.display()),
    );
    contract.check(
        added.is_empty(),
        format!(
            "nothing written in the package tree {}: {added:?}",
            tree.display()
        ),
    );
    contract.launch_line("server-memory (default file)", &log, Mode::On);
}

/// The cached tree (the directory holding `node_modules`) that `package`
/// was installed in.
fn package_tree(env: &TestEnv, package: &str) -> PathBuf {
    let manifest = Path::new("node_modules").join(package).join("package.json");
    let found: Vec<PathBuf> = files_under(&env.cache())
        .into_iter()
        .filter(|p| p.ends_with(&manifest))
        .collect();
    assert_eq!(found.len(), 1, "{package} in the cache: {found:?}");
    let mut tree = found[0].as_path();
    while !tree.ends_with("node_modules") {
        tree = tree.parent().unwrap();
    }
    tree.parent().unwrap().to_path_buf()
}

// ---------------------------------------------------------------------------
// PyPI
// ---------------------------------------------------------------------------

/// `mcp-server-time` from its real wheels, answering a tool call inside the
/// default sandbox.
#[test]
fn python_server_works_in_the_default_sandbox() {
    require_sandbox!("python_server_works_in_the_default_sandbox");
    let started = Instant::now();
    let packages = tempfile::Builder::new()
        .prefix("safex-pypi-wheels-")
        .tempdir()
        .unwrap();
    download_wheels(&[TIME], packages.path());
    let mut index = PypiServer::start(packages.path(), None);
    let env = TestEnv::new();
    // No `/etc/localtime` in many containers: name the zone.
    let args = ["--local-timezone", "UTC"];
    let mut cold = env.safex_confined();
    cold.env("SAFEX_PYPI_INDEX", index.index_url())
        .env("SAFEX_AUDIT_LOG", env.root().join("cold.log"))
        .args(["-q", "uvx", TIME])
        .args(args);
    let (_, took) = exchange(cold, TIME, PYPI_COLD_TIMEOUT, &|| index.logs());
    eprintln!("[sandbox-mcp] {TIME} cold: initialize answered in {took:.2?}");
    index.stop();

    let mut contract = Contract::default();
    let launch = args
        .iter()
        .fold(Launch::pypi(TIME, "time.log"), |l, a| l.arg(a));
    let mut s = launch.open(&env).expect("mcp-server-time starts");
    let tools = s.tools();
    assert!(tools.iter().any(|t| t == "get_current_time"), "{tools:?}");
    let got = s.call_ok("get_current_time", json!({"timezone": "UTC"}));
    eprintln!("[sandbox-mcp] get_current_time: {got}");
    let v: Value = serde_json::from_str(&got).unwrap_or_else(|e| panic!("{e}: {got}"));
    assert_eq!(v["timezone"], "UTC", "{got}");
    let datetime = v["datetime"].as_str().unwrap_or_default();
    let b = datetime.as_bytes();
    assert!(
        b.len() >= 19
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[10] == b'T'
            && b[13] == b':',
        "not a datetime: {datetime:?} in {got}"
    );
    let log = s.log.clone();
    s.finish();
    contract.launch_line("mcp-server-time", &log, Mode::On);
    eprintln!(
        "[sandbox-mcp] python_server_works_in_the_default_sandbox took {:.1?}",
        started.elapsed()
    );
    contract.verify("python_server_works_in_the_default_sandbox");
}
