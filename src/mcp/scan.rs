//! `safex mcp scan`: every server entry of every config found, with what is
//! unsafe about it, at four levels: info < low < medium < high.

use serde::Serialize;

use crate::ecosystem::Ecosystem;
use crate::error::Result;
use crate::lock::LockFile;
use crate::mcp::baseline::{self, Change, Seen};
use crate::mcp::launch::{self, Launcher};
use crate::mcp::model::Server;
use crate::mcp::{Loaded, ScanArgs, secrets};
use crate::policy::LockMode;
use crate::session::Globals;
use crate::settings::Settings;
use crate::spelling::Spelling;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub level: Level,
    pub code: &'static str,
    pub message: String,
}

fn finding(level: Level, code: &'static str, message: String) -> Finding {
    Finding {
        level,
        code,
        message,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub client: &'static str,
    pub file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub server: String,
    pub launcher: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub client: &'static str,
    pub file: String,
    pub servers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub files: Vec<FileReport>,
    pub servers: Vec<Entry>,
}

impl Report {
    /// The highest level found; an unreadable file counts as medium (what
    /// it holds cannot be checked).
    pub fn worst(&self) -> Option<Level> {
        let files = self
            .files
            .iter()
            .filter(|f| f.error.is_some())
            .map(|_| Level::Medium);
        let servers = self
            .servers
            .iter()
            .flat_map(|e| e.findings.iter().map(|f| f.level));
        files.chain(servers).max()
    }
}

pub fn run(a: &ScanArgs, g: &Globals) -> Result<i32> {
    let settings = crate::mcp::settings(g)?;
    let loaded = crate::mcp::load(&a.common)?;
    let mut report = assess(&settings, &loaded)?;

    let bpath = crate::mcp::baseline_path(&a.common)?;
    let previous = baseline::load(&bpath)?;
    let mut now = Vec::new();
    for (e, s) in report.servers.iter_mut().zip(servers(&loaded)) {
        let seen = Seen {
            client: e.client.to_owned(),
            file: e.file.clone(),
            scope: e.scope.clone(),
            server: e.server.clone(),
            command_hash: s.command_hash(),
        };
        match previous.as_ref().map(|b| b.judge(&seen)) {
            Some(Change::New) => e.findings.push(finding(
                Level::High,
                "new-server",
                "not there at the previous scan: if you did not add it, something else did".into(),
            )),
            Some(Change::Changed) => e.findings.push(finding(
                Level::Medium,
                "changed-server",
                "its command or URL changed since the previous scan".into(),
            )),
            _ => {}
        }
        now.push(seen);
    }
    let read_ok: Vec<String> = loaded
        .iter()
        .filter(|l| l.servers.is_ok())
        .map(|l| l.target.path.display().to_string())
        .collect();
    let first = previous.is_none();
    let mut b = previous.unwrap_or_default();
    b.update(&read_ok, now);
    b.save(&bpath)?;

    if a.common.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| crate::error::Error::internal(format!("cannot encode the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", human(&report));
    }
    if !g.quiet {
        if first {
            eprintln!(
                "recorded a baseline of {} servers in `{}`",
                report.servers.len(),
                bpath.display()
            );
        }
        if report
            .servers
            .iter()
            .flat_map(|e| &e.findings)
            .any(|f| matches!(f.code, "unpinned" | "not-safex"))
        {
            eprintln!(
                "hint: `safex mcp pin` shows how to pin and launch these entries through safex; `--write` applies it"
            );
        }
    }
    Ok(match (a.fail_on, report.worst()) {
        (Some(at), Some(worst)) if worst >= at => crate::error::Kind::Policy.exit_code(),
        _ => 0,
    })
}

fn servers(loaded: &[Loaded]) -> impl Iterator<Item = &Server> {
    loaded
        .iter()
        .flat_map(|l| l.servers.as_ref().map(|v| v.iter()).into_iter().flatten())
}

pub fn assess(settings: &Settings, loaded: &[Loaded]) -> Result<Report> {
    let lock = LockFile::read(&settings.lockfile)?;
    let system = match &settings.system_lockfile {
        Some(p) => Some(LockFile::read(p)?),
        None => None,
    };
    let locks: Vec<&LockFile> = system.iter().chain(std::iter::once(&lock)).collect();
    let mut report = Report {
        version: 1,
        files: Vec::new(),
        servers: Vec::new(),
    };
    for l in loaded {
        let file = l.target.path.display().to_string();
        let client = l.target.client.id();
        report.files.push(FileReport {
            client,
            file: file.clone(),
            servers: l.servers.as_ref().map_or(0, Vec::len),
            error: l.servers.as_ref().err().map(ToString::to_string),
        });
        for s in l.servers.iter().flatten() {
            let mut e = entry(settings, &locks, s);
            e.client = client;
            e.file = file.clone();
            report.servers.push(e);
        }
    }
    Ok(report)
}

/// What is unsafe about one server entry.
fn entry(settings: &Settings, locks: &[&LockFile], s: &Server) -> Entry {
    let launcher = launch::classify(s.command.as_deref(), &s.args, s.url.as_deref());
    let mut e = Entry {
        client: "",
        file: String::new(),
        scope: s.scope.clone(),
        server: s.name.clone(),
        launcher: launcher.to_string(),
        ecosystem: None,
        package: None,
        version: None,
        findings: Vec::new(),
    };
    let prog = s
        .command
        .as_deref()
        .map(launch::program_name)
        .unwrap_or_default();
    match &launcher {
        Launcher::Direct { spelling, tail, .. } => {
            e.findings.push(finding(
                Level::Medium,
                "not-safex",
                format!("launched by `{launcher}`, not through safex: no lockfile, no hash check, install scripts run"),
            ));
            specs(settings, locks, spelling, &s.args[*tail..], false, &mut e);
        }
        Launcher::Safex { spelling } => {
            specs(settings, locks, spelling, &s.args[spelling.words.len()..], true, &mut e)
        }
        Launcher::Other(name) => e.findings.push(finding(
            Level::Medium,
            "not-safex",
            format!("launched by `{name}`, not through safex, and `safex mcp pin` does not rewrite it; rewrite it as `safex npx`/`safex uvx` by hand"),
        )),
        Launcher::SafexOther => e.findings.push(finding(
            Level::Low,
            "bad-args",
            "`safex` here runs no launcher (`npx`, `uvx`, `npm exec`, ...)".into(),
        )),
        Launcher::Docker => e.findings.push(finding(
            Level::Info,
            "unmanaged",
            format!("runs a container with `{prog}`; safex does not check images"),
        )),
        Launcher::Local => e.findings.push(finding(
            Level::Info,
            "unmanaged",
            format!("runs the local program `{}`; safex does not check it", s.command.as_deref().unwrap_or_default()),
        )),
        Launcher::Remote => e.findings.push(finding(
            Level::Info,
            "remote",
            "a remote server: nothing is launched on this machine".into(),
        )),
        Launcher::Missing => e.findings.push(finding(
            Level::Low,
            "bad-args",
            "no `command` and no URL".into(),
        )),
    }
    for sec in secrets::find(&s.env, &s.headers, &s.args) {
        e.findings.push(finding(
            Level::High,
            "secret",
            format!(
                "literal secret in {} (`{}`): anything that reads this file has it; {}",
                sec.place,
                sec.masked,
                if sec.place.starts_with("env ") {
                    "move it to the OS credential store: `safex mcp pin --write --move-secrets`"
                } else {
                    "use the client's interpolation or a secret store"
                }
            ),
        ));
    }
    // A reference only safex resolves: any other command gets its text.
    if !matches!(launcher, Launcher::Safex { .. }) {
        let places = s
            .env
            .iter()
            .filter(|(_, v)| v.starts_with(crate::secret::PREFIX))
            .map(|(k, _)| format!("env `{k}`"))
            .chain(
                s.args
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.contains(crate::secret::PREFIX))
                    .map(|(i, _)| format!("args[{i}]")),
            );
        for place in places {
            e.findings.push(finding(
                Level::Medium,
                "unresolved-secret",
                format!("{place} is a `safex-secret:` reference, but the entry is not launched by safex: the server gets the reference text, not the value"),
            ));
        }
    }
    e
}

/// Findings about the package specs of a launcher's argument list.
fn specs(
    settings: &Settings,
    locks: &[&LockFile],
    spelling: &Spelling,
    args: &[String],
    safex: bool,
    e: &mut Entry,
) {
    let tool = spelling.ecosystem;
    e.ecosystem = Some(tool.as_str());
    let plan = match launch::plan(spelling, args) {
        Ok(p) => p,
        Err(why) => {
            let level = if safex { Level::High } else { Level::Medium };
            e.findings.push(finding(
                level,
                "bad-args",
                format!("{why}; `safex {}` refuses this entry", spelling.name()),
            ));
            return;
        }
    };
    let eco = tool;
    let mut keys = Vec::new();
    for (i, sp) in plan.specs.iter().enumerate() {
        let parsed = match tool {
            Ecosystem::Npm => crate::npm::spec::parse_root(&sp.spec).map(|r| match r {
                Ok(p) => (p.name.to_string(), Ok(p.version.to_string()), p.to_string()),
                Err(crate::npm::spec::Unpinned::Floating { name, requested }) => {
                    (name.to_string(), Err(requested), String::new())
                }
            }),
            Ecosystem::Pypi => crate::pypi::spec::parse_root(&sp.spec).map(|r| match r {
                Ok(p) => (p.name.to_string(), Ok(p.version.to_string()), p.to_string()),
                Err(f) => (f.name.to_string(), Err(f.requested), String::new()),
            }),
        };
        let (name, version, key) = match parsed {
            Ok(x) => x,
            Err(err) => {
                e.findings.push(finding(
                    Level::High,
                    "unsupported-source",
                    format!("{}; `safex mcp pin` leaves it alone", err.message),
                ));
                continue;
            }
        };
        if i == 0 {
            e.package = Some(name.clone());
            e.version = version.clone().ok();
        }
        match version {
            Err(requested) => e.findings.push(finding(
                Level::High,
                "unpinned",
                match requested {
                    Some(r) => format!("`{name}` asks for `{r}`, not an exact version: each launch may run different code"),
                    None => format!("`{name}` has no version: each launch runs whatever is newest"),
                },
            )),
            Ok(v) => {
                if let Err(err) = settings.policy.check_root(eco, &name).and_then(|_| settings.policy.check_package(eco, &name, &v)) {
                    e.findings.push(finding(Level::High, "policy", err.message));
                }
                keys.push((name, key));
            }
        }
    }
    if !safex || keys.len() != plan.specs.len() || keys.is_empty() {
        return;
    }
    lock_findings(settings, locks, eco, &keys, e);
}

/// Is the pinned entry locked, and does its locked tree still pass the policy?
fn lock_findings(
    settings: &Settings,
    locks: &[&LockFile],
    eco: Ecosystem,
    keys: &[(String, String)],
    e: &mut Entry,
) {
    let roots: Vec<String> = keys.iter().map(|(_, k)| k.clone()).collect();
    let tree: Option<Vec<(String, String)>> = locks.iter().find_map(|l| match eco {
        Ecosystem::Npm => l.find::<crate::lock::NpmEntry>(&roots).map(|x| {
            x.packages
                .iter()
                .map(|p| (p.name.to_string(), p.version.clone()))
                .collect()
        }),
        Ecosystem::Pypi => l.find::<crate::lock::PypiEntry>(&roots).map(|x| {
            x.packages
                .iter()
                .map(|p| (p.name.to_string(), p.version.to_string()))
                .collect()
        }),
    });
    if let Some(tree) = tree {
        for (n, v) in tree {
            if let Err(err) = settings.policy.check_package(eco, &n, &v) {
                e.findings.push(finding(
                    Level::High,
                    "lock-refused",
                    format!(
                        "the locked tree has a package the policy refuses: {}",
                        err.message
                    ),
                ));
            }
        }
        return;
    }
    let root_name = &keys[0].0;
    let other: Vec<String> = locks
        .iter()
        .flat_map(|l| match eco {
            Ecosystem::Npm => l
                .npm
                .iter()
                .flat_map(|x| x.roots.clone())
                .collect::<Vec<_>>(),
            Ecosystem::Pypi => l.pypi.iter().flat_map(|x| x.roots.clone()).collect(),
        })
        .filter(|r| root_of(eco, r) == *root_name)
        .collect();
    if !other.is_empty() {
        e.findings.push(finding(
            Level::Medium,
            "lock-drift",
            format!(
                "the lock has {} but not `{}`: the next launch resolves a tree nobody reviewed",
                other
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                roots.join(" ")
            ),
        ));
    } else {
        let frozen = settings.lock_mode == LockMode::Frozen;
        e.findings.push(finding(
            if frozen { Level::Medium } else { Level::Low },
            "not-locked",
            if frozen {
                format!("`{}` has no lock entry and the lock mode is `frozen`: it will not start; run `safex lock {} {}`", roots.join(" "), if eco == Ecosystem::Npm { "npx" } else { "uvx" }, roots[0])
            } else {
                format!("`{}` has no lock entry: its first launch trusts what the registry serves then", roots.join(" "))
            },
        ));
    }
}

/// The name in a lock root: `@a/b@1.0.0` → `@a/b`, `x[y]==1` → `x`.
fn root_of(eco: Ecosystem, root: &str) -> String {
    match eco {
        Ecosystem::Npm => crate::npm::spec::split_name_version(root).0.to_owned(),
        Ecosystem::Pypi => root.split(['[', '=']).next().unwrap_or(root).to_owned(),
    }
}

fn human(r: &Report) -> String {
    let mut out = String::new();
    for f in &r.files {
        out.push_str(&format!("{}  {}\n", f.client, f.file));
        if let Some(err) = &f.error {
            out.push_str(&format!(
                "  medium  unreadable  cannot read its servers: {err}\n"
            ));
        }
        for e in r.servers.iter().filter(|e| e.file == f.file) {
            let scope = if e.scope.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.scope)
            };
            let pkg = match (&e.package, &e.version) {
                (Some(p), Some(v)) => format!("  {p} {v}"),
                (Some(p), None) => format!("  {p} (unpinned)"),
                _ => String::new(),
            };
            out.push_str(&format!("  {}{scope}  [{}]{pkg}\n", e.server, e.launcher));
            for x in &e.findings {
                out.push_str(&format!(
                    "    {:<6}  {}: {}\n",
                    x.level.as_str(),
                    x.code,
                    x.message
                ));
            }
        }
    }
    let mut counts = [0usize; 4];
    for x in r.servers.iter().flat_map(|e| &e.findings) {
        counts[x.level as usize] += 1;
    }
    counts[Level::Medium as usize] += r.files.iter().filter(|f| f.error.is_some()).count();
    out.push_str(&format!(
        "{} servers in {} files: {} high, {} medium, {} low, {} info\n",
        r.servers.len(),
        r.files.len(),
        counts[3],
        counts[2],
        counts[1],
        counts[0]
    ));
    out
}
