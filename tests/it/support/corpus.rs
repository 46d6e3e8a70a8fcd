//! What the conformance target (`tests/it/conformance.rs`) needs around the
//! real `safex` binary: the corpus lists, the registries this machine is
//! configured for, `tests/conformance/expected.toml`, the run-time knobs,
//! a worker pool with a time budget, a child run with a timeout, and the
//! scrubbing of host names out of everything a report keeps.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::pyfixture::normalize;

// ---------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Npm,
    Pypi,
}

impl Ecosystem {
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
        }
    }
    /// The exact pin as safex takes it: `name@version` or `name==version`.
    pub fn spec(self, name: &str, version: &str) -> String {
        match self {
            Ecosystem::Npm => format!("{name}@{version}"),
            Ecosystem::Pypi => format!("{name}=={version}"),
        }
    }
    /// Names as the ecosystem compares them (PEP 503 for PyPI).
    pub fn same_name(self, a: &str, b: &str) -> bool {
        match self {
            Ecosystem::Npm => a == b,
            Ecosystem::Pypi => normalize(a) == normalize(b),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four lists, in the order they are run and reported.
pub const CORPUS_FILES: [(&str, Ecosystem); 4] = [
    ("npm-mcp-servers.tsv", Ecosystem::Npm),
    ("npm-top.tsv", Ecosystem::Npm),
    ("pypi-mcp-servers.tsv", Ecosystem::Pypi),
    ("pypi-top.tsv", Ecosystem::Pypi),
];

/// One package at one exact version, from one corpus file.
#[derive(Clone, Debug)]
pub struct Row {
    pub file: &'static str,
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
}

impl Row {
    pub fn spec(&self) -> String {
        self.ecosystem.spec(&self.name, &self.version)
    }
    /// `ecosystem name@version`, as the report names a row.
    pub fn label(&self) -> String {
        format!("{} {}@{}", self.ecosystem, self.name, self.version)
    }
    /// What `SAFEX_CONFORMANCE_ONLY` is matched against: the file's stem
    /// and the pin, e.g. `npm-top semver@7.8.6`.
    pub fn filter_key(&self) -> String {
        format!("{} {}", self.file.trim_end_matches(".tsv"), self.spec())
    }
    pub fn is(&self, ecosystem: Ecosystem, name: &str, version: &str) -> bool {
        self.ecosystem == ecosystem
            && self.version == version
            && ecosystem.same_name(&self.name, name)
    }
}

/// `$SAFEX_CORPUS_DIR`, else `../shared/corpus` next to the crate. Panics
/// when it is not there: a conformance run with no corpus must not pass.
pub fn corpus_dir() -> PathBuf {
    let dir = match std::env::var_os("SAFEX_CORPUS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    };
    assert!(
        dir.is_dir(),
        "the conformance corpus is missing: no directory {} (set SAFEX_CORPUS_DIR to the \
         directory holding {})",
        dir.display(),
        CORPUS_FILES.map(|(f, _)| f).join(", ")
    );
    dir
}

/// Every row of the four lists. Panics on a missing file or a malformed
/// line (each file has a header line; columns name, version, popularity).
pub fn read_corpus(dir: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for (file, ecosystem) in CORPUS_FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("corpus file {}: {e}", path.display()));
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        assert!(
            header.starts_with("name\tversion"),
            "{}: the first line should be the header `name<TAB>version<TAB>...`, not {header:?}",
            path.display()
        );
        for (n, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut cols = line.split('\t');
            let (Some(name), Some(version)) = (cols.next(), cols.next()) else {
                panic!(
                    "{} line {}: expected name<TAB>version",
                    path.display(),
                    n + 2
                );
            };
            assert!(
                !name.is_empty() && !version.is_empty(),
                "{} line {}: empty name or version",
                path.display(),
                n + 2
            );
            rows.push(Row {
                file,
                ecosystem,
                name: name.trim().to_string(),
                version: version.trim().to_string(),
            });
        }
    }
    assert!(
        !rows.is_empty(),
        "the corpus in {} has no rows",
        dir.display()
    );
    rows
}

// ---------------------------------------------------------------------------
// Registries
// ---------------------------------------------------------------------------

/// The registries this machine is configured for, found at run time (no
/// host is written in this file).
#[derive(Clone, Debug, Default)]
pub struct Registries {
    pub npm: Option<String>,
    pub pypi: Option<String>,
}

impl Registries {
    /// Finds the registry of each ecosystem in `needed`; panics, saying
    /// which command failed, when one cannot be found.
    pub fn find(needed: &[Ecosystem]) -> Registries {
        let mut r = Registries::default();
        if needed.contains(&Ecosystem::Npm) {
            r.npm = Some(npm_registry());
        }
        if needed.contains(&Ecosystem::Pypi) {
            r.pypi = Some(pypi_index());
        }
        r
    }
    pub fn npm(&self) -> &str {
        self.npm.as_deref().expect("npm registry not looked up")
    }
    pub fn pypi(&self) -> &str {
        self.pypi.as_deref().expect("PyPI index not looked up")
    }
    /// The host names of both, to scrub from messages.
    pub fn hosts(&self) -> Vec<String> {
        [&self.npm, &self.pypi]
            .into_iter()
            .flatten()
            .filter_map(|u| url::Url::parse(u).ok())
            .filter_map(|u| u.host_str().map(str::to_string))
            .collect()
    }
}

/// Run a configuration command with the developer's own environment (that
/// is where the configuration lives); its trimmed stdout if it succeeded
/// and printed something.
fn config_output(program: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !out.is_empty() && out != "undefined").then_some(out)
}

/// `npm config get registry`.
fn npm_registry() -> String {
    config_output("npm", &["config", "get", "registry"]).unwrap_or_else(|| {
        panic!(
            "`npm config get registry` failed or printed nothing: the npm rows need npm's registry"
        )
    })
}

/// `PIP_INDEX_URL`, else `pip config get global.index-url`, else pip's
/// built-in default.
fn pypi_index() -> String {
    if let Some(url) = std::env::var("PIP_INDEX_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return url.trim().to_string();
    }
    if let Some(url) = config_output(
        "python3",
        &["-m", "pip", "config", "get", "global.index-url"],
    ) {
        return url;
    }
    config_output(
        "python3",
        &[
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ],
    )
    .unwrap_or_else(|| {
        panic!(
            "no PyPI index: PIP_INDEX_URL is unset, `python3 -m pip config get global.index-url` \
             failed, and pip's default could not be read"
        )
    })
}

// ---------------------------------------------------------------------------
// Host names out of stored messages
// ---------------------------------------------------------------------------

/// `text` with the authority of every URL (`scheme://user@host:port`) and
/// every host in `hosts` replaced by `<host>`.
pub fn scrub(text: &str, hosts: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || "`'\")>]<,;".contains(c))
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str("<host>");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    for h in hosts {
        if !h.is_empty() {
            out = out.replace(h.as_str(), "<host>");
        }
    }
    out
}

// ---------------------------------------------------------------------------
// expected.toml
// ---------------------------------------------------------------------------

/// `tests/conformance/expected.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    #[serde(default)]
    pub refusal: Vec<Refusal>,
    #[serde(default)]
    pub launch: Vec<Launch>,
}

/// A refusal that is true: the tree needs something safex must not do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// One line: why this refusal protects.
    pub reason: String,
    /// A substring of safex's stderr.
    #[serde(rename = "match")]
    pub pattern: String,
}

/// An MCP server that answers `initialize` with no credentials or service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// The executable when it is not named like the package (`npx -p` /
    /// `uvx --from`).
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl Launch {
    pub fn label(&self) -> String {
        format!("{} {}@{}", self.ecosystem, self.name, self.version)
    }
}

pub fn expected_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/expected.toml")
}

/// The parsed file; panics on a syntax error, a duplicate entry, or a
/// `reason`/`match` that is empty or not one line.
pub fn read_expected() -> Expected {
    let path = expected_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let expected: Expected =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid: {e}", path.display()));
    let mut seen = std::collections::HashSet::new();
    for r in &expected.refusal {
        let id = format!("{} {}@{}", r.ecosystem, r.name, r.version);
        assert!(
            seen.insert(id.clone()),
            "{}: [[refusal]] {id} is listed twice",
            path.display()
        );
        for (field, value) in [("reason", &r.reason), ("match", &r.pattern)] {
            assert!(
                !value.trim().is_empty() && !value.contains('\n'),
                "{}: [[refusal]] {id}: `{field}` must be one non-empty line",
                path.display()
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    for l in &expected.launch {
        assert!(
            seen.insert(l.label()),
            "{}: [[launch]] {} is listed twice",
            path.display(),
            l.label()
        );
    }
    expected
}

// ---------------------------------------------------------------------------
// Knobs
// ---------------------------------------------------------------------------

/// The run-time settings, from the environment.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// `SAFEX_CONFORMANCE_JOBS` (default 6).
    pub jobs: usize,
    /// `SAFEX_CONFORMANCE_TIMEOUT_SECS` (default 300): one row.
    pub timeout: Duration,
    /// `SAFEX_CONFORMANCE_BUDGET_SECS` (default 1800): no row starts later.
    pub budget: Duration,
    /// `SAFEX_CONFORMANCE_ONLY`: a substring of `file-stem pin`.
    pub only: Option<String>,
}

impl Knobs {
    pub fn from_env() -> Knobs {
        Knobs {
            jobs: number("SAFEX_CONFORMANCE_JOBS", 6).max(1) as usize,
            timeout: Duration::from_secs(number("SAFEX_CONFORMANCE_TIMEOUT_SECS", 300)),
            budget: Duration::from_secs(number("SAFEX_CONFORMANCE_BUDGET_SECS", 30 * 60)),
            only: std::env::var("SAFEX_CONFORMANCE_ONLY")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
    pub fn selects(&self, key: &str) -> bool {
        self.only.as_deref().is_none_or(|o| key.contains(o))
    }
    pub fn describe(&self) -> String {
        format!(
            "{} jobs, {} s per row, budget {} s{}",
            self.jobs,
            self.timeout.as_secs(),
            self.budget.as_secs(),
            match &self.only {
                Some(o) => format!(", only rows matching `{o}`"),
                None => String::new(),
            }
        )
    }
}

fn number(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a whole number")),
        _ => default,
    }
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// Run `f` on every item with `jobs` threads. An item not started by
/// `deadline` is not run: its slot is `None`. Results keep the items' order.
pub fn pool<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    deadline: Instant,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() || Instant::now() >= deadline {
                        return;
                    }
                    let r = f(&items[i]);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// How one child run ended.
#[derive(Debug)]
pub struct Run {
    /// The exit code; `None` when killed by a signal or never started.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    pub timed_out: bool,
}

/// Run `cmd` (stdin closed) to its end, or kill it by its PID after
/// `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> Run {
    let started = Instant::now();
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Run {
                code: None,
                stdout: String::new(),
                stderr: format!("error: cannot start {:?}: {e}", cmd.get_program()),
                took: started.elapsed(),
                timed_out: false,
            };
        }
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = started + timeout;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(s)) => break (Some(s), false),
            Ok(None) if Instant::now() >= deadline => {
                // `Child::kill` sends SIGKILL to this child's PID only.
                let _ = child.kill();
                break (child.wait().ok(), true);
            }
            Ok(None) => thread::sleep(Duration::from_millis(25)),
            Err(_) => break (None, false),
        }
    };
    let took = started.elapsed();
    // A grandchild holding a pipe open must not hang the run.
    let collect =
        |rx: mpsc::Receiver<String>| rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    Run {
        code: status.and_then(|s| s.code()),
        stdout: collect(out),
        stderr: collect(err),
        took,
        timed_out,
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    } else {
        let _ = tx.send(String::new());
    }
    rx
}

// ---------------------------------------------------------------------------
// Reading safex's stderr
// ---------------------------------------------------------------------------

/// The `error: ...` message, without `error: `, on one line: a message
/// that ends with `:` gets its continuation lines (up to the `hint:`)
/// joined with ` / `. Falls back to the last non-empty line.
pub fn first_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("error: ")) else {
        return lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| "(nothing on stderr)".into());
    };
    let mut msg = lines[start]
        .trim_start_matches("error: ")
        .trim()
        .to_string();
    if msg.ends_with(':') {
        let more: Vec<&str> = lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with("hint:") && !l.starts_with("error:"))
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if !more.is_empty() {
            msg = format!("{msg} {}", more.join(" / "));
        }
    }
    const MAX: usize = 400;
    if msg.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| msg.is_char_boundary(i))
            .unwrap_or(0);
        msg.truncate(cut);
        msg.push('…');
    }
    msg
}

/// The kind of a message: its back-quoted parts (names, versions, paths,
/// URLs) masked, so that one cause in many packages is counted once.
pub fn kind_of(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars() {
        if c == '`' {
            if !quoted {
                out.push_str("`…`");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Does `stderr` say the row's own package or version is not on the
/// registry (withdrawn since the corpus was picked)? Uses safex's own
/// messages (`src/npm/resolve.rs`, `src/npm/registry.rs`,
/// `src/pypi/resolve.rs`, `src/pypi/index.rs`); a missing *dependency*
/// is not this.
pub fn is_not_found(row: &Row, stderr: &str) -> bool {
    let lines: Vec<&str> = stderr.lines().collect();
    let Some(i) = lines.iter().position(|l| l.starts_with("error: ")) else {
        return false;
    };
    let first = lines[i];
    match row.ecosystem {
        Ecosystem::Npm => {
            let name = &row.name;
            first.starts_with(&format!(
                "error: `{name}` has no version `{}` on the registry",
                row.version
            )) || first.starts_with(&format!(
                "error: package `{name}` was not found on the registry"
            ))
        }
        Ecosystem::Pypi => {
            let name = normalize(&row.name);
            if first.starts_with(&format!(
                "error: project `{name}` was not found on the index"
            )) || (first.starts_with(&format!("error: `{name}=="))
                && first.ends_with("is not on the index"))
            {
                return true;
            }
            // PubGrub's report when the pinned root version does not exist
            // at all: one line, the root's own requirement.
            first == "error: these packages cannot be installed together:"
                && lines.get(i + 1).is_some_and(|l| {
                    l.starts_with(&format!("the requested packages depends on {name} "))
                })
                && lines.get(i + 2).is_none_or(|l| l.starts_with("hint:"))
        }
    }
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/// `median …, p90 …, max …` in seconds (nearest rank), or `none`.
pub fn spread(times: &[Duration]) -> String {
    if times.is_empty() {
        return "none".into();
    }
    let mut t: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    t.sort_by(f64::total_cmp);
    let rank = |p: f64| t[((p * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1];
    format!(
        "median {:.1} s, p90 {:.1} s, max {:.1} s (n={})",
        rank(0.5),
        rank(0.9),
        t[t.len() - 1],
        t.len()
    )
}

/// Where reports go: `target/` (the parent of `CARGO_TARGET_TMPDIR`).
pub fn report_path(file: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join(file)
}
