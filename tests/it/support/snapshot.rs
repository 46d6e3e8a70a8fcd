//! Making what safex printed stable for an inline snapshot: the test's
//! temporary directory, the binary's path and the fixture servers' ports
//! become placeholders, so that a snapshot holds only what safex chose to
//! say.

use std::path::Path;
use std::process::Output;

use super::env::{TestEnv, stderr};

/// The run's stderr with [`stable`] placeholders.
pub fn stable_stderr(env: &TestEnv, out: &Output) -> String {
    stable(env, &stderr(out))
}

/// `text` with the paths of `env` as `[CACHE]`, `[HOME]`, `[WORK]` and
/// `[ROOT]` (the lockfile is `[ROOT]/safex.lock`), the `safex` binary as
/// `[SAFEX]`, and every loopback port as `[PORT]`.
pub fn stable(env: &TestEnv, text: &str) -> String {
    let mut s = text.replace(env!("CARGO_BIN_EXE_safex"), "[SAFEX]");
    // Inner directories first: each lies under the root.
    for (dir, name) in [
        (env.cache(), "[CACHE]"),
        (env.home(), "[HOME]"),
        (env.work(), "[WORK]"),
        (env.root().to_path_buf(), "[ROOT]"),
    ] {
        for form in spellings(&dir) {
            s = s.replace(&form, name);
        }
    }
    for host in ["127.0.0.1:", "localhost:"] {
        s = ports_replaced(&s, host);
    }
    s
}

/// The ways a directory can be printed: as given, and resolved (a temp dir
/// behind a link, as on macOS).
fn spellings(dir: &Path) -> Vec<String> {
    let mut forms = vec![dir.display().to_string()];
    if let Ok(real) = dir.canonicalize() {
        let real = real.display().to_string();
        if !forms.contains(&real) {
            forms.insert(0, real);
        }
    }
    forms
}

/// `text` with the digits after each `host` (`127.0.0.1:`) as `[PORT]`.
fn ports_replaced(text: &str, host: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(host) {
        let after = at + host.len();
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push_str("[PORT]");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn temporary_paths_and_ports_become_placeholders() {
    let env = TestEnv::new();
    let text = format!(
        "{} wrote {}/x and {}/safex.lock for http://127.0.0.1:41234/a, https://localhost:8443/ and 127.0.0.1:/\n",
        env!("CARGO_BIN_EXE_safex"),
        env.cache().display(),
        env.root().display(),
    );
    insta::assert_snapshot!(stable(&env, &text), @"[SAFEX] wrote [CACHE]/x and [ROOT]/safex.lock for http://127.0.0.1:[PORT]/a, https://localhost:[PORT]/ and 127.0.0.1:/");
}
