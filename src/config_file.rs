//! safex's own config file (TOML): where it is, and what it may hold.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env_vars as ev;
use crate::error::{Error, Result};

/// The user config file (`SAFEX_CONFIG`, default `<config dir>/safex/config.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub npm_registry: Option<String>,
    pub pypi_index: Option<String>,
    pub python: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub lockfile: Option<PathBuf>,
    pub lock_mode: Option<String>,
    pub node: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub offline: Option<bool>,
    /// Network deadlines, as the `SAFEX_*` variables of the same names.
    pub stall_timeout: Option<String>,
    pub min_rate: Option<u64>,
    pub launch_timeout: Option<String>,
    pub retry_after_max: Option<String>,
}

/// safex's own config file: `SAFEX_CONFIG`, else `config.toml` in the
/// platform's config directory (`$XDG_CONFIG_HOME/safex` or
/// `~/.config/safex` on Linux, `~/Library/Application Support/safex` on
/// macOS, `%APPDATA%\safex\config` on Windows).
pub fn config_path() -> Option<PathBuf> {
    ev::get(ev::SAFEX_CONFIG).map(PathBuf::from).or_else(|| {
        directories::ProjectDirs::from("", "", "safex").map(|d| d.config_dir().join("config.toml"))
    })
}

/// The config file's settings; a missing file is an empty one.
pub fn read(path: &Path) -> Result<ConfigFile> {
    let text = match fs_err::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(e.into()),
    };
    toml::from_str(&text).map_err(|e| {
        Error::usage(format!(
            "config file `{}` is invalid: {}",
            path.display(),
            e.message()
        ))
        .with_hint(
            "known keys: npm_registry, pypi_index, python, node, cache_dir, lockfile, lock_mode, ca_file, offline, stall_timeout, min_rate, launch_timeout, retry_after_max",
        )
    })
}
