//! Handing over to the program. Spoken to through pipes (an MCP client),
//! safex stays its parent (`relay`); otherwise on Unix safex replaces
//! itself (`exec`), so signals reach the program and the PID is its own;
//! elsewhere it spawns, waits and passes the exit code on. stdout is never
//! written by safex: it is the program's (for MCP, it is the protocol).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use crate::error::{Error, Kind, Result};

/// Run `program <lead...> <args...>` with exactly `env`; on Unix, unless
/// relayed, this returns only on failure. `lead` is what safex puts first (the script);
/// `args` are the user's, verbatim.
pub fn run_program(
    program: &Path,
    lead: &[OsString],
    args: &[OsString],
    mut env: Vec<(OsString, OsString)>,
    sandbox: &crate::sandbox::Plan,
    mediation: impl FnOnce() -> crate::relay::Mediation,
) -> Result<i32> {
    #[cfg(unix)]
    {
        if let Some(review) = crate::relay::review::requested() {
            if sandbox.is_on() {
                // The exec helper applies it (and removes the variable);
                // tier 1 only: no proxy runs for a listing.
                env.push((
                    OsString::from(crate::sandbox::SPEC_VAR),
                    sandbox.spec.encode(),
                ));
            }
            return crate::relay::review::run(review, program, lead, args, env, mediation());
        }
        if crate::relay::wanted() {
            return crate::relay::run(program, lead, args, env, sandbox, mediation());
        }
        // Tier 2 needs safex alive beside the program: its proxy.
        #[cfg(target_os = "linux")]
        if sandbox.proxy.is_some() {
            return crate::relay::supervise(program, lead, args, env, sandbox, mediation().audit);
        }
    }
    #[cfg(not(unix))]
    let _ = mediation;
    #[cfg(target_os = "macos")]
    if sandbox.is_on() {
        // Seatbelt, through `sandbox-exec` by absolute path (untested on
        // a real Mac: docs/sandbox.md).
        let profile = crate::sandbox::seatbelt::profile(&sandbox.spec);
        let mut wrapped: Vec<OsString> = vec!["-p".into(), profile.into(), program.into()];
        wrapped.extend(lead.iter().cloned());
        return exec_or_wait(
            Path::new(crate::sandbox::seatbelt::SANDBOX_EXEC),
            &wrapped,
            args,
            env,
        );
    }
    #[cfg(target_os = "linux")]
    if sandbox.is_on() {
        sandbox.spec.apply()?;
    }
    exec_or_wait(program, lead, args, env)
}

/// Become the program (Unix), or spawn it and pass its exit code on.
fn exec_or_wait(
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

/// What happens to a variable that may carry a registry credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// safex's own (`SAFEX_*`): never passed, whatever the policy says.
    Own,
    /// A credential: removed unless `env.pass` names it exactly.
    Credential,
    /// A registry or index URL: passed with its userinfo removed, unless
    /// `env.pass` names it exactly (then verbatim).
    Url,
}

/// Is `name` one of the variables that may carry registry credentials?
/// `secret_vars` are those an `.npmrc` credential or registry URL line
/// interpolates (`${NPM_PASS}`).
fn held(name: &str, secret_vars: &[String]) -> Option<Held> {
    use crate::env_vars::{INDEX_URL_VARS, REGISTRY_CREDENTIAL_VARS};
    if name.starts_with("SAFEX_") {
        return Some(Held::Own);
    }
    let upper = name.to_ascii_uppercase();
    if REGISTRY_CREDENTIAL_VARS.contains(&upper.as_str()) || secret_vars.iter().any(|s| s == name) {
        return Some(Held::Credential);
    }
    if INDEX_URL_VARS.contains(&upper.as_str()) {
        return Some(Held::Url);
    }
    // uv's per-index credentials: `UV_INDEX_<NAME>_USERNAME` / `_PASSWORD`.
    if upper.starts_with("UV_INDEX_")
        && (upper.ends_with("_USERNAME") || upper.ends_with("_PASSWORD"))
    {
        return Some(Held::Credential);
    }
    // Poetry's: `POETRY_HTTP_BASIC_<NAME>_PASSWORD`, `POETRY_PYPI_TOKEN_<NAME>`.
    if upper.starts_with("POETRY_PYPI_TOKEN_")
        || (upper.starts_with("POETRY_HTTP_BASIC_") && upper.ends_with("_PASSWORD"))
    {
        return Some(Held::Credential);
    }
    // npm reads every `npm_config_<key>` (any case) as the `.npmrc` key:
    // `_auth`, `_authToken`, `_password`, `username`, `otp`, the client
    // `key`, and their per-registry forms `//host/:_authToken`.
    if let Some(key) = name
        .get(..11)
        .filter(|p| p.eq_ignore_ascii_case("npm_config_"))
        .map(|_| name[11..].to_ascii_lowercase())
    {
        let field = key.rsplit(':').next().unwrap_or(&key);
        if key.contains("auth")
            || key.contains("token")
            || key.contains("password")
            || matches!(field, "username" | "otp" | "key")
        {
            return Some(Held::Credential);
        }
        if field.ends_with("registry") {
            return Some(Held::Url);
        }
    }
    None
}

/// The environment the program gets. In every mode registry credentials
/// stay behind (DESIGN.md §3: a credential goes only to its own origin, and
/// the program is not that origin): `SAFEX_*` always; npm, pip, uv and
/// publishing tokens and the variables `.npmrc` credential or registry lines
/// interpolate, unless the policy's `pass` names them exactly (a `PREFIX_*`
/// pattern or `--env` is not enough: passing a credential is the policy's
/// decision, on record in its file). Registry and index URL variables are
/// kept with their `user:password@` removed, so that a program that runs
/// npm or pip itself still reaches the internal registry rather than
/// falling back to a public one. In `declared` mode only the base set, the
/// policy's `pass` names (`NAME` or `PREFIX_*`), `--env` names and
/// variables whose value is a `safex-secret:` reference remain.
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
        .filter_map(|(k, v)| {
            let Some(name) = k.to_str() else {
                return (!declared).then_some((k, v));
            };
            let wanted = !declared
                || BASE_VARS.contains(&name)
                || name.starts_with("LC_")
                || crate::env_vars::CA_BUNDLE_VARS.contains(&name)
                || crate::env_vars::is_proxy_var(name)
                || pass.iter().any(|p| matches(name, p))
                || extra.iter().any(|p| p == name)
                // A `safex-secret:` reference is declared by being written.
                || v.as_encoded_bytes().starts_with(crate::secret::PREFIX.as_bytes());
            if !wanted {
                return None;
            }
            let named = pass.iter().any(|p| p == name);
            match held(name, secret_vars) {
                None => Some((k, v)),
                Some(Held::Own) => None,
                Some(_) if named => Some((k, v)),
                Some(Held::Credential) => None,
                // Not UTF-8: it cannot be checked, so it does not pass.
                Some(Held::Url) => v
                    .to_str()
                    .map(|text| (k, OsString::from(strip_userinfo(text)))),
            }
        })
        .collect()
}

/// `text` with the `user:password@` of every `scheme://` URL in it removed;
/// everything else (uv's `name=`, list separators, paths) kept as it is.
/// Done on the text, not by parsing, so that a value no URL parser accepts
/// still loses its credentials.
pub fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_stripped_from_every_url_in_a_value() {
        for (raw, want) in [
            ("https://u:p@h.example/simple/", "https://h.example/simple/"),
            ("https://tok@h.example/", "https://h.example/"),
            ("https://h.example/p@x", "https://h.example/p@x"),
            (
                "corp=https://u:p%40s@h.example/simple other=https://h2.example/",
                "corp=https://h.example/simple other=https://h2.example/",
            ),
            ("https://a:b@c@h.example:8443", "https://h.example:8443"),
            ("http://u:p@127.0.0.1:9?x=1", "http://127.0.0.1:9?x=1"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(strip_userinfo(raw), want, "{raw}");
        }
    }

    #[test]
    fn which_variables_are_held() {
        let secret = vec!["MY_NPM_PASS".to_owned()];
        for (name, want) in [
            ("SAFEX_NPM_REGISTRY", Some(Held::Own)),
            ("NPM_TOKEN", Some(Held::Credential)),
            ("node_auth_token", Some(Held::Credential)),
            ("MY_NPM_PASS", Some(Held::Credential)),
            ("npm_config__auth", Some(Held::Credential)),
            ("NPM_CONFIG__AUTHTOKEN", Some(Held::Credential)),
            ("npm_config_//h.example/:_authToken", Some(Held::Credential)),
            ("npm_config_//h.example/:_password", Some(Held::Credential)),
            ("npm_config_//h.example/:username", Some(Held::Credential)),
            ("npm_config_key", Some(Held::Credential)),
            ("npm_config_registry", Some(Held::Url)),
            ("NPM_CONFIG_REGISTRY", Some(Held::Url)),
            ("npm_config_@acme:registry", Some(Held::Url)),
            ("UV_INDEX", Some(Held::Url)),
            ("PIP_EXTRA_INDEX_URL", Some(Held::Url)),
            ("UV_INDEX_CORP_PASSWORD", Some(Held::Credential)),
            ("UV_INDEX_CORP_USERNAME", Some(Held::Credential)),
            ("UV_PUBLISH_TOKEN", Some(Held::Credential)),
            ("POETRY_PYPI_TOKEN_CORP", Some(Held::Credential)),
            ("npm_config_cache", None),
            ("npm_config_user_agent", None),
            ("UV_INDEX_STRATEGY", None),
            ("MY_SECRET", None),
            ("HOME", None),
        ] {
            assert_eq!(held(name, &secret), want, "{name}");
        }
    }
}
