//! Conformance: the real `safex` binary against the real registries this
//! machine is configured for, on a corpus of popular packages and MCP
//! servers at exact versions (`../shared/corpus/*.tsv`, or
//! `$SAFEX_CORPUS_DIR`).
//!
//! - `corpus_trees_lock`: `safex lock npx|uvx` on every row, whole tree, no
//!   launch. Each row ends as locked, an expected refusal (listed in
//!   `tests/conformance/expected.toml` and its `match` found on stderr),
//!   not found (the version has left the registry: reported, skipped), or a
//!   failure: an unexplained refusal, a timeout, a row the time budget left
//!   unrun, or a listed refusal that now locks ("stale entry").
//! - `mcp_servers_answer_initialize`: the `[[launch]]` rows of
//!   `expected.toml`, launched cold (the launch resolves and locks) with
//!   `safex npx -y` / `safex uvx`, must answer an MCP `initialize`.
//!
//! Registries are found at run time: npm's from `npm config get registry`,
//! PyPI's from `PIP_INDEX_URL`, pip's config, or pip's own default. No host
//! is written here, and messages are scrubbed of hosts before they are kept.
//! The report goes to stderr and to `target/conformance-report.md`
//! (`target/conformance-launch-report.md` for the launches).
//!
//! Knobs (environment):
//!
//! | variable | default | |
//! | --- | --- | --- |
//! | `SAFEX_CONFORMANCE_ONLY` | all | substring of `file-stem pin`, e.g. `npm-top`, `semver@`, `pypi-mcp-servers mcp==` |
//! | `SAFEX_CONFORMANCE_JOBS` | 6 | rows run at once |
//! | `SAFEX_CONFORMANCE_TIMEOUT_SECS` | 300 | one lock (the launch's `initialize` waits 120 s) |
//! | `SAFEX_CONFORMANCE_BUDGET_SECS` | 1800 | no row starts after this |
//! | `SAFEX_CORPUS_DIR` | `../shared/corpus` | the four `.tsv` lists |
//!
//! A subset while developing:
//!
//! ```sh
//! SAFEX_CONFORMANCE_ONLY=pypi-mcp cargo test --test it conformance -- --nocapture
//! SAFEX_CONFORMANCE_ONLY=@eslint/mcp@ cargo test --test it conformance corpus_trees_lock
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::corpus::{
    self, CORPUS_FILES, Ecosystem, Expected, Knobs, Launch, Registries, Row, first_error_line,
    is_not_found, kind_of, pool, read_corpus, read_expected, report_path, scrub, spread,
};
use crate::support::env::TestEnv;
use crate::support::mcp::try_exchange;

/// How long a launched server has to answer `initialize` (cold: this
/// includes resolving, downloading and locking its tree).
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(120);

/// The two tests take turns: each has its own pool of workers, and
/// timings measured while the other runs would mean less.
static TAKE_TURNS: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------
// Test 1: every tree locks
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Outcome {
    Locked {
        packages: Option<usize>,
    },
    /// Listed in `expected.toml`, and its `match` is on stderr.
    Expected {
        reason: String,
    },
    Unexplained {
        exit: Option<i32>,
        message: String,
        /// Set when the row is listed but the `match` was not on stderr.
        note: Option<String>,
    },
    NotFound {
        message: String,
    },
    TimedOut,
    /// Listed as an expected refusal, and it locked.
    Stale,
    NotRun,
}

struct Done {
    row: Row,
    outcome: Outcome,
    took: Option<Duration>,
}

#[test]
fn corpus_trees_lock() {
    let _turn = TAKE_TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let knobs = Knobs::from_env();
    let dir = corpus::corpus_dir();
    let corpus = read_corpus(&dir);
    let expected = read_expected();
    let rows: Vec<Row> = corpus
        .iter()
        .filter(|r| knobs.selects(&r.filter_key()))
        .cloned()
        .collect();
    assert!(
        !rows.is_empty(),
        "SAFEX_CONFORMANCE_ONLY={:?} matches none of the {} rows",
        knobs.only.as_deref().unwrap_or_default(),
        corpus.len()
    );
    let registries = Registries::find(&ecosystems(rows.iter().map(|r| r.ecosystem)));
    let hosts = registries.hosts();
    let cache = fresh_cache();
    eprintln!(
        "[conformance] locking {} of {} rows ({})",
        rows.len(),
        corpus.len(),
        knobs.describe()
    );

    let started = Instant::now();
    let finished = AtomicUsize::new(0);
    let results = pool(&rows, knobs.jobs, started + knobs.budget, |row| {
        let env = TestEnv::new();
        let mut run = corpus::run(
            lock_command(&env, row, &registries, cache.path()),
            knobs.timeout,
        );
        // A registry or network failure (exit 6) of a real registry is run
        // once more before it counts: the corpus tests safex's judgement of
        // packages, not the day's network. The retry is said in the log.
        if run.code == Some(6) && !corpus::is_not_found(row, &run.stderr) {
            eprintln!(
                "[conformance] {} {}: registry error, trying once more: {}",
                row.file,
                row.spec(),
                corpus::first_error_line(&corpus::scrub(&run.stderr, &hosts))
            );
            let env = TestEnv::new();
            run = corpus::run(
                lock_command(&env, row, &registries, cache.path()),
                knobs.timeout,
            );
        }
        let outcome = classify(row, &run, &expected, &hosts);
        let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
        eprintln!(
            "[conformance] {n}/{} {} {}: {} in {:.1} s",
            rows.len(),
            row.file,
            row.spec(),
            short(&outcome),
            run.took.as_secs_f64()
        );
        (outcome, run.took)
    });
    let wall = started.elapsed();

    let done: Vec<Done> = rows
        .into_iter()
        .zip(results)
        .map(|(row, r)| match r {
            Some((outcome, took)) => Done {
                row,
                outcome,
                took: Some(took),
            },
            None => Done {
                row,
                outcome: Outcome::NotRun,
                took: None,
            },
        })
        .collect();

    // Entries that name no row of the corpus are stale too (only checked
    // on a full run: a filtered one does not see every row).
    let unknown: Vec<String> = if knobs.only.is_none() {
        expected
            .refusal
            .iter()
            .filter(|e| {
                !corpus
                    .iter()
                    .any(|r| r.is(e.ecosystem, &e.name, &e.version))
            })
            .map(|e| format!("{} {}@{}", e.ecosystem, e.name, e.version))
            .collect()
    } else {
        Vec::new()
    };

    let report = render(&dir, &knobs, &done, &unknown, wall);
    eprintln!("\n{report}");
    let path = report_path("conformance-report.md");
    match std::fs::write(&path, &report) {
        Ok(()) => eprintln!("[conformance] report written to {}", path.display()),
        Err(e) => eprintln!("[conformance] cannot write {}: {e}", path.display()),
    }

    let failures = failures(&done, &unknown);
    assert!(
        failures.is_empty(),
        "{} conformance failures (report: {}):\n{}",
        failures.len(),
        path.display(),
        failures.join("\n")
    );
}

/// The harness bounds each row itself (`SAFEX_CONFORMANCE_TIMEOUT_SECS`).
/// A `dev` build is CPU-bound and several times slower than a release build
/// on a tree of hundreds of packages, so safex's own cold-launch deadline
/// (120 s by default) would measure the build profile, not the package: it
/// is set above the harness's bound here (its own tests are in
/// `tests/it/net_deadlines.rs`).
const LAUNCH_TIMEOUT: &str = "900";

fn lock_command(env: &TestEnv, row: &Row, registries: &Registries, cache: &Path) -> Command {
    let mut cmd = env.safex();
    cmd.env("SAFEX_CACHE_DIR", cache)
        .env("SAFEX_LAUNCH_TIMEOUT", LAUNCH_TIMEOUT);
    match row.ecosystem {
        Ecosystem::Npm => cmd.args(["lock", "npx", "--registry", registries.npm()]),
        Ecosystem::Pypi => cmd.args(["lock", "uvx", "--index-url", registries.pypi()]),
    };
    cmd.arg(row.spec());
    cmd
}

fn classify(row: &Row, run: &corpus::Run, expected: &Expected, hosts: &[String]) -> Outcome {
    let listed = expected
        .refusal
        .iter()
        .find(|e| row.is(e.ecosystem, &e.name, &e.version));
    if run.timed_out {
        return Outcome::TimedOut;
    }
    if run.code == Some(0) {
        return match listed {
            Some(_) => Outcome::Stale,
            None => Outcome::Locked {
                packages: packages_locked(&run.stderr).or_else(|| packages_locked(&run.stdout)),
            },
        };
    }
    let message = scrub(&first_error_line(&run.stderr), hosts);
    if is_not_found(row, &run.stderr) {
        return Outcome::NotFound { message };
    }
    let note = match listed {
        Some(e) if run.stderr.contains(&e.pattern) => {
            return Outcome::Expected {
                reason: e.reason.clone(),
            };
        }
        Some(e) => Some(format!(
            "listed in expected.toml, but its match `{}` is not on stderr",
            e.pattern
        )),
        None => None,
    };
    Outcome::Unexplained {
        exit: run.code,
        message,
        note,
    }
}

/// `N` from safex's `locked N packages for ...` (on stderr; the tree is on
/// stdout).
fn packages_locked(stdout: &str) -> Option<usize> {
    stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("locked ")?.split(' ').next()?.parse().ok())
}

fn short(o: &Outcome) -> String {
    match o {
        Outcome::Locked {
            packages: Some(n), ..
        } => format!("locked ({n} packages)"),
        Outcome::Locked { .. } => "locked".into(),
        Outcome::Expected { .. } => "expected refusal".into(),
        Outcome::Unexplained { exit, message, .. } => {
            format!("REFUSED (exit {}): {message}", exit_str(*exit))
        }
        Outcome::NotFound { .. } => "not found (skipped)".into(),
        Outcome::TimedOut => "TIMED OUT".into(),
        Outcome::Stale => "STALE: locks, but listed as an expected refusal".into(),
        Outcome::NotRun => "not run".into(),
    }
}

fn exit_str(code: Option<i32>) -> String {
    code.map_or_else(|| "signal".into(), |c| c.to_string())
}

fn unexplained_line(d: &Done) -> Option<String> {
    let Outcome::Unexplained {
        exit,
        message,
        note,
    } = &d.outcome
    else {
        return None;
    };
    let note = note.as_ref().map(|n| format!(" [{n}]")).unwrap_or_default();
    Some(format!(
        "{}: {message} (exit {}){note}",
        d.row.label(),
        exit_str(*exit)
    ))
}

/// Every reason for the test to fail, one line each.
fn failures(done: &[Done], unknown: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for d in done {
        match &d.outcome {
            Outcome::Unexplained { .. } => out.extend(unexplained_line(d)),
            Outcome::TimedOut => out.push(format!("{}: timed out", d.row.label())),
            Outcome::NotRun => out.push(format!("{}: not run: budget spent", d.row.label())),
            Outcome::Stale => out.push(format!(
                "{}: stale entry: remove it (it locks now)",
                d.row.label()
            )),
            _ => {}
        }
    }
    for u in unknown {
        out.push(format!("{u}: stale entry: remove it (not in the corpus)"));
    }
    out
}

/// The Markdown report.
fn render(dir: &Path, knobs: &Knobs, done: &[Done], unknown: &[String], wall: Duration) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# safex conformance report\n");
    let _ = writeln!(
        r,
        "Corpus `{}`: {} rows run; {}. Wall time {:.0} s. safex built with the `{}` \
         profile (times from a `dev` build are CPU-bound and several times a release build's).\n",
        dir.display(),
        done.len(),
        knobs.describe(),
        wall.as_secs_f64(),
        profile()
    );
    let files: Vec<&str> = CORPUS_FILES
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| done.iter().any(|d| d.row.file == *f))
        .collect();

    let _ = writeln!(
        r,
        "| corpus file | rows | locked | expected refusals | unexplained | not found | timed out | not run | stale |"
    );
    let _ = writeln!(
        r,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let count = |ds: &[&Done], f: fn(&Outcome) -> bool| ds.iter().filter(|d| f(&d.outcome)).count();
    let mut table_row = |label: &str, ds: &[&Done]| {
        let _ = writeln!(
            r,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ds.len(),
            count(ds, |o| matches!(o, Outcome::Locked { .. })),
            count(ds, |o| matches!(o, Outcome::Expected { .. })),
            count(ds, |o| matches!(o, Outcome::Unexplained { .. })),
            count(ds, |o| matches!(o, Outcome::NotFound { .. })),
            count(ds, |o| matches!(o, Outcome::TimedOut)),
            count(ds, |o| matches!(o, Outcome::NotRun)),
            count(ds, |o| matches!(o, Outcome::Stale)),
        );
    };
    for f in &files {
        let ds: Vec<&Done> = done.iter().filter(|d| d.row.file == *f).collect();
        table_row(f, &ds);
    }
    let all: Vec<&Done> = done.iter().collect();
    table_row("**all**", &all);

    for f in &files {
        let ds: Vec<&Done> = done.iter().filter(|d| d.row.file == *f).collect();
        let _ = writeln!(r, "\n## {f}\n");
        let locked: Vec<Duration> = ds
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Locked { .. }))
            .filter_map(|d| d.took)
            .collect();
        let ran: Vec<Duration> = ds.iter().filter_map(|d| d.took).collect();
        let packages: usize = ds
            .iter()
            .filter_map(|d| match d.outcome {
                Outcome::Locked { packages } => packages,
                _ => None,
            })
            .sum();
        let _ = writeln!(r, "- time per locked tree: {}", spread(&locked));
        let _ = writeln!(r, "- time per row run (any outcome): {}", spread(&ran));
        let _ = writeln!(r, "- packages in the locked trees: {packages}");

        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &ds {
            if let Outcome::Expected { reason } = &d.outcome {
                *reasons.entry(reason).or_default() += 1;
            }
        }
        section(
            &mut r,
            "Expected refusals by reason",
            reasons.iter().map(|(k, n)| format!("{n} × {k}")),
        );
        section(
            &mut r,
            "Unexplained refusals",
            ds.iter().filter_map(|d| unexplained_line(d)),
        );
        section(
            &mut r,
            "Not found (skipped: the version has left the registry)",
            ds.iter().filter_map(|d| match &d.outcome {
                Outcome::NotFound { message } => Some(format!("{}: {message}", d.row.label())),
                _ => None,
            }),
        );
        section(
            &mut r,
            "Timed out",
            ds.iter()
                .filter(|d| matches!(d.outcome, Outcome::TimedOut))
                .map(|d| d.row.label()),
        );
        section(
            &mut r,
            "Not run: budget spent",
            ds.iter()
                .filter(|d| matches!(d.outcome, Outcome::NotRun))
                .map(|d| d.row.label()),
        );
        section(
            &mut r,
            "Stale entries in expected.toml (they lock now: remove them)",
            ds.iter()
                .filter(|d| matches!(d.outcome, Outcome::Stale))
                .map(|d| d.row.label()),
        );
    }

    let mut kinds: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for d in done {
        if let Outcome::Unexplained { message, .. } = &d.outcome {
            let k = kinds.entry(kind_of(message)).or_insert((0, d.row.label()));
            k.0 += 1;
        }
    }
    let mut kinds: Vec<(String, (usize, String))> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let _ = writeln!(r, "\n## Unexplained refusals by kind (all files)");
    section(
        &mut r,
        "Kinds, most rows first (back-quoted parts masked; one row named)",
        kinds
            .iter()
            .map(|(k, (n, first))| format!("{n} × {k} (e.g. {first})")),
    );
    section(
        &mut r,
        "Stale entries in expected.toml (not in the corpus: remove them)",
        unknown.iter().cloned(),
    );
    r
}

fn section(r: &mut String, title: &str, lines: impl Iterator<Item = String>) {
    let lines: Vec<String> = lines.collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(r, "\n### {title} ({})\n", lines.len());
    for l in lines {
        let _ = writeln!(r, "- {l}");
    }
}

// ---------------------------------------------------------------------------
// Test 2: MCP servers answer `initialize`
// ---------------------------------------------------------------------------

enum Answer {
    Answered {
        server: String,
        protocol: String,
        took: Duration,
    },
    NotFound(String),
    Failed(String),
    NotRun,
}

#[test]
fn mcp_servers_answer_initialize() {
    let _turn = TAKE_TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let knobs = Knobs::from_env();
    let corpus = read_corpus(&corpus::corpus_dir());
    let expected = read_expected();
    let mut rows: Vec<(&Launch, Row)> = Vec::new();
    for l in &expected.launch {
        let row = corpus
            .iter()
            .find(|r| r.file.contains("mcp-servers") && r.is(l.ecosystem, &l.name, &l.version))
            .unwrap_or_else(|| {
                panic!(
                    "expected.toml: [[launch]] {} is not a row of an *-mcp-servers.tsv list",
                    l.label()
                )
            });
        if knobs.selects(&row.filter_key()) {
            rows.push((l, row.clone()));
        }
    }
    if rows.is_empty() {
        assert!(
            knobs.only.is_some(),
            "expected.toml has no [[launch]] rows: list MCP servers that start without credentials"
        );
        eprintln!(
            "[conformance] no [[launch]] row matches SAFEX_CONFORMANCE_ONLY={:?}",
            knobs.only.as_deref().unwrap_or_default()
        );
        return;
    }
    let registries = Registries::find(&ecosystems(rows.iter().map(|(l, _)| l.ecosystem)));
    let hosts = registries.hosts();
    let cache = fresh_cache();
    eprintln!(
        "[conformance] launching {} MCP servers ({})",
        rows.len(),
        knobs.describe()
    );

    let started = Instant::now();
    let answers = pool(&rows, knobs.jobs, started + knobs.budget, |(l, row)| {
        let env = TestEnv::new();
        let answer = match try_exchange(
            launch_command(&env, l, &registries, cache.path()),
            INITIALIZE_TIMEOUT,
        ) {
            Ok((msg, took)) => Answer::Answered {
                server: msg["result"]["serverInfo"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                protocol: msg["result"]["protocolVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                took,
            },
            Err(f) if is_not_found(row, &f.stderr) => {
                Answer::NotFound(scrub(&first_error_line(&f.stderr), &hosts))
            }
            Err(f) => {
                let said = scrub(&first_error_line(&f.stderr), &hosts);
                Answer::Failed(format!("{}; stderr: {said}", scrub(&f.why, &hosts)))
            }
        };
        eprintln!("[conformance] {}: {}", l.label(), answer_line(&answer));
        answer
    });
    let wall = started.elapsed();

    let mut r = String::new();
    let _ = writeln!(r, "# safex conformance: MCP servers launched cold\n");
    let _ = writeln!(
        r,
        "{} servers; {}; `initialize` within {} s. Wall time {:.0} s.\n",
        rows.len(),
        knobs.describe(),
        INITIALIZE_TIMEOUT.as_secs(),
        wall.as_secs_f64()
    );
    let mut failed = Vec::new();
    for ((l, _), a) in rows.iter().zip(answers) {
        let a = a.unwrap_or(Answer::NotRun);
        let line = format!("{}: {}", l.label(), answer_line(&a));
        if matches!(a, Answer::Failed(_) | Answer::NotRun) {
            failed.push(line.clone());
        }
        let _ = writeln!(r, "- {line}");
    }
    eprintln!("\n{r}");
    let path = report_path("conformance-launch-report.md");
    if let Err(e) = std::fs::write(&path, &r) {
        eprintln!("[conformance] cannot write {}: {e}", path.display());
    }
    assert!(
        failed.is_empty(),
        "{} of {} MCP servers did not answer initialize:\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
}

/// `safex npx --registry R -y [-p] name@version [command] args` or
/// `safex uvx --index-url I [--from] name==version [command] args`.
fn launch_command(env: &TestEnv, l: &Launch, registries: &Registries, cache: &Path) -> Command {
    let mut cmd = env.safex();
    cmd.env("SAFEX_CACHE_DIR", cache)
        .env("SAFEX_LAUNCH_TIMEOUT", LAUNCH_TIMEOUT)
        .envs(&l.env);
    let spec = l.ecosystem.spec(&l.name, &l.version);
    match (l.ecosystem, &l.command) {
        (Ecosystem::Npm, None) => cmd.args(["npx", "--registry", registries.npm(), "-y", &spec]),
        (Ecosystem::Npm, Some(c)) => {
            cmd.args(["npx", "--registry", registries.npm(), "-y", "-p", &spec, c])
        }
        (Ecosystem::Pypi, None) => cmd.args(["uvx", "--index-url", registries.pypi(), &spec]),
        (Ecosystem::Pypi, Some(c)) => {
            cmd.args(["uvx", "--index-url", registries.pypi(), "--from", &spec, c])
        }
    };
    cmd.args(&l.args);
    cmd
}

fn answer_line(a: &Answer) -> String {
    match a {
        Answer::Answered {
            server,
            protocol,
            took,
        } => format!(
            "answered in {:.1} s as `{server}` (protocol {protocol})",
            took.as_secs_f64()
        ),
        Answer::NotFound(m) => format!("not found (skipped): {m}"),
        Answer::Failed(m) => format!("FAILED: {m}"),
        Answer::NotRun => "not run: budget spent".into(),
    }
}

// ---------------------------------------------------------------------------
// Shared by both
// ---------------------------------------------------------------------------

fn ecosystems(it: impl Iterator<Item = Ecosystem>) -> Vec<Ecosystem> {
    let mut v: Vec<Ecosystem> = it.collect();
    v.sort();
    v.dedup();
    v
}

/// The profile this target (and so the `safex` it runs) was built with.
fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    }
}

/// One cache for the whole run, so shared dependencies download once.
fn fresh_cache() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("safex-conformance-cache-")
        .tempdir()
        .expect("temp dir for the cache")
}
