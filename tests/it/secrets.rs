//! `safex secret` and `safex-secret:` references against a real Secret
//! Service (GNOME Keyring on a private session bus, `support::keyring`),
//! checked independently with libsecret's `secret-tool`; a real server
//! (`server-everything`, from a Verdaccio that proxies this machine's npm
//! registry) launched with a reference, its environment read from the
//! server's side (`/proc/<pid>/environ`, and its own `get-env` tool through
//! the relay); `safex mcp pin --write --move-secrets` on a Claude Desktop
//! and a VS Code config; and the clear error where no store is reachable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::env::{TestEnv, stderr, stdout};
use crate::support::keyring::Keyring;
use crate::support::mcp::{Client, exchange};
use crate::support::verdaccio::{Options, Verdaccio, upstream_registry};

const SPEC: &str = "@modelcontextprotocol/server-everything@2026.8.31";
const TOKEN: &str = "ghp_S3cr3tT0kenFromTheKeyring0123456789ab";
const API_KEY: &str = "sk-proj-VsCodeKeyValue0123456789abcdefgh";

fn run_with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn safex_in(env: &TestEnv, kr: &Keyring) -> Command {
    let mut cmd = env.safex();
    kr.apply(&mut cmd);
    cmd
}

#[test]
fn secret_commands_against_a_real_secret_service() {
    let env = TestEnv::new();
    let kr = Keyring::start(&env.home());

    let mut set = safex_in(&env, &kr);
    set.args(["secret", "set", "github"]);
    let out = run_with_stdin(set, &format!("{TOKEN}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains(TOKEN) && !stdout(&out).contains(TOKEN));
    // libsecret finds it where safex said, without the newline.
    assert_eq!(kr.lookup("github").as_deref(), Some(TOKEN));

    let mut set = safex_in(&env, &kr);
    set.args(["secret", "set", "db.PGPASSWORD"]);
    assert!(run_with_stdin(set, "pa55word").status.success());

    let out = safex_in(&env, &kr)
        .args(["secret", "list"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "db.PGPASSWORD\ngithub\n", "{}", stderr(&out));
    let out = safex_in(&env, &kr)
        .args(["secret", "list", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["names"], json!(["db.PGPASSWORD", "github"]));
    assert_eq!(v["store"], "secret-service");

    let code = |args: &[&str]| {
        let out = safex_in(&env, &kr).args(args).output().unwrap();
        assert!(!stdout(&out).contains(TOKEN) && !stderr(&out).contains(TOKEN));
        (out.status.code().unwrap(), stderr(&out))
    };
    assert_eq!(code(&["secret", "get", "--exists", "github"]).0, 0);
    assert_eq!(code(&["secret", "get", "--exists", "nope"]).0, 1);
    let (c, err) = code(&["secret", "get", "github"]);
    assert_eq!(c, 2);
    assert!(err.contains("never prints a stored value"), "{err}");
    let (c, err) = code(&["secret", "set", "bad name"]);
    assert_eq!(c, 2);
    assert!(err.contains("`bad name` is not a secret name"), "{err}");

    // Replacing keeps one item.
    let mut set = safex_in(&env, &kr);
    set.args(["secret", "set", "github"]);
    let out = run_with_stdin(set, "ghp_Replaced0123456789abcdefgh");
    assert!(
        stderr(&out).contains("replaced secret `github`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        kr.lookup("github").as_deref(),
        Some("ghp_Replaced0123456789abcdefgh")
    );

    assert_eq!(code(&["secret", "rm", "github"]).0, 0);
    assert_eq!(kr.lookup("github"), None);
    let (c, err) = code(&["secret", "rm", "github"]);
    assert_eq!(c, 2);
    assert!(err.contains("no secret named `github`"), "{err}");
}

#[test]
fn no_store_reachable_is_a_clear_error() {
    let env = TestEnv::new();
    // `TestEnv::safex` has no session bus and no XDG_RUNTIME_DIR: as over SSH.
    for args in [
        &["secret", "list"][..],
        &["secret", "get", "--exists", "x"],
        &["npx", "-y", "cowsay@1.6.0", "hi"],
    ] {
        let mut cmd = env.safex();
        cmd.env("GITHUB_TOKEN", "safex-secret:github")
            .env("SAFEX_OFFLINE", "1")
            .args(args);
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        if args[0] == "npx" {
            // Not cached and offline: refused before any secret is looked up.
            assert_eq!(out.status.code(), Some(6), "{err}");
            continue;
        }
        assert_eq!(out.status.code(), Some(8), "{args:?}: {err}");
        assert!(
            err.contains("no credential store is reachable: no D-Bus session bus")
                && err.contains("safex-secret:file:"),
            "{err}"
        );
    }
}

/// The descendants of `pid`, deepest last.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
                out.push(k);
                queue.push(k);
            }
        }
    }
    out
}

fn proc_text(pid: u32, what: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/{what}")).unwrap_or_default())
        .replace('\0', "\n")
}

/// The server process under a safex relay, and its environment.
fn server_of(safex: u32) -> (u32, String) {
    let start = std::time::Instant::now();
    loop {
        for pid in descendants(safex) {
            if proc_text(pid, "cmdline").contains("server-everything") {
                return (pid, proc_text(pid, "environ"));
            }
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "no server process under {safex}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A whole session: `get-env`'s answer, and the server must exit 0.
fn env_seen(cmd: Command) -> String {
    let mut c = Client::start(cmd);
    let text = get_env(&mut c);
    let (code, err) = c.finish();
    assert_eq!(code, 0, "{err}");
    text
}

/// `get-env`'s answer through the relay: the server's own view of its
/// environment, as the client (the model) would get it.
fn get_env(c: &mut Client) -> String {
    c.initialize();
    let got = c.ask(2, "tools/call", json!({"name": "get-env", "arguments": {}}));
    got["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no get-env text in {got}"))
        .to_owned()
}

/// A config entry started as its client starts it: its command, args and
/// env over a minimal environment, offline, with `policy`.
fn entry_command(env: &TestEnv, kr: &Keyring, entry: &Value, policy: &Path) -> Command {
    let args = crate::support::mcp::config_args(entry);
    let mut cmd = Command::new(entry["command"].as_str().unwrap());
    cmd.args(&args)
        .env_clear()
        .env("HOME", env.home())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SAFEX_CACHE_DIR", env.cache())
        .env("SAFEX_LOCKFILE", env.lockfile())
        .env("SAFEX_CONFIG", env.root().join("config.toml"))
        .env("SAFEX_AUDIT_LOG", env.audit_log())
        .env("SAFEX_POLICY", policy)
        .env("SAFEX_OFFLINE", "1");
    kr.apply(&mut cmd);
    for (k, val) in entry["env"].as_object().unwrap() {
        cmd.env(k, val.as_str().unwrap());
    }
    cmd
}

/// JSONC without its `//` line comments (the test's own file has one, on a
/// line of its own).
fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn claude_config(home: &Path) -> PathBuf {
    home.join(".config/Claude/claude_desktop_config.json")
}

#[test]
fn references_resolve_into_the_server_only_and_move_secrets_moves_them() {
    let mut registry = Verdaccio::start(Options::with_uplink(upstream_registry()));
    let env = TestEnv::new();
    let kr = Keyring::start(&env.home());
    let mut cold = env.safex();
    cold.env("SAFEX_NPM_REGISTRY", registry.url())
        .args(["-q", "npx", "-y", SPEC, "stdio"]);
    exchange(cold, SPEC, std::time::Duration::from_secs(180), &|| {
        registry.logs()
    });

    // Two client configs with literal secrets, as users write them.
    let claude = claude_config(&env.home());
    std::fs::create_dir_all(claude.parent().unwrap()).unwrap();
    let claude_text = format!(
        "{{\n  \"mcpServers\": {{\n    \"everything\": {{\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"{SPEC}\", \"stdio\"],\n      \"env\": {{\n        \"GITHUB_PERSONAL_ACCESS_TOKEN\": \"{TOKEN}\",\n        \"LOG_LEVEL\": \"info\"\n      }}\n    }}\n  }}\n}}\n"
    );
    std::fs::write(&claude, &claude_text).unwrap();
    let vscode = env.work().join(".vscode/mcp.json");
    std::fs::create_dir_all(vscode.parent().unwrap()).unwrap();
    let vscode_text = format!(
        "{{\n  // the team's servers\n  \"servers\": {{\n    \"everything\": {{ \"type\": \"stdio\", \"command\": \"npx\", \"args\": [\"-y\", \"{SPEC}\", \"stdio\"], \"env\": {{ \"OPENAI_API_KEY\": \"{API_KEY}\" }} }}\n  }}\n}}\n"
    );
    std::fs::write(&vscode, &vscode_text).unwrap();
    // Codex, with the same token as Claude Desktop: one item in the store.
    let codex = env.home().join(".codex/config.toml");
    std::fs::create_dir_all(codex.parent().unwrap()).unwrap();
    let codex_text = format!(
        "model = \"x\"\n\n[mcp_servers.everything]\ncommand = \"npx\"\nargs = [\"-y\", \"{SPEC}\", \"stdio\"]\n\n[mcp_servers.everything.env]\nGITHUB_PERSONAL_ACCESS_TOKEN = \"{TOKEN}\" # from the README\n"
    );
    std::fs::write(&codex, &codex_text).unwrap();
    let pin = |write: bool| {
        let mut cmd = safex_in(&env, &kr);
        cmd.env("SAFEX_NPM_REGISTRY", registry.url())
            .args(["mcp", "pin", "--move-secrets"])
            .args(write.then_some("--write"))
            .arg("--config")
            .arg(&claude)
            .arg("--config")
            .arg(&vscode)
            .arg("--config")
            .arg(&codex)
            .arg("--baseline")
            .arg(env.root().join("baseline.json"));
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        out
    };

    // The dry run says what would move, and moves nothing.
    let out = pin(false);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(
        o.contains("\"GITHUB_PERSONAL_ACCESS_TOKEN\": \"safex-secret:everything.GITHUB_PERSONAL_ACCESS_TOKEN\"")
            && o.contains("\"OPENAI_API_KEY\": \"safex-secret:everything.OPENAI_API_KEY\""),
        "{o}\n{e}"
    );
    assert!(
        e.contains("secret: env `GITHUB_PERSONAL_ACCESS_TOKEN` →"),
        "{e}"
    );
    // The diff shows the removed line masked.
    assert!(
        !o.contains(TOKEN)
            && !o.contains(API_KEY)
            && o.contains("-        \"GITHUB_PERSONAL_ACCESS_TOKEN\": \"****\","),
        "{o}"
    );
    assert_eq!(kr.lookup("everything.GITHUB_PERSONAL_ACCESS_TOKEN"), None);
    assert_eq!(std::fs::read_to_string(&claude).unwrap(), claude_text);

    // The write stores them and leaves references.
    let out = pin(true);
    let e = stderr(&out);
    assert_eq!(
        kr.lookup("everything.GITHUB_PERSONAL_ACCESS_TOKEN")
            .as_deref(),
        Some(TOKEN),
        "{e}"
    );
    assert_eq!(
        kr.lookup("everything.OPENAI_API_KEY").as_deref(),
        Some(API_KEY)
    );
    let claude_now = std::fs::read_to_string(&claude).unwrap();
    let vscode_now = std::fs::read_to_string(&vscode).unwrap();
    assert!(!claude_now.contains(TOKEN) && !vscode_now.contains(API_KEY));
    assert!(vscode_now.contains("// the team's servers"), "{vscode_now}");
    let codex_now = std::fs::read_to_string(&codex).unwrap();
    assert!(
        codex_now.contains("GITHUB_PERSONAL_ACCESS_TOKEN = \"safex-secret:everything.GITHUB_PERSONAL_ACCESS_TOKEN\" # from the README"),
        "{codex_now}"
    );
    let out = safex_in(&env, &kr)
        .args(["secret", "list"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "everything.GITHUB_PERSONAL_ACCESS_TOKEN\neverything.OPENAI_API_KEY\n"
    );
    assert!(e.contains("still holds the moved secrets"), "{e}");
    let backups: Vec<PathBuf> = std::fs::read_dir(claude.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backups[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Twice: nothing changes.
    let out = pin(true);
    assert!(
        stderr(&out).contains("0 entries rewritten"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&claude).unwrap(), claude_now);
    assert_eq!(std::fs::read_to_string(&vscode).unwrap(), vscode_now);
    assert_eq!(std::fs::read_to_string(&codex).unwrap(), codex_now);
    registry.stop();

    // The rewritten Claude Desktop entry, started as the client starts it:
    // its command, args and env over a minimal environment, offline, in
    // the declared environment mode (the reference is declared by being
    // there).
    let v: Value = serde_json::from_str(&claude_now).unwrap();
    let entry = &v["mcpServers"]["everything"];
    assert_eq!(
        entry["env"]["GITHUB_PERSONAL_ACCESS_TOKEN"],
        "safex-secret:everything.GITHUB_PERSONAL_ACCESS_TOKEN"
    );
    let declared = env.root().join("declared.toml");
    std::fs::write(&declared, "[env]\nmode = \"declared\"\n").unwrap();
    // A Postgres URL's password as a reference too: passed as PGPASSWORD
    // (server-everything ignores the argument; what it was given is read
    // from its side).
    let mut set = safex_in(&env, &kr);
    set.args(["secret", "set", "db.PGPASSWORD"]);
    assert!(run_with_stdin(set, "pa55-w0rd-db").status.success());
    let mut cmd = entry_command(&env, &kr, entry, &declared);
    cmd.arg("postgresql://app:safex-secret:db.PGPASSWORD@127.0.0.1:9/x");
    let mut c = Client::start(cmd);
    let safex_pid = c.child.id();
    let (server, server_env) = server_of(safex_pid);
    // The server has the value; safex's own environment and every
    // command line show only the reference.
    assert!(
        server_env.contains(&format!("GITHUB_PERSONAL_ACCESS_TOKEN={TOKEN}")),
        "{server_env}"
    );
    assert!(!server_env.contains("safex-secret:"), "{server_env}");
    assert!(
        server_env.contains("PGPASSWORD=pa55-w0rd-db"),
        "{server_env}"
    );
    let cmdline = proc_text(server, "cmdline");
    assert!(
        !cmdline.contains(TOKEN) && !cmdline.contains("pa55"),
        "{cmdline}"
    );
    assert!(
        cmdline.contains("\npostgresql://app@127.0.0.1:9/x\n"),
        "{cmdline}"
    );
    assert!(proc_text(safex_pid, "environ").contains(
        "GITHUB_PERSONAL_ACCESS_TOKEN=safex-secret:everything.GITHUB_PERSONAL_ACCESS_TOKEN"
    ));
    assert!(!proc_text(safex_pid, "environ").contains(TOKEN));
    let ps = Command::new("ps")
        .args(["-eww", "-o", "args"])
        .output()
        .unwrap();
    assert!(ps.status.success());
    assert!(!stdout(&ps).contains(TOKEN));
    // The server's own report of its environment reaches the client with
    // the value redacted.
    let text = get_env(&mut c);
    assert!(
        text.contains("[redacted:GITHUB_PERSONAL_ACCESS_TOKEN]") && !text.contains(TOKEN),
        "{text}"
    );
    let (code, err) = c.finish();
    assert!(!err.contains(TOKEN), "{err}");
    assert_eq!(code, 0, "{err}");

    // The audit log names it, and where from; nothing on disk has the value.
    let log = std::fs::read_to_string(env.audit_log()).unwrap();
    let launch: Value = log
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "launch")
        .unwrap();
    assert_eq!(
        launch["secrets"],
        json!([{
            "name": "everything.GITHUB_PERSONAL_ACCESS_TOKEN",
            "from": "secret-service",
            "into": "env GITHUB_PERSONAL_ACCESS_TOKEN"
        }, {
            "name": "db.PGPASSWORD",
            "from": "secret-service",
            "into": "env PGPASSWORD (the password of args[1])"
        }]),
        "{launch}"
    );
    for (what, text) in [
        ("audit log", log),
        ("lockfile", std::fs::read_to_string(env.lockfile()).unwrap()),
        ("Claude config", claude_now),
    ] {
        assert!(
            !text.contains(TOKEN) && !text.contains("pa55-w0rd-db"),
            "the {what} holds a secret"
        );
    }

    // The rewritten VS Code entry starts too, with its key.
    let v: Value = serde_json::from_str(&strip_comments(&vscode_now)).unwrap();
    let text = env_seen(entry_command(
        &env,
        &kr,
        &v["servers"]["everything"],
        &declared,
    ));
    assert!(
        text.contains("[redacted:OPENAI_API_KEY]") && !text.contains(API_KEY),
        "{text}"
    );

    // Where no store is reachable, a 0600 file the reference names.
    // A value no detector would see: only the reference marks it secret.
    const OPAQUE: &str = "opaque-93f2k1-value-q8";
    let file = env.root().join("token");
    std::fs::write(&file, format!("{OPAQUE}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = env.safex();
    cmd.env("SAFEX_OFFLINE", "1")
        .env("SAFEX_POLICY", &declared)
        .env(
            "MY_SERVICE_AUTH",
            format!("safex-secret:file:{}", file.display()),
        )
        .args(["-q", "npx", "-y", SPEC, "stdio"]);
    let text = env_seen(cmd);
    assert!(
        text.contains("[redacted:MY_SERVICE_AUTH]") && !text.contains(OPAQUE),
        "{text}"
    );
    // Readable by others: refused before the server starts.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env
        .safex()
        .env("SAFEX_OFFLINE", "1")
        .env(
            "MY_SERVICE_AUTH",
            format!("safex-secret:file:{}", file.display()),
        )
        .args(["-q", "npx", "-y", SPEC, "stdio"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("can be read or written by others (mode 644)"));

    // A cached server whose store reference cannot be resolved (no session
    // bus, as over SSH): the clear error, and no launch happens.
    let launches = |log: &str| {
        log.lines()
            .filter(|l| l.contains(r#""event":"launch""#))
            .count()
    };
    let before = launches(&std::fs::read_to_string(env.audit_log()).unwrap());
    let out = env
        .safex()
        .env("SAFEX_OFFLINE", "1")
        .env(
            "GITHUB_PERSONAL_ACCESS_TOKEN",
            "safex-secret:everything.GITHUB_PERSONAL_ACCESS_TOKEN",
        )
        .args(["-q", "npx", "-y", SPEC, "stdio"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(
        err.contains("cannot resolve `safex-secret:everything.GITHUB_PERSONAL_ACCESS_TOKEN` (the environment variable `GITHUB_PERSONAL_ACCESS_TOKEN`): no credential store is reachable"),
        "{err}"
    );
    assert_eq!(
        launches(&std::fs::read_to_string(env.audit_log()).unwrap()),
        before
    );
}

/// A resolved value a program writes to its stderr (which MCP clients keep
/// in log files) is redacted there too, sandboxed or not.
#[test]
fn resolved_values_are_redacted_from_the_server_stderr() {
    use crate::support::fixture::{FixtureRegistry, Pkg};
    use std::os::unix::fs::PermissionsExt;
    const VALUE: &str = "opaque-stderr-value-5h2k";
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "envleak",
            "1.0.0",
            "process.stderr.write(`auth=${process.env.MY_AUTH}\\n`); process.stdin.resume(); process.stdin.on('end', () => {});",
        ))
        .build();
    let env = TestEnv::new();
    let file = env.root().join("auth");
    std::fs::write(&file, VALUE).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    for extra in [&[][..], &["--no-sandbox"]] {
        let out = reg
            .safex(&env)
            .args(extra)
            .args(["-q", "npx", "-y", "envleak@1.0.0"])
            .env("MY_AUTH", format!("safex-secret:file:{}", file.display()))
            // Pipes both ways, as an MCP client: the relay.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "{extra:?}: {err}");
        assert!(
            err.contains("auth=[redacted:MY_AUTH]") && !err.contains(VALUE),
            "{extra:?}: {err}"
        );
    }
}

/// `safex mcp scan`: a reference is not a literal secret, and one in an
/// entry safex does not launch is reported (that server gets the text).
#[test]
fn scan_knows_references() {
    let env = TestEnv::new();
    let config = claude_config(&env.home());
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        r#"{"mcpServers": {
  "gh": {"command": "safex", "args": ["npx", "@modelcontextprotocol/server-github@2025.4.8"],
         "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "safex-secret:gh.GITHUB_PERSONAL_ACCESS_TOKEN"}},
  "box": {"command": "docker", "args": ["run", "-i", "--rm", "-e", "API_KEY", "img"],
          "env": {"API_KEY": "safex-secret:box.API_KEY"}}
}}"#,
    )
    .unwrap();
    let out = env
        .safex()
        .args(["mcp", "scan", "--json", "--config"])
        .arg(&config)
        .arg("--baseline")
        .arg(env.root().join("baseline.json"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    let codes = |server: &str| crate::support::mcp::scan_codes(&v, server);
    assert!(!codes("gh").iter().any(|c| c.contains("secret")), "{v}");
    let box_codes = codes("box");
    assert_eq!(
        box_codes
            .iter()
            .filter(|c| *c == "unresolved-secret")
            .count(),
        1,
        "{v}"
    );
    assert!(!box_codes.contains(&"secret".to_owned()), "{v}");
}
