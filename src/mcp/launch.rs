//! What launches a server: `npx`, `cmd /c npx`, `uvx`, `safex npx`, every
//! other spelling of `crate::spelling` (`npm exec`, `pnpm dlx`, `bunx`,
//! `uv tool run`, ...), docker, a local program, a remote URL; and for the
//! launcher forms, where the package specs sit among the arguments.

use std::fmt;

use crate::spelling::{self, Does, Spelling, To};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    /// `npx ...`, `pnpm dlx ...`, `uv tool run ...` (also `npx.cmd`,
    /// `uvx.exe`, absolute paths): `cmd` is true for `cmd /c npx ...`. The
    /// tool's arguments start at `args[tail]`.
    Direct {
        spelling: &'static Spelling,
        cmd: bool,
        tail: usize,
    },
    /// `safex npx ...`, `safex bunx ...`: the tool's arguments start after
    /// the spelling's words.
    Safex {
        spelling: &'static Spelling,
    },
    /// Registry launchers safex does not run: `yarn dlx`.
    Other(&'static str),
    /// `safex` with something other than a launcher spelling.
    SafexOther,
    Docker,
    /// A program on disk or on `PATH` (`node /x/index.js`, `python -m m`).
    Local,
    /// `url`/`serverUrl`/`httpUrl`: nothing is launched locally.
    Remote,
    /// No `command` and no URL.
    Missing,
}

impl Launcher {
    /// The spelling of a launcher safex runs, and where its arguments start.
    pub fn spelled(&self) -> Option<(&'static Spelling, usize)> {
        match *self {
            Launcher::Direct { spelling, tail, .. } => Some((spelling, tail)),
            Launcher::Safex { spelling } => Some((spelling, spelling.words.len())),
            _ => None,
        }
    }
}

impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Launcher::Direct {
                spelling,
                cmd: true,
                ..
            } => write!(f, "cmd /c {}", spelling.name()),
            Launcher::Direct { spelling, .. } => f.write_str(&spelling.name()),
            Launcher::Safex { spelling } => write!(f, "safex {}", spelling.name()),
            Launcher::Other(s) => f.write_str(s),
            Launcher::SafexOther => f.write_str("safex"),
            Launcher::Docker => f.write_str("docker"),
            Launcher::Local => f.write_str("local"),
            Launcher::Remote => f.write_str("remote"),
            Launcher::Missing => f.write_str("none"),
        }
    }
}

/// `C:\Program Files\nodejs\npx.cmd` → `npx`.
pub fn program_name(command: &str) -> String {
    let base = command.rsplit(['/', '\\']).next().unwrap_or(command);
    let lower = base.to_ascii_lowercase();
    for ext in [".exe", ".cmd", ".bat", ".ps1"] {
        if let Some(s) = lower.strip_suffix(ext) {
            return s.to_owned();
        }
    }
    lower
}

pub fn classify(command: Option<&str>, args: &[String], url: Option<&str>) -> Launcher {
    let Some(command) = command else {
        return if url.is_some() {
            Launcher::Remote
        } else {
            Launcher::Missing
        };
    };
    let prog = program_name(command);
    let arg = |i: usize| args.get(i).map(|a| program_name(a)).unwrap_or_default();
    let spelled =
        |first: &str, rest: &[String]| spelling::find(first, rest, program_name).map(|(s, _)| s);
    if let Some(spelling) = spelled(command, args) {
        return Launcher::Direct {
            spelling,
            cmd: false,
            tail: spelling.words.len() - 1,
        };
    }
    match prog.as_str() {
        "cmd" if args.first().is_some_and(|a| a.eq_ignore_ascii_case("/c")) => {
            match args.get(1).and_then(|a| spelled(a, &args[2..])) {
                Some(spelling) => Launcher::Direct {
                    spelling,
                    cmd: true,
                    tail: 1 + spelling.words.len(),
                },
                None => Launcher::Local,
            }
        }
        "safex" => match args
            .first()
            .and_then(|a| spelling::find(a, &args[1..], str::to_owned))
        {
            Some((spelling, _)) => Launcher::Safex { spelling },
            None => Launcher::SafexOther,
        },
        "yarn" if arg(0) == "dlx" => Launcher::Other("yarn dlx"),
        "docker" | "podman" => Launcher::Docker,
        _ => Launcher::Local,
    }
}

/// A package spec among the tool's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecAt {
    /// Index in the tool's arguments (after `npx`/`uvx`).
    pub index: usize,
    /// `--package=` / `--from=` when the spec is inline in its option.
    pub prefix: String,
    pub spec: String,
}

/// The specs of an `npx`/`uvx` argument list, the root first; and the number
/// of leading arguments that belong to the tool (the rest are the program's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub specs: Vec<SpecAt>,
    pub tool_args: usize,
}

/// Read the options the way `safex <spelling>` will, from the same table.
/// An option safex does not accept (or refuses) is an error here too: the
/// rewritten entry would not start.
pub fn plan(sp: &Spelling, args: &[String]) -> Result<Plan, String> {
    let name = sp.name();
    let mut specs = Vec::new();
    let mut i = 0;
    let mut has_pkg_opt = false;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (a, None),
        };
        let Some(o) = sp
            .option(flag)
            .filter(|o| matches!(o.does, Does::Map(_) | Does::Ignore))
        else {
            return Err(format!("`{name} {a}` is an option safex does not accept"));
        };
        let Some(_) = o.value else {
            i += 1;
            continue;
        };
        let (value, index, prefix) = match inline {
            Some(v) => (v.to_owned(), i, format!("{flag}=")),
            None => {
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| format!("`{a}` has no value"))?;
                i += 1;
                (v.clone(), i, String::new())
            }
        };
        if let Does::Map(to @ (To::Package | To::From | To::With)) = o.does {
            has_pkg_opt |= to != To::With;
            let spec = SpecAt {
                index,
                prefix,
                spec: value,
            };
            if to == To::From {
                specs.insert(0, spec);
            } else {
                specs.push(spec);
            }
        }
        i += 1;
    }
    if i >= args.len() {
        return Err(format!("`{name}` names no package"));
    }
    if !has_pkg_opt {
        // The first positional is the package; with `-p`/`--from` it is a command.
        specs.insert(
            0,
            SpecAt {
                index: i,
                prefix: String::new(),
                spec: args[i].clone(),
            },
        );
    }
    Ok(Plan {
        specs,
        tool_args: i + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn launchers() {
        for (cmd, args, want) in [
            ("npx", &["-y", "a"][..], "npx"),
            ("C:\\Program Files\\nodejs\\npx.cmd", &["a"], "npx"),
            ("cmd", &["/c", "npx", "-y", "a"], "cmd /c npx"),
            ("uvx.exe", &["a"], "uvx"),
            ("safex", &["npx", "a@1.0.0"], "safex npx"),
            ("/usr/local/bin/safex", &["uvx", "a==1"], "safex uvx"),
            ("docker", &["run", "-i", "x"], "docker"),
            ("node", &["/x/index.js"], "local"),
            ("pnpm", &["dlx", "a"], "pnpm dlx"),
            ("pnpx.cmd", &["a"], "pnpx"),
            ("npm", &["exec", "--", "a"], "npm exec"),
            ("npm", &["x", "a"], "npm x"),
            ("npm", &["install", "a"], "local"),
            ("bunx", &["a"], "bunx"),
            ("bun", &["x", "a"], "bun x"),
            ("cmd", &["/c", "pnpm", "dlx", "a"], "cmd /c pnpm dlx"),
            ("safex", &["bun", "x", "a@1.0.0"], "safex bun x"),
            ("safex", &["npm", "install"], "safex"),
            ("yarn", &["dlx", "a"], "yarn dlx"),
            ("uv", &["tool", "run", "--from", "a", "a"], "uv tool run"),
        ] {
            assert_eq!(
                classify(Some(cmd), &v(args), None).to_string(),
                want,
                "{cmd}"
            );
        }
        assert_eq!(classify(None, &[], Some("https://x")), Launcher::Remote);
    }

    #[test]
    fn spec_positions() {
        let sp = |words: &str| {
            spelling::SPELLINGS
                .iter()
                .find(|s| s.name() == words)
                .unwrap()
        };
        let p = plan(sp("npx"), &v(&["-y", "@a/b", "--port", "1"])).unwrap();
        assert_eq!(
            (p.specs[0].index, p.specs[0].spec.as_str(), p.tool_args),
            (1, "@a/b", 2)
        );
        let p = plan(sp("npx"), &v(&["--package=a", "-p", "b@1.0.0", "cmd"])).unwrap();
        assert_eq!(p.specs.len(), 2);
        assert_eq!(
            (p.specs[0].index, p.specs[0].prefix.as_str()),
            (0, "--package=")
        );
        assert_eq!(p.specs[1].index, 2);
        let p = plan(
            sp("uvx"),
            &v(&["--with", "w", "--from", "f[x]", "cmd", "--from"]),
        )
        .unwrap();
        assert_eq!(p.specs[0].spec, "f[x]");
        assert_eq!(p.specs[1].spec, "w");
        assert_eq!(p.tool_args, 5);
        assert!(plan(sp("npx"), &v(&["-c", "echo"])).is_err());
        assert!(plan(sp("npx"), &v(&["-y"])).is_err());
        // Each spelling's own options, from the same table as the command line.
        let p = plan(sp("npm exec"), &v(&["-y", "--", "a@1.0.0", "x"])).unwrap();
        assert_eq!((p.specs[0].index, p.tool_args), (2, 3));
        let p = plan(sp("pnpm dlx"), &v(&["--package", "a@1.0.0", "cmd"])).unwrap();
        assert_eq!((p.specs[0].index, p.specs[0].spec.as_str()), (1, "a@1.0.0"));
        let p = plan(sp("bunx"), &v(&["-p", "a@1.0.0", "cmd"])).unwrap();
        assert_eq!(p.specs[0].spec, "a@1.0.0");
        let p = plan(
            sp("npx"),
            &v(&["--loglevel", "warn", "--no-install", "a@1.0.0"]),
        )
        .unwrap();
        assert_eq!(p.specs[0].index, 3);
        let e = plan(sp("bunx"), &v(&["--bun", "a@1.0.0"])).unwrap_err();
        assert!(e.contains("`bunx --bun`"), "{e}");
        assert!(plan(sp("npm exec"), &v(&["-p", "a@1.0.0", "cmd"])).is_err());
    }
}
