//! What the relay asks of the policy and of the tool pins, in one place.
//! STUB: filled in when the policy keys and the pin store land.

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
