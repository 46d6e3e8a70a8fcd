//! End to end: a Claude Desktop config in a temporary home with an unpinned
//! `npx -y @modelcontextprotocol/server-memory` entry; `safex mcp pin
//! --write` pins and locks it against the test registry; then the rewritten
//! command is started exactly as the client would start it, with only
//! `HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`, `USER` (plus the test's
//! `SAFEX_*` settings and the entry's own `env`), and must answer a real MCP
//! `initialize` request on stdout, without touching the registry again.
//!
//! The package is a fixture: a tiny stdio MCP server in plain Node.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::env::{TestEnv, stderr, stdout};
use crate::support::fixture::{FixtureRegistry, Pkg};

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

const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","#,
    r#""capabilities":{},"clientInfo":{"name":"safex-test","version":"0"}}}"#,
    "\n"
);

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
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the rewritten command");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(INITIALIZE.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let out_pipe = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out_pipe).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60));
    drop(stdin);
    let _ = child.kill();
    let done = child.wait_with_output().unwrap();
    let line =
        line.unwrap_or_else(|_| panic!("no answer within 60 s\n--- stderr\n{}", stderr(&done)));
    let msg: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON-RPC ({e}): {line:?}\n--- stderr\n{}",
            stderr(&done)
        )
    });
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
