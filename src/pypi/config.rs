//! Where the index URL and its credentials come from: pip and uv config, netrc.
//!
//! The caller's choice first, then pip's and uv's environment variables,
//! then `pip.conf`.
//!
//! Credentials come from the index URL's userinfo or `~/.netrc`, and
//! [`PypiConfig::credential_for`] gives them only to the configured index's
//! own origin (scheme, host and port).

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use url::Url;

use crate::redact::SafeUrl;

use crate::env_vars as ev;
use crate::error::{Error, Result};
use crate::http::Credential;
use crate::pypi::simple::percent_decode;

use ev::{
    APPDATA, NETRC, PIP_CONFIG_FILE, PIP_EXTRA_INDEX_URL, PIP_INDEX_URL, PROGRAM_DATA,
    UV_DEFAULT_INDEX, UV_INDEX, UV_INDEX_URL, XDG_CONFIG_DIRS, XDG_CONFIG_HOME,
};

/// Where pip's configuration and the netrc file are, in pip's order.
#[derive(Debug, Clone, Default)]
pub(super) struct ConfigSources {
    /// `pip.conf` files, lowest precedence first (a later file overrides an
    /// earlier one, as in pip): site-wide, `~/.pip/pip.conf`, the XDG user
    /// file, then `$PIP_CONFIG_FILE`. Missing files are skipped.
    pub(super) pip_conf: Vec<PathBuf>,
    pub(super) netrc: Option<PathBuf>,
}

impl ConfigSources {
    /// The files pip would read, given the environment and home directory.
    /// As in pip, an existing `$PIP_CONFIG_FILE` replaces the user files.
    pub(super) fn discover(
        var: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> ConfigSources {
        let basename = if cfg!(windows) { "pip.ini" } else { "pip.conf" };
        let mut pip_conf = Vec::new();
        if cfg!(windows) {
            if let Some(p) = var(PROGRAM_DATA) {
                pip_conf.push(Path::new(&p).join("pip").join(basename));
            }
        } else if cfg!(target_os = "macos") {
            pip_conf.push(PathBuf::from("/Library/Application Support/pip").join(basename));
        } else {
            let dirs = var(XDG_CONFIG_DIRS).unwrap_or_else(|| "/etc/xdg".into());
            for d in dirs.split(':').filter(|d| !d.is_empty()) {
                pip_conf.push(Path::new(d).join("pip").join(basename));
            }
            pip_conf.push(Path::new("/etc").join(basename));
        }
        // `PIP_CONFIG_FILE=/dev/null` is pip's way to say "no user config".
        let env_file = var(PIP_CONFIG_FILE).map(PathBuf::from);
        if !env_file.as_ref().is_some_and(|p| p.exists()) {
            if let Some(home) = home {
                let legacy = if cfg!(windows) { "pip" } else { ".pip" };
                pip_conf.push(home.join(legacy).join(basename));
            }
            let user_dir = if cfg!(windows) {
                var(APPDATA).map(|a| Path::new(&a).join("pip"))
            } else if cfg!(target_os = "macos")
                && let Some(lib) = home
                    .map(|h| h.join("Library/Application Support/pip"))
                    .filter(|d| d.is_dir())
            {
                Some(lib)
            } else {
                var(XDG_CONFIG_HOME)
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .or_else(|| home.map(|h| h.join(".config")))
                    .map(|d| d.join("pip"))
            };
            if let Some(d) = user_dir {
                pip_conf.push(d.join(basename));
            }
        }
        pip_conf.extend(env_file);
        let netrc = var(NETRC).map(PathBuf::from).or_else(|| {
            let home = home?;
            let dot = home.join(".netrc");
            if cfg!(windows) && !dot.is_file() {
                Some(home.join("_netrc"))
            } else {
                Some(dot)
            }
        });
        ConfigSources { pip_conf, netrc }
    }
}

/// The index safex reads, and what it knows of the user's pip/uv setup.
#[derive(Default)]
pub(crate) struct PypiConfig {
    /// The index and where that setting came from, for messages. May carry
    /// userinfo (the credential for its origin); never shown unredacted.
    pub(crate) index: Option<(SafeUrl, String)>,
    /// Extra indexes configured for pip or uv. safex reads only `index`
    /// (one index: no dependency confusion); these count as configured
    /// origins for `credential_for`. Entries that are not valid index URLs
    /// are left out, as they are never read.
    pub(super) extra: Vec<SafeUrl>,
    /// `(host, login, password)` from netrc; the host `""` is `default`.
    netrc: Vec<(String, String, String)>,
}

impl fmt::Debug for PypiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PypiConfig")
            .field("index", &self.index)
            .field("extra", &self.extra)
            .field(
                "netrc",
                &self.netrc.iter().map(|(h, _, _)| h).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PypiConfig {
    /// `explicit` is the index the caller chose from `--index-url`,
    /// `SAFEX_PYPI_INDEX` or safex's config, with where it came from. Else
    /// `PIP_INDEX_URL`, `UV_DEFAULT_INDEX`, `UV_INDEX_URL`, then `index-url`
    /// from `pip.conf`.
    pub(crate) fn load(
        explicit: Option<(String, String)>,
        allowed_hosts: Option<&[String]>,
    ) -> Result<PypiConfig> {
        let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
        let sources = ConfigSources::discover(&ev::get, home.as_deref());
        Self::load_with(explicit, &ev::get, &sources, allowed_hosts)
    }

    /// `load`, with the environment and files given (for tests and for
    /// callers that have resolved them already). Empty variables are unset.
    pub(super) fn load_with(
        explicit: Option<(String, String)>,
        var: &dyn Fn(&str) -> Option<String>,
        sources: &ConfigSources,
        allowed_hosts: Option<&[String]>,
    ) -> Result<PypiConfig> {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let before_conf = explicit
            .or_else(|| var(PIP_INDEX_URL).map(|u| (u, PIP_INDEX_URL.to_owned())))
            .or_else(|| var(UV_DEFAULT_INDEX).map(|u| (u, UV_DEFAULT_INDEX.to_owned())))
            .or_else(|| var(UV_INDEX_URL).map(|u| (u, UV_INDEX_URL.to_owned())));
        let mut conf_index = None;
        let mut conf_extra = None;
        for path in &sources.pip_conf {
            let text = match fs_err::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // Unreadable but not needed: the index is chosen already.
                Err(_) if before_conf.is_some() => continue,
                Err(e) => {
                    return Err(Error::from(e).with_hint(format!(
                        "make pip's config file readable, or set `{}`",
                        ev::SAFEX_PYPI_INDEX
                    )));
                }
            };
            let (index, extra) = pip_conf_values(&text);
            if let Some(i) = index {
                conf_index = Some((i, format!("index-url in {}", path.display())));
            }
            if let Some(x) = extra {
                conf_extra = Some(x);
            }
        }
        let chosen = before_conf.or(conf_index);
        let index = match chosen {
            Some((raw, source)) => Some((parse_index_url(&raw, &source, allowed_hosts)?, source)),
            None => None,
        };
        let mut extra: Vec<SafeUrl> = var(PIP_EXTRA_INDEX_URL)
            .or(conf_extra)
            .into_iter()
            .chain(var(UV_INDEX))
            .flat_map(|list| {
                list.split_whitespace()
                    .map(|e| uv_index_url(e).to_owned())
                    .collect::<Vec<_>>()
            })
            .filter_map(|raw| parse_index_url(&raw, "extra", allowed_hosts).ok())
            .collect();
        extra.dedup();
        let netrc = sources
            .netrc
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| parse_netrc(&t))
            .unwrap_or_default();
        Ok(PypiConfig {
            index,
            extra,
            netrc,
        })
    }

    /// The index to read; an error that says how to configure one if none is.
    pub(crate) fn index(&self) -> Result<&Url> {
        self.index
            .as_ref()
            .map(|(u, _)| u.url())
            .ok_or_else(no_index_error)
    }

    /// The credential for a request to `url`, only when `url` has the origin
    /// (scheme, host, port) of the index safex reads: that index URL's
    /// userinfo (else that of an extra index on the same origin), else the
    /// netrc entry for the host (or netrc's `default`). A file on another
    /// host, the same host on another port, or another configured index
    /// gets nothing: safex never reads the extra indexes, so their
    /// credentials are never sent anywhere.
    pub(crate) fn credential_for(&self, url: &Url) -> Option<Credential> {
        let origin = url.origin();
        let index = self.index.as_ref()?.0.url();
        if index.origin() != origin || !origin.is_tuple() {
            return None;
        }
        let same_origin = std::iter::once(index).chain(
            self.extra
                .iter()
                .map(SafeUrl::url)
                .filter(|u| u.origin() == origin),
        );
        if let Some(u) = same_origin.clone().find(|u| !u.username().is_empty()) {
            let user = percent_decode(u.username())?;
            let pass = percent_decode(u.password().unwrap_or_default())?;
            return Some(basic(&user, &pass));
        }
        let host = url.host_str()?;
        self.netrc
            .iter()
            .find(|(h, _, _)| h.eq_ignore_ascii_case(host))
            .or_else(|| self.netrc.iter().find(|(h, _, _)| h.is_empty()))
            .map(|(_, login, password)| basic(login, password))
    }

    /// The other configured indexes (pip's and uv's extras) on an origin
    /// that is not the index's own: safex never fetches from them.
    pub(crate) fn other_indexes(&self) -> Vec<Url> {
        let own = self.index.as_ref().map(|(u, _)| u.url().origin());
        self.extra
            .iter()
            .map(SafeUrl::url)
            .filter(|u| Some(u.origin()) != own)
            .cloned()
            .collect()
    }
}

fn basic(user: &str, pass: &str) -> Credential {
    Credential::Basic(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

fn no_index_error() -> Error {
    Error::usage("no Python package index is configured").with_hint(format!(
        "pass `--index-url URL`, set `{}`, or set `{PIP_INDEX_URL}` or `index-url` in `pip.conf`",
        ev::SAFEX_PYPI_INDEX
    ))
}

/// `UV_INDEX` entries may be named: `name=https://...`.
fn uv_index_url(entry: &str) -> &str {
    match entry.split_once('=') {
        Some((name, url)) if !name.contains(':') && !name.contains('/') => url,
        _ => entry,
    }
}

/// An index base URL: the rule npm registry URLs follow
/// ([`crate::http::parse_base_url`]).
fn parse_index_url(raw: &str, source: &str, allowed_hosts: Option<&[String]>) -> Result<SafeUrl> {
    crate::http::parse_base_url(raw, "index", source, allowed_hosts)
}

/// `index-url` and `extra-index-url` from a `pip.conf` (INI). As in pip,
/// keys are case- and `_`/`-`-insensitive, a `[install]` value beats a
/// `[global]` one, and indented lines continue the previous value.
fn pip_conf_values(text: &str) -> (Option<String>, Option<String>) {
    let mut section = String::new();
    let mut entries: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t'])
            && let Some(last) = entries.last_mut()
        {
            last.2.push('\n');
            last.2.push_str(trimmed);
            continue;
        }
        if let Some(s) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim().to_ascii_lowercase();
            continue;
        }
        let Some(sep) = trimmed.find(['=', ':']) else {
            continue;
        };
        let key = trimmed[..sep].trim().to_ascii_lowercase().replace('_', "-");
        entries.push((section.clone(), key, trimmed[sep + 1..].trim().to_owned()));
    }
    let get = |key: &str| {
        let find = |sec: &str| {
            entries
                .iter()
                .rev()
                .find(|(s, k, v)| s == sec && k == key && !v.trim().is_empty())
                .map(|(_, _, v)| v.trim().to_owned())
        };
        find("install").or_else(|| find("global"))
    };
    (get("index-url"), get("extra-index-url"))
}

/// `machine`/`login`/`password` entries of a netrc file, and `default` (as
/// the host `""`). `account` is skipped, `macdef` bodies too; `#` starts a
/// comment; tokens may be double-quoted. Entries without a password are left
/// out.
fn parse_netrc(text: &str) -> Vec<(String, String, String)> {
    let mut tokens = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&c) = chars.peek() else { break };
            if c == '#' {
                break;
            }
            let mut tok = String::new();
            if c == '"' {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => tok.extend(chars.next()),
                        c => tok.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    tok.push(c);
                }
            }
            tokens.push(tok);
        }
        if tokens.len() >= 2 && tokens[tokens.len() - 2] == "macdef" {
            // A macro body runs to the next empty line.
            tokens.truncate(tokens.len() - 2);
            for body in lines.by_ref() {
                if body.trim().is_empty() {
                    break;
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut current: Option<(String, String, Option<String>)> = None;
    let mut flush = |cur: &mut Option<(String, String, Option<String>)>| {
        if let Some((h, l, Some(p))) = cur.take() {
            out.push((h, l, p));
        }
    };
    let mut it = tokens.into_iter();
    while let Some(t) = it.next() {
        match t.as_str() {
            "machine" => {
                flush(&mut current);
                current = it.next().map(|h| (h, String::new(), None));
            }
            "default" => {
                flush(&mut current);
                current = Some((String::new(), String::new(), None));
            }
            "login" => {
                if let (Some(c), Some(v)) = (current.as_mut(), it.next()) {
                    c.1 = v;
                }
            }
            "password" => {
                if let (Some(c), Some(v)) = (current.as_mut(), it.next()) {
                    c.2 = Some(v);
                }
            }
            "account" => {
                it.next();
            }
            _ => {}
        }
    }
    flush(&mut current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use std::collections::HashMap;

    #[test]
    fn netrc() {
        let entries = parse_netrc(
            "# comment\nmachine idx.example login alice password s3cret\n\
             machine other.example\n  login bob\n  account acct\n  password \"with space\\\"q\"\n\
             macdef init\n  machine evil.example login x password y\n\n\
             machine nopass.example login carol\n\
             default login anon password anon@ # trailing comment\n",
        );
        assert_eq!(
            entries,
            [
                (
                    "idx.example".to_owned(),
                    "alice".to_owned(),
                    "s3cret".to_owned()
                ),
                (
                    "other.example".to_owned(),
                    "bob".to_owned(),
                    "with space\"q".to_owned()
                ),
                (String::new(), "anon".to_owned(), "anon@".to_owned()),
            ]
        );
        assert!(parse_netrc("").is_empty());
        assert!(parse_netrc("machine").is_empty());
    }

    fn cred(cfg: &PypiConfig, url: &str) -> Option<String> {
        match cfg.credential_for(&Url::parse(url).unwrap()) {
            Some(Credential::Basic(b)) => Some(
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap())
                    .unwrap(),
            ),
            Some(Credential::Bearer(_)) => panic!("bearer"),
            None => None,
        }
    }

    #[test]
    fn credentials_stay_on_their_origin() {
        let with_userinfo = PypiConfig {
            index: Some((
                parse_index_url("https://me:p%40ss@idx.example:8443/simple", "t", None).unwrap(),
                "t".into(),
            )),
            netrc: vec![("idx.example".into(), "n".into(), "netrc".into())],
            ..Default::default()
        };
        let c = |u| cred(&with_userinfo, u);
        assert_eq!(
            c("https://idx.example:8443/simple/foo/"),
            Some("me:p@ss".into())
        );
        assert_eq!(
            c("https://idx.example:8443/files/x.whl"),
            Some("me:p@ss".into())
        );
        assert_eq!(
            c("https://idx.example/simple/foo/"),
            None,
            "same host, other port"
        );
        assert_eq!(c("https://idx.example:8444/simple/foo/"), None);
        assert_eq!(
            c("http://idx.example:8443/simple/foo/"),
            None,
            "other scheme"
        );
        assert_eq!(c("https://cdn.example:8443/x.whl"), None);
        assert_eq!(c("https://sub.idx.example:8443/x.whl"), None);

        let netrc_only = PypiConfig {
            index: Some((
                parse_index_url("https://idx.example/simple/", "t", None).unwrap(),
                "t".into(),
            )),
            extra: vec![parse_index_url("http://127.0.0.1:3141/root/", "t", None).unwrap()],
            netrc: vec![
                ("IDX.example".into(), "alice".into(), "s3cret".into()),
                ("cdn.example".into(), "x".into(), "y".into()),
                (String::new(), "anon".into(), "dflt".into()),
            ],
        };
        let c = |u| cred(&netrc_only, u);
        assert_eq!(
            c("https://idx.example/simple/foo/"),
            Some("alice:s3cret".into())
        );
        assert_eq!(c("https://idx.example:443/x"), Some("alice:s3cret".into()));
        assert_eq!(c("https://idx.example:444/x"), None);
        // netrc names cdn.example, but no configured index is there.
        assert_eq!(c("https://cdn.example/x.whl"), None);
        // An extra index is never read, so it gets no credential: not its
        // userinfo, not netrc's.
        assert_eq!(c("http://127.0.0.1:3141/root/foo/"), None);
        assert_eq!(c("http://127.0.0.1:3142/root/foo/"), None);
        let extra_userinfo = PypiConfig {
            index: Some((
                parse_index_url("https://idx.example/simple/", "t", None).unwrap(),
                "t".into(),
            )),
            extra: vec![
                parse_index_url("https://bob:pb@other.example/simple/", "t", None).unwrap(),
                parse_index_url("https://carol:pc@idx.example/extra/", "t", None).unwrap(),
            ],
            netrc: vec![],
        };
        let c = |u| cred(&extra_userinfo, u);
        assert_eq!(c("https://other.example/simple/foo/"), None);
        assert_eq!(c("https://other.example/files/x.whl"), None);
        // Same origin as the index: that origin's own credential.
        assert_eq!(
            c("https://idx.example/files/x.whl"),
            Some("carol:pc".into())
        );
        assert_eq!(
            extra_userinfo
                .other_indexes()
                .iter()
                .map(|u| u.host_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>(),
            ["other.example"]
        );
        assert_eq!(cred(&PypiConfig::default(), "https://idx.example/"), None);
    }

    #[test]
    fn index_urls() {
        assert_eq!(
            parse_index_url("https://idx.example/simple", "t", None)
                .unwrap()
                .url()
                .as_str(),
            "https://idx.example/simple/"
        );
        assert!(parse_index_url("http://127.0.0.1:8080/simple/", "t", None).is_ok());
        assert!(parse_index_url("http://[::1]:8080/", "t", None).is_ok());
        assert!(parse_index_url("http://localhost/", "t", None).is_ok());
        assert_eq!(
            parse_index_url("http://10.0.0.1/simple", "t", None)
                .unwrap_err()
                .kind,
            Kind::Policy
        );
        assert_eq!(
            parse_index_url("file:///srv/simple", "t", None)
                .unwrap_err()
                .kind,
            Kind::Usage
        );
        assert_eq!(
            parse_index_url("not a url", "t", None).unwrap_err().kind,
            Kind::Usage
        );
        let e = parse_index_url("http://me:secret@10.0.0.1/", "t", None).unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert_eq!(
            uv_index_url("corp=https://idx.example/simple/"),
            "https://idx.example/simple/"
        );
        assert_eq!(
            uv_index_url("https://idx.example/simple/?a=b"),
            "https://idx.example/simple/?a=b"
        );
    }

    #[test]
    fn pip_conf_sections() {
        let (i, x) = pip_conf_values(
            "[global]\nindex_url = https://g.example/simple\nextra-index-url =\n  https://a.example/\n  https://b.example/\n; c\n[install]\nIndex-URL: https://i.example/simple\n[download]\nindex-url = https://d.example/\n",
        );
        assert_eq!(i.as_deref(), Some("https://i.example/simple"));
        assert_eq!(x.as_deref(), Some("https://a.example/\nhttps://b.example/"));
        let (i, x) = pip_conf_values("index-url = https://nosection.example/\n[global]\n");
        assert_eq!((i, x), (None, None));
    }

    /// An environment and home directory of the test's own: the process
    /// environment is never touched (setting it is `unsafe` in edition 2024,
    /// and this crate forbids `unsafe`).
    struct Fixture {
        dir: tempfile::TempDir,
        env: HashMap<String, String>,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
                env: HashMap::new(),
            }
        }
        fn home(&self) -> PathBuf {
            self.dir.path().join("home")
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        }
        fn set(&mut self, k: &str, v: &str) {
            self.env.insert(k.into(), v.into());
        }
        fn load(&self, explicit: Option<(&str, &str)>) -> Result<PypiConfig> {
            let var = |k: &str| self.env.get(k).cloned();
            let mut sources = ConfigSources::discover(&var, Some(&self.home()));
            // Only this test's files: not the machine's `/etc/pip.conf`.
            sources.pip_conf.retain(|p| p.starts_with(self.dir.path()));
            PypiConfig::load_with(
                explicit.map(|(u, s)| (u.to_owned(), s.to_owned())),
                &var,
                &sources,
                None,
            )
        }
        fn index(&self, explicit: Option<(&str, &str)>) -> Option<(String, String)> {
            self.load(explicit)
                .unwrap()
                .index
                .map(|(u, s)| (u.to_string(), s))
        }
    }

    #[cfg(not(any(windows, target_os = "macos")))]
    #[test]
    fn config_precedence() {
        let mut f = Fixture::new();
        assert_eq!(f.index(None), None);
        assert_eq!(f.load(None).unwrap().index().unwrap_err().kind, Kind::Usage);

        let legacy = f.write(
            "home/.pip/pip.conf",
            "[global]\nindex-url = https://legacy.example/simple\n",
        );
        let got = f.index(None).unwrap();
        assert_eq!(got.0, "https://legacy.example/simple/");
        assert_eq!(got.1, format!("index-url in {}", legacy.display()));

        let xdg = f.write(
            "home/.config/pip/pip.conf",
            "[global]\nindex-url = https://xdg.example/simple/\n",
        );
        assert_eq!(
            f.index(None).unwrap().1,
            format!("index-url in {}", xdg.display())
        );

        // `$XDG_CONFIG_HOME` replaces `~/.config`.
        let moved = f.write(
            "xdg/pip/pip.conf",
            "[global]\nindex-url = https://moved.example/\n",
        );
        f.set(
            "XDG_CONFIG_HOME",
            f.dir.path().join("xdg").to_str().unwrap(),
        );
        assert_eq!(
            f.index(None).unwrap().1,
            format!("index-url in {}", moved.display())
        );

        // An existing `$PIP_CONFIG_FILE` wins, and replaces the user files.
        let envfile = f.write(
            "env.conf",
            "[global]\nextra-index-url = https://extra.example/\n",
        );
        f.set("PIP_CONFIG_FILE", envfile.to_str().unwrap());
        assert_eq!(f.index(None), None);
        assert_eq!(
            f.load(None).unwrap().extra[0].url().as_str(),
            "https://extra.example/"
        );
        f.write(
            "env.conf",
            "[global]\nindex-url = https://envfile.example/\n",
        );
        assert_eq!(f.index(None).unwrap().0, "https://envfile.example/");
        // `/dev/null` is pip's "no config files".
        f.set("PIP_CONFIG_FILE", "/dev/null");
        assert_eq!(f.index(None), None);
        // A missing one does not.
        f.set(
            "PIP_CONFIG_FILE",
            f.dir.path().join("absent.conf").to_str().unwrap(),
        );
        assert_eq!(f.index(None).unwrap().0, "https://moved.example/");

        f.set("UV_INDEX_URL", "https://uv-index-url.example/simple");
        assert_eq!(
            f.index(None).unwrap(),
            (
                "https://uv-index-url.example/simple/".into(),
                "UV_INDEX_URL".into()
            )
        );
        f.set("UV_DEFAULT_INDEX", "https://uv-default.example/simple");
        assert_eq!(f.index(None).unwrap().1, "UV_DEFAULT_INDEX");
        f.set("PIP_INDEX_URL", "");
        assert_eq!(
            f.index(None).unwrap().1,
            "UV_DEFAULT_INDEX",
            "empty is unset"
        );
        f.set("PIP_INDEX_URL", "https://pip-env.example/simple");
        assert_eq!(f.index(None).unwrap().1, "PIP_INDEX_URL");
        assert_eq!(
            f.index(Some(("http://127.0.0.1:9/simple", "SAFEX_PYPI_INDEX")))
                .unwrap(),
            (
                "http://127.0.0.1:9/simple/".into(),
                "SAFEX_PYPI_INDEX".into()
            )
        );

        // A bad URL names where it came from.
        f.set("PIP_INDEX_URL", "http://10.1.2.3/simple");
        let e = f.load(None).unwrap_err();
        assert_eq!(e.kind, Kind::Policy);
        assert!(e.message.contains("PIP_INDEX_URL"), "{}", e.message);

        // Extras: `PIP_EXTRA_INDEX_URL` over pip.conf, plus `UV_INDEX`; bad ones left out.
        f.set("PIP_INDEX_URL", "https://pip-env.example/simple");
        f.set(
            "PIP_EXTRA_INDEX_URL",
            "https://e1.example/ http://10.0.0.9/",
        );
        f.set("UV_INDEX", "corp=https://e2.example/simple");
        let extra: Vec<String> = f
            .load(None)
            .unwrap()
            .extra
            .iter()
            .map(|u| u.url().to_string())
            .collect();
        assert_eq!(extra, ["https://e1.example/", "https://e2.example/simple/"]);
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_pip_conf() {
        let f = Fixture::new();
        // A directory where the file should be: reading it fails.
        std::fs::create_dir_all(f.home().join(".pip/pip.conf")).unwrap();
        assert_eq!(f.load(None).unwrap_err().kind, Kind::Io);
        // Not needed when the index comes from elsewhere.
        let cfg = f.load(Some(("https://idx.example/simple/", "t"))).unwrap();
        assert_eq!(cfg.index().unwrap().as_str(), "https://idx.example/simple/");
    }

    #[test]
    fn netrc_location() {
        let mut f = Fixture::new();
        f.write("home/.netrc", "machine idx.example login a password b\n");
        let cfg = f.load(Some(("https://idx.example/simple/", "t"))).unwrap();
        assert_eq!(
            cred(&cfg, "https://idx.example/simple/x/"),
            Some("a:b".into())
        );
        let other = f.write("other-netrc", "machine idx.example login c password d\n");
        f.set("NETRC", other.to_str().unwrap());
        let cfg = f.load(Some(("https://idx.example/simple/", "t"))).unwrap();
        assert_eq!(
            cred(&cfg, "https://idx.example/simple/x/"),
            Some("c:d".into())
        );
        // Debug output shows hosts and sources, never a secret.
        f.write(
            "other-netrc",
            "machine idx.example login c password zz-netrc-zz\n",
        );
        let cfg = f
            .load(Some(("https://me:zz-url-zz@idx.example/simple/", "t")))
            .unwrap();
        let shown = format!("{cfg:?}");
        assert!(shown.contains("idx.example"), "{shown}");
        assert!(!shown.contains("zz-"), "{shown}");
    }
}
