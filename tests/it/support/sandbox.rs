//! Whether this machine can confine a program: asked of the real binary
//! (`safex sandbox check`), which asks the kernel itself (securityfs, where
//! `/sys/kernel/security/lsm` lives, is often not mounted in containers).

use std::process::Command;

/// `None` when Landlock and seccomp are there; else why not, with what
/// `safex sandbox check` printed.
pub fn unavailable() -> Option<String> {
    let out = match Command::new(env!("CARGO_BIN_EXE_safex"))
        .args(["sandbox", "check"])
        .output()
    {
        Ok(o) => o,
        Err(e) => return Some(format!("cannot run `safex sandbox check`: {e}")),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let has = |key: &str, want: &str| {
        text.lines()
            .any(|l| l.starts_with(key) && l[key.len()..].trim().starts_with(want))
    };
    if has("landlock:", "ABI") && has("seccomp:", "yes") {
        None
    } else {
        Some(format!("this kernel lacks Landlock or seccomp:\n{text}"))
    }
}

/// Whether tier 2 applies for the user `cmd` runs as (`safex sandbox
/// check` says so).
pub fn tier2(mut check: Command) -> bool {
    let out = check
        .args(["sandbox", "check"])
        .output()
        .expect("safex sandbox check");
    String::from_utf8_lossy(&out.stdout).contains("tier:             2:")
}

/// Skip the calling test, loudly, where the sandbox cannot be applied.
macro_rules! require_sandbox {
    ($test:expr) => {
        if let Some(why) = crate::support::sandbox::unavailable() {
            eprintln!(
                "\n*** SKIPPED {}: {why}; the sandbox is not tested on this machine ***\n",
                $test
            );
            return;
        }
    };
}
pub(crate) use require_sandbox;
