//! A real Python package index for tests: a pinned pypiserver, installed
//! once into a venv in the target dir, one private instance per test on a
//! free loopback port, serving a directory of wheels as an HTML-only simple
//! index (PEP 503), optionally behind HTTP basic auth.
//!
//! Also here: a wheel builder (the fixture wheels are made at test time from
//! `tests/fixtures/pypi/<name>/`, byte for byte reproducible), a wheelhouse
//! of real wheels fetched once per machine with `pip download`, and readers
//! for the `[[pypi]]` part of safex's lockfile.
//!
//! Nothing here names a public index: `pip install` and `pip download` use
//! whatever this machine's pip is configured with. `PIP_FIND_LINKS` is
//! removed from their environment so the wheels come from that index and not
//! from a local directory that other machines do not have.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::verdaccio::{HttpResponse, free_port, http};

/// The exact pypiserver release the harness runs.
pub const PYPISERVER_VERSION: &str = "2.4.2";
/// pypiserver reads htpasswd files with passlib (its `passlib` extra).
pub const PASSLIB_VERSION: &str = "1.7.4";

/// Everything installed into the tool venv, pinned, with pypiserver's own
/// dependencies at the releases current when the pins were chosen (the
/// markers are pypiserver's: `importlib-resources` before 3.12, `legacy-cgi`
/// from 3.13 on, where the standard library lost `cgi`).
fn tool_requirements() -> Vec<String> {
    vec![
        format!("pypiserver=={PYPISERVER_VERSION}"),
        format!("passlib=={PASSLIB_VERSION}"),
        "defusedxml==0.7.1".into(),
        "packaging==26.3".into(),
        "pip==26.3".into(),
        "importlib-resources==7.1.0; python_version < '3.12'".into(),
        "legacy-cgi==2.6.4; python_version >= '3.13'".into(),
    ]
}

/// How long to wait for a fresh instance to answer `GET /simple/`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The interpreter that makes the tool venv and runs `pip download`.
pub fn python_program() -> &'static str {
    if cfg!(windows) { "python" } else { "python3" }
}

/// `python3 -m pip` with this machine's pip configuration, minus
/// `PIP_FIND_LINKS` (see the module doc) and minus prompts and nags.
fn machine_pip(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pip"])
        .env_remove("PIP_FIND_LINKS")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PIP_PROGRESS_BAR", "off")
        .stdin(Stdio::null());
    cmd
}

/// `<python> -m pip` with no configuration at all (no config files, no
/// `PIP_*` variables, a throwaway HOME): for talking to a test index only.
/// `python` is `python3` on PATH or a venv's interpreter.
pub fn isolated_pip(python: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env(
            "PIP_CONFIG_FILE",
            if cfg!(windows) { "nul" } else { "/dev/null" },
        )
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_PROGRESS_BAR", "off")
        .args(["-m", "pip"])
        .stdin(Stdio::null());
    if cfg!(windows) {
        for k in [
            "SYSTEMROOT",
            "TEMP",
            "TMP",
            "USERPROFILE",
            "APPDATA",
            "LOCALAPPDATA",
        ] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
    }
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

fn tools_dir() -> PathBuf {
    let tools = target_dir().join("test-tools");
    fs::create_dir_all(&tools).expect("create target/test-tools");
    tools
}

/// A program in a venv: `bin/<name>` (Unix) or `Scripts\<name>.exe`.
pub fn venv_bin(venv: &Path, name: &str) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join(format!("{name}.exe"))
    } else {
        venv.join("bin").join(name)
    }
}

/// An exclusive lock on `path` (created if need be), held until dropped.
fn lock_file(path: &Path) -> fs::File {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    f
}

fn show_output(what: &str, out: &std::process::Output) -> String {
    format!(
        "{what} ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Install the pinned pypiserver into its venv (once per target dir) and
/// return the venv. Safe to call from many threads and test binaries at
/// once: the work happens under a file lock, and a completion marker holding
/// the requirement list lets every later call return at once.
pub fn ensure_installed() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(install_under_lock).clone()
}

fn install_under_lock() -> PathBuf {
    let tools = tools_dir();
    let venv = tools.join(format!("pypiserver-{PYPISERVER_VERSION}"));
    let marker = venv.join(".safex-installed");
    let manifest = tool_requirements().join("\n") + "\n";
    let entry = venv_bin(&venv, "pypi-server");
    let done = || {
        fs::read_to_string(&marker).ok().as_deref() == Some(manifest.as_str()) && entry.is_file()
    };
    if done() {
        return venv;
    }
    let _lock = lock_file(&tools.join(format!("pypiserver-{PYPISERVER_VERSION}.lock")));
    // Someone else may have finished while this process waited.
    if done() {
        return venv;
    }

    eprintln!(
        "[pypiserver] installing pypiserver=={PYPISERVER_VERSION} into {} (first use only)",
        venv.display()
    );
    let started = Instant::now();
    // One retry: an index hiccup on a fresh CI machine should not fail the
    // whole suite. A half-made venv (killed run) is never trusted.
    let mut failure = String::new();
    for attempt in 1..=2 {
        let _ = fs::remove_dir_all(&venv);
        let out = Command::new(python_program())
            .args(["-m", "venv"])
            .arg(&venv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{} -m venv`: {e} (is Python 3 on PATH?)",
                    python_program()
                )
            });
        if !out.status.success() {
            failure = show_output(
                &format!("`{} -m venv` failed (attempt {attempt})", python_program()),
                &out,
            );
            eprintln!("[pypiserver] {failure}");
            continue;
        }
        let out = machine_pip(&venv_bin(&venv, "python"))
            .args(["install", "--only-binary=:all:", "--quiet"])
            .args(tool_requirements())
            .output()
            .expect("run pip install in the tool venv");
        if out.status.success() && entry.is_file() {
            failure.clear();
            break;
        }
        failure = show_output(
            &format!("installing pypiserver=={PYPISERVER_VERSION} failed (attempt {attempt})"),
            &out,
        );
        eprintln!("[pypiserver] {failure}");
    }
    if !failure.is_empty() {
        let _ = fs::remove_dir_all(&venv);
        panic!("{failure}");
    }
    fs::write(&marker, &manifest).unwrap();
    eprintln!("[pypiserver] installed in {:.1?}", started.elapsed());
    venv
}

/// What `python3` resolves wheels for: part of the wheelhouse key, so a
/// machine whose Python changes gets a fresh wheelhouse.
fn python_identity() -> String {
    let out = Command::new(python_program())
        .args([
            "-c",
            "import sys, sysconfig; print(sys.implementation.name, sys.version_info[:2], sysconfig.get_platform())",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", python_program()));
    assert!(out.status.success(), "{}", show_output("python3 -c", &out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Real wheels for `reqs` and all their dependencies, as
/// `pip download --only-binary=:all:` picks them for this machine's
/// `python3` from the index pip is configured with. Fetched once per
/// machine into `target/test-tools/wheelhouse/<hash>/` (under a lock, with a
/// completion marker), then copied into `dest` (created if need be).
/// Returns the wheelhouse directory.
pub fn download_wheels(reqs: &[&str], dest: &Path) -> PathBuf {
    let house = wheelhouse(reqs);
    fs::create_dir_all(dest).unwrap_or_else(|e| panic!("create {}: {e}", dest.display()));
    for e in fs::read_dir(&house).unwrap_or_else(|e| panic!("read {}: {e}", house.display())) {
        let e = e.unwrap();
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".whl") {
            fs::copy(e.path(), dest.join(&name))
                .unwrap_or_else(|err| panic!("copy {}: {err}", e.path().display()));
        }
    }
    house
}

const WHEELHOUSE_MARKER: &str = ".safex-complete";

fn wheelhouse(reqs: &[&str]) -> PathBuf {
    let mut key = format!("wheelhouse v1\n{}\n", python_identity());
    for r in reqs {
        key.push_str(r);
        key.push('\n');
    }
    let hash = &sha256_hex(key.as_bytes())[..16];
    let root = tools_dir().join("wheelhouse");
    fs::create_dir_all(&root).unwrap();
    let dir = root.join(hash);
    let done = || dir.join(WHEELHOUSE_MARKER).is_file();
    if done() {
        return dir;
    }
    let _lock = lock_file(&root.join(format!("{hash}.lock")));
    if done() {
        return dir;
    }
    eprintln!(
        "[wheelhouse] downloading {reqs:?} into {} (once per machine)",
        dir.display()
    );
    let started = Instant::now();
    let tmp = root.join(format!("{hash}.tmp"));
    let mut failure = String::new();
    for attempt in 1..=2 {
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).unwrap();
        let out = machine_pip(Path::new(python_program()))
            .args(["download", "--only-binary=:all:", "--quiet", "--dest"])
            .arg(&tmp)
            .args(reqs)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{} -m pip`: {e}", python_program()));
        if out.status.success() {
            failure.clear();
            break;
        }
        failure = show_output(
            &format!("pip download {reqs:?} failed (attempt {attempt})"),
            &out,
        );
        eprintln!("[wheelhouse] {failure}");
    }
    if !failure.is_empty() {
        let _ = fs::remove_dir_all(&tmp);
        panic!("{failure}");
    }
    fs::write(tmp.join(WHEELHOUSE_MARKER), key).unwrap();
    let _ = fs::remove_dir_all(&dir);
    fs::rename(&tmp, &dir)
        .unwrap_or_else(|e| panic!("rename {} -> {}: {e}", tmp.display(), dir.display()));
    eprintln!("[wheelhouse] downloaded in {:.1?}", started.elapsed());
    dir
}

/// One running pypiserver serving `packages` (read on every request: files
/// added later are served too).
pub struct PypiServer {
    child: Option<Child>,
    port: u16,
    auth: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl PypiServer {
    /// Start an instance on a free 127.0.0.1 port. With `auth`, every
    /// download, listing and upload needs that user and password.
    pub fn start(packages: &Path, auth: Option<(&str, &str)>) -> PypiServer {
        let venv = ensure_installed();
        let dir = tempfile::Builder::new()
            .prefix("safex-pypiserver-")
            .tempdir()
            .expect("temp dir");
        let auth = auth.map(|(u, p)| (u.to_string(), p.to_string()));
        if let Some((user, password)) = &auth {
            write_htpasswd(&venv, &dir.path().join("htpasswd"), user, password);
        }
        // A port picked by the kernel can be taken by someone else before
        // pypiserver binds it: try a few.
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            let out = fs::File::create(dir.path().join("pypiserver.out")).unwrap();
            let mut cmd = Command::new(venv_bin(&venv, "pypi-server"));
            cmd.arg("run")
                .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                // Unknown projects are a 404, never a redirect elsewhere.
                .arg("--disable-fallback")
                .args(["--hash-algo", "sha256"])
                .arg("-v")
                .arg("--log-file")
                .arg(dir.path().join("pypiserver.log"));
            if auth.is_some() {
                cmd.arg("-P")
                    .arg(dir.path().join("htpasswd"))
                    .args(["-a", "download,list,update"]);
            } else {
                cmd.args(["-P", ".", "-a", "."]);
            }
            let mut child = cmd
                .arg(packages)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn pypi-server");
            match wait_ready(&mut child, port, auth.as_ref()) {
                Ok(()) => {
                    return PypiServer {
                        child: Some(child),
                        port,
                        auth,
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
        panic!("pypiserver did not start: {last_err}");
    }

    /// `http://127.0.0.1:PORT/simple/`
    pub fn index_url(&self) -> String {
        format!("http://127.0.0.1:{}/simple/", self.port)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT/simple/` (no escaping: keep
    /// test credentials to letters, digits and `-`).
    pub fn index_url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}/simple/", self.port)
    }

    /// GET a path, with this instance's credentials if it has any.
    pub fn get(&self, path: &str) -> Result<HttpResponse, String> {
        match &self.auth {
            Some((u, p)) => self.get_as(path, Some((u, p))),
            None => self.get_as(path, None),
        }
    }

    /// GET a path with the given credentials, or none.
    pub fn get_as(&self, path: &str, auth: Option<(&str, &str)>) -> Result<HttpResponse, String> {
        get(self.port, path, auth)
    }

    /// pypiserver's output and log file, for failure messages.
    pub fn logs(&self) -> String {
        read_logs(self.dir.path())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PypiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn get(port: u16, path: &str, auth: Option<(&str, &str)>) -> Result<HttpResponse, String> {
    let header = auth.map(|(u, p)| basic_auth_header(u, p));
    let mut headers = vec![("Accept", "text/html")];
    if let Some(h) = header.as_deref() {
        headers.push(("Authorization", h));
    }
    http(port, "GET", path, &headers, None)
}

fn read_logs(dir: &Path) -> String {
    let out = fs::read_to_string(dir.join("pypiserver.out")).unwrap_or_default();
    let log = fs::read_to_string(dir.join("pypiserver.log")).unwrap_or_default();
    format!("--- pypiserver output\n{out}\n--- pypiserver.log\n{log}")
}

fn wait_ready(child: &mut Child, port: u16, auth: Option<&(String, String)>) -> Result<(), String> {
    let auth = auth.map(|(u, p)| (u.as_str(), p.as_str()));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("pypiserver exited early with {status}"));
        }
        if let Ok(resp) = get(port, "/simple/", auth)
            && resp.status == 200
        {
            // Still ours? (A lost race for the port ends the process.)
            std::thread::sleep(Duration::from_millis(200));
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("pypiserver exited early with {status}"));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pypiserver did not answer GET /simple/ on 127.0.0.1:{port} within {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `Basic base64(user:password)`
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An htpasswd file (apr1 hash) made with the tool venv's passlib, the
/// library pypiserver reads it with. The password goes over stdin.
fn write_htpasswd(venv: &Path, path: &Path, user: &str, password: &str) {
    let script = "import sys\n\
        from passlib.apache import HtpasswdFile\n\
        h = HtpasswdFile(sys.argv[1], new=True, default_scheme='apr_md5_crypt')\n\
        h.set_password(sys.argv[2], sys.stdin.read())\n\
        h.save()\n";
    let mut child = Command::new(venv_bin(venv, "python"))
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the tool venv's python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && path.is_file(),
        "{}",
        show_output("writing the htpasswd file", &out)
    );
}

// ---------------------------------------------------------------------------
// Wheels

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The sha256 of a file, lowercase hex (as indexes and lockfiles write it).
pub fn file_sha256(path: &Path) -> String {
    sha256_hex(&fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// PEP 503 normalization: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A wheel to build: metadata plus files at the paths given (written as
/// given, so a test can also build a hostile one).
#[derive(Debug, Clone)]
pub struct Wheel {
    pub name: String,
    pub version: String,
    pub tag: String,
    pub summary: String,
    pub requires_python: Option<String>,
    pub requires_dist: Vec<String>,
    /// `(script name, "module:function")`
    pub console_scripts: Vec<(String, String)>,
    /// `(path in the wheel, contents)`, in this order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Wheel {
    pub fn new(name: &str, version: &str) -> Wheel {
        Wheel {
            name: name.into(),
            version: version.into(),
            tag: "py3-none-any".into(),
            summary: String::new(),
            requires_python: None,
            requires_dist: Vec::new(),
            console_scripts: Vec::new(),
            files: Vec::new(),
        }
    }

    /// The wheel described by `tests/fixtures/pypi/<fixture>/wheel.toml`,
    /// with every other file of that directory at its relative path.
    pub fn fixture(fixture: &str) -> Wheel {
        let dir = fixture_dir(fixture);
        let text = fs::read_to_string(dir.join("wheel.toml")).unwrap();
        let t: toml::Value =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}/wheel.toml: {e}", dir.display()));
        let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let mut w = Wheel::new(
            &s("name").expect("wheel.toml: name"),
            &s("version").expect("wheel.toml: version"),
        );
        w.summary = s("summary").unwrap_or_default();
        w.requires_python = s("requires-python");
        w.requires_dist = t
            .get("requires-dist")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(scripts) = t.get("console-scripts").and_then(|v| v.as_table()) {
            for (k, v) in scripts {
                w.console_scripts
                    .push((k.clone(), v.as_str().expect("script target").to_string()));
            }
        }
        let mut files = Vec::new();
        collect_files(&dir, &dir, &mut files);
        files.sort();
        for rel in files {
            if rel == "wheel.toml" {
                continue;
            }
            let bytes = fs::read(dir.join(&rel)).unwrap();
            w.files.push((rel, bytes));
        }
        w
    }

    /// The distribution name as file names spell it (`safex_fixture_hello`).
    fn escaped_name(&self) -> String {
        normalize(&self.name).replace('-', "_")
    }

    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.escaped_name(), self.version)
    }

    /// `{name}-{version}-{tag}.whl`
    pub fn filename(&self) -> String {
        format!("{}-{}-{}.whl", self.escaped_name(), self.version, self.tag)
    }

    fn metadata(&self) -> String {
        let mut m = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        if !self.summary.is_empty() {
            m += &format!("Summary: {}\n", self.summary);
        }
        if let Some(rp) = &self.requires_python {
            m += &format!("Requires-Python: {rp}\n");
        }
        for r in &self.requires_dist {
            m += &format!("Requires-Dist: {r}\n");
        }
        m
    }

    /// Every entry of the wheel, RECORD last and listing all the others
    /// (sha256 as unpadded urlsafe base64, and size).
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        let di = self.dist_info();
        let mut entries = self.files.clone();
        entries.push((format!("{di}/METADATA"), self.metadata().into_bytes()));
        entries.push((
            format!("{di}/WHEEL"),
            format!(
                "Wheel-Version: 1.0\nGenerator: safex-tests\nRoot-Is-Purelib: true\nTag: {}\n",
                self.tag
            )
            .into_bytes(),
        ));
        if !self.console_scripts.is_empty() {
            let mut ep = String::from("[console_scripts]\n");
            for (name, target) in &self.console_scripts {
                ep += &format!("{name} = {target}\n");
            }
            entries.push((format!("{di}/entry_points.txt"), ep.into_bytes()));
        }
        let mut record = String::new();
        for (path, bytes) in &entries {
            let digest =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes));
            record += &format!("{path},sha256={digest},{}\n", bytes.len());
        }
        record += &format!("{di}/RECORD,,\n");
        entries.push((format!("{di}/RECORD"), record.into_bytes()));
        entries
    }

    /// Write the wheel into `out_dir` and return its path. The bytes depend
    /// only on the description (fixed timestamps and modes).
    pub fn build(&self, out_dir: &Path) -> PathBuf {
        fs::create_dir_all(out_dir).unwrap();
        let path = out_dir.join(self.filename());
        let file =
            fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let mut zip = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        for (name, bytes) in self.entries() {
            zip.start_file(name.as_str(), opts)
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
            zip.write_all(&bytes).unwrap();
        }
        zip.finish()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let e = e.unwrap();
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            if name != "__pycache__" {
                collect_files(base, &p, out);
            }
        } else if !name.ends_with(".pyc") {
            let rel = p.strip_prefix(base).unwrap();
            let parts: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
}

/// A fixture wheel's source (`tests/fixtures/pypi/<name>`).
pub fn fixture_dir(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pypi")
        .join(name);
    assert!(
        p.join("wheel.toml").is_file(),
        "no fixture wheel source at {}",
        p.display()
    );
    p
}

/// Build the named fixtures into `out_dir`; returns their paths in order.
pub fn build_fixtures(out_dir: &Path, fixtures: &[&str]) -> Vec<PathBuf> {
    fixtures
        .iter()
        .map(|f| Wheel::fixture(f).build(out_dir))
        .collect()
}

// ---------------------------------------------------------------------------
// The `[[pypi]]` part of the lockfile

/// A package as the lockfile lists it. The format (safex's `src/lock.rs`):
///
/// ```toml
/// [[pypi]]
/// roots = ["name==version"]
/// [[pypi.package]]
/// name = "..."
/// version = "..."
/// dependencies = ["..."]
/// [[pypi.package.wheel]]
/// file = "....whl"
/// sha256 = "..."
/// ```
///
/// Read leniently: `sha256` collects every sha256 hex digest found anywhere
/// in the package's table (bare or as `sha256:...`), so the checks that use
/// it do not depend on the exact shape of the wheel list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiLocked {
    pub name: String,
    pub version: String,
    pub sha256: Vec<String>,
}

fn parse_lock(lockfile: &str) -> toml::Value {
    toml::from_str(lockfile).unwrap_or_else(|e| panic!("lockfile is not TOML: {e}\n{lockfile}"))
}

fn pypi_entries(doc: &toml::Value) -> Vec<toml::Value> {
    doc.get("pypi")
        .and_then(|e| e.as_array())
        .cloned()
        .unwrap_or_default()
}

fn collect_digests(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => {
            let s = s
                .strip_prefix("sha256:")
                .or_else(|| s.strip_prefix("sha256="))
                .unwrap_or(s);
            if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push(s.to_ascii_lowercase());
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect_digests(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| collect_digests(v, out)),
        _ => {}
    }
}

fn entry_packages(entry: &toml::Value) -> Vec<PypiLocked> {
    entry
        .get("package")
        .and_then(|p| p.as_array())
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let s = |k: &str| {
                p.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let mut sha256 = Vec::new();
            collect_digests(p, &mut sha256);
            PypiLocked {
                name: s("name"),
                version: s("version"),
                sha256,
            }
        })
        .collect()
}

/// Does a `roots` string (`name==1.0`, `Name[extra]==1.0`, `name@1.0`) name
/// this project and version?
fn root_matches(root: &str, name: &str, version: &str) -> bool {
    let (n, v) = match root.split_once("==") {
        Some(p) => p,
        None => match root.split_once('@') {
            Some(p) => p,
            None => return false,
        },
    };
    let n = n.split('[').next().unwrap_or(n).trim();
    normalize(n) == normalize(name) && v.trim() == version
}

/// Every package of every `[[pypi]]` entry.
pub fn locked_pypi_packages(lockfile: &str) -> Vec<PypiLocked> {
    pypi_entries(&parse_lock(lockfile))
        .iter()
        .flat_map(entry_packages)
        .collect()
}

/// The packages of the entry whose only root is `name==version`, or `None`
/// if there is no such entry.
pub fn locked_pypi_tree(lockfile: &str, name: &str, version: &str) -> Option<Vec<PypiLocked>> {
    pypi_entries(&parse_lock(lockfile))
        .iter()
        .find(|e| {
            e.get("roots").and_then(|r| r.as_array()).is_some_and(|r| {
                r.len() == 1
                    && r[0]
                        .as_str()
                        .is_some_and(|s| root_matches(s, name, version))
            })
        })
        .map(entry_packages)
}
