//! Every launcher spelling safex accepts — `npx`, `npm exec`, `pnpm dlx`,
//! `bunx`, `uvx`, `uv tool run`, ... — in one table, each with its options
//! and what safex does with each (mapped, accepted with no effect, refused
//! and why). One parser reads them all (`parse.rs`); `--help` (`help.rs`),
//! the MCP config scanner and `safex mcp pin` read the same table.
//!
//! Sources for each spelling's options: npm's `npm-exec` page (npx
//! shorthands, `-p` is `--parseable` under `npm exec`), pnpm's `dlx` page,
//! bun's `bunx` page, uv's `tool run` reference.

mod help;
pub mod parse;

use crate::ecosystem::Ecosystem;

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
    /// safex's sandbox grants and switch.
    AllowRead,
    AllowWrite,
    /// `--allow-net` (any) or `--allow-net=HOST[:PORT]` (the value only
    /// after `=`, as Deno spells it).
    AllowNet,
    NoSandbox,
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
    opt(
        &["--allow-read"],
        Some("PATH"),
        Map(To::AllowRead),
        "safex sandbox: the program may read PATH (repeatable)",
    ),
    opt(
        &["--allow-write"],
        Some("PATH"),
        Map(To::AllowWrite),
        "safex sandbox: the program may read and write PATH (repeatable)",
    ),
    opt(
        &["--allow-net"],
        Some("HOST"),
        Map(To::AllowNet),
        "safex sandbox: `--allow-net=HOST[:PORT]` the program may reach (and listen on) it; `--allow-net` alone: any network",
    ),
    opt(
        &["--no-sandbox"],
        None,
        Map(To::NoSandbox),
        "safex: run the program without the sandbox (where the policy allows)",
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
