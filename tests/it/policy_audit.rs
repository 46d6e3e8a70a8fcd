//! The audit log (docs/policy.md, "Audit log"): one JSON object per line for
//! each launch, refusal and lock, with the fields of the contract; values of
//! `--env` variables never in it; the default location; `audit.log` as a
//! mandatory key; concurrent launches appending whole lines. Each through
//! the real binary against the in-process registry and index.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::env::{TestEnv, stderr};
use crate::support::fixture::*;
use crate::support::pyfixture::{PyIndex, PyPkg};
use serde_json::Value;

fn safex(env: &TestEnv) -> Command {
    let mut cmd = env.safex();
    cmd.env("XDG_CONFIG_HOME", env.home().join(".config"))
        .env("XDG_DATA_HOME", env.home().join(".local/share"))
        .env("USER", "tester")
        .env("LOGNAME", "tester");
    cmd
}

fn npm(env: &TestEnv, reg: &FixtureRegistry) -> Command {
    let mut cmd = safex(env);
    cmd.env("SAFEX_NPM_REGISTRY", reg.url());
    cmd
}

fn user_policy(env: &TestEnv, text: &str) -> PathBuf {
    let path = env.home().join(".config/safex/policy.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// `<root>/logs/<name>`, its directory created.
fn log_path(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.root().join("logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `[audit] log = "<path>"`.
fn audit_table(path: &Path) -> String {
    let quoted = toml::Value::String(path.to_str().unwrap().into()).to_string();
    format!("[audit]\nlog = {quoted}\n")
}

/// Every line of the log, parsed; a line that is not one JSON object fails.
#[track_caller]
fn log_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no audit log at {}: {e}", path.display()));
    eprintln!("--- {} ---\n{text}", path.display());
    assert!(text.ends_with('\n'), "the last line is not whole:\n{text}");
    text.lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(v @ Value::Object(_)) => v,
            _ => panic!("not a JSON object: {l}\n--- log ---\n{text}"),
        })
        .collect()
}

#[track_caller]
fn string<'a>(line: &'a Value, key: &str) -> &'a str {
    line.get(key)
        .unwrap_or_else(|| panic!("no `{key}` in {line}"))
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {line}"))
}

/// `time`: RFC 3339 in UTC.
#[track_caller]
fn assert_time(line: &Value) {
    let t = string(line, "time");
    let b = t.as_bytes();
    let shape = b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    assert!(
        shape && t.ends_with('Z'),
        "`time` is not RFC 3339 UTC: `{t}`"
    );
}

/// The fields every line has, whatever the event.
#[track_caller]
fn assert_common(env: &TestEnv, line: &Value, user_policy: &Path) {
    assert_time(line);
    assert!(!string(line, "user").is_empty(), "{line}");
    assert!(!string(line, "host").is_empty(), "{line}");
    assert!(!string(line, "parent").is_empty(), "{line}");
    let cwd = PathBuf::from(string(line, "cwd"));
    assert_eq!(
        cwd.canonicalize().ok(),
        env.work().canonicalize().ok(),
        "`cwd` in {line}"
    );
    assert_eq!(string(line, "safex_version"), env!("CARGO_PKG_VERSION"));
    let layers: Vec<&str> = line["policy"]
        .as_array()
        .unwrap_or_else(|| panic!("`policy` is not a list in {line}"))
        .iter()
        .map(|l| l.as_str().expect("layer names are strings"))
        .collect();
    assert_eq!(layers.first(), Some(&"built-in"), "{line}");
    let user = user_policy.display().to_string();
    assert!(
        layers
            .iter()
            .any(|l| l.starts_with("user") && l.contains(&user)),
        "no `user:{user}` layer in {line}"
    );
}

const SECRET: &str = "hunter2-do-not-log";

/// A launch, a refusal and a lock: three lines with the contract's fields.
#[test]
fn launch_refusal_and_lock_are_logged_one_line_each() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program(
                "audit-app",
                "1.0.0",
                "require('audit-dep'); console.log('ok');",
            )
            .dep("audit-dep", "^1.0.0"),
        )
        .package(Pkg::new("audit-dep", "1.2.0").file("index.js", ""))
        .package(Pkg::program("@evil/thing", "1.0.0", "console.log('evil');"))
        .package(Pkg::program("other-app", "2.0.0", ""))
        .build();
    let log = log_path(&env, "audit.log");
    let policy = user_policy(
        &env,
        &format!("[packages]\ndeny = [\"@evil/*\"]\n\n{}", audit_table(&log)),
    );

    let out = run(npm(&env, &reg).env("MY_SECRET", SECRET).args([
        "--env",
        "MY_SECRET",
        "npx",
        "-y",
        "audit-app@1.0.0",
        "first-arg",
    ]));
    assert_ran(&out, "ok\n");
    let out = run(npm(&env, &reg).args(["npx", "-y", "@evil/thing@1.0.0"]));
    assert_code(&out, 3);
    let out = run(npm(&env, &reg).args(["lock", "npx", "other-app@2.0.0"]));
    assert_code(&out, 0);

    let lines = log_lines(&log);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for line in &lines {
        assert_common(&env, line, &policy);
        assert_eq!(string(line, "ecosystem"), "npm", "{line}");
    }

    let launch = &lines[0];
    assert_eq!(string(launch, "event"), "launch", "{launch}");
    assert_eq!(string(launch, "package"), "audit-app");
    assert_eq!(string(launch, "version"), "1.0.0");
    assert_eq!(string(launch, "decision"), "allow");
    assert_eq!(launch["reason"], Value::Null, "{launch}");
    assert!(!string(launch, "tree").is_empty(), "{launch}");
    assert_eq!(launch["packages"], 2, "{launch}");
    assert_eq!(launch["args"], serde_json::json!(["first-arg"]), "{launch}");
    let passed = launch["env_passed"]
        .as_array()
        .unwrap_or_else(|| panic!("`env_passed` is not a list in {launch}"));
    assert!(passed.iter().any(|n| n == "MY_SECRET"), "{launch}");

    let refuse = &lines[1];
    assert_eq!(string(refuse, "event"), "refuse", "{refuse}");
    assert_eq!(string(refuse, "package"), "@evil/thing");
    assert_eq!(string(refuse, "version"), "1.0.0");
    assert_eq!(string(refuse, "decision"), "refuse");
    assert!(string(refuse, "reason").contains("@evil/thing"), "{refuse}");
    assert!(
        refuse.get("tree").is_some() && refuse.get("packages").is_some(),
        "{refuse}"
    );

    let lock = &lines[2];
    assert_eq!(string(lock, "event"), "lock", "{lock}");
    assert_eq!(string(lock, "package"), "other-app");
    assert_eq!(string(lock, "version"), "2.0.0");
    assert_eq!(string(lock, "decision"), "allow");
    assert_eq!(lock["reason"], Value::Null, "{lock}");
    assert!(!string(lock, "tree").is_empty(), "{lock}");
    assert_eq!(lock["packages"], 1, "{lock}");

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(SECRET),
        "a `--env` value was logged:\n{text}"
    );
}

/// The same launch twice locks once and logs two launches with the same tree.
#[test]
fn the_tree_digest_is_stable_across_launches() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("stable-app", "1.0.0", "console.log('ok');"))
        .build();
    let log = log_path(&env, "audit.log");
    user_policy(&env, &audit_table(&log));
    for _ in 0..2 {
        assert_ran(
            &run(npm(&env, &reg).args(["npx", "-y", "stable-app@1.0.0"])),
            "ok\n",
        );
    }
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(string(&lines[0], "tree"), string(&lines[1], "tree"));
}

#[test]
fn pypi_launch_is_logged() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(
            PyPkg::program("py-audit", "1.0.0", "import py_audit_dep\nprint('ok')")
                .dep("py-audit-dep>=1"),
        )
        .package(PyPkg::library("py-audit-dep", "1.0.0", ""))
        .build();
    let log = log_path(&env, "audit.log");
    let policy = user_policy(&env, &audit_table(&log));
    let out =
        run(safex(&env)
            .env("SAFEX_PYPI_INDEX", idx.url())
            .args(["uvx", "py-audit==1.0.0", "x"]));
    assert_ran(&out, "ok\n");
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert_common(&env, line, &policy);
    assert_eq!(string(line, "event"), "launch");
    assert_eq!(string(line, "ecosystem"), "pypi");
    assert_eq!(string(line, "package"), "py-audit");
    assert_eq!(string(line, "version"), "1.0.0");
    assert_eq!(string(line, "decision"), "allow");
    assert_eq!(line["packages"], 2, "{line}");
    assert_eq!(line["args"], serde_json::json!(["x"]), "{line}");
}

/// Without `[audit]` and `SAFEX_AUDIT_LOG`, the log is
/// `<user data dir>/safex/audit.log`.
#[test]
fn default_log_is_in_the_user_data_dir() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("plain-app", "1.0.0", "console.log('ok');"))
        .build();
    let out =
        run(npm(&env, &reg)
            .env_remove("SAFEX_AUDIT_LOG")
            .args(["npx", "-y", "plain-app@1.0.0"]));
    assert_ran(&out, "ok\n");
    assert!(!env.audit_log().exists());
    let lines = log_lines(&env.home().join(".local/share/safex/audit.log"));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(string(&lines[0], "event"), "launch");
    assert_eq!(string(&lines[0], "package"), "plain-app");
    assert_eq!(lines[0]["policy"], serde_json::json!(["built-in"]));
}

/// `SAFEX_AUDIT_LOG` names the log when no policy layer does; a policy's
/// `audit.log`, from any layer, wins over it.
#[test]
fn safex_audit_log_variable_and_the_policy_key() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("plain-app", "1.0.0", "console.log('ok');"))
        .build();
    let from_env = log_path(&env, "from-env.log");
    let launch = || {
        let out = run(npm(&env, &reg).env("SAFEX_AUDIT_LOG", &from_env).args([
            "npx",
            "-y",
            "plain-app@1.0.0",
        ]));
        assert_ran(&out, "ok\n");
    };
    launch();
    assert_eq!(log_lines(&from_env).len(), 1);

    let from_policy = log_path(&env, "from-policy.log");
    user_policy(&env, &audit_table(&from_policy));
    launch();
    assert_eq!(log_lines(&from_policy).len(), 1);
    assert_eq!(
        log_lines(&from_env).len(),
        1,
        "the variable won over the policy"
    );
}

/// `audit.log` set by the system layer: the user layer cannot move it.
#[test]
fn user_layer_cannot_move_a_system_audit_log() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("plain-app", "1.0.0", "console.log('ok');"))
        .build();
    let system_log = log_path(&env, "system-audit.log");
    let user_log = log_path(&env, "user-audit.log");
    let sys = env.root().join("logs/system.toml");
    std::fs::write(&sys, audit_table(&system_log)).unwrap();
    let user = user_policy(&env, &audit_table(&user_log));
    let out = run(npm(&env, &reg).env("SAFEX_SYSTEM_POLICY", &sys).args([
        "npx",
        "-y",
        "plain-app@1.0.0",
    ]));
    assert_ran(&out, "ok\n");
    assert_warning(&out, &["loosen", "audit.log", &user.display().to_string()]);
    assert_eq!(log_lines(&system_log).len(), 1);
    assert!(!user_log.exists(), "{}", stderr(&out));
}

/// Launches at the same moment each append one whole line.
#[test]
fn concurrent_launches_append_whole_lines() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("busy-app", "1.0.0", "console.log('ok');"))
        .build();
    let log = log_path(&env, "audit.log");
    user_policy(&env, &audit_table(&log));
    assert_ran(
        &run(npm(&env, &reg).args(["npx", "-y", "busy-app@1.0.0"])),
        "ok\n",
    );

    const N: usize = 8;
    let children: Vec<_> = (0..N)
        .map(|i| {
            npm(&env, &reg)
                .args(["npx", "-y", "busy-app@1.0.0", &format!("run-{i}")])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn safex")
        })
        .collect();
    for mut child in children {
        let out = wait_with_timeout(&mut child, std::time::Duration::from_secs(120));
        assert_ran(&out, "ok\n");
    }
    let lines = log_lines(&log);
    assert_eq!(lines.len(), N + 1, "{lines:#?}");
    let mut args: Vec<String> = lines[1..]
        .iter()
        .map(|l| l["args"][0].as_str().unwrap_or_default().to_string())
        .collect();
    args.sort();
    let want: Vec<String> = (0..N).map(|i| format!("run-{i}")).collect();
    assert_eq!(args, want);
}

/// `cmd` run through `sh` with the given umask, so that the modes safex
/// creates files with are its own choice, not the test runner's umask.
fn with_umask(cmd: &Command, umask: &str) -> Command {
    let mut sh = Command::new("/bin/sh");
    sh.env_clear()
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Arguments that carry secrets are masked in the log (the program still
/// gets them verbatim), and the log and the directory safex makes for it
/// are private even under umask 022.
#[cfg(unix)]
#[test]
fn secrets_in_arguments_are_masked_and_the_log_is_private() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "args-app",
            "1.0.0",
            "console.log(JSON.stringify(process.argv.slice(2)));",
        ))
        .build();
    let token = "ghp_abcdefghijklmnopqrstuvwx1234";
    let api_key = "sk-proj-abcdefghijklmnopqrstuv";
    let password = "s3cretpassw0rd";
    let db = "hunter2hunter2";
    let flagged = "plainvalue1234";
    let args = [
        "--api-key".to_owned(),
        api_key.to_owned(),
        format!("--token={token}"),
        format!("https://alice:{password}@git.example.internal/repo"),
        format!("DB_PASSWORD={db}"),
        "--secret".to_owned(),
        flagged.to_owned(),
        "--verbose".to_owned(),
        "https://git.example.internal/open".to_owned(),
    ];
    // Under a data directory that does not exist yet: safex creates it.
    let log = env.root().join("private/logs/audit.log");
    let mut cmd = npm(&env, &reg);
    cmd.env("SAFEX_AUDIT_LOG", &log)
        .args(["npx", "-y", "args-app@1.0.0"])
        .args(&args);
    let out = run(&mut with_umask(&cmd, "022"));
    assert_ran(&out, &format!("{}\n", serde_json::json!(args)));

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [token, api_key, password, db, flagged] {
        assert!(!text.contains(secret), "`{secret}` was logged:\n{text}");
    }
    let lines = log_lines(&log);
    assert_eq!(
        lines[0]["args"],
        serde_json::json!([
            "--api-key",
            "sk-proj-****",
            "--token=ghp_****",
            "https://****@git.example.internal/repo",
            "DB_PASSWORD=****",
            "--secret",
            "****",
            "--verbose",
            "https://git.example.internal/open",
        ]),
        "{}",
        lines[0]
    );
    assert_eq!(mode(&log), 0o600, "the new audit log's mode");
    assert_eq!(mode(log.parent().unwrap()), 0o700, "the new log directory");
    assert_eq!(mode(&env.root().join("private")), 0o700);

    // An existing log keeps the mode its owner gave it (a security team may
    // make it group-readable); one that anyone may write is warned about.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut cmd = npm(&env, &reg);
    cmd.env("SAFEX_AUDIT_LOG", &log)
        .args(["npx", "-y", "args-app@1.0.0"]);
    let out = run(&mut with_umask(&cmd, "022"));
    assert_ran(&out, "[]\n");
    assert_eq!(mode(&log), 0o640, "safex changed an existing log's mode");
    assert!(
        !stderr(&out).contains("writable by every user"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(&mut with_umask(&cmd, "022"));
    assert_ran(&out, "[]\n");
    assert_warning(&out, &["audit log", "writable by every user"]);
    assert_eq!(log_lines(&log).len(), 3);
}
