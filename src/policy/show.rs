//! `safex policy show`: every key, its value and the layer it came from.

use super::{EnvMode, Policy, PthPolicy, ScriptsMode, UnknownAge};

impl Policy {
    /// Every key, its value and the layer it came from.
    pub fn show(&self) -> String {
        let p = self;
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
}
