//! `safex mcp tools`: start the server as a launch would (same lock, same
//! environment, same exec helper), ask it for its tools as a client does
//! (`initialize`, `notifications/initialized`, every page of
//! `tools/list`), compare each definition with its pin, and with
//! `--accept` record what it lists now as the pins.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde_json::{Value, json};

use super::Mediation;
use super::lines::{Lines, Next};
use super::pins::{Digests, Pin, PinBook};
use super::rules::{Kind as ToolKind, Rules};
use crate::error::{Error, Kind, Result};

/// The exit status of `safex mcp tools` when a tool is unpinned, new,
/// changed or removed and `--accept` was not given.
pub const NEEDS_REVIEW: i32 = 10;

/// How long the server may take to answer each request.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// How `safex mcp tools` asked for the review.
#[derive(Debug, Clone, Copy)]
pub struct Review {
    pub accept: bool,
    pub json: bool,
}

static REVIEW: OnceLock<Review> = OnceLock::new();

/// Make this process's launch a review of the server's tools.
pub fn request(r: Review) {
    let _ = REVIEW.set(r);
}

/// The review this process's launch is, if `safex mcp tools` asked for one.
pub fn requested() -> Option<Review> {
    REVIEW.get().copied()
}

/// One tool as `safex mcp tools` reports it.
struct Row {
    name: String,
    state: &'static str,
    digest: Option<String>,
    flags: Vec<String>,
}

/// States that mean the pins and the server disagree.
fn differs(state: &str) -> bool {
    matches!(state, "unpinned" | "new" | "changed" | "removed")
}

/// Start the server, list its tools, stop it; print the comparison and
/// record the pins when asked. Returns the exit status.
pub fn run(
    review: Review,
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    m: Mediation,
) -> Result<i32> {
    let rules = Rules::new(&m);
    let tools = list_tools(program, lead, args, &env, &m, rules.max_line)?;
    let book = PinBook::load(&m);
    let mut rows = Vec::new();
    let mut digests = Digests::new();
    for tool in &tools {
        let (name, digest, pin) = book.compare(tool);
        let state = if rules.denied(ToolKind::Tool, &name).is_some() {
            "denied"
        } else {
            digests.insert(name.clone(), digest.clone());
            match pin {
                None => "unpinned",
                Some(Pin::Added) => "new",
                Some(Pin::Changed) => "changed",
                Some(Pin::Same) => "pinned",
            }
        };
        rows.push(Row {
            name,
            state,
            digest: Some(digest),
            flags: PinBook::flags(tool),
        });
    }
    let listed: std::collections::HashSet<String> = rows.iter().map(|r| r.name.clone()).collect();
    for name in book.pinned.iter().flat_map(|p| p.keys()) {
        if !listed.contains(name) {
            rows.push(Row {
                name: name.clone(),
                state: "removed",
                digest: None,
                flags: Vec::new(),
            });
        }
    }
    let pins_path = super::pins::path_for(if book.system {
        m.system_lockfile.as_deref().unwrap_or(&m.lockfile)
    } else {
        &m.lockfile
    });
    let review_needed = rows.iter().any(|r| differs(r.state));
    let recorded = review.accept && review_needed;
    if recorded {
        if book.system {
            return Err(Error::new(
                Kind::Policy,
                format!(
                    "the tool pins of `{}` are the system's (`{}`); safex does not replace them",
                    m.root,
                    pins_path.display()
                ),
            )
            .with_hint("ask your admin to review the new definitions"));
        }
        book.record(&m, &digests)?;
    }
    let count = |s: &str| rows.iter().filter(|r| r.state == s).count();
    m.audit.event(
        "mcp-tools",
        json!({
            "root": m.root,
            "user": rules.user,
            "tools": tools.len(),
            "pinned": count("pinned"),
            "changed": count("changed"),
            "new": count("new"),
            "removed": count("removed"),
            "unpinned": count("unpinned"),
            "denied": count("denied"),
            "recorded": recorded,
        }),
    );
    let out = if review.json {
        let tools: Vec<Value> = rows
            .iter()
            .map(
                |r| json!({"name": r.name, "state": r.state, "digest": r.digest, "flags": r.flags}),
            )
            .collect();
        let mut s = serde_json::to_string_pretty(&json!({
            "server": m.root,
            "pins": pins_path,
            "system": book.system,
            "tools": tools,
            "recorded": recorded,
        }))
        .expect("JSON serializes");
        s.push('\n');
        s
    } else {
        text(&rows, &m.root)
    };
    print!("{out}");
    let _ = std::io::stdout().flush();
    for r in &rows {
        for f in &r.flags {
            eprintln!(
                "warning: tool `{}` of `{}` looks like a prompt injection: {f}",
                r.name, m.root
            );
        }
    }
    if recorded {
        eprintln!(
            "recorded the definitions of {} tools of `{}` in `{}`",
            digests.len(),
            m.root,
            pins_path.display()
        );
        return Ok(0);
    }
    if review_needed {
        if book.system {
            eprintln!(
                "hint: these pins are the system's; ask your admin to review the new definitions"
            );
        } else {
            eprintln!(
                "hint: when these definitions are the ones you trust, run the same command with `--accept`"
            );
        }
        return Ok(NEEDS_REVIEW);
    }
    Ok(0)
}

/// The table: one tool per line, its state, and its flags counted.
fn text(rows: &[Row], root: &str) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str(&format!("`{root}` lists no tools\n"));
    }
    for r in rows {
        let flagged = match r.flags.len() {
            0 => String::new(),
            n => format!("  (flagged: {n})"),
        };
        out.push_str(&format!("{:<width$}  {}{flagged}\n", r.name, r.state));
    }
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *by.entry(r.state).or_default() += 1;
    }
    if !rows.is_empty() {
        let parts: Vec<String> = by.iter().map(|(s, n)| format!("{n} {s}")).collect();
        out.push_str(&format!("{} tools: {}\n", rows.len(), parts.join(", ")));
    }
    out
}

/// The server's tools, every page, in the order listed.
fn list_tools(
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: &[(OsString, OsString)],
    m: &Mediation,
    max_line: u64,
) -> Result<Vec<Value>> {
    let cannot = |e: std::io::Error| {
        Error::new(
            Kind::Runtime,
            format!("cannot start `{}`: {e}", program.display()),
        )
    };
    let me = super::helper_exe().map_err(cannot)?;
    let mut child = super::spawn(&me, program, lead, args, env, false).map_err(cannot)?;
    let pid = Pid::from_raw(child.id() as i32);
    let mut server = Server {
        to: child.stdin.take(),
        from: {
            let (tx, rx) = mpsc::channel();
            let out = child.stdout.take().expect("stdout is piped");
            std::thread::spawn(move || {
                let mut lines = Lines::new(out, max_line);
                let mut buf = Vec::new();
                while let Ok(Next::Line) = lines.next(&mut buf) {
                    if tx.send(std::mem::take(&mut buf)).is_err() {
                        return;
                    }
                }
            });
            rx
        },
        root: &m.root,
        next_id: 1,
    };
    let listed = server.tools();
    // Closing its stdin is the stdio transport's shutdown; then TERM, KILL.
    drop(server.to.take());
    for sig in [None, Some(Signal::TERM), Some(Signal::KILL)] {
        if let (Some(pid), Some(sig)) = (pid, sig) {
            let _ = rustix::process::kill_process_group(pid, sig);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Ok(Some(_)) | Err(_) => return listed,
            }
        }
    }
    let _ = child.wait();
    listed
}

struct Server<'a> {
    to: Option<std::process::ChildStdin>,
    from: mpsc::Receiver<Vec<u8>>,
    root: &'a str,
    next_id: u64,
}

impl Server<'_> {
    fn tools(&mut self) -> Result<Vec<Value>> {
        let init = self.ask(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "safex", "version": env!("CARGO_PKG_VERSION")},
            }),
        )?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        if init.pointer("/capabilities/tools").is_none() {
            return Ok(Vec::new());
        }
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..1000 {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let mut page = self.ask("tools/list", params)?;
            if let Some(Value::Array(t)) = page.get_mut("tools").map(Value::take) {
                tools.extend(t);
            } else {
                return Err(self.failed("its `tools/list` answer has no `tools` array"));
            }
            match page.get("nextCursor") {
                Some(c) if !c.is_null() => cursor = Some(c.clone()),
                _ => return Ok(tools),
            }
        }
        Err(self.failed("its `tools/list` pages did not end after 1000"))
    }

    fn failed(&self, why: impl std::fmt::Display) -> Error {
        Error::new(
            Kind::Runtime,
            format!("cannot list the tools of `{}`: {why}", self.root),
        )
    }

    fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(msg).expect("JSON serializes");
        line.push(b'\n');
        let written = match self.to.as_mut() {
            Some(to) => to.write_all(&line).and_then(|()| to.flush()),
            None => Ok(()),
        };
        written.map_err(|e| self.failed(format!("it stopped reading its input ({e})")))
    }

    /// Send a request and wait for its answer's `result`; answer what the
    /// server asks meanwhile with "method not found", skip notifications.
    fn ask(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.from.recv_timeout(left) {
                Ok(l) => l,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self
                        .failed(format!(
                            "it did not answer `{method}` within {} s",
                            ANSWER_WAIT.as_secs()
                        ))
                        .with_hint("check that this launch starts an MCP server on stdio"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self
                        .failed(format!("it ended its output before it answered `{method}`"))
                        .with_hint("check that this launch starts an MCP server on stdio"));
                }
            };
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                eprintln!(
                    "warning: `{}` wrote a line that is not JSON-RPC to stdout: {}",
                    self.root,
                    String::from_utf8_lossy(&line).trim_end()
                );
                continue;
            };
            if v.get("method").is_some() {
                if let Some(their) = v.get("id") {
                    let their = their.clone();
                    self.send(&json!({"jsonrpc": "2.0", "id": their, "error": {"code": -32601, "message": "Method not found"}}))?;
                }
                continue;
            }
            if v.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(e) = v.get("error") {
                return Err(self.failed(format!("it answered `{method}` with an error: {e}")));
            }
            return match v.get("result") {
                Some(r) => Ok(r.clone()),
                None => Err(self.failed(format!("its answer to `{method}` has no result"))),
            };
        }
    }
}
