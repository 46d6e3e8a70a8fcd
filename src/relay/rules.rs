//! What the relay asks of the policy and of the tool pins, in one place.
//! STUB: filled in when the policy keys and the pin store land.

use std::path::PathBuf;

use super::Mediation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Resource,
    Prompt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMode {
    Warn,
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgsMode {
    Hash,
    Redacted,
    Full,
}

pub type Digests = std::collections::BTreeMap<String, String>;

/// The policy's decisions for one server and one OS user.
pub struct Rules {
    pub user: String,
    pub max_line: u64,
    pub redact: bool,
    pub args: ArgsMode,
    pub pin: PinMode,
}

impl Rules {
    pub fn new(_m: &Mediation) -> Rules {
        Rules {
            user: String::new(),
            max_line: 64 << 20,
            redact: true,
            args: ArgsMode::Hash,
            pin: PinMode::Warn,
        }
    }

    /// `Some(why)` when the policy withholds this tool, resource or prompt.
    pub fn denied(&self, _kind: Kind, _name: &str) -> Option<String> {
        None
    }
}

/// The pins of this server's tools.
pub struct PinBook {
    pub pinned: Option<Digests>,
    pub system: bool,
    pub review: Option<PathBuf>,
}

impl PinBook {
    pub fn load(_m: &Mediation) -> PinBook {
        PinBook {
            pinned: None,
            system: false,
            review: None,
        }
    }
    pub fn digest(tool: &serde_json::Value) -> String {
        {
            use sha2::Digest;
            format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(tool.to_string().as_bytes()))
            )
        }
    }
    pub fn flags(_tool: &serde_json::Value) -> Vec<String> {
        Vec::new()
    }
    pub fn record(&self, _m: &Mediation, _d: &Digests) -> crate::error::Result<()> {
        Ok(())
    }
    /// Review mode (`safex mcp tools`): say which lock entry this is.
    pub fn write_review(&self, _m: &Mediation) {}
}
