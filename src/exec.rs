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

/// Run `program <lead...> <args...>` with exactly `env`; on Unix this
/// returns only on failure. `lead` is what safex puts first (the script);
/// `args` are the user's, verbatim.
pub fn run_program(
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
) -> Result<i32> {
    let mut cmd = Command::new(program);
    cmd.args(lead).args(args).env_clear().envs(env);
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

/// Variables every program gets in `declared` mode (those MCP clients pass).
const BASE_VARS: &[&str] = &[
    "HOME",
    "PATH",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "TZ",
    "TMPDIR",
    "APPDATA",
    "LOCALAPPDATA",
    "USERPROFILE",
    "SystemRoot",
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "SystemDrive",
    "TEMP",
    "TMP",
    "PATHEXT",
    "COMSPEC",
    "ComSpec",
    "ProgramData",
    "ProgramFiles",
    "ProgramFiles(x86)",
    "HOMEDRIVE",
    "HOMEPATH",
    "USERNAME",
    "OS",
    "windir",
    "PROCESSOR_ARCHITECTURE",
    "NUMBER_OF_PROCESSORS",
];

/// Index URL variables, which may carry credentials.
const INDEX_VARS: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_EXTRA_INDEX_URL",
];

/// The environment the program gets. In every mode safex's own credentials
/// stay behind: `SAFEX_*`, npm tokens (`NPM_TOKEN`, `NODE_AUTH_TOKEN`, the
/// variables `.npmrc` credential lines reference), and index URLs that carry
/// credentials. In `declared` mode only the base set, the policy's `pass`
/// names (`NAME` or `PREFIX_*`) and `--env` names remain.
pub fn program_env(
    mode: crate::policy::EnvMode,
    pass: &[String],
    extra: &[String],
    secret_vars: &[String],
) -> Vec<(OsString, OsString)> {
    let declared = mode == crate::policy::EnvMode::Declared;
    let matches = |name: &str, pat: &str| match pat.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pat,
    };
    std::env::vars_os()
        .filter(|(k, v)| {
            let Some(name) = k.to_str() else {
                return !declared;
            };
            if name.starts_with("SAFEX_")
                || matches!(name, "NPM_TOKEN" | "NODE_AUTH_TOKEN")
                || secret_vars.iter().any(|s| s == name)
                || (name.to_ascii_lowercase().starts_with("npm_config_")
                    && (name.to_ascii_lowercase().contains("auth")
                        || name.to_ascii_lowercase().contains("token")))
                || (INDEX_VARS.contains(&name) && has_userinfo(v))
            {
                return false;
            }
            !declared
                || BASE_VARS.contains(&name)
                || name.starts_with("LC_")
                || pass.iter().any(|p| matches(name, p))
                || extra.iter().any(|p| p == name)
        })
        .collect()
}

fn has_userinfo(v: &std::ffi::OsStr) -> bool {
    v.to_str().unwrap_or("").split_whitespace().any(|u| {
        url::Url::parse(u).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
    })
}
