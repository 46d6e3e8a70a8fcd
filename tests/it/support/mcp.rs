//! Talking to an MCP server over stdio the way a client does: one JSON-RPC
//! `initialize` line in, the answer out, stdout carrying nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","#,
    r#""capabilities":{},"clientInfo":{"name":"safex-test","version":"0"}}}"#,
    "\n"
);

/// Run `cmd`, send `initialize` on its stdin, and wait for the answer on
/// its stdout. Returns the answer and the time it took; panics (with the
/// program's stderr and `context`) on a timeout, an early exit, or a
/// stdout line that is not JSON.
pub fn exchange(
    cmd: Command,
    spec: &str,
    timeout: Duration,
    context: &dyn Fn() -> String,
) -> (serde_json::Value, Duration) {
    try_exchange(cmd, timeout).unwrap_or_else(|f| {
        panic!(
            "{spec}: {}\n--- other stdout lines\n{}\n--- safex stderr\n{}\n{}",
            f.why,
            f.other_stdout.join("\n"),
            f.stderr,
            context()
        )
    })
}

/// Why an `initialize` exchange failed.
#[derive(Debug)]
pub struct Failed {
    /// One line: a timeout, an early exit, a stdout line that is not
    /// JSON-RPC, or an answer without `serverInfo.name`/`protocolVersion`.
    pub why: String,
    /// Other JSON-RPC lines seen on stdout before that.
    pub other_stdout: Vec<String>,
    /// The program's stderr.
    pub stderr: String,
}

/// [`exchange`] without the panic: the answer and the time it took, or why
/// there was none.
pub fn try_exchange(
    mut cmd: Command,
    timeout: Duration,
) -> Result<(serde_json::Value, Duration), Failed> {
    let started = Instant::now();
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Err(Failed {
                why: format!("cannot start {:?}: {e}", cmd.get_program()),
                other_stdout: Vec::new(),
                stderr: String::new(),
            });
        }
    };

    let (err_tx, err_rx) = mpsc::channel::<String>();
    let mut err_pipe = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        let _ = err_tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    let (line_tx, line_rx) = mpsc::channel::<Option<String>>();
    let out_pipe = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out_pipe).lines() {
            match line {
                Ok(l) => {
                    if line_tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = line_tx.send(None);
    });

    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(INITIALIZE.as_bytes())
        .expect("write initialize");
    stdin.flush().unwrap();

    let deadline = started + timeout;
    let mut seen = Vec::new();
    let outcome: Result<serde_json::Value, String> = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(Some(line)) => {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(msg) if msg.get("id") == Some(&serde_json::json!(1)) => break Ok(msg),
                    Ok(_) => seen.push(line),
                    Err(_) => {
                        break Err(format!(
                            "stdout carried a line that is not JSON-RPC: {line:?}"
                        ));
                    }
                }
            }
            Ok(None) => {
                let status = match child.wait().ok() {
                    Some(s) => match s.code() {
                        Some(c) => format!("exit {c}"),
                        None => format!("{s}"),
                    },
                    None => "exit unknown".into(),
                };
                break Err(format!("stdout closed before the answer ({status})"));
            }
            Err(_) => break Err(format!("no answer to initialize within {timeout:?}")),
        }
    };
    let elapsed = started.elapsed();
    drop(stdin);
    stop(&mut child);
    let stderr = {
        let _ = err_thread.join();
        err_rx.try_recv().unwrap_or_default()
    };
    let outcome = outcome.and_then(|msg| {
        let result = &msg["result"];
        if result["serverInfo"]["name"].is_string() && result["protocolVersion"].is_string() {
            Ok(msg)
        } else {
            Err(format!(
                "initialize answer lacks result.serverInfo.name or result.protocolVersion: {msg}"
            ))
        }
    });
    match outcome {
        Ok(msg) => Ok((msg, elapsed)),
        Err(why) => Err(Failed {
            why,
            other_stdout: seen,
            stderr,
        }),
    }
}

pub fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// An MCP client session over a spawned command's stdio: requests in,
/// every stdout line read as JSON (a line that is not is a test failure),
/// stderr collected in the background so the program never blocks on it.
pub struct Client {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Messages read while waiting for an answer (notifications, the
    /// server's own requests, answers to other ids), in order.
    pub others: Vec<serde_json::Value>,
}

/// How long one answer may take.
const ANSWER_WAIT: Duration = Duration::from_secs(60);

impl Client {
    pub fn start(mut cmd: Command) -> Client {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn safex");
        let mut err_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err_pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Client {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
            others: Vec::new(),
        }
    }

    /// Write one message as a line.
    pub fn send(&mut self, msg: &serde_json::Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").expect("write to safex");
        stdin.flush().unwrap();
    }

    /// The next stdout message, `None` at the end of output.
    pub fn next(&mut self) -> Option<serde_json::Value> {
        let line = match self.lines.recv_timeout(ANSWER_WAIT) {
            Ok(l) => l,
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "no output within {ANSWER_WAIT:?}; read so far: {:?}",
                    self.others
                )
            }
        };
        Some(
            serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("stdout carried a line that is not JSON ({e}): {line:?}")
            }),
        )
    }

    /// Send a request and read messages until its answer; the others are
    /// kept in `others`.
    pub fn ask(&mut self, id: u64, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.send(
            &serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }),
        );
        self.answer(id, method)
    }

    /// Read messages until the answer to `id`.
    pub fn answer(&mut self, id: u64, method: &str) -> serde_json::Value {
        loop {
            let Some(v) = self.next() else {
                panic!("safex closed stdout before answering `{method}`");
            };
            if v.get("id") == Some(&serde_json::json!(id)) && v.get("method").is_none() {
                return v;
            }
            self.others.push(v);
        }
    }

    /// `initialize` and `notifications/initialized`; the answer.
    pub fn initialize(&mut self) -> serde_json::Value {
        let init = self.ask(
            1,
            "initialize",
            serde_json::json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "safex-test", "version": "0" } }),
        );
        assert!(init.get("result").is_some(), "{init}");
        self.send(&serde_json::json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        init
    }

    /// Close stdin (the transport's end), wait; the exit code (128 + the
    /// signal for a signal death) and stderr.
    pub fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        self.wait()
    }

    /// Wait for the exit without closing stdin.
    pub fn wait(&mut self) -> (i32, String) {
        use std::os::unix::process::ExitStatusExt;
        let status = self.child.wait().expect("wait for safex");
        let code = status
            .code()
            .or(status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        (code, err)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A client config entry's `args`, as strings.
pub fn config_args(entry: &serde_json::Value) -> Vec<&str> {
    entry["args"]
        .as_array()
        .unwrap_or_else(|| panic!("no args in {entry}"))
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// The finding codes `safex mcp scan --json` reports for `server`.
pub fn scan_codes(report: &serde_json::Value, server: &str) -> Vec<String> {
    report["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("no servers in {report}"))
        .iter()
        .filter(|s| s["server"] == server)
        .flat_map(|s| s["findings"].as_array().unwrap().clone())
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}
