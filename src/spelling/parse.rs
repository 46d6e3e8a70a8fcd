//! Reading a command line by a spelling's options. Options come before the
//! package spec; everything after it (after the command, with
//! `--package`/`--from`) belongs to the program verbatim, its `--help`
//! included. A shell string (`-c`) is refused with the `-p` form that does
//! the same.

use std::ffi::OsString;

use super::Does::{Call, Help, Ignore, Map, Refuse};
use super::help::{accepted, help_hint};
use super::{Spelling, To, Verb};
use crate::error::{Error, Result};

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

impl Spelling {
    /// Parse a spelling's arguments: options first; the first non-option (or
    /// whatever follows `--`) is the spec or command; the rest is the program's.
    /// `verb` only shapes the usage line of an error.
    pub fn parse<T: ToolArgs>(&self, verb: Verb, args: &[OsString]) -> Result<Parsed<T>> {
        let usage = || help_hint(self, verb);
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
            let Some(o) = self.option(flag) else {
                return Err(
                    Error::usage(format!("unsupported {} option `{flag}`", self.name()))
                        .with_hint(format!("{}\n{}", accepted(self, verb), usage())),
                );
            };
            let value = match (o.value, inline) {
                (None, _) => None,
                // Deno's spelling: a value only after `=`.
                (Some(_), None) if o.does == Map(To::AllowNet) => None,
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
                    return Err(Error::usage(format!(
                        "`{} {flag}` is refused: {}",
                        self.name(),
                        o.why
                    ))
                    .with_hint(usage()));
                }
                Call => call = Some((flag, value)),
                Help => return Ok(Parsed::Help),
            }
            i += 1;
        }
        if let Some((flag, value)) = call {
            return Err(call_refused(
                self,
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
            .filter(|_| self.npm_dashdash && !dashdash)
        {
            rest.remove(p);
        }
        out.finish(target, rest);
        Ok(Parsed::Args(out))
    }
}

fn utf8(arg: &OsString) -> Result<&str> {
    arg.to_str().ok_or_else(|| {
        Error::usage(format!(
            "argument `{}` is not valid UTF-8",
            arg.to_string_lossy()
        ))
    })
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
    use crate::ecosystem::Ecosystem;
    use crate::error::Kind;
    use crate::spelling::SPELLINGS;

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
        sp.parse(Verb::Run, &os(args))
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
        let e = spelled("npx")
            .parse::<NpxArgs>(Verb::Lock, &[])
            .unwrap_err();
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
                    Ecosystem::Npm => sp
                        .parse::<NpxArgs>(Verb::Run, &os(&[h]))
                        .map(|p| p == Parsed::Help),
                    Ecosystem::Pypi => sp
                        .parse::<UvxArgs>(Verb::Run, &os(&[h]))
                        .map(|p| p == Parsed::Help),
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
