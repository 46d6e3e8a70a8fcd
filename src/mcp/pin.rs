//! `safex mcp pin`: rewrite `npx`/`uvx` entries to `safex npx <name>@<exact>`
//! / `safex uvx <name>==<exact>`, each pinned root locked in the same run.
//!
//! The exact version is what the entry's spec resolves to now on the
//! configured registry. Locking runs this same binary (`safex lock ...`), so
//! the policy (cooldown, deny lists, known-compromised versions) and every
//! check of a cold launch (hashes, archive safety, install-time code) apply
//! exactly as at launch; an entry that is refused is reported and left as it
//! was. A dry run makes the same plan and runs the same lock, into a scratch
//! copy of the lockfile, and writes no config: what it announces is what
//! `--write` does. A file its client could not read (strict JSON), or one
//! that cannot be written, is reported and left alone; the others are still
//! done.
//!
//! Entries are written for GUI clients (`gui`): the absolute path of safex
//! when `safex` is not on their minimal `PATH`, and the registry in `env`
//! when only the shell knew it.

use std::ffi::OsString;
use std::path::Path;

use serde::Serialize;

use crate::cli::{NpxArgs, UvxArgs};
use crate::ecosystem::Ecosystem;
use crate::error::{Error, Kind, Result};
use crate::lock::LockFile;
use crate::mcp::clients;
use crate::mcp::launch::{self, Launcher};
use crate::mcp::locker::Locker;
use crate::mcp::model::{self, Edit, Server};
use crate::mcp::{Loaded, PinArgs, baseline, diff, gui, rewrite};
use crate::session::Globals;
use crate::settings::{Overrides, Settings};
use crate::spelling::Spelling;

#[derive(Debug, Serialize)]
struct EntryOut {
    client: &'static str,
    file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
    server: String,
    /// `rewritten`, `would-rewrite`, `locked`, `would-lock`, `unchanged`,
    /// `skipped` (not something pin handles), `refused` (by the policy),
    /// `failed`.
    status: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    argv: Vec<String>,
    /// Variables added to the entry's `env` (`NAME=value`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    /// What the user has to do by hand for the entry to start from a GUI
    /// client.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct FileOut {
    client: &'static str,
    file: String,
    changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    diff: String,
    /// Why the file was left alone: it cannot be read as its client reads
    /// it, cannot be written, or the rewrite did not read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What to do with one entry. Built the same way for a dry run and for
/// `--write`, so that what the dry run announces is what the write does.
enum Plan {
    /// Nothing to do, and why.
    Leave(&'static str, String),
    /// Run `safex lock` with these arguments (none: the entry is locked
    /// already), then apply the edits (none when only the lock was missing).
    Act(Act),
}

struct Act {
    lock_args: Option<Vec<String>>,
    edits: Vec<Edit>,
    argv: Vec<String>,
    /// `NAME=value` added to `env`.
    env: Vec<(String, String)>,
    warnings: Vec<String>,
    what: String,
}

pub fn run(a: &PinArgs, g: &Globals) -> Result<i32> {
    let settings = crate::mcp::settings(g)?;
    let lock = LockFile::read(&settings.lockfile)?;
    let loaded = crate::mcp::load(&a.common)?;
    let bpath = crate::mcp::baseline_path(&a.common)?;
    let mut base = baseline::load(&bpath)?;
    let locker = Locker::new(g, a.write, &settings.lockfile)?;
    let (command, note) = gui::safex_command();
    let human = !g.quiet && !a.common.json;
    let (mut entries, mut files) = (Vec::new(), Vec::new());
    let mut exit = 0;
    for l in &loaded {
        let file = l.target.path.display().to_string();
        let client = l.target.client.id();
        let mut fo = FileOut {
            client,
            file: file.clone(),
            changed: false,
            backup: None,
            diff: String::new(),
            error: None,
        };
        let servers = match &l.servers {
            Ok(s) => s,
            Err(why) => {
                let e = file_error(&file, why, "fix it and run again");
                if human {
                    eprintln!("error: {e}");
                }
                fo.error = Some(e);
                files.push(fo);
                exit = worse(exit, Kind::Io.exit_code());
                continue;
            }
        };
        let unwritable = rewrite::why_unwritable(&l.target.path);
        let mut edits = Vec::new();
        let mut expected: Vec<Server> = servers.iter().map(Server::values).collect();
        let mut accepted = Vec::new();
        let mut outs = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            let mut out = EntryOut {
                client,
                file: file.clone(),
                scope: s.scope.clone(),
                server: s.name.clone(),
                status: "unchanged",
                message: String::new(),
                argv: Vec::new(),
                env: Vec::new(),
                warnings: Vec::new(),
            };
            let act = match plan(g, &settings, &lock, l, s, &command) {
                Err(e) => {
                    out.status = "failed";
                    out.message = match &e.hint {
                        Some(h) => format!("{}\nhint: {h}", e.message),
                        None => e.message.clone(),
                    };
                    exit = worse(exit, e.exit_code());
                    outs.push(out);
                    continue;
                }
                Ok(Plan::Leave(status, why)) => {
                    out.status = status;
                    out.message = why;
                    outs.push(out);
                    continue;
                }
                Ok(Plan::Act(act)) => act,
            };
            if let (false, Some(why)) = (act.edits.is_empty(), &unwritable) {
                let e = format!("`{file}` cannot be written: {why}");
                out.status = "failed";
                out.message = format!("left as it was: {e}");
                fo.error = Some(e);
                exit = worse(exit, Kind::Io.exit_code());
                outs.push(out);
                continue;
            }
            if let Some(args) = &act.lock_args
                && let Err((code, why)) = locker.lock(args)
            {
                out.status = if code == Kind::Policy.exit_code() {
                    "refused"
                } else {
                    "failed"
                };
                out.message = format!("left as it was: {why}");
                exit = worse(exit, code);
                outs.push(out);
                continue;
            }
            out.status = match (act.edits.is_empty(), a.write) {
                (true, true) => "locked",
                (true, false) => "would-lock",
                (false, true) => "rewritten",
                (false, false) => "would-rewrite",
            };
            out.message = act.what;
            out.warnings = act.warnings;
            out.env = act.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !act.edits.is_empty() {
                let mut new = s.values();
                new.command = act.argv.first().cloned();
                new.args = act.argv[1..].to_vec();
                new.env.extend(act.env.iter().cloned());
                accepted.push((
                    s.scope.clone(),
                    s.name.clone(),
                    s.command_hash(),
                    new.command_hash(),
                ));
                expected[i] = new;
                edits.extend(act.edits);
            }
            out.argv = act.argv;
            outs.push(out);
        }
        let failure = if edits.is_empty() {
            None
        } else {
            write_file(a, l, &edits, &expected, &mut fo)
        };
        if let Some((code, why)) = failure {
            // Nothing was written: what was to be rewritten is not.
            for o in outs
                .iter_mut()
                .filter(|o| matches!(o.status, "rewritten" | "would-rewrite"))
            {
                o.status = "failed";
                o.message = format!("left as it was: {why}");
            }
            if human {
                eprintln!("error: {why}");
            }
            fo.error = Some(why);
            exit = worse(exit, code);
        } else if fo.changed {
            if let Some(b) = &mut base {
                for (scope, name, old, new) in &accepted {
                    b.accept(&file, scope, name, old, new);
                }
            }
            if human && let Some(b) = &fo.backup {
                eprintln!("wrote `{file}` (backup `{b}`)");
            }
        }
        if human {
            for out in outs.iter().filter(|o| o.status != "unchanged") {
                eprintln!(
                    "{} `{}` ({client}): {}{}",
                    out.status,
                    out.server,
                    out.message,
                    shown_argv(&out.argv)
                );
                for w in &out.warnings {
                    eprintln!("  warning: {w}");
                }
            }
        }
        entries.extend(outs);
        if !edits.is_empty() || fo.error.is_some() {
            files.push(fo);
        }
    }
    if let Some(b) = &base
        && a.write
    {
        b.save(&bpath)?;
    }
    if a.common.json {
        let v = serde_json::json!({
            "version": 1,
            "write": a.write,
            "command": command,
            "entries": entries,
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if !g.quiet {
        let rewritten = |e: &&EntryOut| matches!(e.status, "would-rewrite" | "rewritten");
        if let Some(n) = &note
            && entries
                .iter()
                .filter(rewritten)
                .any(|e| e.argv.first() == Some(&command))
        {
            eprintln!("note: {n}");
        }
        let n = entries.iter().filter(rewritten).count();
        let written = files.iter().filter(|f| f.changed).count();
        if a.write {
            eprintln!("{n} entries rewritten in {written} files");
        } else if n > 0 {
            eprintln!(
                "dry run: {n} entries would be rewritten in {} files; nothing was written\nhint: run `safex mcp pin --write` to apply (a backup of each file is kept next to it)",
                files.iter().filter(|f| f.error.is_none()).count()
            );
        } else {
            eprintln!("nothing to rewrite");
        }
    }
    Ok(exit)
}

/// A file left alone, for the report: ``file` is not valid JSON for
/// Claude Desktop: trailing comma at line 3 col 14; fix it and run again`.
fn file_error(file: &str, why: &clients::Unread, todo: &str) -> String {
    match why {
        clients::Unread::Invalid(why) => format!("`{file}` is {why}; {todo}"),
        clients::Unread::Failed(why) => format!("`{file}` cannot be read: {why}; {todo}"),
    }
}

/// Check that the edited text reads back as intended, show the diff, and
/// with `--write` put it in place. `Some((exit code, why))` when nothing
/// was written.
fn write_file(
    a: &PinArgs,
    l: &Loaded,
    edits: &[Edit],
    expected: &[Server],
    fo: &mut FileOut,
) -> Option<(i32, String)> {
    let new_text = model::apply(&l.text, edits);
    let reread = clients::read(&l.target, &new_text)
        .map(|v| v.iter().map(Server::values).collect::<Vec<_>>());
    if reread.as_deref() != Ok(expected) {
        return Some((
            Kind::Internal.exit_code(),
            format!(
                "the rewrite of `{}` does not read back as intended; nothing written (please report this with the entry that failed)",
                fo.file
            ),
        ));
    }
    fo.diff = diff::unified(
        &label(&l.target.path, a.common.root.as_deref()),
        &l.text,
        edits,
    );
    if !a.common.json {
        print!("{}", fo.diff);
    }
    if !a.write {
        return None;
    }
    match rewrite::write(&l.target.path, &l.text, &new_text) {
        Ok(backup) => {
            fo.changed = true;
            fo.backup = Some(backup.display().to_string());
            None
        }
        Err(e) => Some((
            e.exit_code(),
            match &e.hint {
                Some(h) => format!("{}; {h}", e.message),
                None => e.message,
            },
        )),
    }
}

/// The first failure sets the code; a policy refusal is the usual one.
fn worse(cur: i32, new: i32) -> i32 {
    if cur == 0 { new } else { cur }
}

fn shown_argv(argv: &[String]) -> String {
    if argv.is_empty() {
        return String::new();
    }
    format!(": `{}`", argv.join(" "))
}

fn label(path: &Path, root: Option<&Path>) -> String {
    let p = root
        .and_then(|r| path.strip_prefix(r).ok())
        .map(|p| Path::new("~").join(p));
    p.as_deref()
        .unwrap_or(path)
        .display()
        .to_string()
        .replace('\\', "/")
}

fn plan(
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
    let mut new_args = tool_args.to_vec();
    let mut keys = Vec::new();
    let mut pinned_any = Vec::new();
    for sp in &p.specs {
        // A session of its own: its lookups get their own deadlines.
        let session = crate::session::Session::with(g, settings.clone());
        let (pinned, key) = match pin_spec(&session, tool, &sp.spec)? {
            Ok(x) => x,
            Err(why) => return Ok(Plan::Leave("skipped", why)),
        };
        if pinned != sp.spec {
            pinned_any.push(format!("`{}` → `{pinned}`", sp.spec));
        }
        new_args[sp.index] = format!("{}{pinned}", sp.prefix, pinned = pinned);
        keys.push(key);
    }
    // The rewritten entry must be one `safex` accepts as it stands.
    let os: Vec<OsString> = new_args.iter().map(OsString::from).collect();
    let parsed = match tool {
        Ecosystem::Npm => crate::cli::parse_as::<NpxArgs>(spelling, &os).map(|_| ()),
        Ecosystem::Pypi => crate::cli::parse_as::<UvxArgs>(spelling, &os).map(|_| ()),
    };
    if let Err(e) = parsed {
        return Ok(Plan::Leave(
            "skipped",
            format!("`safex {}` would refuse it: {}", spelling.name(), e.message),
        ));
    }
    let is_safex = matches!(launcher, Launcher::Safex { .. });
    let words = spelling.words.iter().map(|w| w.to_string());
    let mut argv = vec![if is_safex {
        s.command.clone().unwrap_or_default()
    } else {
        command.to_owned()
    }];
    argv.extend(words.clone().chain(new_args.iter().cloned()));
    let lock_args: Vec<String> = words
        .chain(new_args[..p.tool_args].iter().cloned())
        .collect();
    let locked = match tool {
        Ecosystem::Npm => lock.find::<crate::lock::NpmEntry>(&keys).is_some(),
        Ecosystem::Pypi => lock.find::<crate::lock::PypiEntry>(&keys).is_some(),
    };
    let Recorded {
        env,
        edit: env_edit,
        warnings,
        note: recorded,
    } = record_registry(settings, tool, &keys, s, spans)?;
    let edits = if is_safex && pinned_any.is_empty() {
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
            &new_args,
            command,
        )
    };
    let edits: Vec<Edit> = edits.into_iter().chain(env_edit).collect();
    let what = if !pinned_any.is_empty() {
        pinned_any.join(", ")
    } else if !is_safex {
        "launched through safex".to_owned()
    } else if !locked {
        format!("pinned; locking `{}`", keys.join(" "))
    } else if edits.is_empty() {
        return Ok(Plan::Leave("unchanged", "pinned and locked".into()));
    } else {
        "pinned and locked".to_owned()
    };
    let what = std::iter::once(what)
        .chain(recorded)
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Plan::Act(Act {
        lock_args: (!is_safex || !pinned_any.is_empty() || !locked).then_some(lock_args),
        edits,
        argv,
        env,
        warnings,
        what,
    }))
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
