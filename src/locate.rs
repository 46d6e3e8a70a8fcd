//! Finding `node` and Python the way a login shell would, for MCP clients
//! that are GUI apps and start servers with a minimal `PATH`
//! (`/usr/bin:/bin:/usr/sbin:/sbin`): the setting first, then `PATH`, then
//! where the version managers a shell's rc file sets up keep their installs.
//!
//! Nothing here starts a process: versions come from directory names and
//! are confirmed by the caller (on the cold path) by running the one chosen.
//! `/usr/bin` is not searched on its own: it is on every minimal `PATH`, and
//! a `PATH` that leaves it out does so on purpose.

use std::path::{Path, PathBuf};

use crate::env_vars as ev;
use crate::error::{Error, Kind, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tool {
    Node,
    Python,
}

/// One version manager's installs of one runtime: `$<env>/<env_sub>/<version>/<exe>`,
/// else `~/<home>/<version>/<exe>` for each default home (a home below
/// `.local/share/` moves with `XDG_DATA_HOME`).
struct Layout {
    manager: &'static str,
    tool: Tool,
    env: &'static str,
    env_sub: &'static str,
    homes: &'static [&'static str],
    exe: &'static str,
    /// The manager's default, relative to the versions directory: nvm's
    /// `alias/default` (a version, or another alias's name), fnm's
    /// `aliases/default` (a link to the install); `""` for none.
    default: &'static str,
}

/// The layouts each manager documents (nvm's README, fnm's `FNM_DIR`
/// defaults on Linux and macOS, volta's `tools/image`, asdf's and mise's
/// `installs`, pyenv's `versions`, uv's managed Pythons).
const LAYOUTS: &[Layout] = &[
    Layout {
        manager: "nvm",
        tool: Tool::Node,
        env: ev::NVM_DIR,
        env_sub: "versions/node",
        homes: &[".nvm/versions/node"],
        exe: "bin/node",
        default: "../../alias/default",
    },
    Layout {
        manager: "fnm",
        tool: Tool::Node,
        env: ev::FNM_DIR,
        env_sub: "node-versions",
        homes: &[
            ".local/share/fnm/node-versions",
            ".fnm/node-versions",
            "Library/Application Support/fnm/node-versions",
        ],
        exe: "installation/bin/node",
        default: "../aliases/default",
    },
    Layout {
        manager: "volta",
        tool: Tool::Node,
        env: ev::VOLTA_HOME,
        env_sub: "tools/image/node",
        homes: &[".volta/tools/image/node"],
        exe: "bin/node",
        default: "",
    },
    Layout {
        manager: "asdf",
        tool: Tool::Node,
        env: ev::ASDF_DATA_DIR,
        env_sub: "installs/nodejs",
        homes: &[".asdf/installs/nodejs"],
        exe: "bin/node",
        default: "",
    },
    Layout {
        manager: "mise",
        tool: Tool::Node,
        env: ev::MISE_DATA_DIR,
        env_sub: "installs/node",
        homes: &[".local/share/mise/installs/node"],
        exe: "bin/node",
        default: "",
    },
    Layout {
        manager: "pyenv",
        tool: Tool::Python,
        env: ev::PYENV_ROOT,
        env_sub: "versions",
        homes: &[".pyenv/versions"],
        exe: "bin/python3",
        default: "",
    },
    Layout {
        manager: "uv",
        tool: Tool::Python,
        env: ev::UV_PYTHON_INSTALL_DIR,
        env_sub: "",
        homes: &[".local/share/uv/python"],
        exe: "bin/python3",
        default: "",
    },
    Layout {
        manager: "asdf",
        tool: Tool::Python,
        env: ev::ASDF_DATA_DIR,
        env_sub: "installs/python",
        homes: &[".asdf/installs/python"],
        exe: "bin/python3",
        default: "",
    },
    Layout {
        manager: "mise",
        tool: Tool::Python,
        env: ev::MISE_DATA_DIR,
        env_sub: "installs/python",
        homes: &[".local/share/mise/installs/python"],
        exe: "bin/python3",
        default: "",
    },
];

/// Homebrew's `bin` directories (Apple silicon, Intel, Linuxbrew).
pub const HOMEBREW_BINS: [&str; 3] = [
    "/opt/homebrew/bin",
    "/usr/local/bin",
    "/home/linuxbrew/.linuxbrew/bin",
];

/// One runtime a version manager installed; `version` is read from its
/// directory's name (`v22.1.0`, `3.12.1`, `cpython-3.12.1-linux-x86_64-gnu`).
#[derive(Debug, Clone)]
pub struct Install {
    pub path: PathBuf,
    pub version: Vec<u64>,
    pub manager: &'static str,
}

/// Every install of `tool` in the managers' directories, newest first, one
/// per real executable, a manager's default first of all (what its shell
/// hook would put on `PATH`); `looked` gets each versions directory.
pub fn installs(tool: Tool, looked: &mut Vec<PathBuf>) -> Vec<Install> {
    let home = crate::env_vars::get_os(crate::env_vars::HOME).map(PathBuf::from);
    let xdg = ev::get(ev::XDG_DATA_HOME).map(PathBuf::from);
    let mut found = Vec::new();
    let mut defaults = Vec::new();
    for l in LAYOUTS.iter().filter(|l| l.tool == tool) {
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(root) = ev::get(l.env) {
            dirs.push(PathBuf::from(root).join(l.env_sub));
        }
        for h in l.homes {
            if let (Some(x), Some(rest)) = (&xdg, h.strip_prefix(".local/share/")) {
                dirs.push(x.join(rest));
            }
            if let Some(home) = &home {
                dirs.push(home.join(h));
            }
        }
        for dir in dirs {
            if looked.contains(&dir) {
                continue;
            }
            scan(&dir, l, &mut found);
            if !l.default.is_empty()
                && let Some(d) = default_of(&dir.join(l.default))
            {
                defaults.push(d);
            }
            looked.push(dir);
        }
    }
    let mut found = newest_first(found);
    // Stable: the newest of a manager's defaults first.
    found.sort_by_key(|i| !defaults.iter().any(|d| d.picks(i)));
    found
}

/// A manager's default install: a version prefix (nvm's `22`, `v22.1.0`)
/// or the directory it links to (fnm).
enum Preferred {
    Version(Vec<u64>),
    Dir(PathBuf),
}

impl Preferred {
    fn picks(&self, i: &Install) -> bool {
        match self {
            Preferred::Version(v) => i.version.starts_with(v),
            Preferred::Dir(d) => std::fs::canonicalize(&i.path).is_ok_and(|p| p.starts_with(d)),
        }
    }
}

/// Read a default alias: a link to an install, or text naming a version or
/// another alias beside it (nvm's `default` → `lts/*` → `lts/jod` →
/// `v22.12.0`), followed a few steps. `node`, `stable`, `system` and other
/// names that nvm computes are no default here (newest first applies).
fn default_of(alias: &Path) -> Option<Preferred> {
    let meta = std::fs::symlink_metadata(alias).ok()?;
    if meta.file_type().is_symlink() {
        let target = std::fs::canonicalize(alias).ok()?;
        if target.is_dir() {
            return Some(Preferred::Dir(target));
        }
    }
    let aliases = alias.parent()?;
    let mut text = std::fs::read_to_string(alias).ok()?;
    for _ in 0..4 {
        let name = text.trim();
        if let Some(v) = version_of_name(name) {
            return Some(Preferred::Version(v));
        }
        if name.is_empty() || name.contains("..") {
            return None;
        }
        text = std::fs::read_to_string(aliases.join(name)).ok()?;
    }
    None
}

fn scan(dir: &Path, l: &Layout, found: &mut Vec<Install>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for e in read.flatten() {
        let Some(version) = e.file_name().to_str().and_then(version_of_name) else {
            continue;
        };
        let path = e.path().join(l.exe);
        if is_executable(&path) {
            found.push(Install {
                path,
                version,
                manager: l.manager,
            });
        }
    }
}

/// Sorted newest first; of several names for one executable (mise's `22`
/// next to `22.1.0`), the most precise is kept.
pub fn newest_first(mut found: Vec<Install>) -> Vec<Install> {
    found.sort_by(|a, b| b.version.cmp(&a.version));
    let mut seen = Vec::new();
    found.retain(|i| {
        let real = std::fs::canonicalize(&i.path).unwrap_or_else(|_| i.path.clone());
        let new = !seen.contains(&real);
        seen.push(real);
        new
    });
    found
}

/// `v22.1.0` → `[22, 1, 0]`; `cpython-3.12.1-linux…` → `[3, 12, 1]`;
/// `3.13.0t` → `[3, 13, 0]`; `lts`, `system`, `pypy3.10-7.3` → none.
pub fn version_of_name(name: &str) -> Option<Vec<u64>> {
    let v = name.strip_prefix("cpython-").unwrap_or(name);
    let v = v.strip_prefix('v').unwrap_or(v);
    let v = v.split('-').next()?;
    let mut out = Vec::new();
    for part in v.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        out.push(digits.parse().ok()?);
        if digits.len() != part.len() {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The first of `names` in a `PATH` directory (`PATH` unset: the system's
/// default `/usr/local/bin:/usr/bin:/bin`, as `execvp` does).
pub fn on_path(names: &[&str]) -> Option<PathBuf> {
    for dir in path_dirs() {
        for n in names {
            let cand = dir.join(n);
            if is_executable(&cand) {
                return Some(cand);
            }
        }
    }
    None
}

pub fn path_dirs() -> Vec<PathBuf> {
    match std::env::var_os(crate::env_vars::PATH) {
        Some(p) => std::env::split_paths(&p).collect(),
        None => ["/usr/local/bin", "/usr/bin", "/bin"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    }
}

pub fn is_executable(p: &Path) -> bool {
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

/// `node`'s executable names.
const NODE_NAMES: &[&str] = if cfg!(windows) {
    &["node.exe", "node.cmd"]
} else {
    &["node"]
};

/// `node` on `PATH`, if any.
pub fn path_node() -> Option<PathBuf> {
    on_path(NODE_NAMES)
}

/// Every `node` outside `PATH`: the managers' installs newest first, then
/// Homebrew's.
pub fn node_installs(looked: &mut Vec<PathBuf>) -> Vec<Install> {
    let mut all = installs(Tool::Node, looked);
    for dir in HOMEBREW_BINS {
        let dir = PathBuf::from(dir);
        for n in NODE_NAMES {
            let path = dir.join(n);
            if is_executable(&path) {
                all.push(Install {
                    path,
                    version: Vec::new(),
                    manager: "Homebrew",
                });
            }
        }
        looked.push(dir);
    }
    all
}

/// The `node` to run, without starting a process: the setting (`SAFEX_NODE`,
/// config `node`), else the one the cold path chose for this tree
/// (`remembered`, if it still exists), else `node` on `PATH`, else the
/// newest a version manager installed, else Homebrew's. On the warm path
/// with `node` on `PATH` this costs what a `PATH` walk costs.
pub fn node(configured: Option<&Path>, remembered: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = configured {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(Error::new(
            Kind::Runtime,
            format!("the configured node `{}` does not exist", p.display()),
        )
        .with_hint(format!(
            "fix `{}` or the `node` setting, or unset it to use `node` from PATH",
            ev::SAFEX_NODE
        )));
    }
    if let Some(p) = remembered.filter(|p| is_executable(p)) {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = path_node() {
        return Ok(p);
    }
    let mut looked = Vec::new();
    if let Some(i) = node_installs(&mut looked).into_iter().next() {
        return Ok(i.path);
    }
    Err(not_found("node", &looked).with_hint(format!(
        "install Node.js, or set `{}` (or `node` in safex's config file) to the node executable",
        ev::SAFEX_NODE
    )))
}

/// "`what` was not found: looked on PATH (…) and in …", for both runtimes.
pub fn not_found(what: &str, looked: &[PathBuf]) -> Error {
    let path: Vec<String> = path_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let others: Vec<String> = looked
        .iter()
        .map(|d| format!("`{}`", d.display()))
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(" and in {}", others.join(", "))
    };
    Error::new(
        Kind::Runtime,
        format!(
            "`{what}` was not found: looked on PATH (`{}`){others}",
            path.join(":")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_directory_names() {
        assert_eq!(version_of_name("v22.1.0"), Some(vec![22, 1, 0]));
        assert_eq!(version_of_name("20.11.1"), Some(vec![20, 11, 1]));
        assert_eq!(version_of_name("22"), Some(vec![22]));
        assert_eq!(
            version_of_name("cpython-3.12.1-linux-x86_64-gnu"),
            Some(vec![3, 12, 1])
        );
        assert_eq!(version_of_name("3.13.0t"), Some(vec![3, 13, 0]));
        assert_eq!(version_of_name("lts"), None);
        assert_eq!(version_of_name("system"), None);
        assert_eq!(version_of_name("pypy3.10-7.3.12"), None);
    }
}
