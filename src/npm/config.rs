//! npm's configuration as npm reads it: the default and scoped registries
//! (flag, policy, environment, safex's config, `.npmrc`, else asking the
//! `npm` on `PATH` once), credentials by origin and path prefix, the
//! `cafile`, and the variables `.npmrc` takes credentials from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use url::Url;

use crate::config_file::config_path;
use crate::env_vars as ev;
use crate::error::{Error, Result};
use crate::http::Credential;
use crate::redact::SafeUrl;

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
    pub(crate) fn new(quiet: bool, allowed_hosts: Option<Vec<String>>) -> Discovery {
        Discovery {
            quiet,
            allowed_hosts,
            found: OnceLock::new(),
        }
    }

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
    pub(crate) fn load(
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
    crate::http::parse_base_url(raw, "registry", source, allowed_hosts)
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
