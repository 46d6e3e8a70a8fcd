//! `safex mcp pin`: rewrite `npx`/`uvx` entries to `safex npx <name>@<exact>`
//! / `safex uvx <name>==<exact>`, each pinned root locked in the same run.
//!
//! The exact version is what the entry's spec resolves to now on the
//! configured registry. Locking runs this same binary (`safex lock ...`), so
//! the policy (cooldown, deny lists, known-compromised versions) applies
//! exactly as at launch; an entry the policy refuses is reported and left as
//! it was. A dry run asks `safex policy check` instead and writes nothing.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::cli::Globals;
use crate::cli::{NpxArgs, UvxArgs};
use crate::error::{Error, Kind, Result};
use crate::lock::LockFile;
use crate::mcp::clients;
use crate::mcp::launch::{self, Launcher, Tool};
use crate::mcp::model::{self, Edit, Server};
use crate::mcp::{Loaded, PinArgs, baseline, diff, rewrite};
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
}

/// What to do with one entry.
enum Plan {
    /// Nothing to do, and why.
    Leave(&'static str, String),
    /// Run `safex lock`/`policy check` with these arguments, then apply the
    /// edits (none when only the lock was missing).
    Act {
        lock_args: Vec<String>,
        edits: Vec<Edit>,
        argv: Vec<String>,
        what: String,
    },
}

pub fn run(a: &PinArgs, g: &Globals) -> Result<i32> {
    let settings = crate::mcp::settings(g)?;
    let lock = LockFile::read(&settings.lockfile)?;
    let loaded = crate::mcp::load(&a.common)?;
    let bpath = crate::mcp::baseline_path(&a.common)?;
    let mut base = baseline::load(&bpath)?;
    let (mut entries, mut files) = (Vec::new(), Vec::new());
    let mut exit = 0;
    for l in &loaded {
        let file = l.target.path.display().to_string();
        let client = l.target.client.id();
        let servers = match &l.servers {
            Ok(s) => s,
            Err(why) => {
                eprintln!("warning: skipping `{file}`: {why}");
                continue;
            }
        };
        let mut edits = Vec::new();
        let mut expected: Vec<Server> = servers.iter().map(Server::values).collect();
        let mut accepted = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            let mut out = EntryOut {
                client,
                file: file.clone(),
                scope: s.scope.clone(),
                server: s.name.clone(),
                status: "unchanged",
                message: String::new(),
                argv: Vec::new(),
            };
            match plan(g, &settings, &lock, l, s) {
                Err(e) => {
                    out.status = "failed";
                    out.message = match &e.hint {
                        Some(h) => format!("{}\nhint: {h}", e.message),
                        None => e.message.clone(),
                    };
                    exit = worse(exit, e.exit_code());
                }
                Ok(Plan::Leave(status, why)) => {
                    out.status = status;
                    out.message = why;
                }
                Ok(Plan::Act {
                    lock_args,
                    edits: e,
                    argv,
                    what,
                }) => match safex_lock(g, a.write, &lock_args) {
                    Err((code, why)) => {
                        out.status = if code == Kind::Policy.exit_code() {
                            "refused"
                        } else {
                            "failed"
                        };
                        out.message = format!("left as it was: {why}");
                        exit = worse(exit, code);
                    }
                    Ok(()) => {
                        out.status = match (e.is_empty(), a.write) {
                            (true, true) => "locked",
                            (true, false) => "would-lock",
                            (false, true) => "rewritten",
                            (false, false) => "would-rewrite",
                        };
                        out.message = what;
                        if !e.is_empty() {
                            let mut new = s.values();
                            new.command = argv.first().cloned();
                            new.args = argv[1..].to_vec();
                            accepted.push((
                                s.scope.clone(),
                                s.name.clone(),
                                s.command_hash(),
                                new.command_hash(),
                            ));
                            expected[i] = new;
                            edits.extend(e);
                        }
                        out.argv = argv;
                    }
                },
            }
            if !g.quiet && !a.common.json && out.status != "unchanged" {
                eprintln!(
                    "{} `{}` ({client}): {}{}",
                    out.status,
                    out.server,
                    out.message,
                    shown_argv(&out.argv)
                );
            }
            entries.push(out);
        }
        if edits.is_empty() {
            continue;
        }
        let new_text = model::apply(&l.text, &edits);
        let reread = clients::read(l.target.format, l.target.scope, &new_text)
            .map(|v| v.iter().map(Server::values).collect::<Vec<_>>());
        if reread.as_ref() != Ok(&expected) {
            eprintln!(
                "error: the rewrite of `{file}` does not read back as intended; nothing written\nhint: please report this with the entry that failed"
            );
            exit = worse(exit, Kind::Internal.exit_code());
            continue;
        }
        let d = diff::unified(
            &label(&l.target.path, a.common.root.as_deref()),
            &l.text,
            &edits,
        );
        if !a.common.json {
            print!("{d}");
        }
        let mut fo = FileOut {
            client,
            file: file.clone(),
            changed: false,
            backup: None,
            diff: d,
        };
        if a.write {
            let backup = rewrite::write(&l.target.path, &l.text, &new_text)?;
            if let Some(b) = &mut base {
                for (scope, name, old, new) in &accepted {
                    b.accept(&file, scope, name, old, new);
                }
            }
            fo.changed = true;
            fo.backup = Some(backup.display().to_string());
            if !g.quiet && !a.common.json {
                eprintln!("wrote `{file}` (backup `{}`)", backup.display());
            }
        }
        files.push(fo);
    }
    if let Some(b) = &base
        && a.write
    {
        b.save(&bpath)?;
    }
    if a.common.json {
        let v = serde_json::json!({ "version": 1, "write": a.write, "entries": entries, "files": files });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if !g.quiet {
        let n = entries
            .iter()
            .filter(|e| e.status.ends_with("rewrite") || e.status == "rewritten")
            .count();
        if a.write {
            eprintln!("{n} entries rewritten in {} files", files.len());
        } else if n > 0 {
            eprintln!(
                "dry run: {n} entries would be rewritten in {} files; nothing was written\nhint: run `safex mcp pin --write` to apply (a backup of each file is kept next to it)",
                files.len()
            );
        } else {
            eprintln!("nothing to rewrite");
        }
    }
    Ok(exit)
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

fn plan(g: &Globals, settings: &Settings, lock: &LockFile, l: &Loaded, s: &Server) -> Result<Plan> {
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
    let tool = spelling.tool;
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
        let (pinned, key) = match pin_spec(settings, tool, &sp.spec)? {
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
        Tool::Npx => crate::cli::parse_as::<NpxArgs>(spelling, &os).map(|_| ()),
        Tool::Uvx => crate::cli::parse_as::<UvxArgs>(spelling, &os).map(|_| ()),
    };
    if let Err(e) = parsed {
        return Ok(Plan::Leave(
            "skipped",
            format!("`safex {}` would refuse it: {}", spelling.name(), e.message),
        ));
    }
    let words = spelling.words.iter().map(|w| w.to_string());
    let mut argv = vec!["safex".to_owned()];
    argv.extend(words.clone().chain(new_args.iter().cloned()));
    let lock_args: Vec<String> = words
        .chain(new_args[..p.tool_args].iter().cloned())
        .collect();
    let is_safex = matches!(launcher, Launcher::Safex { .. });
    let locked = match tool {
        Tool::Npx => lock.find_npm(&keys).is_some(),
        Tool::Uvx => lock.find_pypi(&keys).is_some(),
    };
    if is_safex && pinned_any.is_empty() {
        if locked {
            return Ok(Plan::Leave("unchanged", "pinned and locked".into()));
        }
        return Ok(Plan::Act {
            lock_args,
            edits: Vec::new(),
            argv,
            what: format!("pinned; locking `{}`", keys.join(" ")),
        });
    }
    let edits = rewrite::edits(
        l.target.format,
        &l.text,
        spans,
        &launcher,
        spelling.words[0],
        offset,
        &p.specs,
        &new_args,
    );
    let what = if pinned_any.is_empty() {
        "launched through safex".to_owned()
    } else {
        pinned_any.join(", ")
    };
    Ok(Plan::Act {
        lock_args,
        edits,
        argv,
        what,
    })
}

/// Settings for an entry that names its own registry or index.
fn entry_settings(g: &Globals, spelling: &Spelling, args: &[String]) -> Result<Option<Settings>> {
    let os: Vec<OsString> = args.iter().map(OsString::from).collect();
    let over = match spelling.tool {
        Tool::Npx => crate::cli::parse_as::<NpxArgs>(spelling, &os)
            .ok()
            .and_then(|a| a.registry)
            .map(|r| Overrides {
                registry: Some(r),
                ..Default::default()
            }),
        Tool::Uvx => crate::cli::parse_as::<UvxArgs>(spelling, &os)
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
    settings: &Settings,
    tool: Tool,
    raw: &str,
) -> Result<std::result::Result<(String, String), String>> {
    match tool {
        Tool::Npx => match crate::spec::parse_root(raw) {
            Err(e) => Ok(Err(e.message)),
            Ok(Ok(spec)) => Ok(Ok((raw.to_owned(), spec.to_string()))),
            Ok(Err(crate::spec::Unpinned::Floating { name, requested })) => {
                settings.npm.registry_for(name.as_str())?;
                let Some(v) = crate::npx::current_version(settings, &name, requested.as_deref())
                else {
                    return Err(Error::registry(format!(
                        "cannot find the version `{}` resolves to on the registry",
                        crate::spec::shown(raw)
                    )));
                };
                let typed = crate::spec::split_name_version(raw).0;
                Ok(Ok((format!("{typed}@{v}"), format!("{name}@{v}"))))
            }
        },
        Tool::Uvx => match crate::pypi::spec::parse_root(raw) {
            Err(e) => Ok(Err(e.message)),
            Ok(Ok(spec)) => Ok(Ok((raw.to_owned(), spec.to_string()))),
            Ok(Err(f)) => {
                let Some(v) = crate::uvx::current_version(settings, &f.name) else {
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

/// `safex lock <tool> ...` (or `safex policy check ...` in a dry run) as a
/// child process of this same binary; `Err((exit code, what it said))`.
fn safex_lock(g: &Globals, write: bool, args: &[String]) -> std::result::Result<(), (i32, String)> {
    let exe = std::env::current_exe().map_err(|e| {
        (
            Kind::Internal.exit_code(),
            format!("cannot find the safex executable: {e}"),
        )
    })?;
    let mut cmd = Command::new(exe);
    if let Some(p) = &g.policy {
        cmd.arg("--policy").arg(p);
    }
    if write {
        cmd.arg("lock");
    } else {
        cmd.args(["policy", "check"]);
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| (Kind::Internal.exit_code(), format!("cannot run safex: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let why: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    let why = if why.is_empty() {
        err.trim().to_owned()
    } else {
        why.join("; ").replace("error: ", "")
    };
    Err((out.status.code().unwrap_or(Kind::Internal.exit_code()), why))
}
