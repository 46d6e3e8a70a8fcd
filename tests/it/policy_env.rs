//! The environment a launched program gets (docs/policy.md, "Declared
//! environment"): `env.mode = "declared"` with its base set, `env.pass` and
//! `--env NAME`; the variables that never reach the program in any mode; and
//! the `env.*` keys under layering. Each through the real binary, with a
//! program that prints its whole environment as JSON.
//!
//! Layers as in `policy.rs`: system from `SAFEX_SYSTEM_POLICY`, user at
//! `$XDG_CONFIG_HOME/safex/policy.toml` inside the temp HOME.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::env::{TestEnv, stdout};
use crate::support::fixture::*;
use crate::support::pyfixture::{PyIndex, PyPkg};
use serde_json::{Map, Value};

fn safex(env: &TestEnv) -> Command {
    let mut cmd = env.safex();
    cmd.env("XDG_CONFIG_HOME", env.home().join(".config"))
        .env("XDG_DATA_HOME", env.home().join(".local/share"));
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

fn system_policy(env: &TestEnv, cmd: &mut Command, text: &str) -> PathBuf {
    assert!(
        !Path::new("/etc/safex/policy.toml").exists(),
        "/etc/safex/policy.toml exists on this machine: SAFEX_SYSTEM_POLICY is ignored"
    );
    let dir = env.root().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("system.toml");
    std::fs::write(&path, text).unwrap();
    cmd.env("SAFEX_SYSTEM_POLICY", &path);
    path
}

/// npm: prints `JSON.stringify(process.env)`.
fn env_registry() -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(Pkg::program(
            "env-dump",
            "1.0.0",
            "console.log(JSON.stringify(process.env));",
        ))
        .build()
}

/// PyPI: prints `json.dumps(dict(os.environ))`.
fn py_env_index() -> PyIndex {
    PyIndex::builder()
        .package(PyPkg::program(
            "env-dump",
            "1.0.0",
            "import json, os\nprint(json.dumps(dict(os.environ)))",
        ))
        .build()
}

const SECRET: &str = "hunter2-do-not-leak";

/// The program's environment, from a launch that must have succeeded.
#[track_caller]
fn program_env(out: &Output) -> Map<String, Value> {
    assert_code(out, 0);
    let text = stdout(out);
    match serde_json::from_str(text.trim()) {
        Ok(Value::Object(m)) => m,
        _ => panic!(
            "the program did not print its environment\n{}",
            describe(out)
        ),
    }
}

#[track_caller]
fn assert_has(vars: &Map<String, Value>, name: &str, value: Option<&str>) {
    match (vars.get(name), value) {
        (None, _) => panic!("`{name}` did not reach the program: {:?}", vars.keys()),
        (Some(v), Some(want)) => assert_eq!(v.as_str(), Some(want), "`{name}`"),
        (Some(_), None) => {}
    }
}

#[track_caller]
fn assert_lacks(vars: &Map<String, Value>, name: &str) {
    assert!(
        !vars.contains_key(name),
        "`{name}` reached the program: {:?}",
        vars.get(name)
    );
}

/// What a desktop session around an MCP client might hold, besides HOME and
/// PATH (which `TestEnv` sets).
fn session(env: &TestEnv, cmd: &mut Command) {
    let tmp = env.root().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    cmd.env("USER", "tester")
        .env("LOGNAME", "tester")
        .env("SHELL", "/bin/sh")
        .env("TERM", "dumb")
        .env("LANG", "C.UTF-8")
        .env("LC_ALL", "C.UTF-8")
        .env("LC_TIME", "C")
        .env("TZ", "UTC")
        .env("TMPDIR", &tmp)
        .env("EDITOR", "vi")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("MY_SECRET", SECRET);
}

/// The base set of `session`, as the program must see it in every mode.
const BASE: [(&str, &str); 8] = [
    ("USER", "tester"),
    ("LOGNAME", "tester"),
    ("SHELL", "/bin/sh"),
    ("TERM", "dumb"),
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("LC_TIME", "C"),
    ("TZ", "UTC"),
];

#[track_caller]
fn assert_base_set(env: &TestEnv, vars: &Map<String, Value>) {
    for (name, value) in BASE {
        assert_has(vars, name, Some(value));
    }
    assert_has(vars, "HOME", Some(env.home().to_str().unwrap()));
    assert_has(vars, "PATH", None);
    // The sandbox gives the program a private `TMPDIR` (in its state
    // directory) instead of the session's, which it may not write.
    let state = env.home().join(".local/state/safex/servers");
    for name in ["TMPDIR", "TMP", "TEMP"] {
        let tmp = vars.get(name).and_then(Value::as_str).unwrap_or_default();
        assert!(
            tmp.starts_with(state.to_str().unwrap()) && tmp.ends_with("/env-dump/tmp"),
            "`{name}`: {tmp}"
        );
    }
}

#[track_caller]
fn assert_no_safex_vars(vars: &Map<String, Value>) {
    let leaked: Vec<&String> = vars.keys().filter(|k| k.starts_with("SAFEX_")).collect();
    assert!(
        leaked.is_empty(),
        "safex's own variables reached the program: {leaked:?}"
    );
}

// ---------------------------------------------------------------------------
// env.mode = "declared"
// ---------------------------------------------------------------------------

#[test]
fn declared_mode_passes_only_the_base_set() {
    let env = TestEnv::new();
    let reg = env_registry();
    user_policy(&env, "[env]\nmode = \"declared\"\n");
    let mut cmd = npm(&env, &reg);
    session(&env, &mut cmd);
    let vars = program_env(&run(cmd.args(["npx", "-y", "env-dump@1.0.0"])));
    assert_base_set(&env, &vars);
    for name in ["MY_SECRET", "AWS_SECRET_ACCESS_KEY", "EDITOR"] {
        assert_lacks(&vars, name);
    }
    assert_no_safex_vars(&vars);
}

/// Control for the test above: the default (`inherit`) passes them.
#[test]
fn inherit_mode_passes_the_session() {
    let env = TestEnv::new();
    let reg = env_registry();
    let mut cmd = npm(&env, &reg);
    session(&env, &mut cmd);
    let vars = program_env(&run(cmd.args(["npx", "-y", "env-dump@1.0.0"])));
    assert_base_set(&env, &vars);
    assert_has(&vars, "MY_SECRET", Some(SECRET));
    assert_has(&vars, "EDITOR", Some("vi"));
}

/// Behind an intercepting proxy (the corporate case) a server that makes
/// its own HTTPS calls needs the CA bundle paths and the proxy: they are
/// part of the declared environment, the proxy without its credentials
/// (unless `pass` names it exactly), in both ecosystems.
#[test]
fn declared_mode_passes_ca_bundles_and_proxies_without_credentials() {
    let env = TestEnv::new();
    let reg = env_registry();
    let idx = py_env_index();
    let ca = env.root().join("corp-ca.pem");
    std::fs::write(&ca, "not a real bundle").unwrap();
    let ca = ca.to_str().unwrap();
    let proxied = |cmd: &mut Command| {
        session(&env, cmd);
        cmd.env("SSL_CERT_FILE", ca)
            .env("SSL_CERT_DIR", "/etc/ssl/certs")
            .env("NODE_EXTRA_CA_CERTS", ca)
            .env("REQUESTS_CA_BUNDLE", ca)
            .env("CURL_CA_BUNDLE", ca)
            .env("PIP_CERT", ca)
            .env(
                "HTTPS_PROXY",
                format!("http://proxyuser:{SECRET}@proxy.corp.example:3128"),
            )
            .env("http_proxy", "http://proxy.corp.example:3128")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
    };
    for policy in [
        "[env]\nmode = \"declared\"\n",
        "[env]\nmode = \"inherit\"\n",
    ] {
        user_policy(&env, policy);
        let mut npm_cmd = npm(&env, &reg);
        proxied(&mut npm_cmd);
        let mut py_cmd = safex(&env);
        py_cmd.env("SAFEX_PYPI_INDEX", idx.url());
        proxied(&mut py_cmd);
        for vars in [
            program_env(&run(npm_cmd.args(["npx", "-y", "env-dump@1.0.0"]))),
            program_env(&run(py_cmd.args(["uvx", "env-dump==1.0.0"]))),
        ] {
            for name in [
                "SSL_CERT_FILE",
                "NODE_EXTRA_CA_CERTS",
                "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE",
                "PIP_CERT",
            ] {
                assert_has(&vars, name, Some(ca));
            }
            assert_has(&vars, "SSL_CERT_DIR", Some("/etc/ssl/certs"));
            assert_has(&vars, "HTTPS_PROXY", Some("http://proxy.corp.example:3128"));
            assert_has(&vars, "http_proxy", Some("http://proxy.corp.example:3128"));
            assert_has(&vars, "NO_PROXY", Some("127.0.0.1,localhost"));
            assert_has(&vars, "no_proxy", Some("127.0.0.1,localhost"));
            if policy.contains("declared") {
                assert_lacks(&vars, "MY_SECRET");
            }
        }
    }
    // Named exactly in `pass`: the proxy's credentials are the policy's
    // decision, passed verbatim.
    user_policy(
        &env,
        "[env]\nmode = \"declared\"\npass = [\"HTTPS_PROXY\"]\n",
    );
    let mut cmd = npm(&env, &reg);
    proxied(&mut cmd);
    let vars = program_env(&run(cmd.args(["npx", "-y", "env-dump@1.0.0"])));
    assert_has(
        &vars,
        "HTTPS_PROXY",
        Some(&format!(
            "http://proxyuser:{SECRET}@proxy.corp.example:3128"
        )),
    );
}

#[test]
fn declared_mode_passes_names_and_prefixes_listed_in_pass() {
    let env = TestEnv::new();
    let reg = env_registry();
    user_policy(
        &env,
        "[env]\nmode = \"declared\"\npass = [\"MY_SECRET\", \"ACME_*\"]\n",
    );
    let mut cmd = npm(&env, &reg);
    session(&env, &mut cmd);
    cmd.env("ACME_REGION", "eu-1")
        .env("ACME_API_KEY", "k")
        .env("ACMEX", "not a match");
    let vars = program_env(&run(cmd.args(["npx", "-y", "env-dump@1.0.0"])));
    assert_has(&vars, "MY_SECRET", Some(SECRET));
    assert_has(&vars, "ACME_REGION", Some("eu-1"));
    assert_has(&vars, "ACME_API_KEY", Some("k"));
    assert_lacks(&vars, "ACMEX");
    assert_lacks(&vars, "AWS_SECRET_ACCESS_KEY");
}

/// `--env NAME`, as a global option and among npx's options, repeatable.
#[test]
fn env_option_passes_a_name_in_declared_mode() {
    let env = TestEnv::new();
    let reg = env_registry();
    user_policy(&env, "[env]\nmode = \"declared\"\n");
    let launch = |args: &[&str]| {
        let mut cmd = npm(&env, &reg);
        session(&env, &mut cmd);
        program_env(&run(cmd.args(args)))
    };

    let vars = launch(&["--env", "MY_SECRET", "npx", "-y", "env-dump@1.0.0"]);
    assert_has(&vars, "MY_SECRET", Some(SECRET));
    assert_lacks(&vars, "AWS_SECRET_ACCESS_KEY");

    let vars = launch(&["npx", "--env", "MY_SECRET", "-y", "env-dump@1.0.0"]);
    assert_has(&vars, "MY_SECRET", Some(SECRET));

    let vars = launch(&[
        "--env",
        "MY_SECRET",
        "--env",
        "EDITOR",
        "npx",
        "-y",
        "env-dump@1.0.0",
    ]);
    assert_has(&vars, "MY_SECRET", Some(SECRET));
    assert_has(&vars, "EDITOR", Some("vi"));

    // After the spec, `--env` is the program's argument, not safex's.
    let vars = launch(&["npx", "-y", "env-dump@1.0.0", "--env", "MY_SECRET"]);
    assert_lacks(&vars, "MY_SECRET");
}

#[test]
fn declared_mode_for_pypi_programs() {
    let env = TestEnv::new();
    let idx = py_env_index();
    user_policy(&env, "[env]\nmode = \"declared\"\npass = [\"ACME_*\"]\n");
    let launch = |args: &[&str]| {
        let mut cmd = safex(&env);
        cmd.env("SAFEX_PYPI_INDEX", idx.url())
            .env("ACME_REGION", "eu-1");
        session(&env, &mut cmd);
        program_env(&run(cmd.args(args)))
    };
    let vars = launch(&["uvx", "env-dump==1.0.0"]);
    assert_base_set(&env, &vars);
    assert_has(&vars, "ACME_REGION", Some("eu-1"));
    assert_lacks(&vars, "MY_SECRET");
    assert_lacks(&vars, "EDITOR");
    assert_no_safex_vars(&vars);

    let vars = launch(&["--env", "MY_SECRET", "uvx", "env-dump==1.0.0"]);
    assert_has(&vars, "MY_SECRET", Some(SECRET));
    let vars = launch(&["uvx", "--env", "MY_SECRET", "env-dump==1.0.0"]);
    assert_has(&vars, "MY_SECRET", Some(SECRET));
}

// ---------------------------------------------------------------------------
// What never reaches the program
// ---------------------------------------------------------------------------

/// In `inherit` mode: every `SAFEX_*`, the npm tokens, and whatever `.npmrc`
/// auth lines reference.
#[test]
fn inherit_mode_never_passes_safex_settings_or_npm_credentials() {
    let env = TestEnv::new();
    let reg = env_registry();
    std::fs::write(
        env.home().join(".npmrc"),
        format!("//127.0.0.1:{}/:_authToken=${{MY_NPM_AUTH}}\n", reg.port()),
    )
    .unwrap();
    let vars = program_env(&run(npm(&env, &reg)
        .env("SAFEX_SOMETHING_ELSE", "x")
        .env("NPM_TOKEN", SECRET)
        .env("NODE_AUTH_TOKEN", SECRET)
        .env("MY_NPM_AUTH", SECRET)
        .env("MY_SECRET", SECRET)
        .args(["npx", "-y", "env-dump@1.0.0"])));
    assert_no_safex_vars(&vars);
    for name in ["NPM_TOKEN", "NODE_AUTH_TOKEN", "MY_NPM_AUTH"] {
        assert_lacks(&vars, name);
    }
    assert_has(&vars, "MY_SECRET", Some(SECRET));
    let all = serde_json::to_string(&vars).unwrap();
    assert_eq!(
        all.matches(SECRET).count(),
        1,
        "only MY_SECRET carries the secret: {all}"
    );
}

/// safex's own settings never pass, not even when listed or given with
/// `--env`; a registry credential passes only when `env.pass` names it
/// exactly: not by `--env`, not by a `PREFIX_*` pattern.
#[test]
fn never_passed_names_stay_out_when_listed_or_given_with_env() {
    let env = TestEnv::new();
    let reg = env_registry();
    user_policy(
        &env,
        "[env]\nmode = \"declared\"\npass = [\"SAFEX_*\", \"NPM_*\", \"SAFEX_NPM_REGISTRY\"]\n",
    );
    let vars = program_env(&run(npm(&env, &reg)
        .env("NPM_TOKEN", SECRET)
        .env("NODE_AUTH_TOKEN", SECRET)
        .args([
            "--env",
            "NODE_AUTH_TOKEN",
            "--env",
            "SAFEX_CACHE_DIR",
            "npx",
            "-y",
            "env-dump@1.0.0",
        ])));
    assert_no_safex_vars(&vars);
    assert_lacks(&vars, "NPM_TOKEN");
    assert_lacks(&vars, "NODE_AUTH_TOKEN");
}

/// Not the session's `SECRET`: that one may pass (it is no registry's).
const REG_SECRET: &str = "reg-s3cret-do-not-leak";

/// Registry credentials in the shapes npm, pip and uv take them, with the
/// secret in each: what the program must never see by accident.
fn registry_credentials(env: &TestEnv, cmd: &mut Command) {
    std::fs::write(
        env.home().join(".npmrc"),
        "registry=http://alice:${REG_PASS}@127.0.0.1:9/\n//127.0.0.1:9/:_password=${NPM_PW}\n",
    )
    .unwrap();
    cmd.env(
        "npm_config_registry",
        format!("http://alice:{REG_SECRET}@127.0.0.1:9/npm/"),
    )
    .env(
        "NPM_CONFIG_REGISTRY",
        format!("http://{REG_SECRET}@127.0.0.1:9/"),
    )
    .env(
        "npm_config_@acme:registry",
        format!("https://ci:{REG_SECRET}@npm.example.internal/acme/"),
    )
    .env("npm_config__auth", REG_SECRET)
    .env("NPM_CONFIG__AUTHTOKEN", REG_SECRET)
    .env("npm_config_//127.0.0.1:9/:_authToken", REG_SECRET)
    .env("npm_config_//127.0.0.1:9/:username", REG_SECRET)
    .env("NPM_TOKEN", REG_SECRET)
    .env("NODE_AUTH_TOKEN", REG_SECRET)
    .env("REG_PASS", REG_SECRET)
    .env("NPM_PW", REG_SECRET)
    .env(
        "PIP_INDEX_URL",
        format!("http://bob:{REG_SECRET}@127.0.0.1:9/simple/"),
    )
    .env(
        "PIP_EXTRA_INDEX_URL",
        format!("http://bob:{REG_SECRET}@127.0.0.1:9/a/ http://127.0.0.1:9/b/"),
    )
    .env(
        "UV_INDEX",
        format!("corp=http://bob:{REG_SECRET}@127.0.0.1:9/simple other=http://127.0.0.1:9/o/"),
    )
    .env(
        "UV_DEFAULT_INDEX",
        format!("http://{REG_SECRET}@127.0.0.1:9/d/"),
    )
    .env("UV_INDEX_CORP_USERNAME", REG_SECRET)
    .env("UV_INDEX_CORP_PASSWORD", REG_SECRET)
    .env("UV_PUBLISH_TOKEN", REG_SECRET)
    .env("ACME_SETTING", "not a registry credential");
}

/// Each URL variable of `registry_credentials`, as the program gets it.
const STRIPPED: [(&str, &str); 7] = [
    ("npm_config_registry", "http://127.0.0.1:9/npm/"),
    ("NPM_CONFIG_REGISTRY", "http://127.0.0.1:9/"),
    (
        "npm_config_@acme:registry",
        "https://npm.example.internal/acme/",
    ),
    ("PIP_INDEX_URL", "http://127.0.0.1:9/simple/"),
    (
        "PIP_EXTRA_INDEX_URL",
        "http://127.0.0.1:9/a/ http://127.0.0.1:9/b/",
    ),
    (
        "UV_INDEX",
        "corp=http://127.0.0.1:9/simple other=http://127.0.0.1:9/o/",
    ),
    ("UV_DEFAULT_INDEX", "http://127.0.0.1:9/d/"),
];

/// Each credential variable of `registry_credentials`: removed.
const REMOVED: [&str; 11] = [
    "npm_config__auth",
    "NPM_CONFIG__AUTHTOKEN",
    "npm_config_//127.0.0.1:9/:_authToken",
    "npm_config_//127.0.0.1:9/:username",
    "NPM_TOKEN",
    "NODE_AUTH_TOKEN",
    "REG_PASS",
    "NPM_PW",
    "UV_INDEX_CORP_USERNAME",
    "UV_INDEX_CORP_PASSWORD",
    "UV_PUBLISH_TOKEN",
];

/// In `inherit` mode, and in `declared` mode with every such name matched
/// by a pattern: the secret is nowhere in the program's environment, URL
/// variables arrive without their userinfo, and the rest passes.
#[track_caller]
fn assert_no_registry_credentials(vars: &Map<String, Value>) {
    let all = serde_json::to_string(vars).unwrap();
    assert!(
        !all.contains(REG_SECRET),
        "a registry credential reached the program: {all}"
    );
    for (name, value) in STRIPPED {
        assert_has(vars, name, Some(value));
    }
    for name in REMOVED {
        assert_lacks(vars, name);
    }
}

/// The policies to try: every mode, and patterns that match every name.
const MODES: [&str; 3] = [
    "",
    "[env]\nmode = \"inherit\"\npass = [\"npm_config_*\", \"NPM_*\", \"UV_*\", \"PIP_*\", \"REG_*\"]\n",
    "[env]\nmode = \"declared\"\npass = [\"npm_config_*\", \"NPM_*\", \"NODE_*\", \"UV_*\", \"PIP_*\", \"REG_*\"]\n",
];

/// The names `env.pass` gives exactly, to bring them back verbatim.
const NAMED: &str = "\"npm_config_registry\", \"npm_config_@acme:registry\", \"UV_INDEX\", \"NPM_TOKEN\", \"REG_PASS\", \"UV_INDEX_CORP_PASSWORD\", \"npm_config_//127.0.0.1:9/:_authToken\"";

#[track_caller]
fn assert_named_ones_come_back(vars: &Map<String, Value>) {
    assert_has(
        vars,
        "npm_config_registry",
        Some(&format!("http://alice:{REG_SECRET}@127.0.0.1:9/npm/")),
    );
    assert_has(
        vars,
        "npm_config_@acme:registry",
        Some(&format!(
            "https://ci:{REG_SECRET}@npm.example.internal/acme/"
        )),
    );
    assert_has(
        vars,
        "UV_INDEX",
        Some(&format!(
            "corp=http://bob:{REG_SECRET}@127.0.0.1:9/simple other=http://127.0.0.1:9/o/"
        )),
    );
    for name in [
        "NPM_TOKEN",
        "REG_PASS",
        "UV_INDEX_CORP_PASSWORD",
        "npm_config_//127.0.0.1:9/:_authToken",
    ] {
        assert_has(vars, name, Some(REG_SECRET));
    }
    // Not named: still held back (and in `declared` mode not passed at all).
    if let Some(v) = vars.get("PIP_INDEX_URL") {
        assert_eq!(v, "http://127.0.0.1:9/simple/");
    }
    assert_lacks(vars, "NODE_AUTH_TOKEN");
    assert_lacks(vars, "UV_INDEX_CORP_USERNAME");
}

#[test]
fn registry_credentials_never_reach_an_npm_program_in_any_mode() {
    let env = TestEnv::new();
    let reg = env_registry();
    let launch = |policy: &str| {
        user_policy(&env, policy);
        let mut cmd = npm(&env, &reg);
        session(&env, &mut cmd);
        registry_credentials(&env, &mut cmd);
        program_env(&run(cmd.args(["npx", "-y", "env-dump@1.0.0"])))
    };
    for policy in MODES {
        let vars = launch(policy);
        assert_no_registry_credentials(&vars);
        if policy.is_empty() || policy.contains("inherit") {
            assert_has(&vars, "ACME_SETTING", Some("not a registry credential"));
        }
    }
    for mode in ["inherit", "declared"] {
        let vars = launch(&format!("[env]\nmode = \"{mode}\"\npass = [{NAMED}]\n"));
        assert_named_ones_come_back(&vars);
    }
}

#[test]
fn registry_credentials_never_reach_a_pypi_program_in_any_mode() {
    let env = TestEnv::new();
    let idx = py_env_index();
    let launch = |policy: &str| {
        user_policy(&env, policy);
        let mut cmd = safex(&env);
        cmd.env("SAFEX_PYPI_INDEX", idx.url());
        session(&env, &mut cmd);
        registry_credentials(&env, &mut cmd);
        program_env(&run(cmd.args(["uvx", "env-dump==1.0.0"])))
    };
    for policy in MODES {
        assert_no_registry_credentials(&launch(policy));
    }
    for mode in ["inherit", "declared"] {
        let vars = launch(&format!("[env]\nmode = \"{mode}\"\npass = [{NAMED}]\n"));
        assert_named_ones_come_back(&vars);
    }
}

// ---------------------------------------------------------------------------
// Layering
// ---------------------------------------------------------------------------

#[test]
fn user_layer_cannot_loosen_a_system_declared_environment() {
    let env = TestEnv::new();
    let reg = env_registry();
    let launch = |user: &str| {
        let user_file = user_policy(&env, user);
        let mut cmd = npm(&env, &reg);
        system_policy(
            &env,
            &mut cmd,
            "[env]\nmode = \"declared\"\npass = [\"KEEP_A\", \"KEEP_B\"]\n",
        );
        session(&env, &mut cmd);
        cmd.env("KEEP_A", "a")
            .env("KEEP_B", "b")
            .env("EXTRA_C", "c");
        let out = run(cmd.args(["npx", "-y", "env-dump@1.0.0"]));
        (out, user_file)
    };

    // Removing a name tightens, and takes effect.
    let (out, _) = launch("[env]\npass = [\"KEEP_A\"]\n");
    let vars = program_env(&out);
    assert_has(&vars, "KEEP_A", Some("a"));
    assert_lacks(&vars, "KEEP_B");

    // Adding one loosens: warned about, not passed.
    let (out, user) = launch("[env]\npass = [\"KEEP_A\", \"KEEP_B\", \"EXTRA_C\"]\n");
    assert_warning(&out, &["loosen", "env.pass", &user.display().to_string()]);
    let vars = program_env(&out);
    assert_lacks(&vars, "EXTRA_C");
    assert_has(&vars, "KEEP_A", Some("a"));

    // `inherit` under a system `declared`: warned about, still declared.
    let (out, user) = launch("[env]\nmode = \"inherit\"\n");
    assert_warning(&out, &["loosen", "env.mode", &user.display().to_string()]);
    let vars = program_env(&out);
    assert_lacks(&vars, "MY_SECRET");
    assert_lacks(&vars, "EXTRA_C");
    assert_has(&vars, "KEEP_A", Some("a"));
}

/// `--env` is the person's explicit choice for one launch: it passes a name
/// under a system `declared` policy, and is not a loosening of `env.pass`.
#[test]
fn env_option_works_under_a_system_declared_environment() {
    let env = TestEnv::new();
    let reg = env_registry();
    let mut cmd = npm(&env, &reg);
    system_policy(&env, &mut cmd, "[env]\nmode = \"declared\"\n");
    session(&env, &mut cmd);
    let out = run(cmd.args(["--env", "MY_SECRET", "npx", "-y", "env-dump@1.0.0"]));
    let vars = program_env(&out);
    assert_has(&vars, "MY_SECRET", Some(SECRET));
    assert_lacks(&vars, "AWS_SECRET_ACCESS_KEY");
}
