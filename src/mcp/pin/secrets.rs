//! `safex mcp pin --move-secrets`: each literal secret `safex mcp scan`
//! reports in an entry's `env` goes into the OS credential store under a
//! name derived from the entry (`<server>.<VARIABLE>`), and the value in
//! the file becomes its reference (`safex-secret:<name>`), which safex
//! resolves at launch. A Postgres URL's password in `args` moves too
//! (safex passes it as `PGPASSWORD`). Only entries that `safex` launches
//! (after this rewrite) get references: any other command would receive
//! the reference text. Secrets that only argv takes are reported, not
//! moved. A second run finds only references and changes nothing.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::error::Result;
use crate::mcp::model::{Edit, Server};
use crate::mcp::{Loaded, rewrite, secrets};
use crate::secret::{PREFIX, name_byte, store::Store};

/// The store and the names given out in this run.
pub(super) struct Mover {
    store: Store,
    write: bool,
    /// Names assigned in this run, with their values: the same token in two
    /// files gets one name; two tokens never share one.
    given: RefCell<BTreeMap<String, String>>,
}

/// What moving an entry's secrets adds to its rewrite.
#[derive(Default)]
pub(super) struct Moved {
    pub(super) edits: Vec<Edit>,
    /// `(variable, reference)`: the entry's new `env` values.
    pub(super) env: Vec<(String, String)>,
    /// `(old argument, new argument)`.
    pub(super) args: Vec<(String, String)>,
    /// `env `GITHUB_TOKEN` → `safex-secret:github.GITHUB_TOKEN``.
    pub(super) moved: Vec<String>,
    pub(super) warnings: Vec<String>,
    /// `(name, value)` not in the store yet: stored by [`Mover::commit`]
    /// once the entry's lock has succeeded.
    to_store: Vec<(String, String)>,
}

impl Mover {
    pub(super) fn open(write: bool) -> Result<Mover> {
        Ok(Mover {
            store: Store::open()?,
            write,
            given: RefCell::new(BTreeMap::new()),
        })
    }

    /// The entry is not launched by safex: its secrets stay, and why.
    pub(super) fn left(&self, s: &Server, why: &str) -> Vec<String> {
        let found = secrets::find(&s.env, &s.headers, &s.args);
        if found.is_empty() {
            return Vec::new();
        }
        let places: Vec<&str> = found.iter().map(|f| f.place.as_str()).collect();
        vec![format!(
            "secrets not moved ({}): the entry is not launched by safex ({why}), so it would receive the reference text instead of the value",
            places.join(", ")
        )]
    }

    /// Move the literal secrets of `s`, an entry safex launches.
    pub(super) fn entry(&self, l: &Loaded, s: &Server) -> Result<Moved> {
        let mut out = Moved::default();
        let Some(spans) = &s.spans else {
            return Ok(out);
        };
        let format = l.target.format;
        for (k, v) in &s.env {
            if !secrets::is_secret(k, v) {
                continue;
            }
            let Some((_, at)) = spans.env_values.iter().find(|(name, _)| name == k) else {
                out.warnings.push(format!(
                    "env `{k}` holds a secret that safex does not move in this file's layout; move it by hand: `safex secret set NAME`, then write `{PREFIX}NAME` as its value"
                ));
                continue;
            };
            let name = self.place(&s.name, k, v, &mut out.to_store)?;
            let reference = format!("{PREFIX}{name}");
            out.edits.push(Edit {
                range: at.span.clone(),
                text: rewrite::render(format, &reference, at.quote),
            });
            out.moved.push(format!("env `{k}` → `{reference}`"));
            out.env.push((k.clone(), reference));
        }
        for hit in secrets::in_args(&s.args) {
            let arg = &s.args[hit.index];
            if let Some((head, password, tail)) = postgres_password(arg) {
                let name = self.place(&s.name, "PGPASSWORD", password, &mut out.to_store)?;
                let new = format!("{head}{PREFIX}{name}{tail}");
                let at = &spans.args[hit.index];
                out.edits.push(Edit {
                    range: at.span.clone(),
                    text: rewrite::render(format, &new, at.quote),
                });
                out.moved.push(format!(
                    "the password in args[{}] → `{PREFIX}{name}` (passed as `PGPASSWORD`)",
                    hit.index
                ));
                out.args.push((arg.clone(), new));
            } else {
                out.warnings.push(format!(
                    "args[{}] (`{}`) holds a secret this server takes only on its command line; safex would still pass it there, readable by local users: move it by hand if the server has an environment variable for it (docs/secrets.md)",
                    hit.index, hit.masked_arg
                ));
            }
        }
        Ok(out)
    }

    /// With `--write`, store what `entry` found new.
    pub(super) fn commit(&self, moved: &Moved) -> Result<()> {
        if self.write {
            for (name, value) in &moved.to_store {
                self.store.set(name, value)?;
            }
        }
        Ok(())
    }

    /// The name `value` is stored under: `<server>.<var>`, or the first of
    /// `-2`, `-3`, ... that is free or holds this value already.
    fn place(
        &self,
        server: &str,
        var: &str,
        value: &str,
        to_store: &mut Vec<(String, String)>,
    ) -> Result<String> {
        let base = derive(server, var);
        let mut n = 1;
        loop {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let given = self.given.borrow().get(&name).cloned();
            let held = match given {
                Some(v) => Some(v),
                None => self.store.get(&name)?,
            };
            match held {
                Some(v) if v == value => {
                    self.given.borrow_mut().insert(name.clone(), v);
                    return Ok(name);
                }
                Some(_) => n += 1,
                None => {
                    to_store.push((name.clone(), value.to_owned()));
                    self.given
                        .borrow_mut()
                        .insert(name.clone(), value.to_owned());
                    return Ok(name);
                }
            }
        }
    }
}

/// `<server>.<var>` with every byte a name cannot hold as `-`.
fn derive(server: &str, var: &str) -> String {
    let clean = |s: &str| -> String {
        s.bytes()
            .map(|b| if name_byte(b) { b as char } else { '-' })
            .collect::<String>()
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_owned()
    };
    let server = clean(server);
    let var = clean(var);
    let mut name = match (server.is_empty(), var.is_empty()) {
        (false, false) => format!("{server}.{var}"),
        (true, false) => var,
        (false, true) => server,
        (true, true) => "secret".to_owned(),
    };
    name.truncate(100);
    name
}

/// A Postgres URL's literal password (a reference is not moved again).
fn postgres_password(arg: &str) -> Option<(&str, &str, &str)> {
    crate::secret::postgres_password(arg).filter(|(_, pw, _)| !pw.starts_with(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_are_valid() {
        assert_eq!(derive("github", "GITHUB_TOKEN"), "github.GITHUB_TOKEN");
        assert_eq!(derive("My Server!", "API_KEY"), "My-Server.API_KEY");
        assert_eq!(derive("@acme/x", "K"), "acme-x.K");
        assert_eq!(derive("", ""), "secret");
        for n in [derive("ü", "K"), derive("a", &"K".repeat(300))] {
            assert!(crate::secret::check_name(&n).is_ok(), "{n}");
        }
    }

    #[test]
    fn postgres_passwords_split() {
        assert_eq!(
            postgres_password("postgresql://app:pw@db:5432/x"),
            Some(("postgresql://app:", "pw", "@db:5432/x"))
        );
        assert_eq!(postgres_password("postgres://app@db/x"), None);
        assert_eq!(postgres_password("mysql://a:b@db/x"), None);
        assert_eq!(postgres_password("postgres://a:safex-secret:x@db/x"), None);
    }
}
