//! safex stays the parent of a program it speaks to through pipes (as an
//! MCP client starts a server): bytes relayed unchanged both ways, the exit
//! status kept, signals forwarded, and the program dies with safex. A
//! program whose stdout is a file is exec'd as before.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::env::TestEnv;
use crate::support::fixture::*;

/// A registry with the test programs, each launched once to fill the cache.
fn registry() -> FixtureRegistry {
    FixtureRegistry::builder()
        // Echoes stdin to stdout, then reports its pids and exits 7.
        .package(Pkg::program(
            "echoer",
            "1.0.0",
            "const c = []; process.stdin.on('data', d => c.push(d)); \
             process.stdin.on('end', () => { process.stdout.write(Buffer.concat(c)); \
             process.stderr.write(`pid=${process.pid} ppid=${process.ppid}\\n`); process.exitCode = 7; });",
        ))
        // Says it is ready, then waits for a signal.
        .package(Pkg::program(
            "waiter",
            "1.0.0",
            "process.on('SIGTERM', () => { process.stderr.write('got SIGTERM\\n'); process.exit(3); }); \
             process.stdout.write(`ready ${process.pid}\\n`); setInterval(() => {}, 1000);",
        ))
        // Kills itself with SIGTERM (no handler): dies by the signal.
        .package(Pkg::program(
            "suicide",
            "1.0.0",
            "process.kill(process.pid, 'SIGTERM'); setInterval(() => {}, 1000);",
        ))
        .build()
}

fn spawn_piped(reg: &FixtureRegistry, env: &TestEnv, spec: &str) -> Child {
    reg.safex(env)
        .args(["-q", "npx", "-y", spec])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn safex")
}

fn wait_for(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("safex did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_line(child: &mut Child) -> String {
    let out = child.stdout.as_mut().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Bytes through the relay are the program's bytes (binary, NUL, not
/// UTF-8, larger than any pipe buffer), the program's exit code is
/// safex's, and the program's parent is safex.
#[test]
fn piped_bytes_pass_unchanged_and_the_exit_code_is_kept() {
    let env = TestEnv::new();
    let reg = registry();
    let input: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..2 {
        let mut child = spawn_piped(&reg, &env, "echoer@1.0.0");
        let pid = child.id();
        let mut stdin = child.stdin.take().unwrap();
        let data = input.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        writer.join().unwrap().unwrap();
        let status = wait_for(&mut child, Duration::from_secs(120));
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(7), "{err}");
        assert!(out == input, "{} bytes back of {}", out.len(), input.len());
        assert!(
            err.contains(&format!("ppid={pid}")),
            "not safex's child: {err}"
        );
    }
}

/// stdout to a file, stdin not a pipe: exec'd as before (the program is
/// the process the caller started).
#[test]
fn a_program_writing_to_a_file_is_execd() {
    let env = TestEnv::new();
    let reg = registry();
    let file = env.home().join("out.bin");
    let mut child = reg
        .safex(&env)
        .args(["-q", "npx", "-y", "echoer@1.0.0"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&file).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = wait_for(&mut child, Duration::from_secs(120));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(7), "{err}");
    assert!(err.contains(&format!("pid={pid} ")), "not exec'd: {err}");
}

/// A SIGTERM sent to safex reaches the program, and the program's own
/// exit status is safex's.
#[test]
fn a_signal_to_safex_reaches_the_program() {
    let env = TestEnv::new();
    let reg = registry();
    let mut child = spawn_piped(&reg, &env, "waiter@1.0.0");
    assert!(read_line(&mut child).starts_with("ready "));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_for(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("got SIGTERM"), "{err}");
}

/// A program killed by a signal takes safex down with the same signal.
#[test]
fn a_program_killed_by_a_signal_kills_safex_alike() {
    use std::os::unix::process::ExitStatusExt;
    let env = TestEnv::new();
    let reg = registry();
    let mut child = spawn_piped(&reg, &env, "suicide@1.0.0");
    let status = wait_for(&mut child, Duration::from_secs(120));
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

/// safex killed outright (SIGKILL: no handler runs): the program dies too.
#[test]
fn the_program_dies_with_safex() {
    let env = TestEnv::new();
    let reg = registry();
    let mut child = spawn_piped(&reg, &env, "waiter@1.0.0");
    let line = read_line(&mut child);
    let pid: u32 = line.trim_start_matches("ready ").parse().expect(&line);
    assert_ne!(pid, child.id(), "exec'd, not relayed");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    child.kill().unwrap();
    let _ = child.wait();
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}/status")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the program {pid} outlived safex"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
