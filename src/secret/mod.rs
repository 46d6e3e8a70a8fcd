//! Secrets out of config files: `safex secret set|list|rm|get --exists`
//! keep values in the OS credential store ([`store`]); a config names them
//! as `safex-secret:NAME` (or `safex-secret:file:/path`, the one explicit
//! fallback where no store is reachable), and a launch resolves them into
//! the server's environment only ([`resolve`]). safex never prints a value.
//! See `docs/secrets.md`.

pub mod file;
pub mod resolve;
pub mod store;

use std::io::{IsTerminal, Read};

use crate::error::{Error, Kind, Result};

/// What a reference starts with.
pub const PREFIX: &str = "safex-secret:";

/// The largest value `secret set` takes.
const MAX_VALUE: usize = 1 << 20;

/// The longest name.
const MAX_NAME: usize = 128;

#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Store a secret: the value is read from the terminal without echo,
    /// or from stdin when it is not a terminal (one trailing newline is
    /// dropped). Replaces the value a name had.
    #[command(
        after_help = "Examples:\n  safex secret set github\n  printf %s \"$TOKEN\" | safex secret set github\n\nReference it in an MCP client config as an env value: \"GITHUB_TOKEN\": \"safex-secret:github\""
    )]
    Set {
        /// Letters, digits, `.`, `_`, `-`; starting with a letter or digit.
        name: String,
    },
    /// The names safex keeps in the credential store (never the values).
    List {
        /// Print JSON instead of one name per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    Rm { name: String },
    /// Whether a secret exists (exit 0) or not (exit 1); prints nothing.
    /// safex never prints a stored value.
    Get {
        /// Answer only whether it exists (required: values are not shown).
        #[arg(long)]
        exists: bool,
        name: String,
    },
}

/// A reference, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// `safex-secret:NAME`: the OS store.
    Store(String),
    /// `safex-secret:file:/path`: a file only the user can read.
    File(std::path::PathBuf),
}

impl Ref {
    /// `value` when it is exactly a reference (`None` otherwise).
    pub fn parse(value: &str) -> Option<std::result::Result<Ref, String>> {
        let rest = value.strip_prefix(PREFIX)?;
        Some(match rest.strip_prefix("file:") {
            Some(path) => {
                let p = std::path::PathBuf::from(path);
                if p.is_absolute() {
                    Ok(Ref::File(p))
                } else {
                    Err(format!(
                        "`{value}`: a file reference needs an absolute path (`safex-secret:file:/path`)"
                    ))
                }
            }
            None => check_name(rest).map(|()| Ref::Store(rest.to_owned())),
        })
    }

    /// What the audit log records: the name, or the file's path.
    pub fn name(&self) -> String {
        match self {
            Ref::Store(n) => n.clone(),
            Ref::File(p) => format!("file:{}", p.display()),
        }
    }

    /// Where the value comes from, for the audit log.
    pub fn source(&self) -> &'static str {
        match self {
            Ref::Store(_) => store::kind(),
            Ref::File(_) => "file",
        }
    }
}

/// `postgres[ql]://user:PASSWORD@host...` split around its password (not
/// empty): the head up to `user:`, the password, the tail from `@`.
/// libpq and node-postgres take the password from `PGPASSWORD` when the
/// URL has none, which keeps it off the command line.
pub fn postgres_password(arg: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = arg.find("://")?;
    if !matches!(
        arg[..scheme_end].to_ascii_lowercase().as_str(),
        "postgres" | "postgresql"
    ) {
        return None;
    }
    let start = scheme_end + 3;
    let end = arg[start..]
        .find(['/', '?', '#'])
        .map_or(arg.len(), |i| start + i);
    let at = start + arg[start..end].rfind('@')?;
    let colon = start + arg[start..at].find(':')?;
    let password = &arg[colon + 1..at];
    (!password.is_empty()).then(|| (&arg[..colon + 1], password, &arg[at..]))
}

/// A name's byte is one of these.
pub fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Is `name` a valid secret name? The message says why not.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(name_byte);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a secret name: use 1 to {MAX_NAME} letters, digits, `.`, `_` or `-`, starting with a letter or digit"
        ))
    }
}

fn name_arg(name: &str) -> Result<()> {
    check_name(name).map_err(Error::usage)
}

pub fn run(cmd: SecretCommand, quiet: bool) -> Result<i32> {
    match cmd {
        SecretCommand::Set { name } => {
            name_arg(&name)?;
            let value = read_value(&name)?;
            let store = store::Store::open()?;
            let had = store.get(&name)?.is_some();
            store.set(&name, &value)?;
            if !quiet {
                eprintln!(
                    "{} secret `{name}` in {}; reference it as `{PREFIX}{name}`",
                    if had { "replaced" } else { "stored" },
                    store::shown()
                );
            }
            Ok(0)
        }
        SecretCommand::List { json } => {
            let names = store::Store::open()?.list()?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "version": 1, "store": store::kind(), "names": names })
                );
            } else {
                for n in &names {
                    println!("{n}");
                }
                if names.is_empty() && !quiet {
                    eprintln!("no secrets stored by safex in {}", store::shown());
                }
            }
            Ok(0)
        }
        SecretCommand::Rm { name } => {
            name_arg(&name)?;
            if store::Store::open()?.remove(&name)? {
                if !quiet {
                    eprintln!("removed secret `{name}`");
                }
                Ok(0)
            } else {
                Err(Error::new(
                    Kind::Usage,
                    format!("no secret named `{name}` in {}", store::shown()),
                )
                .with_hint("see `safex secret list`"))
            }
        }
        SecretCommand::Get { exists, name } => {
            if !exists {
                return Err(Error::usage(
                    "`safex secret get` answers only whether a secret exists: safex never prints a stored value",
                )
                .with_hint(format!("`safex secret get --exists {name}`")));
            }
            name_arg(&name)?;
            Ok(if store::Store::open()?.get(&name)?.is_some() {
                0
            } else {
                1
            })
        }
    }
}

/// The value to store: from the terminal without echo, else all of stdin
/// (one trailing newline dropped, as `echo` and here-strings add one).
fn read_value(name: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let mut raw = Vec::new();
    if stdin.is_terminal() {
        eprint!("value for `{name}` (not shown): ");
        // The terminal echoes the newline (`ECHONL`), not the value.
        raw = read_hidden()?.into_bytes();
    } else {
        stdin
            .lock()
            .take(MAX_VALUE as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| Error::io(format!("cannot read the value from stdin: {e}")))?;
        if raw.len() > MAX_VALUE {
            return Err(Error::usage(format!(
                "the value for `{name}` is larger than 1 MiB; nothing stored"
            )));
        }
    }
    if raw.ends_with(b"\n") {
        raw.pop();
        if raw.ends_with(b"\r") {
            raw.pop();
        }
    }
    let value = String::from_utf8(raw)
        .map_err(|_| Error::usage(format!("the value for `{name}` is not UTF-8 text")))?;
    if value.is_empty() {
        return Err(Error::usage(format!("the value for `{name}` is empty; nothing stored"))
            .with_hint("type it at the prompt, or pipe it in: `printf %s \"$VALUE\" | safex secret set NAME`"));
    }
    if value.contains('\0') {
        return Err(Error::usage(format!(
            "the value for `{name}` holds a NUL byte, which no environment variable can carry"
        )));
    }
    Ok(value)
}

/// One line from the terminal with echo off (restored whatever happens).
#[cfg(unix)]
fn read_hidden() -> Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let fd = std::io::stdin();
    let old =
        tcgetattr(&fd).map_err(|e| Error::io(format!("cannot read the terminal's mode: {e}")))?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&fd, OptionalActions::Flush, &quiet)
        .map_err(|e| Error::io(format!("cannot turn the terminal's echo off: {e}")))?;
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    let _ = tcsetattr(&fd, OptionalActions::Flush, &old);
    read.map_err(|e| Error::io(format!("cannot read the value: {e}")))?;
    Ok(line)
}

#[cfg(not(unix))]
fn read_hidden() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::io(format!("cannot read the value: {e}")))?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_exactly() {
        assert_eq!(
            Ref::parse("safex-secret:github"),
            Some(Ok(Ref::Store("github".into())))
        );
        assert_eq!(
            Ref::parse("safex-secret:file:/run/secrets/t"),
            Some(Ok(Ref::File("/run/secrets/t".into())))
        );
        assert!(matches!(Ref::parse("safex-secret:file:rel"), Some(Err(_))));
        assert!(matches!(Ref::parse("safex-secret:"), Some(Err(_))));
        assert!(matches!(Ref::parse("safex-secret:a b"), Some(Err(_))));
        assert!(matches!(Ref::parse("safex-secret:-x"), Some(Err(_))));
        assert_eq!(Ref::parse("ghp_x"), None);
        assert_eq!(Ref::parse(" safex-secret:x"), None);
        assert!(check_name("github.GITHUB_TOKEN").is_ok());
        assert!(check_name(&"a".repeat(129)).is_err());
    }
}
