//! The audit log: one JSON object per line, appended with a single write,
//! for every launch, lock and refusal, so a security team can see afterwards
//! exactly which bytes ran, for whom, started by which MCP client.
//! Never a credential: URLs are not logged, of the variables passed with
//! `--env` only the names are, and the program's arguments are recorded with
//! every value that looks like a secret masked (the detector `safex mcp scan`
//! uses). The file is private: created `0600` in a directory created `0700`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::ecosystem::Ecosystem;
use crate::env_vars as ev;
use crate::error::Error;
use crate::settings::Settings;

/// What is known about the current run, filled in as the pipeline learns it.
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub ecosystem: Option<Ecosystem>,
    pub package: Option<String>,
    pub version: Option<String>,
    pub tree: Option<String>,
    pub packages: Option<usize>,
    /// npm: the bundled packages of the tree, `name@version (in parent@version)`.
    pub bundled: Vec<String>,
    pub args: Vec<String>,
    pub env_passed: Vec<String>,
    /// The sandbox the launch applies (`sandbox::Plan::audit`).
    pub sandbox: Option<serde_json::Value>,
    /// The secrets the launch resolved: names and sources, never values.
    pub secrets: Vec<crate::secret::resolve::Used>,
    log: Option<PathBuf>,
    /// The system policy set the log: a launch that cannot be logged is refused.
    mandatory: bool,
    layers: Vec<String>,
    quiet: bool,
    /// Where every event goes instead, whatever the policy says (the
    /// scratch log of `safex mcp pin`'s dry run).
    redirected: Option<PathBuf>,
}

impl Context {
    pub fn new(ecosystem: Ecosystem) -> Context {
        Context {
            ecosystem: Some(ecosystem),
            ..Default::default()
        }
    }

    /// The program's arguments, as they will be logged: verbatim, except
    /// that tokens, URL credentials and the values of `--api-key`-style flags
    /// are masked (`--token=ghp_****`).
    pub fn set_args(&mut self, args: &[OsString]) {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.args = crate::mcp::secrets::mask_args(&args);
    }

    /// Where the log goes: the policy's `audit.log` (any layer; the system's
    /// is mandatory), else `SAFEX_AUDIT_LOG`, else the user data directory.
    pub fn configure(&mut self, settings: &Settings) {
        let p = &settings.policy;
        self.log = self
            .redirected
            .clone()
            .or_else(|| p.audit_log.clone())
            .or_else(|| ev::get(ev::SAFEX_AUDIT_LOG).map(PathBuf::from))
            .or_else(default_path);
        self.mandatory = p.mandatory.contains("audit.log");
        self.layers = p.layers.clone();
        self.quiet = settings.quiet;
    }

    /// Log a launch. When the system policy sets the log, a launch that
    /// cannot be logged does not happen.
    pub fn launch(&self) -> Result<(), Error> {
        self.write("launch", "allow", None)
    }

    pub fn lock(&self) -> Result<(), Error> {
        self.write("lock", "allow", None)
    }

    /// Send every event to `path`, whatever the policy and environment say.
    pub fn redirect(&mut self, path: PathBuf) {
        self.log = Some(path.clone());
        self.redirected = Some(path);
    }

    pub fn refuse(&mut self, err: &Error) {
        if self.log.is_none() {
            self.log = ev::get(ev::SAFEX_AUDIT_LOG)
                .map(PathBuf::from)
                .or_else(default_path);
        }
        let _ = self.write("refuse", "refuse", Some(err.message.as_str()));
    }

    /// One line about a relayed MCP session (`mcp-call`, `mcp-pin`,
    /// `mcp-session`): the server's identity, then `fields`. The session
    /// is under way, so a log that cannot be written is a warning.
    pub fn event(&self, event: &str, fields: serde_json::Value) {
        let Some(path) = &self.log else { return };
        let mut record = json!({
            "time": crate::time::format_rfc3339(std::time::SystemTime::now()),
            "event": event,
            "ecosystem": self.ecosystem.map(Ecosystem::as_str),
            "package": self.package,
            "version": self.version,
            "tree": self.tree,
            "host": host(),
            "safex_version": env!("CARGO_PKG_VERSION"),
            "policy": self.layers,
        });
        if let (serde_json::Value::Object(r), serde_json::Value::Object(more)) =
            (&mut record, fields)
        {
            r.extend(more);
        }
        let mut line = record.to_string();
        line.push('\n');
        if let Err(e) = append(path, line.as_bytes(), true)
            && !self.quiet
        {
            eprintln!(
                "warning: cannot write the audit log `{}`: {e}",
                path.display()
            );
        }
    }

    fn write(&self, event: &str, decision: &str, reason: Option<&str>) -> Result<(), Error> {
        let Some(path) = &self.log else { return Ok(()) };
        let record = json!({
            "time": crate::time::format_rfc3339(std::time::SystemTime::now()),
            "event": event,
            "ecosystem": self.ecosystem.map(Ecosystem::as_str),
            "package": self.package,
            "version": self.version,
            "tree": self.tree,
            "packages": self.packages,
            "bundled": self.bundled,
            "decision": decision,
            "reason": reason,
            "user": user(),
            "host": host(),
            "parent": parent(),
            "cwd": std::env::current_dir().ok().map(|d| d.display().to_string()),
            "safex_version": env!("CARGO_PKG_VERSION"),
            "policy": self.layers,
            "args": self.args,
            "env_passed": self.env_passed,
        });
        let mut record = record;
        if let (Some(sb), serde_json::Value::Object(r)) = (&self.sandbox, &mut record)
            && event == "launch"
        {
            r.insert("sandbox".into(), sb.clone());
        }
        if let serde_json::Value::Object(r) = &mut record
            && event == "launch"
            && !self.secrets.is_empty()
        {
            r.insert("secrets".into(), json!(self.secrets));
        }
        let mut line = record.to_string();
        line.push('\n');
        match append(path, line.as_bytes(), self.quiet) {
            Ok(()) => Ok(()),
            Err(e) if self.mandatory => Err(Error::io(format!(
                "cannot write the audit log `{}`: {e}",
                path.display()
            ))
            .with_hint("the system policy requires an audit log; ask your admin to fix its `audit.log` path")),
            Err(e) => {
                if !self.quiet {
                    eprintln!("warning: cannot write the audit log `{}`: {e}", path.display());
                }
                Ok(())
            }
        }
    }
}

/// One `write` on a file opened for appending: lines from concurrent
/// launches never interleave.
///
/// The log names the packages a person runs, from which directory, for which
/// client: it is theirs (or their security team's), not everyone's on the
/// machine. A new file is created `0600` and a directory safex creates is
/// `0700`, whatever the umask. An existing file keeps its mode (a team may
/// have made it group-readable on purpose), but one that other users may
/// write is warned about: anyone could add or rewrite lines.
fn append(path: &std::path::Path, line: &[u8], quiet: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        create_private_dir(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    if !quiet {
        use std::os::unix::fs::PermissionsExt;
        if f.metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
        {
            eprintln!(
                "warning: the audit log `{}` is writable by every user: anyone can add or change lines",
                path.display()
            );
            eprintln!("hint: run `chmod o-w {}`", path.display());
        }
    }
    #[cfg(not(unix))]
    let _ = quiet;
    f.write_all(line)
}

pub(crate) fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "safex").map(|d| d.data_dir().join("audit.log"))
}

fn user() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| ev::get(v))
        .or_else(user_from_passwd)
}

/// The login name of this process's uid, for MCP clients that pass no `USER`.
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_owned())
    })
}

fn host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| ["HOSTNAME", "COMPUTERNAME"].iter().find_map(|v| ev::get(v)))
}

/// The name of the process that started safex: which MCP client.
pub fn parent_name() -> Option<String> {
    parent()
}

fn parent() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let ppid = std::os::unix::process::parent_id();
        std::fs::read_to_string(format!("/proc/{ppid}/comm"))
            .ok()
            .map(|s| s.trim().to_owned())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}
