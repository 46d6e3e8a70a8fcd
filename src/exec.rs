//! Handing over to the program. On Unix safex replaces itself (`exec`), so
//! the MCP client's signals reach the server and the PID is the server's;
//! elsewhere it spawns, waits and passes the exit code on. stdout is never
//! touched: it is the program's (for MCP, it is the protocol).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Kind, Result};

/// `node` from the setting, else from `PATH`.
pub fn find_node(configured: Option<&Path>) -> Result<PathBuf> {
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
            crate::env_vars::SAFEX_NODE
        )));
    }
    let names: &[&str] = if cfg!(windows) {
        &["node.exe", "node.cmd"]
    } else {
        &["node"]
    };
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            for n in names {
                let cand = dir.join(n);
                if is_executable(&cand) {
                    return Ok(cand);
                }
            }
        }
    }
    Err(
        Error::new(Kind::Runtime, "`node` was not found on PATH").with_hint(format!(
            "install Node.js, or set `{}` to the node executable",
            crate::env_vars::SAFEX_NODE
        )),
    )
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

/// Run `program <lead...> <args...>`; on Unix this returns only on failure.
/// `lead` is what safex puts first (the script); `args` are the user's, verbatim.
pub fn run_program(program: &Path, lead: &[OsString], args: &[OsString]) -> Result<i32> {
    let mut cmd = Command::new(program);
    cmd.args(lead).args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        Err(Error::new(
            Kind::Runtime,
            format!("cannot start `{}`: {err}", program.display()),
        ))
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(|e| {
            Error::new(
                Kind::Runtime,
                format!("cannot start `{}`: {e}", program.display()),
            )
        })?;
        Ok(status.code().unwrap_or(1))
    }
}
