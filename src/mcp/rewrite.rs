//! The two halves of a rewrite: the splices that turn an entry into
//! `safex <tool> ...` (in the file's own syntax and quoting), and the write
//! that puts the result in place (backup, temp file, rename).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mcp::clients::Format;
use crate::mcp::formats::{jsonc, toml, yaml};
use crate::mcp::launch::{self, Launcher};
use crate::mcp::model::{self, Edit, Layout, Quote, Spans};

/// `s` written as a string of `format`, in the quoting the file used.
pub fn render(format: Format, s: &str, q: Quote) -> String {
    match format {
        Format::Json => jsonc::render(s),
        Format::Toml => toml::render(s, q),
        Format::Yaml => yaml::render(s, q),
    }
}

/// Splices that turn the entry into `<command> <tool> <new args>`, where
/// `command` is `safex` or its absolute path (`gui::safex_command`) and
/// `tool` the spelling's first word (`npx`, `pnpm`, `bunx`).
#[allow(clippy::too_many_arguments)]
pub fn edits(
    format: Format,
    text: &str,
    sp: &Spans,
    launcher: &Launcher,
    tool: &str,
    offset: usize,
    specs: &[launch::SpecAt],
    new_args: &[String],
    command: &str,
) -> Vec<Edit> {
    let render = |s: &str, q: Quote| render(format, s, q);
    let mut out = Vec::new();
    let items = &sp.args;
    if let Launcher::Direct { cmd, .. } = launcher {
        out.push(Edit {
            range: sp.command.span.clone(),
            text: render(command, sp.command.quote),
        });
        let first = &items[0];
        if *cmd {
            // `cmd /c npx ...` → `safex npx ...`: drop `/c`, keep (or name) the tool.
            let drop = match sp.layout {
                Layout::Flow => first.span.start..items[1].span.start,
                Layout::Block => {
                    model::line_start(text, first.span.start)
                        ..model::next_line(text, first.span.start)
                }
            };
            out.push(Edit {
                range: drop,
                text: String::new(),
            });
            if items[1].value != tool {
                out.push(Edit {
                    range: items[1].span.clone(),
                    text: render(tool, items[1].quote),
                });
            }
        } else {
            let word = render(tool, first.quote);
            let (at, text) = match sp.layout {
                Layout::Flow => {
                    // One item per line: a new line, indented alike (so a
                    // comment after the first item stays with it).
                    let ls = model::line_start(text, first.span.start);
                    let indent = &text[ls..first.span.start];
                    let sep = if indent.trim().is_empty() {
                        format!(",\n{indent}")
                    } else {
                        match items
                            .get(1)
                            .map(|second| &text[first.span.end..second.span.start])
                        {
                            Some(sep) if !sep.contains(['/', '#', '\n']) => sep.to_owned(),
                            _ => ", ".to_owned(),
                        }
                    };
                    (first.span.start, format!("{word}{sep}"))
                }
                Layout::Block => {
                    let ls = model::line_start(text, first.span.start);
                    (ls, format!("{}{word}\n", &text[ls..first.span.start]))
                }
            };
            out.push(Edit {
                range: at..at,
                text,
            });
        }
    }
    for s in specs {
        let item = &items[offset + s.index];
        if new_args[s.index] != item.value {
            out.push(Edit {
                range: item.span.clone(),
                text: render(&new_args[s.index], item.quote),
            });
        }
    }
    out
}

/// Why `--write` could not replace `path`, if it could not: the file is
/// read-only (its mode, an immutable flag, a read-only mount), or its
/// directory does not let this process create the backup and temp file and
/// rename. Asked by the dry run and the write alike, before any lock runs.
pub fn why_unwritable(path: &Path) -> Option<String> {
    let real = match std::fs::canonicalize(path) {
        Ok(r) => r,
        Err(e) => return Some(format!("cannot resolve it: {e}")),
    };
    if let Some(why) = crate::lock::why_read_only(&real) {
        return Some(format!("it is read-only ({why})"));
    }
    let dir = real.parent()?;
    dir_unwritable(dir)
        .map(|why| format!("its directory `{}` is not writable ({why})", dir.display()))
}

#[cfg(unix)]
fn dir_unwritable(dir: &Path) -> Option<String> {
    use rustix::fs::{Access, AtFlags, CWD, accessat};
    accessat(
        CWD,
        dir,
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::EACCESS,
    )
    .err()
    .map(|e| std::io::Error::from(e).to_string())
}

#[cfg(not(unix))]
fn dir_unwritable(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.permissions().readonly() => Some("read-only".into()),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// Back the file up next to itself, then replace it atomically (a temp
/// file in the same directory, renamed over it), keeping its mode and
/// owner; a symlink (dotfile managers) is followed, not replaced. On a
/// failure the original is untouched and neither the temp file nor the
/// backup is left behind.
pub fn write(path: &Path, old: &str, new: &str) -> Result<PathBuf> {
    let real = std::fs::canonicalize(path)
        .map_err(|e| Error::io(format!("cannot resolve `{}`: {e}", path.display())))?;
    let now = std::fs::read(&real)
        .map_err(|e| Error::io(format!("cannot read `{}`: {e}", real.display())))?;
    if now != old.as_bytes() {
        return Err(Error::io(format!(
            "`{}` changed while safex was pinning it; nothing written",
            path.display()
        ))
        .with_hint("run `safex mcp pin --write` again"));
    }
    let stamp: String = crate::time::format_rfc3339(std::time::SystemTime::now())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let name = real
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("config");
    let mut backup = real.with_file_name(format!("{name}.safex-{stamp}.bak"));
    let mut n = 1;
    while backup.exists() {
        backup = real.with_file_name(format!("{name}.safex-{stamp}-{n}.bak"));
        n += 1;
    }
    let unchanged = || {
        format!(
            "`{}` is unchanged; fix that and run `safex mcp pin --write` again",
            real.display()
        )
    };
    if let Err(e) = std::fs::copy(&real, &backup) {
        let _ = std::fs::remove_file(&backup);
        return Err(Error::io(format!(
            "cannot write the backup `{}`: {e}",
            backup.display()
        ))
        .with_hint(unchanged()));
    }
    let meta = std::fs::metadata(&real).ok();
    let tmp = real.with_file_name(format!(".{name}.safex-tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        if let Some(m) = &meta {
            keep_owner(&f, m)?;
            f.set_permissions(m.permissions())?;
        }
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &real)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&backup);
        return Err(
            Error::io(format!("cannot write `{}`: {e}", real.display())).with_hint(unchanged())
        );
    }
    Ok(backup)
}

/// Give the new file the old one's owner and group (an admin's run as root
/// must not hand a user's config to root). A no-op when they already match.
#[cfg(unix)]
fn keep_owner(f: &std::fs::File, old: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let new = f.metadata()?;
    if (new.uid(), new.gid()) == (old.uid(), old.gid()) {
        return Ok(());
    }
    rustix::fs::fchown(
        f,
        Some(rustix::fs::Uid::from_raw(old.uid())),
        Some(rustix::fs::Gid::from_raw(old.gid())),
    )
    .map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn keep_owner(_: &std::fs::File, _: &std::fs::Metadata) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_keeps_the_mode_and_leaves_only_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.json");
        std::fs::write(&f, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let backup = write(&f, "old", "new").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "old");
        assert_eq!(names(dir.path()).len(), 2, "{:?}", names(dir.path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o640);
        }
    }

    /// An admin (root) pinning a user's file gives it back to the user.
    #[cfg(unix)]
    #[test]
    fn a_write_keeps_the_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.json");
        std::fs::write(&f, "old").unwrap();
        if std::os::unix::fs::chown(&f, Some(65534), Some(65534)).is_err() {
            eprintln!("SKIPPED a_write_keeps_the_owner: not root, cannot give a file away");
            return;
        }
        write(&f, "old", "new").unwrap();
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
    }

    /// The rename over an immutable file fails (even for root): the file
    /// is untouched, and no temp file or backup is left.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.json");
        std::fs::write(&f, "old").unwrap();
        let chattr = |flag: &str| {
            std::process::Command::new("chattr")
                .arg(flag)
                .arg(&f)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !chattr("+i") {
            eprintln!(
                "SKIPPED a_failed_write_leaves_nothing_behind: `chattr +i` is not possible on {}",
                dir.path().display()
            );
            return;
        }
        let r = write(&f, "old", "new");
        chattr("-i");
        let e = r.unwrap_err();
        assert!(e.message.starts_with("cannot write `"), "{}", e.message);
        assert!(why_unwritable(&f).is_none());
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "old");
        assert_eq!(names(dir.path()), ["c.json"]);
    }
}
