//! Finding and describing the Python that will run the program. safex never
//! downloads a Python: it takes `--python`, `SAFEX_PYTHON` / the `python`
//! setting (a path, a name, or a version such as `3.12`), else `python3` on
//! `PATH`, else one where a login shell's version managers keep theirs.
//! Describing it means running it once (on the cold path only) to read its
//! version, markers and platform; that also confirms a requested version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
use crate::locate;
use crate::pypi::tags::{Os, Platform, Tags};

/// What the user asked for: a path, a version (`3.12`), or the default.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Default,
    Path(PathBuf),
    Version(u8, Option<u8>),
    Name(String),
}

impl Request {
    pub fn parse(s: &str) -> Request {
        if s.contains('/') || s.contains('\\') {
            return Request::Path(PathBuf::from(s));
        }
        let v = s.strip_prefix("python").unwrap_or(s);
        let mut parts = v.split('.');
        let major = parts.next().and_then(|p| p.parse::<u8>().ok());
        let minor = parts.next().map(|p| p.parse::<u8>());
        match (major, minor, parts.next()) {
            (Some(m), None, None) => Request::Version(m, None),
            (Some(m), Some(Ok(n)), None) => Request::Version(m, Some(n)),
            _ => Request::Name(s.to_owned()),
        }
    }
}

impl Request {
    /// For `--python 3.12` / `3`: does this version answer it?
    pub fn admits(&self, major: u8, minor: u8) -> bool {
        match self {
            Request::Version(m, Some(n)) => (*m, *n) == (major, minor),
            Request::Version(m, None) => *m == major,
            _ => true,
        }
    }

    /// Whether a venv built on `version` (`3.12.1`) answers this request;
    /// read from its marker on the warm path, so no process is started.
    pub fn admits_version(&self, version: &str) -> bool {
        let mut parts = version.split('.').map(|p| p.parse::<u8>());
        match (parts.next(), parts.next()) {
            (Some(Ok(m)), Some(Ok(n))) => self.admits(m, n),
            _ => !matches!(self, Request::Version(..)),
        }
    }
}

/// The executable for a request, without starting a process. For a version
/// this is a first guess (`python3.12` on `PATH`, else an install named
/// for it, else the default) that the cold path confirms ([`select`]).
pub fn find(request: &Request) -> Result<PathBuf> {
    let name = match request {
        Request::Path(p) => {
            return if p.is_file() {
                Ok(p.clone())
            } else {
                Err(Error::new(
                    Kind::Runtime,
                    format!("the Python `{}` does not exist", p.display()),
                )
                .with_hint("pass an existing interpreter to `--python`"))
            };
        }
        Request::Name(n) => {
            return locate::on_path(&[n]).ok_or_else(|| {
                locate::not_found(n, &[]).with_hint(
                    "install it, or pass its path with `--python`; safex never downloads a Python",
                )
            });
        }
        Request::Version(m, Some(n)) => Some(format!("python{m}.{n}")),
        Request::Version(..) | Request::Default => None,
    };
    if let Some(p) = name.and_then(|n| locate::on_path(&[&n])) {
        return Ok(p);
    }
    if let Some(p) = locate::on_path(&["python3", "python"]) {
        return Ok(p);
    }
    // No Python on PATH (a GUI client's): where a login shell would look.
    let mut looked = Vec::new();
    let all = candidates_in(&mut looked);
    let named = all
        .iter()
        .find(|c| request.admits(c.version[0] as u8, c.version[1] as u8));
    match named.or(all.first()) {
        Some(c) => Ok(c.path.clone()),
        None => Err(locate::not_found("python3", &looked).with_hint(format!(
            "install Python 3, or pass its path with `--python` (or `{}`, or `python` in safex's config file); safex never downloads a Python",
            crate::env_vars::SAFEX_PYTHON
        ))),
    }
}

/// The interpreter that answers `request`, confirmed by running it (cold
/// path only), starting from `first` (from [`find`]). A path or a name is
/// taken as it is. For a version (and the default) every candidate is tried
/// in turn, the ones named for that version first: one that does not run
/// (a pyenv shim for a version that is not global) or reports another
/// version is passed over, and when none answers, the error lists each with
/// what it said; the one taken, if not `first`, is said on stderr.
pub fn select(request: &Request, first: &Path, quiet: bool) -> Result<(PathBuf, Info)> {
    if matches!(request, Request::Path(_) | Request::Name(_)) {
        return Ok((first.to_path_buf(), Info::probe(first)?));
    }
    // The one found first, most often right, before looking any further.
    let mut seen = Vec::new();
    let mut tried = Vec::new();
    let mut answers = |cand: &Path| -> Option<Info> {
        let real = std::fs::canonicalize(cand).unwrap_or_else(|_| cand.to_path_buf());
        if !locate::is_executable(cand) || seen.contains(&real) {
            return None;
        }
        seen.push(real);
        match Info::probe(cand) {
            Ok(info) if request.admits(info.major, info.minor) => return Some(info),
            Ok(info) => tried.push(format!("`{}` ({})", cand.display(), info.full_version)),
            Err(_) => tried.push(format!("`{}` (does not run)", cand.display())),
        }
        None
    };
    if let Some(info) = answers(first) {
        return Ok((first.to_path_buf(), info));
    }
    let mut looked = Vec::new();
    let mut order: Vec<PathBuf> = Vec::new();
    if let Request::Version(m, Some(n)) = request {
        let name = format!("python{m}.{n}");
        order.extend(locate::path_dirs().iter().map(|d| d.join(&name)));
    }
    let (named, others): (Vec<_>, Vec<_>) = candidates_in(&mut looked)
        .into_iter()
        .partition(|c| request.admits(c.version[0] as u8, c.version[1] as u8));
    order.extend(named.into_iter().chain(others).map(|c| c.path));
    for cand in order {
        if let Some(info) = answers(&cand) {
            if !quiet {
                eprintln!(
                    "note: using `{}` ({}) for Python {}; passed over {}",
                    cand.display(),
                    info.full_version,
                    wanted(request),
                    tried.join(", ")
                );
            }
            return Ok((cand, info));
        }
    }
    let found = if tried.is_empty() {
        "none was found".to_owned()
    } else {
        format!("found {}", tried.join(", "))
    };
    let shown = |d: &[PathBuf], sep: &str| {
        d.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(sep)
    };
    Err(Error::new(
        Kind::Runtime,
        format!("no Python {} was found: {found}", wanted(request)),
    )
    .with_hint(format!(
        "looked on PATH (`{}`) and in `{}`; install Python {}, or pass an interpreter's path with `--python`; safex never downloads a Python",
        shown(&locate::path_dirs(), ":"),
        shown(&looked, "`, `"),
        wanted(request)
    )))
}

fn wanted(request: &Request) -> String {
    match request {
        Request::Version(m, Some(n)) => format!("{m}.{n}"),
        Request::Version(m, None) => format!("{m}"),
        _ => "3".to_owned(),
    }
}

/// A Python found without running it; `version` (at least major and
/// minor) is read from its name, which is no proof.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub version: Vec<u64>,
}

/// Every other Python this machine has where uv and a login shell would look,
/// newest first, without running any: `python3.X` on `PATH` and in
/// Homebrew's directories, the version managers' installs (pyenv, uv, asdf,
/// mise: [`locate::installs`]), and the `versions` of a pyenv whose shims
/// are on `PATH`. Used when the default `python3` does not fit a package's
/// `Requires-Python`, and for `--python 3.X`.
pub fn candidates() -> Vec<Candidate> {
    candidates_in(&mut Vec::new())
}

fn candidates_in(looked: &mut Vec<PathBuf>) -> Vec<Candidate> {
    let mut found: Vec<locate::Install> = Vec::new();
    let path = locate::path_dirs();
    let mut dirs = path.clone();
    dirs.extend(locate::HOMEBREW_BINS.iter().map(PathBuf::from));
    for dir in &dirs {
        let Ok(read) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in read.flatten() {
            let name = e.file_name();
            let Some(v) = name
                .to_str()
                .and_then(|n| n.strip_prefix("python"))
                .and_then(parse_minor)
            else {
                continue;
            };
            let path = e.path();
            if locate::is_executable(&path) {
                found.push(locate::Install {
                    path,
                    version: vec![v.0.into(), v.1.into()],
                    manager: "PATH",
                });
            }
        }
    }
    looked.extend(locate::HOMEBREW_BINS.iter().map(PathBuf::from));
    found.extend(locate::installs(locate::Tool::Python, looked));
    // pyenv's shims on PATH name its root even where `PYENV_ROOT` and the
    // home are not the shell's (an MCP client's minimal environment); a
    // shim runs only the versions made global, the versions run directly.
    for dir in &path {
        if dir.ends_with("shims")
            && let Some(root) = dir.parent()
        {
            let versions = root.join("versions");
            if let Ok(read) = std::fs::read_dir(&versions) {
                for e in read.flatten() {
                    let Some(version) = e.file_name().to_str().and_then(locate::version_of_name)
                    else {
                        continue;
                    };
                    let path = e.path().join("bin/python3");
                    if locate::is_executable(&path) {
                        found.push(locate::Install {
                            path,
                            version,
                            manager: "pyenv",
                        });
                    }
                }
            }
            looked.push(versions);
        }
    }
    found.retain(|i| i.version.len() >= 2 && i.version[0] < 256 && i.version[1] < 256);
    locate::newest_first(found)
        .into_iter()
        .map(|i| Candidate {
            path: i.path,
            version: i.version,
        })
        .collect()
}

/// `3.12` (and nothing else) as `(3, 12)`.
fn parse_minor(v: &str) -> Option<(u8, u8)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// What this interpreter's pip reads as its index: `index-url` from every
/// configuration pip loads (site, global, user files, `PIP_*`), ranked as
/// pip ranks them for `pip install`, else pip's built-in default index.
const PIP_INDEX_PROBE: &str = r#"
import json
try:
    from pip._internal.configuration import Configuration
    from pip._internal.models.index import PyPI
except Exception as e:
    print(json.dumps({"error": "pip cannot be imported (%s)" % e}))
    raise SystemExit(0)
rank = {"global": 0, "install": 1, ":env:": 2}
best = None
try:
    c = Configuration(isolated=False)
    c.load()
    for key, value in c.items():
        section, _, name = key.partition(".")
        if name == "index-url" and section in rank:
            if best is None or rank[section] >= best[0]:
                best = (rank[section], value)
except Exception as e:
    print(json.dumps({"error": "pip's configuration cannot be read (%s)" % e}))
    raise SystemExit(0)
if best is not None:
    print(json.dumps({"index": best[1], "configured": True}))
else:
    print(json.dumps({"index": PyPI.simple_url, "configured": False}))
"#;

/// The index the pip of `python` would install from, and how to name where
/// it came from; `Err` says why there is none. Runs the interpreter once,
/// isolated (`-I`: no current directory or user site on `sys.path`), so
/// only the interpreter's own pip is imported.
pub fn pip_index(python: &Path) -> std::result::Result<(String, String), String> {
    #[derive(Deserialize)]
    struct Answer {
        index: Option<String>,
        #[serde(default)]
        configured: bool,
        error: Option<String>,
    }
    let out = Command::new(python)
        .args(["-I", "-c", PIP_INDEX_PROBE])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("`{}` could not be run ({e})", python.display()))?;
    let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!(
            "`{}` could not say which index its pip uses",
            python.display()
        )
    })?;
    match (answer.index, answer.error) {
        (_, Some(e)) => Err(format!("the pip of `{}`: {e}", python.display())),
        (Some(i), None) if !i.trim().is_empty() => {
            let how = if answer.configured {
                "index-url in pip's configuration"
            } else {
                "pip's default index"
            };
            Ok((
                i,
                format!("{how}, as `{} -m pip` reads it", python.display()),
            ))
        }
        _ => Err(format!("the pip of `{}` names no index", python.display())),
    }
}

/// The facts safex needs about an interpreter, read by running it once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    /// The real interpreter (not a shim): what the venv links to.
    pub executable: PathBuf,
    pub implementation: String,
    pub major: u8,
    pub minor: u8,
    pub micro: u8,
    pub full_version: String,
    pub abiflags: String,
    pub machine: String,
    pub system: String,
    pub glibc: Option<(u16, u16)>,
    pub musl: Option<(u16, u16)>,
    pub macos: Option<(u16, u16)>,
    pub markers: MarkerValues,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkerValues {
    pub implementation_name: String,
    pub implementation_version: String,
    pub os_name: String,
    pub platform_machine: String,
    pub platform_python_implementation: String,
    pub platform_release: String,
    pub platform_system: String,
    pub platform_version: String,
    pub python_full_version: String,
    pub python_version: String,
    pub sys_platform: String,
}

const PROBE: &str = r#"
import json, os, platform, sys
def v(t):
    s = "%d.%d.%d" % (t.major, t.minor, t.micro)
    if t.releaselevel != "final":
        s += {"alpha": "a", "beta": "b", "candidate": "rc"}.get(t.releaselevel, "") + str(t.serial)
    return s
glibc = None
try:
    name, ver = platform.libc_ver()
    if name == "glibc" and ver:
        glibc = [int(x) for x in ver.split(".")[:2]]
except Exception:
    pass
musl = None
if sys.platform.startswith("linux") and glibc is None:
    import glob
    if glob.glob("/lib/ld-musl-*.so.1"):
        musl = [1, 2]
mac = None
if sys.platform == "darwin":
    r = platform.mac_ver()[0].split(".")
    mac = [int(r[0]), int(r[1]) if len(r) > 1 else 0]
print(json.dumps({
    "executable": os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable),
    "implementation": sys.implementation.name,
    "major": sys.version_info.major, "minor": sys.version_info.minor, "micro": sys.version_info.micro,
    "full_version": platform.python_version(),
    "abiflags": getattr(sys, "abiflags", ""),
    "machine": platform.machine(), "system": platform.system(),
    "glibc": glibc, "musl": musl, "macos": mac,
    "markers": {
        "implementation_name": sys.implementation.name,
        "implementation_version": v(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": "%d.%d" % sys.version_info[:2],
        "sys_platform": sys.platform,
    },
}))
"#;

impl Info {
    /// Run the interpreter once (isolated: `-I`, no site) to describe it.
    pub fn probe(python: &Path) -> Result<Info> {
        let out = Command::new(python)
            .args(["-I", "-S", "-c", PROBE])
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .output()
            .map_err(|e| {
                Error::new(
                    Kind::Runtime,
                    format!("cannot run the Python `{}`: {e}", python.display()),
                )
                .with_hint("pass a working interpreter with `--python`")
            })?;
        if !out.status.success() {
            return Err(Error::new(
                Kind::Runtime,
                format!(
                    "the Python `{}` failed to describe itself: {}",
                    python.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            )
            .with_hint("pass a working Python 3 with `--python`"));
        }
        let info: Info = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::new(
                Kind::Runtime,
                format!(
                    "`{}` is not a Python safex understands: {e}",
                    python.display()
                ),
            )
        })?;
        if info.major != 3 {
            return Err(Error::new(
                Kind::Runtime,
                format!(
                    "`{}` is Python {}, not Python 3",
                    python.display(),
                    info.major
                ),
            )
            .with_hint("pass a Python 3 with `--python`"));
        }
        Ok(info)
    }

    pub fn version(&self) -> pep440_rs::Version {
        pep440_rs::Version::from_str(&self.full_version).unwrap_or_else(|_| {
            pep440_rs::Version::new([self.major as u64, self.minor as u64, self.micro as u64])
        })
    }

    pub fn marker_env(&self) -> Result<MarkerEnvironment> {
        let m = &self.markers;
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: &m.implementation_name,
            implementation_version: &m.implementation_version,
            os_name: &m.os_name,
            platform_machine: &m.platform_machine,
            platform_python_implementation: &m.platform_python_implementation,
            platform_release: &m.platform_release,
            platform_system: &m.platform_system,
            platform_version: &m.platform_version,
            python_full_version: &m.python_full_version,
            python_version: &m.python_version,
            sys_platform: &m.sys_platform,
        })
        .map_err(|e| {
            Error::new(
                Kind::Runtime,
                format!("this Python reports an unusable version: {e}"),
            )
        })
    }

    pub fn platform(&self) -> Platform {
        let os = match self.system.as_str() {
            "Darwin" => Os::Macos {
                major: self.macos.map(|m| m.0).unwrap_or(11),
                minor: self.macos.map(|m| m.1).unwrap_or(0),
            },
            "Windows" => Os::Windows,
            _ => Os::Linux {
                glibc: self.glibc,
                musl: self.musl,
            },
        };
        Platform {
            os,
            arch: self.machine.clone(),
        }
    }

    pub fn tags(&self) -> Tags {
        Tags::new(
            &self.implementation,
            self.major,
            self.minor,
            &self.abiflags,
            &self.platform(),
        )
    }

    /// `lib/python3.11/site-packages` inside a venv.
    pub fn site_packages_rel(&self) -> PathBuf {
        if cfg!(windows) {
            PathBuf::from("Lib").join("site-packages")
        } else {
            let lib = if self.implementation == "pypy" {
                format!("pypy{}.{}", self.major, self.minor)
            } else {
                format!(
                    "python{}.{}{}",
                    self.major,
                    self.minor,
                    if self.abiflags.contains('t') { "t" } else { "" }
                )
            };
            PathBuf::from("lib").join(lib).join("site-packages")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(Request::parse("3.12"), Request::Version(3, Some(12)));
        assert_eq!(Request::parse("3"), Request::Version(3, None));
        assert_eq!(Request::parse("python3.11"), Request::Version(3, Some(11)));
        assert_eq!(
            Request::parse("/usr/bin/python3"),
            Request::Path("/usr/bin/python3".into())
        );
        assert_eq!(Request::parse("pypy3"), Request::Name("pypy3".into()));
    }

    #[test]
    fn a_version_request_admits_only_that_version() {
        let r = Request::parse("3.12");
        assert!(r.admits_version("3.12.1") && !r.admits_version("3.11.7"));
        assert!(!r.admits_version("3.1.2") && !r.admits_version("garbage"));
        let any3 = Request::parse("3");
        assert!(any3.admits_version("3.11.7") && !any3.admits_version("2.7.18"));
        assert!(Request::Default.admits_version("3.9.0"));
        assert!(Request::parse("/usr/bin/python3").admits_version("3.9.0"));
    }

    #[test]
    fn probe_the_python_on_path() {
        let Ok(py) = find(&Request::Default) else {
            return;
        };
        let info = Info::probe(&py).unwrap();
        assert_eq!(info.major, 3);
        assert!(info.executable.is_absolute());
        info.marker_env().unwrap();
        assert!(info.tags().iter().any(|t| t.to_string() == "py3-none-any"));
    }
}
