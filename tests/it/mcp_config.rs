//! `safex mcp scan` and `safex mcp pin` on each client's config format,
//! through the real binary, against the in-process npm registry and PyPI
//! index.
//!
//! Golden files: `tests/fixtures/mcp/<client>/before.*` is laid out in a
//! temporary home at the client's path; `scan.json` is the expected scan of
//! it, and `after.*` the expected file after `pin --write`. `@HOME@` stands
//! for the temporary home in all of them. `SAFEX_UPDATE_GOLDEN=1` rewrites
//! the expected files from the actual output (review the diff!).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::env::{TestEnv, files_under, stderr, stdout};
use crate::support::fixture::{FixtureRegistry, Pkg};
use crate::support::pyfixture::{PyIndex, PyPkg, python3};

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

/// The binary under test; `pin` writes this path as the command.
const SAFEX: &str = env!("CARGO_BIN_EXE_safex");

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

    /// safex with the registry and index in its config file, which a GUI
    /// client's safex reads as well (so `pin` records neither in `env`).
    fn safex(&self) -> Command {
        std::fs::write(
            self.env.root().join("config.toml"),
            format!(
                "npm_registry = \"{}\"\npypi_index = \"{}\"\n",
                self.npm.url(),
                self.py.url()
            ),
        )
        .unwrap();
        let mut c = self.env.safex();
        if let Some(py) = python3() {
            c.env("SAFEX_PYTHON", py);
        }
        c
    }

    /// `safex mcp ARGS --root <home> --baseline <file>`.
    fn mcp(&self, args: &[&str]) -> Output {
        self.mcp_by(self.safex(), args)
    }

    /// [`World::mcp`] with this `safex` command (its options, environment).
    fn mcp_by(&self, mut safex: Command, args: &[&str]) -> Output {
        let out = safex
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

    /// The file under the home, with the home as `@HOME@` and this test
    /// binary's absolute path (which `pin` writes: it is not on the GUI
    /// `PATH`) as `safex`, as the golden files show it.
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.home().join(rel))
            .unwrap()
            .replace(&self.home().display().to_string(), "@HOME@")
            .replace(SAFEX, "safex")
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

/// Its stderr holds `text`.
#[track_caller]
fn says(out: &Output, text: &str) {
    assert!(stderr(out).contains(text), "{}", stderr(out));
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
    crate::support::mcp::scan_codes(&v, server)
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
        text.contains(&format!(
            r#""command": "{SAFEX}", "args": ["npx", "@modelcontextprotocol/server-memory@1.0.0"]"#
        )),
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
    let mut safex = w.safex();
    safex.arg("--policy").arg(&policy);
    let out = w.mcp_by(safex, &["pin", "--write"]);
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
    // `pin` reports it (exit 7), and still locks the other file's entry.
    let out = w.mcp(&["pin", "--write"]);
    code(&out, 7);
    says(
        &out,
        "claude_desktop_config.json` is not valid JSON for Claude Desktop: unexpected end of file at line 1 col 24; fix it and run again",
    );
    says(&out, "locked `memory`");
    assert_eq!(w.read(DESKTOP), "{ \"mcpServers\": { \"x\": ");
}

// ---------------------------------------------------------------------------
// GUI clients: the command and the registry a minimal environment lacks
// ---------------------------------------------------------------------------

#[cfg(unix)]
/// `safex` as a shell runs it: HOME and the shell's PATH, safex's cache,
/// lockfile and config at their defaults under HOME (what a GUI client's
/// safex finds too), plus `vars`.
fn shell_safex(w: &World, vars: &[(&str, String)]) -> Command {
    let mut c = Command::new(SAFEX);
    c.env_clear()
        .env("HOME", w.home())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(w.env.work());
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// Unix: there GUI clients get `gui::GUI_PATH` (on Windows, the user's `PATH`).
#[cfg(unix)]
#[test]
fn pin_records_a_shell_registry_and_the_entry_launches_from_a_gui() {
    let w = World::new();
    let file = w.place(
        DESKTOP,
        &desktop(concat!(
            r#"    "memory": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"] },"#,
            "\n",
            r#"    "fetch": { "command": "uvx", "args": ["mcp-server-fetch"] }"#
        )),
    );
    let shell = [
        ("SAFEX_NPM_REGISTRY", w.npm.url()),
        ("SAFEX_PYPI_INDEX", w.py.url()),
    ];
    let out = w.mcp_by(shell_safex(&w, &shell), &["pin", "--write"]);
    code(&out, 0);
    says(
        &out,
        &format!(
            "records `SAFEX_NPM_REGISTRY={}` in `env` (from `SAFEX_NPM_REGISTRY`, which a GUI client's environment does not have)",
            w.npm.url()
        ),
    );
    says(&out, "records `SAFEX_PYPI_INDEX=");
    says(&out, "entries get its absolute path");

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for (server, var, url) in [
        ("memory", "SAFEX_NPM_REGISTRY", w.npm.url()),
        ("fetch", "SAFEX_PYPI_INDEX", w.py.url()),
    ] {
        let entry = &v["mcpServers"][server];
        // The test binary is under `target/`, not on the GUI PATH.
        assert_eq!(entry["command"], SAFEX, "{entry}");
        let recorded = entry["env"][var].as_str().unwrap();
        assert_eq!(recorded.trim_end_matches('/'), url.trim_end_matches('/'));
        let args = crate::support::mcp::config_args(entry);
        // What a GUI client does: the entry's command, args and env, over
        // a minimal environment, with a clean cache (a cold launch: only
        // the recorded registry has these packages).
        let clean = shell_safex(&w, &[]).args(["cache", "clean"]).output();
        code(&clean.unwrap(), 0);
        let mut gui = Command::new(entry["command"].as_str().unwrap());
        gui.args(&args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", w.home())
            .current_dir(w.env.work());
        for (k, val) in entry["env"].as_object().unwrap() {
            gui.env(k, val.as_str().unwrap());
        }
        let out = gui.output().unwrap();
        code(&out, 0);
        assert_eq!(stdout(&out).trim(), "ok", "{}", stderr(&out));
    }
}

#[test]
fn a_registry_from_a_file_the_gui_reads_is_not_recorded() {
    let w = World::new();
    let file = w.place(
        DESKTOP,
        &desktop(r#"    "memory": { "command": "npx", "args": ["@modelcontextprotocol/server-memory"] }"#),
    );
    // `World::safex` names the registry in safex's config file.
    code(&w.mcp(&["pin", "--write"]), 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("\"env\""), "{text}");
}

// ---------------------------------------------------------------------------
// pin: files it must leave alone, and a dry run that tells the truth
// ---------------------------------------------------------------------------

const VSCODE: &str = ".config/Code/User/mcp.json";

#[test]
fn a_trailing_comma_in_a_strict_client_file_is_reported_and_left_alone() {
    let w = World::new();
    let broken = "{\n  \"mcpServers\": {\n    \"memory\": { \"command\": \"npx\", \"args\": [\"@modelcontextprotocol/server-memory\"] },\n  }\n}\n";
    let desktop_file = w.place(DESKTOP, broken);
    // VS Code reads JSONC: the same trailing comma is fine there.
    w.place(
        VSCODE,
        "{\n  \"servers\": {\n    \"memory\": { \"command\": \"npx\", \"args\": [\"@modelcontextprotocol/server-memory\"] },\n  },\n}\n",
    );
    for args in [&["pin"][..], &["pin", "--write"]] {
        let out = w.mcp(args);
        code(&out, 7);
        says(
            &out,
            &format!(
                "`{}` is not valid JSON for Claude Desktop: trailing comma at line 3 col 84; fix it and run again",
                desktop_file.display()
            ),
        );
    }
    assert_eq!(std::fs::read(&desktop_file).unwrap(), broken.as_bytes());
    assert!(backups(desktop_file.parent().unwrap()).is_empty());
    let vscode = w.read(VSCODE);
    assert!(
        vscode.contains(
            r#""command": "safex", "args": ["npx", "@modelcontextprotocol/server-memory@1.0.0"] },"#
        ),
        "{vscode}"
    );
    // The scan says the same about the file.
    let out = w.mcp(&["scan", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        v["files"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("not valid JSON for Claude Desktop: trailing comma"),
        "{v}"
    );
}

/// Makes a file immutable (`chattr +i`, which even root cannot write
/// through) and makes it mutable again when dropped.
struct Immutable(PathBuf);

impl Immutable {
    fn set(p: &Path) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(p)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(p.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

fn statuses(out: &Output) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!(
                    "{}/{}",
                    e["client"].as_str().unwrap(),
                    e["server"].as_str().unwrap()
                ),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn an_immutable_file_is_reported_and_the_others_are_written() {
    let w = World::new();
    let entry =
        r#"    "memory": { "command": "npx", "args": ["@modelcontextprotocol/server-memory"] }"#;
    let stuck = w.place(DESKTOP, &desktop(entry));
    w.place(".cursor/mcp.json", &desktop(entry));
    let before = std::fs::read(&stuck).unwrap();
    let Some(_guard) = Immutable::set(&stuck) else {
        eprintln!(
            "SKIPPED an_immutable_file_is_reported_and_the_others_are_written: `chattr +i` is not possible here, so no file can be made unwritable for root"
        );
        return;
    };
    let dir_before = files_under(stuck.parent().unwrap());

    // The dry run and the write give the same verdict per entry.
    let dry = w.mcp(&["pin", "--json"]);
    code(&dry, 7);
    let v: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(v["files"][0]["client"], "claude-desktop", "{v}");
    assert!(
        v["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be written")
    );
    assert_eq!(
        statuses(&dry),
        [
            ("claude-desktop/memory".to_owned(), "failed".to_owned()),
            ("cursor/memory".to_owned(), "would-rewrite".to_owned()),
        ]
    );
    let out = w.mcp(&["pin", "--write"]);
    code(&out, 7);
    says(
        &out,
        &format!(
            "failed `memory` (claude-desktop): left as it was: `{}` cannot be written: it is read-only (cannot open it for writing: Operation not permitted",
            stuck.display()
        ),
    );
    assert_eq!(std::fs::read(&stuck).unwrap(), before);
    assert_eq!(
        files_under(stuck.parent().unwrap()),
        dir_before,
        "left a file behind"
    );
    assert!(w.read(".cursor/mcp.json").contains(
        r#""command": "safex", "args": ["npx", "@modelcontextprotocol/server-memory@1.0.0"]"#
    ));
}

#[test]
fn the_dry_run_fails_an_entry_the_lock_would_refuse() {
    let w = World::new();
    // The registry declares other bytes than it serves: only fetching and
    // verifying finds out, which `safex policy check` never does.
    w.npm.publish(
        Pkg::program("mcp-bad-bytes", "1.0.0", "console.log('ok')")
            .integrity("sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="),
    );
    w.place(
        DESKTOP,
        &desktop(concat!(
            r#"    "bad": { "command": "npx", "args": ["-y", "mcp-bad-bytes"] },"#,
            "\n",
            r#"    "memory": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"] }"#
        )),
    );
    let dry = w.mcp(&["pin", "--json"]);
    let write = w.mcp(&["pin", "--write", "--json"]);
    for out in [&dry, &write] {
        code(out, 4);
    }
    assert_eq!(
        statuses(&dry),
        [
            ("claude-desktop/bad".to_owned(), "failed".to_owned()),
            (
                "claude-desktop/memory".to_owned(),
                "would-rewrite".to_owned()
            ),
        ]
    );
    assert_eq!(
        statuses(&write),
        [
            ("claude-desktop/bad".to_owned(), "failed".to_owned()),
            ("claude-desktop/memory".to_owned(), "rewritten".to_owned()),
        ]
    );
    assert!(
        w.read(DESKTOP)
            .contains(r#""args": ["-y", "mcp-bad-bytes"]"#)
    );
}

#[cfg(unix)]
#[test]
fn a_read_only_lockfile_refuses_in_the_dry_run_as_in_the_write() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    w.place(
        DESKTOP,
        &desktop(r#"    "memory": { "command": "npx", "args": ["@modelcontextprotocol/server-memory"] }"#),
    );
    std::fs::write(w.env.lockfile(), "version = 1\n").unwrap();
    std::fs::set_permissions(w.env.lockfile(), std::fs::Permissions::from_mode(0o444)).unwrap();
    for args in [&["pin", "--json"][..], &["pin", "--write", "--json"]] {
        let out = w.mcp(args);
        code(&out, 3);
        assert_eq!(
            statuses(&out),
            [("claude-desktop/memory".to_owned(), "refused".to_owned())]
        );
        // The message names the user's lockfile, not the dry run's copy.
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let msg = v["entries"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!(
                "the lockfile `{}` is read-only",
                w.env.lockfile().display()
            )),
            "{msg}"
        );
    }
    assert_eq!(std::fs::read(w.env.lockfile()).unwrap(), b"version = 1\n");
}
