//! `safex policy show`: every key, its value and the layer it came from.

use super::{ArgsMode, EnvMode, Pattern, PinMode, Policy, PthPolicy, ScriptsMode, UnknownAge};

impl Policy {
    /// Every key, its value and the layer it came from.
    pub fn show(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.values() {
            out.push_str(&format!("{k} = {v}    # {}\n", self.source_of(k)));
        }
        out.push_str(&format!(
            "# known-compromised versions: {} entries, always on\n",
            self.compromised.len()
        ));
        out.push_str(&format!("# layers: {}\n", self.layers.join(" < ")));
        out
    }

    /// The layer that set `k` (`built-in` when none did), and whether the
    /// system layer made it mandatory.
    fn source_of(&self, k: &str) -> String {
        let s = self
            .sources
            .get(k)
            .cloned()
            .unwrap_or_else(|| "built-in".into());
        if self.mandatory.contains(k) {
            format!("{s}, mandatory")
        } else {
            s
        }
    }

    /// Every key, in the order of `docs/policy.md`, and its value as a
    /// policy file writes it (or what being unset means).
    fn values(&self) -> Vec<(&'static str, String)> {
        let unset = |v: Option<String>, why: &str| v.unwrap_or_else(|| why.to_owned());
        let allow = if self.allow.is_empty() {
            "(unset: any root)".to_owned()
        } else {
            let lists: Vec<String> = self.allow.iter().map(|l| patterns(l)).collect();
            lists.join(" and ")
        };
        vec![
            (
                "registries.npm",
                unset(self.npm_registry.as_deref().map(quoted), "(unset)"),
            ),
            (
                "registries.pypi",
                unset(self.pypi_index.as_deref().map(quoted), "(unset)"),
            ),
            (
                "registries.allowed_hosts",
                unset(self.allowed_hosts.as_deref().map(list), "(unset)"),
            ),
            (
                "registries.file_hosts",
                unset(
                    self.file_hosts.as_deref().map(list),
                    "(unset: any https host, by the registry's hash)",
                ),
            ),
            (
                "registries.require_configured",
                self.require_configured.to_string(),
            ),
            ("packages.allow", allow),
            ("packages.deny", patterns(&self.deny)),
            (
                "release.min_age",
                quoted(&crate::time::format_duration(self.min_age)),
            ),
            (
                "release.unknown",
                quoted(match self.unknown {
                    UnknownAge::Allow => "allow",
                    UnknownAge::Refuse => "refuse",
                }),
            ),
            (
                "scripts.mode",
                quoted(match self.scripts {
                    ScriptsMode::Strip => "strip",
                    ScriptsMode::Refuse => "refuse",
                }),
            ),
            (
                "archives.max_file_size",
                self.limits.max_file_bytes.to_string(),
            ),
            (
                "archives.max_total_size",
                self.limits.max_total_bytes.to_string(),
            ),
            ("archives.max_entries", self.limits.max_entries.to_string()),
            (
                "python.pth",
                quoted(match self.pth {
                    PthPolicy::Strip => "strip",
                    PthPolicy::RefuseExecutable => "refuse",
                    PthPolicy::RefuseAll => "refuse-all",
                }),
            ),
            ("lock.mode", quoted(self.lock_mode.as_str())),
            (
                "env.mode",
                quoted(match self.env_mode {
                    EnvMode::Inherit => "inherit",
                    EnvMode::Declared => "declared",
                }),
            ),
            ("env.pass", list(&self.env_pass)),
            (
                "audit.log",
                unset(
                    self.audit_log
                        .as_ref()
                        .map(|l| quoted(&l.display().to_string())),
                    "(default)",
                ),
            ),
            (
                "audit.arguments",
                quoted(match self.audit_arguments {
                    ArgsMode::Hash => "hash",
                    ArgsMode::Redacted => "redacted",
                    ArgsMode::Full => "full",
                }),
            ),
            ("tools", self.tool_tables()),
            (
                "tools.pin",
                quoted(match self.tool_pin {
                    PinMode::Warn => "warn",
                    PinMode::Refuse => "refuse",
                }),
            ),
            ("mcp.max_line", self.mcp_max_line.to_string()),
            ("mcp.redact", self.mcp_redact.to_string()),
            ("sandbox.mode", quoted(self.sandbox.mode.as_str())),
            ("sandbox.profile", quoted(self.sandbox.profile.as_str())),
            ("sandbox.net", quoted(self.sandbox.net.as_str())),
            (
                "sandbox.allow_net",
                unset(self.sandbox.allow_net.as_deref().map(list), "(unset)"),
            ),
            ("sandbox.read", list(&self.sandbox.read)),
            ("sandbox.write", list(&self.sandbox.write)),
            (
                "sandbox.cwd",
                quoted(match self.sandbox.cwd {
                    crate::sandbox::CwdMode::Read => "read",
                    crate::sandbox::CwdMode::None => "none",
                }),
            ),
            ("servers", self.server_tables()),
        ]
    }
}

impl Policy {
    /// `[servers."<pattern>"]` grants, as patterns.
    fn server_tables(&self) -> String {
        if self.sandbox.servers.is_empty() {
            return "(unset: no per-server grants)".into();
        }
        let p: Vec<String> = self
            .sandbox
            .servers
            .iter()
            .map(|g| quoted(&g.pattern.raw))
            .collect();
        format!("(grants for {})", p.join(", "))
    }

    /// The tables with tool lists, layer by layer.
    fn tool_tables(&self) -> String {
        if self.tool_layers.is_empty() {
            return "(unset: every tool, resource and prompt)".into();
        }
        let layers: Vec<String> = self
            .tool_layers
            .iter()
            .map(|l| {
                let t: Vec<&str> = l.sets.iter().map(|s| s.table.as_str()).collect();
                format!("{}: {}", l.name, t.join(" "))
            })
            .collect();
        format!("(lists in {})", layers.join("; "))
    }
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// `["a", "b"]`.
fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| quoted(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Patterns as written.
fn patterns(v: &[Pattern]) -> String {
    list(&v.iter().map(|x| x.raw.clone()).collect::<Vec<_>>())
}
