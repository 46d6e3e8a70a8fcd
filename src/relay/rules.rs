//! What the relay asks of the policy for one server and one OS user: the
//! `[tools]` lists, `tools.pin`, `[mcp]` and `audit.arguments`.

pub use crate::policy::{ArgsMode, PinMode, ToolKind as Kind};
use crate::policy::{Identity, Policy, Subject};

use super::Mediation;

/// The policy's decisions for one server and one OS user.
pub struct Rules {
    /// The login name of the real uid (the number when it has none).
    pub user: String,
    pub max_line: u64,
    pub redact: bool,
    pub args: ArgsMode,
    pub pin: PinMode,
    identity: Identity,
    policy: Policy,
    ecosystem: crate::ecosystem::Ecosystem,
    package: String,
    version: String,
}

impl Rules {
    pub fn new(m: &Mediation) -> Rules {
        let p = &m.policy;
        let identity = Identity::current();
        Rules {
            user: identity
                .user
                .clone()
                .unwrap_or_else(|| identity.uid.to_string()),
            max_line: p.mcp_max_line,
            redact: p.mcp_redact,
            args: p.audit_arguments,
            pin: p.tool_pin,
            identity,
            policy: p.clone(),
            ecosystem: m.ecosystem,
            package: m.package.clone(),
            version: m.version.clone(),
        }
    }

    /// `Some(why)` when the policy withholds this tool, resource or prompt.
    pub fn denied(&self, kind: Kind, name: &str) -> Option<String> {
        if self.policy.tool_layers.is_empty() {
            return None;
        }
        let s = Subject {
            ecosystem: self.ecosystem,
            package: &self.package,
            version: &self.version,
            identity: &self.identity,
        };
        self.policy.tool_denied(&s, kind, name)
    }
}
