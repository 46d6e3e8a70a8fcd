//! Entry points and console scripts: `entry_points.txt`, object references, script names, and the script safex writes for each.
//!
//! Console scripts are written by safex from `entry_points.txt`, and only
//! for entries of the form `module:attr`, so that an entry point cannot
//! smuggle code into the script or a name out of the scripts directory.

use std::path::Path;

use crate::error::{Error, Result};

/// A `[console_scripts]` entry: `name = module:attr`, or `name = module`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    pub name: String,
    pub module: String,
    pub attr: String,
}

/// Longest interpreter path written as a plain `#!` line: Linux before 5.1
/// reads 128 bytes of it, including `#!` and the newline.
const SHEBANG_MAX: usize = 125;

pub(super) const HINT_ENTRY: &str = "an entry point must be `name = module:attr` with a plain file name \
    and dotted Python names; anything else could run other code or write outside `bin`";

/// The `[console_scripts]` of `entry_points.txt`; `[gui_scripts]` entries are
/// validated the same way but not installed.
pub(super) fn parse_entry_points(text: &str) -> Result<Vec<EntryPoint>, String> {
    let mut scripts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (section, name, value, line) in entries(text)? {
        if section != "console_scripts" && section != "gui_scripts" {
            continue;
        }
        let shown = format!("`{name} = {}`", value.replace('\n', "\\n"));
        if !safe_script_name(&name) {
            return Err(format!(
                "has an entry point {shown} (line {line}) whose name is not a plain file name"
            ));
        }
        let ep = parse_object_reference(&name, &value).ok_or_else(|| {
            format!("has an entry point {shown} (line {line}) that is not `module:attr`")
        })?;
        if !seen.insert((section.clone(), name.clone())) {
            return Err(format!(
                "has the entry point `{name}` twice in `[{section}]`"
            ));
        }
        if section == "console_scripts" {
            scripts.push(ep);
        }
    }
    Ok(scripts)
}

/// One `name = value` of an INI file: section, name, value, line.
type IniEntry = (String, String, String, usize);

/// The entries of `entry_points.txt` in every section, read as Python's
/// `configparser` reads them (comments, continuation lines).
fn entries(text: &str) -> Result<Vec<IniEntry>, String> {
    let mut section: Option<String> = None;
    let mut entries: Vec<IniEntry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            // A continuation line: configparser appends it to the value.
            match entries.last_mut() {
                Some(last) if section.is_some() => {
                    last.2.push('\n');
                    last.2.push_str(trimmed);
                    continue;
                }
                _ => {
                    return Err(format!(
                        "has an `entry_points.txt` with a stray indented line {line_no}"
                    ));
                }
            }
        }
        if let Some(inner) = trimmed.strip_prefix('[') {
            let name = inner.strip_suffix(']').ok_or_else(|| {
                format!(
                    "has an `entry_points.txt` with a malformed section header on line {line_no}"
                )
            })?;
            section = Some(name.trim().to_owned());
            continue;
        }
        let Some(current) = &section else {
            return Err(format!(
                "has an `entry_points.txt` with an entry before any section (line {line_no})"
            ));
        };
        let Some((name, value)) = trimmed.split_once('=') else {
            return Err(format!(
                "has an `entry_points.txt` whose line {line_no} is not `name = value`"
            ));
        };
        entries.push((
            current.clone(),
            name.trim().to_owned(),
            value.trim().to_owned(),
            line_no,
        ));
    }
    Ok(entries)
}

/// A script name is written as a file in the scripts directory.
fn safe_script_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('-')
        && !name.contains(['/', '\\', ':'])
        && !name.chars().any(char::is_control)
}

/// `module:attr`, optionally followed by `[extra, ...]`, as the
/// entry points specification writes it; names are dotted identifiers.
fn parse_object_reference(name: &str, value: &str) -> Option<EntryPoint> {
    let (reference, extras) = match value.split_once('[') {
        Some((reference, extras)) => (reference, Some(extras)),
        None => (value, None),
    };
    if let Some(extras) = extras {
        let inner = extras.trim_end().strip_suffix(']')?;
        let extra_ok = |e: &str| {
            !e.is_empty()
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !inner.split(',').map(str::trim).all(extra_ok) {
            return None;
        }
    }
    // A console script calls a function: `module:attr` is required (pip
    // refuses a bare module too, "A callable suffix is required").
    let (module, attr) = reference.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    if !dotted_identifiers(module) || !dotted_identifiers(attr) {
        return None;
    }
    Some(EntryPoint {
        name: name.to_owned(),
        module: module.to_owned(),
        attr: attr.to_owned(),
    })
}

fn dotted_identifiers(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// The `#!` header for scripts run by `python`. A path with whitespace or
/// too long for the kernel gets pip's `/bin/sh` trampoline, which is also
/// valid Python (a string literal).
pub(super) fn shebang(python: &Path) -> Result<String> {
    let path = python.to_str().ok_or_else(|| {
        Error::internal(format!(
            "the interpreter path `{}` is not UTF-8",
            python.display()
        ))
    })?;
    if path.contains(['\n', '\r', '\0']) {
        return Err(Error::internal(format!(
            "the interpreter path `{}` cannot be written into a script",
            python.display()
        )));
    }
    if path.len() <= SHEBANG_MAX && !path.contains([' ', '\t']) {
        return Ok(format!("#!{path}\n"));
    }
    if path.contains(['"', '$', '`', '\\', '\'']) {
        return Err(Error::internal(format!(
            "the interpreter path `{}` cannot be written into a script",
            python.display()
        )));
    }
    Ok(format!(
        "#!/bin/sh\n'''exec' \"{path}\" \"$0\" \"$@\"\n' '''\n"
    ))
}

/// A console script, as pip and uv write them, with one addition: before
/// it imports anything it takes its own directory (`bin/`, which Python
/// puts first on `sys.path` for a script) off `sys.path`, so that no file
/// there, whatever its name, is imported in place of a module. `sys` and
/// `os` are loaded by then (`site` imports `os` before any script runs).
/// No `str.removesuffix`: that is 3.9+, and 3.8 is supported.
pub(super) fn script(header: &str, ep: &EntryPoint) -> String {
    let module = &ep.module;
    let attr = &ep.attr;
    let first = attr.split('.').next().unwrap_or(attr);
    let run = format!(
        "{SCRIPT_DIR_OFF_PATH}\
         from {module} import {first}\n\
         if __name__ == \"__main__\":\n    \
         if sys.argv[0].endswith(\".exe\"):\n        \
         sys.argv[0] = sys.argv[0][:-4]\n    \
         sys.exit({attr}())\n"
    );
    format!("{header}# -*- coding: utf-8 -*-\n{run}")
}

/// The lines of [`script`] that take the script's directory off `sys.path`.
pub(super) const SCRIPT_DIR_OFF_PATH: &str = "import sys\n\
    import os\n\
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == \
    os.path.dirname(os.path.realpath(__file__)):\n    \
    del sys.path[0]\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::pypi::wheel_fixture::*;

    #[test]
    fn shebang_for_long_or_spaced_paths_uses_sh_trampoline() {
        let plain = shebang(Path::new("/venv/bin/python")).unwrap();
        assert_eq!(plain, "#!/venv/bin/python\n");
        let spaced = shebang(Path::new("/Users/a b/venv/bin/python")).unwrap();
        assert_eq!(
            spaced,
            "#!/bin/sh\n'''exec' \"/Users/a b/venv/bin/python\" \"$0\" \"$@\"\n' '''\n"
        );
        let long = format!("/{}/python", "d".repeat(200));
        assert!(
            shebang(Path::new(&long))
                .unwrap()
                .starts_with("#!/bin/sh\n")
        );
        assert!(shebang(Path::new("/a b/$x/python")).is_err());
    }

    #[test]
    fn refuses_injected_entry_points() {
        let ep = format!("{DIST}.dist-info/entry_points.txt");
        for (content, needle) in [
            (
                "[console_scripts]\nx = os; import evil\n",
                "`x = os; import evil`",
            ),
            ("[console_scripts]\nx = a:b(1)\n", "`x = a:b(1)`"),
            (
                "[console_scripts]\nx = a:b; import os\n",
                "`x = a:b; import os`",
            ),
            (
                "[console_scripts]\nx = a:b [cli]; rm\n",
                "`x = a:b [cli]; rm`",
            ),
            ("[console_scripts]\nx = a:\n", "`x = a:`"),
            ("[console_scripts]\nx = :b\n", "`x = :b`"),
            ("[console_scripts]\nx = a.:b\n", "`x = a.:b`"),
            (
                "[console_scripts]\nx = a:b\n  import os\n",
                "`x = a:b\\nimport os`",
            ),
            (
                "[gui_scripts]\nx = __import__('os'):b\n",
                "`x = __import__('os'):b`",
            ),
            (
                "[console_scripts]\n../x = a:b\n",
                "`../x = a:b` (line 2) whose name",
            ),
            ("[console_scripts]\n/tmp/x = a:b\n", "`/tmp/x = a:b`"),
            ("[console_scripts]\na\\b = a:b\n", "`a\\b = a:b`"),
            ("[console_scripts]\n.. = a:b\n", "`.. = a:b`"),
            ("[console_scripts]\n-rf = a:b\n", "`-rf = a:b`"),
            (
                "[console_scripts]\nx\u{1b}[2J = a:b\n",
                "whose name is not a plain file name",
            ),
            (
                "[console_scripts]\nx = a:b\nx = a:c\n",
                "entry point `x` twice",
            ),
            (
                "[console_scripts]\njust text\n",
                "line 2 is not `name = value`",
            ),
            ("x = a:b\n", "before any section"),
        ] {
            let err = refused(&files(vec![f(&ep, content)]), None, Kind::Unsafe, needle);
            assert_eq!(err.hint.as_deref(), Some(HINT_ENTRY), "{err}");
        }
    }

    #[test]
    fn entry_point_table() {
        let ok = |v: &str| parse_object_reference("n", v);
        let ep = |m: &str, a: Option<&str>| {
            Some(EntryPoint {
                name: "n".into(),
                module: m.into(),
                attr: a?.into(),
            })
        };
        assert_eq!(ok("a.b:c.d"), ep("a.b", Some("c.d")));
        assert_eq!(ok("a.b : c"), ep("a.b", Some("c")));
        assert_eq!(ok("a:b [x, y-z]"), ep("a", Some("b")));
        assert_eq!(ok("_a1"), None, "a bare module is not a callable");
        assert_eq!(ok("mödul:main"), ep("mödul", Some("main")));
        for bad in [
            "",
            "a:b:c",
            "1a:b",
            "a-b:c",
            "a:b()",
            "a:b [x",
            "a:b [x;y]",
            "a b:c",
            "a:\"b\"",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
        for (name, good) in [
            ("demo", true),
            ("demo-cli.py", true),
            ("", false),
            ("a:b", false),
        ] {
            assert_eq!(safe_script_name(name), good, "{name:?}");
        }
    }
}
