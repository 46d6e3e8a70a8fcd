//! Org policy (docs/policy.md): each key of the contract, the
//! known-compromised list, the release-age cooldown, layering and mandatory
//! keys, malformed files, and `safex policy show|check`, each through the
//! real binary against the in-process npm registry and PyPI index.
//! The declared environment is in `policy_env.rs`, the audit log in
//! `policy_audit.rs`.
//!
//! Layers in these tests: the system layer comes from `SAFEX_SYSTEM_POLICY`
//! (honoured only because `/etc/safex/policy.toml` does not exist; tests never
//! create it), the user layer is `$XDG_CONFIG_HOME/safex/policy.toml` with
//! `XDG_CONFIG_HOME` set to `$HOME/.config` in the temp HOME, and the
//! command-line layer is `--policy FILE` or `SAFEX_POLICY`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::env::{TestEnv, stderr, stdout};
use crate::support::fixture::*;
use crate::support::pyfixture::{JSON_TYPE, PyIndex, PyPkg, py_touch};
use crate::support::snapshot::stable_stderr;
use insta::assert_snapshot;

// ---------------------------------------------------------------------------
// Layers, commands and checks
// ---------------------------------------------------------------------------

/// `safex` in `env` with the XDG directories inside the temp HOME, so that
/// the user layer and the default audit log are where these tests look.
fn safex(env: &TestEnv) -> Command {
    let mut cmd = env.safex();
    cmd.env("XDG_CONFIG_HOME", env.home().join(".config"))
        .env("XDG_DATA_HOME", env.home().join(".local/share"));
    cmd
}

/// `safex` pointed at the npm fixture registry.
fn npm(env: &TestEnv, reg: &FixtureRegistry) -> Command {
    let mut cmd = safex(env);
    cmd.env("SAFEX_NPM_REGISTRY", reg.url());
    cmd
}

/// `safex` pointed at a simple index.
fn pypi(env: &TestEnv, index_url: &str) -> Command {
    let mut cmd = safex(env);
    cmd.env("SAFEX_PYPI_INDEX", index_url);
    cmd
}

fn npx(env: &TestEnv, reg: &FixtureRegistry, args: &[&str]) -> Output {
    run(npm(env, reg).arg("npx").args(args))
}

fn uvx(env: &TestEnv, index_url: &str, args: &[&str]) -> Output {
    run(pypi(env, index_url).arg("uvx").args(args))
}

/// The user layer.
fn user_policy_path(env: &TestEnv) -> PathBuf {
    env.home().join(".config/safex/policy.toml")
}

fn user_policy(env: &TestEnv, text: &str) -> PathBuf {
    let path = user_policy_path(env);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// A policy file for the system or command-line layer.
fn policy_file(env: &TestEnv, name: &str, text: &str) -> PathBuf {
    let dir = env.root().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `cmd` with `path` as the system layer.
fn system<'a>(cmd: &'a mut Command, path: &Path) -> &'a mut Command {
    assert!(
        !Path::new("/etc/safex/policy.toml").exists(),
        "/etc/safex/policy.toml exists on this machine: SAFEX_SYSTEM_POLICY is ignored, and these tests cannot run"
    );
    cmd.env("SAFEX_SYSTEM_POLICY", path)
}

/// Where the program marker goes: it exists only if a refused program ran.
fn program_marker(env: &TestEnv) -> PathBuf {
    env.root().join("ran-program")
}

/// Where install-time code would leave its marker.
fn install_marker(env: &TestEnv) -> PathBuf {
    env.root().join("ran-install")
}

/// An npm program that must not run: it leaves the program marker.
fn forbidden(env: &TestEnv, name: &str, version: &str) -> Pkg {
    Pkg::program(name, version, &js_touch(&program_marker(env)))
}

/// A PyPI program that must not run.
fn py_forbidden(env: &TestEnv, name: &str, version: &str) -> PyPkg {
    PyPkg::program(name, version, &py_touch(&program_marker(env)))
}

/// An npm program that prints what `require(dep)` exports.
fn printing_dep(name: &str, version: &str, dep: &str, range: &str) -> Pkg {
    Pkg::program(
        name,
        version,
        &format!("console.log(require({}));", serde_json::json!(dep)),
    )
    .dep(dep, range)
}

/// An npm library that exports its own version.
fn lib(name: &str, version: &str) -> Pkg {
    Pkg::new(name, version).file("index.js", format!("module.exports = '{version}';"))
}

/// A PyPI program that prints its dependency's `VERSION`.
fn py_printing_dep(name: &str, version: &str, dep: &str, requirement: &str) -> PyPkg {
    let module = crate::support::pyfixture::module_name(dep);
    PyPkg::program(
        name,
        version,
        &format!("import {module}\nprint({module}.VERSION)"),
    )
    .dep(requirement)
}

/// The policy files the test wrote and the audit logs (the default one and
/// those under `<root>/logs`): the writes outside the cache a policy test
/// expects.
fn policy_writes(env: &TestEnv) -> [PathBuf; 4] {
    [
        env.root().join("policies"),
        env.root().join("logs"),
        env.home().join(".config/safex"),
        env.home().join(".local/share/safex/audit.log"),
    ]
}

/// Nothing written outside the cache but [`policy_writes`].
#[track_caller]
fn assert_no_stray_writes(env: &TestEnv) {
    let ours = policy_writes(env);
    assert_nothing_written_outside_cache(env, &ours.each_ref().map(PathBuf::as_path));
}

/// A refusal ([`assert_refused`]) with no program or install marker and no
/// write outside the cache but [`policy_writes`].
#[track_caller]
fn assert_policy_refused(env: &TestEnv, out: &Output, code: i32, names: &[&str]) {
    let ours = policy_writes(env);
    assert_refused(
        env,
        out,
        code,
        names,
        &[&program_marker(env), &install_marker(env)],
        &ours.each_ref().map(PathBuf::as_path),
    );
}

#[track_caller]
fn assert_mentions(out: &Output, words: &[&str]) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for w in words {
        assert!(
            all.contains(w),
            "output does not mention `{w}`\n{}",
            describe(out)
        );
    }
}

/// The line of `text` that mentions every word, if any.
fn line_with<'a>(text: &'a str, words: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| words.iter().all(|w| l.contains(w)))
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

const DAY: u64 = 86_400;

/// Seconds since the epoch, now.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn days_ago(days: u64) -> u64 {
    now() - days * DAY
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) for seconds since the epoch.
fn utc(secs: u64) -> String {
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let (mut days, rest) = (secs / DAY, secs % DAY);
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let feb = if leap(year) { 29 } else { 28 };
    let mut month = 1;
    for len in [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}",
        days + 1,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The form of the npm packument's `time` map.
fn npm_time(secs: u64) -> String {
    format!("{}.000Z", utc(secs))
}

#[test]
fn utc_formats_known_instants() {
    assert_eq!(utc(0), "1970-01-01T00:00:00");
    assert_eq!(utc(951_782_400), "2000-02-29T00:00:00");
    assert_eq!(utc(1_000_000_000), "2001-09-09T01:46:40");
    assert_eq!(utc(1_709_251_199), "2024-02-29T23:59:59");
}

// ---------------------------------------------------------------------------
// packages.allow
// ---------------------------------------------------------------------------

fn allow_registry(env: &TestEnv) -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(
            Pkg::program(
                "@acme/files",
                "1.0.0",
                "console.log('acme ' + require('helper'));",
            )
            .dep("helper", "^1.0.0"),
        )
        .package(lib("helper", "1.0.0"))
        .package(Pkg::program(
            "@acme/deep-tool",
            "1.0.0",
            "console.log('deep');",
        ))
        .package(Pkg::program(
            "mcp-server-time",
            "1.0.0",
            "console.log('time');",
        ))
        .package(forbidden(env, "other-tool", "1.0.0"))
        .package(forbidden(env, "mcp-server-time-plus", "1.0.0"))
        .build()
}

#[test]
fn allow_list_refuses_roots_that_do_not_match() {
    let env = TestEnv::new();
    let reg = allow_registry(&env);
    user_policy(
        &env,
        "[packages]\nallow = [\"@acme/*\", \"mcp-server-time\"]\n",
    );
    let out = npx(&env, &reg, &["-y", "other-tool@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["other-tool"]);

    // A pattern without `*` is the whole name, not a prefix.
    let out = npx(&env, &reg, &["-y", "mcp-server-time-plus@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["mcp-server-time-plus"]);

    // With `-p`, every package is a root.
    let out = npx(
        &env,
        &reg,
        &[
            "-y",
            "-p",
            "@acme/files@1.0.0",
            "-p",
            "other-tool@1.0.0",
            "other-tool",
        ],
    );
    assert_policy_refused(&env, &out, 3, &["other-tool"]);
}

/// Matching roots run; their dependencies are not judged by `allow`.
#[test]
fn allow_list_lets_matching_roots_run() {
    let env = TestEnv::new();
    let reg = allow_registry(&env);
    user_policy(
        &env,
        "[packages]\nallow = [\"@acme/*\", \"mcp-server-time\"]\n",
    );
    assert_ran(
        &npx(&env, &reg, &["-y", "@acme/files@1.0.0"]),
        "acme 1.0.0\n",
    );
    assert_ran(&npx(&env, &reg, &["-y", "mcp-server-time@1.0.0"]), "time\n");

    // `*` matches any run of characters, `/` included.
    user_policy(&env, "[packages]\nallow = [\"@acme*\"]\n");
    assert_ran(&npx(&env, &reg, &["-y", "@acme/deep-tool@1.0.0"]), "deep\n");
}

/// PyPI names are compared PEP 503-normalized.
#[test]
fn allow_list_applies_to_pypi_roots_normalized() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(PyPkg::program("mcp-server-time", "1.0.0", "print('time')"))
        .package(py_forbidden(&env, "other-tool", "1.0.0"))
        .build();
    user_policy(&env, "[packages]\nallow = [\"MCP_Server.time\"]\n");
    assert_ran(
        &uvx(&env, &idx.url(), &["mcp-server-time==1.0.0"]),
        "time\n",
    );
    let out = uvx(&env, &idx.url(), &["other-tool==1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["other-tool"]);
    // `--with` packages are roots too.
    let out = uvx(
        &env,
        &idx.url(),
        &["--with", "other-tool==1.0.0", "mcp-server-time==1.0.0"],
    );
    assert_policy_refused(&env, &out, 3, &["other-tool"]);
}

// ---------------------------------------------------------------------------
// packages.deny
// ---------------------------------------------------------------------------

fn deny_registry(env: &TestEnv) -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(forbidden(env, "bad-root", "2.0.0"))
        .package(Pkg::program(
            "bad-root",
            "1.0.0",
            "console.log('old root');",
        ))
        .package(forbidden(env, "good-app", "1.0.0").dep("@evil/helper", "^1.0.0"))
        .package(lib("@evil/helper", "1.0.0"))
        .package(forbidden(env, "pin-app", "1.0.0").dep("pinned-dep", "^1.0.0"))
        .package(printing_dep("tilde-app", "1.0.0", "pinned-dep", "~1.1.0"))
        .package(lib("pinned-dep", "1.1.0"))
        .package(lib("pinned-dep", "1.2.0"))
        .build()
}

const DENY: &str = "[packages]\ndeny = [\"bad-root@2.0.0\", \"@evil/*\", \"pinned-dep@1.2.0\"]\n";

#[test]
fn deny_refuses_a_root_by_name_and_version() {
    let env = TestEnv::new();
    let reg = deny_registry(&env);
    user_policy(&env, DENY);
    let out = npx(&env, &reg, &["-y", "bad-root@2.0.0"]);
    assert_policy_refused(&env, &out, 3, &["bad-root", "2.0.0"]);
    assert_snapshot!(stable_stderr(&env, &out), @r"
    error: `bad-root@2.0.0` is denied by the policy's `packages.deny` entry `bad-root@2.0.0`
    hint: choose another package or version (policy layers: built-in, user:[HOME]/.config/safex/policy.toml)
    ");
    // Another version of the same package is not denied.
    assert_ran(&npx(&env, &reg, &["-y", "bad-root@1.0.0"]), "old root\n");
}

#[test]
fn deny_refuses_a_transitive_dependency_by_glob_and_by_version() {
    let env = TestEnv::new();
    let reg = deny_registry(&env);
    user_policy(&env, DENY);
    let out = npx(&env, &reg, &["-y", "good-app@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["@evil/helper"]);

    let out = npx(&env, &reg, &["-y", "pin-app@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["pinned-dep", "1.2.0"]);
    // The same dependency at a version the pattern does not name is fine.
    assert_ran(&npx(&env, &reg, &["-y", "tilde-app@1.0.0"]), "1.1.0\n");
}

/// `@VERSION` after a scoped name splits at the last `@`; either version
/// style applies to either ecosystem.
#[test]
fn deny_patterns_scoped_versions_and_either_style() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "@corp/tool", "1.0.0"))
        .package(Pkg::program("@corp/tool", "1.1.0", "console.log('1.1.0');"))
        .package(forbidden(&env, "pypi-style", "2.0.0"))
        .build();
    let idx = PyIndex::builder()
        .package(py_forbidden(&env, "npm-style", "3.0.0"))
        .build();
    user_policy(
        &env,
        "[packages]\ndeny = [\"@corp/tool@1.0.0\", \"pypi-style==2.0.0\", \"npm-style@3.0.0\"]\n",
    );
    let out = npx(&env, &reg, &["-y", "@corp/tool@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["@corp/tool", "1.0.0"]);
    assert_ran(&npx(&env, &reg, &["-y", "@corp/tool@1.1.0"]), "1.1.0\n");
    let out = npx(&env, &reg, &["-y", "pypi-style@2.0.0"]);
    assert_policy_refused(&env, &out, 3, &["pypi-style", "2.0.0"]);
    let out = uvx(&env, &idx.url(), &["npm-style==3.0.0"]);
    assert_policy_refused(&env, &out, 3, &["npm-style", "3.0.0"]);
}

/// A pattern added after a tree was locked refuses the warm launch too.
#[test]
fn deny_applies_to_an_already_locked_tree() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(printing_dep("locked-app", "1.0.0", "later-bad", "^1.0.0"))
        .package(lib("later-bad", "1.0.3"))
        .build();
    assert_ran(&npx(&env, &reg, &["-y", "locked-app@1.0.0"]), "1.0.3\n");
    user_policy(&env, "[packages]\ndeny = [\"later-bad@1.0.3\"]\n");
    let out = npx(&env, &reg, &["-y", "locked-app@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["later-bad", "1.0.3"]);
}

#[test]
fn deny_refuses_pypi_packages_by_normalized_name_and_version() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(py_forbidden(&env, "py-app", "1.0.0").dep("shady-dep>=1.0"))
        .package(py_printing_dep(
            "py-old-app",
            "1.0.0",
            "shady-dep",
            "shady-dep<1.2",
        ))
        .package(PyPkg::library("shady-dep", "1.1.0", ""))
        .package(PyPkg::library("shady-dep", "1.2.0", ""))
        .package(py_forbidden(&env, "evil-root", "3.0.0"))
        .build();
    user_policy(
        &env,
        "[packages]\ndeny = [\"Shady_Dep==1.2.0\", \"evil-root\"]\n",
    );
    let out = uvx(&env, &idx.url(), &["py-app==1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["shady-dep", "1.2.0"]);
    assert_ran(&uvx(&env, &idx.url(), &["py-old-app==1.0.0"]), "1.1.0\n");
    // A pattern without a version denies every version.
    let out = uvx(&env, &idx.url(), &["evil-root==3.0.0"]);
    assert_policy_refused(&env, &out, 3, &["evil-root"]);
}

// ---------------------------------------------------------------------------
// Known-compromised versions
// ---------------------------------------------------------------------------

/// The `reference` and `incident` of the entry for `name` `version` in
/// `policies/known-compromised.toml` (`npm` or `pypi`).
fn known_compromised(ecosystem: &str, name: &str, version: &str) -> (String, String) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/known-compromised.toml"
    );
    let text = std::fs::read_to_string(path).expect("policies/known-compromised.toml");
    let doc: toml::Value = toml::from_str(&text).expect("known-compromised.toml parses");
    let entries = doc[ecosystem]
        .as_array()
        .expect("a table array per ecosystem");
    let entry = entries
        .iter()
        .find(|e| {
            e["name"].as_str() == Some(name)
                && e["versions"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|v| v.as_str() == Some(version)))
        })
        .unwrap_or_else(|| panic!("{name} {version} is not in known-compromised.toml"));
    let field = |k: &str| {
        entry
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    (field("reference"), field("incident"))
}

/// The refusal names the package, the version and the entry's reference
/// (its text or its incident name).
#[track_caller]
fn assert_names_reference(out: &Output, reference: &str, incident: &str) {
    let err = stderr(out);
    assert!(
        (!reference.is_empty() && err.contains(reference))
            || (!incident.is_empty() && err.contains(incident)),
        "stderr names neither the reference `{reference}` nor the incident `{incident}`\n{}",
        describe(out)
    );
}

/// `debug@4.4.2` (the "qix" phish) as the version a transitive `^4.1.0`
/// floats to: refused at launch, at `safex lock` and at `policy check`.
#[test]
fn known_compromised_npm_dependency_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "log-app", "1.0.0").dep("debug", "^4.1.0"))
        .package(lib("debug", "4.3.0"))
        .package(lib("debug", "4.4.2"))
        .build();
    let (reference, incident) = known_compromised("npm", "debug", "4.4.2");

    let out = npx(&env, &reg, &["-y", "log-app@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["debug", "4.4.2"]);
    assert_names_reference(&out, &reference, &incident);
    // Not even fetched ahead of placement: refused before a byte of it.
    assert_eq!(
        reg.tarball_hits("debug", "4.4.2"),
        0,
        "{:?}",
        reg.request_lines()
    );

    let out = run(npm(&env, &reg).args(["lock", "npx", "log-app@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["debug", "4.4.2"]);
    assert_names_reference(&out, &reference, &incident);
    let lock = std::fs::read_to_string(env.lockfile()).unwrap_or_default();
    assert!(
        !lock.contains("log-app"),
        "a refused tree was locked:\n{lock}"
    );

    let out = run(npm(&env, &reg).args(["policy", "check", "npx", "log-app@1.0.0"]));
    assert_code(&out, 3);
    assert_mentions(&out, &["debug", "4.4.2"]);
    assert_no_markers(&[&program_marker(&env)]);
}

#[test]
fn known_compromised_npm_root_is_refused() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "event-stream", "3.3.6"))
        .build();
    let (reference, incident) = known_compromised("npm", "event-stream", "3.3.6");
    let out = npx(&env, &reg, &["-y", "event-stream@3.3.6"]);
    assert_policy_refused(&env, &out, 3, &["event-stream", "3.3.6"]);
    assert_names_reference(&out, &reference, &incident);
    assert_snapshot!(stable_stderr(&env, &out), @r"
    error: `event-stream@3.3.6` is a known-compromised version: incident `event-stream`: event-stream / flatmap-stream, 2018-09..11; targeted runtime payload
    hint: pin a version from before the incident; safex refuses this one in every policy layer
    ");
    assert_eq!(
        reg.tarball_hits("event-stream", "3.3.6"),
        0,
        "{:?}",
        reg.request_lines()
    );
}

/// `litellm==1.82.8`, with its `.pth` payload: refused as known-compromised
/// (exit 3), whatever else is wrong with it.
#[test]
fn known_compromised_pypi_root_is_refused() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(py_forbidden(&env, "litellm", "1.82.8").pth(
            "litellm_init.pth",
            &format!("import os; {}\n", py_touch(&install_marker(&env))),
        ))
        .build();
    let (reference, incident) = known_compromised("pypi", "litellm", "1.82.8");
    let out = uvx(&env, &idx.url(), &["litellm==1.82.8"]);
    assert_policy_refused(&env, &out, 3, &["litellm", "1.82.8"]);
    assert_names_reference(&out, &reference, &incident);
    // Names are compared PEP 503-normalized.
    let out = uvx(&env, &idx.url(), &["LiteLLM==1.82.8"]);
    assert_policy_refused(&env, &out, 3, &["1.82.8"]);
    assert_names_reference(&out, &reference, &incident);
}

/// An admin's own entries, in the user and the system layer, refuse a tree
/// locked before they were added.
#[test]
fn admin_added_known_compromised_entries_refuse_locked_trees() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(printing_dep("pad-app", "1.0.0", "left-padder", "^1.0.0"))
        .package(lib("left-padder", "1.0.1"))
        .build();
    assert_ran(&npx(&env, &reg, &["-y", "pad-app@1.0.0"]), "1.0.1\n");

    let reference = "INC-4711 https://security.example/advisories/4711";
    user_policy(
        &env,
        &format!(
            "[[known_compromised.npm]]\nname = \"left-padder\"\nversions = [\"1.0.1\"]\nreference = \"{reference}\"\n"
        ),
    );
    let out = npx(&env, &reg, &["-y", "pad-app@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["left-padder", "1.0.1", reference]);

    let idx = PyIndex::builder()
        .package(py_forbidden(&env, "py-pad-app", "1.0.0").dep("py-left-padder>=2"))
        .package(PyPkg::library("py-left-padder", "2.0.0", ""))
        .build();
    let sys = policy_file(
        &env,
        "system.toml",
        "[[known_compromised.pypi]]\nname = \"py-left-padder\"\nversions = [\"2.0.0\"]\nreference = \"INC-4712\"\n",
    );
    let out = run(system(&mut pypi(&env, &idx.url()), &sys).args(["uvx", "py-pad-app==1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["py-left-padder", "2.0.0", "INC-4712"]);
}

// ---------------------------------------------------------------------------
// Cooldown: release.min_age and release.unknown
// ---------------------------------------------------------------------------

/// `cool-app` (old) depends on `cool-dep ^1.0.0`, published 30 days ago
/// (1.0.0), 10 days ago (1.1.0) and a few minutes ago (1.2.0).
fn cooling_registry() -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(
            printing_dep("cool-app", "1.0.0", "cool-dep", "^1.0.0")
                .published_at(&npm_time(days_ago(60))),
        )
        .package(lib("cool-dep", "1.0.0").published_at(&npm_time(days_ago(30))))
        .package(lib("cool-dep", "1.1.0").published_at(&npm_time(days_ago(10))))
        .package(lib("cool-dep", "1.2.0").published_at(&npm_time(now() - 300)))
        .build()
}

#[test]
fn cooldown_passes_over_too_young_dependency_versions() {
    let reg = cooling_registry();
    // Control: without a cooldown the newest version is chosen.
    let env = TestEnv::new();
    assert_ran(&npx(&env, &reg, &["-y", "cool-app@1.0.0"]), "1.2.0\n");

    let env = TestEnv::new();
    user_policy(&env, "[release]\nmin_age = \"7d\"\n");
    assert_ran(&npx(&env, &reg, &["-y", "cool-app@1.0.0"]), "1.1.0\n");
}

#[test]
fn cooldown_units() {
    let reg = cooling_registry();
    for (min_age, expected) in [
        ("2w", "1.0.0"),
        ("20d", "1.0.0"),
        ("168h", "1.1.0"),
        ("10080m", "1.1.0"),
        ("604800s", "1.1.0"),
        ("0", "1.2.0"),
    ] {
        let env = TestEnv::new();
        user_policy(&env, &format!("[release]\nmin_age = \"{min_age}\"\n"));
        let out = npx(&env, &reg, &["-y", "cool-app@1.0.0"]);
        assert_ran(&out, &format!("{expected}\n"));
    }
}

/// `safex lock` applies the cooldown; the lock records the old-enough version.
#[test]
fn cooldown_applies_to_lock() {
    let env = TestEnv::new();
    let reg = cooling_registry();
    user_policy(&env, "[release]\nmin_age = \"7d\"\n");
    let out = run(npm(&env, &reg).args(["lock", "npx", "cool-app@1.0.0"]));
    assert_code(&out, 0);
    let lock = std::fs::read_to_string(env.lockfile()).expect("lockfile");
    assert!(
        lock.contains(&reg.integrity_of("cool-dep", "1.1.0")),
        "{lock}"
    );
    assert!(
        !lock.contains(&reg.integrity_of("cool-dep", "1.2.0")),
        "{lock}"
    );
}

/// A root pinned to a version younger than `min_age`: refused, with when it
/// was published and when it becomes eligible.
#[test]
fn cooldown_refuses_a_too_young_root_with_its_eligibility_date() {
    let env = TestEnv::new();
    let published = days_ago(1);
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "young-app", "2.0.0").published_at(&npm_time(published)))
        .package(
            Pkg::program("young-app", "1.0.0", "console.log('old');")
                .published_at(&npm_time(days_ago(60))),
        )
        .build();
    user_policy(&env, "[release]\nmin_age = \"7d\"\n");
    let out = npx(&env, &reg, &["-y", "young-app@2.0.0"]);
    assert_policy_refused(
        &env,
        &out,
        3,
        &[
            "young-app@2.0.0",
            "7d",
            &utc(published),
            &utc(published + 7 * DAY),
        ],
    );
    assert_ran(&npx(&env, &reg, &["-y", "young-app@1.0.0"]), "old\n");
}

/// Cooldown is a resolution rule: a tree locked before is not re-judged.
#[test]
fn cooldown_does_not_re_judge_a_locked_tree() {
    let env = TestEnv::new();
    let reg = cooling_registry();
    assert_ran(&npx(&env, &reg, &["-y", "cool-app@1.0.0"]), "1.2.0\n");
    user_policy(&env, "[release]\nmin_age = \"7d\"\n");
    assert_ran(&npx(&env, &reg, &["-y", "cool-app@1.0.0"]), "1.2.0\n");
}

/// The form of PEP 691's `upload-time`.
fn pypi_time(secs: u64) -> String {
    format!("{}.000000Z", utc(secs))
}

/// A PEP 691 index whose files were uploaded at `secs`, per version.
fn aged_index(packages: Vec<(PyPkg, u64)>) -> PyIndex {
    let mut builder = PyIndex::builder().json(true);
    for (p, secs) in packages {
        builder = builder.package(p.uploaded_at(&pypi_time(secs)));
    }
    builder.build()
}

/// The index's JSON pages carry each version's own upload time, and its
/// files are still served.
#[test]
fn aged_index_serves_chosen_upload_times() {
    let idx = aged_index(vec![
        (PyPkg::library("aged", "1.0.0", ""), 1_609_459_200),
        (PyPkg::library("aged", "2.0.0", ""), 1_000_000_000),
    ]);
    let page = idx.get("/simple/aged/", Some(JSON_TYPE)).unwrap();
    assert_eq!(page.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
    let times: Vec<(&str, &str)> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap(),
                f["upload-time"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        times,
        [
            ("aged-1.0.0-py3-none-any.whl", "2021-01-01T00:00:00.000000Z"),
            ("aged-2.0.0-py3-none-any.whl", "2001-09-09T01:46:40.000000Z"),
        ]
    );
    let file = idx.get("/files/aged-2.0.0-py3-none-any.whl", None).unwrap();
    assert_eq!(file.status, 200);
    assert_eq!(&file.body[..2], b"PK");
    assert_eq!(idx.get("/files/nope.whl", None).unwrap().status, 404);
}

#[test]
fn pypi_cooldown_passes_over_too_young_versions_and_refuses_a_young_root() {
    let published = days_ago(2);
    let idx = aged_index(vec![
        (
            py_printing_dep("cool-py", "1.0.0", "cool-py-dep", "cool-py-dep>=1.0"),
            days_ago(60),
        ),
        (PyPkg::library("cool-py-dep", "1.0.0", ""), days_ago(30)),
        (PyPkg::library("cool-py-dep", "1.1.0", ""), now() - 300),
        (
            PyPkg::program("young-py", "2.0.0", "print('young')"),
            published,
        ),
    ]);
    // Control: without a cooldown the newest is chosen.
    let env = TestEnv::new();
    assert_ran(&uvx(&env, &idx.url(), &["cool-py==1.0.0"]), "1.1.0\n");

    let env = TestEnv::new();
    user_policy(&env, "[release]\nmin_age = \"7d\"\n");
    assert_ran(&uvx(&env, &idx.url(), &["cool-py==1.0.0"]), "1.0.0\n");

    let out = uvx(&env, &idx.url(), &["young-py==2.0.0"]);
    assert_policy_refused(
        &env,
        &out,
        3,
        &[
            "young-py",
            "2.0.0",
            "7d",
            &utc(published),
            &utc(published + 7 * DAY),
        ],
    );
}

/// An HTML-only (PEP 503) index says nothing about upload times.
#[test]
fn unknown_publication_time_follows_release_unknown() {
    let idx = PyIndex::builder()
        .package(PyPkg::program("html-only", "1.0.0", "print('ran')"))
        .build();
    let env = TestEnv::new();
    user_policy(&env, "[release]\nmin_age = \"7d\"\nunknown = \"allow\"\n");
    assert_ran(&uvx(&env, &idx.url(), &["html-only==1.0.0"]), "ran\n");

    let env = TestEnv::new();
    user_policy(&env, "[release]\nmin_age = \"7d\"\nunknown = \"refuse\"\n");
    let out = uvx(&env, &idx.url(), &["html-only==1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["html-only"]);
}

// ---------------------------------------------------------------------------
// scripts.mode, python.pth, lock.mode
// ---------------------------------------------------------------------------

#[test]
fn scripts_refuse_names_the_package_and_the_hook() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "hooked-app", "1.0.0").dep("hook-dep", "^1.0.0"))
        .package(
            lib("hook-dep", "1.0.3").script("postinstall", &touch_script(&install_marker(&env))),
        )
        .package(forbidden(&env, "gyp-root", "1.0.0").binding_gyp("{ 'targets': [] }"))
        .build();
    user_policy(&env, "[scripts]\nmode = \"refuse\"\n");
    let out = npx(&env, &reg, &["-y", "hooked-app@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["hook-dep", "postinstall"]);
    let out = npx(&env, &reg, &["-y", "gyp-root@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["gyp-root", "binding.gyp"]);
}

#[test]
fn pth_refuse_all_refuses_a_path_only_pth_that_the_default_accepts() {
    let idx = PyIndex::builder()
        .package(
            PyPkg::program(
                "pth-paths",
                "1.0.0",
                "import extra_mod\nprint(extra_mod.VALUE)",
            )
            .pth("pth_paths.pth", "# a comment\n\npth_paths_extra\n")
            .file("pth_paths_extra/extra_mod.py", "VALUE = 'via pth'\n"),
        )
        .build();
    let env = TestEnv::new();
    assert_ran(&uvx(&env, &idx.url(), &["pth-paths==1.0.0"]), "via pth\n");

    let env = TestEnv::new();
    user_policy(&env, "[python]\npth = \"refuse-all\"\n");
    let out = uvx(&env, &idx.url(), &["pth-paths==1.0.0"]);
    assert_policy_refused(&env, &out, 5, &["pth-paths", "pth_paths.pth"]);
}

#[test]
fn frozen_lock_mode_refuses_an_unlocked_root() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "locked-one",
            "1.0.0",
            "console.log('locked');",
        ))
        .package(forbidden(&env, "unlocked-one", "1.0.0"))
        .build();
    let out = run(npm(&env, &reg).args(["lock", "npx", "locked-one@1.0.0"]));
    assert_code(&out, 0);
    user_policy(&env, "[lock]\nmode = \"frozen\"\n");
    let out = npx(&env, &reg, &["-y", "unlocked-one@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["unlocked-one"]);
    assert_snapshot!(stable_stderr(&env, &out), @r"
    error: `unlocked-one@1.0.0` is not in the lockfile, and the lock mode is `frozen`
    hint: ask your admin to add it, or lock it yourself with `safex lock npx unlocked-one@1.0.0` where the lock mode is `tofu`
    ");
    assert_eq!(
        reg.tarball_hits("unlocked-one", "1.0.0"),
        0,
        "{:?}",
        reg.request_lines()
    );
    assert_ran(&npx(&env, &reg, &["-y", "locked-one@1.0.0"]), "locked\n");
}

// ---------------------------------------------------------------------------
// registries
// ---------------------------------------------------------------------------

/// A dead address: nothing listens on the discard port.
const DEAD_REGISTRY: &str = "http://127.0.0.1:9/";

#[test]
fn policy_registries_override_the_environment() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "via-policy",
            "1.0.0",
            "console.log('npm ok');",
        ))
        .build();
    let idx = PyIndex::builder()
        .package(PyPkg::program("via-policy-py", "1.0.0", "print('pypi ok')"))
        .build();
    let sys = policy_file(
        &env,
        "system.toml",
        &format!(
            "[registries]\nnpm = \"{}\"\npypi = \"{}\"\n",
            reg.url(),
            idx.url()
        ),
    );
    let out = run(system(&mut safex(&env), &sys)
        .env("SAFEX_NPM_REGISTRY", DEAD_REGISTRY)
        .args(["npx", "-y", "via-policy@1.0.0"]));
    assert_ran(&out, "npm ok\n");
    let out = run(system(&mut safex(&env), &sys)
        .env("SAFEX_PYPI_INDEX", format!("{DEAD_REGISTRY}simple/"))
        .args(["uvx", "via-policy-py==1.0.0"]));
    assert_ran(&out, "pypi ok\n");
}

/// "overrides SAFEX_NPM_REGISTRY/.npmrc when set by policy": by any layer,
/// not only the system one.
#[test]
fn user_and_command_line_registries_override_the_environment() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "via-policy",
            "1.0.0",
            "console.log('npm ok');",
        ))
        .build();
    let idx = PyIndex::builder()
        .package(PyPkg::program("via-policy-py", "1.0.0", "print('pypi ok')"))
        .build();
    let text = format!(
        "[registries]\nnpm = \"{}\"\npypi = \"{}\"\n",
        reg.url(),
        idx.url()
    );
    let cli = policy_file(&env, "cli.toml", &text);
    let out = run(safex(&env)
        .env("SAFEX_NPM_REGISTRY", DEAD_REGISTRY)
        .arg("--policy")
        .arg(&cli)
        .args(["npx", "-y", "via-policy@1.0.0"]));
    assert_ran(&out, "npm ok\n");

    user_policy(&env, &text);
    let out = run(safex(&env).env("SAFEX_NPM_REGISTRY", DEAD_REGISTRY).args([
        "npx",
        "-y",
        "via-policy@1.0.0",
    ]));
    assert_ran(&out, "npm ok\n");
    let out = run(safex(&env)
        .env("SAFEX_PYPI_INDEX", format!("{DEAD_REGISTRY}simple/"))
        .args(["uvx", "via-policy-py==1.0.0"]));
    assert_ran(&out, "pypi ok\n");
}

/// A scoped registry in `.npmrc` (`@scope:registry=`) is a way around the
/// policy's registry too.
#[test]
fn policy_registry_overrides_npmrc_scoped_registries() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "@corp/tool",
            "1.0.0",
            "console.log('from policy');",
        ))
        .build();
    std::fs::write(
        env.home().join(".npmrc"),
        format!("registry={DEAD_REGISTRY}\n@corp:registry={DEAD_REGISTRY}\n"),
    )
    .unwrap();
    let sys = policy_file(
        &env,
        "system.toml",
        &format!("[registries]\nnpm = \"{}\"\n", reg.url()),
    );
    let out = run(system(&mut safex(&env), &sys).args(["npx", "-y", "@corp/tool@1.0.0"]));
    assert_ran(&out, "from policy\n");
}

/// A tarball on another host name is refused unless `allowed_hosts` names it.
#[test]
fn allowed_hosts_admits_a_tarball_host() {
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("elsewhere", "1.0.0", "console.log('ran');").tarball_host("localhost"),
        )
        .build();
    let env = TestEnv::new();
    let out = npx(&env, &reg, &["-y", "elsewhere@1.0.0"]);
    assert_policy_refused(&env, &out, 3, &["elsewhere"]);

    let env = TestEnv::new();
    user_policy(&env, "[registries]\nallowed_hosts = [\"localhost\"]\n");
    assert_ran(&npx(&env, &reg, &["-y", "elsewhere@1.0.0"]), "ran\n");
}

// ---------------------------------------------------------------------------
// Layering and mandatory keys
// ---------------------------------------------------------------------------

fn hooked_registry(env: &TestEnv) -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(
            Pkg::program("hooked", "1.0.0", "console.log('hooked ran');")
                .script("postinstall", &touch_script(&install_marker(env))),
        )
        .build()
}

#[test]
fn user_layer_cannot_loosen_a_system_key() {
    let env = TestEnv::new();
    let reg = hooked_registry(&env);
    let sys = policy_file(&env, "system.toml", "[scripts]\nmode = \"refuse\"\n");
    let user = user_policy(&env, "[scripts]\nmode = \"strip\"\n");
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "hooked@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["hooked", "postinstall"]);
    assert_warning(
        &out,
        &["loosen", "scripts.mode", &user.display().to_string()],
    );
}

#[test]
fn user_layer_can_tighten_a_system_key() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "unlocked-one", "1.0.0"))
        .build();
    let sys = policy_file(&env, "system.toml", "[lock]\nmode = \"tofu\"\n");
    user_policy(&env, "[lock]\nmode = \"frozen\"\n");
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "unlocked-one@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["unlocked-one"]);
    assert!(!stderr(&out).contains("loosen"), "{}", describe(&out));
}

/// `SAFEX_LOCK_MODE` and the config file's `lock_mode` are the user's too:
/// they cannot loosen a system `frozen`.
#[test]
fn lock_mode_setting_cannot_loosen_a_system_frozen() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "unlocked-one", "1.0.0"))
        .build();
    let sys = policy_file(&env, "system.toml", "[lock]\nmode = \"frozen\"\n");
    let out = run(system(&mut npm(&env, &reg), &sys)
        .env("SAFEX_LOCK_MODE", "tofu")
        .args(["npx", "-y", "unlocked-one@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["unlocked-one"]);

    let config = env.root().join("config.toml");
    std::fs::write(&config, "lock_mode = \"tofu\"\n").unwrap();
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "unlocked-one@1.0.0"]));
    std::fs::remove_file(&config).unwrap();
    assert_policy_refused(&env, &out, 3, &["unlocked-one"]);
}

#[test]
fn user_layer_cannot_shorten_a_system_cooldown() {
    let env = TestEnv::new();
    let reg = cooling_registry();
    let sys = policy_file(&env, "system.toml", "[release]\nmin_age = \"7d\"\n");
    let user = user_policy(&env, "[release]\nmin_age = \"0\"\n");
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "cool-app@1.0.0"]));
    assert_ran(&out, "1.1.0\n");
    assert_warning(
        &out,
        &["loosen", "release.min_age", &user.display().to_string()],
    );

    // Longer is tighter, and takes effect.
    let env = TestEnv::new();
    user_policy(&env, "[release]\nmin_age = \"20d\"\n");
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "cool-app@1.0.0"]));
    assert_ran(&out, "1.0.0\n");
}

#[test]
fn user_layer_cannot_allow_unknown_times_a_system_refuses() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(py_forbidden(&env, "html-only", "1.0.0"))
        .build();
    let sys = policy_file(
        &env,
        "system.toml",
        "[release]\nmin_age = \"7d\"\nunknown = \"refuse\"\n",
    );
    user_policy(&env, "[release]\nunknown = \"allow\"\n");
    let out = run(system(&mut pypi(&env, &idx.url()), &sys).args(["uvx", "html-only==1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["html-only"]);
    assert_warning(&out, &["loosen", "release.unknown"]);
}

/// `allow` lists intersect across layers; `deny` lists add up.
#[test]
fn allow_lists_intersect_and_deny_lists_add_up() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("@acme/tool", "1.0.0", "console.log('tool');"))
        .package(forbidden(&env, "@acme/other", "1.0.0"))
        .package(forbidden(&env, "outsider", "1.0.0"))
        .package(forbidden(&env, "@acme/denied-by-user", "1.0.0"))
        .package(forbidden(&env, "@acme/denied-by-system", "1.0.0"))
        .build();
    let sys = policy_file(
        &env,
        "system.toml",
        "[packages]\nallow = [\"@acme/*\"]\ndeny = [\"@acme/denied-by-system\"]\n",
    );
    user_policy(
        &env,
        "[packages]\nallow = [\"@acme/tool\", \"@acme/denied-*\", \"outsider\"]\ndeny = [\"@acme/denied-by-user\"]\n",
    );
    let launch = |spec: &str| run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", spec]));
    assert_ran(&launch("@acme/tool@1.0.0"), "tool\n");
    // Allowed by the system layer only.
    assert_policy_refused(&env, &launch("@acme/other@1.0.0"), 3, &["@acme/other"]);
    // Allowed by the user layer only.
    assert_policy_refused(&env, &launch("outsider@1.0.0"), 3, &["outsider"]);
    // Allowed by both, denied by one.
    assert_policy_refused(
        &env,
        &launch("@acme/denied-by-user@1.0.0"),
        3,
        &["@acme/denied-by-user"],
    );
    assert_policy_refused(
        &env,
        &launch("@acme/denied-by-system@1.0.0"),
        3,
        &["@acme/denied-by-system"],
    );
}

/// Adding a host the system layer did not allow is loosening; removing one
/// is tightening.
#[test]
fn allowed_hosts_lower_layers_may_only_remove() {
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("elsewhere", "1.0.0", "console.log('ran');").tarball_host("localhost"),
        )
        .build();
    let env = TestEnv::new();
    let sys = policy_file(
        &env,
        "system.toml",
        "[registries]\nallowed_hosts = [\"localhost\"]\n",
    );
    user_policy(&env, "[registries]\nallowed_hosts = []\n");
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "elsewhere@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["elsewhere"]);

    let env = TestEnv::new();
    let sys = policy_file(&env, "system.toml", "[registries]\nallowed_hosts = []\n");
    user_policy(&env, "[registries]\nallowed_hosts = [\"localhost\"]\n");
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "elsewhere@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["elsewhere"]);
    assert_warning(&out, &["loosen", "registries.allowed_hosts"]);
}

#[test]
fn user_layer_cannot_change_a_system_registry() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program(
            "via-policy",
            "1.0.0",
            "console.log('npm ok');",
        ))
        .build();
    let sys = policy_file(
        &env,
        "system.toml",
        &format!("[registries]\nnpm = \"{}\"\n", reg.url()),
    );
    user_policy(&env, &format!("[registries]\nnpm = \"{DEAD_REGISTRY}\"\n"));
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "via-policy@1.0.0"]));
    assert_ran(&out, "npm ok\n");
    assert_warning(&out, &["loosen", "registries.npm"]);
}

#[test]
fn command_line_layer_from_flag_and_environment() {
    let env = TestEnv::new();
    let reg = deny_registry(&env);
    let cli = policy_file(
        &env,
        "cli.toml",
        "[packages]\ndeny = [\"bad-root@1.0.0\"]\n",
    );
    let out = run(npm(&env, &reg)
        .arg("--policy")
        .arg(&cli)
        .args(["npx", "-y", "bad-root@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["bad-root", "1.0.0"]);

    let out = run(npm(&env, &reg)
        .env("SAFEX_POLICY", &cli)
        .args(["npx", "-y", "bad-root@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["bad-root", "1.0.0"]);

    // Without it the same launch runs.
    assert_ran(&npx(&env, &reg, &["-y", "bad-root@1.0.0"]), "old root\n");
}

/// Only system keys are mandatory: the command line may loosen what the
/// user layer set, never what the system layer set.
#[test]
fn command_line_layer_overrides_user_but_not_system() {
    let env = TestEnv::new();
    let reg = hooked_registry(&env);
    user_policy(&env, "[scripts]\nmode = \"refuse\"\n");
    let cli = policy_file(&env, "cli.toml", "[scripts]\nmode = \"strip\"\n");
    let out = run(npm(&env, &reg)
        .arg("--policy")
        .arg(&cli)
        .args(["npx", "-y", "hooked@1.0.0"]));
    assert_ran(&out, "hooked ran\n");
    assert_no_markers(&[&install_marker(&env)]);

    let sys = policy_file(&env, "system.toml", "[scripts]\nmode = \"refuse\"\n");
    std::fs::remove_file(user_policy_path(&env)).unwrap();
    let out = run(system(&mut npm(&env, &reg), &sys)
        .env("SAFEX_POLICY", &cli)
        .args(["npx", "-y", "hooked@1.0.0"]));
    assert_policy_refused(&env, &out, 3, &["hooked", "postinstall"]);
    assert_warning(
        &out,
        &["loosen", "scripts.mode", &cli.display().to_string()],
    );
}

// ---------------------------------------------------------------------------
// safex policy show
// ---------------------------------------------------------------------------

#[test]
fn policy_show_prints_each_key_with_its_layer() {
    let env = TestEnv::new();
    let sys = policy_file(&env, "system.toml", "[scripts]\nmode = \"refuse\"\n");
    user_policy(&env, "[lock]\nmode = \"frozen\"\n");
    let cli = policy_file(&env, "cli.toml", "[release]\nmin_age = \"30d\"\n");
    let out = run(system(&mut safex(&env), &sys)
        .arg("--policy")
        .arg(&cli)
        .args(["policy", "show"]));
    assert_code(&out, 0);
    let text = stdout(&out);
    for (key, value, layer) in [
        ("scripts.mode", "refuse", "system"),
        ("lock.mode", "frozen", "user"),
        ("python.pth", "strip", "built-in"),
        ("env.mode", "inherit", "built-in"),
        ("release.unknown", "allow", "built-in"),
    ] {
        assert!(
            line_with(&text, &[key, value, layer]).is_some(),
            "no line with `{key}`, `{value}` and `{layer}`\n{}",
            describe(&out)
        );
    }
    let min_age = line_with(&text, &["release.min_age"])
        .unwrap_or_else(|| panic!("no `release.min_age` line\n{}", describe(&out)));
    assert!(
        min_age.contains("30d") && !min_age.contains("built-in"),
        "`release.min_age` should be `30d` from the command line: `{min_age}`"
    );
    for key in [
        "packages.allow",
        "packages.deny",
        "registries.allowed_hosts",
        "registries.file_hosts",
        "env.pass",
        "audit.log",
    ] {
        assert!(
            line_with(&text, &[key]).is_some(),
            "no `{key}` line\n{}",
            describe(&out)
        );
    }
}

#[test]
fn policy_show_keeps_the_system_value_against_a_loosening_user() {
    let env = TestEnv::new();
    let sys = policy_file(&env, "system.toml", "[scripts]\nmode = \"refuse\"\n");
    user_policy(&env, "[scripts]\nmode = \"strip\"\n");
    let out = run(system(&mut safex(&env), &sys).args(["policy", "show"]));
    assert_code(&out, 0);
    assert!(
        line_with(&stdout(&out), &["scripts.mode", "refuse", "system"]).is_some(),
        "{}",
        describe(&out)
    );
    assert_warning(&out, &["loosen", "scripts.mode"]);
}

#[test]
fn policy_show_has_the_relay_keys_and_a_system_pin_mode_stays() {
    let env = TestEnv::new();
    let sys = policy_file(
        &env,
        "system.toml",
        "[tools]\npin = \"refuse\"\ndeny = [\"*delete*\"]\n[mcp]\nmax_line = \"8MiB\"\n",
    );
    user_policy(
        &env,
        "[tools]\npin = \"warn\"\n[tools.servers.\"@acme/*\"]\nallow = [\"read_*\"]\n[audit]\narguments = \"full\"\n",
    );
    let out = run(system(&mut safex(&env), &sys).args(["policy", "show"]));
    assert_code(&out, 0);
    let text = stdout(&out);
    for words in [
        &["tools.pin", "refuse", "system", "mandatory"][..],
        &["mcp.max_line", "8388608", "system"],
        &["mcp.redact", "true", "built-in"],
        &["audit.arguments", "full", "user"],
        &["tools ", "[tools]", "[tools.servers.\"@acme/*\"]"],
    ] {
        assert!(
            line_with(&text, words).is_some(),
            "no line with {words:?}\n{}",
            describe(&out)
        );
    }
    assert_warning(&out, &["loosen", "tools.pin"]);
}

#[test]
fn a_tool_rule_for_nobody_is_refused() {
    assert_malformed(
        "system",
        "[tools]\ndeny = [\"x\"]\n[[tools.rule]]\nallow = [\"read_*\"]\n",
        4,
        &["tools.rule", "users", "groups"],
    );
    assert_malformed(
        "user",
        "[tools]\npin = \"sometimes\"\n",
        2,
        &["tools.pin", "warn", "refuse"],
    );
}

// ---------------------------------------------------------------------------
// Malformed policy files
// ---------------------------------------------------------------------------

/// `err` names line `n` of `file` (`line N`, or `FILE:N`).
fn names_line(err: &str, file: &Path, n: usize) -> bool {
    err.contains(&format!("line {n}")) || err.contains(&format!("{}:{n}", file.display()))
}

/// A policy file with `text` at `layer` (`user`, `system`, `cli`) makes a
/// launch fail with exit 2 before any request, and the message names the
/// file, line `line` and each of `words`.
#[track_caller]
fn assert_malformed(layer: &str, text: &str, line: usize, words: &[&str]) {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "any-app", "1.0.0"))
        .build();
    let mut cmd = npm(&env, &reg);
    let file = match layer {
        "user" => user_policy(&env, text),
        "system" => {
            let f = policy_file(&env, "system.toml", text);
            system(&mut cmd, &f);
            f
        }
        "cli" => {
            let f = policy_file(&env, "cli.toml", text);
            cmd.arg("--policy").arg(&f);
            f
        }
        _ => unreachable!(),
    };
    let out = run(cmd.args(["npx", "-y", "any-app@1.0.0"]));
    assert_policy_refused(&env, &out, 2, &[&file.display().to_string()]);
    let err = stderr(&out);
    assert!(
        names_line(&err, &file, line),
        "line {line} is not named\n{}",
        describe(&out)
    );
    for w in words {
        assert!(
            err.contains(w),
            "stderr does not name `{w}`\n{}",
            describe(&out)
        );
    }
    assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());

    // `policy show` fails the same way.
    let mut cmd = safex(&env);
    match layer {
        "system" => {
            system(&mut cmd, &file);
        }
        "cli" => {
            cmd.arg("--policy").arg(&file);
        }
        _ => {}
    }
    let out = run(cmd.args(["policy", "show"]));
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains(&file.display().to_string()),
        "{}",
        describe(&out)
    );
}

#[test]
fn unknown_key_is_a_usage_error_naming_file_line_and_key() {
    assert_malformed(
        "user",
        "[scripts]\nmode = \"strip\"\nrun_anyway = true\n",
        3,
        &["run_anyway"],
    );
    assert_malformed(
        "system",
        "# org policy\n\n[firewall]\nnet = false\n",
        3,
        &["firewall"],
    );
    assert_malformed(
        "cli",
        "[lock]\nmode = \"tofu\"\nfrozen = true\n",
        3,
        &["frozen"],
    );
    // `version` for `versions`: an entry that would refuse nothing.
    assert_malformed(
        "user",
        "[[known_compromised.npm]]\nname = \"left-padder\"\nversion = \"1.0.1\"\nreference = \"INC-1\"\n",
        3,
        &["version"],
    );
}

/// A policy file that was named but cannot be read is a refusal, never
/// "no policy".
#[test]
fn named_policy_file_that_does_not_exist_fails_closed() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "any-app", "1.0.0"))
        .build();
    let missing = env.root().join("policies/missing.toml");
    for mut cmd in [
        {
            let mut c = npm(&env, &reg);
            c.arg("--policy").arg(&missing);
            c
        },
        {
            let mut c = npm(&env, &reg);
            c.env("SAFEX_POLICY", &missing);
            c
        },
        {
            let mut c = npm(&env, &reg);
            system(&mut c, &missing);
            c
        },
    ] {
        let out = run(cmd.args(["npx", "-y", "any-app@1.0.0"]));
        assert!(
            matches!(out.status.code(), Some(2 | 7)),
            "expected exit 2 or 7\n{}",
            describe(&out)
        );
        assert_policy_refused(&env, &out, out.status.code().unwrap(), &["missing.toml"]);
        assert!(reg.requests().is_empty(), "{:?}", reg.request_lines());
    }
}

#[test]
fn bad_value_is_a_usage_error_naming_file_line_and_key() {
    assert_malformed(
        "user",
        "# comment\n[scripts]\nmode = \"sometimes\"\n",
        3,
        &["scripts.mode", "sometimes"],
    );
    assert_malformed(
        "system",
        "[python]\npth = \"refuse-some\"\n",
        2,
        &["python.pth", "refuse-some"],
    );
    assert_malformed(
        "user",
        "[env]\nmode = \"declared\"\npass = \"HOME\"\n",
        3,
        &["env.pass"],
    );
    assert_malformed(
        "cli",
        "[lock]\nmode = \"tofu\"\n\n[release]\nunknown = \"maybe\"\n",
        5,
        &["release.unknown", "maybe"],
    );
}

#[test]
fn bad_toml_is_a_usage_error_naming_file_and_line() {
    assert_malformed("user", "[lock]\nmode = \"tofu\"\n[env\npass = []\n", 3, &[]);
    assert_malformed("system", "[scripts]\nmode = strip\n", 2, &[]);
}

#[test]
fn bad_duration_is_a_usage_error_naming_file_line_and_key() {
    for bad in ["7 days", "1y", "-7d", "d", "7d12"] {
        assert_malformed(
            "user",
            &format!("[release]\n# a week\nmin_age = \"{bad}\"\n"),
            3,
            &["release.min_age", bad],
        );
    }
}

// ---------------------------------------------------------------------------
// safex policy check
// ---------------------------------------------------------------------------

#[test]
fn policy_check_npx_decides_without_running() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "fine-app", "1.0.0").dep("fine-dep", "^1.0.0"))
        .package(
            lib("fine-dep", "1.2.0").script("postinstall", &touch_script(&install_marker(&env))),
        )
        .package(forbidden(&env, "denied-app", "1.0.0").dep("@evil/helper", "^1.0.0"))
        .package(lib("@evil/helper", "1.0.0"))
        .build();
    user_policy(&env, "[packages]\ndeny = [\"@evil/*\"]\n");

    let out = run(npm(&env, &reg).args(["policy", "check", "npx", "fine-app@1.0.0"]));
    assert_code(&out, 0);
    assert_mentions(&out, &["fine-app", "fine-dep"]);
    assert_no_markers(&[&program_marker(&env), &install_marker(&env)]);

    let out = run(npm(&env, &reg).args(["policy", "check", "npx", "denied-app@1.0.0"]));
    assert_code(&out, 3);
    assert_mentions(&out, &["denied-app", "@evil/helper"]);
    assert_no_markers(&[&program_marker(&env), &install_marker(&env)]);
    assert_no_stray_writes(&env);
}

/// `policy check` answers what a launch would: a tree that `scripts.mode =
/// "refuse"` refuses at launch is refused by the check too (the registry's
/// metadata declares the scripts; nothing need be unpacked).
#[test]
fn policy_check_applies_scripts_refuse() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "hooked-app", "1.0.0").dep("hook-dep", "^1.0.0"))
        .package(
            lib("hook-dep", "1.0.3").script("postinstall", &touch_script(&install_marker(&env))),
        )
        .build();
    user_policy(&env, "[scripts]\nmode = \"refuse\"\n");
    let out = run(npm(&env, &reg).args(["policy", "check", "npx", "hooked-app@1.0.0"]));
    assert_code(&out, 3);
    assert_mentions(&out, &["hook-dep", "postinstall"]);
    assert_no_markers(&[&program_marker(&env), &install_marker(&env)]);
}

/// `prepare` is not install-time code for a registry tarball (npm runs it
/// for git and directory sources only): under `scripts.mode = "refuse"` a
/// tree whose dependency has one is allowed by the launch and by `policy
/// check`, before and after the tree is built; a real hook is refused by
/// both, before and after.
#[test]
fn policy_check_and_launch_reach_one_decision_on_install_code() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("prep-app", "1.0.0", "console.log(require('prep-dep'));")
                .dep("prep-dep", "^1.0.0"),
        )
        .package(lib("prep-dep", "1.0.3").script("prepare", &touch_script(&install_marker(&env))))
        .package(forbidden(&env, "hooked-app", "1.0.0").dep("hook-dep", "^1.0.0"))
        .package(
            lib("hook-dep", "1.0.3").script("postinstall", &touch_script(&install_marker(&env))),
        )
        .build();
    user_policy(&env, "[scripts]\nmode = \"refuse\"\n");
    let check = |spec: &str| run(npm(&env, &reg).args(["policy", "check", "npx", spec]));
    // Not built yet: decided from the registry's metadata.
    assert_code(&check("prep-app@1.0.0"), 0);
    assert_code(&check("hooked-app@1.0.0"), 3);
    let out = npx(&env, &reg, &["-y", "prep-app@1.0.0"]);
    assert_ran(&out, "1.0.3\n");
    assert_policy_refused(
        &env,
        &npx(&env, &reg, &["-y", "hooked-app@1.0.0"]),
        3,
        &["hook-dep", "postinstall"],
    );
    // Built now (the refusal came after the build): the same answers, from
    // what the launches read in the tarballs.
    let out = check("prep-app@1.0.0");
    assert_code(&out, 0);
    assert_mentions(&out, &["prep-dep"]);
    let out = check("hooked-app@1.0.0");
    assert_code(&out, 3);
    assert_mentions(&out, &["hook-dep", "postinstall"]);
    assert_no_markers(&[&program_marker(&env), &install_marker(&env)]);
}

/// Likewise `lock.mode = "frozen"`: an unlocked root would be refused.
#[test]
fn policy_check_applies_frozen_lock_mode() {
    let env = TestEnv::new();
    let reg = FixtureRegistry::builder()
        .package(forbidden(&env, "plain-app", "1.0.0"))
        .build();
    user_policy(&env, "[lock]\nmode = \"frozen\"\n");
    let out = run(npm(&env, &reg).args(["policy", "check", "npx", "plain-app@1.0.0"]));
    assert_code(&out, 3);
    assert_mentions(&out, &["plain-app"]);
    assert_no_markers(&[&program_marker(&env)]);
}

#[test]
fn policy_check_uvx_decides_without_running() {
    let env = TestEnv::new();
    let idx = PyIndex::builder()
        .package(py_forbidden(&env, "fine-py", "1.0.0").dep("fine-py-dep>=1"))
        .package(PyPkg::library("fine-py-dep", "1.0.0", ""))
        .package(py_forbidden(&env, "denied-py", "1.0.0").dep("shady-dep>=1"))
        .package(PyPkg::library("shady-dep", "1.0.0", ""))
        .build();
    user_policy(&env, "[packages]\ndeny = [\"shady-dep\"]\n");

    let out = run(pypi(&env, &idx.url()).args(["policy", "check", "uvx", "fine-py==1.0.0"]));
    assert_code(&out, 0);
    assert_mentions(&out, &["fine-py", "fine-py-dep"]);

    let out = run(pypi(&env, &idx.url()).args(["policy", "check", "uvx", "denied-py==1.0.0"]));
    assert_code(&out, 3);
    assert_mentions(&out, &["denied-py", "shady-dep"]);
    assert_no_markers(&[&program_marker(&env)]);
    assert_no_stray_writes(&env);
}

// ---------------------------------------------------------------------------
// The shipped example and the documentation
// ---------------------------------------------------------------------------

/// `policies/corporate-strict.toml` loads, and sets every key.
#[test]
fn corporate_strict_example_sets_every_key() {
    let env = TestEnv::new();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/corporate-strict.toml"
    );
    let out = run(safex(&env).args(["--policy", file, "policy", "show"]));
    assert_code(&out, 0);
    let text = stdout(&out);
    for key in [
        "registries.npm",
        "registries.pypi",
        "registries.allowed_hosts",
        "packages.allow",
        "packages.deny",
        "release.min_age",
        "release.unknown",
        "scripts.mode",
        "python.pth",
        "lock.mode",
        "env.mode",
        "env.pass",
        "audit.log",
        "sandbox.mode",
        "sandbox.profile",
        "sandbox.net",
        "sandbox.allow_net",
        "sandbox.cwd",
        "servers",
    ] {
        assert!(
            line_with(&text, &[key, "corporate-strict.toml"]).is_some(),
            "the example does not set `{key}`\n{}",
            describe(&out)
        );
    }
    for (key, value) in [
        ("release.min_age", "\"7d\""),
        ("release.unknown", "\"refuse\""),
        ("scripts.mode", "\"refuse\""),
        ("python.pth", "\"refuse-all\""),
        ("lock.mode", "\"frozen\""),
        ("env.mode", "\"declared\""),
        ("sandbox.mode", "\"enforce\""),
        ("sandbox.profile", "\"strict\""),
        ("sandbox.net", "\"allow-list\""),
    ] {
        assert!(
            line_with(&text, &[key, value]).is_some(),
            "`{key}` is not {value}\n{text}"
        );
    }
}

/// Every ```toml block of docs/policy.md is a policy file safex accepts
/// (blocks that are meant to be wrong are fenced as `text`).
#[test]
fn docs_policy_examples_are_valid() {
    let env = TestEnv::new();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy.md"))
        .expect("docs/policy.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 9, "only {} toml blocks", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let file = policy_file(&env, &format!("doc-{i}.toml"), block);
        let out = run(safex(&env)
            .arg("--policy")
            .arg(&file)
            .args(["policy", "show"]));
        assert!(
            out.status.success(),
            "docs/policy.md toml block {i} is refused:\n{block}\n{}",
            describe(&out)
        );
    }
}

// ---------------------------------------------------------------------------
// Archive size caps
// ---------------------------------------------------------------------------

/// `[archives]` sets the caps on what one archive may unpack to; a refusal
/// names the key to raise, a lower layer may raise a value the user layer
/// set, and never one the system layer set.
#[test]
fn archive_caps_come_from_policy_and_the_refusal_names_the_key() {
    let reg = FixtureRegistry::builder()
        .package(
            Pkg::program("biggish", "1.0.0", "console.log('big ok');")
                .file("data.bin", vec![b'x'; 4096]),
        )
        .build();
    let env = TestEnv::new();
    user_policy(&env, "[archives]\nmax_file_size = \"1KiB\"\n");
    let out = npx(&env, &reg, &["-y", "biggish@1.0.0"]);
    assert_code(&out, 5);
    assert!(
        stderr(&out).contains("archives.max_file_size"),
        "{}",
        describe(&out)
    );
    // The command-line layer raises it over the user layer.
    let cli = policy_file(&env, "cli.toml", "[archives]\nmax_file_size = \"1MiB\"\n");
    let out = run(npm(&env, &reg)
        .args(["--policy", cli.to_str().unwrap()])
        .args(["npx", "-y", "biggish@1.0.0"]));
    assert_ran(&out, "big ok\n");

    // A system value is a ceiling.
    let env = TestEnv::new();
    let sys = policy_file(
        &env,
        "system.toml",
        "[archives]\nmax_total_size = \"2KiB\"\n",
    );
    user_policy(&env, "[archives]\nmax_total_size = \"16GiB\"\n");
    let out = run(system(&mut npm(&env, &reg), &sys).args(["npx", "-y", "biggish@1.0.0"]));
    assert_code(&out, 5);
    assert!(
        stderr(&out).contains("archives.max_total_size") && stderr(&out).contains("loosen"),
        "{}",
        describe(&out)
    );

    let env = TestEnv::new();
    user_policy(&env, "[archives]\nmax_file_size = \"lots\"\n");
    let out = npx(&env, &reg, &["-y", "biggish@1.0.0"]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("archives.max_file_size"),
        "{}",
        describe(&out)
    );
}
