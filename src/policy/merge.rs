//! Reading the layers and merging them, key by key, with the rule that a key
//! the system layer sets can be tightened below it but never loosened.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::file::{KnownEntry, Parsed, RawKnown};
use super::{
    BUILTIN, BUILTIN_KNOWN, Compromised, Ecosystem, EnvMode, LockMode, Pattern, Policy, PthPolicy,
    ScriptsMode, UnknownAge,
};
use crate::env_vars as ev;
use crate::error::{Error, Result};

/// One policy file in the stack.
pub struct Layer {
    pub name: String,
    pub system: bool,
    parsed: Parsed,
}

impl Layer {
    pub fn builtin() -> Result<Layer> {
        Ok(Layer {
            name: "built-in".into(),
            system: false,
            parsed: Parsed::parse(BUILTIN.to_owned(), "built-in policy")?,
        })
    }
}

/// The admin's policy at its fixed path per OS. `SAFEX_SYSTEM_POLICY` may
/// point elsewhere only where no file exists at the fixed path, so a user
/// cannot switch the admin's file off.
pub fn system_policy_path_with(fixed: &Path, env_override: Option<PathBuf>) -> Option<PathBuf> {
    if fixed.exists() {
        return Some(fixed.to_path_buf());
    }
    env_override
}

fn fixed_system_path() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(
            std::env::var_os(crate::env_vars::PROGRAM_DATA)
                .unwrap_or_else(|| "C:\\ProgramData".into()),
        )
        .join("safex")
        .join("policy.toml")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/safex/policy.toml")
    } else {
        PathBuf::from("/etc/safex/policy.toml")
    }
}

pub fn load(cli_policy: Option<PathBuf>) -> Result<Policy> {
    let mut layers = vec![Layer::builtin()?];
    let system = system_policy_path_with(
        &fixed_system_path(),
        ev::get(ev::SAFEX_SYSTEM_POLICY).map(PathBuf::from),
    );
    if let Some(path) = system {
        let parsed = Parsed::read(&path, "system policy")?.ok_or_else(|| {
            Error::io(format!(
                "the system policy `{}` does not exist",
                path.display()
            ))
            .with_hint(format!("fix or unset `{}`", ev::SAFEX_SYSTEM_POLICY))
        })?;
        layers.push(Layer {
            name: format!("system:{}", path.display()),
            system: true,
            parsed,
        });
    }
    if let Some(dirs) = directories::ProjectDirs::from("", "", "safex") {
        let path = dirs.config_dir().join("policy.toml");
        if let Some(parsed) = Parsed::read(&path, "user policy")? {
            layers.push(Layer {
                name: format!("user:{}", path.display()),
                system: false,
                parsed,
            });
        }
    }
    if let Some(path) = cli_policy.or_else(|| ev::get(ev::SAFEX_POLICY).map(PathBuf::from)) {
        let parsed = Parsed::read(&path, "command-line policy")?.ok_or_else(|| {
            Error::usage(format!(
                "the policy file `{}` does not exist",
                path.display()
            ))
            .with_hint("check the path given to `--policy` or `SAFEX_POLICY`")
        })?;
        layers.push(Layer {
            name: format!("command line:{}", path.display()),
            system: false,
            parsed,
        });
    }
    from_layers(layers)
}

struct Merger {
    p: Policy,
}

impl Merger {
    /// Set `key` from `layer` unless that would loosen a system key.
    /// `tighter_or_same(new, old)` says whether the change is allowed.
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

fn choice<T: Copy>(
    parsed: &Parsed,
    key: &str,
    v: &Spanned<String>,
    options: &[(&str, T)],
) -> Result<T> {
    options
        .iter()
        .find(|(s, _)| *s == v.get_ref())
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<String> = options.iter().map(|(s, _)| format!("`{s}`")).collect();
            parsed.bad(
                key,
                v.span(),
                &format!(
                    "is `{}`; expected {}",
                    crate::redact::shown(v.get_ref()),
                    names.join(" or ")
                ),
            )
        })
}

fn patterns(parsed: &Parsed, key: &str, v: &Spanned<Vec<String>>) -> Result<Vec<Pattern>> {
    v.get_ref()
        .iter()
        .map(|s| {
            Pattern::parse(s).ok_or_else(|| {
                parsed.bad(
                    key,
                    v.span(),
                    &format!("has an invalid pattern `{}`", crate::redact::shown(s)),
                )
            })
        })
        .collect()
}

/// `"4GiB"`, `"512MiB"`, `"64KiB"`, `"1TiB"` or a plain byte count.
fn size_value(parsed: &Parsed, key: &str, v: &Spanned<String>) -> Result<u64> {
    parse_size(v.get_ref()).ok_or_else(|| {
        parsed.bad(
            key,
            v.span(),
            &format!(
                "is `{}`; expected a size like `4GiB`, `512MiB` or a number of bytes",
                crate::redact::shown(v.get_ref())
            ),
        )
    })
}

pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn url_value(parsed: &Parsed, key: &str, v: &Spanned<String>) -> Result<String> {
    url::Url::parse(v.get_ref())
        .map(|_| v.get_ref().clone())
        .map_err(|e| parsed.bad(key, v.span(), &format!("is not a URL: {e}")))
}

pub fn from_layers(layers: Vec<Layer>) -> Result<Policy> {
    let mut m = Merger {
        p: Policy {
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
            compromised: Vec::new(),
            sources: Default::default(),
            mandatory: Default::default(),
            layers: layers.iter().map(|l| l.name.clone()).collect(),
            warnings: Vec::new(),
        },
    };
    m.p.compromised.extend(BUILTIN_KNOWN.iter().map(|k| {
        compromised(
            k.ecosystem,
            k.name,
            k.versions,
            k.incident,
            k.reference,
            None,
        )
    }));
    for layer in &layers {
        let parsed = &layer.parsed;
        let raw = &parsed.raw;
        if let Some(r) = &raw.registries {
            if let Some(v) = &r.npm {
                let u = url_value(parsed, "registries.npm", v)?;
                m.set(
                    "registries.npm",
                    layer,
                    |p| &mut p.npm_registry,
                    Some(u),
                    |a, b| a == b,
                );
            }
            if let Some(v) = &r.pypi {
                let u = url_value(parsed, "registries.pypi", v)?;
                m.set(
                    "registries.pypi",
                    layer,
                    |p| &mut p.pypi_index,
                    Some(u),
                    |a, b| a == b,
                );
            }
            if let Some(v) = &r.allowed_hosts {
                m.set_hosts(
                    "registries.allowed_hosts",
                    layer,
                    |p| &mut p.allowed_hosts,
                    v,
                );
            }
            if let Some(v) = &r.file_hosts {
                m.set_hosts("registries.file_hosts", layer, |p| &mut p.file_hosts, v);
            }
            if let Some(v) = &r.require_configured {
                m.set(
                    "registries.require_configured",
                    layer,
                    |p| &mut p.require_configured,
                    *v.get_ref(),
                    |a, b| a >= b,
                );
            }
        }
        if let Some(pk) = &raw.packages {
            if let Some(v) = &pk.allow {
                // Each layer's list narrows the set of roots: never a loosening.
                let list = patterns(parsed, "packages.allow", v)?;
                m.p.allow.push(list);
                m.p.sources.insert("packages.allow", layer.name.clone());
            }
            if let Some(v) = &pk.deny {
                m.p.deny.extend(patterns(parsed, "packages.deny", v)?);
                if !v.get_ref().is_empty() {
                    m.p.sources.insert("packages.deny", layer.name.clone());
                }
            }
        }
        if let Some(rel) = &raw.release {
            if let Some(v) = &rel.min_age {
                let d = crate::time::parse_duration(v.get_ref()).ok_or_else(|| {
                    parsed.bad(
                        "release.min_age",
                        v.span(),
                        &format!(
                            "is `{}`; expected a duration like `7d`, `12h`, `30m` or `0`",
                            crate::redact::shown(v.get_ref())
                        ),
                    )
                })?;
                m.set(
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
                m.set(
                    "release.unknown",
                    layer,
                    |p| &mut p.unknown,
                    u,
                    |a, b| a >= b,
                );
            }
        }
        if let Some(v) = raw.scripts.as_ref().and_then(|s| s.mode.as_ref()) {
            let s = choice(
                parsed,
                "scripts.mode",
                v,
                &[
                    ("strip", ScriptsMode::Strip),
                    ("refuse", ScriptsMode::Refuse),
                ],
            )?;
            m.set("scripts.mode", layer, |p| &mut p.scripts, s, |a, b| a >= b);
        }
        if let Some(v) = raw.python.as_ref().and_then(|s| s.pth.as_ref()) {
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
            m.set("python.pth", layer, |p| &mut p.pth, s, |a, b| a >= b);
        }
        if let Some(a) = &raw.archives {
            // A system value is a ceiling: lower layers may only lower it.
            if let Some(v) = &a.max_file_size {
                let n = size_value(parsed, "archives.max_file_size", v)?;
                m.set(
                    "archives.max_file_size",
                    layer,
                    |p| &mut p.limits.max_file_bytes,
                    n,
                    |a, b| a <= b,
                );
            }
            if let Some(v) = &a.max_total_size {
                let n = size_value(parsed, "archives.max_total_size", v)?;
                m.set(
                    "archives.max_total_size",
                    layer,
                    |p| &mut p.limits.max_total_bytes,
                    n,
                    |a, b| a <= b,
                );
            }
            if let Some(v) = &a.max_entries {
                let n = *v.get_ref();
                m.set(
                    "archives.max_entries",
                    layer,
                    |p| &mut p.limits.max_entries,
                    n,
                    |a, b| a <= b,
                );
            }
        }
        if let Some(v) = raw.lock.as_ref().and_then(|s| s.mode.as_ref()) {
            let s = choice(
                parsed,
                "lock.mode",
                v,
                &[("tofu", LockMode::Tofu), ("frozen", LockMode::Frozen)],
            )?;
            m.set("lock.mode", layer, |p| &mut p.lock_mode, s, |a, b| a >= b);
        }
        if let Some(env) = &raw.env {
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
                m.set("env.mode", layer, |p| &mut p.env_mode, s, |a, b| a >= b);
            }
            if let Some(v) = &env.pass {
                for name in v.get_ref() {
                    // npm reads `npm_config_@scope:registry` and
                    // `npm_config_//host/:_authToken` from the environment:
                    // those characters are names too.
                    let ok = !name.is_empty()
                        && name.trim_end_matches('*').chars().all(|c| {
                            c.is_ascii_alphanumeric()
                                || matches!(c, '_' | '@' | ':' | '/' | '.' | '-')
                        })
                        && name.matches('*').count() <= 1;
                    if !ok {
                        return Err(parsed.bad(
                            "env.pass",
                            v.span(),
                            &format!("has an invalid name `{}`", crate::redact::shown(name)),
                        ));
                    }
                }
                m.set(
                    "env.pass",
                    layer,
                    |p| &mut p.env_pass,
                    v.get_ref().clone(),
                    |a, b| subset(a, b),
                );
            }
        }
        if let Some(v) = raw.audit.as_ref().and_then(|a| a.log.as_ref()) {
            if v.get_ref().trim().is_empty() {
                return Err(parsed.bad("audit.log", v.span(), "is empty; give a file path"));
            }
            let path = Some(PathBuf::from(v.get_ref()));
            m.set(
                "audit.log",
                layer,
                |p| &mut p.audit_log,
                path,
                |a, b| a == b,
            );
        }
        if let Some(k) = &raw.known_compromised {
            add_known(&mut m.p, k, &layer.name);
        }
    }
    Ok(m.p)
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

/// `safex policy show`: every key, its value and the layer it came from.
pub fn show(p: &Policy) -> String {
    let src = |k: &str| {
        let s = p
            .sources
            .get(k)
            .cloned()
            .unwrap_or_else(|| "built-in".into());
        if p.mandatory.contains(k) {
            format!("{s}, mandatory")
        } else {
            s
        }
    };
    let list = |v: &[String]| {
        format!(
            "[{}]",
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k} = {v}    # {}\n", src(k)));
    line(
        "registries.npm",
        p.npm_registry
            .clone()
            .map(|u| format!("\"{u}\""))
            .unwrap_or("(unset)".into()),
    );
    line(
        "registries.pypi",
        p.pypi_index
            .clone()
            .map(|u| format!("\"{u}\""))
            .unwrap_or("(unset)".into()),
    );
    line(
        "registries.allowed_hosts",
        p.allowed_hosts
            .as_deref()
            .map(list)
            .unwrap_or("(unset)".into()),
    );
    line(
        "registries.file_hosts",
        p.file_hosts
            .as_deref()
            .map(list)
            .unwrap_or("(unset: any https host, by the registry's hash)".into()),
    );
    line(
        "registries.require_configured",
        p.require_configured.to_string(),
    );
    let allow = if p.allow.is_empty() {
        "(unset: any root)".to_owned()
    } else {
        p.allow
            .iter()
            .map(|l| list(&l.iter().map(|x| x.raw.clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    line("packages.allow", allow);
    line(
        "packages.deny",
        list(&p.deny.iter().map(|x| x.raw.clone()).collect::<Vec<_>>()),
    );
    line(
        "release.min_age",
        format!("\"{}\"", crate::time::format_duration(p.min_age)),
    );
    line(
        "release.unknown",
        format!(
            "\"{}\"",
            if p.unknown == UnknownAge::Refuse {
                "refuse"
            } else {
                "allow"
            }
        ),
    );
    line(
        "scripts.mode",
        format!(
            "\"{}\"",
            if p.scripts == ScriptsMode::Refuse {
                "refuse"
            } else {
                "strip"
            }
        ),
    );
    line(
        "archives.max_file_size",
        p.limits.max_file_bytes.to_string(),
    );
    line(
        "archives.max_total_size",
        p.limits.max_total_bytes.to_string(),
    );
    line("archives.max_entries", p.limits.max_entries.to_string());
    line(
        "python.pth",
        format!(
            "\"{}\"",
            match p.pth {
                PthPolicy::Strip => "strip",
                PthPolicy::RefuseExecutable => "refuse",
                PthPolicy::RefuseAll => "refuse-all",
            }
        ),
    );
    line("lock.mode", format!("\"{}\"", p.lock_mode.as_str()));
    line(
        "env.mode",
        format!(
            "\"{}\"",
            if p.env_mode == EnvMode::Declared {
                "declared"
            } else {
                "inherit"
            }
        ),
    );
    line("env.pass", list(&p.env_pass));
    line(
        "audit.log",
        p.audit_log
            .as_ref()
            .map(|l| format!("\"{}\"", l.display()))
            .unwrap_or("(default)".into()),
    );
    out.push_str(&format!(
        "# known-compromised versions: {} entries, always on\n",
        p.compromised.len()
    ));
    out.push_str(&format!("# layers: {}\n", p.layers.join(" < ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let shown = show(&p);
        assert!(
            shown.contains("scripts.mode = \"refuse\"    # system, mandatory"),
            "{shown}"
        );
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

    #[test]
    fn system_override_only_without_the_fixed_file() {
        let dir = tempfile::tempdir().unwrap();
        let fixed = dir.path().join("policy.toml");
        let other = Some(dir.path().join("user-chosen.toml"));
        assert_eq!(system_policy_path_with(&fixed, other.clone()), other);
        std::fs::write(&fixed, "").unwrap();
        assert_eq!(system_policy_path_with(&fixed, other), Some(fixed));
    }
}
