//! safex uvx against a real Python package index (a private pypiserver per
//! test, HTML-only simple index, no upstream) serving wheels built at test
//! time from `tests/fixtures/pypi`: a root with a dependency, the lockfile,
//! and an index behind HTTP basic auth.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::env::{TestEnv, contains, files_under, read_lock, stderr, stdout};
use crate::support::fixture::describe;
use crate::support::pypiserver::{
    PypiServer, Wheel, basic_auth_header, build_fixtures, file_sha256, isolated_pip,
    locked_pypi_packages, locked_pypi_tree, python_program, venv_bin,
};

const HELLO: &str = "safex-fixture-hello==1.0.0";
const USER: &str = "reader";
const PASSWORD: &str = "pw-Zq81-never-shown";

/// A directory with the fixture wheels an index starts with: hello 1.0.0,
/// and dep 1.0.0 and 1.1.0 (so 1.1.0 is the newest that `>=1.0` matches).
struct Fixtures {
    dir: tempfile::TempDir,
    hello: PathBuf,
    dep_1_0: PathBuf,
    dep_1_1: PathBuf,
}

impl Fixtures {
    fn build() -> Fixtures {
        let dir = tempfile::Builder::new()
            .prefix("safex-pypi-packages-")
            .tempdir()
            .unwrap();
        let w = build_fixtures(dir.path(), &["hello-1.0.0", "dep-1.0.0", "dep-1.1.0"]);
        Fixtures {
            hello: w[0].clone(),
            dep_1_0: w[1].clone(),
            dep_1_1: w[2].clone(),
            dir,
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What `safex-fixture-hello` prints.
fn hello_output(dep: &str, args: &[&str]) -> String {
    format!(
        "safex-fixture-hello 1.0.0 with safex-fixture-dep {dep}\ndist-info: {dep}\nvenv: True\nargv: {}\n",
        serde_json::to_string(args).unwrap()
    )
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

// ---------------------------------------------------------------------------
// The harness on its own (no safex)

/// The fixture wheels are well formed and reproducible, pypiserver serves
/// them with their sha256, pip downloads them byte for byte, and a real
/// `pip install` of the root runs it with the newest matching dependency.
#[test]
fn harness_serves_fixture_wheels() {
    let fx = Fixtures::build();

    // Same description, same bytes.
    let again = tempfile::tempdir().unwrap();
    let rebuilt = Wheel::fixture("hello-1.0.0").build(again.path());
    assert_eq!(
        std::fs::read(&rebuilt).unwrap(),
        std::fs::read(&fx.hello).unwrap(),
        "building the same fixture twice gave different bytes"
    );
    assert_eq!(
        fx.hello.file_name().unwrap(),
        "safex_fixture_hello-1.0.0-py3-none-any.whl"
    );

    // RECORD lists every other entry with its hash and size.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&fx.hello).unwrap()).unwrap();
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.expect("entry name").into_owned())
        .collect();
    let record = {
        let mut f = zip
            .by_name("safex_fixture_hello-1.0.0.dist-info/RECORD")
            .expect("RECORD in the wheel");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        s
    };
    for n in &names {
        assert!(
            record.lines().any(|l| l.starts_with(&format!("{n},"))),
            "RECORD does not list {n}:\n{record}"
        );
    }
    assert!(
        names.contains(&"safex_fixture_hello/__init__.py".to_string())
            && names.contains(&"safex_fixture_hello-1.0.0.dist-info/entry_points.txt".to_string()),
        "{names:?}"
    );

    let server = PypiServer::start(fx.path(), None);
    let url = server.index_url();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/simple/"),
        "{url}"
    );
    let root = server.get("/simple/").unwrap();
    assert_eq!(root.status, 200, "{}", root.text());
    for project in ["safex-fixture-hello", "safex-fixture-dep"] {
        assert!(
            root.text().contains(project),
            "/simple/ does not list {project}:\n{}",
            root.text()
        );
    }
    let page = server.get("/simple/safex-fixture-dep/").unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    for wheel in [&fx.dep_1_0, &fx.dep_1_1] {
        let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
        let link = format!("{name}#sha256={}", file_sha256(wheel));
        assert!(
            page.text().contains(&link),
            "the project page lacks {link}:\n{}",
            page.text()
        );
    }
    // No fallback to any other index: an unknown project is simply absent.
    let missing = server.get("/simple/safex-fixture-absent/").unwrap();
    assert_eq!(missing.status, 404, "{}", missing.text());

    // pip downloads exactly the bytes that were built.
    let work = tempfile::tempdir().unwrap();
    let o = run(isolated_pip(Path::new(python_program()), work.path())
        .args(["download", "--no-deps", "--index-url", &url, "--dest"])
        .arg(work.path().join("dl"))
        .arg(HELLO));
    assert!(
        o.status.success(),
        "pip download\n{}\n{}",
        describe(&o),
        server.logs()
    );
    let got = work.path().join("dl").join(fx.hello.file_name().unwrap());
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(&fx.hello).unwrap()
    );

    // A real install runs and picks the newest matching dependency.
    let venv = work.path().join("venv");
    let o = run(Command::new(python_program())
        .args(["-m", "venv"])
        .arg(&venv));
    assert!(o.status.success(), "python3 -m venv\n{}", describe(&o));
    let o = run(isolated_pip(&venv_bin(&venv, "python"), work.path()).args([
        "install",
        "--index-url",
        &url,
        HELLO,
    ]));
    assert!(
        o.status.success(),
        "pip install\n{}\n{}",
        describe(&o),
        server.logs()
    );
    let o = run(Command::new(venv_bin(&venv, "safex-fixture-hello")).args(["a", "--b"]));
    assert!(o.status.success(), "safex-fixture-hello\n{}", describe(&o));
    assert_eq!(stdout(&o), hello_output("1.1.0", &["a", "--b"]));
}

/// With basic auth, nothing is listed or served without the right
/// password; pip with the credentials in the index URL gets the wheel.
#[test]
fn harness_basic_auth() {
    let fx = Fixtures::build();
    let server = PypiServer::start(fx.path(), Some((USER, PASSWORD)));
    for (path, who) in [
        ("/simple/", None),
        ("/simple/safex-fixture-hello/", None),
        ("/simple/safex-fixture-hello/", Some((USER, "wrong-pw"))),
    ] {
        let r = server.get_as(path, who).unwrap();
        assert!(
            matches!(r.status, 401 | 403),
            "GET {path} as {who:?}: HTTP {}",
            r.status
        );
    }
    let page = server
        .get_as("/simple/safex-fixture-hello/", Some((USER, PASSWORD)))
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    let file = format!(
        "/packages/{}",
        fx.hello.file_name().unwrap().to_string_lossy()
    );
    assert!(matches!(
        server.get_as(&file, None).unwrap().status,
        401 | 403
    ));
    assert_eq!(
        server.get(&file).unwrap().body,
        std::fs::read(&fx.hello).unwrap()
    );

    let work = tempfile::tempdir().unwrap();
    let pip_download = |url: &str| {
        run(isolated_pip(Path::new(python_program()), work.path())
            .args(["download", "--no-deps", "--index-url", url, "--dest"])
            .arg(work.path().join("dl"))
            .arg(HELLO))
    };
    let o = pip_download(&server.index_url_with(USER, PASSWORD));
    assert!(
        o.status.success(),
        "pip download\n{}\n{}",
        describe(&o),
        server.logs()
    );
    let o = pip_download(&server.index_url_with(USER, "wrong-pw"));
    assert!(
        !o.status.success(),
        "pip download with a wrong password worked\n{}",
        describe(&o)
    );
}

// ---------------------------------------------------------------------------
// safex uvx

/// A root with a dependency from an index given by `SAFEX_PYPI_INDEX`:
/// launched with its arguments verbatim, the tree is recorded with the
/// sha256 of each wheel, and the lock entry never floats.
#[test]
fn html_index_root_with_dependency_is_locked_and_never_floats() {
    let fx = Fixtures::build();
    let server = PypiServer::start(fx.path(), None);
    let env = TestEnv::new();
    let expected = hello_output("1.1.0", &["a", "--b"]);

    let o = env
        .safex()
        .env("SAFEX_PYPI_INDEX", server.index_url())
        .args(["uvx", HELLO, "a", "--b"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "first launch\n{}\n{}",
        describe(&o),
        server.logs()
    );
    assert_eq!(
        stdout(&o),
        expected,
        "first launch: stdout must be the program's alone\n{}",
        describe(&o)
    );

    let lock = read_lock(&env);
    let tree = locked_pypi_tree(&lock, "safex-fixture-hello", "1.0.0")
        .unwrap_or_else(|| panic!("no [[pypi]] entry with roots = [{HELLO:?}]:\n{lock}"));
    for (name, version, wheel) in [
        ("safex-fixture-hello", "1.0.0", &fx.hello),
        ("safex-fixture-dep", "1.1.0", &fx.dep_1_1),
    ] {
        let p = tree
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("the entry for {HELLO} does not list {name}:\n{lock}"));
        assert_eq!(p.version, version, "{name} in the lockfile:\n{lock}");
        let sha = file_sha256(wheel);
        assert!(
            p.sha256.contains(&sha),
            "{name} {version}: the lockfile lacks the sha256 of its wheel ({sha}):\n{lock}"
        );
    }
    assert_eq!(tree.len(), 2, "unexpected packages in the entry:\n{lock}");
    assert!(
        !lock.contains("127.0.0.1"),
        "the lockfile must not record an index URL:\n{lock}"
    );

    // A newer matching version appears; the locked root does not move.
    let dep_1_2 = Wheel::fixture("dep-1.2.0").build(fx.path());
    let page = server.get("/simple/safex-fixture-dep/").unwrap();
    assert!(
        page.text()
            .contains(&*dep_1_2.file_name().unwrap().to_string_lossy()),
        "the index does not serve dep 1.2.0:\n{}",
        page.text()
    );
    let o = env
        .safex()
        .env("SAFEX_PYPI_INDEX", server.index_url())
        .args(["uvx", HELLO, "a", "--b"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "second launch\n{}\n{}",
        describe(&o),
        server.logs()
    );
    assert_eq!(
        stdout(&o),
        expected,
        "second launch picked up another version\n{}",
        describe(&o)
    );
    assert_eq!(
        read_lock(&env),
        lock,
        "a launch of a locked root rewrote the lockfile"
    );

    // `safex lock` prints the (locked) tree and runs nothing.
    let o = env
        .safex()
        .env("SAFEX_PYPI_INDEX", server.index_url())
        .args(["lock", "uvx", HELLO])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "safex lock\n{}\n{}",
        describe(&o),
        server.logs()
    );
    let out = stdout(&o);
    assert!(
        !out.contains("argv:"),
        "safex lock ran the program\n{}",
        describe(&o)
    );
    for needle in ["safex-fixture-hello", "1.0.0", "safex-fixture-dep", "1.1.0"] {
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
    assert_eq!(read_lock(&env), lock, "safex lock rewrote a locked entry");

    let stray = env.written_outside_cache();
    assert!(
        stray.is_empty(),
        "safex wrote outside its cache and lockfile: {stray:?}"
    );
}

/// Everything a secret could leak into: stdout, stderr, the lockfile and
/// every file in the cache. Checks the password and the `Authorization`
/// value (which carries it, base64-encoded).
fn assert_no_secret(env: &TestEnv, outputs: &[&Output], secrets: &[&str]) {
    let mut needles: Vec<String> = Vec::new();
    for s in secrets {
        needles.push(s.to_string());
        let header = basic_auth_header(USER, s);
        needles.push(header.trim_start_matches("Basic ").to_string());
    }
    for o in outputs {
        for n in &needles {
            assert!(!contains(&o.stdout, n.as_bytes()), "a secret is on stdout");
            assert!(
                !contains(&o.stderr, n.as_bytes()),
                "a secret is on stderr:\n{}",
                stderr(o)
            );
        }
    }
    let mut files = files_under(&env.cache());
    if env.lockfile().exists() {
        files.push(env.lockfile());
    }
    files.extend(env.written_outside_cache());
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for n in &needles {
            assert!(
                !contains(&bytes, n.as_bytes()),
                "a secret is in {}",
                f.display()
            );
        }
    }
}

/// Drop-in: the index and its credentials come from `PIP_INDEX_URL`
/// (`http://user:password@127.0.0.1:PORT/simple/`), as a pip user has it;
/// the launch works and the password goes nowhere but the index.
#[test]
fn basic_auth_in_pip_index_url_works_and_never_leaks() {
    let fx = Fixtures::build();
    let server = PypiServer::start(fx.path(), Some((USER, PASSWORD)));
    let env = TestEnv::new();
    let url = server.index_url_with(USER, PASSWORD);

    let first = env
        .safex()
        .env("PIP_INDEX_URL", &url)
        .args(["uvx", HELLO, "--verbose", "x y"])
        .output()
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "launch with credentials in PIP_INDEX_URL\n{}\n{}",
        describe(&first),
        server.logs()
    );
    assert_eq!(
        stdout(&first),
        hello_output("1.1.0", &["--verbose", "x y"]),
        "{}",
        describe(&first)
    );
    let lock = read_lock(&env);
    assert!(
        locked_pypi_packages(&lock)
            .iter()
            .any(|p| p.name == "safex-fixture-dep" && p.version == "1.1.0"),
        "the lockfile does not list safex-fixture-dep 1.1.0:\n{lock}"
    );
    assert!(
        !files_under(&env.cache()).is_empty(),
        "nothing in the cache at {}",
        env.cache().display()
    );

    // And once more, from the lock.
    let second = env
        .safex()
        .env("PIP_INDEX_URL", &url)
        .args(["uvx", HELLO])
        .output()
        .unwrap();
    assert_eq!(
        second.status.code(),
        Some(0),
        "second launch\n{}\n{}",
        describe(&second),
        server.logs()
    );
    assert_eq!(stdout(&second), hello_output("1.1.0", &[]));

    assert_no_secret(&env, &[&first, &second], &[PASSWORD]);
    let stray = env.written_outside_cache();
    assert!(
        stray.is_empty(),
        "safex wrote outside its cache and lockfile: {stray:?}"
    );
}

/// A wrong password: a registry error (exit 6) that names the project and
/// not the password, nothing on stdout, nothing locked.
#[test]
fn basic_auth_wrong_password_fails_cleanly() {
    let fx = Fixtures::build();
    let server = PypiServer::start(fx.path(), Some((USER, PASSWORD)));
    let env = TestEnv::new();
    let wrong = "pw-Wrong-77-never-shown";

    let o = env
        .safex()
        .env("PIP_INDEX_URL", server.index_url_with(USER, wrong))
        .args(["uvx", HELLO])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(6),
        "launch with a wrong password\n{}\n{}",
        describe(&o),
        server.logs()
    );
    assert!(
        stdout(&o).is_empty(),
        "stdout must stay empty when nothing was launched\n{}",
        describe(&o)
    );
    assert!(
        err.contains("safex-fixture-hello"),
        "stderr does not name the project\n{}",
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
    assert_no_secret(&env, &[&o], &[wrong, PASSWORD]);
    assert!(
        !env.lockfile().exists() || !read_lock(&env).contains("safex-fixture"),
        "a failed launch was locked"
    );
}
