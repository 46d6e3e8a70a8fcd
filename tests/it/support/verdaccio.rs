//! A real npm registry for tests: a pinned Verdaccio, installed once into the
//! target dir, one private instance per test on a free loopback port.
//!
//! Nothing here names a public registry: the upstream (for tests that proxy
//! real packages) is whatever `npm config get registry` says on this machine.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The exact Verdaccio release the harness runs (the 5.x line works on Node 20).
pub const VERDACCIO_VERSION: &str = "5.33.0";

/// How long to wait for a fresh instance to answer `/-/ping`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn npm_program() -> &'static str {
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

/// `npm`, with the warnings about the machine's own npm config kept out of
/// the way of whatever a caller parses from stdout.
fn npm() -> Command {
    let mut cmd = Command::new(npm_program());
    cmd.env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_loglevel", "error");
    cmd
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(d)
            }
        }
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// The package.json that pins Verdaccio. `node-fetch@cjs`, which one of its
/// dependencies asks for, is a dist-tag that not every registry mirror has:
/// the override pins it to the release that tag points at.
fn tools_package_json() -> String {
    format!(
        r#"{{
  "name": "safex-test-tools-verdaccio",
  "version": "0.0.0",
  "private": true,
  "description": "Registry for safex's integration tests (installed by tests/it/support/verdaccio.rs)",
  "dependencies": {{
    "verdaccio": "{VERDACCIO_VERSION}"
  }},
  "overrides": {{
    "node-fetch": "2.7.0"
  }}
}}
"#
    )
}

/// Install the pinned Verdaccio (once per target dir) and return the install
/// directory. Safe to call from many threads and many test binaries at once:
/// the work happens under a file lock, and a completion marker that holds the
/// package.json it was made from lets every later call return at once.
pub fn ensure_installed() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(install_under_lock).clone()
}

fn install_under_lock() -> PathBuf {
    let tools = target_dir().join("test-tools");
    fs::create_dir_all(&tools).expect("create target/test-tools");
    let dir = tools.join(format!("verdaccio-{VERDACCIO_VERSION}"));
    let marker = dir.join(".safex-installed");
    let manifest = tools_package_json();
    let entry = dir.join("node_modules/verdaccio/bin/verdaccio");
    let done = || {
        fs::read_to_string(&marker).ok().as_deref() == Some(manifest.as_str()) && entry.is_file()
    };
    if done() {
        return dir;
    }

    let lock_path = tools.join(format!("verdaccio-{VERDACCIO_VERSION}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    // Someone else may have finished while this process waited for the lock.
    if done() {
        return dir;
    }

    // Start clean: a half-finished install (killed run) is never trusted.
    let _ = fs::remove_file(&marker);
    let _ = fs::remove_dir_all(dir.join("node_modules"));
    let _ = fs::remove_file(dir.join("package-lock.json"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("package.json"), &manifest).unwrap();

    eprintln!(
        "[verdaccio] installing verdaccio@{VERDACCIO_VERSION} into {} (first use only)",
        dir.display()
    );
    let started = Instant::now();
    // One retry: a registry hiccup on a fresh CI machine should not fail
    // the whole suite.
    let mut failure = String::new();
    for attempt in 1..=2 {
        let out = npm()
            .args([
                "install",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--no-save",
            ])
            .args(["--loglevel", "error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{}`: {e} (is Node.js/npm on PATH?)",
                    npm_program()
                )
            });
        if out.status.success() && entry.is_file() {
            failure.clear();
            break;
        }
        failure = format!(
            "installing verdaccio@{VERDACCIO_VERSION} failed (attempt {attempt}, {}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("[verdaccio] {failure}");
        let _ = fs::remove_dir_all(dir.join("node_modules"));
    }
    if !failure.is_empty() {
        panic!("{failure}");
    }
    fs::write(&marker, &manifest).unwrap();
    eprintln!("[verdaccio] installed in {:.1?}", started.elapsed());
    drop(lock);
    dir
}

/// The registry this machine's npm uses: the upstream a proxying instance
/// reads real packages through.
pub fn upstream_registry() -> String {
    let out = npm()
        .args(["config", "get", "registry"])
        .stdin(Stdio::null())
        .output()
        .expect("run `npm config get registry`");
    assert!(
        out.status.success(),
        "npm config get registry: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        url.starts_with("http"),
        "npm config get registry printed {url:?}"
    );
    if url.ends_with('/') {
        url
    } else {
        format!("{url}/")
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Proxy `**` (but never the fixture or private scopes) to this registry.
    pub uplink: Option<String>,
}

impl Options {
    pub fn with_uplink(url: impl Into<String>) -> Self {
        Options {
            uplink: Some(url.into()),
        }
    }
}

pub struct Verdaccio {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Verdaccio {
    pub fn start(opts: Options) -> Verdaccio {
        let install = ensure_installed();
        let dir = tempfile::Builder::new()
            .prefix("safex-verdaccio-")
            .tempdir()
            .expect("temp dir");
        // A port picked by the kernel can be taken by someone else before
        // Verdaccio binds it: try a few.
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            let config = write_config(dir.path(), port, &opts);
            let out = fs::File::create(dir.path().join("verdaccio.out")).unwrap();
            let mut child = Command::new("node")
                .arg(install.join("node_modules/verdaccio/bin/verdaccio"))
                .arg("--config")
                .arg(&config)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn node (is Node.js on PATH?)");
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return Verdaccio {
                        child: Some(child),
                        port,
                        dir,
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = format!("{e}\n{}", read_logs(dir.path()));
                }
            }
        }
        panic!("verdaccio did not start: {last_err}");
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The `.npmrc` key that carries a token for this registry.
    pub fn auth_key(&self) -> String {
        format!("//127.0.0.1:{}/:_authToken", self.port)
    }

    /// Verdaccio's own output and log file, for failure messages.
    pub fn logs(&self) -> String {
        read_logs(self.dir.path())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Register a user (self-registration is open) and return its token.
    pub fn add_user(&self, name: &str, password: &str) -> String {
        let body = serde_json::json!({
            "_id": format!("org.couchdb.user:{name}"),
            "name": name,
            "password": password,
            "type": "user",
            "roles": [],
        })
        .to_string();
        let resp = http(
            self.port,
            "PUT",
            &format!("/-/user/org.couchdb.user:{name}"),
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
        .unwrap_or_else(|e| panic!("add_user {name}: {e}\n{}", self.logs()));
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        assert!(
            resp.status == 201 || resp.status == 200,
            "add_user {name}: HTTP {} {text}\n{}",
            resp.status,
            self.logs()
        );
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("add_user {name}: {e}: {text}"));
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("add_user {name}: no token in {text}"))
            .to_string()
    }

    /// `npm publish` the package in `dir` (a fixture directory, copied first so
    /// nothing is written into the source tree) with `token`.
    pub fn publish(&self, dir: &Path, token: &str) {
        let work = tempfile::Builder::new()
            .prefix("safex-publish-")
            .tempdir()
            .unwrap();
        let pkg = work.path().join("package");
        copy_dir(dir, &pkg);
        let npmrc = work.path().join("npmrc");
        fs::write(&npmrc, format!("{}={token}\n", self.auth_key())).unwrap();
        let out = npm()
            .arg("publish")
            .arg("--registry")
            .arg(self.url())
            .arg("--userconfig")
            .arg(&npmrc)
            .args([
                "--ignore-scripts",
                "--access",
                "public",
                "--provenance=false",
            ])
            .env("npm_config_cache", work.path().join("npm-cache"))
            .current_dir(&pkg)
            .stdin(Stdio::null())
            .output()
            .expect("run npm publish");
        if !out.status.success() {
            panic!(
                "npm publish {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}\n{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
        }
    }

    /// GET a path on this registry (e.g. a packument) with an optional token.
    pub fn get(&self, path: &str, token: Option<&str>) -> HttpResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Accept", "application/json")];
        if let Some(a) = auth.as_deref() {
            headers.push(("Authorization", a));
        }
        http(self.port, "GET", path, &headers, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.logs()))
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fixture packages shipped with the tests (`tests/fixtures/verdaccio/<name>`).
pub fn fixture_dir(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verdaccio")
        .join(name);
    assert!(
        p.join("package.json").is_file(),
        "no fixture package at {}",
        p.display()
    );
    p
}

fn read_logs(dir: &Path) -> String {
    let out = fs::read_to_string(dir.join("verdaccio.out")).unwrap_or_default();
    let log = fs::read_to_string(dir.join("verdaccio.log")).unwrap_or_default();
    format!("--- verdaccio output\n{out}\n--- verdaccio.log\n{log}")
}

fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("verdaccio exited early with {status}"));
        }
        if let Ok(resp) = http(port, "GET", "/-/ping", &[], None)
            && resp.status == 200
        {
            // Still ours? (A lost race for the port ends the process.)
            std::thread::sleep(Duration::from_millis(200));
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("verdaccio exited early with {status}"));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "verdaccio did not answer GET /-/ping on 127.0.0.1:{port} within {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free loopback port, never the same one twice in this process (tests
/// run in parallel threads, each with its own instance): for the servers
/// started as other processes (Verdaccio, pypiserver).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn yaml_str(s: &str) -> String {
    // JSON strings are valid YAML double-quoted scalars.
    serde_json::Value::String(s.to_string()).to_string()
}

fn write_config(dir: &Path, port: u16, opts: &Options) -> PathBuf {
    let storage = dir.join("storage");
    fs::create_dir_all(&storage).unwrap();
    let mut c = String::new();
    c += &format!("storage: {}\n", yaml_str(&storage.to_string_lossy()));
    c += &format!("listen: 127.0.0.1:{port}\n");
    c += "max_body_size: 1000mb\n";
    c += "web:\n  enable: false\n";
    c += "middlewares:\n  audit:\n    enabled: false\n";
    c += "server:\n  keepAliveTimeout: 60\n";
    c += "auth:\n  htpasswd:\n";
    c += &format!(
        "    file: {}\n",
        yaml_str(&dir.join("htpasswd").to_string_lossy())
    );
    c += "    max_users: 1000\n";
    if let Some(up) = &opts.uplink {
        c += "uplinks:\n  upstream:\n";
        c += &format!("    url: {}\n", yaml_str(up));
        c += "    timeout: 120s\n    max_fails: 10\n    fail_timeout: 1s\n    cache: true\n";
    }
    c += "packages:\n";
    c += "  '@private/*':\n    access: $authenticated\n    publish: $authenticated\n    unpublish: $authenticated\n";
    for pat in ["'@fixture/*'", "'safex-fixture-*'"] {
        c += &format!(
            "  {pat}:\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\n"
        );
    }
    c += "  '**':\n    access: $all\n    publish: $authenticated\n    unpublish: $authenticated\n";
    if opts.uplink.is_some() {
        c += "    proxy: upstream\n";
    }
    c += &format!(
        "log: {{ type: file, path: {}, level: warn }}\n",
        yaml_str(&dir.join("verdaccio.log").to_string_lossy())
    );
    let path = dir.join("config.yaml");
    fs::write(&path, c).unwrap();
    path
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap_or_else(|err| panic!("copy {}: {err}", src.display()));
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A minimal HTTP/1.1 client for loopback: one request per connection.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpResponse, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.set_write_timeout(Some(Duration::from_secs(30))).ok();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    let body = body.unwrap_or(&[]);
    if !body.is_empty() || method != "GET" {
        req += &format!("Content-Length: {}\r\n", body.len());
    }
    req += "\r\n";
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    s.write_all(body).map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let nl = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_str = String::from_utf8_lossy(&b[..nl]);
        let size_str = size_str.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|e| format!("chunk size {size_str:?}: {e}"))?;
        b = &b[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// A package as the lockfile lists it. The format (safex's `src/lock.rs`):
///
/// ```toml
/// version = 1
/// [[npm]]
/// roots = ["name@version"]
/// [[npm.package]]
/// path = "node_modules/..."
/// name = "..."
/// version = "..."
/// integrity = "sha512-..."
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub path: String,
    pub name: String,
    pub version: String,
    pub integrity: String,
}

fn parse_lock(lockfile: &str) -> toml::Value {
    toml::from_str(lockfile).unwrap_or_else(|e| panic!("lockfile is not TOML: {e}\n{lockfile}"))
}

fn entry_packages(entry: &toml::Value) -> Vec<LockedPackage> {
    let s = |p: &toml::Value, k: &str| {
        p.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    entry
        .get("package")
        .and_then(|p| p.as_array())
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| LockedPackage {
            path: s(p, "path"),
            name: s(p, "name"),
            version: s(p, "version"),
            integrity: s(p, "integrity"),
        })
        .collect()
}

fn npm_entries(doc: &toml::Value) -> Vec<toml::Value> {
    doc.get("npm")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default()
}

/// Every package of every npm entry in the lockfile, one per name and
/// version (the same release at two places in a tree is listed once).
pub fn locked_packages(lockfile: &str) -> Vec<LockedPackage> {
    let mut all: Vec<LockedPackage> = npm_entries(&parse_lock(lockfile))
        .iter()
        .flat_map(entry_packages)
        .collect();
    all.sort_by(|a, b| (&a.name, &a.version, &a.path).cmp(&(&b.name, &b.version, &b.path)));
    all.dedup_by(|later, first| later.name == first.name && later.version == first.version);
    all
}

/// The packages (one per place in the tree) of the entry whose roots are
/// exactly `name@version`, or `None` if there is no such entry.
pub fn locked_tree(lockfile: &str, name: &str, version: &str) -> Option<Vec<LockedPackage>> {
    let id = format!("{name}@{version}");
    npm_entries(&parse_lock(lockfile))
        .iter()
        .find(|e| {
            e.get("roots")
                .and_then(|r| r.as_array())
                .is_some_and(|r| r.len() == 1 && r[0].as_str() == Some(id.as_str()))
        })
        .map(entry_packages)
}
