//! References resolved at launch: an environment value that is exactly
//! `safex-secret:NAME` becomes the stored value, in the launched program's
//! environment only; safex's own argv, the lockfile, the audit log and its
//! messages keep the reference. An argument may carry a reference too; it
//! is passed the safest way the server takes it: a Postgres URL's password
//! as `PGPASSWORD` (libpq and node-postgres read it when the URL has none),
//! anything else in argv (readable by local users in `/proc`), with a
//! warning that says so. Nothing is looked up unless a reference is there.

use std::ffi::{OsStr, OsString};

use serde::Serialize;

use super::{PREFIX, Ref, name_byte, store::Store};
use crate::error::{Error, Kind, Result};

/// One secret a launch resolved: for the audit log (name, never value).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Used {
    pub name: String,
    /// `secret-service`, `keychain`, `credential-manager`, `file`.
    pub from: &'static str,
    /// `env GITHUB_TOKEN`, `args[3]`, `env PGPASSWORD (password of args[1])`.
    pub into: String,
}

/// What a launch does with its references.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The program's arguments with references replaced; `None`: unchanged.
    pub args: Option<Vec<OsString>>,
    /// Variables added to the program's environment (`PGPASSWORD`).
    pub env_added: Vec<(OsString, OsString)>,
    /// `(mark, value)` pairs the relay keeps out of answers.
    pub redact: Vec<(String, String)>,
    pub used: Vec<Used>,
    /// What to tell the user (an argv-only secret).
    pub warnings: Vec<String>,
}

/// Opened on first need, once per launch.
struct Lazy(Option<Store>);

impl Lazy {
    fn value(&mut self, r: &Ref, place: &str) -> Result<String> {
        match r {
            Ref::File(p) => super::file::read(p),
            Ref::Store(name) => {
                if self.0.is_none() {
                    self.0 = Some(Store::open().map_err(|e| {
                        let msg =
                            format!("cannot resolve `{PREFIX}{name}` ({place}): {}", e.message);
                        Error { message: msg, ..e }
                    })?);
                }
                let store = self.0.as_ref().expect("opened above");
                store.get(name)?.ok_or_else(|| {
                    Error::new(
                        Kind::Usage,
                        format!(
                            "`{PREFIX}{name}` ({place}) names no secret in {}",
                            super::store::shown()
                        ),
                    )
                    .with_hint(format!("store it with `safex secret set {name}`"))
                })
            }
        }
    }
}

fn bad(place: &str, why: String) -> Error {
    Error::usage(format!("{place}: {why}"))
}

/// Resolve every reference in `env` (in place: only variables the program
/// gets) and in `args`.
pub fn resolve(env: &mut [(OsString, OsString)], args: &[OsString]) -> Result<Resolved> {
    let mut out = Resolved::default();
    let has = |v: &OsStr| memchr::memmem::find(v.as_encoded_bytes(), PREFIX.as_bytes()).is_some();
    if !env.iter().any(|(_, v)| has(v)) && !args.iter().any(|a| has(a)) {
        return Ok(out);
    }
    let mut store = Lazy(None);
    for (k, v) in env.iter_mut() {
        let Some(text) = v.to_str().filter(|t| t.starts_with(PREFIX)) else {
            continue;
        };
        let name = k.to_string_lossy().into_owned();
        let place = format!("the environment variable `{name}`");
        let r = Ref::parse(text)
            .expect("starts with the prefix")
            .map_err(|why| bad(&place, why))?;
        let value = store.value(&r, &place)?;
        out.redact.push((name.clone(), value.clone()));
        out.used.push(Used {
            name: r.name(),
            from: r.source(),
            into: format!("env {name}"),
        });
        *v = OsString::from(value);
    }
    let mut new_args: Vec<OsString> = args.to_vec();
    let mut changed = false;
    for (i, a) in args.iter().enumerate() {
        let Some(text) = a.to_str().filter(|t| t.contains(PREFIX)) else {
            continue;
        };
        let place = format!("argument {} of the program", i + 1);
        if let Some((url, r)) = postgres_password(text) {
            let r = r.map_err(|why| bad(&place, why))?;
            if env.iter().any(|(k, _)| k == "PGPASSWORD") {
                return Err(bad(
                    &place,
                    "the URL's password is a reference and `PGPASSWORD` is set too; keep one"
                        .into(),
                ));
            }
            let value = store.value(&r, &place)?;
            out.redact.push((r.name(), value.clone()));
            out.env_added
                .push((OsString::from("PGPASSWORD"), OsString::from(value)));
            out.used.push(Used {
                name: r.name(),
                from: r.source(),
                into: format!("env PGPASSWORD (the password of args[{i}])"),
            });
            new_args[i] = OsString::from(url);
            changed = true;
            continue;
        }
        let mut rebuilt = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(PREFIX) {
            rebuilt.push_str(&rest[..at]);
            let tail = &rest[at..];
            // `safex-secret:file:/path` runs to the end of the argument;
            // a name ends at the first byte a name cannot hold.
            let len = if tail[PREFIX.len()..].starts_with("file:") {
                tail.len()
            } else {
                PREFIX.len()
                    + tail[PREFIX.len()..]
                        .bytes()
                        .take_while(|b| name_byte(*b))
                        .count()
            };
            let r = Ref::parse(&tail[..len])
                .expect("starts with the prefix")
                .map_err(|why| bad(&place, why))?;
            let value = store.value(&r, &place)?;
            out.redact.push((r.name(), value.clone()));
            out.used.push(Used {
                name: r.name(),
                from: r.source(),
                into: format!("args[{i}]"),
            });
            out.warnings.push(format!(
                "secret `{}` is passed in argument {} of the server's command line, which other local users can read (`/proc/<pid>/cmdline`, `ps`); pass it in the entry's `env` instead if the server reads it from there (docs/secrets.md)",
                r.name(),
                i + 1
            ));
            rebuilt.push_str(&value);
            rest = &tail[len..];
        }
        rebuilt.push_str(rest);
        new_args[i] = OsString::from(rebuilt);
        changed = true;
    }
    if changed {
        out.args = Some(new_args);
    }
    Ok(out)
}

/// `postgres[ql]://user:safex-secret:NAME@host/db`: the URL without its
/// password, and the reference.
fn postgres_password(arg: &str) -> Option<(String, std::result::Result<Ref, String>)> {
    let (head, password, tail) = super::postgres_password(arg)?;
    let r = Ref::parse(password)?;
    // `head` ends with the `:` between user and password.
    Some((format!("{}{tail}", &head[..head.len() - 1]), r))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, value).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!("{PREFIX}file:{}", p.display())
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn env_and_args() {
        let d = tempfile::tempdir().unwrap();
        let tok = secret_file(d.path(), "tok", "ghp_0123456789abcdefghij\n");
        let mut env = vec![
            (OsString::from("GITHUB_TOKEN"), OsString::from(&tok)),
            (OsString::from("HOME"), OsString::from("/home/u")),
        ];
        let args = os(&["--api-key", &tok, &format!("--k={tok}"), "plain"]);
        let r = resolve(&mut env, &args).unwrap();
        assert_eq!(env[0].1, "ghp_0123456789abcdefghij");
        assert_eq!(env[1].1, "/home/u");
        let new = r.args.unwrap();
        assert_eq!(new[1], "ghp_0123456789abcdefghij");
        assert_eq!(new[2], "--k=ghp_0123456789abcdefghij");
        assert_eq!(new[3], "plain");
        let into: Vec<&str> = r.used.iter().map(|u| u.into.as_str()).collect();
        assert_eq!(into, ["env GITHUB_TOKEN", "args[1]", "args[2]"]);
        assert!(
            r.used
                .iter()
                .all(|u| u.from == "file" && !u.name.contains("ghp_"))
        );
        assert_eq!(r.warnings.len(), 2);
        assert_eq!(r.redact.len(), 3);
    }

    #[test]
    fn postgres_url_passwords() {
        let (url, r) =
            postgres_password("postgresql://app:safex-secret:db.pw@h:5432/x?sslmode=require")
                .unwrap();
        assert_eq!(url, "postgresql://app@h:5432/x?sslmode=require");
        assert_eq!(r, Ok(Ref::Store("db.pw".into())));
        assert!(postgres_password("postgres://app:plain@h/x").is_none());
        assert!(postgres_password("mysql://app:safex-secret:x@h/x").is_none());
        assert!(postgres_password("postgres://safex-secret:x@h/x").is_none());
    }

    #[test]
    fn nothing_to_do_without_references_and_clear_errors_with_bad_ones() {
        let mut env = vec![(OsString::from("A"), OsString::from("b"))];
        let r = resolve(&mut env, &os(&["x"])).unwrap();
        assert!(r.args.is_none() && r.used.is_empty());
        let mut env = vec![(OsString::from("A"), OsString::from("safex-secret:bad name"))];
        let e = resolve(&mut env, &[]).unwrap_err();
        assert!(e.message.contains("`A`"), "{}", e.message);
        let mut env = vec![(
            OsString::from("A"),
            OsString::from("safex-secret:file:/nonexistent/x"),
        )];
        assert_eq!(resolve(&mut env, &[]).unwrap_err().kind, Kind::Io);
    }
}
