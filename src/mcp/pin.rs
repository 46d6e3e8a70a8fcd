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
    let pinner = Pinner {
        a,
        g,
        settings: &settings,
        lock: &lock,
        locker: &locker,
        command: &command,
        human: !g.quiet && !a.common.json,
    };
    let mut report = Report::default();
    for l in &loaded {
        pinner.file(l, base.as_mut(), &mut report);
    }
    if let Some(b) = &base
        && a.write
    {
        b.save(&bpath)?;
    }
    report.print(a, g, &command, note.as_deref());
    Ok(report.exit)
}

/// What one run reports: every entry, every file touched or left alone,
/// and the exit code of the first failure.
#[derive(Default)]
struct Report {
    entries: Vec<EntryOut>,
    files: Vec<FileOut>,
    exit: i32,
}

impl Report {
    /// The JSON document, or the summary lines on stderr.
    fn print(&self, a: &PinArgs, g: &Globals, command: &str, note: Option<&str>) {
        let (entries, files) = (&self.entries, &self.files);
        if a.common.json {
            let v = serde_json::json!({
                "version": 1,
                "write": a.write,
                "command": command,
                "entries": entries,
                "files": files,
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            return;
        }
        if g.quiet {
            return;
        }
        let rewritten = |e: &&EntryOut| matches!(e.status, "would-rewrite" | "rewritten");
        if let Some(n) = note
            && entries
                .iter()
                .filter(rewritten)
                .any(|e| e.argv.first().map(String::as_str) == Some(command))
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
}

/// What one run works with, for every file and entry.
struct Pinner<'a> {
    a: &'a PinArgs,
    g: &'a Globals,
    settings: &'a Settings,
    lock: &'a LockFile,
    locker: &'a Locker,
    /// How a rewritten entry calls safex.
    command: &'a str,
    /// Progress and outcomes on stderr (not with `-q` or `--json`).
    human: bool,
}

/// The edits accepted so far in one file, and what they make of it.
struct FileEdits {
    edits: Vec<Edit>,
    /// Every entry as the file should read back after the edits.
    expected: Vec<Server>,
    /// `(scope, server, old command hash, new command hash)` for the baseline.
    accepted: Vec<(String, String, String, String)>,
}

impl Pinner<'_> {
    /// One config file: each entry planned and locked, then the file
    /// rewritten once with every accepted edit (or, if that fails, none).
    fn file(&self, l: &Loaded, base: Option<&mut baseline::Baseline>, report: &mut Report) {
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
                if self.human {
                    eprintln!("error: {e}");
                }
                fo.error = Some(e);
                report.files.push(fo);
                report.exit = worse(report.exit, Kind::Io.exit_code());
                return;
            }
        };
        let unwritable = rewrite::why_unwritable(&l.target.path);
        let mut fe = FileEdits {
            edits: Vec::new(),
            expected: servers.iter().map(Server::values).collect(),
            accepted: Vec::new(),
        };
        let mut outs = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            let (out, code) = self.entry(l, i, s, unwritable.as_deref(), &mut fe, &mut fo);
            report.exit = worse(report.exit, code);
            outs.push(out);
        }
        let failure = if fe.edits.is_empty() {
            None
        } else {
            write_file(self.a, l, &fe.edits, &fe.expected, &mut fo)
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
            if self.human {
                eprintln!("error: {why}");
            }
            fo.error = Some(why);
            report.exit = worse(report.exit, code);
        } else if fo.changed {
            if let Some(b) = base {
                for (scope, name, old, new) in &fe.accepted {
                    b.accept(&file, scope, name, old, new);
                }
            }
            if self.human
                && let Some(b) = &fo.backup
            {
                eprintln!("wrote `{file}` (backup `{b}`)");
            }
        }
        if self.human {
            print_outcomes(&outs, client);
        }
        report.entries.extend(outs);
        if !fe.edits.is_empty() || fo.error.is_some() {
            report.files.push(fo);
        }
    }

    /// One entry (the `i`th of its file): its plan, the lock it needs, and
    /// the edits it adds to `fe`. Returns its report and its exit code (0
    /// when nothing failed).
    fn entry(
        &self,
        l: &Loaded,
        i: usize,
        s: &Server,
        unwritable: Option<&str>,
        fe: &mut FileEdits,
        fo: &mut FileOut,
    ) -> (EntryOut, i32) {
        let mut out = EntryOut {
            client: fo.client,
            file: fo.file.clone(),
            scope: s.scope.clone(),
            server: s.name.clone(),
            status: "unchanged",
            message: String::new(),
            argv: Vec::new(),
            env: Vec::new(),
            warnings: Vec::new(),
        };
        let act = match plan(self.g, self.settings, self.lock, l, s, self.command) {
            Err(e) => {
                out.status = "failed";
                out.message = match &e.hint {
                    Some(h) => format!("{}\nhint: {h}", e.message),
                    None => e.message.clone(),
                };
                return (out, e.exit_code());
            }
            Ok(Plan::Leave(status, why)) => {
                out.status = status;
                out.message = why;
                return (out, 0);
            }
            Ok(Plan::Act(act)) => act,
        };
        if let (false, Some(why)) = (act.edits.is_empty(), unwritable) {
            let e = format!("`{}` cannot be written: {why}", fo.file);
            out.status = "failed";
            out.message = format!("left as it was: {e}");
            fo.error = Some(e);
            return (out, Kind::Io.exit_code());
        }
        if let Some(args) = &act.lock_args
            && let Err((code, why)) = self.locker.lock(args)
        {
            out.status = if code == Kind::Policy.exit_code() {
                "refused"
            } else {
                "failed"
            };
            out.message = format!("left as it was: {why}");
            return (out, code);
        }
        out.status = match (act.edits.is_empty(), self.a.write) {
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
            fe.accepted.push((
                s.scope.clone(),
                s.name.clone(),
                s.command_hash(),
                new.command_hash(),
            ));
            fe.expected[i] = new;
            fe.edits.extend(act.edits);
        }
        out.argv = act.argv;
        (out, 0)
    }
}

/// Each entry's outcome on stderr, but the unchanged ones.
fn print_outcomes(outs: &[EntryOut], client: &str) {
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

/// What to do with one entry: left alone (not a launcher safex rewrites, a
/// spec that does not pin, a result safex would refuse), or its pinned
/// arguments, the lock they need and the edits that write them.
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
    let value = gui::shareable(&url).unwrap_or_else(|stripped| {
        r.warnings.push(format!(
            "the URL from `{source}` carries credentials; they are not written into the config: the client's environment must supply them (`.npmrc`, `.netrc` or the client's `env`)"
        ));
        stripped
    });
    if tool == Ecosystem::Npm
        && settings.npm.credential_for(&url).is_some()
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
