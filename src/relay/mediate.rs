//! Mediating an MCP session line by line: the client's requests judged
//! before the server sees them, the server's answers redacted, filtered
//! and audited before the client sees them.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Value, json};

use super::Mediation;
use super::lines::{Lines, Next};
use super::message::{CallResult, Cancelled, Envelope, Named, Uri, id_key};
use super::pins::PinBook;
use super::redact::Redactor;
use super::rules::{ArgsMode, Kind, Rules};

/// What a pending client request was, so its answer can be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ToolsCall,
    ResourcesRead,
    PromptsGet,
    ToolsList,
    ResourcesList,
    TemplatesList,
    PromptsList,
    Other,
}

impl Method {
    fn of(name: &str) -> Method {
        match name {
            "tools/call" => Method::ToolsCall,
            "resources/read" => Method::ResourcesRead,
            "prompts/get" => Method::PromptsGet,
            "tools/list" => Method::ToolsList,
            "resources/list" => Method::ResourcesList,
            "resources/templates/list" => Method::TemplatesList,
            "prompts/list" => Method::PromptsList,
            _ => Method::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Method::ToolsCall => "tools/call",
            Method::ResourcesRead => "resources/read",
            Method::PromptsGet => "prompts/get",
            Method::ToolsList => "tools/list",
            Method::ResourcesList => "resources/list",
            Method::TemplatesList => "resources/templates/list",
            Method::PromptsList => "prompts/list",
            Method::Other => "other",
        }
    }

    /// The requests that get one audit line each.
    fn audited(self) -> bool {
        matches!(
            self,
            Method::ToolsCall | Method::ResourcesRead | Method::PromptsGet
        )
    }
}

/// A client request the server has not answered yet.
struct Pending {
    method: Method,
    name: String,
    started: Instant,
    arguments: Arguments,
}

/// A call's arguments as the audit records them. The default hash is
/// taken when the audit line is written, after the answer went on to the
/// client: a 5 MiB argument costs the client no wait for it.
enum Arguments {
    Absent,
    Hash(Box<[u8]>),
    Shown(Value),
}

impl Arguments {
    fn audited(&self) -> Value {
        match self {
            Arguments::Absent => Value::Null,
            Arguments::Hash(raw) => {
                use sha2::Digest;
                json!(format!("sha256:{}", hex::encode(sha2::Sha256::digest(raw))))
            }
            Arguments::Shown(v) => v.clone(),
        }
    }
}

/// A call answered: its audit line, written once the answer is passed on.
struct Answered {
    call: Pending,
    outcome: &'static str,
    bytes: usize,
    is_error: Option<bool>,
    redactions: usize,
    took: std::time::Duration,
}

/// What goes to the client for one server line.
enum Out {
    /// The line as read (redacted in place).
    Line,
    /// Another line instead (a filtered listing).
    Instead(Vec<u8>),
    /// Nothing.
    Nothing,
}

/// Counts for the session's closing audit line.
#[derive(Default)]
struct Counts {
    calls: u64,
    denied: u64,
    redactions: u64,
    non_json_lines: u64,
    dropped: u64,
}

#[derive(Default)]
struct State {
    pending: HashMap<String, Pending>,
    /// Tools withheld by `tools.pin = "refuse"`: refused like unknown ones.
    withheld: HashSet<String>,
    /// Tool digests seen in this session's listings (policy-visible tools).
    seen: super::pins::Digests,
    /// Tools already reported (changed, new, flagged) in this session.
    reported: HashSet<String>,
    counts: Counts,
}

/// Everything both directions share.
pub struct Session {
    pub m: Mediation,
    rules: Rules,
    pins: PinBook,
    redactor: Redactor,
    client_out: Mutex<File>,
    state: Mutex<State>,
    /// Why safex ended the session (a line over `mcp.max_line`).
    pub ended: Mutex<Option<String>>,
    /// The server, to stop when the session must end.
    pub child: Option<rustix::process::Pid>,
    client: Option<String>,
    /// Denials already explained (the sandbox's hints on error answers).
    seen: Mutex<crate::sandbox::hint::Seen>,
}

/// What to do with one line from the client.
enum Verdict {
    Forward,
    /// Answer the client instead; the server never sees the line.
    Answer(Vec<u8>),
}

impl Session {
    pub fn new(
        m: Mediation,
        env: &[(std::ffi::OsString, std::ffi::OsString)],
        client_out: File,
        child: Option<rustix::process::Pid>,
    ) -> Session {
        let rules = Rules::new(&m);
        let pins = PinBook::load(&m);
        let redactor = if rules.redact {
            Redactor::from_env(env).with(&m.secrets)
        } else {
            Redactor::default()
        };
        Session {
            rules,
            pins,
            redactor,
            client_out: Mutex::new(client_out),
            state: Mutex::new(State::default()),
            ended: Mutex::new(None),
            child,
            client: crate::audit::parent_name(),
            seen: Mutex::new(Default::default()),
            m,
        }
    }

    /// A failed call whose text reports a denial the sandbox caused gets
    /// its hint on stderr (servers such as server-filesystem answer with
    /// the error instead of logging it).
    fn explain_denial(&self, line: &[u8]) {
        let Some(advice) = &self.m.sandbox else {
            return;
        };
        let text = String::from_utf8_lossy(&line[..line.len().min(64 * 1024)]);
        let hint = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .hint(advice, &text);
        if let Some(h) = hint {
            eprintln!("{h}");
        }
    }

    pub fn max_line(&self) -> u64 {
        self.rules.max_line
    }

    /// Write one line to the client, whole.
    pub fn to_client(&self, line: &[u8]) -> io::Result<()> {
        let mut out = self.client_out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(line)
    }

    /// The client → server loop, from its first line (already read into
    /// `buf`). Returns when the client closes its side or a write fails.
    pub fn client_loop<R: io::Read>(
        &self,
        lines: &mut Lines<R>,
        buf: &mut Vec<u8>,
        to_server: &mut impl Write,
    ) {
        loop {
            match self.judge_client_line(buf) {
                Verdict::Forward => {
                    if to_server.write_all(buf).is_err() {
                        return;
                    }
                }
                Verdict::Answer(reply) => {
                    if self.to_client(&reply).is_err() {
                        return;
                    }
                }
            }
            match lines.next(buf) {
                Ok(Next::Line) => {}
                Ok(Next::End) | Err(_) => return,
                Ok(Next::TooLong) => return self.end_session("the client"),
            }
        }
    }

    /// The server → client loop. Returns at the server's end of output.
    pub fn server_loop<R: io::Read>(&self, lines: &mut Lines<R>) {
        let mut buf = Vec::new();
        loop {
            match lines.next(&mut buf) {
                Ok(Next::Line) => {}
                Ok(Next::End) | Err(_) => break,
                Ok(Next::TooLong) => {
                    self.end_session("the server");
                    break;
                }
            }
            let (out, answered) = self.judge_server_line(&mut buf);
            let sent = match &out {
                Out::Line => self.to_client(&buf),
                Out::Instead(other) => self.to_client(other),
                Out::Nothing => Ok(()),
            };
            if let Some(a) = answered {
                self.audit_call(
                    &a.call,
                    a.outcome,
                    a.bytes,
                    a.is_error,
                    a.redactions,
                    a.took,
                );
            }
            if sent.is_err() {
                break;
            }
        }
        self.close();
    }

    /// A line over `mcp.max_line`: the session cannot go on (the message
    /// can be neither passed whole nor judged), so the server is stopped.
    fn end_session(&self, from: &str) {
        let why = format!(
            "{from} sent a message longer than the policy's `mcp.max_line` ({} bytes); safex ended the session",
            self.rules.max_line
        );
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        if let Some(pid) = self.child {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }

    fn judge_client_line(&self, line: &[u8]) -> Verdict {
        if super::message::trim(line).is_empty() {
            return Verdict::Forward;
        }
        let Some(env) = Envelope::parse(line) else {
            // Not one JSON object (a batch, text, a duplicated field): what
            // safex cannot judge, the server does not get.
            eprintln!(
                "warning: safex did not pass a client message that is not one JSON-RPC object: {}",
                crate::redact::shown(&String::from_utf8_lossy(super::message::trim(line)))
            );
            return Verdict::Answer(error_line(
                None,
                -32600,
                "Invalid Request: one JSON-RPC object per line",
                None,
            ));
        };
        let Some(method) = env.method.as_deref() else {
            return Verdict::Forward; // an answer to a server's request
        };
        let Some(id) = env.id_key() else {
            if method == "notifications/cancelled" {
                self.cancelled(env.params);
            }
            return Verdict::Forward;
        };
        let method = Method::of(method);
        let (kind, name, arguments) = match self.target(method, env.params) {
            Ok(t) => t,
            Err(reply) => return Verdict::Answer(error_line(env.id, -32602, reply, None)),
        };
        if let Some(kind) = kind
            && let Some(why) = self.judge(kind, &name)
        {
            self.audit_denied(method, &name, &arguments, &why);
            return Verdict::Answer(refusal(env.id, kind, &name));
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pending.insert(
            id,
            Pending {
                method,
                name,
                started: Instant::now(),
                arguments,
            },
        );
        Verdict::Forward
    }

    /// What a request is about: the kind and name the policy judges, and
    /// the arguments as the audit records them.
    fn target(
        &self,
        method: Method,
        params: Option<&serde_json::value::RawValue>,
    ) -> Result<(Option<Kind>, String, Arguments), &'static str> {
        let raw = params.map_or("{}", |p| p.get());
        Ok(match method {
            Method::ToolsCall | Method::PromptsGet => {
                let n: Named =
                    serde_json::from_str(raw).map_err(|_| "Invalid params: `name` is required")?;
                let kind = if method == Method::ToolsCall {
                    Kind::Tool
                } else {
                    Kind::Prompt
                };
                let args = self.arguments(n.arguments);
                (Some(kind), n.name, args)
            }
            Method::ResourcesRead => {
                let u: Uri =
                    serde_json::from_str(raw).map_err(|_| "Invalid params: `uri` is required")?;
                (Some(Kind::Resource), u.uri, Arguments::Absent)
            }
            _ => (None, String::new(), Arguments::Absent),
        })
    }

    /// A call's arguments as `audit.arguments` says: a hash (default), the
    /// object with secret-looking values masked, or the object.
    fn arguments(&self, raw: Option<&serde_json::value::RawValue>) -> Arguments {
        let Some(raw) = raw else {
            return Arguments::Absent;
        };
        match self.rules.args {
            ArgsMode::Hash => Arguments::Hash(raw.get().as_bytes().into()),
            ArgsMode::Full => {
                Arguments::Shown(serde_json::from_str(raw.get()).unwrap_or(Value::Null))
            }
            ArgsMode::Redacted => {
                let mut v = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                mask_secrets(&mut v, None);
                Arguments::Shown(v)
            }
        }
    }

    /// The policy's word, or the pin's (a tool withheld as changed).
    fn judge(&self, kind: Kind, name: &str) -> Option<String> {
        if let Some(why) = self.rules.denied(kind, name) {
            return Some(why);
        }
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (kind == Kind::Tool && st.withheld.contains(name)).then(|| {
            "its definition changed since it was pinned (`tools.pin = \"refuse\"`)".to_owned()
        })
    }

    fn cancelled(&self, params: Option<&serde_json::value::RawValue>) {
        let Some(c) = params.and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok()) else {
            return;
        };
        let Some(id) = id_key(c.request_id.get()) else {
            return;
        };
        let p = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pending.remove(&id)
        };
        if let Some(p) = p
            && p.method.audited()
        {
            self.audit_call(&p, "cancelled", 0, None, 0, p.started.elapsed());
        }
    }

    /// One line from the server: redacted (in place), then passed,
    /// filtered, answered or sent to stderr; with the call it answers.
    fn judge_server_line(&self, line: &mut Vec<u8>) -> (Out, Option<Answered>) {
        let redactions = self.redactor.redact(line);
        if redactions > 0 {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.counts.redactions += redactions as u64;
        }
        if super::message::trim(line).is_empty() {
            return (Out::Line, None);
        }
        let env = match Envelope::parse(line) {
            Some(e) if e.is_jsonrpc() => e,
            _ => {
                self.not_jsonrpc(line);
                return (Out::Nothing, None);
            }
        };
        if env.method.is_some() {
            return (Out::Line, None); // the server's own request or notification
        }
        let Some(id) = env.id_key() else {
            return (Out::Line, None); // an error about a message it could not read
        };
        let pending = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pending.remove(&id)
        };
        let Some(p) = pending else {
            // No request of the client's has this id (any more): the
            // client would match it to nothing, or to the wrong request.
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.counts.dropped += 1;
            return (Out::Nothing, None);
        };
        if p.method.audited() {
            let is_error = env
                .result
                .and_then(|r| serde_json::from_str::<CallResult>(r.get()).ok())
                .and_then(|r| r.is_error);
            if is_error == Some(true) || env.error.is_some() {
                self.explain_denial(line);
            }
            let outcome = if env.error.is_some() {
                "error"
            } else {
                "result"
            };
            let took = p.started.elapsed();
            let answered = Answered {
                call: p,
                outcome,
                bytes: line.len(),
                is_error,
                redactions,
                took,
            };
            return (Out::Line, Some(answered));
        }
        let kind = match p.method {
            Method::ToolsList => super::lists::Listing::Tools,
            Method::ResourcesList => super::lists::Listing::Resources,
            Method::TemplatesList => super::lists::Listing::Templates,
            Method::PromptsList => super::lists::Listing::Prompts,
            _ => return (Out::Line, None),
        };
        match env.result.and_then(|_| self.filter_listing(kind, line)) {
            Some(other) => (Out::Instead(other), None),
            None => (Out::Line, None),
        }
    }

    fn not_jsonrpc(&self, line: &[u8]) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.counts.non_json_lines += 1;
        let first = st.counts.non_json_lines == 1;
        drop(st);
        let text = String::from_utf8_lossy(super::message::trim(line));
        if first {
            eprintln!(
                "warning: `{}` wrote a line to stdout that is not JSON-RPC; stdout is the MCP protocol, so safex sends such lines to stderr:",
                self.m.package
            );
        }
        eprintln!("{}", crate::redact::cut(&text, 4000));
    }

    /// The server's stdout ended: calls never answered are audited, and
    /// the session's closing line written.
    fn close(&self) {
        let (left, counts) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let left: Vec<Pending> = st.pending.drain().map(|(_, p)| p).collect();
            (left, std::mem::take(&mut st.counts))
        };
        for p in left.iter().filter(|p| p.method.audited()) {
            self.audit_call(p, "unanswered", 0, None, 0, p.started.elapsed());
        }
        self.event(
            "mcp-session",
            json!({
                "calls": counts.calls,
                "denied": counts.denied,
                "redactions": counts.redactions,
                "non_json_lines": counts.non_json_lines,
                "dropped": counts.dropped,
            }),
        );
    }

    fn audit_denied(&self, method: Method, name: &str, arguments: &Arguments, why: &str) {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.counts.denied += 1;
        }
        eprintln!(
            "safex: refused `{}` `{name}` of `{}`: {why}",
            method.as_str(),
            self.m.package
        );
        self.event(
            "mcp-call",
            json!({
                "method": method.as_str(),
                "name": name,
                "arguments": arguments.audited(),
                "decision": "deny",
                "reason": why,
                "outcome": "refused",
                "duration_ms": 0,
                "result_bytes": 0,
                "is_error": null,
                "redactions": 0,
            }),
        );
    }

    fn audit_call(
        &self,
        p: &Pending,
        outcome: &str,
        bytes: usize,
        is_error: Option<bool>,
        redactions: usize,
        took: std::time::Duration,
    ) {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.counts.calls += 1;
        }
        let ms = took.as_secs_f64() * 1000.0;
        self.event(
            "mcp-call",
            json!({
                "method": p.method.as_str(),
                "name": p.name,
                "arguments": p.arguments.audited(),
                "decision": "allow",
                "outcome": outcome,
                "duration_ms": (ms * 1000.0).round() / 1000.0,
                "result_bytes": bytes,
                "is_error": is_error,
                "redactions": redactions,
            }),
        );
    }

    /// One audit line about this session: the server, the client, the OS user.
    pub(super) fn event(&self, event: &str, fields: Value) {
        let mut all = json!({
            "client": self.client,
            "user": self.rules.user,
            "root": self.m.root,
        });
        if let (Value::Object(all), Value::Object(more)) = (&mut all, fields) {
            all.extend(more);
        }
        self.m.audit.event(event, all);
    }

    pub(super) fn rules(&self) -> &Rules {
        &self.rules
    }

    pub(super) fn pins(&self) -> &PinBook {
        &self.pins
    }

    pub(super) fn with_state<T>(&self, f: impl FnOnce(&mut StateView<'_>) -> T) -> T {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State {
            withheld,
            seen,
            reported,
            ..
        } = &mut *st;
        f(&mut StateView {
            withheld,
            seen,
            reported,
        })
    }
}

/// The parts of the state the listings change.
pub(super) struct StateView<'a> {
    pub withheld: &'a mut HashSet<String>,
    pub seen: &'a mut super::pins::Digests,
    pub reported: &'a mut HashSet<String>,
}

/// Values under secret-looking keys, and secret-looking values, masked.
fn mask_secrets(v: &mut Value, key: Option<&str>) {
    match v {
        Value::String(s) if crate::mcp::secrets::is_secret(key.unwrap_or(""), s) => {
            *s = "****".to_owned();
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_secrets(x, key)),
        Value::Object(m) => m.iter_mut().for_each(|(k, x)| mask_secrets(x, Some(k))),
        _ => {}
    }
}

/// The answer a server gives for what it does not have: a denied tool,
/// prompt or resource looks like one that does not exist (the codes of
/// the MCP specification).
fn refusal(id: Option<&serde_json::value::RawValue>, kind: Kind, name: &str) -> Vec<u8> {
    match kind {
        Kind::Tool => error_line(id, -32602, &format!("Unknown tool: {name}"), None),
        Kind::Prompt => error_line(id, -32602, &format!("Unknown prompt: {name}"), None),
        Kind::Resource => error_line(
            id,
            -32002,
            "Resource not found",
            Some(json!({ "uri": name })),
        ),
    }
}

fn error_line(
    id: Option<&serde_json::value::RawValue>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Vec<u8> {
    let id: Value = id
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null);
    let mut error = json!({ "code": code, "message": message });
    if let Some(d) = data {
        error["data"] = d;
    }
    let mut line = json!({ "jsonrpc": "2.0", "id": id, "error": error })
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}
