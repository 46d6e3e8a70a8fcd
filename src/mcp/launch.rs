//! What launches a server: `npx`, `cmd /c npx`, `uvx`, `safex npx`, docker,
//! a local program, a remote URL; and for `npx`/`uvx` forms, where the
//! package specs sit among the arguments.

use std::fmt;

pub use crate::spelling::Tool;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    /// `npx ...` / `uvx ...` (also `npx.cmd`, `uvx.exe`, absolute paths):
    /// `cmd` is true for `cmd /c npx ...`. The tool's arguments start at
    /// `args[tail]`.
    Direct {
        tool: Tool,
        cmd: bool,
        tail: usize,
    },
    /// `safex npx ...` / `safex uvx ...`.
    Safex {
        tool: Tool,
    },
    /// Registry launchers safex does not rewrite: `bunx`, `pnpm dlx`, `uv tool run`.
    Other(&'static str),
    /// `safex` with something other than `npx`/`uvx`.
    SafexOther,
    Docker,
    /// A program on disk or on `PATH` (`node /x/index.js`, `python -m m`).
    Local,
    /// `url`/`serverUrl`/`httpUrl`: nothing is launched locally.
    Remote,
    /// No `command` and no URL.
    Missing,
}

impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Launcher::Direct {
                tool, cmd: true, ..
            } => write!(f, "cmd /c {}", tool.as_str()),
            Launcher::Direct { tool, .. } => f.write_str(tool.as_str()),
            Launcher::Safex { tool } => write!(f, "safex {}", tool.as_str()),
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
    match prog.as_str() {
        "npx" => Launcher::Direct {
            tool: Tool::Npx,
            cmd: false,
            tail: 0,
        },
        "uvx" => Launcher::Direct {
            tool: Tool::Uvx,
            cmd: false,
            tail: 0,
        },
        "cmd" if args.first().is_some_and(|a| a.eq_ignore_ascii_case("/c")) => {
            match arg(1).as_str() {
                "npx" => Launcher::Direct {
                    tool: Tool::Npx,
                    cmd: true,
                    tail: 2,
                },
                "uvx" => Launcher::Direct {
                    tool: Tool::Uvx,
                    cmd: true,
                    tail: 2,
                },
                _ => Launcher::Local,
            }
        }
        "safex" => match args.first().map(String::as_str) {
            Some("npx") => Launcher::Safex { tool: Tool::Npx },
            Some("uvx") => Launcher::Safex { tool: Tool::Uvx },
            _ => Launcher::SafexOther,
        },
        "bunx" => Launcher::Other("bunx"),
        "bun" if arg(0) == "x" => Launcher::Other("bunx"),
        "pnpm" if arg(0) == "dlx" => Launcher::Other("pnpm dlx"),
        "yarn" if arg(0) == "dlx" => Launcher::Other("yarn dlx"),
        "uv" if arg(0) == "tool" && arg(1) == "run" => Launcher::Other("uv tool run"),
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

/// Read the options the way `safex npx`/`safex uvx` will. An option safex
/// does not accept is an error here too: the rewritten entry would not start.
pub fn plan(tool: Tool, args: &[String]) -> Result<Plan, String> {
    let with_value: &[&str] = match tool {
        Tool::Npx => &["-p", "--package", "--registry", "--env"],
        Tool::Uvx => &[
            "--from",
            "--with",
            "-w",
            "--python",
            "-p",
            "--index-url",
            "-i",
            "--default-index",
            "--index",
            "--extra-index-url",
            "--env",
        ],
    };
    let no_value: &[&str] = match tool {
        Tool::Npx => &[
            "-y",
            "--yes",
            "--offline",
            "--prefer-offline",
            "--prefer-online",
        ],
        Tool::Uvx => &[
            "--offline",
            "--isolated",
            "--no-build",
            "--no-cache",
            "-q",
            "--quiet",
        ],
    };
    let spec_opts: &[&str] = match tool {
        Tool::Npx => &["-p", "--package"],
        Tool::Uvx => &["--from", "--with", "-w"],
    };
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
        if no_value.contains(&flag) {
            i += 1;
            continue;
        }
        if !with_value.contains(&flag) {
            return Err(format!(
                "`{} {a}` is an option safex does not accept",
                tool.as_str()
            ));
        }
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
        if spec_opts.contains(&flag) {
            has_pkg_opt |= matches!(flag, "-p" | "--package" | "--from");
            let spec = SpecAt {
                index,
                prefix,
                spec: value,
            };
            if flag == "--from" {
                specs.insert(0, spec);
            } else {
                specs.push(spec);
            }
        }
        i += 1;
    }
    if i >= args.len() {
        return Err(format!("`{}` names no package", tool.as_str()));
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
        let p = plan(Tool::Npx, &v(&["-y", "@a/b", "--port", "1"])).unwrap();
        assert_eq!(
            (p.specs[0].index, p.specs[0].spec.as_str(), p.tool_args),
            (1, "@a/b", 2)
        );
        let p = plan(Tool::Npx, &v(&["--package=a", "-p", "b@1.0.0", "cmd"])).unwrap();
        assert_eq!(p.specs.len(), 2);
        assert_eq!(
            (p.specs[0].index, p.specs[0].prefix.as_str()),
            (0, "--package=")
        );
        assert_eq!(p.specs[1].index, 2);
        let p = plan(
            Tool::Uvx,
            &v(&["--with", "w", "--from", "f[x]", "cmd", "--from"]),
        )
        .unwrap();
        assert_eq!(p.specs[0].spec, "f[x]");
        assert_eq!(p.specs[1].spec, "w");
        assert_eq!(p.tool_args, 5);
        assert!(plan(Tool::Npx, &v(&["-c", "echo"])).is_err());
        assert!(plan(Tool::Npx, &v(&["-y"])).is_err());
    }
}
