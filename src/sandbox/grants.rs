//! What a launched program may reach, decided from the policy, the
//! launcher's flags and the launch: the system's files, the runtime, the
//! package tree, the server's state directory and private `TMPDIR`, the
//! working directory (`sandbox.cwd`), declared paths, and the paths a
//! server is given as arguments where its documented semantics need them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{CwdMode, Mode, NetMode, Plan, Spec, Support, hint};
use crate::ecosystem::Ecosystem;
use crate::error::{Error, Result};
use crate::policy::Policy;

/// The launcher's sandbox flags (`--allow-read PATH`, `--allow-write
/// PATH`, `--allow-net[=HOST[:PORT]]`, `--no-sandbox`), as typed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Flags {
    pub read: Vec<String>,
    pub write: Vec<String>,
    /// `--allow-net=HOST[:PORT]` values.
    pub net: Vec<String>,
    /// `--allow-net` without a value: any network, any bind.
    pub net_any: bool,
    pub off: bool,
}

impl Flags {
    /// These flags and `more` (given after the launcher).
    pub fn with(mut self, more: &Flags) -> Flags {
        self.read.extend(more.read.iter().cloned());
        self.write.extend(more.write.iter().cloned());
        self.net.extend(more.net.iter().cloned());
        self.net_any |= more.net_any;
        self.off |= more.off;
        self
    }

    /// One parsed flag (`value`: its value, when it has one).
    pub fn set(&mut self, to: crate::spelling::To, value: Option<String>) {
        use crate::spelling::To;
        match (to, value) {
            (To::AllowRead, Some(v)) => self.read.push(v),
            (To::AllowWrite, Some(v)) => self.write.push(v),
            (To::AllowNet, Some(v)) => self.net.push(v),
            (To::AllowNet, None) => self.net_any = true,
            (To::NoSandbox, _) => self.off = true,
            _ => {}
        }
    }
}

/// The launch being confined.
pub struct Launch<'a> {
    pub ecosystem: Ecosystem,
    pub package: &'a str,
    /// The interpreter (node, the venv's python).
    pub program: &'a Path,
    /// The package tree (npm) or environment (PyPI) in the cache.
    pub tree: &'a Path,
    /// The server's own arguments.
    pub args: &'a [OsString],
    /// `<state>/servers/...` is made beneath it.
    pub state_root: &'a Path,
}

/// Read and execute: the system's programs and libraries.
const SYSTEM: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/nix/store",
    "/snap",
];

/// What a runtime reads in `/etc` (certificates, the resolver, users and
/// groups, time zone, the loader's cache, OS release): not the rest, where
/// host keys, connection secrets and tool credentials live.
const ETC: &[&str] = &[
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/crypto-policies",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/os-release",
    "/etc/lsb-release",
    "/etc/debian_version",
    "/etc/mime.types",
    "/etc/alternatives",
    "/etc/locale.alias",
    "/etc/locale.conf",
    "/etc/fonts",
    "/etc/gitconfig",
];

/// The kernel's views a runtime reads: its own process (`/proc/self`, the
/// pid it keeps across `exec`), CPU and memory figures, cgroup limits.
/// Not other processes' `/proc/<pid>` (their environment holds tokens).
const KERNEL: &[&str] = &[
    "/proc/self",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/version",
    "/proc/filesystems",
    "/proc/sys",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
];

const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Servers whose path arguments are directories they are documented to
/// write in (read-write), and the options that name such a path.
const WRITES_ITS_PATHS: &[(&str, &[&str])] = &[
    ("@modelcontextprotocol/server-filesystem", &[]),
    ("mcp-server-git", &["--repository", "-r"]),
];

/// Servers that keep their data inside their own package unless a
/// variable says otherwise: there it is read-only (and the cache's, not
/// theirs), so the variable points into the state directory instead,
/// unless the user set it.
const STATE_FILES: &[(Ecosystem, &str, &str, &str)] = &[
    (
        Ecosystem::Npm,
        "@modelcontextprotocol/server-memory",
        "MEMORY_FILE_PATH",
        "memory.jsonl",
    ),
    // AWS Labs' servers log to `<site-packages>/awslabs/logs/` (made at
    // start: the billing server fails without it) unless this names a file.
    (
        Ecosystem::Pypi,
        "awslabs-*",
        "FASTMCP_LOG_FILE",
        "server.log",
    ),
];

/// Decide the sandbox of one launch.
pub fn plan(policy: &Policy, flags: &Flags, launch: &Launch<'_>) -> Result<Plan> {
    let sp = &policy.sandbox;
    if flags.off || sp.mode == Mode::Off {
        if flags.off && policy.mandatory.contains("sandbox.mode") {
            return Err(Error::policy(format!(
                "`--no-sandbox` is refused: the system policy sets `sandbox.mode = \"{}\"`",
                sp.mode.as_str()
            ))
            .with_hint("grant what the server needs instead: `--allow-read PATH`, `--allow-write PATH`, `--allow-net=HOST`"));
        }
        return Ok(Plan::off());
    }
    let cwd = std::env::current_dir().ok();
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let resolve = |raw: &str| resolve(raw, home.as_deref(), cwd.as_deref());
    let mut notes = Vec::new();
    let mut spec = Spec {
        enforce: sp.mode == Mode::Enforce,
        ..Spec::default()
    };
    spec.read
        .extend(SYSTEM.iter().chain(ETC).chain(KERNEL).map(PathBuf::from));
    spec.devices.extend(DEVICES.iter().map(PathBuf::from));
    spec.read.extend(runtime_roots(launch.program));
    spec.read.push(launch.tree.to_path_buf());

    // The server's own place to write, kept across launches and versions.
    let state = launch
        .state_root
        .join("servers")
        .join(launch.ecosystem.as_str())
        .join(dir_name(launch.package));
    let tmp = state.join("tmp");
    // Without it the server has nowhere to write: in `enforce` mode that
    // is a refusal, otherwise it runs with no writable place (and its
    // TMPDIR untouched), and the launch says why.
    let state_ok = match crate::audit::create_private_dir(&tmp) {
        Ok(()) => true,
        Err(e) if sp.mode == Mode::Enforce => {
            return Err(Error::io(format!(
                "cannot create the server's state directory `{}`: {e}",
                tmp.display()
            ))
            .with_hint(format!(
                "make it creatable, or set `{}` to a writable directory",
                crate::env_vars::SAFEX_STATE_DIR
            )));
        }
        Err(e) => {
            notes.push(format!(
                "cannot create the server's state directory `{}` ({e}): it has no writable place (set `{}` to a writable directory)",
                tmp.display(),
                crate::env_vars::SAFEX_STATE_DIR
            ));
            false
        }
    };
    if state_ok {
        spec.write.push(state.clone());
    }

    let strict = sp.profile == super::Profile::Strict;
    if sp.cwd == CwdMode::Read
        && !strict
        && let Some(dir) = &cwd
        && !is_home_or_above(dir, home.as_deref())
    {
        spec.read.push(dir.clone());
    }

    // Declared: the policy's (global, then per server), then the flags.
    let servers = sp
        .servers
        .iter()
        .filter(|s| s.pattern.matches(launch.ecosystem, launch.package, None));
    let mut read: Vec<&String> = sp.read.iter().collect();
    let mut write: Vec<&String> = sp.write.iter().collect();
    let mut hosts: Vec<String> = sp.allow_net.clone().unwrap_or_default();
    for s in servers {
        read.extend(&s.read);
        write.extend(&s.write);
        hosts.extend(s.allow_net.iter().cloned());
    }
    read.extend(&flags.read);
    write.extend(&flags.write);
    for raw in read {
        match resolve(raw) {
            Some(p) => spec.read.push(p),
            None => notes.push(format!("`{raw}` does not exist; not granted")),
        }
    }
    for raw in write {
        match resolve(raw) {
            Some(p) => spec.write.push(p),
            None => notes.push(format!("`{raw}` does not exist; not granted")),
        }
    }
    argument_grants(
        launch,
        home.as_deref(),
        cwd.as_deref(),
        strict,
        &mut spec,
        &mut notes,
    );

    let support = Support::probe();
    let allow = network(policy, flags, hosts, &mut spec)?;
    let proxy = allow.filter(|_| super::network_namespaces());
    let proxy_env = if proxy.is_some() {
        proxy_env(launch, &state, &mut spec)
    } else {
        Vec::new()
    };

    let defaults = if !state_ok {
        Vec::new()
    } else {
        STATE_FILES
            .iter()
            .filter(|(eco, name, _, _)| {
                *eco == launch.ecosystem
                    && crate::policy::Pattern::parse(name)
                        .is_some_and(|p| p.matches(*eco, launch.package, None))
            })
            .map(|(_, _, var, file)| (OsString::from(var), state.join(file).into_os_string()))
            .collect()
    };
    let tmp_s: OsString = tmp.clone().into_os_string();
    let env = ["TMPDIR", "TMP", "TEMP"]
        .into_iter()
        .filter(|_| state_ok)
        .map(|k| (OsString::from(k), tmp_s.clone()))
        .collect();
    Ok(Plan {
        mode: sp.mode,
        advice: hint::Advice::new(launch, &spec, home.clone()),
        spec,
        support,
        notes,
        env,
        defaults,
        proxy,
        proxy_env,
    })
}

/// The network part: `sandbox.net`, `allow_net` and `--allow-net`, with a
/// system-set mode or list kept (a flag that would loosen it is refused).
/// With an allow-list: its entries (for tier 2's proxy), and the ports of
/// tier 1's fallback in `spec.connect`.
fn network(
    policy: &Policy,
    flags: &Flags,
    mut hosts: Vec<String>,
    spec: &mut Spec,
) -> Result<Option<super::proxy::AllowList>> {
    let sp = &policy.sandbox;
    let mut net = sp.net;
    let refused = |what: &str, key: &str| {
        Error::policy(format!(
            "`{what}` is refused: the system policy sets `{key}`"
        ))
        .with_hint("ask your admin to allow the host in the system policy's `sandbox.allow_net`")
    };
    if flags.net_any {
        if net != NetMode::Host && policy.mandatory.contains("sandbox.net") {
            return Err(refused("--allow-net", "sandbox.net"));
        }
        net = NetMode::Host;
    }
    if !flags.net.is_empty() {
        let listed = sp.allow_net.clone().unwrap_or_default();
        if policy.mandatory.contains("sandbox.allow_net")
            && let Some(h) = flags
                .net
                .iter()
                .find(|h| !listed.contains(&h.to_ascii_lowercase()))
        {
            return Err(refused(&format!("--allow-net={h}"), "sandbox.allow_net"));
        }
        if net == NetMode::None {
            if policy.mandatory.contains("sandbox.net") {
                return Err(refused(
                    &format!("--allow-net={}", flags.net[0]),
                    "sandbox.net",
                ));
            }
            net = NetMode::AllowList;
        }
        hosts.extend(flags.net.iter().cloned());
    }
    let mut ports = Vec::new();
    let mut entries = Vec::new();
    for h in &hosts {
        let (host, port) = split_host_port(h)?;
        entries.push((host, port));
        match port {
            Some(p) => ports.push(p),
            None => ports.extend([443, 80]),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    spec.inet = net != NetMode::None;
    spec.udp = net != NetMode::None;
    // A listener on a declared port (Deno's `--allow-net=0.0.0.0:8000`).
    spec.bind = flags
        .net
        .iter()
        .filter_map(|h| split_host_port(h).ok().and_then(|(_, p)| p))
        .collect();
    spec.bind_any = flags.net_any;
    if net == NetMode::AllowList {
        spec.connect = Some(ports);
        return Ok(Some(super::proxy::AllowList::new(&entries)));
    }
    Ok(None)
}

/// What tier 2 adds to the program's environment: the proxy for every
/// client that reads the variables (curl, Python's urllib, requests,
/// httpx, Go), and for Node, whose built-in `fetch` ignores them before
/// Node 24, a preload that routes it through the proxy too.
fn proxy_env(launch: &Launch<'_>, state: &Path, spec: &mut Spec) -> Vec<(OsString, OsString)> {
    let url = format!("http://127.0.0.1:{}", super::netns_port());
    let mut env: Vec<(OsString, OsString)> = [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|k| (OsString::from(k), OsString::from(&url)))
    .collect();
    env.push(("NO_PROXY".into(), "".into()));
    env.push(("no_proxy".into(), "".into()));
    if launch.ecosystem == Ecosystem::Npm
        && let Some(preload) = super::node_preload(state)
    {
        // Appended to the program's own `NODE_OPTIONS` when it has one
        // (`relay::confine`).
        let opts = format!("--require \"{}\"", preload.display());
        env.push(("NODE_OPTIONS".into(), opts.into()));
        spec.read.push(preload);
    }
    env
}

/// `host`, `host:port`, `[v6]:port` (also the proxy's reading of a
/// request's target).
pub(super) fn split_host_port(raw: &str) -> Result<(String, Option<u16>)> {
    let bad = || {
        Error::usage(format!("`{raw}` is not a host or host:port"))
            .with_hint("write `--allow-net=api.example.com` or `--allow-net=127.0.0.1:8080`")
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(bad());
    }
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        (h, after.strip_prefix(':'))
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (raw, None),
        }
    };
    let port = port
        .map(|p| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad))
        .transpose()?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// Paths among the server's arguments that exist: read-write for servers
/// documented to write there, read-only otherwise; never `/` or the home
/// directory (or above) without a flag saying so.
fn argument_grants(
    launch: &Launch<'_>,
    home: Option<&Path>,
    cwd: Option<&Path>,
    strict: bool,
    spec: &mut Spec,
    notes: &mut Vec<String>,
) {
    let known = WRITES_ITS_PATHS
        .iter()
        .find(|(name, _)| *name == launch.package)
        .map(|(_, opts)| *opts);
    let mut prev: Option<&str> = None;
    for arg in launch.args {
        let Some(a) = arg.to_str() else { continue };
        let (opt, value) = match a.split_once('=') {
            Some((o, v)) if o.starts_with('-') => (Some(o), v),
            _ if a.starts_with('-') => {
                prev = Some(a);
                continue;
            }
            _ => (prev, a),
        };
        prev = None;
        let looks_like_path = value.starts_with('/')
            || value.starts_with("~/")
            || value.starts_with("./")
            || value.starts_with("../");
        if !looks_like_path {
            continue;
        }
        let Some(path) = resolve(value, home, cwd) else {
            continue;
        };
        if is_home_or_above(&path, home) || spec.read.contains(&path) {
            continue;
        }
        let in_home = home.is_some_and(|h| {
            path.starts_with(std::fs::canonicalize(h).unwrap_or_else(|_| h.to_path_buf()))
        });
        if strict && in_home {
            notes.push(format!(
                "`{}` (an argument of {}) is in your home directory and the policy's `sandbox.profile` is `strict`: not granted unless declared (`--allow-read`, `--allow-write`, `[servers]`)",
                path.display(),
                launch.package
            ));
            continue;
        }
        let writes = match known {
            Some([]) => opt.is_none(),
            Some(opts) => opt.is_some_and(|o| opts.contains(&o)),
            None => false,
        };
        if writes {
            notes.push(format!(
                "read-write `{}` (an argument of {})",
                path.display(),
                launch.package
            ));
            spec.write.push(path);
        } else {
            notes.push(format!(
                "read-only `{}` (an argument of {})",
                path.display(),
                launch.package
            ));
            spec.read.push(path);
        }
    }
}

/// `~/x`, relative or absolute, made absolute and resolved; `None` when
/// nothing is there.
fn resolve(raw: &str, home: Option<&Path>, cwd: Option<&Path>) -> Option<PathBuf> {
    let p = if raw == "~" {
        home?.to_path_buf()
    } else if let Some(rest) = raw.strip_prefix("~/") {
        home?.join(rest)
    } else {
        let p = PathBuf::from(raw);
        if p.is_absolute() { p } else { cwd?.join(p) }
    };
    std::fs::canonicalize(p).ok()
}

/// `/`, the home directory, or a directory above it.
fn is_home_or_above(dir: &Path, home: Option<&Path>) -> bool {
    dir == Path::new("/")
        || home.is_some_and(|h| {
            let h = std::fs::canonicalize(h).unwrap_or_else(|_| h.to_path_buf());
            h.starts_with(dir)
        })
}

/// The runtime's install: the interpreter resolved, then its prefix (the
/// directory above `bin`), where its libraries and standard library are;
/// for a venv's python, the base interpreter's prefix too.
fn runtime_roots(program: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let mut add = |p: &Path| {
        let Ok(real) = std::fs::canonicalize(p) else {
            return;
        };
        let Some(dir) = real.parent() else { return };
        let root = if dir.file_name().is_some_and(|n| n == "bin") {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        if root != Path::new("/") && !roots.iter().any(|r: &PathBuf| root.starts_with(r)) {
            roots.push(root.to_path_buf());
        }
    };
    add(program);
    // A venv names its base interpreter's directory in `pyvenv.cfg`.
    if let Some(cfg) = program
        .parent()
        .and_then(Path::parent)
        .map(|env| env.join("pyvenv.cfg"))
        && let Ok(text) = std::fs::read_to_string(cfg)
        && let Some(home) = text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "home").then(|| PathBuf::from(v.trim()))
        })
    {
        add(&home.join("python"));
    }
    roots
}

/// A package name as one directory name (`@scope/name` → `@scope+name`).
fn dir_name(package: &str) -> String {
    let name: String = package
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' | '@' | '+' => c,
            _ => '+',
        })
        .collect();
    if name.starts_with('.') {
        format!("_{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            split_host_port("Api.Example.com").unwrap(),
            ("api.example.com".into(), None)
        );
        assert_eq!(
            split_host_port("127.0.0.1:8080").unwrap(),
            ("127.0.0.1".into(), Some(8080))
        );
        assert_eq!(
            split_host_port("[::1]:53").unwrap(),
            ("::1".into(), Some(53))
        );
        assert_eq!(split_host_port("::1").unwrap(), ("::1".into(), None));
        assert!(split_host_port("host:0").is_err());
        assert!(split_host_port("host:99999").is_err());
        assert!(split_host_port(":80").is_err());
    }

    #[test]
    fn state_directory_names() {
        assert_eq!(
            dir_name("@modelcontextprotocol/server-memory"),
            "@modelcontextprotocol+server-memory"
        );
        assert_eq!(dir_name("../evil"), "_..+evil");
        assert_eq!(dir_name(".."), "_..");
        assert_eq!(dir_name("mcp-server-time"), "mcp-server-time");
    }

    #[test]
    fn home_and_above_are_never_granted_by_argument() {
        let home = Path::new("/home/u");
        assert!(is_home_or_above(Path::new("/"), Some(home)));
        assert!(is_home_or_above(Path::new("/home"), Some(home)));
        assert!(is_home_or_above(Path::new("/home/u"), Some(home)));
        assert!(!is_home_or_above(Path::new("/home/u/notes"), Some(home)));
    }
}
