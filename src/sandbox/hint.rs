//! When the sandbox denies something, the user learns what and how to
//! allow it. Landlock's own denial records are for root (the audit
//! subsystem); what every user has is what the server says: Node's
//! `EACCES: permission denied, open '/home/u/.ssh/id_rsa'`, Python's
//! `PermissionError: [Errno 13] Permission denied: '...'`, git's
//! `unable to access '...': Permission denied`, `listen EACCES ...:3000`.
//! The relay reads the server's stderr and its error answers for these,
//! and says, once per path or address, the flag and the policy line that
//! would allow it — only when the path is one the sandbox withholds.

use std::path::{Path, PathBuf};

use super::Spec;
use super::grants::Launch;

/// What a denial is matched against, and how a grant is spelled.
#[derive(Debug, Clone, Default)]
pub struct Advice {
    package: String,
    /// The package tree (never to be granted: it is what was verified).
    tree: PathBuf,
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
    home: Option<PathBuf>,
}

/// A denial a server reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// A file operation on this path.
    Path(PathBuf),
    /// A listening socket on this `host:port`.
    Bind(String),
    /// A connection to this `host:port`.
    Connect(String),
}

impl Advice {
    pub fn new(launch: &Launch<'_>, spec: &Spec, home: Option<PathBuf>) -> Advice {
        Advice {
            package: launch.package.to_owned(),
            tree: launch.tree.to_path_buf(),
            read: spec.read.clone(),
            write: spec.write.clone(),
            home,
        }
    }

    /// The hint for `d`, or `None` when the sandbox does not withhold it
    /// (the server's own failure, or the user's file permissions).
    pub fn hint(&self, d: &Denial) -> Option<String> {
        let pkg = &self.package;
        match d {
            Denial::Path(p) => {
                let beneath = |list: &[PathBuf]| list.iter().any(|g| p.starts_with(g));
                if beneath(&self.write) {
                    return None;
                }
                if !self.tree.as_os_str().is_empty() && p.starts_with(&self.tree) {
                    return Some(format!(
                        "safex: sandbox: `{pkg}` tried to write into its own installed files (`{}`), which the sandbox keeps read-only so that what runs is what was verified; look for a setting of the server that moves the file (a path variable or option, pointed at a directory you grant with `--allow-write`), or launch it with `--no-sandbox` if you trust it",
                        p.display()
                    ));
                }
                // A denied path that does not exist was being created
                // (a read of it would have failed with ENOENT first): its
                // directory needs writing.
                let created = !p.exists() && p.parent().is_some_and(Path::exists);
                let grant = if created {
                    p.parent().unwrap_or(p)
                } else {
                    p.as_path()
                };
                let shown = self.shown(grant);
                let (flag, key) = if created || beneath(&self.read) {
                    ("--allow-write", "write")
                } else {
                    ("--allow-read", "read")
                };
                Some(format!(
                    "safex: sandbox: `{pkg}` was denied access to `{}`; to allow it, add `{flag} {shown}` before the package in the launch (the MCP client's `args`), or to the policy: [servers.\"{pkg}\"] {key} = [\"{shown}\"] (`--allow-write` also grants reading)",
                    p.display()
                ))
            }
            Denial::Bind(addr) => Some(format!(
                "safex: sandbox: `{pkg}` was denied listening on {addr}; to allow it, add `--allow-net={addr}` before the package in the launch"
            )),
            Denial::Connect(addr) => Some(format!(
                "safex: sandbox: `{pkg}` was denied a connection to {addr}; to allow it, add `--allow-net={addr}` before the package in the launch, or the host to the policy's `sandbox.allow_net`"
            )),
        }
    }

    /// `~/x` for a path in the home directory.
    fn shown(&self, p: &Path) -> String {
        match self.home.as_deref().and_then(|h| p.strip_prefix(h).ok()) {
            Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
            _ => p.display().to_string(),
        }
    }
}

/// The denial a line of server output reports, if any.
pub fn denial(line: &str) -> Option<Denial> {
    let denied = [
        "EACCES",
        "EPERM",
        "ermission denied",
        "peration not permitted",
    ];
    if !denied.iter().any(|d| line.contains(d)) {
        return None;
    }
    for verb in ["listen ", "bind "] {
        if let Some(addr) = after_word(line, verb).and_then(address) {
            return Some(Denial::Bind(addr));
        }
    }
    if let Some(addr) = after_word(line, "connect ").and_then(address) {
        return Some(Denial::Connect(addr));
    }
    quoted_path(line).map(Denial::Path)
}

/// The text after `word` (at a word start).
fn after_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let i = line.find(word)?;
    (i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric()).then(|| &line[i + word.len()..])
}

/// The last `host:port` of the rest of a Node network error
/// (`EACCES: permission denied 127.0.0.1:3000`, `EACCES 10.0.0.1:443`).
fn address(rest: &str) -> Option<String> {
    let word = rest.split_whitespace().rev().find(|w| w.contains(':'))?;
    let word = word.trim_matches(|c: char| c == ',' || c == '.' || c == '\'' || c == '"');
    let (host, port) = word.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then(|| word.to_owned())
}

/// The first quoted absolute path (`'...'` or `"..."`; JSON-escaped
/// quotes too, as an error answer carries them).
fn quoted_path(line: &str) -> Option<PathBuf> {
    let line = line.replace("\\\"", "\"").replace("\\'", "'");
    let bytes = line.as_bytes();
    for (i, w) in bytes.windows(2).enumerate() {
        let q = w[0];
        if (q == b'\'' || q == b'"') && w[1] == b'/' {
            let rest = &line[i + 1..];
            let end = rest.find(q as char)?;
            let inner = &rest[..end];
            if !inner.contains('\n') {
                return Some(PathBuf::from(inner));
            }
        }
    }
    None
}

/// Copy the server's stderr to safex's, line by line as it comes, with the
/// `hidden` values redacted, and (sandboxed) after a line that reports a
/// denial the sandbox caused, its hint (once per path or address).
#[cfg(unix)]
pub fn relay_stderr(
    from: impl std::io::Read,
    advice: Option<&Advice>,
    hidden: &crate::relay::redact::Redactor,
) {
    use std::io::{BufRead, Write};
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, from);
    let mut seen = Seen::default();
    let mut line = Vec::new();
    let stderr = std::io::stderr();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        hidden.redact(&mut line);
        let mut out = stderr.lock();
        if out.write_all(&line).is_err() {
            return;
        }
        if let Some(advice) = advice
            && let Some(h) = seen.hint(advice, &String::from_utf8_lossy(&line))
        {
            let _ = writeln!(out, "{h}");
        }
    }
}

/// The denials already explained in this session.
#[derive(Debug, Default)]
pub struct Seen(std::collections::HashSet<String>);

impl Seen {
    /// The hint for a denial in `text`, the first time it is seen.
    pub fn hint(&mut self, advice: &Advice, text: &str) -> Option<String> {
        let d = denial(text)?;
        let h = advice.hint(&d)?;
        self.0.insert(format!("{d:?}")).then_some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_python_and_git_denials() {
        let p = |s: &str| Some(Denial::Path(PathBuf::from(s)));
        assert_eq!(
            denial("Error: EACCES: permission denied, open '/home/u/.ssh/id_rsa'"),
            p("/home/u/.ssh/id_rsa")
        );
        assert_eq!(
            denial("PermissionError: [Errno 13] Permission denied: '/home/u/.aws/credentials'"),
            p("/home/u/.aws/credentials")
        );
        assert_eq!(
            denial("fatal: unable to access '/home/u/.config/git/config': Permission denied"),
            p("/home/u/.config/git/config")
        );
        assert_eq!(
            denial(r#"{"text":"Error: EACCES: permission denied, mkdir \"/srv/x\""}"#),
            p("/srv/x")
        );
        assert_eq!(
            denial("Error: listen EACCES: permission denied 127.0.0.1:3000"),
            Some(Denial::Bind("127.0.0.1:3000".into()))
        );
        assert_eq!(
            denial("Error: connect EACCES 10.1.2.3:443"),
            Some(Denial::Connect("10.1.2.3:443".into()))
        );
        assert_eq!(denial("ENOENT: no such file or directory, open '/x'"), None);
        assert_eq!(denial("all good"), None);
    }

    #[test]
    fn hints_only_for_what_the_sandbox_withholds() {
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("out.txt");
        std::fs::write(&out, "x").unwrap();
        let a = Advice {
            package: "@acme/srv".into(),
            tree: PathBuf::from("/cache/env/ab12"),
            read: vec![PathBuf::from("/usr"), work.path().to_path_buf()],
            write: vec![PathBuf::from("/state")],
            home: Some(PathBuf::from("/home/u")),
        };
        let h = a.hint(&Denial::Path("/home/u/.ssh/id_rsa".into())).unwrap();
        assert!(h.contains("`--allow-read ~/.ssh/id_rsa`"), "{h}");
        assert!(
            h.contains("[servers.\"@acme/srv\"] read = [\"~/.ssh/id_rsa\"]"),
            "{h}"
        );
        // Readable, denied: it was written.
        let h = a.hint(&Denial::Path(out.clone())).unwrap();
        assert!(
            h.contains(&format!("`--allow-write {}`", out.display())),
            "{h}"
        );
        // Not there yet: it was being created, in its directory.
        let other = tempfile::tempdir().unwrap();
        let h = a
            .hint(&Denial::Path(other.path().join("new.json")))
            .unwrap();
        assert!(
            h.contains(&format!("`--allow-write {}`", other.path().display())),
            "{h}"
        );
        assert_eq!(a.hint(&Denial::Path("/state/x".into())), None);
        // Its own package: never a grant there.
        let h = a
            .hint(&Denial::Path("/cache/env/ab12/lib/x/logs".into()))
            .unwrap();
        assert!(
            h.contains("own installed files") && !h.contains("--allow-write /cache"),
            "{h}"
        );
    }
}
