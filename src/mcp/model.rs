//! What a config file says about one server, independent of its format: the
//! values (for the scan) and, when the layout is understood, where those
//! values sit in the file's bytes (for the rewrite).
//!
//! Rewrites are splices into the original text, never a re-serialisation:
//! comments, key order, indentation and every other entry stay as they were.

use std::ops::Range;

/// How a string is written in the file, so a replacement is written alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Double,
    Single,
    Plain,
}

/// A string value and where its source text (quotes included) sits.
#[derive(Debug, Clone, PartialEq)]
pub struct Str {
    pub value: String,
    pub span: Range<usize>,
    pub quote: Quote,
}

/// How the `args` list is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[a, b]` (JSON, TOML, YAML flow), on one line or several.
    Flow,
    /// A YAML block sequence: one `- item` per line.
    Block,
}

/// Positions needed to rewrite `command` and `args`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spans {
    pub command: Str,
    pub args: Vec<Str>,
    pub layout: Layout,
    /// Where a variable can be added to the entry's `env`; `None` when this
    /// format or layout gets no automatic addition (the user is told what
    /// to add by hand).
    pub env: Option<EnvSlot>,
    /// Where each `env` value sits (`mcp pin --move-secrets` replaces
    /// literal secrets with references); empty where this format's values
    /// are not located.
    pub env_values: Vec<(String, Str)>,
}

/// An addition to `env`: `range` (empty, or an empty `{}`) is replaced by
/// `before`, the new member (`NAME`, `sep`, `"value"`), then `after`. The
/// value is written in JSON's double quotes, which TOML and YAML read alike;
/// the name (`[A-Z0-9_]`, safex's own variables) is quoted in JSON only.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSlot {
    pub range: Range<usize>,
    pub before: String,
    /// `": "` (JSON), `: ` (YAML) or ` = ` (TOML), with the name's closing
    /// quote in JSON.
    pub sep: &'static str,
    pub after: String,
}

impl EnvSlot {
    /// The edit that adds `name = value`.
    pub fn edit(&self, name: &str, value: &str) -> Edit {
        let value = serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""));
        Edit {
            range: self.range.clone(),
            text: format!("{}{name}{}{value}{}", self.before, self.sep, self.after),
        }
    }

    /// A new block of lines at `at` (the start of a line, or the end of a
    /// file that may lack its last newline).
    pub fn lines_at(
        text: &str,
        at: usize,
        before: String,
        sep: &'static str,
        after: &str,
    ) -> EnvSlot {
        let nl = if at > 0 && !text[..at].ends_with('\n') {
            "\n"
        } else {
            ""
        };
        EnvSlot {
            range: at..at,
            before: format!("{nl}{before}"),
            sep,
            after: after.to_owned(),
        }
    }
}

/// One server entry as the file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    /// Claude Code: `user`, `local <project>`, `project`; otherwise empty.
    pub scope: String,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub url: Option<String>,
    /// `None` when the value is there but its layout is not one this module
    /// rewrites (then the entry is reported and left alone).
    pub spans: Option<Spans>,
}

impl Server {
    pub fn new(name: &str, scope: &str) -> Server {
        Server {
            name: name.to_owned(),
            scope: scope.to_owned(),
            command: None,
            args: Vec::new(),
            env: Vec::new(),
            headers: Vec::new(),
            url: None,
            spans: None,
        }
    }

    /// The argv, for hashing and comparison.
    pub fn argv(&self) -> Vec<String> {
        let mut v: Vec<String> = self.command.iter().cloned().collect();
        v.extend(self.args.iter().cloned());
        v
    }

    /// What identifies the launch: command, args and URL (not `env`, whose
    /// values are secrets the baseline must not depend on).
    pub fn command_hash(&self) -> String {
        let v = serde_json::json!({ "argv": self.argv(), "url": self.url });
        crate::integrity::sha256_hex(v.to_string().as_bytes())
    }

    /// Drop the spans: what a re-parse must reproduce after a rewrite.
    pub fn values(&self) -> Server {
        Server {
            spans: None,
            ..self.clone()
        }
    }
}

/// A byte-range replacement in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// Apply non-overlapping edits; an insertion at a position comes before a
/// replacement that starts there.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut pos = 0;
    for e in sorted {
        debug_assert!(e.range.start >= pos, "overlapping edits");
        out.push_str(&text[pos..e.range.start.max(pos)]);
        out.push_str(&e.text);
        pos = e.range.end.max(pos);
    }
    out.push_str(&text[pos..]);
    out
}

/// The start of the line that holds byte `at`.
pub fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The spaces and tabs that start the line holding byte `at`.
pub fn indent_at(text: &str, at: usize) -> &str {
    let line = &text[line_start(text, at)..at];
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// The start of the line after the one that holds byte `at`.
pub fn next_line(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}
