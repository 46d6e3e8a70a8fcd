//! Confining the launched program with the kernel's own sandbox: no
//! container, no daemon, nothing for the user to install. On Linux, tier 1
//! (Landlock file and TCP rules, Landlock scoping, a seccomp filter for what
//! Landlock cannot see) applies wherever the kernel has it. What the
//! program may reach is decided here, in the parent, from the policy
//! (`[sandbox]`, `[servers."<pattern>"]`), the launcher's flags
//! (`--allow-read`, `--allow-write`, `--allow-net`, `--no-sandbox`) and
//! the launch itself (the runtime, the package tree, the server's path
//! arguments); it is applied by the process that then execs the program
//! (safex itself on the exec path, its exec helper under the relay), so
//! the program starts confined. Reference: `docs/sandbox.md`.

mod grants;
pub mod hint;
#[cfg(target_os = "linux")]
mod landlock;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod proxy;
pub mod seatbelt;
#[cfg(target_os = "linux")]
mod seccomp;
#[cfg(target_os = "linux")]
mod sys;

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};

pub use grants::{Flags, Launch, plan};

/// `sandbox.mode`: off, what the kernel offers (said once when something
/// is missing), or refuse to launch where it cannot confine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Mode {
    Off,
    #[default]
    On,
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::On => "on",
            Mode::Enforce => "enforce",
        }
    }
}

/// `sandbox.net`: the network the program gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum NetMode {
    /// Whatever the machine reaches (TCP binds still need a grant).
    #[default]
    Host,
    /// Only the hosts of `allow_net`.
    AllowList,
    /// No IP network at all.
    None,
}

impl NetMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetMode::Host => "host",
            NetMode::AllowList => "allow-list",
            NetMode::None => "none",
        }
    }
}

/// `sandbox.profile`: `strict` reads nothing of the home directory but
/// declared paths: no working directory, and a server's path arguments
/// there are not granted by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Profile {
    #[default]
    Default,
    Strict,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Strict => "strict",
        }
    }
}

/// `sandbox.cwd`: whether the working directory the client started the
/// server in is readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum CwdMode {
    #[default]
    Read,
    None,
}

/// What the applying process restricts itself to before it execs the
/// program: paths as opened then (a rule binds the file, not the name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Read and execute (files and directories beneath).
    pub read: Vec<PathBuf>,
    /// Read, write, create, remove (beneath).
    pub write: Vec<PathBuf>,
    /// Device files opened for reading and writing (`/dev/null`).
    pub devices: Vec<PathBuf>,
    /// TCP ports the program may bind.
    pub bind: Vec<u16>,
    /// Any TCP bind (`--allow-net` without a host).
    pub bind_any: bool,
    /// `Some`: the only TCP ports it may connect to.
    pub connect: Option<Vec<u16>>,
    /// IP sockets at all (`false`: `net = "none"`).
    pub inet: bool,
    /// UDP sockets (the resolver needs them where the network is open).
    pub udp: bool,
    /// Refuse to run where a part cannot be applied.
    pub enforce: bool,
    /// Tier 2: enter a network namespace and send the proxy's listener
    /// over this inherited descriptor first.
    #[serde(default)]
    pub netns_fd: Option<i32>,
}

/// What this kernel can do, asked without side effects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Support {
    /// 0: none (not built in, or not enabled at boot).
    pub landlock_abi: u32,
    pub seccomp: bool,
}

impl Support {
    #[cfg(target_os = "linux")]
    pub fn probe() -> Support {
        Support {
            landlock_abi: landlock::abi(),
            seccomp: seccomp::available(),
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn probe() -> Support {
        Support::default()
    }

    /// The parts of `spec` this kernel cannot apply, by name.
    pub fn missing(&self, spec: &Spec) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if cfg!(target_os = "macos") {
            // Seatbelt (untested on a real Mac): no proxy, so no names.
            if spec.connect.is_some() {
                missing.push("net-by-host");
            }
            return missing;
        }
        if !cfg!(target_os = "linux") {
            missing.push("sandbox (not supported on this OS)");
            return missing;
        }
        let abi = self.landlock_abi;
        if abi == 0 {
            missing.push("landlock");
        } else {
            if abi < 4 {
                missing.push("landlock-tcp");
            }
            if abi < 5 {
                missing.push("landlock-ioctl");
            }
            if abi < 6 {
                missing.push("landlock-scope");
            }
        }
        if !self.seccomp {
            missing.push("seccomp");
        }
        if spec.connect.is_some() {
            // A host allow-list is enforced by ports only in tier 1.
            missing.push("net-by-host");
        }
        missing
    }

    /// The parts applied, by name (`missing`'s complement).
    pub fn applied(&self) -> Vec<&'static str> {
        let mut applied = Vec::new();
        if cfg!(target_os = "macos") {
            applied.push("seatbelt");
            return applied;
        }
        if !cfg!(target_os = "linux") {
            return applied;
        }
        if self.landlock_abi > 0 {
            applied.push("landlock");
            if self.landlock_abi >= 4 {
                applied.push("landlock-tcp");
            }
            if self.landlock_abi >= 6 {
                applied.push("landlock-scope");
            }
        }
        if self.seccomp {
            applied.push("seccomp");
        }
        applied
    }
}

/// Can the exec helper make a network namespace (root, or a user
/// namespace first)? Asked only where tier 2 is wanted: it reads three
/// files of `/proc/sys`.
#[cfg(target_os = "linux")]
pub fn network_namespaces() -> bool {
    rustix::process::geteuid().is_root() || user_namespaces()
}

#[cfg(not(target_os = "linux"))]
pub fn network_namespaces() -> bool {
    false
}

#[cfg(target_os = "linux")]
fn user_namespaces() -> bool {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let max = read("/proc/sys/user/max_user_namespaces")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1);
    let unprivileged =
        read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|s| s.trim() != "0");
    let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        .is_none_or(|s| s.trim() != "1");
    max > 0 && unprivileged && apparmor
}

/// A launch's sandbox, decided: the spec, what to tell the user, what
/// the program's environment gains.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    pub spec: Spec,
    pub support: Support,
    /// Grants the user did not write themselves (a server's path
    /// arguments), said on stderr unless quiet.
    pub notes: Vec<String>,
    /// `TMPDIR` and the like, pointing into the server's state directory.
    pub env: Vec<(OsString, OsString)>,
    /// Variables set only when the program's environment lacks them (a
    /// server's data file moved into its state directory).
    pub defaults: Vec<(OsString, OsString)>,
    /// What to suggest when a denial is seen (`hint`).
    pub advice: hint::Advice,
    /// Tier 2 (network by host name through safex's proxy), where the
    /// policy lists hosts and this kernel lets the helper make a network
    /// namespace; `spec` is then the fallback for launches that cannot
    /// use it (`safex mcp tools`).
    pub proxy: Option<proxy::AllowList>,
    /// Variables tier 2 adds (`HTTPS_PROXY` and the like).
    pub proxy_env: Vec<(OsString, OsString)>,
}

impl Plan {
    /// No sandbox (`--no-sandbox`, `sandbox.mode = "off"`).
    pub fn off() -> Plan {
        Plan {
            mode: Mode::Off,
            spec: Spec::default(),
            support: Support::default(),
            notes: Vec::new(),
            env: Vec::new(),
            defaults: Vec::new(),
            advice: hint::Advice::default(),
            proxy: None,
            proxy_env: Vec::new(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.mode != Mode::Off
    }

    /// The launch's audit field.
    pub fn audit(&self) -> serde_json::Value {
        if !self.is_on() {
            return serde_json::json!({"mode": "off", "tier": 0, "applied": [], "missing": []});
        }
        let mut applied = self.support.applied();
        let mut missing = self.support.missing(&self.spec);
        if self.proxy.is_some() {
            applied.push("netns-proxy");
            missing.retain(|m| *m != "net-by-host");
        }
        serde_json::json!({
            "mode": self.mode.as_str(),
            "tier": if self.proxy.is_some() { 2 } else { 1 },
            "applied": applied,
            "missing": missing,
            "read": self.spec.read.len(),
            "write": self.spec.write.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "bind": self.spec.bind,
            "net": if !self.spec.inet { "none" } else if self.proxy.is_some() { "proxy" } else if self.spec.connect.is_some() { "ports" } else { "host" },
        })
    }

    /// Before the launch: refuse in `enforce` mode what cannot be applied;
    /// otherwise say once (unless quiet) what is not, and the grants made
    /// for the user.
    pub fn announce(&self, quiet: bool) -> Result<()> {
        if !self.is_on() {
            return Ok(());
        }
        let mut missing = self.support.missing(&self.spec);
        if self.proxy.is_some() {
            missing.retain(|m| *m != "net-by-host");
        }
        if self.mode == Mode::Enforce && !missing.is_empty() {
            return Err(Error::policy(format!(
                "the sandbox cannot be applied here ({}), and the policy's `sandbox.mode` is `enforce`",
                missing.join(", ")
            ))
            .with_hint("run `safex sandbox check` to see what this kernel offers; ask your admin"));
        }
        if quiet {
            return Ok(());
        }
        if !missing.is_empty() {
            eprintln!(
                "safex: sandbox: not applied on this machine: {} (see `safex sandbox check`)",
                missing.join(", ")
            );
        }
        for n in &self.notes {
            eprintln!("safex: sandbox: {n}");
        }
        Ok(())
    }
}

/// The port of tier 2's proxy inside the program's namespace.
pub fn netns_port() -> u16 {
    3128
}

/// Node's `fetch` through the proxy: undici's global dispatcher (made
/// by a first `fetch` of a `data:` URL) replaced by an agent of the same
/// class whose connections are CONNECT tunnels through the proxy.
const NODE_PRELOAD: &str = include_str!("fetch-proxy.js");

/// The preload, written once beside the servers' state directories
/// (readable in the sandbox), or `None` when it cannot be written.
fn node_preload(state: &std::path::Path) -> Option<PathBuf> {
    use sha2::Digest;
    let digest = hex::encode(&sha2::Sha256::digest(NODE_PRELOAD.as_bytes())[..8]);
    let dir = state.parent()?.parent()?.parent()?.join("preload");
    let path = dir.join(format!("fetch-proxy-{digest}.js"));
    if std::fs::read(&path).is_ok_and(|b| b == NODE_PRELOAD.as_bytes()) {
        return Some(path);
    }
    crate::audit::create_private_dir(&dir).ok()?;
    crate::lock::write_atomic(&path, NODE_PRELOAD.as_bytes()).ok()?;
    Some(path)
}

/// The variable that hands a spec to the exec helper; removed from the
/// environment before the program starts.
pub const SPEC_VAR: &str = "SAFEX_SANDBOX_SPEC";

impl Spec {
    pub fn encode(&self) -> OsString {
        serde_json::to_string(self).unwrap_or_default().into()
    }

    pub fn decode(raw: &std::ffi::OsStr) -> Result<Spec> {
        serde_json::from_str(&raw.to_string_lossy()).map_err(|e| {
            Error::new(
                Kind::Runtime,
                format!("safex's exec helper got a sandbox it cannot read: {e}"),
            )
        })
    }

    /// Restrict this process (and so the program it execs) to the spec.
    /// Each part the kernel lacks is skipped unless `enforce`; a part it
    /// has that fails to apply is an error.
    #[cfg(target_os = "linux")]
    pub fn apply(&self) -> Result<()> {
        let fail = |what: &str, e: String| {
            Error::new(Kind::Runtime, format!("cannot apply the sandbox ({what}): {e}"))
                .with_hint("run `safex sandbox check`; `--no-sandbox` launches without it where the policy allows")
        };
        if let Some(fd) = self.netns_fd {
            netns::enter(fd).map_err(|e| fail("network namespace", e))?;
        }
        landlock::apply(self).map_err(|e| fail("landlock", e))?;
        seccomp::apply(self).map_err(|e| fail("seccomp", e))?;
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    pub fn apply(&self) -> Result<()> {
        if self.enforce {
            return Err(Error::policy(
                "safex cannot sandbox programs on this OS, and the policy's `sandbox.mode` is `enforce`",
            ));
        }
        Ok(())
    }
}

/// `safex sandbox check`: what this kernel offers, which tier applies and
/// why, and what a launch would not get.
pub fn check(policy: &crate::policy::Policy) -> i32 {
    let s = Support::probe();
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("os:               {}", std::env::consts::OS);
    if cfg!(target_os = "linux") {
        let abi = match s.landlock_abi {
            0 => {
                "not available (not built in, or not enabled at boot: see /sys/kernel/security/lsm)"
                    .to_owned()
            }
            n => format!("ABI {n}"),
        };
        println!("landlock:         {abi}");
        println!("seccomp:          {}", yes(s.seccomp));
        #[cfg(target_os = "linux")]
        println!("user namespaces:  {}", yes(user_namespaces()));
    }
    println!(
        "policy:           sandbox.mode = \"{}\", sandbox.net = \"{}\"",
        policy.sandbox.mode.as_str(),
        policy.sandbox.net.as_str()
    );
    let spec = Spec {
        inet: policy.sandbox.net != NetMode::None,
        connect: (policy.sandbox.net == NetMode::AllowList).then(Vec::new),
        ..Spec::default()
    };
    let mut missing = s.missing(&spec);
    let tier2 = network_namespaces();
    let tier = if !cfg!(target_os = "linux") || s.landlock_abi == 0 {
        "none: this kernel has no Landlock".to_owned()
    } else if tier2 {
        "2: Landlock + seccomp (files, TCP binds, signals and abstract sockets, socket kinds), and a network namespace with safex's proxy for a network allow-list".to_owned()
    } else {
        "1: Landlock + seccomp (files, TCP binds, signals and abstract sockets, socket kinds); this user cannot create network namespaces".to_owned()
    };
    println!("tier:             {tier}");
    if policy.sandbox.net == NetMode::AllowList {
        if tier2 {
            missing.retain(|m| *m != "net-by-host");
            println!("network:          allow-list by host name, through safex's proxy");
        } else {
            println!(
                "network:          the allow-list is enforced by port only (host names need network namespaces)"
            );
        }
    }
    if missing.is_empty() {
        println!("missing:          nothing");
    } else {
        println!("missing:          {}", missing.join(", "));
    }
    if policy.sandbox.mode == Mode::Enforce && !missing.is_empty() {
        println!("launches:         refused (`sandbox.mode = \"enforce\"`)");
        return Kind::Policy.exit_code();
    }
    0
}
