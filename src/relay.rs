//! Staying the program's parent when it is spoken to through pipes (as an
//! MCP client starts a stdio server): the program is spawned, not exec'd,
//! through safex's own exec helper, which gives it a parent-death signal
//! (it dies with safex); its stdin and stdout are relayed byte for byte,
//! the signals a client sends are forwarded, and its exit status is
//! safex's. A program on a terminal or writing to a file is exec'd as
//! before (`exec::run_program`). Reading the protocol builds on this.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Command, Stdio};

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
    use std::os::unix::process::CommandExt;
    let err = Command::new(program).args(&args[2..]).exec();
    eprintln!(
        "error: cannot start `{}`: {err}",
        Path::new(program).display()
    );
    Kind::Runtime.exit_code()
}

/// Spawn `program <lead...> <args...>` with exactly `env`, relay its
/// stdio and signals, and return its exit status (a program killed by a
/// signal kills safex with the same signal, so the client sees the same).
pub fn run(
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
) -> Result<i32> {
    let cannot = |e: io::Error| {
        Error::new(
            Kind::Runtime,
            format!("cannot start `{}`: {e}", program.display()),
        )
    };
    let me = std::env::current_exe().map_err(cannot)?;
    // Registered before the spawn, so no signal falls between the two.
    let mut signals = signal_hook::iterator::Signals::new(FORWARDED).map_err(cannot)?;
    let mut child = Command::new(me)
        .arg(EXEC_HELPER)
        .arg(std::process::id().to_string())
        .arg(program)
        .args(lead)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(cannot)?;
    let pid = Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if let (Some(pid), Some(sig)) = (pid, Signal::from_named_raw(sig)) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    });
    if let Some(mut to_child) = child.stdin.take() {
        std::thread::spawn(move || {
            let stdin = io::stdin();
            if let Ok(mut from_client) = own(stdin.as_fd()) {
                let _ = io::copy(&mut from_client, &mut to_child);
            }
            // Dropping `to_child` closes the program's stdin: EOF.
        });
    }
    let out = child.stdout.take().map(|mut from_child| {
        std::thread::spawn(move || {
            let stdout = io::stdout();
            if let Ok(mut to_client) = own(stdout.as_fd()) {
                let _ = io::copy(&mut from_child, &mut to_client);
            }
        })
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
    handle.close();
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return Ok(code);
    }
    if let Some(sig) = status.signal() {
        let _ = signal_hook::low_level::emulate_default_handler(sig);
        return Ok(128 + sig);
    }
    Ok(Kind::Runtime.exit_code())
}

/// An unbuffered `File` on one of safex's own standard streams.
fn own(fd: BorrowedFd<'_>) -> io::Result<File> {
    Ok(File::from(fd.try_clone_to_owned()?))
}
