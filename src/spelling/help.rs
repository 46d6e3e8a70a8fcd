//! `--help` for a launcher spelling (what the verb does, the usage, every
//! option under what safex does with it), the usage hint of a parse error,
//! and the lines of safex's own `--help` that name the spellings.

use super::Does::{self, Call, Help, Ignore, Map, Refuse};
use super::{Opt, SPELLINGS, Spelling, To, Verb, starting_with};
use crate::ecosystem::Ecosystem;

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

impl Spelling {
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

    /// `-h`/`--help` for one spelling: what it does, its usage, and every
    /// option with what safex does with it.
    pub fn help(&self, verb: Verb) -> String {
        let head = format!("safex {}{}", verb.prefix(), self.name());
        let spec = self.ecosystem.spec_form();
        let dd = if self.npm_dashdash { "[--] " } else { "" };
        let args = if verb == Verb::Run { " [ARGS...]" } else { "" };
        let pkg = self.package_option();
        let more = match self.ecosystem {
            Ecosystem::Npm => format!("[{pkg} ...]"),
            Ecosystem::Pypi => "[--with <name>==<x.y.z> ...]".to_owned(),
        };
        let mut out = format!(
            "{}\n\nUsage: {head} [OPTIONS] {dd}{spec}{args}\n       {head} [OPTIONS] {pkg} {spec} {more} {dd}<command>{args}\n",
            verb.intro(self)
        );
        if verb == Verb::Run {
            out.push_str(
                "\nOptions go before the package. Everything after the package (after the\ncommand, with ",
            );
            out.push_str(&format!(
                "`{pkg}`) goes to the program verbatim, `--help` included.\n"
            ));
            if self.npm_dashdash {
                out.push_str("As with npm, the first `--` after the package is dropped.\n");
            }
        }
        for title in ["Mapped", "Accepted, no effect", "Refused"] {
            let rows: Vec<(String, &str)> = self
                .all_options()
                .into_iter()
                .filter(|(o, _)| o.does.section() == title)
                .filter(|(o, _)| verb.offers(o))
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
            self.words[0]
        ));
        out
    }
}

impl Verb {
    /// Whether the verb's `--help` lists `o`: `--env` only where a program
    /// is launched.
    fn offers(self, o: &Opt) -> bool {
        self == Verb::Run || !matches!(o.does, Map(To::Env))
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

pub(super) fn help_hint(sp: &Spelling, verb: Verb) -> String {
    let cmd = format!("safex {}{}", verb.prefix(), sp.name());
    let args = if verb == Verb::Run { " [ARGS...]" } else { "" };
    format!(
        "usage: {cmd} [OPTIONS] {}{args}; see `{cmd} --help`",
        sp.ecosystem.spec_form()
    )
}

/// The options a verb accepts.
pub(super) fn accepted(sp: &Spelling, verb: Verb) -> String {
    let names: Vec<String> = sp
        .all_options()
        .into_iter()
        .filter(|(o, _)| matches!(o.does, Map(_) | Ignore))
        .filter(|(o, _)| verb.offers(o))
        .flat_map(|(_, n)| n)
        .map(|n| format!("`{n}`"))
        .collect();
    format!("safex accepts {} before the package", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_option_and_describes_the_verb() {
        for sp in SPELLINGS {
            for verb in [Verb::Run, Verb::Lock, Verb::Check] {
                let text = sp.help(verb);
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
}
