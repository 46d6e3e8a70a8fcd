//! Finding and describing the Python that will run the program. safex never
//! downloads a Python: it takes `--python`, `SAFEX_PYTHON` / the `python`
//! setting, or `python3` on `PATH`. Describing it means running it once (on
//! the cold path only) to read its version, markers and platform.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind, Result};
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

/// Find the executable for a request on `PATH` (no process is started).
pub fn find(request: &Request) -> Result<PathBuf> {
    let names: Vec<String> = match request {
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
        Request::Default => vec!["python3".into(), "python".into()],
        Request::Version(m, Some(n)) => vec![format!("python{m}.{n}"), format!("python{m}")],
        Request::Version(m, None) => vec![format!("python{m}")],
        Request::Name(n) => vec![n.clone()],
    };
    if let Some(path) = std::env::var_os("PATH") {
        for name in &names {
            for dir in std::env::split_paths(&path) {
                let cand = dir.join(name);
                if is_executable(&cand) {
                    return Ok(cand);
                }
            }
        }
    }
    Err(Error::new(
        Kind::Runtime,
        format!(
            "no Python found on PATH (looked for `{}`)",
            names.join("`, `")
        ),
    )
    .with_hint(
        "install Python 3, or pass its path with `--python`; safex never downloads a Python",
    ))
}

/// Every other Python this machine has where uv and a login shell would look,
/// newest first, without running any: `python3.X` on `PATH`, then pyenv's
/// versions (`$PYENV_ROOT`, `~/.pyenv`), uv-managed Pythons, and the system
/// and Homebrew locations. Used when the default `python3` does not fit a
/// package's `Requires-Python`.
pub fn candidates() -> Vec<PathBuf> {
    let mut found: Vec<((u8, u8, u16), PathBuf)> = Vec::new();
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        ["/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"]
            .iter()
            .map(PathBuf::from),
    );
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
            if is_executable(&path) {
                found.push(((v.0, v.1, 0), path));
            }
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(r) = std::env::var_os("PYENV_ROOT") {
        roots.push(PathBuf::from(r).join("versions"));
    }
    if let Some(h) = &home {
        roots.push(h.join(".pyenv/versions"));
        roots.push(h.join(".local/share/uv/python"));
    }
    // pyenv's shims on PATH name its root even where `PYENV_ROOT` and the
    // home are not the shell's (an MCP client's minimal environment); a
    // shim runs only the versions made global, the versions run directly.
    for dir in &dirs {
        if dir.ends_with("shims")
            && let Some(root) = dir.parent()
        {
            roots.push(root.join("versions"));
        }
    }
    for root in &roots {
        let Ok(read) = std::fs::read_dir(root) else {
            continue;
        };
        for e in read.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // pyenv: `3.12.7`; uv: `cpython-3.12.7-linux-x86_64-gnu`.
            let version = name.strip_prefix("cpython-").unwrap_or(&name);
            let mut parts = version.split(['.', '-']);
            let (Some(Ok(major)), Some(Ok(minor))) = (
                parts.next().map(str::parse::<u8>),
                parts.next().map(str::parse::<u8>),
            ) else {
                continue;
            };
            let micro = parts
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(0);
            let path = e.path().join("bin/python3");
            if is_executable(&path) {
                found.push(((major, minor, micro), path));
            }
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (_, path) in found {
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen.contains(&real) {
            seen.push(real);
            out.push(path);
        }
    }
    out
}

/// `3.12` (and nothing else) as `(3, 12)`.
fn parse_minor(v: &str) -> Option<(u8, u8)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
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
