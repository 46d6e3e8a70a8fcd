//! Settings, resolved once: command-line flag > environment variable > user
//! config file > the user's npm configuration > built-in default.
//!
//! No registry host is compiled in. When nothing names a registry the error
//! says how to configure one.

use std::path::{Path, PathBuf};

use crate::config_file::{self, ConfigFile, config_path};
use crate::env_vars as ev;
use crate::error::{Error, Result};
use crate::http::Deadlines;
use crate::npm::config::{Discovery, NpmConfig};
use crate::policy::{LockMode, Policy};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Settings {
    pub cache_dir: PathBuf,
    /// Per-server state directories and private `TMPDIR`s (the sandbox's
    /// writable places): `SAFEX_STATE_DIR`, else the OS's state directory.
    pub state_dir: PathBuf,
    pub lockfile: PathBuf,
    /// Admin-provided, read-only, consulted before the user's lockfile.
    pub system_lockfile: Option<PathBuf>,
    pub offline: bool,
    pub lock_mode: LockMode,
    pub node: Option<PathBuf>,
    pub quiet: bool,
    pub policy: Policy,
    /// Where the registry came from, for messages.
    pub npm: NpmConfig,
    /// The PyPI index named by safex's own settings (flag, env, config) and
    /// where that came from; pip's and uv's settings are read only when needed.
    pub pypi_index: Option<(String, String)>,
    /// `SAFEX_PYTHON` or the `python` setting (`--python` wins over both).
    pub python: Option<String>,
    /// How long network waits may last.
    pub deadlines: Deadlines,
    /// CA certificates (PEM) trusted besides the system store, for every
    /// request of either ecosystem: `SAFEX_CA_FILE` or `ca_file`, the
    /// bundles npm and OpenSSL tools honour, and `.npmrc`'s `cafile`.
    pub ca_files: Vec<PathBuf>,
}

/// Command-line overrides.
#[derive(Debug, Default)]
pub struct Overrides {
    pub registry: Option<String>,
    pub index_url: Option<String>,
    pub offline: bool,
    pub quiet: bool,
    /// `--policy FILE`: the command-line policy layer.
    pub policy: Option<PathBuf>,
}

impl Settings {
    pub fn load(over: &Overrides) -> Result<Settings> {
        let dirs = directories::ProjectDirs::from("", "", "safex");
        let config_path = config_path();
        let config = match &config_path {
            Some(p) => config_file::read(p)?,
            None => ConfigFile::default(),
        };
        let policy = Policy::load(over.policy.clone())?;
        if !over.quiet {
            policy.print_warnings();
        }
        let from = Sources {
            over,
            config: &config,
            config_path: config_path.as_deref(),
            policy: &policy,
        };
        let cache_dir = ev::get(ev::SAFEX_CACHE_DIR)
            .map(PathBuf::from)
            .or(config.cache_dir.clone())
            .or_else(|| dirs.as_ref().map(|d| d.cache_dir().to_path_buf()))
            .ok_or_else(|| {
                Error::io("cannot tell where the cache goes: no home directory")
                    .with_hint(format!("set `{}` to a directory", ev::SAFEX_CACHE_DIR))
            })?;
        let lockfile = ev::get(ev::SAFEX_LOCKFILE)
            .map(PathBuf::from)
            .or(config.lockfile.clone())
            .or_else(|| dirs.as_ref().map(|d| d.data_dir().join("safex.lock")))
            .ok_or_else(|| {
                Error::io("cannot tell where the lockfile goes: no home directory")
                    .with_hint(format!("set `{}` to a file path", ev::SAFEX_LOCKFILE))
            })?;
        let state_dir = ev::get(ev::SAFEX_STATE_DIR)
            .map(PathBuf::from)
            .or_else(|| {
                dirs.as_ref()
                    .map(|d| d.state_dir().unwrap_or(d.data_local_dir()).to_path_buf())
            })
            .unwrap_or_else(|| cache_dir.join("state"));
        let lock_mode = from.lock_mode()?;
        let offline =
            over.offline || ev::flag(ev::SAFEX_OFFLINE) || config.offline.unwrap_or(false);
        let node = ev::get(ev::SAFEX_NODE)
            .map(PathBuf::from)
            .or(config.node.clone());
        let mut npm = from.npm()?;
        let mut ca_files = from.ca_files();
        ca_files.extend(npm.cafile.take());
        let pypi_index = from.pypi_index();
        let python = ev::get(ev::SAFEX_PYTHON).or(config.python.clone());
        let deadlines = deadlines(&config)?;

        Ok(Settings {
            cache_dir,
            state_dir,
            lockfile,
            system_lockfile: system_lockfile(),
            offline,
            lock_mode,
            node,
            quiet: over.quiet,
            policy,
            npm,
            pypi_index,
            python,
            deadlines,
            ca_files,
        })
    }
}

/// What a setting can come from: the command line, the config file, the
/// policy (and, read where needed, the environment).
struct Sources<'a> {
    over: &'a Overrides,
    config: &'a ConfigFile,
    config_path: Option<&'a Path>,
    policy: &'a Policy,
}

impl Sources<'_> {
    /// `SAFEX_LOCK_MODE` / `lock_mode` act like a user-level policy key: they
    /// may tighten a mandatory (system) lock mode, never loosen it.
    fn lock_mode(&self) -> Result<LockMode> {
        let policy = self.policy;
        let Some(m) = ev::get(ev::SAFEX_LOCK_MODE).or(self.config.lock_mode.clone()) else {
            return Ok(policy.lock_mode);
        };
        let wanted = LockMode::parse(&m).ok_or_else(|| {
            Error::usage(format!(
                "lock mode `{}` is not `tofu` or `frozen`",
                crate::redact::shown(&m)
            ))
            .with_hint(format!(
                "set `{}` or `lock_mode` to `tofu` or `frozen`",
                ev::SAFEX_LOCK_MODE
            ))
        })?;
        if wanted < policy.lock_mode && policy.mandatory.contains("lock.mode") {
            if !self.over.quiet {
                eprintln!(
                    "warning: `{}` tries to loosen `lock.mode` set by the system policy; it stays `{}`",
                    ev::SAFEX_LOCK_MODE,
                    policy.lock_mode.as_str()
                );
            }
            return Ok(policy.lock_mode);
        }
        Ok(wanted)
    }

    /// The extra CA files: `SAFEX_CA_FILE` or `ca_file`, then the foreign
    /// variables that name one ([`ev::EXTRA_CA_VARS`]); `.npmrc`'s `cafile`
    /// joins them once npm's config is read.
    fn ca_files(&self) -> Vec<PathBuf> {
        let mut ca_files: Vec<PathBuf> = Vec::new();
        if let Some(p) = ev::get(ev::SAFEX_CA_FILE)
            .map(PathBuf::from)
            .or(self.config.ca_file.clone())
        {
            ca_files.push(p);
        }
        for var in ev::EXTRA_CA_VARS {
            if let Some(p) = ev::get(var) {
                ca_files.push(PathBuf::from(p));
            }
        }
        ca_files
    }

    /// The config file's path, for messages.
    fn config_file(&self) -> String {
        self.config_path
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// A policy key's value, with the layer it came from.
    fn policy_key(&self, key: &str, v: &Option<String>) -> Option<(String, String)> {
        v.clone().map(|u| {
            (
                u,
                format!(
                    "`{key}` of the policy ({})",
                    self.policy.sources.get(key).cloned().unwrap_or_default()
                ),
            )
        })
    }

    /// npm's registries. A registry the system policy sets is mandatory and
    /// covers every scope. Otherwise: the command line, then any policy
    /// layer, then the environment, then the config file, then npm's own
    /// settings.
    fn npm(&self) -> Result<NpmConfig> {
        let (over, policy) = (self.over, self.policy);
        let explicit_registry = if policy.mandatory.contains("registries.npm") {
            if let Some(r) = &over.registry
                && Some(r) != policy.npm_registry.as_ref()
                && !over.quiet
            {
                eprintln!(
                    "warning: `--registry` is ignored: the system policy sets `registries.npm`"
                );
            }
            self.policy_key("registries.npm", &policy.npm_registry)
        } else {
            over.registry
                .clone()
                .map(|r| (r, "--registry".to_owned()))
                .or_else(|| self.policy_key("registries.npm", &policy.npm_registry))
                .or_else(|| {
                    ev::get(ev::SAFEX_NPM_REGISTRY).map(|r| (r, ev::SAFEX_NPM_REGISTRY.to_owned()))
                })
                .or(self
                    .config
                    .npm_registry
                    .clone()
                    .map(|r| (r, format!("npm_registry in {}", self.config_file()))))
        };
        let mut npm = NpmConfig::load(explicit_registry, policy.allowed_hosts.as_deref())?;
        if !policy.require_configured {
            npm.discovery = Some(Arc::new(Discovery::new(
                over.quiet,
                policy.allowed_hosts.clone(),
            )));
        }
        // A mandatory registry covers every scope: a user's
        // `@scope:registry=` must not route packages around it.
        if policy.mandatory.contains("registries.npm") && !npm.scoped.is_empty() {
            if !over.quiet {
                let scopes: Vec<&str> = npm.scoped.keys().map(String::as_str).collect();
                eprintln!(
                    "warning: scoped registries in `.npmrc` ({}) are ignored: the system policy sets `registries.npm`",
                    scopes.join(", ")
                );
            }
            npm.scoped.clear();
        }
        Ok(npm)
    }

    /// The PyPI index safex's own settings name, in the order of `npm`.
    fn pypi_index(&self) -> Option<(String, String)> {
        let (over, policy) = (self.over, self.policy);
        if policy.mandatory.contains("registries.pypi") {
            return self.policy_key("registries.pypi", &policy.pypi_index);
        }
        over.index_url
            .clone()
            .map(|u| (u, "--index-url".to_owned()))
            .or_else(|| self.policy_key("registries.pypi", &policy.pypi_index))
            .or_else(|| ev::get(ev::SAFEX_PYPI_INDEX).map(|u| (u, ev::SAFEX_PYPI_INDEX.to_owned())))
            .or(self
                .config
                .pypi_index
                .clone()
                .map(|u| (u, format!("pypi_index in {}", self.config_file()))))
    }
}

/// The network deadlines: each from its variable, else the config file,
/// else the default ([`Deadlines::default`]). The launch is counted from
/// here, the start of the process for every purpose a user can see.
fn deadlines(config: &ConfigFile) -> Result<Deadlines> {
    let mut d = Deadlines::default();
    let duration = |var: &str,
                    key: &str,
                    from_config: &Option<String>|
     -> Result<Option<std::time::Duration>> {
        let Some(raw) = ev::get(var).or(from_config.clone()) else {
            return Ok(None);
        };
        let parsed = raw
            .trim()
            .parse::<u64>()
            .ok()
            .map(std::time::Duration::from_secs)
            .or_else(|| crate::time::parse_duration(raw.trim()));
        match parsed {
            Some(v) if !v.is_zero() => Ok(Some(v)),
            _ => Err(Error::usage(format!(
                "`{var}` (or `{key}` in the config file) is `{}`, not a duration",
                crate::redact::shown(&raw)
            ))
            .with_hint("give seconds (`30`) or a duration (`30s`, `2m`), more than zero")),
        }
    };
    if let Some(v) = duration(
        ev::SAFEX_STALL_TIMEOUT,
        "stall_timeout",
        &config.stall_timeout,
    )? {
        d.stall = v;
    }
    if let Some(v) = duration(
        ev::SAFEX_LAUNCH_TIMEOUT,
        "launch_timeout",
        &config.launch_timeout,
    )? {
        d.launch = v;
    }
    if let Some(v) = duration(
        ev::SAFEX_RETRY_AFTER_MAX,
        "retry_after_max",
        &config.retry_after_max,
    )? {
        d.retry_after_max = v;
    }
    match ev::get(ev::SAFEX_MIN_RATE) {
        Some(raw) => {
            d.min_rate = raw.trim().parse().map_err(|_| {
                Error::usage(format!(
                    "`{}` is `{}`, not a number of bytes per second",
                    ev::SAFEX_MIN_RATE,
                    crate::redact::shown(&raw)
                ))
                .with_hint("give a whole number of bytes per second (`1024`), or `0` for no floor")
            })?;
        }
        None => {
            if let Some(v) = config.min_rate {
                d.min_rate = v;
            }
        }
    }
    Ok(d)
}

impl Settings {
    /// The lockfiles consulted, the admin's first.
    pub fn lockfiles(&self) -> Vec<&Path> {
        self.system_lockfile
            .iter()
            .map(PathBuf::as_path)
            .chain([self.lockfile.as_path()])
            .collect()
    }
}

/// The admin's lockfile at a fixed path per OS, if present.
fn system_lockfile() -> Option<PathBuf> {
    let p = if cfg!(windows) {
        PathBuf::from(std::env::var_os(ev::PROGRAM_DATA)?)
            .join("safex")
            .join("safex.lock")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/safex/safex.lock")
    } else {
        PathBuf::from("/etc/safex/safex.lock")
    };
    p.is_file().then_some(p)
}
