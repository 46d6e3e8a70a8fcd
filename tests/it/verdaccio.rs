//! safex against a real npm registry (a private Verdaccio per test, no
//! upstream): scoped packages with dependencies, the lockfile, and
//! registries that need a token.

use std::process::{Command, Output, Stdio};

use crate::support::env::{TestEnv, contains, files_under, read_lock, stderr, stdout};
use crate::support::fixture::describe;
use crate::support::verdaccio::{Options, Verdaccio, fixture_dir, locked_packages, locked_tree};

const GREETER: &str = "@fixture/greeter@1.0.0";
const SECRET_TOOL: &str = "@private/secret-tool@1.0.0";

/// Register a publisher and publish the fixture packages (words 1.0.0 then
/// 1.1.0, so 1.1.0 is the newest that `^1.0.0` matches). Returns its token.
fn publish_fixtures(v: &Verdaccio) -> String {
    let token = v.add_user("publisher", "publisher-password-1");
    for f in [
        "words-1.0.0",
        "words-1.1.0",
        "greeter-1.0.0",
        "secret-tool-1.0.0",
    ] {
        v.publish(&fixture_dir(f), &token);
    }
    token
}

/// `npm` against the instance only: an empty user config, so nothing of the
/// machine's own npm setup is involved.
fn npm_view(v: &Verdaccio, args: &[&str]) -> Output {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(cfg.path().join("npmrc"), "").unwrap();
    Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" })
        .arg("view")
        .args(args)
        .arg("--json")
        .arg("--registry")
        .arg(v.url())
        .arg("--userconfig")
        .arg(cfg.path().join("npmrc"))
        .env("npm_config_cache", cfg.path().join("cache"))
        .env("npm_config_update_notifier", "false")
        .stdin(Stdio::null())
        .output()
        .expect("run npm view")
}

/// The harness on its own (no safex): Verdaccio starts, takes the fixture
/// packages, serves them to npm, and keeps the private scope private.
#[test]
fn harness_serves_published_fixtures() {
    let v = Verdaccio::start(Options::default());
    assert!(
        v.url().starts_with("http://127.0.0.1:") && v.url().ends_with('/'),
        "{}",
        v.url()
    );
    let token = publish_fixtures(&v);

    let o = npm_view(&v, &["@fixture/words", "versions"]);
    assert!(
        o.status.success(),
        "npm view failed\n{}\n{}",
        describe(&o),
        v.logs()
    );
    let versions: serde_json::Value = serde_json::from_slice(&o.stdout).expect("npm view --json");
    assert_eq!(versions, serde_json::json!(["1.0.0", "1.1.0"]));

    let words = v.get("/@fixture%2fwords", None);
    assert_eq!(words.status, 200, "{}", words.text());
    let words = words.json();
    assert_eq!(words["dist-tags"]["latest"], "1.1.0");
    let dist = &words["versions"]["1.1.0"]["dist"];
    assert!(
        dist["integrity"].as_str().unwrap().starts_with("sha512-"),
        "{dist}"
    );
    assert!(
        dist["tarball"].as_str().unwrap().starts_with(&v.url()),
        "{dist}"
    );

    let greeter = v.get("/@fixture%2fgreeter", None).json();
    assert_eq!(
        greeter["versions"]["1.0.0"]["dependencies"]["@fixture/words"],
        "^1.0.0"
    );

    // The private scope: nothing without a token, everything with one.
    let anon = v.get("/@private%2fsecret-tool", None);
    assert!(
        matches!(anon.status, 401 | 403),
        "anonymous read of @private: HTTP {}",
        anon.status
    );
    let o = npm_view(&v, &["@private/secret-tool", "version"]);
    assert!(
        !o.status.success(),
        "npm view of @private without a token worked\n{}",
        describe(&o)
    );
    let authed = v.get("/@private%2fsecret-tool", Some(&token));
    assert_eq!(authed.status, 200, "{}", authed.text());
    assert!(authed.json()["versions"]["1.0.0"]["bin"]["secret-tool"].is_string());

    // Nothing proxies: an unknown package is simply not there.
    assert_eq!(v.get("/left-pad", None).status, 404);
}

/// A scoped root with a scoped dependency from a registry given by
/// `SAFEX_NPM_REGISTRY`: launched with its arguments verbatim, the tree is
/// recorded in the lockfile, and the lock entry never floats.
#[test]
fn scoped_package_with_dependency_is_locked_and_never_floats() {
    let v = Verdaccio::start(Options::default());
    let token = publish_fixtures(&v);
    let env = TestEnv::new();
    let expected = "Howdy from @fixture/words 1.1.0\nargv: [\"hello\",\"--flag\"]\n";

    let o = env
        .safex()
        .env("SAFEX_NPM_REGISTRY", v.url())
        .args(["npx", GREETER, "hello", "--flag"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "first launch\n{}\n{}",
        describe(&o),
        v.logs()
    );
    assert_eq!(
        stdout(&o),
        expected,
        "first launch: stdout must be the program's alone\n{}",
        describe(&o)
    );

    let lock = read_lock(&env);
    let all = locked_packages(&lock);
    let words: Vec<_> = all.iter().filter(|p| p.name == "@fixture/words").collect();
    assert_eq!(
        words.len(),
        1,
        "lockfile should list @fixture/words once:\n{lock}"
    );
    assert_eq!(words[0].version, "1.1.0", "lockfile:\n{lock}");
    assert!(
        words[0].integrity.starts_with("sha512-"),
        "@fixture/words has no sha512- integrity in the lockfile:\n{lock}"
    );
    let tree = locked_tree(&lock, "@fixture/greeter", "1.0.0")
        .unwrap_or_else(|| panic!("no lock entry for {GREETER}:\n{lock}"));
    assert!(
        tree.iter()
            .any(|p| p.name == "@fixture/words" && p.version == "1.1.0"),
        "the entry for {GREETER} does not list @fixture/words 1.1.0:\n{lock}"
    );
    assert!(
        !lock.contains("127.0.0.1"),
        "the lockfile must not record a registry URL:\n{lock}"
    );
    assert!(
        !lock.contains(&token),
        "the publisher's token is in the lockfile"
    );

    // A newer matching version appears; the locked root does not move.
    v.publish(&fixture_dir("words-1.2.0"), &token);
    let o = env
        .safex()
        .env("SAFEX_NPM_REGISTRY", v.url())
        .args(["npx", GREETER, "hello", "--flag"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "second launch\n{}\n{}",
        describe(&o),
        v.logs()
    );
    assert_eq!(
        stdout(&o),
        expected,
        "second launch picked up another version\n{}",
        describe(&o)
    );
    let lock2 = read_lock(&env);
    assert_eq!(
        lock2, lock,
        "a launch of a locked root rewrote the lockfile"
    );

    // `safex lock` prints the (locked) tree and execs nothing.
    let o = env
        .safex()
        .env("SAFEX_NPM_REGISTRY", v.url())
        .args(["lock", "npx", GREETER])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "safex lock\n{}\n{}",
        describe(&o),
        v.logs()
    );
    let out = stdout(&o);
    assert!(
        !out.contains("Howdy"),
        "safex lock ran the program\n{}",
        describe(&o)
    );
    for needle in ["@fixture/greeter", "1.0.0", "@fixture/words", "1.1.0"] {
        assert!(
            out.contains(needle),
            "safex lock output lacks {needle:?}\n{}",
            describe(&o)
        );
    }
    assert!(
        !out.contains("1.2.0"),
        "safex lock re-resolved the locked root\n{}",
        describe(&o)
    );

    let stray = env.written_outside_cache();
    assert!(
        stray.is_empty(),
        "safex wrote outside its cache and lockfile: {stray:?}"
    );
}

/// Write `$HOME/.npmrc` the way a developer's looks: default registry, a
/// scoped registry, and (optionally) the token for it.
fn write_npmrc(env: &TestEnv, v: &Verdaccio, token: Option<&str>) {
    let mut rc = format!("registry={}\n@private:registry={}\n", v.url(), v.url());
    if let Some(t) = token {
        rc += &format!("{}={t}\n", v.auth_key());
    }
    std::fs::write(env.home().join(".npmrc"), rc).unwrap();
}

/// A scope that needs a token: safex takes registry and token from the
/// user's `.npmrc` (no `SAFEX_NPM_REGISTRY`), and the token goes nowhere
/// but the registry: not to the terminal, the lockfile or the cache.
#[test]
fn auth_scope_uses_npmrc_token_and_never_leaks_it() {
    let v = Verdaccio::start(Options::default());
    let publisher = publish_fixtures(&v);
    let token = v.add_user("reader", "reader-password-1");
    assert_ne!(token, publisher);
    let env = TestEnv::new();
    write_npmrc(&env, &v, Some(&token));

    let o = env
        .safex()
        .args(["npx", SECRET_TOOL, "--verbose", "x y"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "launch with a token\n{}\n{}",
        describe(&o),
        v.logs()
    );
    assert_eq!(
        stdout(&o),
        "secret-tool 1.0.0 ran\nargv: [\"--verbose\",\"x y\"]\n",
        "{}",
        describe(&o)
    );

    for t in [&token, &publisher] {
        assert!(!contains(&o.stdout, t.as_bytes()), "a token is on stdout");
        assert!(
            !contains(&o.stderr, t.as_bytes()),
            "a token is on stderr:\n{}",
            stderr(&o)
        );
    }
    let lock = read_lock(&env);
    assert!(
        !lock.contains(&token),
        "the token is in the lockfile:\n{lock}"
    );
    assert!(
        locked_packages(&lock)
            .iter()
            .any(|p| p.name == "@private/secret-tool" && p.version == "1.0.0"),
        "the lockfile does not list {SECRET_TOOL}:\n{lock}"
    );
    let cache_files = files_under(&env.cache());
    assert!(
        !cache_files.is_empty(),
        "nothing in the cache at {}",
        env.cache().display()
    );
    for f in cache_files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !contains(&bytes, token.as_bytes()),
            "the token is in the cache file {}",
            f.display()
        );
    }
    let stray = env.written_outside_cache();
    assert!(
        stray.is_empty(),
        "safex wrote outside its cache and lockfile: {stray:?}"
    );
}

/// The same scope without the token line: a registry error (exit 6) that
/// names the package, not a crash and not some other code.
#[test]
fn auth_scope_without_token_fails_cleanly() {
    let v = Verdaccio::start(Options::default());
    publish_fixtures(&v);
    let env = TestEnv::new();
    write_npmrc(&env, &v, None);

    let o = env.safex().args(["npx", SECRET_TOOL]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(6),
        "launch without a token\n{}",
        describe(&o)
    );
    assert!(
        stdout(&o).is_empty(),
        "stdout must stay empty when nothing was launched\n{}",
        describe(&o)
    );
    assert!(
        err.contains("@private/secret-tool"),
        "stderr does not name the package\n{}",
        describe(&o)
    );
    assert!(
        err.contains("error:"),
        "stderr has no `error:` line\n{}",
        describe(&o)
    );
    assert!(
        !err.contains("panicked"),
        "safex panicked\n{}",
        describe(&o)
    );
    assert!(
        !env.lockfile().exists() || !read_lock(&env).contains("secret-tool"),
        "a failed launch was locked"
    );
}
