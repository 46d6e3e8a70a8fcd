//! Every launcher spelling safex accepts — `npx`, `npm exec`, `pnpm dlx`,
//! `bunx`, `uvx`, `uv tool run`, ... — in one table, each with its options
//! and what safex does with each (mapped, accepted with no effect, refused
//! and why). One parser reads them all; `--help`, the MCP config scanner and
//! `safex mcp pin` read the same table.
//!
//! Options come before the package spec; everything after it (after the
//! command, with `--package`/`--from`) belongs to the program verbatim, its
//! `--help` included. Sources for each spelling's options: npm's `npm-exec`
//! page (npx shorthands, `-p` is `--parseable` under `npm exec`), pnpm's
//! `dlx` page, bun's `bunx` page, uv's `tool run` reference.

use std::ffi::OsString;

use crate::ecosystem::Ecosystem;
use crate::error::{Error, Result};

/// Where a mapped option lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// npm: a package to install; the first positional is then a command.
    Package,
    Registry,
    Offline,
    /// safex's `-q`.
    Quiet,
    /// npm's `--loglevel`: `silent`, `error` and `warn` are safex's `-q`.
    LogLevel,
    /// safex's `--env NAME`.
    Env,
    From,
    With,
    Python,
    IndexUrl,
    ExtraIndex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Does {
    Map(To),
    /// Accepted; nothing to do (`why` says why).
    Ignore,
    /// Refused (`why` says why).
    Refuse,
    /// `-c 'cmd args'`: refused, with the `-p pkg cmd args` form as the hint.
    Call,
    Help,
}

impl Does {
    /// The `--help` section that lists the option.
    fn section(self) -> &'static str {
        match self {
            Map(_) | Help => "Mapped",
            Ignore => "Accepted, no effect",
            Refuse | Call => "Refused",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Opt {
    pub names: &'static [&'static str],
    /// The value's name, when the option takes one.
    pub value: Option<&'static str>,
    pub does: Does,
    pub why: &'static str,
}

const fn opt(
    names: &'static [&'static str],
    value: Option<&'static str>,
    does: Does,
    why: &'static str,
) -> Opt {
    Opt {
        names,
        value,
        does,
        why,
    }
}

use Does::{Call, Help, Ignore, Map, Refuse};

const SPEC: Option<&str> = Some("SPEC");
const URL: Option<&str> = Some("URL");

const QUIET: &str = "safex's `-q`: only errors on stderr";

/// npm's `--loglevel` (pnpm's too).
const LOGLEVEL: Opt = opt(
    &["--loglevel"],
    Some("LEVEL"),
    Map(To::LogLevel),
    "`silent`, `error`, `warn`: safex's `-q`; other levels: no effect",
);

/// safex's own options, in every spelling.
const SAFEX: &[Opt] = &[
    opt(
        &["--env"],
        Some("NAME"),
        Map(To::Env),
        "safex: pass this environment variable to the program (repeatable)",
    ),
    opt(&["-h", "--help"], None, Help, "this help"),
];

/// npm's registry options, in every npm spelling.
const NPM_REGISTRY: &[Opt] = &[
    opt(
        &["--registry"],
        URL,
        Map(To::Registry),
        "the npm registry for this launch",
    ),
    opt(
        &["--offline"],
        None,
        Map(To::Offline),
        "no network: run from the lockfile and the cache only",
    ),
];

/// `npx` (npm 7+), including the npm config options MCP configs carry.
const NPX: &[Opt] = &[
    opt(
        &["-p", "--package"],
        SPEC,
        Map(To::Package),
        "a package to install (repeatable); the first positional is then the command",
    ),
    opt(
        &["-q", "--quiet", "-s", "--silent"],
        None,
        Map(To::Quiet),
        QUIET,
    ),
    LOGLEVEL,
    opt(&["-y", "--yes"], None, Ignore, "safex never prompts"),
    opt(
        &["--no", "--no-install"],
        None,
        Ignore,
        "safex never prompts and installs no scripts; it fetches only the pinned, verified version (`--offline` forbids even that)",
    ),
    opt(
        &["--prefer-offline", "--prefer-online"],
        None,
        Ignore,
        "safex is cache-first: a locked, cached tree never touches the network",
    ),
    opt(
        &["--ignore-existing"],
        None,
        Ignore,
        "safex never uses packages installed elsewhere",
    ),
    opt(
        &["--cache"],
        Some("DIR"),
        Ignore,
        "npm's cache; safex keeps its own (`safex cache dir`)",
    ),
    opt(
        &["-c", "--call"],
        Some("CMD"),
        Call,
        "runs a shell string; name the package and its command instead",
    ),
    opt(
        &["-w", "--workspace"],
        Some("NAME"),
        Refuse,
        "runs a package of this project's workspace; safex runs registry packages only",
    ),
    opt(
        &["--workspaces", "--ws", "--include-workspace-root"],
        None,
        Refuse,
        "the same, for every workspace",
    ),
];

/// `npm exec` / `npm x` differ from `npx` in one option.
const NPM_EXEC: &[Opt] = &[opt(
    &["-p"],
    None,
    Refuse,
    "under `npm exec`, `-p` is npm's `--parseable`; write `--package=<name>@<x.y.z>`",
)];

/// `pnpm dlx` / `pnpx`.
const PNPM_DLX: &[Opt] = &[
    opt(
        &["--package"],
        SPEC,
        Map(To::Package),
        "a package to install (repeatable); the first positional is then the command",
    ),
    opt(&["-s", "--silent"], None, Map(To::Quiet), QUIET),
    LOGLEVEL,
    opt(
        &["-c", "--shell-mode"],
        None,
        Call,
        "runs the command in a shell; name the package and its command instead",
    ),
    opt(
        &["--allow-build"],
        Some("NAME"),
        Refuse,
        "lets install scripts run; safex runs none (see `scripts` in `safex policy show`)",
    ),
];

/// `bunx` / `bun x`.
const BUNX: &[Opt] = &[
    opt(
        &["-p", "--package"],
        SPEC,
        Map(To::Package),
        "the package, when its command has another name",
    ),
    opt(&["--silent"], None, Map(To::Quiet), QUIET),
    opt(
        &["--no-install", "--verbose"],
        None,
        Ignore,
        "safex installs nothing but the pinned, verified version and says what it did",
    ),
    opt(
        &["--bun"],
        None,
        Refuse,
        "runs the program with Bun instead of Node.js; safex runs it with `node`",
    ),
];

/// `uvx` / `uv tool run`.
const UVX: &[Opt] = &[
    opt(
        &["--from"],
        SPEC,
        Map(To::From),
        "the package; the first positional is then the command",
    ),
    opt(
        &["-w", "--with"],
        SPEC,
        Map(To::With),
        "one more package in the environment (repeatable)",
    ),
    opt(
        &["-p", "--python"],
        Some("VERSION"),
        Map(To::Python),
        "the Python: a version (`3.12`: one that reports it, or a refusal listing those found), a path, or a name",
    ),
    opt(
        &["-i", "--index-url", "--default-index"],
        URL,
        Map(To::IndexUrl),
        "the package index",
    ),
    opt(
        &["--index", "--extra-index-url"],
        URL,
        Map(To::ExtraIndex),
        "the package index when it is the only one given (safex reads one index; several are refused)",
    ),
    opt(
        &["--offline"],
        None,
        Map(To::Offline),
        "no network: run from the lockfile and the cache only",
    ),
    opt(&["-q", "--quiet"], None, Map(To::Quiet), QUIET),
    opt(
        &["--isolated", "--no-build", "--no-cache"],
        None,
        Ignore,
        "safex is always isolated, never builds, and verifies every cached file",
    ),
];

/// One way users type a launcher.
#[derive(Debug, PartialEq, Eq)]
pub struct Spelling {
    /// As typed: `["npm", "exec"]`.
    pub words: &'static [&'static str],
    pub ecosystem: Ecosystem,
    /// Option groups, searched in order (an earlier group overrides).
    options: &'static [&'static [Opt]],
    /// `npm exec`: npm, not the program, takes the first `--` after the
    /// package when none came before it.
    npm_dashdash: bool,
}

const NPX_OPTS: &[&[Opt]] = &[NPX, NPM_REGISTRY, SAFEX];
const NPM_EXEC_OPTS: &[&[Opt]] = &[NPM_EXEC, NPX, NPM_REGISTRY, SAFEX];
const PNPM_OPTS: &[&[Opt]] = &[PNPM_DLX, NPM_REGISTRY, SAFEX];
const BUNX_OPTS: &[&[Opt]] = &[BUNX, NPM_REGISTRY, SAFEX];
const UVX_OPTS: &[&[Opt]] = &[UVX, SAFEX];

const fn spelling(
    words: &'static [&'static str],
    ecosystem: Ecosystem,
    options: &'static [&'static [Opt]],
) -> Spelling {
    Spelling {
        words,
        ecosystem,
        options,
        npm_dashdash: false,
    }
}

/// Every spelling; the canonical `npx` and `uvx` first.
pub static SPELLINGS: &[Spelling] = &[
    spelling(&["npx"], Ecosystem::Npm, NPX_OPTS),
    spelling(&["uvx"], Ecosystem::Pypi, UVX_OPTS),
    Spelling {
        npm_dashdash: true,
        ..spelling(&["npm", "exec"], Ecosystem::Npm, NPM_EXEC_OPTS)
    },
    Spelling {
        npm_dashdash: true,
        ..spelling(&["npm", "x"], Ecosystem::Npm, NPM_EXEC_OPTS)
    },
    spelling(&["pnpm", "dlx"], Ecosystem::Npm, PNPM_OPTS),
    spelling(&["pnpx"], Ecosystem::Npm, PNPM_OPTS),
    spelling(&["bunx"], Ecosystem::Npm, BUNX_OPTS),
    spelling(&["bun", "x"], Ecosystem::Npm, BUNX_OPTS),
    spelling(&["uv", "tool", "run"], Ecosystem::Pypi, UVX_OPTS),
];

impl Spelling {
    /// `npm exec`.
    pub fn name(&self) -> String {
        self.words.join(" ")
    }

    /// `npx` and `uvx` themselves.
    pub fn is_canonical(&self) -> bool {
        self.words == [self.ecosystem.launcher()]
    }

    pub fn option(&self, flag: &str) -> Option<&'static Opt> {
        self.options
            .iter()
            .flat_map(|g| g.iter())
            .find(|o| o.names.contains(&flag))
    }

    /// Every option once, as `--help` lists them (an overridden name only
    /// in its first group).
    fn all_options(&self) -> Vec<(&'static Opt, Vec<&'static str>)> {
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for o in self.options.iter().flat_map(|g| g.iter()) {
            let names: Vec<&str> = o
                .names
                .iter()
                .copied()
                .filter(|n| !seen.contains(n))
                .collect();
            seen.extend(&names);
            if !names.is_empty() {
                out.push((o, names));
            }
        }
        out
    }

    /// The option that names a package (`-p`, `--package`, `--from`).
    fn package_option(&self) -> &'static str {
        let to = match self.ecosystem {
            Ecosystem::Npm => To::Package,
            Ecosystem::Pypi => To::From,
        };
        self.all_options()
            .into_iter()
            .find(|(o, _)| o.does == Map(to))
            .map(|(_, names)| names[0])
            .unwrap_or("--package")
    }
}

/// The spelling `first args...` starts with, and the tool's arguments after
/// its words. `program_name` normalises each word (`npx.cmd` → `npx`).
pub fn find<'a, S: AsRef<std::ffi::OsStr>>(
    first: &str,
    args: &'a [S],
    program_name: impl Fn(&str) -> String,
) -> Option<(&'static Spelling, &'a [S])> {
    let first = program_name(first);
    SPELLINGS.iter().find_map(|sp| {
        let rest = &sp.words[1..];
        let matches = sp.words[0] == first
            && args.len() >= rest.len()
            && rest
                .iter()
                .zip(args)
                .all(|(w, a)| a.as_ref().to_str().is_some_and(|a| program_name(a) == *w));
        matches.then(|| (sp, &args[rest.len()..]))
    })
}

/// The spellings that start with `first` (`npm` → `npm exec`, `npm x`).
pub fn starting_with(first: &str) -> Vec<&'static Spelling> {
    SPELLINGS.iter().filter(|s| s.words[0] == first).collect()
}

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Run,
    Lock,
    Check,
}

impl Verb {
    /// The words between `safex` and the spelling.
    pub fn prefix(self) -> &'static str {
        match self {
            Verb::Run => "",
            Verb::Lock => "lock ",
            Verb::Check => "policy check ",
        }
    }

    fn intro(self, sp: &Spelling) -> String {
        let (a, eco) = match sp.ecosystem {
            Ecosystem::Npm => ("an", "npm"),
            Ecosystem::Pypi => ("a", "PyPI"),
        };
        let name = sp.name();
        match (self, sp.ecosystem) {
            (Verb::Run, Ecosystem::Npm) => format!(
                "Run a pinned npm package as `{name}` would: exact version, verified hashes, no install scripts."
            ),
            (Verb::Run, Ecosystem::Pypi) => format!(
                "Run a pinned PyPI package as `{name}` would: exact version, verified hashes, wheels only."
            ),
            (Verb::Lock, _) => format!(
                "Resolve, fetch and verify {a} {eco} package named as `{name}` names it, record its tree in the lockfile and print it. Nothing is run."
            ),
            (Verb::Check, _) => format!(
                "The policy's decision for {a} {eco} package named as `{name}` names it, and for its whole tree, without launching it."
            ),
        }
    }

    /// One line for the subcommand list (`safex --help`, `safex lock --help`).
    pub fn about(self, first: &str) -> String {
        let all = starting_with(first);
        let Some(sp) = all.first() else {
            return String::new();
        };
        let name = sp.ecosystem.launcher();
        if sp.is_canonical() {
            let eco = match sp.ecosystem {
                Ecosystem::Npm => "npm",
                Ecosystem::Pypi => "PyPI",
            };
            let an = if sp.ecosystem == Ecosystem::Npm {
                "an"
            } else {
                "a"
            };
            return match self {
                Verb::Run => format!("Run a pinned {eco} package as `{name}` would"),
                Verb::Lock => format!("Lock {an} {eco} package named as `{name}` names it"),
                Verb::Check => {
                    format!("Check {an} {eco} package named as `{name}` names it, and its tree")
                }
            };
        }
        let names: Vec<String> = all.iter().map(|s| format!("`{}`", s.name())).collect();
        format!(
            "{}: the same as `safex {}{name}`",
            names.join(", "),
            self.prefix(),
        )
    }

    /// The line under a subcommand list naming the other spellings.
    pub fn also_accepted(self) -> String {
        let others = |tool: Ecosystem| {
            SPELLINGS
                .iter()
                .filter(|s| s.ecosystem == tool && !s.is_canonical())
                .map(|s| format!("`{}`", s.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "Also accepted: {} (the same as `safex {p}npx`) and {} (the same as `safex {p}uvx`); see `safex {p}npm exec --help`.",
            others(Ecosystem::Npm),
            others(Ecosystem::Pypi),
            p = self.prefix()
        )
    }
}

/// `-h`/`--help` for one spelling: what it does, its usage, and every option
/// with what safex does with it.
pub fn help(sp: &Spelling, verb: Verb) -> String {
    let head = format!("safex {}{}", verb.prefix(), sp.name());
    let spec = sp.ecosystem.spec_form();
    let dd = if sp.npm_dashdash { "[--] " } else { "" };
    let args = if verb == Verb::Run { " [ARGS...]" } else { "" };
    let pkg = sp.package_option();
    let more = match sp.ecosystem {
        Ecosystem::Npm => format!("[{pkg} ...]"),
        Ecosystem::Pypi => "[--with <name>==<x.y.z> ...]".to_owned(),
    };
    let mut out = format!(
        "{}\n\nUsage: {head} [OPTIONS] {dd}{spec}{args}\n       {head} [OPTIONS] {pkg} {spec} {more} {dd}<command>{args}\n",
        verb.intro(sp)
    );
    if verb == Verb::Run {
        out.push_str(
            "\nOptions go before the package. Everything after the package (after the\ncommand, with ",
        );
        out.push_str(&format!(
            "`{pkg}`) goes to the program verbatim, `--help` included.\n"
        ));
        if sp.npm_dashdash {
            out.push_str("As with npm, the first `--` after the package is dropped.\n");
        }
    }
    for title in ["Mapped", "Accepted, no effect", "Refused"] {
        let rows: Vec<(String, &str)> = sp
            .all_options()
            .into_iter()
            .filter(|(o, _)| o.does.section() == title)
            .filter(|(o, _)| verb == Verb::Run || !matches!(o.does, Map(To::Env)))
            .map(|(o, names)| {
                let mut left = names.join(", ");
                if let Some(v) = o.value {
                    left.push_str(&format!(" <{v}>"));
                }
                (left, o.why)
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{title}:\n"));
        let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (left, why) in rows {
            out.push_str(&format!("  {left:width$}  {why}\n"));
        }
    }
    out.push_str(&format!(
        "\nsafex's `-q` and `--policy FILE` go before `{}` too; see `safex --help`.\n",
        sp.words[0]
    ));
    out
}

/// What a spelling's parser fills in.
pub trait ToolArgs: Default {
    fn set(&mut self, to: To, value: Option<String>);
    fn finish(&mut self, target: String, program_args: Vec<OsString>);
    /// `-p` specs given so far (for the `-c` hint).
    fn packages(&self) -> &[String];
}

/// A parsed command line, or a request for help.
#[derive(Debug, PartialEq)]
pub enum Parsed<T> {
    Args(T),
    Help,
}

impl<T> Parsed<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        match self {
            Parsed::Args(a) => Parsed::Args(f(a)),
            Parsed::Help => Parsed::Help,
        }
    }
}

/// Parse a spelling's arguments: options first; the first non-option (or
/// whatever follows `--`) is the spec or command; the rest is the program's.
/// `verb` only shapes the usage line of an error.
pub fn parse<T: ToolArgs>(sp: &Spelling, verb: Verb, args: &[OsString]) -> Result<Parsed<T>> {
    let usage = || help_hint(sp, verb);
    let mut out = T::default();
    let mut call = None;
    let mut dashdash = false;
    let mut i = 0;
    while i < args.len() {
        let arg = utf8(&args[i])?;
        if arg == "--" {
            dashdash = true;
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg, None),
        };
        let Some(o) = sp.option(flag) else {
            return Err(
                Error::usage(format!("unsupported {} option `{flag}`", sp.name()))
                    .with_hint(format!("{}\n{}", accepted(sp, verb), usage())),
            );
        };
        let value = match (o.value, inline) {
            (None, _) => None,
            (Some(_), Some(v)) => Some(v),
            (Some(_), None) => {
                i += 1;
                let v = args.get(i).map(|v| utf8(v)).transpose()?.ok_or_else(|| {
                    Error::usage(format!("`{flag}` needs a value")).with_hint(usage())
                })?;
                Some(v.to_owned())
            }
        };
        match o.does {
            Map(To::LogLevel) => {
                if matches!(value.as_deref(), Some("silent" | "error" | "warn")) {
                    out.set(To::Quiet, None);
                }
            }
            Map(to) => out.set(to, value),
            Ignore => {}
            Refuse => {
                return Err(
                    Error::usage(format!("`{} {flag}` is refused: {}", sp.name(), o.why))
                        .with_hint(usage()),
                );
            }
            Call => call = Some((flag, value)),
            Help => return Ok(Parsed::Help),
        }
        i += 1;
    }
    if let Some((flag, value)) = call {
        return Err(call_refused(
            sp,
            flag,
            value.as_deref(),
            args.get(i),
            out.packages(),
        ));
    }
    let Some(target) = args.get(i) else {
        return Err(Error::usage("no package given").with_hint(usage()));
    };
    let target = utf8(target)
        .map_err(|_| Error::usage("the package spec is not valid UTF-8"))?
        .to_owned();
    let mut rest = args[i + 1..].to_vec();
    if let Some(p) = rest
        .iter()
        .position(|a| a == "--")
        .filter(|_| sp.npm_dashdash && !dashdash)
    {
        rest.remove(p);
    }
    out.finish(target, rest);
    Ok(Parsed::Args(out))
}

fn utf8(arg: &OsString) -> Result<&str> {
    arg.to_str().ok_or_else(|| {
        Error::usage(format!(
            "argument `{}` is not valid UTF-8",
            arg.to_string_lossy()
        ))
    })
}

fn help_hint(sp: &Spelling, verb: Verb) -> String {
    let cmd = format!("safex {}{}", verb.prefix(), sp.name());
    let args = if verb == Verb::Run { " [ARGS...]" } else { "" };
    format!(
        "usage: {cmd} [OPTIONS] {}{args}; see `{cmd} --help`",
        sp.ecosystem.spec_form()
    )
}

/// The options a verb accepts (`--env` only where a program is launched).
fn accepted(sp: &Spelling, verb: Verb) -> String {
    let names: Vec<String> = sp
        .all_options()
        .into_iter()
        .filter(|(o, _)| matches!(o.does, Map(_) | Ignore))
        .filter(|(o, _)| verb == Verb::Run || !matches!(o.does, Map(To::Env)))
        .flat_map(|(_, n)| n)
        .map(|n| format!("`{n}`"))
        .collect();
    format!("safex accepts {} before the package", names.join(", "))
}

/// `-c 'cowsay hi'` is refused; the hint is the `-p` form that does the same.
fn call_refused(
    sp: &Spelling,
    flag: &str,
    value: Option<&str>,
    positional: Option<&OsString>,
    packages: &[String],
) -> Error {
    // pnpm's `-c` is a switch: the shell string is the positional.
    let shell = value
        .map(str::to_owned)
        .or_else(|| positional.map(|p| p.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut words: Vec<String> = vec!["safex".into(), "npx".into()];
    if packages.is_empty() {
        words.extend(["-p".into(), "<name>@<x.y.z>".into()]);
    }
    for p in packages {
        words.extend(["-p".into(), quote(p)]);
    }
    let split = shell_words(&shell);
    if split.is_empty() {
        words.push("<command>".into());
    }
    words.extend(split.iter().map(|w| quote(w)));
    Error::usage(format!(
        "`{} {flag}` runs a shell string, which safex does not do",
        sp.name()
    ))
    .with_hint(format!(
        "name the package and the command instead: `{}`",
        words.join(" ")
    ))
}

/// Split a shell string on whitespace, honouring '...' and "..." (for the
/// `-c` hint only; nothing is run from it).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A word as a POSIX shell reads it back.
fn quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@/._-=:+,".contains(c));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{NpxArgs, UvxArgs};
    use crate::error::Kind;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn spelled(words: &str) -> &'static Spelling {
        SPELLINGS
            .iter()
            .find(|s| s.name() == words)
            .unwrap_or_else(|| panic!("no spelling `{words}`"))
    }

    fn npm(words: &str, args: &[&str]) -> Result<NpxArgs> {
        crate::cli::parse_as(spelled(words), &os(args))
    }

    fn pypi(words: &str, args: &[&str]) -> Result<UvxArgs> {
        crate::cli::parse_as(spelled(words), &os(args))
    }

    #[test]
    fn every_spelling_is_found_from_its_words() {
        for sp in SPELLINGS {
            let mut typed: Vec<&str> = sp.words[1..].to_vec();
            typed.push("a@1.0.0");
            let (found, rest) = find(sp.words[0], &typed, str::to_owned).unwrap();
            assert_eq!(found.name(), sp.name());
            assert_eq!(rest, ["a@1.0.0"]);
        }
        let norm = |s: &str| s.to_ascii_lowercase().trim_end_matches(".cmd").to_owned();
        assert_eq!(
            find("BUNX.cmd", &["a"], norm).map(|(s, _)| s.name()),
            Some("bunx".into())
        );
        for (first, args) in [
            ("npm", &["install", "a"][..]),
            ("npm", &[]),
            ("uv", &["tool", "install"]),
            ("bun", &["run"]),
            ("yarn", &["dlx"]),
        ] {
            assert!(
                find(first, args, str::to_owned).is_none(),
                "{first} {args:?}"
            );
        }
    }

    /// spelling, arguments, `-p` packages, target, program arguments.
    type NpmCase<'a> = (
        &'a str,
        &'a [&'a str],
        &'a [&'a str],
        &'a str,
        &'a [&'a str],
    );

    #[test]
    fn npm_spellings_reach_the_same_arguments() {
        let cases: &[NpmCase] = &[
            ("npx", &["-y", "a@1.0.0", "x"], &[], "a@1.0.0", &["x"]),
            (
                "npm exec",
                &["-y", "--", "a@1.0.0", "x"],
                &[],
                "a@1.0.0",
                &["x"],
            ),
            // npm takes the first `--`, wherever it is; the program gets the rest.
            (
                "npm exec",
                &["a@1.0.0", "--", "--port", "1"],
                &[],
                "a@1.0.0",
                &["--port", "1"],
            ),
            (
                "npm x",
                &["--", "a@1.0.0", "--", "x"],
                &[],
                "a@1.0.0",
                &["--", "x"],
            ),
            (
                "npm exec",
                &["--package=a@1.0.0", "--", "cmd", "x"],
                &["a@1.0.0"],
                "cmd",
                &["x"],
            ),
            ("npx", &["a@1.0.0", "--", "x"], &[], "a@1.0.0", &["--", "x"]),
            (
                "pnpm dlx",
                &["--package", "a@1.0.0", "cmd", "-s"],
                &["a@1.0.0"],
                "cmd",
                &["-s"],
            ),
            ("pnpx", &["a@1.0.0", "--help"], &[], "a@1.0.0", &["--help"]),
            (
                "bunx",
                &["-p", "a@1.0.0", "cmd", "--bun"],
                &["a@1.0.0"],
                "cmd",
                &["--bun"],
            ),
            (
                "bun x",
                &["--package=a@1.0.0", "cmd"],
                &["a@1.0.0"],
                "cmd",
                &[],
            ),
        ];
        for (words, args, pkgs, target, rest) in cases {
            let got = npm(words, args).unwrap_or_else(|e| panic!("{words} {args:?}: {e}"));
            assert_eq!(got.packages, *pkgs, "{words} {args:?}");
            assert_eq!(got.target, *target, "{words} {args:?}");
            assert_eq!(got.program_args, os(rest), "{words} {args:?}");
        }
    }

    #[test]
    fn uv_tool_run_is_uvx() {
        let args = [
            "--from", "a==1", "--with", "b==2", "-p", "3.12", "cmd", "-q",
        ];
        let uvx = pypi("uvx", &args).unwrap();
        let uv = pypi("uv tool run", &args).unwrap();
        assert_eq!(uvx, uv);
        assert_eq!(uv.from.as_deref(), Some("a==1"));
        assert_eq!(uv.python.as_deref(), Some("3.12"));
        assert!(!uv.quiet, "`-q` after the command is the program's");
        assert!(pypi("uv tool run", &["-q", "a==1"]).unwrap().quiet);
    }

    /// Every option of every spelling, given before the package: a mapped
    /// one lands somewhere, an ignored one is accepted with no effect, a
    /// refused one is refused naming itself and why.
    #[test]
    fn every_option_does_what_its_row_says() {
        for sp in SPELLINGS {
            for (o, names) in sp.all_options() {
                for name in names {
                    let mut args = vec![name];
                    if let Some(v) = o.value {
                        args.push(if v == "LEVEL" { "silent" } else { "v@1.0.0" });
                    }
                    args.extend(["a@1.0.0", "b"]);
                    let ctx = format!("{} {args:?}", sp.name());
                    let got = match sp.ecosystem {
                        Ecosystem::Npm => spelling_parse::<NpxArgs>(sp, &args)
                            .map(|p| p.map(|a| a == plain_npm(&a))),
                        Ecosystem::Pypi => spelling_parse::<UvxArgs>(sp, &args)
                            .map(|p| p.map(|a| a == plain_pypi(&a))),
                    };
                    match (o.does, got) {
                        (Map(_), Ok(Parsed::Args(unchanged))) => {
                            assert!(!unchanged, "{ctx}: mapped to nothing")
                        }
                        (Ignore, Ok(Parsed::Args(unchanged))) => {
                            assert!(unchanged, "{ctx}: not a no-op")
                        }
                        (Help, Ok(Parsed::Help)) => {}
                        (Refuse | Call, Err(e)) => {
                            assert_eq!(e.kind, Kind::Usage, "{ctx}");
                            assert!(
                                e.message.contains(&format!("`{} {name}`", sp.name())),
                                "{ctx}: {}",
                                e.message
                            );
                        }
                        (does, got) => panic!("{ctx}: {does:?} gave {got:?}"),
                    }
                }
            }
        }
    }

    fn spelling_parse<T: ToolArgs>(sp: &Spelling, args: &[&str]) -> Result<Parsed<T>> {
        parse(sp, Verb::Run, &os(args))
    }

    /// What the arguments parse to without their first option.
    fn plain_npm(a: &NpxArgs) -> NpxArgs {
        NpxArgs {
            target: a.target.clone(),
            program_args: a.program_args.clone(),
            ..Default::default()
        }
    }

    fn plain_pypi(a: &UvxArgs) -> UvxArgs {
        UvxArgs {
            target: a.target.clone(),
            program_args: a.program_args.clone(),
            ..Default::default()
        }
    }

    #[test]
    fn npx_options_from_real_configs_are_accepted() {
        let a = npm(
            "npx",
            &[
                "--no-install",
                "--loglevel=error",
                "--ignore-existing",
                "--cache",
                "/tmp/c",
                "--no",
                "a@1.0.0",
            ],
        )
        .unwrap();
        assert!(a.quiet);
        assert_eq!(a.target, "a@1.0.0");
        assert!(
            !npm("npx", &["--loglevel", "info", "a@1.0.0"])
                .unwrap()
                .quiet
        );
        for q in ["--quiet", "--silent", "-q", "-s", "--loglevel=warn"] {
            assert!(npm("npx", &[q, "a@1.0.0"]).unwrap().quiet, "{q}");
        }
        let e = npm("npx", &["--cache"]).unwrap_err();
        assert!(
            e.message.contains("`--cache` needs a value"),
            "{}",
            e.message
        );
    }

    #[test]
    fn refusals_say_why() {
        for (words, args, says) in [
            ("npm exec", &["-p", "a@1.0.0", "cmd"][..], "--parseable"),
            ("bunx", &["--bun", "a@1.0.0"], "Node.js"),
            (
                "pnpm dlx",
                &["--allow-build=esbuild", "a@1.0.0"],
                "install scripts",
            ),
            ("npx", &["-w", "pkg-a", "a@1.0.0"], "workspace"),
            (
                "pnpm dlx",
                &["-p", "a@1.0.0"],
                "unsupported pnpm dlx option `-p`",
            ),
            (
                "npx",
                &["--bogus", "a@1.0.0"],
                "unsupported npx option `--bogus`",
            ),
            ("npx", &[], "no package given"),
        ] {
            let e = npm(words, args).unwrap_err();
            assert_eq!(e.kind, Kind::Usage);
            assert!(e.message.contains(says), "{words} {args:?}: {}", e.message);
        }
        let e = parse::<NpxArgs>(spelled("npx"), Verb::Lock, &[]).unwrap_err();
        let hint = e.hint.unwrap_or_default();
        assert!(
            hint.contains("usage: safex lock npx [OPTIONS] <name>@<x.y.z>;"),
            "{hint}"
        );
        let e = npm("npx", &["--bogus", "a@1.0.0"]).unwrap_err();
        let hint = e.hint.unwrap_or_default();
        assert!(
            hint.contains("`--no-install`") && hint.contains("safex npx --help"),
            "{hint}"
        );
    }

    #[test]
    fn a_shell_string_is_refused_with_the_package_form() {
        for (words, args, hint) in [
            (
                "npx",
                &["-p", "cowsay@1.6.0", "-c", "cowsay hi"][..],
                "`safex npx -p cowsay@1.6.0 cowsay hi`",
            ),
            (
                "npx",
                &["-c", "cowsay hi", "-p", "cowsay@1.6.0"],
                "`safex npx -p cowsay@1.6.0 cowsay hi`",
            ),
            (
                "npx",
                &["--call=cowsay 'hi there'"],
                "`safex npx -p <name>@<x.y.z> cowsay 'hi there'`",
            ),
            (
                "npm exec",
                &["--package=a@1.0.0", "-c", "a \"x y\" z"],
                "`safex npx -p a@1.0.0 a 'x y' z`",
            ),
            (
                "pnpm dlx",
                &["--package", "a@1.0.0", "-c", "a b"],
                "`safex npx -p a@1.0.0 a b`",
            ),
        ] {
            let e = npm(words, args).unwrap_err();
            assert!(e.message.contains("shell string"), "{}", e.message);
            let got = e.hint.unwrap_or_default();
            assert!(got.contains(hint), "{words} {args:?}: {got}");
        }
    }

    #[test]
    fn help_is_asked_for_before_the_package_only() {
        for sp in SPELLINGS {
            for h in ["-h", "--help"] {
                let got = match sp.ecosystem {
                    Ecosystem::Npm => {
                        parse::<NpxArgs>(sp, Verb::Run, &os(&[h])).map(|p| p == Parsed::Help)
                    }
                    Ecosystem::Pypi => {
                        parse::<UvxArgs>(sp, Verb::Run, &os(&[h])).map(|p| p == Parsed::Help)
                    }
                };
                assert!(got.unwrap(), "{} {h}", sp.name());
            }
        }
        assert_eq!(
            npm("npx", &["a@1.0.0", "-h"]).unwrap().program_args,
            os(&["-h"])
        );
    }

    #[test]
    fn help_lists_every_option_and_describes_the_verb() {
        for sp in SPELLINGS {
            for verb in [Verb::Run, Verb::Lock, Verb::Check] {
                let text = help(sp, verb);
                let ctx = format!("{verb:?} {}", sp.name());
                assert!(
                    text.contains(&format!("Usage: safex {}{} ", verb.prefix(), sp.name())),
                    "{ctx}\n{text}"
                );
                for (o, names) in sp.all_options() {
                    // `--env` only where a program is launched.
                    let shown = verb == Verb::Run || !matches!(o.does, Map(To::Env));
                    for n in names {
                        assert_eq!(
                            text.contains(&format!("{n} ")) || text.contains(&format!("{n},")),
                            shown,
                            "{ctx}: `{n}`\n{text}"
                        );
                    }
                }
                let says = match verb {
                    Verb::Run => "Run a pinned",
                    Verb::Lock => "record its tree in the lockfile",
                    Verb::Check => "The policy's decision",
                };
                assert!(text.contains(says), "{ctx}\n{text}");
                assert_eq!(text.contains("[ARGS...]"), verb == Verb::Run, "{ctx}");
            }
        }
    }

    #[test]
    fn shell_words_split_like_a_shell() {
        for (s, want) in [
            ("a b  c", &["a", "b", "c"][..]),
            ("a 'b c' \"d e\"", &["a", "b c", "d e"]),
            ("a ''", &["a", ""]),
            ("  ", &[]),
        ] {
            assert_eq!(shell_words(s), want, "{s:?}");
        }
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("@a/b@1.0.0"), "@a/b@1.0.0");
    }
}
