//! Policy: what may launch and how, said once by a security team for every
//! laptop. Layers, lowest first: built-in (`policies/default.toml`), system
//! (a fixed admin-owned path), user, command line. A key the system layer
//! sets is mandatory: lower layers may tighten it, never loosen it, and an
//! attempt to loosen is reported. The known-compromised list is always on.
//! Reference: `docs/policy.md`.

mod file;
mod layers;
mod merge;
mod show;
mod tools;
mod value;

use std::path::PathBuf;
use std::time::Duration;

use crate::ecosystem::Ecosystem;
use crate::error::{Error, Result};

pub use tools::{ArgsMode, Identity, Kind as ToolKind, PinMode, Subject, ToolLayer};

const BUILTIN: &str = include_str!("../../policies/default.toml");
/// One entry of the built-in known-compromised list.
pub(crate) struct BuiltinKnown {
    ecosystem: Ecosystem,
    name: &'static str,
    versions: &'static [&'static str],
    incident: Option<&'static str>,
    reference: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/known.rs"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    Tofu,
    Frozen,
}

impl LockMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tofu" => Some(LockMode::Tofu),
            "frozen" => Some(LockMode::Frozen),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Tofu => "tofu",
            LockMode::Frozen => "frozen",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScriptsMode {
    Strip,
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PthPolicy {
    /// Install the wheel without the `.pth` lines that would run code, and
    /// say so (like npm install scripts).
    Strip,
    /// Refuse a wheel with such lines.
    RefuseExecutable,
    /// Refuse a wheel with any `.pth` file.
    RefuseAll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EnvMode {
    Inherit,
    Declared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnknownAge {
    Allow,
    Refuse,
}

/// `name-glob`, optionally with `@version` (npm style) or `==version` (PyPI).
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub raw: String,
    name: String,
    version: Option<String>,
}

impl Pattern {
    pub fn parse(raw: &str) -> Option<Pattern> {
        let s = raw.trim();
        let (name, version) = if let Some((n, v)) = s.split_once("==") {
            (n, Some(v))
        } else {
            let from = usize::from(s.starts_with('@'));
            match s[from..].find('@') {
                Some(i) => (&s[..from + i], Some(&s[from + i + 1..])),
                None => (s, None),
            }
        };
        if name.is_empty() || version.is_some_and(|v| v.trim().is_empty()) {
            return None;
        }
        Some(Pattern {
            raw: s.to_owned(),
            name: name.trim().to_ascii_lowercase(),
            version: version.map(|v| v.trim().to_owned()),
        })
    }

    /// Whether the package matches. PyPI names compare normalized.
    pub fn matches(&self, eco: Ecosystem, name: &str, version: Option<&str>) -> bool {
        let (pat, name) = match eco {
            Ecosystem::Npm => (self.name.clone(), name.to_ascii_lowercase()),
            Ecosystem::Pypi => (
                crate::pypi::tags::normalize(&self.name.replace('*', "\u{1}"))
                    .replace('\u{1}', "*"),
                crate::pypi::tags::normalize(name),
            ),
        };
        glob(&pat, &name)
            && match (&self.version, version) {
                (None, _) => true,
                (Some(want), Some(have)) => same_version(eco, want, have),
                (Some(_), None) => false,
            }
    }
}

fn same_version(eco: Ecosystem, a: &str, b: &str) -> bool {
    use std::str::FromStr;
    a == b
        || match eco {
            Ecosystem::Npm => {
                matches!((semver::Version::parse(a), semver::Version::parse(b)), (Ok(x), Ok(y)) if x == y)
            }
            Ecosystem::Pypi => {
                matches!((pep440_rs::Version::from_str(a), pep440_rs::Version::from_str(b)), (Ok(x), Ok(y)) if x == y)
            }
        }
}

/// `*` matches any run of characters (including `/`).
fn glob(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first)
        || !s[first.len()..].ends_with(last)
        || s.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// What the sandbox lets a server reach (`[sandbox]`, `[servers]`).
#[derive(Debug, Clone, Default)]
pub struct SandboxPolicy {
    pub mode: crate::sandbox::Mode,
    pub net: crate::sandbox::NetMode,
    /// `sandbox.allow_net`: hosts (`host`, `host:port`) for `net = "allow-list"`.
    pub allow_net: Option<Vec<String>>,
    /// Paths every server may read (they add up across layers).
    pub read: Vec<String>,
    /// Paths every server may write.
    pub write: Vec<String>,
    pub cwd: crate::sandbox::CwdMode,
    pub profile: crate::sandbox::Profile,
    pub servers: Vec<ServerGrants>,
}

/// `[servers."<pattern>"]`: grants for the servers a pattern matches.
#[derive(Debug, Clone)]
pub struct ServerGrants {
    pub pattern: Pattern,
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub allow_net: Vec<String>,
}

/// One known-compromised version and why.
#[derive(Debug, Clone)]
pub struct Compromised {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub versions: Vec<String>,
    pub reference: String,
}

/// The effective policy, with where each key came from.
#[derive(Debug, Clone)]
pub struct Policy {
    pub npm_registry: Option<String>,
    pub pypi_index: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    /// Hosts archives may come from besides the registry's own; `None`: any
    /// HTTPS host, when the registry declares a strong hash.
    pub file_hosts: Option<Vec<String>>,
    /// `registries.require_configured`: with no registry or index configured
    /// anywhere, refuse rather than ask `npm` / pip which one they use.
    pub require_configured: bool,
    /// One list per layer that set one: a root must match every list.
    pub allow: Vec<Vec<Pattern>>,
    pub deny: Vec<Pattern>,
    pub min_age: Duration,
    pub unknown: UnknownAge,
    pub scripts: ScriptsMode,
    pub pth: PthPolicy,
    /// Caps on what one archive may unpack to (`[archives]`).
    pub limits: crate::archive::Limits,
    pub lock_mode: LockMode,
    pub env_mode: EnvMode,
    pub env_pass: Vec<String>,
    pub audit_log: Option<PathBuf>,
    /// `audit.arguments`: a call's arguments in the audit log.
    pub audit_arguments: ArgsMode,
    /// `[tools]`: one entry per layer that has tool lists.
    pub tool_layers: Vec<ToolLayer>,
    /// `tools.pin`.
    pub tool_pin: PinMode,
    /// `mcp.max_line`: the longest message the relay takes, in bytes.
    pub mcp_max_line: u64,
    /// `mcp.redact`: secrets replaced in the server's answers.
    pub mcp_redact: bool,
    /// `[sandbox]` and `[servers."<pattern>"]`.
    pub sandbox: SandboxPolicy,
    pub compromised: Vec<Compromised>,
    /// key → the layer whose value is in force.
    pub sources: std::collections::BTreeMap<&'static str, String>,
    /// Keys set by the system layer (mandatory).
    pub mandatory: std::collections::BTreeSet<&'static str>,
    /// The layers in force, for messages and the audit log.
    pub layers: Vec<String>,
    /// Loosening attempts, reported on stderr once.
    pub warnings: Vec<String>,
}

impl Policy {
    /// Load every layer: built-in, system, user, command line (`--policy` or
    /// `SAFEX_POLICY`).
    pub fn load(cli_policy: Option<PathBuf>) -> Result<Policy> {
        merge::from_layers(layers::gather(cli_policy)?)
    }

    /// Only the built-in layer (tests and tools).
    pub fn builtin() -> Result<Policy> {
        merge::from_layers(vec![layers::Layer::builtin()?])
    }

    pub fn cooldown(&self) -> Cooldown {
        Cooldown {
            min_age: self.min_age,
            unknown: self.unknown,
            now: std::time::SystemTime::now(),
        }
    }

    /// `packages.allow`: may this root launch at all?
    pub fn check_root(&self, eco: Ecosystem, name: &str) -> Result<()> {
        for list in &self.allow {
            if !list.iter().any(|p| p.matches(eco, name, None)) {
                let shown: Vec<String> = list.iter().map(|p| format!("`{}`", p.raw)).collect();
                return Err(Error::policy(format!(
                    "`{name}` is not in the policy's `packages.allow` list ({})",
                    shown.join(", ")
                ))
                .with_hint(format!(
                    "ask your admin to allow it (policy layers: {})",
                    self.layers.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// `packages.deny` and the known-compromised list, for any package of a tree.
    pub fn check_package(&self, eco: Ecosystem, name: &str, version: &str) -> Result<()> {
        for c in self.compromised.iter().filter(|c| c.ecosystem == eco) {
            let same_name = match eco {
                Ecosystem::Npm => c.name == name,
                Ecosystem::Pypi => crate::pypi::tags::same_name(&c.name, name),
            };
            if same_name && c.versions.iter().any(|v| same_version(eco, v, version)) {
                let sep = if eco == Ecosystem::Npm { "@" } else { "==" };
                return Err(Error::policy(format!(
                    "`{name}{sep}{version}` is a known-compromised version: {}",
                    c.reference
                ))
                .with_hint("pin a version from before the incident; safex refuses this one in every policy layer"));
            }
        }
        if let Some(p) = self
            .deny
            .iter()
            .find(|p| p.matches(eco, name, Some(version)))
        {
            let sep = if eco == Ecosystem::Npm { "@" } else { "==" };
            return Err(Error::policy(format!(
                "`{name}{sep}{version}` is denied by the policy's `packages.deny` entry `{}`",
                p.raw
            ))
            .with_hint(format!(
                "choose another package or version (policy layers: {})",
                self.layers.join(", ")
            )));
        }
        Ok(())
    }

    /// One package's install-time code (as recorded: hook names,
    /// `binding.gyp`) under `scripts.mode`: the one decision that a launch,
    /// `safex lock` and `safex policy check` all make. Only code npm would
    /// run for a registry tarball counts (`inspect::runs_at_install`).
    pub fn check_install_code(&self, package: &str, code: &[String]) -> Result<()> {
        let code = crate::npm::inspect::run_at_install(code);
        if self.scripts == ScriptsMode::Refuse && !code.is_empty() {
            return Err(Error::policy(format!(
                "`{package}` has install-time code ({}), and the policy's `scripts.mode` is `refuse`",
                code.join(", ")
            ))
            .with_hint("ask your admin, or choose a package that needs no install step"));
        }
        Ok(())
    }

    /// `check_package` over every `(name, version)` of a tree.
    pub fn check_tree(&self, eco: Ecosystem, packages: &[(String, String)]) -> Result<()> {
        packages
            .iter()
            .try_for_each(|(n, v)| self.check_package(eco, n, v))
    }

    /// `Some(why)` when `[tools]` withholds this tool, resource or prompt
    /// of this server from this user.
    pub fn tool_denied(&self, s: &Subject<'_>, kind: ToolKind, name: &str) -> Option<String> {
        tools::denied(&self.tool_layers, s, kind, name)
    }

    /// Report loosening attempts (once per run).
    pub fn print_warnings(&self) {
        for w in &self.warnings {
            eprintln!("warning: {w}");
        }
    }
}

/// The release-age cooldown, as resolvers apply it: versions published less
/// than `min_age` before `now` are not resolved.
#[derive(Debug, Clone)]
pub struct Cooldown {
    pub min_age: Duration,
    /// What to do when the index does not say when a version was published.
    pub unknown: UnknownAge,
    pub now: std::time::SystemTime,
}

impl Cooldown {
    pub fn off() -> Cooldown {
        Cooldown {
            min_age: Duration::ZERO,
            unknown: UnknownAge::Allow,
            now: std::time::SystemTime::now(),
        }
    }

    pub fn is_off(&self) -> bool {
        self.min_age.is_zero() && self.unknown == UnknownAge::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = |s: &str| Pattern::parse(s).unwrap();
        assert!(p("@evil/*").matches(Ecosystem::Npm, "@evil/x", Some("1.0.0")));
        assert!(!p("@evil/*").matches(Ecosystem::Npm, "@good/x", Some("1.0.0")));
        assert!(p("event-stream@3.3.6").matches(Ecosystem::Npm, "event-stream", Some("3.3.6")));
        assert!(!p("event-stream@3.3.6").matches(Ecosystem::Npm, "event-stream", Some("3.3.5")));
        assert!(p("litellm==1.82.8").matches(Ecosystem::Pypi, "LiteLLM", Some("1.82.8")));
        assert!(p("mcp_server_*").matches(Ecosystem::Pypi, "mcp-server-time", None));
        assert!(p("*").matches(Ecosystem::Npm, "anything", None));
        assert!(p("@acme/*").matches(Ecosystem::Npm, "@acme/mcp-server", None));
        assert!(!p("a*b*c").matches(Ecosystem::Npm, "ab", None));
        assert!(p("a*b*c").matches(Ecosystem::Npm, "axxbyyc", None));
        assert!(Pattern::parse("").is_none());
        assert!(Pattern::parse("x@").is_none());
    }

    #[test]
    fn known_compromised_is_always_on() {
        let p = Policy::builtin().unwrap();
        let e = p
            .check_package(Ecosystem::Npm, "debug", "4.4.2")
            .unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Policy);
        assert!(
            e.message.contains("`debug@4.4.2`") && e.message.contains("qix"),
            "{}",
            e.message
        );
        assert!(p.check_package(Ecosystem::Npm, "debug", "4.4.1").is_ok());
        assert!(
            p.check_package(Ecosystem::Pypi, "litellm", "1.82.8")
                .is_err()
        );
        assert!(p.check_package(Ecosystem::Npm, "litellm", "1.82.8").is_ok());
        assert_eq!(p.scripts, ScriptsMode::Strip);
        assert_eq!(p.lock_mode, LockMode::Tofu);
    }
}
