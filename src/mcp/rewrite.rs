//! The two halves of a rewrite: the splices that turn an entry into
//! `safex <tool> ...` (in the file's own syntax and quoting), and the write
//! that puts the result in place (backup, temp file, rename).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mcp::clients::Format;
use crate::mcp::formats::{jsonc, toml, yaml};
use crate::mcp::launch::{self, Launcher};
use crate::mcp::model::{self, Edit, Layout, Quote, Spans};

/// Splices that turn the entry into `safex <tool> <new args>`; `tool` is the
/// spelling's first word (`npx`, `pnpm`, `bunx`).
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
) -> Vec<Edit> {
    let render = |s: &str, q: Quote| match format {
        Format::Json => jsonc::render(s),
        Format::Toml => toml::render(s, q),
        Format::Yaml => yaml::render(s, q),
    };
    let mut out = Vec::new();
    let items = &sp.args;
    if let Launcher::Direct { cmd, .. } = launcher {
        out.push(Edit {
            range: sp.command.span.clone(),
            text: render("safex", sp.command.quote),
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

/// Back the file up next to itself, then replace it atomically, keeping its
/// permissions; a symlink (dotfile managers) is followed, not replaced.
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
    std::fs::copy(&real, &backup)
        .map_err(|e| Error::io(format!("cannot write backup `{}`: {e}", backup.display())))?;
    let perms = std::fs::metadata(&real).map(|m| m.permissions()).ok();
    let tmp = real.with_file_name(format!(".{name}.safex-tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        if let Some(p) = &perms {
            f.set_permissions(p.clone())?;
        }
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &real)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(
            Error::io(format!("cannot write `{}`: {e}", real.display())).with_hint(format!(
                "the original is unchanged; a copy is in `{}`",
                backup.display()
            )),
        );
    }
    Ok(backup)
}
