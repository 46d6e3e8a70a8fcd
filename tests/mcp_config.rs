//! `safex mcp scan` and `safex mcp pin` on each client's config format,
//! through the real binary, against the in-process npm registry and PyPI
//! index.
//!
//! Golden files: `tests/fixtures/mcp/<client>/before.*` is laid out in a
//! temporary home at the client's path; `scan.json` is the expected scan of
//! it, and `after.*` the expected file after `pin --write`. `@HOME@` stands
//! for the temporary home in all of them. `SAFEX_UPDATE_GOLDEN=1` rewrites
//! the expected files from the actual output (review the diff!).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::env::{TestEnv, stderr, stdout};
use support::fixture::{FixtureRegistry, Pkg};
use support::pyfixture::{PyIndex, PyPkg, python3};

const NPM: &[(&str, &str)] = &[
    ("@modelcontextprotocol/server-memory", "1.0.0"),
    ("@modelcontextprotocol/server-github", "1.1.0"),
    ("@modelcontextprotocol/server-everything", "3.0.0"),
    ("@modelcontextprotocol/server-brave-search", "0.6.2"),
    ("@modelcontextprotocol/server-postgres", "0.6.2"),
    ("@modelcontextprotocol/server-slack", "0.6.2"),
    ("@upstash/context7-mcp", "1.0.0"),
    ("@upstash/context7-mcp", "2.0.1"),
    ("@playwright/mcp", "0.0.40"),
    ("@playwright/mcp", "0.0.41"),
    ("mcp-remote", "0.1.20"),
    ("@supabase/mcp-server-supabase", "0.5.0"),
];

const PYPI: &[(&str, &str)] = &[
    ("mcp-server-fetch", "2025.1.0"),
    ("mcp-server-time", "2025.2.0"),
    ("mcp-server-git", "0.6.2"),
    ("awslabs.aws-documentation-mcp-server", "1.1.0"),
];

struct World {
    env: TestEnv,
    npm: FixtureRegistry,
    py: PyIndex,
}

impl World {
    fn new() -> World {
        let mut b = FixtureRegistry::builder();
        for (name, version) in NPM {
            b = b.package(Pkg::program(name, version, "console.log('ok')"));
        }
        b = b.package(
            Pkg::program(
                "@modelcontextprotocol/server-filesystem",
                "1.2.0",
                "console.log('ok')",
            )
            .bin("mcp-server-filesystem", "cli.js"),
        );
        let mut p = PyIndex::builder();
        for (name, version) in PYPI {
            p = p.package(PyPkg::program(name, version, "print('ok')"));
        }
        World {
            env: TestEnv::new(),
            npm: b.build(),
            py: p.build(),
        }
    }

    fn home(&self) -> PathBuf {
        self.env.home()
    }

    fn baseline(&self) -> PathBuf {
        self.env.root().join("baseline.json")
    }

    fn safex(&self) -> Command {
        let mut c = self.env.safex();
        c.env("SAFEX_NPM_REGISTRY", self.npm.url())
            .env("SAFEX_PYPI_INDEX", self.py.url());
        if let Some(py) = python3() {
            c.env("SAFEX_PYTHON", py);
        }
        c
    }

    /// `safex mcp ARGS --root <home> --baseline <file>`.
    fn mcp(&self, args: &[&str]) -> Output {
        let out = self
            .safex()
            .arg("mcp")
            .args(args)
            .arg("--root")
            .arg(self.home())
            .arg("--baseline")
            .arg(self.baseline())
            .output()
            .expect("run safex");
        eprintln!("$ safex mcp {}\n{}", args.join(" "), stderr(&out));
        out
    }

    fn place(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.home().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            text.replace("@HOME@", &self.home().display().to_string()),
        )
        .unwrap();
        p
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.home().join(rel))
            .unwrap()
            .replace(&self.home().display().to_string(), "@HOME@")
    }

    fn normalize(&self, s: &str) -> String {
        s.replace(&self.home().display().to_string(), "@HOME@")
    }
}

fn fixture(client: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mcp")
        .join(client)
        .join(file)
}

#[track_caller]
fn golden(path: &Path, actual: &str) {
    if std::env::var_os("SAFEX_UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set SAFEX_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        want == actual,
        "{} differs from the output\n--- expected\n{want}\n--- actual\n{actual}",
        path.display()
    );
}

#[track_caller]
fn code(out: &Output, want: i32) {
    assert_eq!(
        out.status.code(),
        Some(want),
        "exit status\n--- stdout\n{}\n--- stderr\n{}",
        stdout(out),
        stderr(out)
    );
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    v.sort();
    v
}

/// Scan, dry run, write, write again, scan again, for one client.
/// `files`: (fixture suffix after `before`/`after`, path under the home).
fn client(name: &str, files: &[(&str, &str)]) {
    let w = World::new();
    for (suffix, rel) in files {
        let before = std::fs::read_to_string(fixture(name, &format!("before{suffix}"))).unwrap();
        w.place(rel, &before);
    }

    let out = w.mcp(&["scan", "--json"]);
    code(&out, 0);
    golden(&fixture(name, "scan.json"), &w.normalize(&stdout(&out)));

    // A dry run prints a diff and writes nothing: no file, backup or lock.
    let out = w.mcp(&["pin"]);
    code(&out, 0);
    for (suffix, rel) in files {
        let before = std::fs::read_to_string(fixture(name, &format!("before{suffix}"))).unwrap();
        assert_eq!(w.read(rel), before, "the dry run changed {rel}");
        assert!(backups(w.home().join(rel).parent().unwrap()).is_empty());
        let after = std::fs::read_to_string(fixture(name, &format!("after{suffix}"))).ok();
        if after.as_deref() != Some(before.as_str()) {
            assert!(
                stdout(&out).contains(&format!("--- a/~/{rel}\n+++ b/~/{rel}\n@@ ")),
                "no diff for {rel}:\n{}",
                stdout(&out)
            );
        }
    }
    assert!(!w.env.lockfile().exists(), "the dry run wrote the lockfile");

    let out = w.mcp(&["pin", "--write"]);
    code(&out, 0);
    for (suffix, rel) in files {
        golden(&fixture(name, &format!("after{suffix}")), &w.read(rel));
        let before = std::fs::read_to_string(fixture(name, &format!("before{suffix}"))).unwrap();
        let dir = w.home().join(rel);
        let b = backups(dir.parent().unwrap());
        if w.read(rel) != before {
            assert_eq!(b.len(), 1, "one backup next to {rel}: {b:?}");
            assert_eq!(
                w.normalize(&std::fs::read_to_string(&b[0]).unwrap()),
                before
            );
        }
    }

    // Twice changes nothing.
    let out = w.mcp(&["pin", "--write"]);
    code(&out, 0);
    assert_eq!(stdout(&out), "", "the second run printed a diff");
    for (suffix, rel) in files {
        let want = std::fs::read_to_string(fixture(name, &format!("after{suffix}"))).unwrap();
        assert_eq!(w.read(rel), want);
        assert!(backups(w.home().join(rel).parent().unwrap()).len() <= 1);
    }

    // What pin rewrote is now pinned, locked and unchanged since the baseline.
    let out = w.mcp(&["scan", "--json"]);
    code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for s in v["servers"].as_array().unwrap() {
        if s["launcher"]
            .as_str()
            .is_some_and(|l| l.starts_with("safex"))
        {
            for f in s["findings"].as_array().unwrap() {
                let c = f["code"].as_str().unwrap();
                assert!(
                    !matches!(
                        c,
                        "unpinned"
                            | "not-safex"
                            | "not-locked"
                            | "lock-drift"
                            | "changed-server"
                            | "new-server"
                    ),
                    "{} still has `{c}` after pin: {f}",
                    s["server"]
                );
            }
        }
    }
}

#[test]
fn claude_desktop() {
    client(
        "claude-desktop",
        &[(".json", ".config/Claude/claude_desktop_config.json")],
    );
}

#[test]
fn claude_code_user_local_and_project_scopes() {
    client(
        "claude-code",
        &[
            (".claude.json", ".claude.json"),
            (".mcp.json", "work/app/.mcp.json"),
        ],
    );
}

#[test]
fn cursor() {
    client("cursor", &[(".json", ".cursor/mcp.json")]);
}

#[test]
fn vscode_jsonc_with_inputs() {
    client("vscode", &[(".json", ".config/Code/User/mcp.json")]);
}

#[test]
fn windsurf() {
    client(
        "windsurf",
        &[(".json", ".codeium/windsurf/mcp_config.json")],
    );
}

#[test]
fn cline() {
    client(
        "cline",
        &[(
            ".json",
            ".config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
        )],
    );
}

#[test]
fn zed_jsonc() {
    client("zed", &[(".json", ".config/zed/settings.json")]);
}

#[test]
fn continue_yaml() {
    client("continue", &[(".yaml", ".continue/config.yaml")]);
}

#[test]
fn codex_toml() {
    client("codex", &[(".toml", ".codex/config.toml")]);
}

#[test]
fn gemini() {
    client("gemini", &[(".json", ".gemini/settings.json")]);
}

// ---------------------------------------------------------------------------
// Baseline, fail-on, writing
// ---------------------------------------------------------------------------

const DESKTOP: &str = ".config/Claude/claude_desktop_config.json";

fn desktop(servers: &str) -> String {
    format!("{{\n  \"mcpServers\": {{\n{servers}\n  }}\n}}\n")
}

const PINNED: &str = r#"    "memory": { "command": "safex", "args": ["npx", "@modelcontextprotocol/server-memory@1.0.0"] }"#;

fn findings(out: &Output, server: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["server"] == server)
        .flat_map(|s| s["findings"].as_array().unwrap().clone())
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_injected_server_stands_out_against_the_baseline() {
    let w = World::new();
    w.place(DESKTOP, &desktop(PINNED));
    let out = w.mcp(&["scan", "--json", "--fail-on", "high"]);
    code(&out, 0);
    assert!(stderr(&out).contains("recorded a baseline"));
    assert!(w.baseline().is_file());
    assert_eq!(findings(&out, "memory"), ["not-locked"]);

    // Something adds a server and swaps the command of another.
    let injected = format!(
        "{},\n    \"helper\": {{ \"command\": \"node\", \"args\": [\"/tmp/.x/helper.js\"] }}",
        PINNED.replace(
            "server-memory@1.0.0\"]",
            "server-memory@1.0.0\", \"--evil\"]"
        )
    );
    w.place(DESKTOP, &desktop(&injected));
    let out = w.mcp(&["scan", "--json", "--fail-on", "high"]);
    code(&out, 3);
    assert_eq!(findings(&out, "helper"), ["unmanaged", "new-server"]);
    assert!(findings(&out, "memory").contains(&"changed-server".to_owned()));

    // The baseline is the previous scan: the same state is not new again.
    let out = w.mcp(&["scan", "--json", "--fail-on", "high"]);
    code(&out, 0);
    assert_eq!(findings(&out, "helper"), ["unmanaged"]);
    let out = w.mcp(&["scan", "--fail-on", "low"]);
    code(&out, 3);
    let out = w.mcp(&["scan", "--fail-on", "medium"]);
    code(&out, 0);
}

#[test]
fn pin_records_its_rewrites_in_the_baseline() {
    let w = World::new();
    w.place(DESKTOP, &desktop(r#"    "memory": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"] }"#));
    code(&w.mcp(&["scan"]), 0);
    code(&w.mcp(&["pin", "--write"]), 0);
    let out = w.mcp(&["scan", "--json", "--fail-on", "info"]);
    assert_eq!(findings(&out, "memory"), Vec::<String>::new());
    code(&out, 0);
}

#[test]
fn every_launcher_spelling_is_scanned_and_pinned() {
    let w = World::new();
    let servers = r#"    "memory": { "command": "bunx", "args": ["@modelcontextprotocol/server-memory@1.0.0"] },
    "github": { "command": "pnpm", "args": ["dlx", "@modelcontextprotocol/server-github"] },
    "everything": { "command": "npm", "args": ["exec", "-y", "--", "@modelcontextprotocol/server-everything@3.0.0"] },
    "time": { "command": "uv", "args": ["tool", "run", "mcp-server-time==2025.2.0"] },
    "bun": { "command": "bunx", "args": ["--bun", "@modelcontextprotocol/server-slack@0.6.2"] }"#;
    w.place(DESKTOP, &desktop(servers));
    let out = w.mcp(&["scan", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let server = |name: &str| {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == name)
            .cloned()
            .unwrap()
    };
    for (name, launcher, package) in [
        ("memory", "bunx", "@modelcontextprotocol/server-memory"),
        ("github", "pnpm dlx", "@modelcontextprotocol/server-github"),
        (
            "everything",
            "npm exec",
            "@modelcontextprotocol/server-everything",
        ),
        ("time", "uv tool run", "mcp-server-time"),
    ] {
        let s = server(name);
        assert_eq!(s["launcher"], launcher, "{s}");
        assert_eq!(s["package"], package, "{s}");
    }
    assert!(findings(&out, "github").contains(&"unpinned".to_owned()));
    assert!(findings(&out, "bun").contains(&"bad-args".to_owned()));

    code(&w.mcp(&["pin", "--write"]), 0);
    let after = w.read(DESKTOP);
    for want in [
        r#""command": "safex", "args": ["bunx", "@modelcontextprotocol/server-memory@1.0.0"]"#,
        r#""command": "safex", "args": ["pnpm", "dlx", "@modelcontextprotocol/server-github@1.1.0"]"#,
        r#""command": "safex", "args": ["npm", "exec", "-y", "--", "@modelcontextprotocol/server-everything@3.0.0"]"#,
        r#""command": "safex", "args": ["uv", "tool", "run", "mcp-server-time==2025.2.0"]"#,
        r#""command": "bunx", "args": ["--bun""#,
    ] {
        assert!(after.contains(want), "no `{want}` in\n{after}");
    }
    let out = w.mcp(&["scan", "--json"]);
    for name in ["memory", "github", "everything", "time"] {
        assert_eq!(findings(&out, name), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn write_keeps_permissions_and_follows_symlinks() {
    let w = World::new();
    let real = w.env.root().join("dotfiles/claude.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(
        &real,
        desktop(
            r#"    "m": { "command": "npx", "args": ["@modelcontextprotocol/server-memory"] }"#,
        ),
    )
    .unwrap();
    let link = w.home().join(DESKTOP);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::os::unix::fs::symlink(&real, &link).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    #[cfg(not(unix))]
    std::fs::copy(&real, &link).unwrap();

    code(&w.mcp(&["pin", "--write"]), 0);
    let text = std::fs::read_to_string(&link).unwrap();
    assert!(
        text.contains(
            r#""command": "safex", "args": ["npx", "@modelcontextprotocol/server-memory@1.0.0"]"#
        ),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(backups(real.parent().unwrap()).len(), 1);
        // No temp file left behind.
        let names: Vec<String> = std::fs::read_dir(real.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}

#[test]
fn a_policy_refusal_leaves_the_entry_as_it_was() {
    let w = World::new();
    let text = desktop(concat!(
        r#"    "memory": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"] },"#,
        "\n",
        r#"    "slack": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-slack"] }"#
    ));
    w.place(DESKTOP, &text);
    let policy = w.env.root().join("policy.toml");
    std::fs::write(
        &policy,
        "[packages]\ndeny = [\"@modelcontextprotocol/server-slack\"]\n",
    )
    .unwrap();
    let out = w
        .safex()
        .arg("--policy")
        .arg(&policy)
        .args(["mcp", "pin", "--write", "--root"])
        .arg(w.home())
        .arg("--baseline")
        .arg(w.baseline())
        .output()
        .unwrap();
    code(&out, 3);
    let after = w.read(DESKTOP);
    assert!(
        after.contains(r#""args": ["-y", "@modelcontextprotocol/server-slack"]"#),
        "{after}"
    );
    assert!(after.contains(r#""command": "safex", "args": ["npx", "-y", "@modelcontextprotocol/server-memory@1.0.0"]"#), "{after}");
    assert!(stderr(&out).contains("refused `slack`"), "{}", stderr(&out));
}

#[test]
fn config_option_reads_only_that_file() {
    let w = World::new();
    w.place(DESKTOP, &desktop(PINNED));
    let other = w.env.root().join("elsewhere/servers.json");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(
        &other,
        desktop(r#"    "x": { "command": "uvx", "args": ["mcp-server-time"] }"#),
    )
    .unwrap();
    let out = w.mcp(&["scan", "--json", "--config", other.to_str().unwrap()]);
    code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 1);
    assert_eq!(v["servers"][0]["client"], "other");
    assert_eq!(v["servers"][0]["launcher"], "uvx");

    let out = w.mcp(&["scan", "--config", "/nonexistent/x.json"]);
    code(&out, 2);
    assert!(stderr(&out).contains("`/nonexistent/x.json`"));
}

#[test]
fn an_unreadable_config_is_reported_not_fatal() {
    let w = World::new();
    w.place(DESKTOP, "{ \"mcpServers\": { \"x\": ");
    w.place(".cursor/mcp.json", &desktop(PINNED));
    let out = w.mcp(&["scan", "--json", "--fail-on", "medium"]);
    code(&out, 3);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        v["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("end of file")
    );
    assert_eq!(v["servers"].as_array().unwrap().len(), 1);
    code(&w.mcp(&["pin", "--write"]), 0);
    assert_eq!(w.read(DESKTOP), "{ \"mcpServers\": { \"x\": ");
}
