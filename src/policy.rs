//! Policy: what may launch and how. This first version holds the built-in
//! layer (`policies/default.toml`, embedded); system and user layers come
//! with org policy support.

use serde::Deserialize;

use crate::error::{Error, Result};

const BUILTIN: &str = include_str!("../policies/default.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptsMode {
    Strip,
    Refuse,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub scripts: ScriptsMode,
    pub lock_mode: LockMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    scripts: Option<Scripts>,
    lock: Option<Lock>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scripts {
    mode: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lock {
    mode: String,
}

impl Policy {
    pub fn builtin() -> Result<Policy> {
        Self::parse(BUILTIN, "built-in policy")
    }

    fn parse(text: &str, source: &str) -> Result<Policy> {
        let f: File = toml::from_str(text)
            .map_err(|e| Error::usage(format!("{source} is invalid: {}", e.message())))?;
        let scripts = match f.scripts.as_ref().map(|s| s.mode.as_str()) {
            None | Some("strip") => ScriptsMode::Strip,
            Some("refuse") => ScriptsMode::Refuse,
            Some(other) => {
                return Err(Error::usage(format!(
                    "{source}: `scripts.mode` is `{other}`, expected `strip` or `refuse`"
                )));
            }
        };
        let lock_mode = match f.lock.as_ref().map(|l| l.mode.as_str()) {
            None => LockMode::Tofu,
            Some(m) => LockMode::parse(m).ok_or_else(|| {
                Error::usage(format!(
                    "{source}: `lock.mode` is `{m}`, expected `tofu` or `frozen`"
                ))
            })?,
        };
        Ok(Policy { scripts, lock_mode })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_to_safe_defaults() {
        let p = Policy::builtin().unwrap();
        assert_eq!(p.scripts, ScriptsMode::Strip);
        assert_eq!(p.lock_mode, LockMode::Tofu);
        assert!(Policy::parse("[scripts]\nmode = \"run\"\n", "t").is_err());
        assert!(Policy::parse("[nope]\n", "t").is_err());
        assert_eq!(
            Policy::parse("[scripts]\nmode = \"refuse\"\n", "t")
                .unwrap()
                .scripts,
            ScriptsMode::Refuse
        );
    }
}

/// The release-age cooldown, as resolvers apply it: versions published less
/// than `min_age` before `now` are not resolved.
#[derive(Debug, Clone)]
pub struct Cooldown {
    pub min_age: std::time::Duration,
    /// What to do when the index does not say when a version was published.
    pub unknown: UnknownAge,
    pub now: std::time::SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownAge {
    Allow,
    Refuse,
}

impl Cooldown {
    pub fn off() -> Cooldown {
        Cooldown {
            min_age: std::time::Duration::ZERO,
            unknown: UnknownAge::Allow,
            now: std::time::SystemTime::now(),
        }
    }

    pub fn is_off(&self) -> bool {
        self.min_age.is_zero()
    }
}
