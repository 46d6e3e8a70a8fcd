//! JSON with comments (VS Code, Zed) and plain JSON (everyone else): a small
//! parser that keeps the byte span of every value, so a rewrite can splice
//! new text into the original and leave comments, trailing commas, key order
//! and indentation exactly as they were.
//!
//! How much it tolerates is the client's [`Dialect`]: a file its client
//! reads with `JSON.parse` must not pass here just because VS Code would
//! take it, or `safex mcp pin` would rewrite a file the client cannot read.

use std::ops::Range;

use crate::mcp::model::{self, EnvSlot, Layout, Quote, Server, Spans, Str};

/// A JSON value with its span in the source.
#[derive(Debug, Clone)]
pub enum Node {
    /// Members in file order, and the span from `{` to `}`.
    Object(Vec<(String, Node)>, Range<usize>),
    Array(Vec<Node>, Range<usize>),
    String(Str),
    /// Numbers, `true`, `false`, `null`: their source text.
    Scalar(String, Range<usize>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object(m, _) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// Where the value's source text sits.
    pub fn span(&self) -> Range<usize> {
        match self {
            Node::Object(_, r) | Node::Array(_, r) | Node::Scalar(_, r) => r.clone(),
            Node::String(s) => s.span.clone(),
        }
    }
    pub fn as_str(&self) -> Option<&Str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }
    /// The value as text, whatever its type (`args: [8080]` is `"8080"`).
    fn text(&self) -> Option<Str> {
        match self {
            Node::String(s) => Some(s.clone()),
            Node::Scalar(t, r) => Some(Str {
                value: t.clone(),
                span: r.clone(),
                quote: Quote::Plain,
            }),
            _ => None,
        }
    }
}

/// What a client's JSON reader accepts beyond RFC 8259.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `JSON.parse`: no comments, no trailing commas, `true`/`false`/`null`
    /// and JSON numbers only, no raw control characters in strings.
    Strict,
    /// Comments stripped, then `JSON.parse` (`strip-json-comments`): no
    /// trailing commas.
    Comments,
    /// JSONC (VS Code's `jsonc-parser`, Zed): `//` and `/* */` comments and
    /// trailing commas.
    Jsonc,
}

/// Parse JSON with `//` and `/* */` comments and trailing commas.
pub fn parse(text: &str) -> Result<Node, String> {
    parse_as(text, Dialect::Jsonc)
}

/// Parse `text` as `dialect` reads it; an error names what is not allowed
/// and where (`trailing comma at line 3 col 14`).
pub fn parse_as(text: &str, dialect: Dialect) -> Result<Node, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
        dialect,
    };
    if text.starts_with('\u{feff}') {
        p.pos = 3;
    }
    p.ws()?;
    if p.pos >= p.s.len() {
        return Err("the file is empty".into());
    }
    let v = p.value()?;
    p.ws()?;
    if p.pos != p.s.len() {
        return Err(p.err("unexpected text after the top-level value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
    dialect: Dialect,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        self.err_at(what, self.pos)
    }

    /// `what at line L col C` (both from 1; a column counts characters).
    fn err_at(&self, what: &str, at: usize) -> String {
        let before = &self.text[..at.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before[crate::mcp::model::line_start(before, before.len())..]
            .chars()
            .count()
            + 1;
        format!("{what} at line {line} col {col}")
    }

    /// After a `,`: a closing `close` right away is a trailing comma.
    fn comma(&mut self, close: u8) -> Result<(), String> {
        let at = self.pos;
        self.pos += 1;
        if self.dialect != Dialect::Jsonc {
            self.ws()?;
            if self.s.get(self.pos) == Some(&close) {
                return Err(self.err_at("trailing comma", at));
            }
        }
        Ok(())
    }

    fn ws(&mut self) -> Result<(), String> {
        while self.pos < self.s.len() {
            match self.s[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'/' if self.dialect == Dialect::Strict
                    && matches!(self.s.get(self.pos + 1), Some(b'/' | b'*')) =>
                {
                    return Err(self.err("comment"));
                }
                b'/' if self.s.get(self.pos + 1) == Some(&b'/') => {
                    while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'/' if self.s.get(self.pos + 1) == Some(&b'*') => {
                    match self.text[self.pos + 2..].find("*/") {
                        Some(i) => self.pos += 2 + i + 2,
                        None => return Err(self.err("unclosed `/*` comment")),
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > 200 {
            return Err(self.err("nesting too deep"));
        }
        let v = match self.s.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Node::String),
            Some(_) => self.scalar(),
            None => Err(self.err("unexpected end of file")),
        };
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Node, String> {
        let start = self.pos;
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.ws()?;
            match self.s.get(self.pos) {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Object(members, start..self.pos));
                }
                Some(b'"') => {}
                _ => return Err(self.err("expected a key or `}`")),
            }
            let key = self.string()?.value;
            self.ws()?;
            if self.s.get(self.pos) != Some(&b':') {
                return Err(self.err("expected `:`"));
            }
            self.pos += 1;
            self.ws()?;
            let v = self.value()?;
            members.push((key, v));
            self.ws()?;
            match self.s.get(self.pos) {
                Some(b',') => self.comma(b'}')?,
                Some(b'}') => {}
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Result<Node, String> {
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.ws()?;
            if self.s.get(self.pos) == Some(&b']') {
                self.pos += 1;
                return Ok(Node::Array(items, start..self.pos));
            }
            items.push(self.value()?);
            self.ws()?;
            match self.s.get(self.pos) {
                Some(b',') => self.comma(b']')?,
                Some(b']') => {}
                _ => return Err(self.err("expected `,` or `]`")),
            }
        }
    }

    fn string(&mut self) -> Result<Str, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.err("unclosed string"));
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(Str {
                        value: out,
                        span: start..self.pos,
                        quote: Quote::Double,
                    });
                }
                b'\\' => {
                    let e = *self
                        .s
                        .get(self.pos + 1)
                        .ok_or_else(|| self.err("unclosed string"))?;
                    self.pos += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let ch = if (0xD800..0xDC00).contains(&hi)
                                && self.text[self.pos..].starts_with("\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(ch).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("invalid escape in a string")),
                    }
                }
                c if c < 0x20 && self.dialect != Dialect::Jsonc => {
                    return Err(self.err("control character in a string"));
                }
                _ => {
                    // Copy one UTF-8 character.
                    let len = utf8_len(c);
                    let end = (self.pos + len).min(self.s.len());
                    out.push_str(&self.text[self.pos..end]);
                    self.pos = end;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("short `\\u` escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("invalid `\\u` escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn scalar(&mut self) -> Result<Node, String> {
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || b"+-.".contains(&self.s[self.pos]))
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("unexpected character"));
        }
        let t = &self.text[start..self.pos];
        if self.dialect != Dialect::Jsonc
            && !matches!(t, "true" | "false" | "null")
            && serde_json::from_str::<serde_json::Number>(t).is_err()
        {
            return Err(self.err_at(&format!("`{t}` is not a JSON value"), start));
        }
        Ok(Node::Scalar(
            self.text[start..self.pos].to_owned(),
            start..self.pos,
        ))
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Every server entry in a parsed file: `mcpServers` (most clients),
/// `servers` (VS Code), `context_servers` (Zed), `mcp.servers` (VS Code's
/// older settings.json), and Claude Code's per-project `projects.<dir>.mcpServers`.
pub fn servers(text: &str, root: &Node, top_scope: &str) -> Vec<Server> {
    let mut out = Vec::new();
    for key in ["mcpServers", "servers", "context_servers"] {
        if let Some(Node::Object(m, _)) = root.get(key) {
            for (name, v) in m {
                out.push(server(text, name, top_scope, v));
            }
        }
    }
    if let Some(Node::Object(m, _)) = root.get("mcp").and_then(|m| m.get("servers")) {
        for (name, v) in m {
            out.push(server(text, name, top_scope, v));
        }
    }
    if let Some(Node::Object(projects, _)) = root.get("projects") {
        for (dir, p) in projects {
            if let Some(Node::Object(m, _)) = p.get("mcpServers") {
                for (name, v) in m {
                    out.push(server(text, name, &format!("local {dir}"), v));
                }
            }
        }
    }
    out
}

fn server(text: &str, name: &str, scope: &str, v: &Node) -> Server {
    let mut s = Server::new(name, scope);
    // Zed's older shape nests the launch: `"command": {"path", "args", "env"}`.
    let launch = match v.get("command") {
        Some(c @ Node::Object(..)) => c,
        _ => v,
    };
    let command = match launch.get("command").or_else(|| launch.get("path")) {
        Some(Node::String(c)) => Some(c.clone()),
        _ => None,
    };
    let args: Option<Vec<Str>> = match launch.get("args") {
        Some(Node::Array(items, _)) => items.iter().map(Node::text).collect(),
        None => Some(Vec::new()),
        _ => None,
    };
    s.command = command.as_ref().map(|c| c.value.clone());
    if let Some(args) = &args {
        s.args = args.iter().map(|a| a.value.clone()).collect();
    }
    s.env = pairs(launch.get("env").or_else(|| v.get("env")));
    s.headers = pairs(v.get("headers"));
    s.url = ["url", "serverUrl", "httpUrl"]
        .iter()
        .find_map(|k| v.get(k).and_then(Node::as_str))
        .map(|u| u.value.clone());
    if let (Some(command), Some(args)) = (command, args)
        && launch.get("args").is_some()
    {
        s.spans = Some(Spans {
            command,
            args,
            layout: Layout::Flow,
            env: env_slot(text, launch, v),
            env_values: match launch.get("env").or_else(|| v.get("env")) {
                Some(Node::Object(m, _)) => m
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.clone())))
                    .collect(),
                _ => Vec::new(),
            },
        });
    }
    s
}

/// Where a new `env` member goes: after the last member of the entry's
/// `env` object, or (without one) a new `"env": { ... }` after the last
/// member of the launch object; on a line of its own, indented alike, when
/// the members are on lines of their own.
fn env_slot(text: &str, launch: &Node, outer: &Node) -> Option<EnvSlot> {
    let after_last = |members: &[(String, Node)], obj: &Range<usize>| {
        let last = members.last()?.1.span();
        let indent = model::indent_at(text, last.start);
        let before = if text[obj.start..last.start].contains('\n') {
            format!(",\n{indent}")
        } else {
            ", ".to_owned()
        };
        Some((last.end, before))
    };
    match launch.get("env").or_else(|| outer.get("env")) {
        Some(Node::Object(m, r)) if m.is_empty() => Some(EnvSlot {
            range: r.clone(),
            before: "{ \"".into(),
            sep: "\": ",
            after: " }".into(),
        }),
        Some(Node::Object(m, r)) => {
            let (at, before) = after_last(m, r)?;
            Some(EnvSlot {
                range: at..at,
                before: format!("{before}\""),
                sep: "\": ",
                after: String::new(),
            })
        }
        Some(_) => None,
        None => {
            let Node::Object(m, r) = launch else {
                return None;
            };
            let (at, before) = after_last(m, r)?;
            Some(EnvSlot {
                range: at..at,
                before: format!("{before}\"env\": {{ \""),
                sep: "\": ",
                after: " }".into(),
            })
        }
    }
}

fn pairs(n: Option<&Node>) -> Vec<(String, String)> {
    match n {
        Some(Node::Object(m, _)) => m
            .iter()
            .filter_map(|(k, v)| v.text().map(|t| (k.clone(), t.value)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A string as JSON writes it.
pub fn render(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_trailing_commas_and_spans() {
        let text = "// top\n{\n  /* a */ \"servers\": {\n    \"x\": { \"command\": \"npx\", // c\n      \"args\": [\"-y\", \"p\\u00e9\",], },\n  },\n}\n";
        let root = parse(text).unwrap();
        let s = servers(text, &root, "");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].args, vec!["-y", "pé"]);
        let sp = s[0].spans.as_ref().unwrap();
        assert_eq!(&text[sp.command.span.clone()], "\"npx\"");
        assert_eq!(&text[sp.args[1].span.clone()], "\"p\\u00e9\"");
    }

    #[test]
    fn broken_files_are_errors() {
        for bad in ["", "{", "{\"a\" 1}", "[1,,]", "{\"a\": \"x}", "/* x"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dialects() {
        let text = "{\n  \"a\": [1,\n  ],\n}";
        assert!(parse(text).is_ok());
        assert_eq!(
            parse_as(text, Dialect::Strict).unwrap_err(),
            "trailing comma at line 2 col 10"
        );
        let c = "// c\n{\"a\": \"é\", /* x */ \"b\": 1}";
        assert!(parse_as(c, Dialect::Comments).is_ok());
        assert_eq!(
            parse_as(c, Dialect::Strict).unwrap_err(),
            "comment at line 1 col 1"
        );
        assert!(parse_as("{\"a\": 1,}", Dialect::Comments).is_err());
        for bad in ["{\"a\": True}", "[0x10]", "[NaN]", "[\"\t\"]"] {
            assert!(parse(bad).is_ok(), "{bad:?}");
            assert!(parse_as(bad, Dialect::Strict).is_err(), "{bad:?}");
        }
        for good in ["[-1.5e3, 0, true, null]", "\u{feff}{\"a\": \"\\u00e9\"}"] {
            assert!(parse_as(good, Dialect::Strict).is_ok(), "{good:?}");
        }
    }

    /// `--move-secrets` replaces an `env` value where it sits, in both
    /// Zed shapes too, next to an added member.
    #[test]
    fn env_values_are_located() {
        for text in [
            r#"{"mcpServers": {"m": { "command": "npx", "args": ["a"], "env": { "T": "ghp_\u0061bc", "B": 1 } }}}"#,
            r#"{"context_servers": {"z": {"command": {"path": "npx", "args": ["a"], "env": {"T": "ghp_abc"}}}}}"#,
        ] {
            let s = servers(text, &parse(text).unwrap(), "");
            let sp = s[0].spans.as_ref().unwrap();
            assert_eq!(sp.env_values.len(), 1, "{text}");
            let (k, at) = &sp.env_values[0];
            assert_eq!(k, "T");
            let edits = [
                model::Edit {
                    range: at.span.clone(),
                    text: render("safex-secret:m.T"),
                },
                sp.env.clone().unwrap().edit("R", "u"),
            ];
            let out = model::apply(text, &edits);
            let back = servers(&out, &parse(&out).unwrap(), "");
            assert_eq!(
                back[0].env[0],
                ("T".to_owned(), "safex-secret:m.T".to_owned()),
                "{out}"
            );
            assert_eq!(back[0].env.last().unwrap().0, "R", "{out}");
        }
    }

    /// Each `env` shape gets its new member in the file's own layout.
    #[test]
    fn env_slots() {
        let add = |text: &str| {
            let s = servers(text, &parse(text).unwrap(), "");
            let slot = s[0].spans.as_ref().unwrap().env.clone().unwrap();
            let out = model::apply(text, &[slot.edit("R", "u")]);
            let back = servers(&out, &parse(&out).unwrap(), "");
            assert_eq!(
                back[0].env.last().unwrap(),
                &("R".to_owned(), "u".to_owned())
            );
            out
        };
        assert_eq!(
            add("{\"mcpServers\": {\"m\": {\n  \"command\": \"npx\",\n  \"args\": [\"a\"]\n}}}"),
            "{\"mcpServers\": {\"m\": {\n  \"command\": \"npx\",\n  \"args\": [\"a\"],\n  \"env\": { \"R\": \"u\" }\n}}}"
        );
        assert_eq!(
            add(
                r#"{"mcpServers": {"m": { "command": "npx", "args": ["a"], "env": { "A": "b" } }}}"#
            ),
            r#"{"mcpServers": {"m": { "command": "npx", "args": ["a"], "env": { "A": "b", "R": "u" } }}}"#
        );
        assert_eq!(
            add(r#"{"mcpServers": {"m": { "command": "npx", "args": ["a"], "env": {} }}}"#),
            r#"{"mcpServers": {"m": { "command": "npx", "args": ["a"], "env": { "R": "u" } }}}"#
        );
        // Zed's nested shape, JSONC trailing comma kept.
        assert_eq!(
            add(
                "{\"context_servers\": {\"z\": {\"command\": {\"path\": \"npx\", \"args\": [\"a\"], \"env\": {\n    \"K\": \"v\",\n  }}}}}"
            ),
            "{\"context_servers\": {\"z\": {\"command\": {\"path\": \"npx\", \"args\": [\"a\"], \"env\": {\n    \"K\": \"v\",\n    \"R\": \"u\",\n  }}}}}"
        );
    }

    #[test]
    fn zed_nested_command() {
        let text = r#"{"context_servers": {"z": {"command": {"path": "npx", "args": ["a"], "env": {"K": "v"}}}}}"#;
        let s = servers(text, &parse(text).unwrap(), "");
        assert_eq!(s[0].command.as_deref(), Some("npx"));
        assert_eq!(s[0].env, vec![("K".to_owned(), "v".to_owned())]);
        assert!(s[0].spans.is_some());
    }
}
