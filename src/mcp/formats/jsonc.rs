//! JSON with comments (VS Code, Zed) and plain JSON (everyone else): a small
//! tolerant parser that keeps the byte span of every value, so a rewrite can
//! splice new text into the original and leave comments, trailing commas,
//! key order and indentation exactly as they were.

use std::ops::Range;

use crate::mcp::model::{Layout, Quote, Server, Spans, Str};

/// A JSON value with its span in the source.
#[derive(Debug, Clone)]
pub enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    String(Str),
    /// Numbers, `true`, `false`, `null`: their source text.
    Scalar(String, Range<usize>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
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

/// Parse JSON with `//` and `/* */` comments and trailing commas.
pub fn parse(text: &str) -> Result<Node, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        depth: 0,
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
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        let line = self.text[..self.pos.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        format!("{what} at line {line}")
    }

    fn ws(&mut self) -> Result<(), String> {
        while self.pos < self.s.len() {
            match self.s[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
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
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.ws()?;
            match self.s.get(self.pos) {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Object(members));
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
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Result<Node, String> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.ws()?;
            if self.s.get(self.pos) == Some(&b']') {
                self.pos += 1;
                return Ok(Node::Array(items));
            }
            items.push(self.value()?);
            self.ws()?;
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
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
pub fn servers(root: &Node, top_scope: &str) -> Vec<Server> {
    let mut out = Vec::new();
    for key in ["mcpServers", "servers", "context_servers"] {
        if let Some(Node::Object(m)) = root.get(key) {
            for (name, v) in m {
                out.push(server(name, top_scope, v));
            }
        }
    }
    if let Some(Node::Object(m)) = root.get("mcp").and_then(|m| m.get("servers")) {
        for (name, v) in m {
            out.push(server(name, top_scope, v));
        }
    }
    if let Some(Node::Object(projects)) = root.get("projects") {
        for (dir, p) in projects {
            if let Some(Node::Object(m)) = p.get("mcpServers") {
                for (name, v) in m {
                    out.push(server(name, &format!("local {dir}"), v));
                }
            }
        }
    }
    out
}

fn server(name: &str, scope: &str, v: &Node) -> Server {
    let mut s = Server::new(name, scope);
    // Zed's older shape nests the launch: `"command": {"path", "args", "env"}`.
    let launch = match v.get("command") {
        Some(c @ Node::Object(_)) => c,
        _ => v,
    };
    let command = match launch.get("command").or_else(|| launch.get("path")) {
        Some(Node::String(c)) => Some(c.clone()),
        _ => None,
    };
    let args: Option<Vec<Str>> = match launch.get("args") {
        Some(Node::Array(items)) => items.iter().map(Node::text).collect(),
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
        });
    }
    s
}

fn pairs(n: Option<&Node>) -> Vec<(String, String)> {
    match n {
        Some(Node::Object(m)) => m
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
        let s = servers(&root, "");
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
    fn zed_nested_command() {
        let text = r#"{"context_servers": {"z": {"command": {"path": "npx", "args": ["a"], "env": {"K": "v"}}}}}"#;
        let s = servers(&parse(text).unwrap(), "");
        assert_eq!(s[0].command.as_deref(), Some("npx"));
        assert_eq!(s[0].env, vec![("K".to_owned(), "v".to_owned())]);
        assert!(s[0].spans.is_some());
    }
}
