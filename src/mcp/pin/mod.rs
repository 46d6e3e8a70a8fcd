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

mod plan;
mod secrets;

use std::path::Path;

use serde::Serialize;

use crate::error::{Kind, Result};
use crate::lock::LockFile;
use crate::mcp::clients;
use crate::mcp::locker::Locker;
use crate::mcp::model::{self, Edit, Server};
use crate::mcp::{Loaded, PinArgs, baseline, diff, gui, rewrite};
use crate::session::Globals;
use crate::settings::Settings;
use plan::{Plan, plan};

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
    /// Secrets moved into the credential store (`--move-secrets`): where
    /// each was and the reference written instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<String>,
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

pub fn run(a: &PinArgs, g: &Globals) -> Result<i32> {
    let settings = crate::mcp::settings(g)?;
    let lock = LockFile::read(&settings.lockfile)?;
    let loaded = crate::mcp::load(&a.common)?;
    let bpath = crate::mcp::baseline_path(&a.common)?;
    let mut base = baseline::load(&bpath)?;
    let locker = Locker::new(g, a.write, &settings.lockfile)?;
    let (command, note) = gui::safex_command();
    let mover = if a.move_secrets {
        Some(secrets::Mover::open(a.write)?)
    } else {
        None
    };
    let pinner = Pinner {
        mover: mover.as_ref(),
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
    /// `--move-secrets`: the credential store and the names given out.
    mover: Option<&'a secrets::Mover>,
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
            if let Some(b) = &fo.backup
                && outs.iter().any(|o| !o.secrets.is_empty())
            {
                // The backup holds the secrets that moved: for its owner only.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(b, std::fs::Permissions::from_mode(0o600));
                }
                if self.human {
                    eprintln!(
                        "note: the backup `{b}` still holds the moved secrets in plain text (mode 0600); delete it once the rewritten entries start"
                    );
                }
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
            secrets: Vec::new(),
            warnings: Vec::new(),
        };
        let planned = plan(self.g, self.settings, self.lock, l, s, self.command);
        let mut act = match planned {
            Err(e) => {
                out.status = "failed";
                out.message = match &e.hint {
                    Some(h) => format!("{}\nhint: {h}", e.message),
                    None => e.message.clone(),
                };
                return (out, e.exit_code());
            }
            // Pinned and locked already: its secrets may still move.
            Ok(Plan::Leave("unchanged", why)) if self.mover.is_some() => plan::Act {
                lock_args: None,
                edits: Vec::new(),
                argv: s.argv(),
                env: Vec::new(),
                warnings: Vec::new(),
                what: why,
            },
            Ok(Plan::Leave(status, why)) => {
                if let Some(m) = self.mover {
                    out.warnings = m.left(s, &why);
                }
                out.status = status;
                out.message = why;
                return (out, 0);
            }
            Ok(Plan::Act(act)) => act,
        };
        let moved = match self.mover.map(|m| m.entry(l, s)) {
            None => secrets::Moved::default(),
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                out.status = "failed";
                out.message = format!("left as it was: {}", e.message);
                return (out, e.exit_code());
            }
        };
        if !moved.moved.is_empty() {
            act.what = if act.edits.is_empty() {
                format!(
                    "{} secret(s) moved to {}",
                    moved.moved.len(),
                    crate::secret::store::shown()
                )
            } else {
                format!("{}; {} secret(s) moved", act.what, moved.moved.len())
            };
        }
        act.warnings.extend(moved.warnings.iter().cloned());
        act.edits.extend(moved.edits.iter().cloned());
        out.secrets = moved.moved.clone();
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
        if let Some(m) = self.mover
            && let Err(e) = m.commit(&moved)
        {
            out.status = "failed";
            out.message = format!("left as it was: {}", e.message);
            return (out, e.exit_code());
        }
        if act.edits.is_empty() && act.lock_args.is_none() {
            out.message = act.what;
            out.warnings = act.warnings;
            return (out, 0);
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
            for (k, r) in &moved.env {
                if let Some(slot) = new.env.iter_mut().find(|(name, _)| name == k) {
                    slot.1 = r.clone();
                }
            }
            for (old, r) in &moved.args {
                if let Some(slot) = new.args.iter_mut().find(|a| *a == old) {
                    *slot = r.clone();
                }
            }
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
        for m in &out.secrets {
            eprintln!("  secret: {m}");
        }
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
    // The diff goes to a terminal, a screen share, a CI log: the file's
    // literal secrets are shown masked, as `safex mcp scan` shows them.
    fo.diff = crate::mcp::secrets::mask_in(
        &diff::unified(
            &label(&l.target.path, a.common.root.as_deref()),
            &l.text,
            edits,
        ),
        l.servers.as_deref().unwrap_or_default(),
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
