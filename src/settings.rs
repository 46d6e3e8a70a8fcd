//! Settings, resolved once: command-line flag > environment variable > user
//! config file > the user's npm configuration > built-in default.
//!
//! No registry host is compiled in. When nothing names a registry the error
//! says how to configure one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::redact::SafeUrl;

use crate::env_vars as ev;
use crate::error::{Error, Result};
use crate::http::{Credential, Deadlines};
use crate::policy::{LockMode, Policy};
use std::sync::{Arc, OnceLock};

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

#[derive(Debug, Clone)]
pub struct Settings {
    pub cache_dir: PathBuf,
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
            Some(p) => read_config(p)?,
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
            npm.discovery = Some(Arc::new(Discovery {
                quiet: over.quiet,
                allowed_hosts: policy.allowed_hosts.clone(),
                found: OnceLock::new(),
            }));
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

fn read_config(path: &Path) -> Result<ConfigFile> {
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

/// safex's own config file: `SAFEX_CONFIG`, else `config.toml` in the
/// platform's config directory (`$XDG_CONFIG_HOME/safex` or
/// `~/.config/safex` on Linux, `~/Library/Application Support/safex` on
/// macOS, `%APPDATA%\safex\config` on Windows).
pub fn config_path() -> Option<PathBuf> {
    ev::get(ev::SAFEX_CONFIG).map(PathBuf::from).or_else(|| {
        directories::ProjectDirs::from("", "", "safex").map(|d| d.config_dir().join("config.toml"))
    })
}

/// Asking the `npm` on `PATH` which registry it uses, when nothing names
/// one (and `registries.require_configured` is not set): done at most once,
/// only when a cold path needs the registry, and said on stderr.
#[derive(Debug)]
pub struct Discovery {
    quiet: bool,
    allowed_hosts: Option<Vec<String>>,
    /// The answer, or why there is none (for the error).
    found: OnceLock<std::result::Result<(SafeUrl, String), String>>,
}

/// Where the answer of `npm config get registry` is said to come from.
pub const NPM_ASKED: &str = "`npm config get registry`";

impl Discovery {
    fn get(&self) -> &std::result::Result<(SafeUrl, String), String> {
        self.found.get_or_init(|| {
            let found = ask_npm_registry().and_then(|raw| {
                parse_registry_url(&raw, NPM_ASKED, self.allowed_hosts.as_deref())
                    .map_err(|e| e.message)
            });
            if let Ok(url) = &found
                && !self.quiet
            {
                eprintln!(
                    "note: no npm registry is configured for safex; using the one npm uses, `{}` ({NPM_ASKED})",
                    url
                );
            }
            found.map(|u| (u, NPM_ASKED.to_owned()))
        })
    }
}

/// `npm config get registry`, as the user's own `npx` would resolve it
/// (their `.npmrc` files, the project's, npm's built-in default), bounded
/// in time: a hung npm must not hold the launch.
fn ask_npm_registry() -> std::result::Result<String, String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let mut child = std::process::Command::new(npm)
        .args(["config", "get", "registry"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("`npm` could not be started ({e})"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("`npm config get registry` did not answer within 20 s".into());
            }
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`npm config get registry` failed: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || text.is_empty() || text == "undefined" {
        return Err("`npm config get registry` gave no registry".into());
    }
    Ok(text)
}

/// Registry settings in npm's terms.
#[derive(Debug, Default, Clone)]
pub struct NpmConfig {
    /// Default registry and where that setting came from. When none is
    /// configured, [`NpmConfig::default_registry`] may find npm's own.
    pub registry: Option<(SafeUrl, String)>,
    /// How to learn the default registry when `registry` is unset.
    pub discovery: Option<Arc<Discovery>>,
    /// `@scope:registry=` entries.
    pub scoped: BTreeMap<String, SafeUrl>,
    /// `//host[:port]/path/:_authToken=` entries, keyed by "nerf dart"
    /// (`//host:port/path/`): a credential applies only to URLs below it.
    pub auth: Vec<(String, Credential)>,
    /// `.npmrc`'s `cafile` (moved into [`Settings::ca_files`]).
    pub cafile: Option<PathBuf>,
    /// Environment variables that `.npmrc` credential lines reference
    /// (`${NPM_TOKEN}`): safex's credentials, never passed to the program.
    pub secret_vars: Vec<String>,
}

impl NpmConfig {
    fn load(
        explicit: Option<(String, String)>,
        allowed_hosts: Option<&[String]>,
    ) -> Result<NpmConfig> {
        let mut cfg = NpmConfig::default();
        let npmrc_path = ev::get_any(&ev::NPM_CONFIG_USERCONFIG)
            .map(PathBuf::from)
            .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().join(".npmrc")));
        let mut npmrc_registry = None;
        if let Some(path) = &npmrc_path
            && let Ok(text) = std::fs::read_to_string(path)
        {
            cfg.secret_vars = referenced_vars(&text);
            let rc = parse_npmrc(&text);
            for (key, value) in rc {
                let source = format!("{key} in {}", path.display());
                if key == "registry" {
                    npmrc_registry = Some((value, source));
                } else if let Some(scope) = key.strip_suffix(":registry") {
                    if scope.starts_with('@') {
                        cfg.scoped.insert(
                            scope.to_owned(),
                            parse_registry_url(&value, &source, allowed_hosts)?,
                        );
                    }
                } else if key == "cafile" {
                    cfg.cafile = Some(PathBuf::from(value));
                } else if let Some(nerf) = key.strip_prefix("//")
                    && let Some((prefix, field)) = nerf.rsplit_once(':')
                {
                    let prefix = format!(
                        "//{}",
                        if prefix.ends_with('/') {
                            prefix.to_owned()
                        } else {
                            format!("{prefix}/")
                        }
                    );
                    match field {
                        "_authToken" => cfg.auth.push((prefix, Credential::Bearer(value))),
                        "_auth" => cfg.auth.push((prefix, Credential::Basic(value))),
                        _ => {}
                    }
                }
            }
        }
        let chosen = explicit
            .or_else(|| {
                ev::get_any(&ev::NPM_CONFIG_REGISTRY).map(|r| (r, "npm_config_registry".to_owned()))
            })
            .or(npmrc_registry);
        if let Some((raw, source)) = chosen {
            cfg.registry = Some((parse_registry_url(&raw, &source, allowed_hosts)?, source));
        }
        Ok(cfg)
    }

    /// The registry for a package: its scope's, else the default.
    pub fn registry_for(&self, name: &str) -> Result<&SafeUrl> {
        if let Some((scope, _)) = name.split_once('/')
            && let Some(url) = self.scoped.get(scope)
        {
            return Ok(url);
        }
        match self.default_registry() {
            Ok((u, _)) => Ok(u),
            Err(why) => Err(no_registry_error(why)),
        }
    }

    /// The default registry: configured, else the one npm uses (asked once,
    /// on the path that needs it); `Err` says what was tried.
    pub fn default_registry(&self) -> std::result::Result<&(SafeUrl, String), Option<&str>> {
        if let Some(r) = &self.registry {
            return Ok(r);
        }
        match self.discovery.as_deref().map(Discovery::get) {
            Some(Ok(r)) => Ok(r),
            Some(Err(why)) => Err(Some(why.as_str())),
            None => Err(None),
        }
    }

    /// The credential for a URL: the longest configured prefix it lies under.
    /// Matching is on host, port and path, so a token never leaves its origin.
    pub fn credential_for(&self, url: &Url) -> Option<&Credential> {
        let host = url.host_str()?;
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let target = format!("//{host}{port}{}", url.path());
        self.auth
            .iter()
            .filter(|(prefix, _)| target.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, c)| c)
    }
}

/// `asked`: what asking npm gave, when it was asked (`None`: the policy's
/// `registries.require_configured` forbids asking).
pub fn no_registry_error(asked: Option<&str>) -> Error {
    let what = match asked {
        Some(why) => {
            format!("no npm registry is configured, and npm could not say which it uses: {why}")
        }
        None => {
            "no npm registry is configured (the policy's `registries.require_configured` is set)"
                .to_owned()
        }
    };
    Error::usage(what).with_hint(format!(
        "pass `--registry URL`, set `{}`, set `npm_registry` in safex's config file (`{}`), or set `registry=` in your `.npmrc`",
        ev::SAFEX_NPM_REGISTRY,
        config_path().map(|p| p.display().to_string()).unwrap_or_else(|| "config.toml".into())
    ))
}

/// Variables an `.npmrc` line interpolates into a credential: every
/// `${VAR}` on a credential line (`_authToken`, `_auth`, `_password`,
/// `username`, `otp`, `key`), and those in the `user:password@` part of a URL
/// value (`registry=https://${NPM_USER}:${NPM_PASS}@npm.corp/`). A `${VAR}`
/// elsewhere in a URL (its host or path) is not a secret and stays.
fn referenced_vars(npmrc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let vars_in = |mut rest: &str, out: &mut Vec<String>| {
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end + 1..];
        }
    };
    for line in npmrc.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let field = k.trim().rsplit(':').next().unwrap_or_default();
        if k.contains("_auth")
            || k.contains("_password")
            || k.contains("username")
            || matches!(field, "otp" | "key")
        {
            vars_in(v, &mut out);
            continue;
        }
        let mut rest = v;
        while let Some(i) = rest.find("://") {
            let authority = authority_of(&rest[i + 3..]);
            if let Some(at) = authority.rfind('@') {
                vars_in(&authority[..at], &mut out);
            }
            rest = &rest[i + 3 + authority.len()..];
        }
    }
    out
}

/// The authority of `tail` (what follows `scheme://`): up to the first `/`,
/// `?`, `#` or space that is not inside a `${...}`.
fn authority_of(tail: &str) -> &str {
    let mut inside = false;
    for (i, c) in tail.char_indices() {
        if tail[i..].starts_with("${") {
            inside = true;
        } else if inside && c == '}' {
            inside = false;
        } else if !inside && (matches!(c, '/' | '?' | '#') || c.is_whitespace()) {
            return &tail[..i];
        }
    }
    tail
}

fn parse_registry_url(
    raw: &str,
    source: &str,
    allowed_hosts: Option<&[String]>,
) -> Result<SafeUrl> {
    parse_base_url(raw, "registry", source, allowed_hosts)
}

/// The base URL of an npm registry (`what` = "registry") or a PyPI index
/// ("index"), checked by one rule for both: `https`; plain `http` only on
/// loopback or on a host the policy lists in `registries.allowed_hosts`; a
/// trailing `/` so that joins stay below it. Userinfo is kept: it is the
/// credential for that origin, sent to it only.
pub fn parse_base_url(
    raw: &str,
    what: &str,
    source: &str,
    allowed_hosts: Option<&[String]>,
) -> Result<SafeUrl> {
    let mut s = raw.trim().to_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    let example = if what == "index" {
        "https://index.example.com/simple/"
    } else {
        "https://registry.example.com/"
    };
    let url = Url::parse(&s).map_err(|e| {
        Error::usage(format!("{what} URL from {source} is invalid: {e}"))
            .with_hint(format!("a {what} URL looks like `{example}`"))
    })?;
    let allowed = |url: &Url| {
        url.host_str().is_some_and(|h| {
            allowed_hosts.is_some_and(|a| a.iter().any(|x| x.eq_ignore_ascii_case(h)))
        })
    };
    match url.scheme() {
        "https" => Ok(SafeUrl::new(url)),
        "http" if is_loopback(&url) || allowed(&url) => Ok(SafeUrl::new(url)),
        "http" => Err(Error::policy(format!(
            "{what} `{}` from {source} is plain http on a non-loopback host",
            crate::redact::url(&url)
        ))
        .with_hint("use https; plain http is allowed only on 127.0.0.1, ::1 and localhost, or on a host the policy lists in `registries.allowed_hosts`")),
        other => Err(
            Error::usage(format!("{what} URL from {source} has scheme `{other}`"))
                .with_hint("use an `https://` URL"),
        ),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parse `.npmrc` (ini): `key=value` lines, `;`/`#` comments, `${VAR}`
/// expanded from the environment as npm does, quotes stripped.
pub fn parse_npmrc(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with(';')
            || line.starts_with('#')
            || line.starts_with('[')
        {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
            .unwrap_or(v);
        out.push((k.trim().to_owned(), expand_env(v)));
    }
    out
}

fn expand_env(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&std::env::var(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npmrc_lines() {
        let rc = parse_npmrc(
            "; c\n# c\nregistry = http://127.0.0.1:4873/\n@a:registry=\"http://127.0.0.1:1/\"\n//127.0.0.1:4873/:_authToken=${SAFEX_TEST_NO_SUCH_VAR}x\n",
        );
        assert_eq!(rc[0], ("registry".into(), "http://127.0.0.1:4873/".into()));
        assert_eq!(rc[1], ("@a:registry".into(), "http://127.0.0.1:1/".into()));
        assert_eq!(rc[2], ("//127.0.0.1:4873/:_authToken".into(), "x".into()));
    }

    #[test]
    fn credentials_stay_on_their_origin() {
        let cfg = NpmConfig {
            auth: vec![
                ("//127.0.0.1:4873/".into(), Credential::Bearer("t1".into())),
                (
                    "//127.0.0.1:4873/private/".into(),
                    Credential::Bearer("t2".into()),
                ),
            ],
            ..Default::default()
        };
        let get = |u: &str| match cfg.credential_for(&Url::parse(u).unwrap()) {
            Some(Credential::Bearer(t)) => Some(t.clone()),
            _ => None,
        };
        assert_eq!(get("http://127.0.0.1:4873/a"), Some("t1".into()));
        assert_eq!(get("http://127.0.0.1:4873/private/a"), Some("t2".into()));
        assert_eq!(get("http://127.0.0.1:4874/a"), None);
        assert_eq!(get("http://localhost:4873/a"), None);
        assert_eq!(get("http://127.0.0.2:4873/a"), None);
    }

    /// One rule for npm registries and PyPI indexes: `registries.
    /// allowed_hosts` admits plain http on a listed host for both
    /// (`docs/policy.md`), and nowhere else but loopback.
    #[test]
    fn registry_and_index_urls_follow_one_rule() {
        let allowed = ["pkgs.corp.example".to_owned()];
        for (url, hosts, ok) in [
            ("https://r.example/x", None, true),
            ("http://127.0.0.1:4873", None, true),
            ("http://pkgs.corp.example/simple", None, false),
            ("http://pkgs.corp.example/simple", Some(&allowed[..]), true),
            ("http://PKGS.corp.example/simple", Some(&allowed[..]), true),
            ("http://other.corp.example/", Some(&allowed[..]), false),
            ("ftp://pkgs.corp.example/", Some(&allowed[..]), false),
        ] {
            for what in ["registry", "index"] {
                let got = parse_base_url(url, what, "t", hosts);
                assert_eq!(got.is_ok(), ok, "{what} {url} {hosts:?}: {got:?}");
                if let Ok(u) = got {
                    assert!(u.url().as_str().ends_with('/'), "{u}");
                }
            }
        }
    }

    #[test]
    fn registry_urls() {
        assert!(parse_registry_url("http://127.0.0.1:4873", "t", None).is_ok());
        assert!(parse_registry_url("http://localhost:4873/", "t", None).is_ok());
        assert_eq!(
            parse_registry_url("http://10.0.0.1/", "t", None)
                .unwrap_err()
                .kind,
            crate::error::Kind::Policy
        );
        assert!(parse_registry_url("ftp://x/", "t", None).is_err());
        assert_eq!(
            parse_registry_url("https://r.example/npm", "t", None)
                .unwrap()
                .url()
                .as_str(),
            "https://r.example/npm/"
        );
    }

    #[test]
    fn npmrc_secret_vars_are_credential_lines_and_url_userinfo() {
        let rc = "//h.example/:_authToken=${TOK}\n\
                  //h.example/:_password = \"${PW}\"\n\
                  registry=https://${REG_USER}:${REG_PASS}@${REG_HOST}/npm/${REG_PATH}/\n\
                  @acme:registry=https://${SCOPE_TOKEN}@h.example/\n\
                  cafile=${HOME}/ca.pem\n\
                  proxy=http://${HOST_ONLY}:8080/\n";
        assert_eq!(
            referenced_vars(rc),
            ["TOK", "PW", "REG_USER", "REG_PASS", "SCOPE_TOKEN"]
        );
    }
}
