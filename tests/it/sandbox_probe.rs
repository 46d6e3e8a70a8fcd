//! The sandbox against a probe of our own, run by the real binary on this
//! kernel (no mocks): an npm program and a Python wheel that each try to
//! read a fake `~/.ssh/id_rsa`, write outside their state directory,
//! write their `TMPDIR`, read their parent's environment, signal their
//! parent, connect to loopback ports, listen on one, send UDP and open a
//! Unix socket (the wheel also `ptrace`s, reads another process's memory
//! and sets up `io_uring`). Each outcome is asserted, in the default
//! sandbox, with grants, with the network closed or listed, without the
//! sandbox, on the relay path and the exec path, as root and as uid 65534.

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::env::{TestEnv, is_root};
use crate::support::fixture::{FixtureRegistry, Pkg};
use crate::support::pyfixture::{PyIndex, PyPkg};
use crate::support::sandbox::{require_sandbox, tier2};

const NPM_PROBE: &str = r#"
const fs = require('fs'), net = require('net'), dgram = require('dgram'), os = require('os'), path = require('path');
const cfg = JSON.parse(process.argv[2]);
const out = {};
const attempt = (name, f) => { try { f(); out[name] = 'ok'; } catch (e) { out[name] = e.code || String(e); if (name === 'read_ssh') console.error(e.message); } };
attempt('read_ssh', () => fs.readFileSync(cfg.ssh));
attempt('write_outside', () => fs.writeFileSync(cfg.outside, 'x'));
attempt('write_tree', () => fs.writeFileSync(path.join(__dirname, 'planted.js'), 'x'));
attempt('write_tmp', () => fs.writeFileSync(path.join(os.tmpdir(), 'probe.txt'), 'x'));
attempt('read_parent_environ', () => fs.readFileSync(`/proc/${process.ppid}/environ`));
attempt('signal_parent', () => process.kill(process.ppid, 0));
const settle = (p) => new Promise((res) => { p(res); setTimeout(() => res('timeout'), 5000); });
const connect = (port) => settle((res) => {
  const s = net.connect(port, '127.0.0.1');
  s.on('connect', () => { s.destroy(); res('ok'); });
  s.on('error', (e) => res(e.code || String(e)));
});
const listen = (port) => settle((res) => {
  const srv = net.createServer();
  srv.on('error', (e) => res(e.code || String(e)));
  srv.listen(port, '127.0.0.1', () => { srv.close(); res('ok'); });
});
const udp = (port) => settle((res) => {
  let s;
  try { s = dgram.createSocket('udp4'); } catch (e) { return res(e.code || String(e)); }
  s.on('error', (e) => { res(e.code || String(e)); });
  s.send(Buffer.from('probe'), port, '127.0.0.1', (e) => { s.close(); res(e ? (e.code || String(e)) : 'ok'); });
});
const unix = () => settle((res) => {
  const s = net.connect(cfg.unix);
  s.on('connect', () => { s.destroy(); res('ok'); });
  s.on('error', (e) => res(e.code || String(e)));
});
(async () => {
  out.connect_allowed = await connect(cfg.allowed);
  out.connect_other = await connect(cfg.other);
  out.bind = await listen(cfg.bind);
  out.udp = await udp(cfg.udp);
  out.unix = await unix();
  process.stdout.write(JSON.stringify(out) + '\n');
})();
"#;

const PY_PROBE: &str = r#"import ctypes, errno, json, os, socket, sys, tempfile
cfg = json.loads(sys.argv[1])
out = {}
def name(e):
    return errno.errorcode.get(e, str(e))
def attempt(key, f):
    try:
        f()
        out[key] = 'ok'
    except OSError as e:
        out[key] = name(e.errno)
        if key == 'read_ssh':
            print(f'{type(e).__name__}: {e}', file=sys.stderr)
attempt('read_ssh', lambda: open(cfg['ssh'], 'rb').read())
attempt('write_outside', lambda: open(cfg['outside'], 'w').write('x'))
attempt('write_tree', lambda: open(os.path.join(os.path.dirname(__file__), 'planted.py'), 'w').write('x'))
attempt('write_tmp', lambda: open(os.path.join(tempfile.gettempdir(), 'probe.txt'), 'w').write('x'))
attempt('read_parent_environ', lambda: open(f'/proc/{os.getppid()}/environ', 'rb').read())
attempt('signal_parent', lambda: os.kill(os.getppid(), 0))
def connect(port):
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    s.close()
attempt('connect_allowed', lambda: connect(cfg['allowed']))
attempt('connect_other', lambda: connect(cfg['other']))
def bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', port))
    s.close()
attempt('bind', lambda: bind(cfg['bind']))
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'probe', ('127.0.0.1', port))
    s.close()
attempt('udp', lambda: udp(cfg['udp']))
def unix():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(cfg['unix'])
attempt('unix', unix)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(key, f):
    ctypes.set_errno(0)
    r = f()
    out[key] = 'ok' if r >= 0 else name(ctypes.get_errno())
# PTRACE_TRACEME: 0 unless refused.
call('ptrace', lambda: libc.ptrace(0, 0, None, None))
# process_vm_readv(parent, no iovecs): 0 unless refused.
call('process_vm_readv', lambda: libc.process_vm_readv(os.getppid(), None, 0, None, 0, 0))
# io_uring_setup(1, NULL): EFAULT unless refused (ENOSYS).
call('io_uring', lambda: libc.syscall(425, 1, None))
print(json.dumps(out), flush=True)
"#;

/// Loopback services the probe reaches for: one TCP port the policy may
/// allow, one it never does, a free port to listen on, a UDP receiver, and
/// a Unix socket.
struct Targets {
    allowed: TcpListener,
    other: TcpListener,
    bind: u16,
    udp: UdpSocket,
    _unix: std::os::unix::net::UnixListener,
    _dir: tempfile::TempDir,
}

impl Targets {
    fn new() -> Targets {
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let bind = free.local_addr().unwrap().port();
        drop(free);
        let dir = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(dir.path().join("agent.sock")).unwrap();
        Targets {
            allowed: TcpListener::bind("127.0.0.1:0").unwrap(),
            other: TcpListener::bind("127.0.0.1:0").unwrap(),
            bind,
            udp: UdpSocket::bind("127.0.0.1:0").unwrap(),
            _unix: unix,
            _dir: dir,
        }
    }

    fn port(l: &TcpListener) -> u16 {
        l.local_addr().unwrap().port()
    }

    fn config(&self, env: &TestEnv) -> String {
        serde_json::json!({
            "ssh": env.home().join(".ssh/id_rsa"),
            "outside": env.home().join("planted.txt"),
            "allowed": Self::port(&self.allowed),
            "other": Self::port(&self.other),
            "bind": self.bind,
            "udp": self.udp.local_addr().unwrap().port(),
            "unix": self._dir.path().join("agent.sock"),
        })
        .to_string()
    }
}

fn plant_secret(env: &TestEnv) {
    let ssh = env.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_rsa"), "-----BEGIN FAKE KEY-----\n").unwrap();
}

/// Run the probe through `cmd` (stdin and stdout piped: the relay path;
/// `exec_path`: stdout to a file, so safex execs it) and read its report.
fn probe(mut cmd: Command, exec_path: bool, env: &TestEnv) -> (Value, String) {
    let report = env.root().join("report.json");
    let _ = std::fs::remove_file(&report);
    if exec_path {
        cmd.stdout(std::fs::File::create(&report).unwrap());
    } else {
        cmd.stdout(Stdio::piped());
    }
    let out = cmd
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run safex");
    let stdout = if exec_path {
        std::fs::read_to_string(&report).unwrap_or_default()
    } else {
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no report from the probe ({e}); status {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        )
    });
    (report, stderr)
}

fn expect(report: &Value, want: &[(&str, &str)], context: &str) {
    eprintln!("[sandbox-probe] {context}: {report}");
    let mut wrong = Vec::new();
    for (k, v) in want {
        if report[*k] != *v {
            wrong.push(format!("{k}: want {v}, got {}", report[*k]));
        }
    }
    assert!(
        wrong.is_empty(),
        "{context}:\n  {}\nreport: {report}",
        wrong.join("\n  ")
    );
}

/// What the default sandbox refuses and lets through, whichever runtime.
const DEFAULT: &[(&str, &str)] = &[
    ("read_ssh", "EACCES"),
    ("write_outside", "EACCES"),
    ("write_tree", "EACCES"),
    ("write_tmp", "ok"),
    ("read_parent_environ", "EACCES"),
    ("signal_parent", "EPERM"),
    // `net = "host"`: connections are open, listening needs a grant.
    ("connect_allowed", "ok"),
    ("connect_other", "ok"),
    ("bind", "EACCES"),
    ("udp", "ok"),
    ("unix", "EPERM"),
];

fn policy(env: &TestEnv, name: &str, text: &str) -> std::path::PathBuf {
    let p = env.root().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn npm_registry() -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(Pkg::program("sandbox-probe", "1.0.0", NPM_PROBE))
        .build()
}

#[test]
fn npm_probe_in_each_sandbox() {
    require_sandbox!(module_path!());
    let reg = npm_registry();
    let env = TestEnv::new();
    plant_secret(&env);
    let t = Targets::new();
    let cfg = t.config(&env);
    let launch = |pre: &[&str], extra: &[&str]| {
        let mut cmd = env.safex_confined();
        cmd.env("SAFEX_NPM_REGISTRY", reg.url());
        cmd.args(pre).args(["npx", "-y"]).args(extra);
        cmd.args(["sandbox-probe@1.0.0", &cfg]);
        cmd
    };

    // The default sandbox, through the relay (as an MCP client starts it).
    let (r, stderr) = probe(launch(&[], &[]), false, &env);
    expect(&r, DEFAULT, "default sandbox, relay path");
    assert!(!env.home().join("planted.txt").exists());
    // The denial is explained, with the flag and the policy line.
    assert!(
        stderr.contains("was denied access to") && stderr.contains("--allow-read ~/.ssh/id_rsa"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[servers.\"sandbox-probe\"] read = [\"~/.ssh/id_rsa\"]"),
        "{stderr}"
    );
    let launch_line = std::fs::read_to_string(env.audit_log()).unwrap();
    let last: Value = serde_json::from_str(
        launch_line
            .lines()
            .rfind(|l| l.contains("\"launch\""))
            .unwrap(),
    )
    .unwrap();
    let applied = &last["sandbox"]["applied"];
    for part in ["landlock", "seccomp"] {
        assert!(
            applied.as_array().unwrap().iter().any(|p| p == part),
            "{last}"
        );
    }

    // The same sandbox on the exec path (stdout to a file).
    let (r, _) = probe(launch(&[], &[]), true, &env);
    expect(&r, DEFAULT, "default sandbox, exec path");

    // Grants: the key, a listener on one port.
    let bind = format!("--allow-net=127.0.0.1:{}", t.bind);
    let (r, _) = probe(launch(&[], &["--allow-read", "~/.ssh", &bind]), false, &env);
    expect(
        &r,
        &[
            ("read_ssh", "ok"),
            ("bind", "ok"),
            ("write_outside", "EACCES"),
        ],
        "with grants",
    );

    // An allow-list: only the listed port connects (tier 1: by port).
    let listed = policy(
        &env,
        "listed.toml",
        &format!(
            "[sandbox]\nnet = \"allow-list\"\nallow_net = [\"127.0.0.1:{}\"]\n",
            Targets::port(&t.allowed)
        ),
    );
    let (r, _) = probe(
        launch(&["--policy", listed.to_str().unwrap()], &[]),
        false,
        &env,
    );
    if tier2(env.safex_confined()) {
        // A namespace with only loopback: nothing is reachable but the
        // proxy (tier2_reaches_allowed_names_only_through_the_proxy).
        let want = [
            ("connect_allowed", "ECONNREFUSED"),
            ("connect_other", "ECONNREFUSED"),
            ("bind", "EACCES"),
        ];
        expect(&r, &want, "allow-list, tier 2");
    } else {
        // Tier 1: by port.
        let want = [
            ("connect_allowed", "ok"),
            ("connect_other", "EACCES"),
            ("bind", "EACCES"),
        ];
        expect(&r, &want, "allow-list, tier 1");
    }

    // A path among the server's arguments is granted (read-only: the
    // probe is not a server documented to write there), and said; the
    // strict profile grants nothing of the home directory by itself.
    let ssh = env.home().join(".ssh");
    let mut with_arg = launch(&[], &[]);
    with_arg.arg(&ssh);
    let (r, stderr) = probe(with_arg, false, &env);
    expect(
        &r,
        &[("read_ssh", "ok"), ("write_outside", "EACCES")],
        "a path argument",
    );
    assert!(
        stderr.contains(&format!(
            "read-only `{}` (an argument of sandbox-probe)",
            ssh.display()
        )),
        "{stderr}"
    );
    let strict = policy(&env, "strict.toml", "[sandbox]\nprofile = \"strict\"\n");
    let mut with_arg = launch(&["--policy", strict.to_str().unwrap()], &[]);
    with_arg.arg(&ssh);
    let (r, stderr) = probe(with_arg, false, &env);
    expect(
        &r,
        &[("read_ssh", "EACCES")],
        "a path argument, strict profile",
    );
    assert!(stderr.contains("`sandbox.profile` is `strict`"), "{stderr}");

    // No network: no IP socket at all.
    let closed = policy(&env, "closed.toml", "[sandbox]\nnet = \"none\"\n");
    let (r, _) = probe(
        launch(&["--policy", closed.to_str().unwrap()], &[]),
        false,
        &env,
    );
    expect(
        &r,
        &[
            ("connect_allowed", "EACCES"),
            ("udp", "EACCES"),
            ("read_ssh", "EACCES"),
        ],
        "net none",
    );

    // Without the sandbox everything the account can do succeeds: the
    // refusals above are the sandbox's.
    let (r, _) = probe(launch(&[], &["--no-sandbox"]), false, &env);
    expect(
        &r,
        &[
            ("read_ssh", "ok"),
            ("write_outside", "ok"),
            ("read_parent_environ", "ok"),
            ("signal_parent", "ok"),
            ("bind", "ok"),
            ("unix", "ok"),
        ],
        "--no-sandbox",
    );
}

#[test]
fn a_system_sandbox_cannot_be_switched_off_by_a_flag() {
    require_sandbox!(module_path!());
    let reg = npm_registry();
    let env = TestEnv::new();
    let system = policy(
        &env,
        "system.toml",
        "[sandbox]\nmode = \"on\"\nnet = \"none\"\n",
    );
    for flag in ["--no-sandbox", "--allow-net"] {
        let out = env
            .safex_confined()
            .env("SAFEX_NPM_REGISTRY", reg.url())
            .env("SAFEX_SYSTEM_POLICY", &system)
            .args(["npx", "-y", flag, "sandbox-probe@1.0.0", "{}"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{flag}: {stderr}");
        assert!(stderr.contains(&format!("`{flag}` is refused")), "{stderr}");
    }
}

/// Make `dir` and everything beneath owned by `uid`.
fn chown_all(dir: &Path, uid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn probes_as_another_user() {
    use std::os::unix::process::CommandExt;
    require_sandbox!(module_path!());
    if !is_root() {
        eprintln!("SKIPPED: running as uid 65534 needs root (this run is not root)");
        return;
    }
    let reg = npm_registry();
    let env = TestEnv::new();
    plant_secret(&env);
    chown_all(env.root(), 65534);
    let t = Targets::new();
    let cfg = t.config(&env);
    let mut cmd = env.safex_confined();
    cmd.env("SAFEX_NPM_REGISTRY", reg.url());
    cmd.uid(65534).gid(65534);
    cmd.args(["npx", "-y", "sandbox-probe@1.0.0", &cfg]);
    let (r, _) = probe(cmd, false, &env);
    // `unix`: the socket's directory is root's, so the probe reports the
    // sandbox's EPERM before any permission check of the file system.
    expect(&r, DEFAULT, "npm, default sandbox as uid 65534");

    // The wheel, with the system's Python (the developer's is under /root).
    let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!(
            "\n*** SKIPPED: no system python3 for uid 65534; the wheel's probe is not run as another user ***\n"
        );
        return;
    };
    let idx = py_index();
    let mut cmd = env.safex_confined();
    cmd.env("SAFEX_PYPI_INDEX", idx.url())
        .env("SAFEX_PYTHON", python)
        .uid(65534)
        .gid(65534)
        .args(["uvx", "sandbox-probe-py==1.0.0", &cfg]);
    let (r, _) = probe(cmd, false, &env);
    let mut want = DEFAULT.to_vec();
    want.extend([
        ("ptrace", "EPERM"),
        ("process_vm_readv", "EPERM"),
        ("io_uring", "ENOSYS"),
    ]);
    expect(&r, &want, "python, default sandbox as uid 65534");
}

/// Tier 2 without root: the helper makes a user namespace first.
#[test]
fn tier2_as_another_user() {
    use std::os::unix::process::CommandExt;
    require_sandbox!(module_path!());
    if !is_root() {
        eprintln!("SKIPPED: running as uid 65534 needs root (this run is not root)");
        return;
    }
    let NetWorld {
        reg,
        env,
        listed,
        cfg,
        ..
    } = net_world();
    chown_all(env.root(), 65534);
    let mut as_nobody = env.safex_confined();
    as_nobody.uid(65534).gid(65534);
    if !tier2(as_nobody) {
        eprintln!(
            "\n*** SKIPPED: uid 65534 cannot create user namespaces here; tier 2 is not tested without root ***\n"
        );
        return;
    }
    let mut cmd = env.safex_confined();
    cmd.env("SAFEX_NPM_REGISTRY", reg.url())
        .uid(65534)
        .gid(65534)
        .arg("--policy")
        .arg(&listed)
        .args(["npx", "-y", "net-probe@1.0.0", &cfg]);
    let (r, stderr) = probe(cmd, false, &env);
    eprintln!("[sandbox-probe] tier 2, npx, as uid 65534: {r}");
    assert_eq!(r["allowed"], "200:hello", "{r}\n{stderr}");
    assert!(
        r["other"].as_str().is_some_and(|o| o.contains("403")),
        "{r}"
    );
    assert_eq!(r["direct"], "ECONNREFUSED", "{r}");
}

fn py_index() -> PyIndex {
    PyIndex::builder()
        .package(PyPkg::program("sandbox-probe-py", "1.0.0", PY_PROBE))
        .build()
}

#[test]
fn python_probe_in_the_default_sandbox() {
    require_sandbox!(module_path!());
    let idx = py_index();
    let env = TestEnv::new();
    plant_secret(&env);
    let t = Targets::new();
    let cfg = t.config(&env);
    let launch = |extra: &[&str]| {
        let mut cmd = env.safex_confined();
        cmd.env("SAFEX_PYPI_INDEX", idx.url())
            .arg("uvx")
            .args(extra)
            .args(["sandbox-probe-py==1.0.0", &cfg]);
        cmd
    };
    let mut want = DEFAULT.to_vec();
    want.extend([
        ("ptrace", "EPERM"),
        ("process_vm_readv", "EPERM"),
        ("io_uring", "ENOSYS"),
    ]);
    let (r, stderr) = probe(launch(&[]), false, &env);
    expect(&r, &want, "python, default sandbox, relay path");
    assert!(stderr.contains("--allow-read ~/.ssh/id_rsa"), "{stderr}");
    let (r, _) = probe(launch(&[]), true, &env);
    expect(&r, &want, "python, default sandbox, exec path");
    let (r, _) = probe(launch(&["--no-sandbox"]), false, &env);
    expect(
        &r,
        &[
            ("read_ssh", "ok"),
            ("ptrace", "ok"),
            ("process_vm_readv", "ok"),
            ("io_uring", "EFAULT"),
        ],
        "python, --no-sandbox",
    );
}

// ---------------------------------------------------------------------------
// Tier 2: network by host name, through safex's proxy
// ---------------------------------------------------------------------------

const NPM_NET_PROBE: &str = r#"
const net = require('net');
const cfg = JSON.parse(process.argv[2]);
const get = async (url) => {
  try { const r = await fetch(url); return `${r.status}:${(await r.text()).trim()}`; }
  catch (e) { return 'error:' + ((e.cause && (e.cause.message || e.cause.code)) || e.message); }
};
const direct = (port) => new Promise((res) => {
  const s = net.connect(port, '127.0.0.1');
  s.on('connect', () => { s.destroy(); res('ok'); });
  s.on('error', (e) => res(e.code || String(e)));
});
(async () => {
  const out = {};
  out.allowed = await get(`http://localhost:${cfg.port}/`);
  out.other = await get(`http://localhost:${cfg.other}/`);
  out.direct = await direct(cfg.port);
  out.node_options = process.env.NODE_OPTIONS || '';
  process.stdout.write(JSON.stringify(out) + '\n');
})();
"#;

const PY_NET_PROBE: &str = r#"import errno, json, socket, sys, urllib.error, urllib.request
cfg = json.loads(sys.argv[1])
out = {}
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return f"{r.status}:{r.read().decode().strip()}"
    except urllib.error.HTTPError as e:
        return f"error:{e.code}"
    except Exception as e:
        return f"error:{e}"
out['allowed'] = get(f"http://localhost:{cfg['port']}/")
out['other'] = get(f"http://localhost:{cfg['other']}/")
try:
    socket.create_connection(('127.0.0.1', cfg['port']), timeout=5).close()
    out['direct'] = 'ok'
except OSError as e:
    out['direct'] = errno.errorcode.get(e.errno, str(e))
print(json.dumps(out), flush=True)
"#;

/// Two loopback servers (one listed), the probes on their registries, and
/// a policy listing `localhost:<port>`.
struct NetWorld {
    port: u16,
    other: u16,
    reg: FixtureRegistry,
    idx: PyIndex,
    env: TestEnv,
    listed: std::path::PathBuf,
    cfg: String,
}

fn net_world() -> NetWorld {
    let port = hello_server();
    let other = hello_server();
    let reg = FixtureRegistry::builder()
        .package(Pkg::program("net-probe", "1.0.0", NPM_NET_PROBE))
        .build();
    let idx = PyIndex::builder()
        .package(PyPkg::program("net-probe-py", "1.0.0", PY_NET_PROBE))
        .build();
    let env = TestEnv::new();
    let listed = policy(
        &env,
        "listed.toml",
        &format!("[sandbox]\nnet = \"allow-list\"\nallow_net = [\"localhost:{port}\"]\n"),
    );
    let cfg = serde_json::json!({"port": port, "other": other}).to_string();
    NetWorld {
        port,
        other,
        reg,
        idx,
        env,
        listed,
        cfg,
    }
}

/// A loopback HTTP server answering `hello` to every request.
fn hello_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut conn = conn;
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            });
        }
    });
    port
}

fn net_events(env: &TestEnv) -> Vec<Value> {
    std::fs::read_to_string(env.audit_log())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "net-connect")
        .collect()
}

#[test]
fn tier2_reaches_allowed_names_only_through_the_proxy() {
    require_sandbox!(module_path!());
    let NetWorld {
        port,
        other,
        reg,
        idx,
        env,
        listed,
        cfg,
    } = net_world();
    if !tier2(env.safex_confined()) {
        eprintln!(
            "\n*** SKIPPED: no network namespaces for this user; tier 2 is not tested here ***\n"
        );
        return;
    }
    let launch = |tool: &str, spec: &str| {
        let mut cmd = env.safex_confined();
        cmd.env("SAFEX_NPM_REGISTRY", reg.url())
            .env("SAFEX_PYPI_INDEX", idx.url())
            .arg("--policy")
            .arg(&listed)
            .arg(tool);
        if tool == "npx" {
            // The user's own NODE_OPTIONS stay, with the preload after them.
            cmd.env("NODE_OPTIONS", "--max-old-space-size=200")
                .arg("-y");
        }
        cmd.args([spec, &cfg]);
        cmd
    };
    for (tool, spec) in [("npx", "net-probe@1.0.0"), ("uvx", "net-probe-py==1.0.0")] {
        for exec_path in [false, true] {
            let (r, stderr) = probe(launch(tool, spec), exec_path, &env);
            let context = format!(
                "tier 2, {tool}, {}",
                if exec_path { "exec path" } else { "relay path" }
            );
            assert_eq!(r["allowed"], "200:hello", "{context}: {r}\n{stderr}");
            assert!(
                r["other"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("error:") && o.contains("403")),
                "{context}: {r}"
            );
            // No route around the proxy: loopback in the namespace is empty.
            assert_eq!(r["direct"], "ECONNREFUSED", "{context}: {r}");
            if tool == "npx" {
                let opts = r["node_options"].as_str().unwrap_or_default();
                assert!(
                    opts.starts_with("--max-old-space-size=200 --require ")
                        && opts.contains("fetch-proxy-"),
                    "{context}: NODE_OPTIONS {opts}"
                );
            }
            eprintln!("[sandbox-probe] {context}: {r}");
        }
    }
    let events = net_events(&env);
    let count = |decision: &str, p: u16| {
        events
            .iter()
            .filter(|e| e["decision"] == decision && e["port"] == p && e["host"] == "localhost")
            .count()
    };
    assert_eq!(count("allow", port), 4, "{events:?}");
    assert_eq!(count("deny", other), 4, "{events:?}");
    let launches: Vec<Value> = std::fs::read_to_string(env.audit_log())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "launch")
        .collect();
    assert!(
        launches.iter().all(|l| l["sandbox"]["tier"] == 2),
        "{launches:?}"
    );
}
