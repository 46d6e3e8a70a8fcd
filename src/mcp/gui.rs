//! What an MCP client started from a desktop (not from a shell) knows when
//! it starts a server: a minimal `PATH`, no shell profile, none of the
//! shell's variables. `safex mcp pin --write` writes entries that work
//! there: the absolute path of safex when `safex` is not on that `PATH`, and
//! the registry or index in the entry's `env` when only the shell knew it.

use std::path::{Path, PathBuf};

/// The `PATH` a GUI app starts programs with: launchd's default on macOS,
/// and what desktop launchers on Linux give an app started from a menu
/// (`/etc/environment` is not always read). The one place safex assumes it.
pub const GUI_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// The `command` to write for safex, and, when it is not `safex`, why.
///
/// `safex` when a lookup over [`GUI_PATH`] finds this same binary; else the
/// path this safex was started by (a stable symlink such as a package
/// manager's `bin/safex`, when it leads here), else the binary's own path.
/// On Windows GUI apps get the user's `PATH`: always `safex`.
pub fn safex_command() -> (String, Option<String>) {
    let bare = ("safex".to_owned(), None);
    if cfg!(windows) {
        return bare;
    }
    let Ok(exe) = std::env::current_exe() else {
        return bare;
    };
    let Ok(real) = exe.canonicalize() else {
        return bare;
    };
    if lookup("safex", GUI_PATH).is_some_and(|p| same(&p, &real)) {
        return bare;
    }
    let invoked = std::env::args_os().next().map(PathBuf::from).and_then(|a| {
        if a.components().count() > 1 {
            std::path::absolute(&a).ok()
        } else {
            lookup(
                &a.to_string_lossy(),
                &std::env::var(crate::env_vars::PATH).unwrap_or_default(),
            )
        }
    });
    let path = invoked.filter(|p| same(p, &real)).unwrap_or(exe);
    match path.to_str() {
        Some(p) => (
            p.to_owned(),
            Some(format!(
                "`safex` is not on the `PATH` GUI clients start servers with (`{GUI_PATH}`): entries get its absolute path"
            )),
        ),
        None => bare,
    }
}

/// The first executable file `name` in a `PATH`-style list.
fn lookup(name: &str, path: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| crate::locate::is_executable(p))
}

fn same(a: &Path, real: &Path) -> bool {
    a.canonicalize().is_ok_and(|c| c == real)
}

/// Whether a registry or index chosen from `source` (the label settings
/// give it) must be written into the entry for a GUI client's safex to use
/// it. Yes for what only a shell knows: the environment variables
/// (`SAFEX_NPM_REGISTRY`, `npm_config_registry`, `SAFEX_PYPI_INDEX`,
/// `PIP_INDEX_URL`, `UV_DEFAULT_INDEX`, `UV_INDEX_URL`) and what npm or pip
/// answered (`npm config get registry`: npm may not be on the GUI `PATH`). No for files the GUI's safex reads as well (`.npmrc`,
/// `pip.conf`, safex's config file, the policy) and for a `--registry` /
/// `--index-url` already in the entry's arguments.
pub fn records_registry(source: &str) -> bool {
    matches!(
        source,
        "SAFEX_NPM_REGISTRY"
            | "npm_config_registry"
            | "SAFEX_PYPI_INDEX"
            | "PIP_INDEX_URL"
            | "UV_DEFAULT_INDEX"
            | "UV_INDEX_URL"
    ) || source == crate::npm::config::NPM_ASKED
}

/// A registry URL as it may be written into a config file: without
/// userinfo. `Err` carries that stripped URL when credentials were dropped.
pub fn shareable(url: &url::Url) -> Result<String, String> {
    let mut u = url.clone();
    let had = !u.username().is_empty() || u.password().is_some();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if had {
        Err(u.to_string())
    } else {
        Ok(u.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_that_need_recording() {
        for yes in [
            "SAFEX_NPM_REGISTRY",
            "npm_config_registry",
            "SAFEX_PYPI_INDEX",
            "PIP_INDEX_URL",
            "UV_DEFAULT_INDEX",
            "UV_INDEX_URL",
            crate::npm::config::NPM_ASKED,
        ] {
            assert!(records_registry(yes), "{yes}");
        }
        for no in [
            "--registry",
            "--index-url",
            "registry in /home/u/.npmrc",
            "index-url in /home/u/.config/pip/pip.conf",
            "npm_registry in /home/u/.config/safex/config.toml",
            "pypi_index in /home/u/.config/safex/config.toml",
            "`registries.npm` of the policy (/etc/safex/policy.toml)",
        ] {
            assert!(!records_registry(no), "{no}");
        }
    }

    #[test]
    fn credentials_are_never_shared() {
        let u = url::Url::parse("https://u:p@r.example/npm/").unwrap();
        assert_eq!(shareable(&u), Err("https://r.example/npm/".into()));
        let u = url::Url::parse("http://127.0.0.1:4873/").unwrap();
        assert_eq!(shareable(&u), Ok("http://127.0.0.1:4873/".into()));
    }
}
