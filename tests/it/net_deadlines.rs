//! Network waits end, and say why (issue 11, items 11 and 12): a silent
//! server, a trickling body, a slow cold launch as a whole, `Retry-After`,
//! a body cut short with a length that adds up, the retry count, and a URL
//! whose scheme does not match the port's protocol. Each runs the real
//! binary against the fixture servers with small deadlines, so that it takes
//! seconds; time bounds are loose upper bounds, not benchmarks.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::env::{TestEnv, stderr};
use crate::support::fixture::*;
use crate::support::pyfixture::{PyIndex, PyPkg, file_path, page_path};

/// Run `cmd` to its end, at most `limit` (a hang fails the test instead of
/// holding it), and return the output and how long it took.
fn timed(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn safex");
    let out = wait_with_timeout(&mut child, limit);
    (out, started.elapsed())
}

/// Noise that does not compress, so that a tarball is about `len` bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn registry(extra: usize) -> FixtureRegistry {
    FixtureRegistry::builder()
        .package(
            Pkg::program("slowpoke", "1.0.0", "console.log(require('slowpoke-dep'));")
                .dep("slowpoke-dep", "^1.0.0"),
        )
        .package(
            Pkg::new("slowpoke-dep", "1.0.0")
                .file("index.js", "module.exports = 'fine';")
                .file("noise.bin", noise(extra)),
        )
        .build()
}

fn npx(reg: &FixtureRegistry, env: &TestEnv, vars: &[(&str, &str)]) -> Command {
    let mut cmd = reg.safex(env);
    cmd.args(["npx", "-y", "slowpoke@1.0.0"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

// ---------------------------------------------------------------------------
// Stalls and trickles
// ---------------------------------------------------------------------------

/// A registry that accepts the request and never answers: the launch ends
/// after the stall deadline, naming the URL and what happened, instead of
/// waiting a minute per attempt.
#[test]
fn a_silent_registry_fails_after_the_stall_deadline() {
    let env = TestEnv::new();
    let reg = registry(0);
    reg.fault_always(&packument_path("slowpoke"), Fault::Silent);
    let (out, took) = timed(
        npx(&reg, &env, &[("SAFEX_STALL_TIMEOUT", "1")]),
        Duration::from_secs(90),
    );
    assert_refused(&env, &out, 6, &["/slowpoke`", "no data for 1 s"], &[], &[]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// The same for a tarball whose answer never comes.
#[test]
fn a_silent_tarball_fails_after_the_stall_deadline() {
    let env = TestEnv::new();
    let reg = registry(0);
    reg.fault_always(&tarball_path("slowpoke-dep", "1.0.0"), Fault::Silent);
    let (out, took) = timed(
        npx(&reg, &env, &[("SAFEX_STALL_TIMEOUT", "1")]),
        Duration::from_secs(90),
    );
    assert_refused(
        &env,
        &out,
        6,
        &["slowpoke-dep-1.0.0.tgz", "no data for 1 s"],
        &[],
        &[],
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// A body that arrives at 20 bytes/s is cut off once the window has passed,
/// although a byte arrives well within the stall deadline each time.
#[test]
fn a_trickling_tarball_is_cut_off() {
    let env = TestEnv::new();
    let reg = registry(8 << 10); // ~8 KiB: 400 s at this rate
    let trickle = Fault::SlowBody {
        chunk: 1,
        delay: Duration::from_millis(50),
    };
    reg.fault_always(&tarball_path("slowpoke-dep", "1.0.0"), trickle);
    let (out, took) = timed(
        npx(
            &reg,
            &env,
            &[("SAFEX_STALL_TIMEOUT", "2"), ("SAFEX_MIN_RATE", "1024")],
        ),
        Duration::from_secs(120),
    );
    assert_refused(
        &env,
        &out,
        6,
        &["slowpoke-dep-1.0.0.tgz", "too slow", "1024 bytes/s"],
        &[],
        &[],
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// A slow but working link is not cut off: pauses shorter than the stall
/// deadline, an average well above the floor.
#[test]
fn a_slow_steady_download_is_not_cut_off() {
    let env = TestEnv::new();
    let reg = registry(48 << 10);
    let steady = Fault::SlowBody {
        chunk: 4 << 10,
        delay: Duration::from_millis(300),
    };
    reg.fault_always(&tarball_path("slowpoke-dep", "1.0.0"), steady);
    let (out, _) = timed(
        npx(
            &reg,
            &env,
            &[("SAFEX_STALL_TIMEOUT", "1"), ("SAFEX_MIN_RATE", "1024")],
        ),
        Duration::from_secs(120),
    );
    assert_ran(&out, "fine\n");
}

/// The whole cold launch has a bound, and the error names what was pending.
#[test]
fn a_cold_launch_has_an_overall_deadline() {
    let env = TestEnv::new();
    let reg = registry(0);
    reg.fault(
        &packument_path("slowpoke"),
        Fault::SlowFirstByte(Duration::from_secs(20)),
        1,
    );
    let (out, took) = timed(
        npx(&reg, &env, &[("SAFEX_LAUNCH_TIMEOUT", "2")]),
        Duration::from_secs(90),
    );
    assert_refused(
        &env,
        &out,
        6,
        &[
            "within 2 s",
            "SAFEX_LAUNCH_TIMEOUT",
            "still waiting for",
            "/slowpoke`",
        ],
        &[],
        &[],
    );
    assert!(took < Duration::from_secs(12), "took {took:?}");
}

#[test]
fn a_bad_deadline_value_is_a_usage_error() {
    let env = TestEnv::new();
    let reg = registry(0);
    let out = run(&mut npx(&reg, &env, &[("SAFEX_STALL_TIMEOUT", "soon")]));
    assert_refused(&env, &out, 2, &["SAFEX_STALL_TIMEOUT", "soon"], &[], &[]);
    assert_eq!(reg.requests().len(), 0, "{:?}", reg.request_lines());
}

// ---------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `t`.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `Retry-After: 2` on a 503: safex waits that long (not its own 200 ms
/// backoff), then the launch succeeds with one more request.
#[test]
fn retry_after_in_seconds_is_waited_for() {
    let env = TestEnv::new();
    let reg = registry(0);
    reg.fault(
        &packument_path("slowpoke"),
        Fault::RetryAfter(503, "2".into()),
        1,
    );
    let (out, took) = timed(npx(&reg, &env, &[]), Duration::from_secs(90));
    assert_ran(&out, "fine\n");
    assert_eq!(
        reg.packument_hits("slowpoke"),
        2,
        "{:?}",
        reg.request_lines()
    );
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
}

/// The HTTP-date form on a 429, a few seconds ahead.
#[test]
fn retry_after_as_a_date_is_waited_for() {
    let env = TestEnv::new();
    let reg = registry(0);
    let at = SystemTime::now() + Duration::from_secs(3);
    reg.fault(
        &tarball_path("slowpoke-dep", "1.0.0"),
        Fault::RetryAfter(429, http_date(at)),
        1,
    );
    let (out, took) = timed(npx(&reg, &env, &[]), Duration::from_secs(90));
    assert_ran(&out, "fine\n");
    // The date has whole seconds: at least 2 s of the 3 are left to wait.
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
}

/// A wait beyond the cap: no waiting, no retry storm; the error says when.
#[test]
fn retry_after_beyond_the_cap_fails_at_once_saying_when() {
    let env = TestEnv::new();
    let reg = registry(0);
    reg.fault_always(
        &packument_path("slowpoke"),
        Fault::RetryAfter(503, "3600".into()),
    );
    let (out, took) = timed(
        npx(&reg, &env, &[("SAFEX_RETRY_AFTER_MAX", "5")]),
        Duration::from_secs(90),
    );
    assert_refused(
        &env,
        &out,
        6,
        &[
            "/slowpoke`",
            "3600 s",
            "try again after",
            "SAFEX_RETRY_AFTER_MAX",
        ],
        &[],
        &[],
    );
    assert_eq!(
        reg.packument_hits("slowpoke"),
        1,
        "{:?}",
        reg.request_lines()
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

// ---------------------------------------------------------------------------
// Bodies cut short with a matching length; the retry count
// ---------------------------------------------------------------------------

/// Lock the tree, then empty the cache: the next launch downloads again
/// against the lock.
fn locked_then_cache_emptied(reg: &FixtureRegistry, env: &TestEnv) {
    assert_ran(&run(&mut npx(reg, env, &[])), "fine\n");
    std::fs::remove_dir_all(env.cache()).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();
    reg.clear_log();
}

#[test]
fn a_tarball_cut_short_on_the_locked_path_is_fetched_again() {
    let env = TestEnv::new();
    let reg = registry(4 << 10);
    locked_then_cache_emptied(&reg, &env);
    reg.fault(&tarball_path("slowpoke-dep", "1.0.0"), Fault::CutShort, 1);
    assert_ran(&run(&mut npx(&reg, &env, &[])), "fine\n");
    assert_eq!(
        reg.tarball_hits("slowpoke-dep", "1.0.0"),
        2,
        "{:?}",
        reg.request_lines()
    );
}

/// Wrong bytes every time: a bounded number of fetches, then the integrity
/// error naming the lockfile.
#[test]
fn a_tarball_cut_short_every_time_is_an_integrity_error() {
    let env = TestEnv::new();
    let reg = registry(4 << 10);
    locked_then_cache_emptied(&reg, &env);
    reg.fault_always(&tarball_path("slowpoke-dep", "1.0.0"), Fault::CutShort);
    let out = run(&mut npx(&reg, &env, &[]));
    assert_refused(&env, &out, 4, &["slowpoke-dep@1.0.0", "lockfile"], &[], &[]);
    assert_eq!(
        reg.tarball_hits("slowpoke-dep", "1.0.0"),
        2,
        "{:?}",
        reg.request_lines()
    );
}

/// "after N attempts" is the number of requests the server saw.
#[test]
fn the_retry_message_counts_the_requests_sent() {
    let env = TestEnv::new();
    let reg = registry(0);
    reg.fault_always(&tarball_path("slowpoke-dep", "1.0.0"), Fault::Status(500));
    let out = run(&mut npx(&reg, &env, &[]));
    assert_code(&out, 6);
    let hits = reg.tarball_hits("slowpoke-dep", "1.0.0");
    assert_stderr_mentions(&out, &[&format!("after {hits} attempts")]);
}

// ---------------------------------------------------------------------------
// PyPI: the same deadlines on the index and its files
// ---------------------------------------------------------------------------

fn index(extra: usize) -> PyIndex {
    PyIndex::builder()
        .package(
            PyPkg::program(
                "slowpoke",
                "1.0.0",
                "import slowpoke_dep\nprint(slowpoke_dep.VERSION)",
            )
            .dep("slowpoke-dep>=1.0"),
        )
        .package(
            PyPkg::library("slowpoke-dep", "1.0.0", "").file("slowpoke_noise.bin", noise(extra)),
        )
        .build()
}

fn uvx(idx: &PyIndex, env: &TestEnv, vars: &[(&str, &str)]) -> Command {
    let mut cmd = idx.safex(env);
    cmd.args(["uvx", "slowpoke==1.0.0"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn a_silent_index_fails_after_the_stall_deadline() {
    let env = TestEnv::new();
    let idx = index(0);
    idx.fault_always(&page_path("slowpoke-dep"), Fault::Silent);
    let (out, took) = timed(
        uvx(&idx, &env, &[("SAFEX_STALL_TIMEOUT", "1")]),
        Duration::from_secs(90),
    );
    assert_refused(
        &env,
        &out,
        6,
        &["slowpoke-dep", "no data for 1 s"],
        &[],
        &[],
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_trickling_wheel_is_cut_off() {
    let env = TestEnv::new();
    let idx = index(8 << 10);
    let wheel = idx.wheel_name("slowpoke-dep", "1.0.0");
    let trickle = Fault::SlowBody {
        chunk: 1,
        delay: Duration::from_millis(50),
    };
    idx.fault_always(&file_path(&wheel), trickle);
    let (out, took) = timed(
        uvx(&idx, &env, &[("SAFEX_STALL_TIMEOUT", "2")]),
        Duration::from_secs(120),
    );
    assert_refused(&env, &out, 6, &[wheel.as_str(), "too slow"], &[], &[]);
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// Unlocked (cold) and locked: a wheel cut short once is fetched again.
#[test]
fn a_wheel_cut_short_is_fetched_again_locked_or_not() {
    let env = TestEnv::new();
    let idx = index(4 << 10);
    let wheel = idx.wheel_name("slowpoke-dep", "1.0.0");
    idx.fault(&file_path(&wheel), Fault::CutShort, 1);
    let (out, _) = timed(uvx(&idx, &env, &[]), Duration::from_secs(120));
    assert_ran(&out, "1.0.0\n");
    assert_eq!(idx.file_hits(&wheel), 2, "{:?}", idx.request_lines());

    std::fs::remove_dir_all(env.cache()).unwrap();
    std::fs::create_dir_all(env.cache()).unwrap();
    idx.clear_log();
    idx.fault(&file_path(&wheel), Fault::CutShort, 1);
    let (out, _) = timed(uvx(&idx, &env, &[]), Duration::from_secs(120));
    assert_ran(&out, "1.0.0\n");
    assert_eq!(idx.file_hits(&wheel), 2, "{:?}", idx.request_lines());
}

// ---------------------------------------------------------------------------
// Scheme and port disagree
// ---------------------------------------------------------------------------

/// `https://` to the fixture's plain-HTTP port.
#[test]
fn https_to_a_plain_http_port_says_so() {
    let env = TestEnv::new();
    let reg = registry(0);
    let url = format!("https://127.0.0.1:{}/", reg.port());
    let mut cmd = reg.safex(&env);
    cmd.env("SAFEX_NPM_REGISTRY", &url)
        .args(["npx", "-y", "slowpoke@1.0.0"]);
    let (out, took) = timed(cmd, Duration::from_secs(90));
    assert_refused(
        &env,
        &out,
        6,
        &["answered in plain HTTP, not TLS", "use `http://`"],
        &[],
        &[],
    );
    assert!(
        !stderr(&out).contains("InvalidContentType"),
        "{}",
        describe(&out)
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// `http://` to a TLS port (the test TLS front).
#[test]
fn http_to_a_tls_port_says_so() {
    let env = TestEnv::new();
    let reg = registry(0);
    let front = crate::support::tls::TlsFront::new(reg.addr());
    let url = front.base.replacen("https://", "http://", 1) + "/";
    let mut cmd = reg.safex(&env);
    cmd.env("SAFEX_NPM_REGISTRY", &url)
        .env("SAFEX_CA_FILE", &front.ca)
        .args(["npx", "-y", "slowpoke@1.0.0"]);
    let (out, took) = timed(cmd, Duration::from_secs(90));
    assert_refused(
        &env,
        &out,
        6,
        &["did not answer in plain HTTP", "use `https://`"],
        &[],
        &[],
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A registry whose accept queue is full: the kernel drops the SYN and the
/// connection never opens. The connect phase has the stall deadline too
/// (connect, request and answer head share one: no data for that long).
#[test]
fn a_connection_that_never_opens_fails_after_the_stall_deadline() {
    // A raw listener on purpose: the point is a socket nothing ever
    // accepts, which no HTTP engine (ours included) can be.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Never accepted: fill the backlog until a connect no longer completes.
    let mut held = Vec::new();
    let full = (0..4096).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => {
                held.push(s);
                false
            }
            Err(_) => true,
        }
    });
    if !full {
        eprintln!(
            "SKIPPED: the kernel kept completing connections to a listener that accepts none ({} held); cannot make a connect stall here",
            held.len()
        );
        return;
    }
    let env = TestEnv::new();
    let mut cmd = env.safex();
    cmd.env("SAFEX_NPM_REGISTRY", format!("http://{addr}/"))
        .env("SAFEX_STALL_TIMEOUT", "1")
        .args(["npx", "-y", "slowpoke@1.0.0"]);
    let (out, took) = timed(cmd, Duration::from_secs(90));
    assert_refused(&env, &out, 6, &["127.0.0.1", "no data for 1 s"], &[], &[]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(listener);
}
