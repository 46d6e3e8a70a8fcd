//! Staying the program's parent when it is spoken to through pipes (as an
//! MCP client starts a stdio server): the program is spawned, not exec'd,
//! through safex's own exec helper, which gives it a parent-death signal
//! (it dies with safex); its stdin and stdout are relayed byte for byte,
//! the signals a client sends are forwarded, and its exit status is
//! safex's. A program on a terminal or writing to a file is exec'd as
//! before (`exec::run_program`). When the client's first line is a
//! JSON-RPC message, the session is mediated (`mediate`): the policy's
//! tool rules, an audit line per call, secrets kept out of answers, tool
//! definitions compared with their pins.

mod lines;
mod lists;
mod mediate;
mod message;
mod pins;
pub mod redact;
pub mod review;
mod rules;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rustix::fs::FileType;
use rustix::process::{Pid, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

use crate::error::{Error, Kind, Result};

/// The hidden first argument that makes `safex` its own exec helper:
/// `safex __safex-exec <parent pid> <program> <args>...`.
pub const EXEC_HELPER: &str = "__safex-exec";

/// Signals an MCP client (or a terminal) sends that the program must get.
const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// Relay when both stdin and stdout are pipes or sockets.
pub fn wanted() -> bool {
    let piped = |fd: BorrowedFd<'_>| {
        rustix::fs::fstat(fd).is_ok_and(|st| {
            matches!(
                FileType::from_raw_mode(st.st_mode),
                FileType::Fifo | FileType::Socket
            )
        })
    };
    let (stdin, stdout) = (io::stdin(), io::stdout());
    piped(stdin.as_fd()) && piped(stdout.as_fd())
}

/// The helper's whole life: die with the parent that started it, make sure
/// that parent is still there (it may have died before the signal was
/// set), then become the program. Returns only on failure.
pub fn exec_helper(args: &[OsString]) -> i32 {
    let (Some(parent), Some(program)) = (args.first(), args.get(1)) else {
        eprintln!("error: `{EXEC_HELPER}` is safex's own exec helper");
        return Kind::Usage.exit_code();
    };
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::KILL)) {
        eprintln!("error: cannot tie the program to safex's life: {e}");
        return Kind::Runtime.exit_code();
    }
    let parent = parent.to_str().and_then(|p| p.parse::<i32>().ok());
    if rustix::process::getppid()
        .map(Pid::as_raw_nonzero)
        .map(|p| p.get())
        != parent
    {
        return Kind::Runtime.exit_code();
    }
    let mut cmd = Command::new(program);
    cmd.args(&args[2..]);
    #[cfg(target_os = "linux")]
    if let Some(raw) = std::env::var_os(crate::sandbox::SPEC_VAR) {
        cmd.env_remove(crate::sandbox::SPEC_VAR);
        let applied = crate::sandbox::Spec::decode(&raw).and_then(|spec| spec.apply());
        if let Err(e) = applied {
            eprintln!("{e}");
            return e.exit_code();
        }
    }
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    eprintln!(
        "error: cannot start `{}`: {err}",
        Path::new(program).display()
    );
    Kind::Runtime.exit_code()
}

/// What the relay needs to mediate an MCP session: which server this is
/// (for the policy, the pins and the audit), the policy, and the audit log.
pub struct Mediation {
    pub ecosystem: crate::ecosystem::Ecosystem,
    pub package: String,
    pub version: String,
    /// The lock entry's roots, as the lockfile keys them.
    pub root: String,
    /// The lock entry's tree digest.
    pub tree: Option<String>,
    pub policy: crate::policy::Policy,
    pub audit: crate::audit::Context,
    pub lockfile: std::path::PathBuf,
    pub system_lockfile: Option<std::path::PathBuf>,
    /// The sandbox's advice for denials seen in error answers (`None`:
    /// no sandbox).
    pub sandbox: Option<crate::sandbox::hint::Advice>,
    /// `(mark, value)` of the secrets safex resolved for this launch: kept
    /// out of answers whatever their names say.
    pub secrets: Vec<(String, String)>,
}

/// How long the server's first output waits for the client's first line
/// (which decides whether the session is mediated) before it goes out as
/// bytes. MCP clients write `initialize` as soon as they have spawned.
const FIRST_LINE_WAIT: Duration = Duration::from_millis(500);

/// Spawn `program <lead...> <args...>` with exactly `env`, relay its
/// stdio and signals, and return its exit status (a program killed by a
/// signal kills safex with the same signal, so the client sees the same).
/// When the client's first line is a JSON-RPC message, the session is
/// mediated (`mediate`); otherwise bytes pass as they are.
pub fn run(
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    sandbox: &crate::sandbox::Plan,
    mediation: Mediation,
) -> Result<i32> {
    let cannot = |e: io::Error| cannot_start(program, e);
    let me = helper_exe().map_err(cannot)?;
    let client_out = own(io::stdout().as_fd()).map_err(cannot)?;
    let client_in = own(io::stdin().as_fd()).map_err(cannot)?;
    // Registered before the spawn, so no signal falls between the two.
    let mut signals = signal_hook::iterator::Signals::new(FORWARDED).map_err(cannot)?;
    let watch = sandbox.is_on().then(|| sandbox.advice.clone());
    // The secrets safex resolved stay out of the server's stderr too (MCP
    // clients keep it in log files).
    let hidden = if mediation.policy.mcp_redact {
        redact::Redactor::default().with(&mediation.secrets)
    } else {
        redact::Redactor::default()
    };
    let pipe_stderr = watch.is_some() || !hidden.is_empty();
    let (env, tier2) = confine(sandbox, env).map_err(cannot)?;
    let mut child = spawn(&me, program, lead, args, &env, pipe_stderr).map_err(cannot)?;
    serve_proxy(tier2, &mediation.audit);
    widen_pipes(&child);
    let errs = child.stderr.take().map(|from| {
        let advice = watch.clone();
        std::thread::spawn(move || {
            crate::sandbox::hint::relay_stderr(from, advice.as_ref(), &hidden)
        })
    });
    let pid = Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if let (Some(pid), Some(sig)) = (pid, Signal::from_named_raw(sig)) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    });
    let session = Arc::new(mediate::Session::new(mediation, &env, client_out, pid));
    let (decided_tx, decided_rx) = mpsc::channel::<bool>();
    if let Some(to_child) = child.stdin.take() {
        let session = session.clone();
        std::thread::spawn(move || client_side(&session, client_in, to_child, decided_tx));
    }
    let out = child.stdout.take().map(|from_child| {
        let session = session.clone();
        std::thread::spawn(move || server_side(&session, from_child, &decided_rx))
    });
    let status = child.wait().map_err(|e| {
        Error::new(
            Kind::Runtime,
            format!("cannot wait for `{}`: {e}", program.display()),
        )
    })?;
    // Everything the program wrote reaches the client before safex exits.
    if let Some(out) = out {
        let _ = out.join();
    }
    if let Some(errs) = errs {
        let _ = errs.join();
    }
    handle.close();
    if let Some(why) = session
        .ended
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(Error::new(Kind::Runtime, why).with_hint(
            "ask your admin to raise `mcp.max_line` if the server's messages are this large by design",
        ));
    }
    Ok(exit_code(status))
}

/// The binary to start as the exec helper: this very one. On Linux the
/// running image itself (`/proc/self/exe`), so a safex upgraded or
/// rebuilt while a session runs still starts its helper.
pub fn helper_exe() -> io::Result<std::path::PathBuf> {
    if cfg!(target_os = "linux") && Path::new("/proc/self/exe").exists() {
        return Ok("/proc/self/exe".into());
    }
    std::env::current_exe()
}

fn cannot_start(program: &Path, e: io::Error) -> Error {
    Error::new(
        Kind::Runtime,
        format!("cannot start `{}`: {e}", program.display()),
    )
}

/// The program's exit status as safex's: its code, or, killed by a
/// signal, the same signal raised on safex (so the client sees the same).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return code;
    }
    if let Some(sig) = status.signal() {
        let _ = signal_hook::low_level::emulate_default_handler(sig);
        return 128 + sig;
    }
    Kind::Runtime.exit_code()
}

/// A program's environment, exactly.
type Env = Vec<(OsString, OsString)>;

/// Tier 2 of a launch: safex's end of the socket pair and the allow-list.
struct Tier2 {
    pair: crate::sandbox::netns::Pair,
    allow: crate::sandbox::proxy::AllowList,
}

/// The program's environment with the sandbox's spec for the exec helper
/// (and, for tier 2, the proxy's variables and the pair it is handed over).
fn confine(sandbox: &crate::sandbox::Plan, mut env: Env) -> io::Result<(Env, Option<Tier2>)> {
    if !sandbox.is_on() {
        return Ok((env, None));
    }
    let mut spec = sandbox.spec.clone();
    let mut tier2 = None;
    #[cfg(target_os = "linux")]
    if let Some(allow) = &sandbox.proxy {
        use std::os::fd::AsRawFd;
        let pair = crate::sandbox::netns::pair()?;
        spec.netns_fd = Some(pair.child.as_raw_fd());
        // The namespace is the boundary: inside it only the proxy listens.
        spec.connect = None;
        for (k, v) in &sandbox.proxy_env {
            let mut v = v.clone();
            if k == "NODE_OPTIONS"
                && let Some((_, own)) = env.iter().find(|(have, _)| have == k)
                && !own.is_empty()
            {
                let mut both = own.clone();
                both.push(" ");
                both.push(&v);
                v = both;
            }
            env.retain(|(have, _)| have != k);
            env.push((k.clone(), v));
        }
        tier2 = Some(Tier2 {
            pair,
            allow: allow.clone(),
        });
    }
    env.push((OsString::from(crate::sandbox::SPEC_VAR), spec.encode()));
    Ok((env, tier2))
}

/// After the spawn: safex's copy of the helper's end closed, and the
/// proxy served on the listener the helper sends (a thread for the
/// session's life).
fn serve_proxy(tier2: Option<Tier2>, audit: &crate::audit::Context) {
    #[cfg(target_os = "linux")]
    if let Some(Tier2 { pair, allow }) = tier2 {
        drop(pair.child);
        let audit = audit.clone();
        std::thread::spawn(move || {
            if let Some(listener) = crate::sandbox::netns::receive(&pair.parent) {
                crate::sandbox::proxy::serve(listener, allow, audit);
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (tier2, audit);
}

/// A program on a terminal or writing to a file, confined by tier 2:
/// safex stays its parent (its proxy must run), with the program's stdio
/// its own, in the same process group (the terminal's signals reach it
/// directly), other signals forwarded, and its exit status safex's.
pub fn supervise(
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    sandbox: &crate::sandbox::Plan,
    audit: crate::audit::Context,
) -> Result<i32> {
    let cannot = |e: io::Error| cannot_start(program, e);
    let me = helper_exe().map_err(cannot)?;
    let mut signals = signal_hook::iterator::Signals::new(FORWARDED).map_err(cannot)?;
    let (env, tier2) = confine(sandbox, env).map_err(cannot)?;
    let mut child = helper_command(&me, program, lead, args, &env)
        .spawn()
        .map_err(cannot)?;
    serve_proxy(tier2, &audit);
    let pid = Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            // Ctrl-C and Ctrl-\ reached the program with its group.
            if sig == SIGINT || sig == SIGQUIT {
                continue;
            }
            if let (Some(pid), Some(sig)) = (pid, Signal::from_named_raw(sig)) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    });
    let status = child.wait().map_err(|e| {
        Error::new(
            Kind::Runtime,
            format!("cannot wait for `{}`: {e}", program.display()),
        )
    })?;
    handle.close();
    Ok(exit_code(status))
}

/// Start `program` through safex's exec helper (`me`), its stdin and
/// stdout piped, in its own process group: a signal sent to safex's group
/// (Ctrl-C on a terminal, a client that kills the group) reaches the
/// program once, through safex, not twice.
fn spawn(
    me: &Path,
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: &[(OsString, OsString)],
    watch_stderr: bool,
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    helper_command(me, program, lead, args, env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if watch_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .process_group(0)
        .spawn()
}

/// `safex __safex-exec <this pid> <program> <lead...> <args...>` with
/// exactly `env`.
fn helper_command(
    me: &Path,
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: &[(OsString, OsString)],
) -> Command {
    let mut cmd = Command::new(me);
    cmd.arg(EXEC_HELPER)
        .arg(std::process::id().to_string())
        .arg(program)
        .args(lead)
        .args(args)
        .env_clear()
        .envs(env.iter().cloned());
    cmd
}

/// Pipes of 1 MiB to the program (the default is 64 KiB): a message of
/// several MiB then crosses in a few writes instead of a hundred wakeups.
fn widen_pipes(child: &std::process::Child) {
    #[cfg(target_os = "linux")]
    {
        let stdin = child.stdin.as_ref().map(|p| p.as_fd());
        let stdout = child.stdout.as_ref().map(|p| p.as_fd());
        for fd in [stdin, stdout].into_iter().flatten() {
            let _ = rustix::pipe::fcntl_setpipe_size(fd, 1 << 20);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = child;
}

/// The client → server direction: decide from the first line, then
/// mediate or copy. Dropping `to_child` closes the program's stdin: EOF.
fn client_side(
    session: &mediate::Session,
    client_in: File,
    mut to_child: std::process::ChildStdin,
    decided: mpsc::Sender<bool>,
) {
    let mut lines = lines::Lines::new(client_in, session.max_line());
    let mut buf = Vec::new();
    let first = lines.peek();
    let mediated = first == Some(b'{')
        && matches!(lines.next(&mut buf), Ok(lines::Next::Line))
        && message::Envelope::parse(&buf).is_some_and(|e| e.is_jsonrpc());
    let _ = decided.send(mediated);
    if mediated {
        session.client_loop(&mut lines, &mut buf, &mut to_child);
        return;
    }
    let (ahead, mut rest) = lines.into_parts();
    if to_child.write_all(&buf).is_ok() && to_child.write_all(&ahead).is_ok() {
        let _ = io::copy(&mut rest, &mut to_child);
    }
}

/// The server → client direction: its output waits (in the pipe) for the
/// client's first line, at most `FIRST_LINE_WAIT`; then it is mediated or
/// copied. Output a silent client did not wait for goes out as bytes
/// until a line ends after the decision.
fn server_side(
    session: &mediate::Session,
    mut from_child: std::process::ChildStdout,
    decided: &mpsc::Receiver<bool>,
) {
    let mediated = match decided.recv_timeout(FIRST_LINE_WAIT) {
        Ok(m) => m,
        Err(mpsc::RecvTimeoutError::Disconnected) => false,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = match from_child.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if session.to_client(&chunk[..n]).is_err() {
                    return;
                }
                match decided.try_recv() {
                    Ok(true) if chunk[n - 1] == b'\n' => break true,
                    Ok(true) => {
                        // Mid-line: mediate from the next line on.
                        if copy_to_line_end(session, &mut from_child) {
                            break true;
                        }
                        return;
                    }
                    Ok(false) | Err(mpsc::TryRecvError::Disconnected) => break false,
                    Err(mpsc::TryRecvError::Empty) => {}
                }
            }
        }
    };
    if mediated {
        let mut lines = lines::Lines::new(from_child, session.max_line());
        session.server_loop(&mut lines);
    } else {
        let _ = io::copy(&mut from_child, &mut ClientOut(session));
    }
}

/// Copy the rest of a line begun before the decision; false at the end of output.
fn copy_to_line_end(session: &mediate::Session, from: &mut impl Read) -> bool {
    let mut byte = [0u8; 1];
    loop {
        match from.read(&mut byte) {
            Ok(1) => {
                if session.to_client(&byte).is_err() {
                    return false;
                }
                if byte[0] == b'\n' {
                    return true;
                }
            }
            _ => return false,
        }
    }
}

/// The client's stdout as a writer, shared with the mediation.
struct ClientOut<'a>(&'a mediate::Session);

impl Write for ClientOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.to_client(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An unbuffered `File` on one of safex's own standard streams.
fn own(fd: BorrowedFd<'_>) -> io::Result<File> {
    Ok(File::from(fd.try_clone_to_owned()?))
}
