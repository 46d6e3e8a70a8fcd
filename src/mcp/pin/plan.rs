//! What `safex mcp pin` does with one entry: leave it (and why), or pin
//! each spec to the version it resolves to now, check that `safex` accepts
//! the result, and say which lock it needs, which edits write it and which
//! registry to record for a GUI client.

use std::ffi::OsString;

use crate::cli::{NpxArgs, UvxArgs};
use crate::ecosystem::Ecosystem;
use crate::error::{Error, Result};
use crate::lock::LockFile;
use crate::mcp::launch::{self, Launcher};
use crate::mcp::model::{self, Edit, Server};
use crate::mcp::{Loaded, gui, rewrite};
use crate::session::Globals;
use crate::settings::{Overrides, Settings};
use crate::spelling::Spelling;

/// What to do with one entry. Built the same way for a dry run and for
/// `--write`, so that what the dry run announces is what the write does.
pub(super) enum Plan {
    /// Nothing to do, and why.
    Leave(&'static str, String),
    /// Run `safex lock` with these arguments (none: the entry is locked
    /// already), then apply the edits (none when only the lock was missing).
    Act(Act),
}

pub(super) struct Act {
    pub(super) lock_args: Option<Vec<String>>,
    pub(super) edits: Vec<Edit>,
    pub(super) argv: Vec<String>,
    /// `NAME=value` added to `env`.
    pub(super) env: Vec<(String, String)>,
    pub(super) warnings: Vec<String>,
    pub(super) what: String,
}

/// What to do with one entry: left alone (not a launcher safex rewrites, a
/// spec that does not pin, a result safex would refuse), or its pinned
/// arguments, the lock they need and the edits that write them.
pub(super) fn plan(
    g: &Globals,
    settings: &Settings,
    lock: &LockFile,
    l: &Loaded,
    s: &Server,
    command: &str,
) -> Result<Plan> {
    let launcher = launch::classify(s.command.as_deref(), &s.args, s.url.as_deref());
    let Some((spelling, offset)) = launcher.spelled() else {
        return Ok(Plan::Leave(
            "skipped",
            format!("launched by `{launcher}`, which `safex mcp pin` does not rewrite"),
        ));
    };
    let Some(spans) = &s.spans else {
        return Ok(Plan::Leave(
            "skipped",
            "its layout is not one safex rewrites; edit it by hand".into(),
        ));
    };
    let tool = spelling.ecosystem;
    let tool_args = &s.args[offset..];
    let p = match launch::plan(spelling, tool_args) {
        Ok(p) => p,
        Err(why) => return Ok(Plan::Leave("skipped", why)),
    };
    let settings_here = entry_settings(g, spelling, tool_args)?;
    let settings = settings_here.as_ref().unwrap_or(settings);
    let pinned = match pin_all(g, settings, tool, &p, tool_args)? {
        Ok(pinned) => pinned,
        Err(why) => return Ok(Plan::Leave("skipped", why)),
    };
    if let Some(why) = refused_by_safex(spelling, &pinned.args) {
        return Ok(Plan::Leave("skipped", why));
    }
    let is_safex = matches!(launcher, Launcher::Safex { .. });
    let words = spelling.words.iter().map(|w| w.to_string());
    let mut argv = vec![if is_safex {
        s.command.clone().unwrap_or_default()
    } else {
        command.to_owned()
    }];
    argv.extend(words.clone().chain(pinned.args.iter().cloned()));
    let lock_args: Vec<String> = words
        .chain(pinned.args[..p.tool_args].iter().cloned())
        .collect();
    let locked = match tool {
        Ecosystem::Npm => lock.find::<crate::lock::NpmEntry>(&pinned.keys).is_some(),
        Ecosystem::Pypi => lock.find::<crate::lock::PypiEntry>(&pinned.keys).is_some(),
    };
    let Recorded {
        env,
        edit: env_edit,
        warnings,
        note: recorded,
    } = record_registry(settings, tool, &pinned.keys, s, spans)?;
    let edits = if is_safex && pinned.changed.is_empty() {
        Vec::new()
    } else {
        rewrite::edits(
            l.target.format,
            &l.text,
            spans,
            &launcher,
            spelling.words[0],
            offset,
            &p.specs,
            &pinned.args,
            command,
        )
    };
    let edits: Vec<Edit> = edits.into_iter().chain(env_edit).collect();
    let Some(what) = pinned.describe(is_safex, locked, edits.is_empty()) else {
        return Ok(Plan::Leave("unchanged", "pinned and locked".into()));
    };
    let what = std::iter::once(what)
        .chain(recorded)
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Plan::Act(Act {
        lock_args: (!is_safex || !pinned.changed.is_empty() || !locked).then_some(lock_args),
        edits,
        argv,
        env,
        warnings,
        what,
    }))
}

/// An entry's tool arguments with every spec pinned.
struct Pinned {
    args: Vec<String>,
    /// The lock keys of the pinned roots.
    keys: Vec<String>,
    /// `` `old` → `new` `` for each spec that was not pinned already.
    changed: Vec<String>,
}

impl Pinned {
    /// The entry's report line, or `None` when there is nothing to do.
    fn describe(&self, is_safex: bool, locked: bool, no_edits: bool) -> Option<String> {
        Some(if !self.changed.is_empty() {
            self.changed.join(", ")
        } else if !is_safex {
            "launched through safex".to_owned()
        } else if !locked {
            format!("pinned; locking `{}`", self.keys.join(" "))
        } else if no_edits {
            return None;
        } else {
            "pinned and locked".to_owned()
        })
    }
}

/// Pin every spec of `p` in `tool_args`; `Err(why)` when one cannot be.
fn pin_all(
    g: &Globals,
    settings: &Settings,
    tool: Ecosystem,
    p: &launch::Plan,
    tool_args: &[String],
) -> Result<std::result::Result<Pinned, String>> {
    let mut pinned = Pinned {
        args: tool_args.to_vec(),
        keys: Vec::new(),
        changed: Vec::new(),
    };
    for sp in &p.specs {
        // A session of its own: its lookups get their own deadlines.
        let session = crate::session::Session::with(g, settings.clone());
        let (exact, key) = match pin_spec(&session, tool, &sp.spec)? {
            Ok(x) => x,
            Err(why) => return Ok(Err(why)),
        };
        if exact != sp.spec {
            pinned.changed.push(format!("`{}` → `{exact}`", sp.spec));
        }
        pinned.args[sp.index] = format!("{}{exact}", sp.prefix);
        pinned.keys.push(key);
    }
    Ok(Ok(pinned))
}

/// Why `safex <spelling>` would refuse the rewritten arguments, if it
/// would: the rewritten entry must be one `safex` accepts as it stands.
fn refused_by_safex(spelling: &Spelling, args: &[String]) -> Option<String> {
    let os: Vec<OsString> = args.iter().map(OsString::from).collect();
    let parsed = match spelling.ecosystem {
        Ecosystem::Npm => crate::cli::parse_as::<NpxArgs>(spelling, &os).map(|_| ()),
        Ecosystem::Pypi => crate::cli::parse_as::<UvxArgs>(spelling, &os).map(|_| ()),
    };
    parsed
        .err()
        .map(|e| format!("`safex {}` would refuse it: {}", spelling.name(), e.message))
}

/// What [`record_registry`] adds to an entry.
#[derive(Default)]
struct Recorded {
    /// `(NAME, value)` added to `env`.
    env: Vec<(String, String)>,
    edit: Option<Edit>,
    /// What the user must do by hand.
    warnings: Vec<String>,
    /// For the entry's report line: what was recorded, and why.
    note: Option<String>,
}

/// The registry (npm) or index (PyPI) the entry was pinned against, as an
/// `env` addition when a GUI client's safex would not know it
/// ([`gui::records_registry`]), never with credentials. Nothing when the
/// entry's `env` names that variable already.
fn record_registry(
    settings: &Settings,
    tool: Ecosystem,
    keys: &[String],
    s: &Server,
    spans: &model::Spans,
) -> Result<Recorded> {
    let mut r = Recorded::default();
    let (var, chosen) = match tool {
        Ecosystem::Npm => {
            let scoped = keys.iter().any(|k| {
                k.split_once('/')
                    .is_some_and(|(scope, _)| settings.npm.scoped.contains_key(scope))
            });
            // A scoped registry comes from `.npmrc`, which the GUI reads too.
            // Configured, else npm's answer (asked here as the lock asks it).
            let chosen = if scoped {
                None
            } else {
                settings.npm.default_registry().ok().cloned()
            };
            (crate::env_vars::SAFEX_NPM_REGISTRY, chosen)
        }
        Ecosystem::Pypi => (
            crate::env_vars::SAFEX_PYPI_INDEX,
            crate::pypi::config::PypiConfig::load(
                settings.pypi_index.clone(),
                settings.policy.allowed_hosts.as_deref(),
            )?
            .index,
        ),
    };
    let Some((url, source)) = chosen.filter(|(_, src)| gui::records_registry(src)) else {
        return Ok(r);
    };
    if s.env.iter().any(|(k, _)| k == var) {
        return Ok(r);
    }
    let value = gui::shareable(url.url()).unwrap_or_else(|stripped| {
        r.warnings.push(format!(
            "the URL from `{source}` carries credentials; they are not written into the config: the client's environment must supply them (`.npmrc`, `.netrc` or the client's `env`)"
        ));
        stripped
    });
    if tool == Ecosystem::Npm
        && settings.npm.credential_for(url.url()).is_some()
        && !settings.npm.secret_vars.is_empty()
    {
        r.warnings.push(format!(
            "`.npmrc` takes the registry's credentials from `{}`: a GUI client's environment needs them too",
            settings.npm.secret_vars.join("`, `")
        ));
    }
    let Some(slot) = &spans.env else {
        r.warnings.push(format!(
            "the registry came from `{source}`, which a GUI client's environment does not have: add `{var} = \"{value}\"` to the entry's `env` by hand"
        ));
        return Ok(r);
    };
    r.edit = Some(slot.edit(var, &value));
    r.note = Some(format!(
        "records `{var}={value}` in `env` (from `{source}`, which a GUI client's environment does not have)"
    ));
    r.env.push((var.to_owned(), value));
    Ok(r)
}

/// Settings for an entry that names its own registry or index.
fn entry_settings(g: &Globals, spelling: &Spelling, args: &[String]) -> Result<Option<Settings>> {
    let os: Vec<OsString> = args.iter().map(OsString::from).collect();
    let over = match spelling.ecosystem {
        Ecosystem::Npm => crate::cli::parse_as::<NpxArgs>(spelling, &os)
            .ok()
            .and_then(|a| a.registry)
            .map(|r| Overrides {
                registry: Some(r),
                ..Default::default()
            }),
        Ecosystem::Pypi => crate::cli::parse_as::<UvxArgs>(spelling, &os)
            .ok()
            .and_then(|a| a.index_url)
            .map(|i| Overrides {
                index_url: Some(i),
                ..Default::default()
            }),
    };
    match over {
        Some(o) => Settings::load(&Overrides {
            quiet: true,
            policy: g.policy.clone(),
            ..o
        })
        .map(Some),
        None => Ok(None),
    }
}

/// The exact spec for `raw` (as typed, with the version made exact) and its
/// lock root; `Err(why)` when it cannot be pinned.
fn pin_spec(
    session: &crate::session::Session,
    tool: Ecosystem,
    raw: &str,
) -> Result<std::result::Result<(String, String), String>> {
    let settings = &session.settings;
    match tool {
        Ecosystem::Npm => match crate::npm::spec::parse_root(raw) {
            Err(e) => Ok(Err(e.message)),
            Ok(Ok(spec)) => Ok(Ok((raw.to_owned(), spec.to_string()))),
            Ok(Err(crate::npm::spec::Unpinned::Floating { name, requested })) => {
                settings.npm.registry_for(name.as_str())?;
                let Some(v) =
                    crate::npm::pipeline::current_version(session, &name, requested.as_deref())
                else {
                    return Err(Error::registry(format!(
                        "cannot find the version `{}` resolves to on the registry",
                        crate::redact::shown(raw)
                    )));
                };
                let typed = crate::npm::spec::split_name_version(raw).0;
                Ok(Ok((format!("{typed}@{v}"), format!("{name}@{v}"))))
            }
        },
        Ecosystem::Pypi => match crate::pypi::spec::parse_root(raw) {
            Err(e) => Ok(Err(e.message)),
            Ok(Ok(spec)) => Ok(Ok((raw.to_owned(), spec.to_string()))),
            Ok(Err(f)) => {
                let Some(v) = crate::pypi::pipeline::current_version(session, &f.name) else {
                    return Err(Error::registry(format!(
                        "cannot find the newest version of `{}` on the index",
                        f.name
                    ))
                    .with_hint(format!(
                        "is an index configured and reachable? set `{}` or pip's `index-url`",
                        crate::env_vars::SAFEX_PYPI_INDEX
                    )));
                };
                if let Some(req) = f
                    .requested
                    .as_deref()
                    .filter(|r| !matches!(*r, "@latest" | "==latest"))
                    && !satisfies(req, &v)
                {
                    return Ok(Err(format!(
                        "the newest version `{v}` is outside `{req}`; pin it by hand"
                    )));
                }
                let typed = raw.trim();
                let end = typed
                    .find(['=', '<', '>', '~', '!', '@', ' ', ';'])
                    .unwrap_or(typed.len());
                let exact = format!("{}=={v}", &typed[..end]);
                let key = match crate::pypi::spec::parse_root(&exact) {
                    Ok(Ok(spec)) => spec.to_string(),
                    _ => return Ok(Err(format!("`{exact}` is not a valid pin"))),
                };
                Ok(Ok((exact, key)))
            }
        },
    }
}

fn satisfies(req: &str, v: &str) -> bool {
    use std::str::FromStr;
    let (Ok(spec), Ok(ver)) = (
        pep440_rs::VersionSpecifiers::from_str(req),
        pep440_rs::Version::from_str(v),
    ) else {
        return false;
    };
    spec.contains(&ver)
}
