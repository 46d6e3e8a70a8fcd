//! Merging the layers key by key, with the rule that a key the system layer
//! sets can be tightened below it but never loosened.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::file::{KnownEntry, RawKnown};
use super::layers::Layer;
use super::value::{choice, duration_value, patterns, size_value, url_value};
use super::{
    ArgsMode, BUILTIN_KNOWN, Compromised, Ecosystem, EnvMode, LockMode, PinMode, Policy, PthPolicy,
    ScriptsMode, UnknownAge,
};
use crate::error::Result;

/// The policy as merged so far.
struct Merger {
    p: Policy,
}

impl Merger {
    /// A list of host names: lower layers may only remove hosts.
    fn set_hosts(
        &mut self,
        key: &'static str,
        layer: &Layer,
        field: impl Fn(&mut Policy) -> &mut Option<Vec<String>>,
        v: &Spanned<Vec<String>>,
    ) {
        let hosts = v.get_ref().iter().map(|h| h.to_ascii_lowercase()).collect();
        self.set(key, layer, field, Some(hosts), |a, b| match (a, b) {
            (Some(a), Some(b)) => subset(a, b),
            (_, None) => true,
            (None, Some(_)) => false,
        });
    }

    /// Set `key` from `layer` unless that would loosen a system key (the
    /// mandatory-key rule, for every key but `packages.*`).
    /// `tighter_or_same(new, old)` says whether the change is allowed.
    fn set<T: Clone + Shown>(
        &mut self,
        key: &'static str,
        layer: &Layer,
        field: impl Fn(&mut Policy) -> &mut T,
        value: T,
        tighter_or_same: impl Fn(&T, &T) -> bool,
    ) {
        if self.p.mandatory.contains(key) && !layer.system {
            let current = field(&mut self.p).clone();
            if !tighter_or_same(&value, &current) {
                let system = self.p.sources.get(key).cloned().unwrap_or_default();
                self.p.warnings.push(format!(
                    "policy `{}` tries to loosen `{key}` set by the system policy ({} → {}); the system value stays ({system})",
                    layer.name,
                    current.shown(),
                    value.shown()
                ));
                return;
            }
        }
        *field(&mut self.p) = value;
        self.p.sources.insert(key, layer.name.clone());
        if layer.system {
            self.p.mandatory.insert(key);
        }
    }
}

/// A policy value as it is written in a policy file, for messages.
trait Shown {
    fn shown(&self) -> String;
}

macro_rules! shown_enum {
    ($t:ty, $($v:path => $s:literal),+) => {
        impl Shown for $t {
            fn shown(&self) -> String {
                match self { $($v => format!("`\"{}\"`", $s)),+ }
            }
        }
    };
}
shown_enum!(ScriptsMode, ScriptsMode::Strip => "strip", ScriptsMode::Refuse => "refuse");
shown_enum!(PthPolicy, PthPolicy::Strip => "strip", PthPolicy::RefuseExecutable => "refuse", PthPolicy::RefuseAll => "refuse-all");
shown_enum!(LockMode, LockMode::Tofu => "tofu", LockMode::Frozen => "frozen");
shown_enum!(EnvMode, EnvMode::Inherit => "inherit", EnvMode::Declared => "declared");
shown_enum!(PinMode, PinMode::Warn => "warn", PinMode::Refuse => "refuse");
shown_enum!(ArgsMode, ArgsMode::Hash => "hash", ArgsMode::Redacted => "redacted", ArgsMode::Full => "full");
shown_enum!(crate::sandbox::Mode, crate::sandbox::Mode::Off => "off", crate::sandbox::Mode::On => "on", crate::sandbox::Mode::Enforce => "enforce");
shown_enum!(crate::sandbox::NetMode, crate::sandbox::NetMode::Host => "host", crate::sandbox::NetMode::AllowList => "allow-list", crate::sandbox::NetMode::None => "none");
shown_enum!(crate::sandbox::Profile, crate::sandbox::Profile::Default => "default", crate::sandbox::Profile::Strict => "strict");
shown_enum!(crate::sandbox::CwdMode, crate::sandbox::CwdMode::Read => "read", crate::sandbox::CwdMode::None => "none");
shown_enum!(UnknownAge, UnknownAge::Allow => "allow", UnknownAge::Refuse => "refuse");

impl Shown for bool {
    fn shown(&self) -> String {
        format!("`{self}`")
    }
}

impl Shown for u64 {
    fn shown(&self) -> String {
        format!("`{self}`")
    }
}

impl Shown for Duration {
    fn shown(&self) -> String {
        format!("`\"{}\"`", crate::time::format_duration(*self))
    }
}
impl Shown for Vec<String> {
    fn shown(&self) -> String {
        format!(
            "`[{}]`",
            self.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
impl Shown for Option<Vec<String>> {
    fn shown(&self) -> String {
        self.as_ref().map_or("unset".into(), |v| v.shown())
    }
}
impl Shown for Option<String> {
    fn shown(&self) -> String {
        self.as_ref()
            .map_or("unset".into(), |v| format!("`\"{v}\"`"))
    }
}
impl Shown for Option<PathBuf> {
    fn shown(&self) -> String {
        self.as_ref()
            .map_or("unset".into(), |v| format!("`\"{}\"`", v.display()))
    }
}

fn subset(new: &[String], old: &[String]) -> bool {
    new.iter().all(|n| old.contains(n))
}

/// Merge the layers, lowest first: each layer's keys, table by table, over
/// the built-in defaults. A bad value stops the merge with an error naming
/// its file, line and key; a loosened system key is a warning (`Merger::set`).
pub fn from_layers(layers: Vec<Layer>) -> Result<Policy> {
    let mut m = Merger {
        p: defaults(&layers),
    };
    for layer in &layers {
        m.registries(layer)?;
        m.packages(layer)?;
        m.release(layer)?;
        m.scripts(layer)?;
        m.python(layer)?;
        m.archives(layer)?;
        m.lock(layer)?;
        m.env(layer)?;
        m.audit(layer)?;
        m.tools(layer)?;
        m.mcp(layer)?;
        m.sandbox(layer)?;
        if let Some(k) = &layer.parsed.raw.known_compromised {
            add_known(&mut m.p, k, &layer.name);
        }
    }
    Ok(m.p)
}

/// The policy before any layer: everything off or open, and the built-in
/// known-compromised list.
fn defaults(layers: &[Layer]) -> Policy {
    let mut p = Policy {
        npm_registry: None,
        pypi_index: None,
        allowed_hosts: None,
        file_hosts: None,
        require_configured: false,
        allow: Vec::new(),
        deny: Vec::new(),
        min_age: Duration::ZERO,
        unknown: UnknownAge::Allow,
        scripts: ScriptsMode::Strip,
        pth: PthPolicy::Strip,
        limits: crate::archive::Limits::default(),
        lock_mode: LockMode::Tofu,
        env_mode: EnvMode::Inherit,
        env_pass: Vec::new(),
        audit_log: None,
        audit_arguments: ArgsMode::Hash,
        tool_layers: Vec::new(),
        tool_pin: PinMode::Warn,
        mcp_max_line: 64 << 20,
        mcp_redact: true,
        sandbox: Default::default(),
        compromised: Vec::new(),
        sources: Default::default(),
        mandatory: Default::default(),
        layers: layers.iter().map(|l| l.name.clone()).collect(),
        warnings: Vec::new(),
    };
    p.compromised.extend(BUILTIN_KNOWN.iter().map(|k| {
        compromised(
            k.ecosystem,
            k.name,
            k.versions,
            k.incident,
            k.reference,
            None,
        )
    }));
    p
}

/// One step per table of a policy file, in the order `from_layers` takes
/// them (which decides the error shown when a file has several).
impl Merger {
    /// `[registries]`: the registry and index URLs, the host lists, and
    /// whether a launch needs them configured.
    fn registries(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(r) = &parsed.raw.registries else {
            return Ok(());
        };
        if let Some(v) = &r.npm {
            let u = url_value(parsed, "registries.npm", v)?;
            self.set(
                "registries.npm",
                layer,
                |p| &mut p.npm_registry,
                Some(u),
                |a, b| a == b,
            );
        }
        if let Some(v) = &r.pypi {
            let u = url_value(parsed, "registries.pypi", v)?;
            self.set(
                "registries.pypi",
                layer,
                |p| &mut p.pypi_index,
                Some(u),
                |a, b| a == b,
            );
        }
        if let Some(v) = &r.allowed_hosts {
            self.set_hosts(
                "registries.allowed_hosts",
                layer,
                |p| &mut p.allowed_hosts,
                v,
            );
        }
        if let Some(v) = &r.file_hosts {
            self.set_hosts("registries.file_hosts", layer, |p| &mut p.file_hosts, v);
        }
        if let Some(v) = &r.require_configured {
            self.set(
                "registries.require_configured",
                layer,
                |p| &mut p.require_configured,
                *v.get_ref(),
                |a, b| a >= b,
            );
        }
        Ok(())
    }

    /// `[packages]`: allow and deny patterns. They add up across layers
    /// (each `allow` list narrows the roots, each `deny` adds to the
    /// refused), so no layer can loosen another and `set` is not needed.
    fn packages(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(pk) = &parsed.raw.packages else {
            return Ok(());
        };
        if let Some(v) = &pk.allow {
            let list = patterns(parsed, "packages.allow", v)?;
            self.p.allow.push(list);
            self.p.sources.insert("packages.allow", layer.name.clone());
        }
        if let Some(v) = &pk.deny {
            self.p.deny.extend(patterns(parsed, "packages.deny", v)?);
            if !v.get_ref().is_empty() {
                self.p.sources.insert("packages.deny", layer.name.clone());
            }
        }
        Ok(())
    }

    /// `[release]`: the cooldown (how old a release must be) and what to do
    /// with a release of unknown age.
    fn release(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(rel) = &parsed.raw.release else {
            return Ok(());
        };
        if let Some(v) = &rel.min_age {
            let d = duration_value(parsed, "release.min_age", v)?;
            self.set(
                "release.min_age",
                layer,
                |p| &mut p.min_age,
                d,
                |a, b| a >= b,
            );
        }
        if let Some(v) = &rel.unknown {
            let u = choice(
                parsed,
                "release.unknown",
                v,
                &[("allow", UnknownAge::Allow), ("refuse", UnknownAge::Refuse)],
            )?;
            self.set(
                "release.unknown",
                layer,
                |p| &mut p.unknown,
                u,
                |a, b| a >= b,
            );
        }
        Ok(())
    }

    /// `[scripts] mode`: npm install scripts stripped or refused.
    fn scripts(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(v) = parsed.raw.scripts.as_ref().and_then(|s| s.mode.as_ref()) else {
            return Ok(());
        };
        let s = choice(
            parsed,
            "scripts.mode",
            v,
            &[
                ("strip", ScriptsMode::Strip),
                ("refuse", ScriptsMode::Refuse),
            ],
        )?;
        self.set("scripts.mode", layer, |p| &mut p.scripts, s, |a, b| a >= b);
        Ok(())
    }

    /// `[python] pth`: what happens to code Python would run at startup.
    fn python(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(v) = parsed.raw.python.as_ref().and_then(|s| s.pth.as_ref()) else {
            return Ok(());
        };
        let s = choice(
            parsed,
            "python.pth",
            v,
            &[
                ("strip", PthPolicy::Strip),
                ("refuse", PthPolicy::RefuseExecutable),
                ("refuse-executable", PthPolicy::RefuseExecutable),
                ("refuse-all", PthPolicy::RefuseAll),
            ],
        )?;
        self.set("python.pth", layer, |p| &mut p.pth, s, |a, b| a >= b);
        Ok(())
    }

    /// `[archives]`: the unpacking limits. A system value is a ceiling:
    /// lower layers may only lower it.
    fn archives(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(a) = &parsed.raw.archives else {
            return Ok(());
        };
        if let Some(v) = &a.max_file_size {
            let n = size_value(parsed, "archives.max_file_size", v)?;
            self.set(
                "archives.max_file_size",
                layer,
                |p| &mut p.limits.max_file_bytes,
                n,
                |a, b| a <= b,
            );
        }
        if let Some(v) = &a.max_total_size {
            let n = size_value(parsed, "archives.max_total_size", v)?;
            self.set(
                "archives.max_total_size",
                layer,
                |p| &mut p.limits.max_total_bytes,
                n,
                |a, b| a <= b,
            );
        }
        if let Some(v) = &a.max_entries {
            let n = *v.get_ref();
            self.set(
                "archives.max_entries",
                layer,
                |p| &mut p.limits.max_entries,
                n,
                |a, b| a <= b,
            );
        }
        Ok(())
    }

    /// `[lock] mode`: trust on first use, or only what the lockfile holds.
    fn lock(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(v) = parsed.raw.lock.as_ref().and_then(|s| s.mode.as_ref()) else {
            return Ok(());
        };
        let s = choice(
            parsed,
            "lock.mode",
            v,
            &[("tofu", LockMode::Tofu), ("frozen", LockMode::Frozen)],
        )?;
        self.set("lock.mode", layer, |p| &mut p.lock_mode, s, |a, b| a >= b);
        Ok(())
    }

    /// `[env]`: which environment the program sees.
    fn env(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(env) = &parsed.raw.env else {
            return Ok(());
        };
        if let Some(v) = &env.mode {
            let s = choice(
                parsed,
                "env.mode",
                v,
                &[
                    ("inherit", EnvMode::Inherit),
                    ("declared", EnvMode::Declared),
                ],
            )?;
            self.set("env.mode", layer, |p| &mut p.env_mode, s, |a, b| a >= b);
        }
        if let Some(v) = &env.pass {
            if let Some(name) = v.get_ref().iter().find(|n| !env_name_ok(n)) {
                return Err(parsed.bad(
                    "env.pass",
                    v.span(),
                    &format!("has an invalid name `{}`", crate::redact::shown(name)),
                ));
            }
            self.set(
                "env.pass",
                layer,
                |p| &mut p.env_pass,
                v.get_ref().clone(),
                |a, b| subset(a, b),
            );
        }
        Ok(())
    }

    /// `[audit]`: where the audit log goes, and how a call's arguments are
    /// written in it (a system value stays: it is what the security team
    /// reads).
    fn audit(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(a) = parsed.raw.audit.as_ref() else {
            return Ok(());
        };
        if let Some(v) = &a.log {
            if v.get_ref().trim().is_empty() {
                return Err(parsed.bad("audit.log", v.span(), "is empty; give a file path"));
            }
            let path = Some(PathBuf::from(v.get_ref()));
            self.set(
                "audit.log",
                layer,
                |p| &mut p.audit_log,
                path,
                |a, b| a == b,
            );
        }
        if let Some(v) = &a.arguments {
            let mode = choice(
                parsed,
                "audit.arguments",
                v,
                &[
                    ("hash", ArgsMode::Hash),
                    ("redacted", ArgsMode::Redacted),
                    ("full", ArgsMode::Full),
                ],
            )?;
            self.set(
                "audit.arguments",
                layer,
                |p| &mut p.audit_arguments,
                mode,
                |a, b| a == b,
            );
        }
        Ok(())
    }

    /// `[tools]`: the layer's lists (they add up across layers, as
    /// `packages.*` do) and `tools.pin`.
    fn tools(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(t) = parsed.raw.tools.as_ref() else {
            return Ok(());
        };
        if let Some(v) = &t.pin {
            let mode = choice(
                parsed,
                "tools.pin",
                v,
                &[("warn", PinMode::Warn), ("refuse", PinMode::Refuse)],
            )?;
            self.set("tools.pin", layer, |p| &mut p.tool_pin, mode, |a, b| a >= b);
        }
        let sets = super::tools::layer_sets(parsed, &layer.name, t)?;
        if !sets.sets.is_empty() {
            self.p.tool_layers.push(sets);
            self.p.sources.insert("tools", layer.name.clone());
        }
        Ok(())
    }

    /// `[mcp]`: the relay's longest message (a system value is a ceiling)
    /// and whether secrets are kept out of answers (a system `true` stays).
    fn mcp(&mut self, layer: &Layer) -> Result<()> {
        let parsed = &layer.parsed;
        let Some(m) = parsed.raw.mcp.as_ref() else {
            return Ok(());
        };
        if let Some(v) = &m.max_line {
            let n = size_value(parsed, "mcp.max_line", v)?;
            if n < 4096 {
                return Err(parsed.bad(
                    "mcp.max_line",
                    v.span(),
                    "is under 4KiB; an MCP client's first message does not fit",
                ));
            }
            self.set(
                "mcp.max_line",
                layer,
                |p| &mut p.mcp_max_line,
                n,
                |a, b| a <= b,
            );
        }
        if let Some(v) = &m.redact {
            self.set(
                "mcp.redact",
                layer,
                |p| &mut p.mcp_redact,
                *v.get_ref(),
                |a, b| a >= b,
            );
        }
        Ok(())
    }

    /// `[sandbox]` and `[servers."<pattern>"]`: the mode, the network
    /// and the working directory can only be tightened below a system
    /// value; the system's host list can only lose hosts; path grants
    /// add up (a person's files are theirs to share with a server).
    fn sandbox(&mut self, layer: &Layer) -> Result<()> {
        use crate::sandbox::{CwdMode, Mode, NetMode};
        let parsed = &layer.parsed;
        if let Some(sb) = parsed.raw.sandbox.as_ref() {
            if let Some(v) = &sb.mode {
                let m = choice(
                    parsed,
                    "sandbox.mode",
                    v,
                    &[
                        ("off", Mode::Off),
                        ("on", Mode::On),
                        ("enforce", Mode::Enforce),
                    ],
                )?;
                self.set(
                    "sandbox.mode",
                    layer,
                    |p| &mut p.sandbox.mode,
                    m,
                    |a, b| a >= b,
                );
            }
            if let Some(v) = &sb.net {
                let n = choice(
                    parsed,
                    "sandbox.net",
                    v,
                    &[
                        ("host", NetMode::Host),
                        ("allow-list", NetMode::AllowList),
                        ("none", NetMode::None),
                    ],
                )?;
                self.set(
                    "sandbox.net",
                    layer,
                    |p| &mut p.sandbox.net,
                    n,
                    |a, b| a >= b,
                );
            }
            if let Some(v) = &sb.profile {
                use crate::sandbox::Profile;
                let pr = choice(
                    parsed,
                    "sandbox.profile",
                    v,
                    &[("default", Profile::Default), ("strict", Profile::Strict)],
                )?;
                self.set(
                    "sandbox.profile",
                    layer,
                    |p| &mut p.sandbox.profile,
                    pr,
                    |a, b| a >= b,
                );
            }
            if let Some(v) = &sb.cwd {
                let c = choice(
                    parsed,
                    "sandbox.cwd",
                    v,
                    &[("read", CwdMode::Read), ("none", CwdMode::None)],
                )?;
                self.set(
                    "sandbox.cwd",
                    layer,
                    |p| &mut p.sandbox.cwd,
                    c,
                    |a, b| a >= b,
                );
            }
            if let Some(v) = &sb.allow_net {
                if let Some(h) = v.get_ref().iter().find(|h| !host_entry_ok(h)) {
                    return Err(parsed.bad(
                        "sandbox.allow_net",
                        v.span(),
                        &format!("has `{h}`, which is not a host or host:port"),
                    ));
                }
                self.set_hosts("sandbox.allow_net", layer, |p| &mut p.sandbox.allow_net, v);
            }
            for (key, v, list) in [
                ("sandbox.read", &sb.read, 0),
                ("sandbox.write", &sb.write, 1),
            ] {
                let Some(v) = v else { continue };
                if v.get_ref().iter().any(|p| p.trim().is_empty()) {
                    return Err(parsed.bad(key, v.span(), "has an empty path"));
                }
                let to = if list == 0 {
                    &mut self.p.sandbox.read
                } else {
                    &mut self.p.sandbox.write
                };
                to.extend(v.get_ref().iter().cloned());
                self.p.sources.insert(key, layer.name.clone());
            }
        }
        if let Some(servers) = parsed.raw.servers.as_ref() {
            for (raw, grants) in servers {
                let Some(pattern) = super::Pattern::parse(raw) else {
                    return Err(parsed.bad(
                        &format!("servers.\"{raw}\""),
                        grants.span(),
                        "is not a package name or pattern",
                    ));
                };
                let g = grants.get_ref();
                if let Some(h) = g.allow_net.iter().find(|h| !host_entry_ok(h)) {
                    return Err(parsed.bad(
                        &format!("servers.\"{raw}\".allow_net"),
                        grants.span(),
                        &format!("has `{h}`, which is not a host or host:port"),
                    ));
                }
                self.p.sandbox.servers.push(super::ServerGrants {
                    pattern,
                    read: g.read.clone(),
                    write: g.write.clone(),
                    allow_net: g.allow_net.iter().map(|h| h.to_ascii_lowercase()).collect(),
                });
                self.p.sources.insert("servers", layer.name.clone());
            }
        }
        Ok(())
    }
}

/// An `env.pass` name: a variable name, or a prefix ending in one `*`.
/// npm reads `npm_config_@scope:registry` and `npm_config_//host/:_authToken`
/// from the environment: those characters are names too.
/// `host` or `host:port` (no scheme, no path, no spaces).
fn host_entry_ok(h: &str) -> bool {
    let h = h.trim();
    !h.is_empty() && !h.contains("://") && !h.contains('/') && !h.contains(char::is_whitespace)
}

fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .trim_end_matches('*')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | ':' | '/' | '.' | '-'))
        && name.matches('*').count() <= 1
}

fn add_known(p: &mut Policy, k: &RawKnown, source: &str) {
    let conv = |eco: Ecosystem, e: &KnownEntry| {
        let versions: Vec<&str> = e.versions.iter().map(String::as_str).collect();
        compromised(
            eco,
            &e.name,
            &versions,
            e.incident.as_deref(),
            &e.reference,
            Some(source),
        )
    };
    p.compromised
        .extend(k.npm.iter().map(|e| conv(Ecosystem::Npm, e)));
    p.compromised
        .extend(k.pypi.iter().map(|e| conv(Ecosystem::Pypi, e)));
}

/// One known-compromised entry; `source` is the policy layer that added
/// it (`None`: the built-in list).
fn compromised(
    ecosystem: Ecosystem,
    name: &str,
    versions: &[&str],
    incident: Option<&str>,
    reference: &str,
    source: Option<&str>,
) -> Compromised {
    let r = match incident {
        Some(i) => format!("incident `{i}`: {reference}"),
        None => reference.to_owned(),
    };
    Compromised {
        ecosystem,
        name: name.to_owned(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        reference: match source {
            Some(s) => format!("{r} (from {s})"),
            None => r,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::file::Parsed;

    /// The table `build.rs` writes is the list as a policy file's
    /// `[known_compromised]` would read it: every entry, in order.
    #[test]
    fn builtin_known_table_is_the_file() {
        let text = include_str!("../../policies/known-compromised.toml");
        let raw: RawKnown = toml::from_str(text).unwrap();
        let expected: Vec<(Ecosystem, &KnownEntry)> = raw
            .npm
            .iter()
            .map(|e| (Ecosystem::Npm, e))
            .chain(raw.pypi.iter().map(|e| (Ecosystem::Pypi, e)))
            .collect();
        assert!(expected.len() > 20, "{}", expected.len());
        assert_eq!(BUILTIN_KNOWN.len(), expected.len());
        for (got, (eco, e)) in BUILTIN_KNOWN.iter().zip(&expected) {
            assert_eq!(got.ecosystem, *eco);
            assert_eq!(got.name, e.name);
            assert_eq!(
                got.versions,
                e.versions.iter().map(String::as_str).collect::<Vec<_>>()
            );
            assert_eq!(got.incident, e.incident.as_deref());
            assert_eq!(got.reference, e.reference);
        }
    }

    fn layer(name: &str, system: bool, text: &str) -> Layer {
        Layer {
            name: name.into(),
            system,
            parsed: Parsed::parse(text.into(), name).unwrap(),
        }
    }

    #[test]
    fn system_keys_are_mandatory() {
        let p = from_layers(vec![
            Layer::builtin().unwrap(),
            layer("system", true, "[scripts]\nmode = \"refuse\"\n[lock]\nmode = \"tofu\"\n[env]\npass = [\"A\", \"B\"]\n"),
            layer("user", false, "[scripts]\nmode = \"strip\"\n[lock]\nmode = \"frozen\"\n[env]\npass = [\"A\", \"C\"]\n"),
        ])
        .unwrap();
        assert_eq!(p.scripts, ScriptsMode::Refuse, "a loosening is ignored");
        assert_eq!(p.lock_mode, LockMode::Frozen, "a tightening applies");
        assert_eq!(p.env_pass, vec!["A", "B"]);
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("scripts.mode"), "{:?}", p.warnings);
        let shown = p.show();
        assert!(
            shown.contains("scripts.mode = \"refuse\"    # system, mandatory"),
            "{shown}"
        );
    }

    #[test]
    fn relay_keys_are_mandatory_too() {
        let p = from_layers(vec![
            Layer::builtin().unwrap(),
            layer("system", true, "[tools]\npin = \"refuse\"\n[mcp]\nmax_line = \"8MiB\"\nredact = true\n[audit]\narguments = \"redacted\"\n"),
            layer("user", false, "[tools]\npin = \"warn\"\n[mcp]\nmax_line = \"1GiB\"\nredact = false\n[audit]\narguments = \"full\"\n"),
        ])
        .unwrap();
        assert_eq!(p.tool_pin, PinMode::Refuse);
        assert_eq!(p.mcp_max_line, 8 << 20);
        assert!(p.mcp_redact);
        assert_eq!(p.audit_arguments, ArgsMode::Redacted);
        assert_eq!(p.warnings.len(), 4, "{:?}", p.warnings);
        let p = from_layers(vec![
            Layer::builtin().unwrap(),
            layer("system", true, "[mcp]\nmax_line = \"8MiB\"\n"),
            layer(
                "user",
                false,
                "[mcp]\nmax_line = \"1MiB\"\nredact = false\n[tools]\npin = \"refuse\"\n",
            ),
        ])
        .unwrap();
        assert_eq!(p.mcp_max_line, 1 << 20, "a lower ceiling applies");
        assert!(
            !p.mcp_redact,
            "not set by the system: the user may turn it off"
        );
        assert_eq!(p.tool_pin, PinMode::Refuse);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let e = from_layers(vec![layer("u", false, "[mcp]\nmax_line = \"100\"\n")]).unwrap_err();
        assert!(e.message.contains("`mcp.max_line`"), "{}", e.message);
    }

    #[test]
    fn non_system_layers_override_freely() {
        let p = from_layers(vec![
            Layer::builtin().unwrap(),
            layer("user", false, "[scripts]\nmode = \"refuse\"\n"),
            layer("cli", false, "[scripts]\nmode = \"strip\"\n"),
        ])
        .unwrap();
        assert_eq!(p.scripts, ScriptsMode::Strip);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        for (text, needle) in [
            (
                "[scripts]\nmode = \"sometimes\"\n",
                "line 2: `scripts.mode`",
            ),
            (
                "[release]\n\nmin_age = \"soon\"\n",
                "line 3: `release.min_age`",
            ),
            ("[packages]\ndeny = [\"\"]\n", "line 2: `packages.deny`"),
        ] {
            let e = from_layers(vec![layer("`/x/p.toml`", false, text)]).unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Usage);
            assert!(
                e.message.contains(needle) && e.message.contains("/x/p.toml"),
                "{}",
                e.message
            );
        }
        for (text, needle) in [
            ("[scripts]\nmod = \"x\"\n", "line 2"),
            ("[nope]\n", "line 1"),
            ("x = \n", "line 1"),
        ] {
            let e = Parsed::parse(text.into(), "`/x/p.toml`").err().unwrap();
            assert!(
                e.message.contains(needle) && e.message.contains("/x/p.toml"),
                "{}",
                e.message
            );
        }
    }
}
