//! The policy's layers and where their files live: built-in, system (a
//! fixed admin-owned path per OS), user, command line.

use std::path::{Path, PathBuf};

use super::BUILTIN;
use super::file::Parsed;
use crate::env_vars as ev;
use crate::error::{Error, Result};

/// One policy file in the stack.
pub struct Layer {
    pub name: String,
    pub system: bool,
    pub(super) parsed: Parsed,
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

/// Every layer in force, lowest first: built-in, system, user, command line.
pub fn gather(cli_policy: Option<PathBuf>) -> Result<Vec<Layer>> {
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
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

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
