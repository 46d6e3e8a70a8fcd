//! Codex's `config.toml`: `[mcp_servers.<name>]` tables.
//!
//! Values come from the `toml` crate; positions come from a line-oriented
//! scan of the same text (table headers, then `command = "..."` and
//! `args = [...]`, an array that may span lines and carry comments). The two
//! must agree before an entry counts as rewritable, and a rewrite is a splice
//! into the original text, so comments and layout survive.

use std::collections::BTreeMap;

use crate::mcp::model::{EnvSlot, Layout, Quote, Server, Spans, Str, indent_at};

pub fn servers(text: &str) -> Result<Vec<Server>, String> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_owned())?;
    let (spans, env_spans) = scan(text);
    let mut out = Vec::new();
    let Some(toml::Value::Table(servers)) = doc.get("mcp_servers") else {
        return Ok(out);
    };
    for (name, v) in servers {
        let mut s = Server::new(name, "");
        let str_of = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        s.command = str_of("command");
        s.url = str_of("url");
        if let Some(toml::Value::Array(a)) = v.get("args") {
            s.args = a.iter().map(value_text).collect();
        }
        s.env = table_pairs(v.get("env"));
        s.headers = table_pairs(v.get("http_headers"));
        if let Some(sp) = spans.get(name)
            && let Some(cmd) = &sp.0
            && Some(&cmd.value) == s.command.as_ref()
            && let Some(args) = &sp.1
            && args.iter().map(|a| &a.value).eq(s.args.iter())
        {
            // Without an `env` (inline or `[...env]` table): a new line
            // `env = { "NAME" = "value" }` after `args`, indented alike.
            let env = (v.get("env").is_none())
                .then_some(sp.3)
                .flatten()
                .map(|at| {
                    let indent = indent_at(text, cmd.span.start);
                    EnvSlot::lines_at(text, at, format!("{indent}env = {{ "), " = ", " }\n")
                });
            s.spans = Some(Spans {
                command: cmd.clone(),
                args: args.clone(),
                layout: Layout::Flow,
                env,
                // Only where the scan and the parser agree on the value.
                env_values: env_spans
                    .get(name)
                    .map(|vals| {
                        vals.iter()
                            .filter(|(k, at)| {
                                s.env.iter().any(|(ek, ev)| ek == k && *ev == at.value)
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        out.push(s);
    }
    // The `toml` crate sorts keys; report servers in file order.
    out.sort_by_key(|s| spans.get(&s.name).map_or(usize::MAX, |f| f.2));
    Ok(out)
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table_pairs(v: Option<&toml::Value>) -> Vec<(String, String)> {
    match v {
        Some(toml::Value::Table(t)) => t.iter().map(|(k, v)| (k.clone(), value_text(v))).collect(),
        _ => Vec::new(),
    }
}

/// Per server: `command`, `args`, where its table header is, and the start
/// of the line after `args`.
type Found = BTreeMap<String, (Option<Str>, Option<Vec<Str>>, usize, Option<usize>)>;

/// Per server: where each `env` string value sits (an `env = { ... }` on
/// one line, or a `[mcp_servers.<name>.env]` table).
type EnvSpans = BTreeMap<String, Vec<(String, Str)>>;

/// `K = "v", K2 = 'w' }` from `at`: each string member and where it sits.
fn inline_strings(text: &str, mut at: usize, out: &mut Vec<(String, Str)>) {
    loop {
        at = skip_ws(text, at);
        let rest = &text[at..];
        let Some((k, r)) = key(rest) else { return };
        let r_trim = r.trim_start();
        let Some(after_eq) = r_trim.strip_prefix('=') else {
            return;
        };
        let v_at = skip_ws(text, text.len() - after_eq.len());
        let Some(v) = string_at(text, v_at) else {
            return;
        };
        let next = skip_ws(text, v.span.end);
        out.push((k, v));
        match text[next..].chars().next() {
            Some(',') => at = next + 1,
            _ => return,
        }
    }
}

/// Positions of `command` and `args` under each `[mcp_servers.<name>]`,
/// and of the `env` values.
fn scan(text: &str) -> (Found, EnvSpans) {
    let mut found = Found::new();
    let mut envs = EnvSpans::new();
    let mut env_table: Option<String> = None;
    let mut current: Option<String> = None;
    let mut pos = 0;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..end];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('[') {
            let keys = header(trimmed);
            env_table = keys.as_ref().and_then(|keys| match keys.as_slice() {
                [t, name, e] if t == "mcp_servers" && e == "env" => Some(name.clone()),
                _ => None,
            });
            current = keys.and_then(|keys| match keys.as_slice() {
                [t, name] if t == "mcp_servers" => Some(name.clone()),
                _ => None,
            });
            if let Some(name) = &current {
                found.entry(name.clone()).or_insert((None, None, pos, None));
            }
        } else if let Some(name) = &env_table {
            let mut one = Vec::new();
            inline_strings(text, pos + indent, &mut one);
            envs.entry(name.clone())
                .or_default()
                .extend(one.into_iter().take(1));
        } else if let Some(name) = &current
            && let Some((key, after)) = key_value(trimmed)
        {
            let at = pos + indent + after;
            let entry = found.entry(name.clone()).or_insert((None, None, pos, None));
            match key.as_str() {
                "command" => entry.0 = string_at(text, skip_ws(text, at)),
                "env" => {
                    let open = skip_ws(text, at);
                    if text[open..].starts_with('{') {
                        inline_strings(text, open + 1, envs.entry(name.clone()).or_default());
                    }
                }
                "args" => {
                    if let Some((items, close)) = array_at(text, skip_ws(text, at)) {
                        entry.1 = Some(items);
                        pos = crate::mcp::model::next_line(text, close);
                        entry.3 = Some(pos);
                        continue;
                    }
                }
                _ => {}
            }
        }
        pos = end;
    }
    (found, envs)
}

/// `[a."b.c"]` → `["a", "b.c"]`; `[[...]]` and anything odd → `None`.
fn header(line: &str) -> Option<Vec<String>> {
    let inner = line.strip_prefix('[')?;
    if inner.starts_with('[') {
        return None;
    }
    let mut keys = Vec::new();
    let mut rest = inner.trim_start();
    loop {
        let (k, r) = key(rest)?;
        keys.push(k);
        rest = r.trim_start();
        if let Some(r) = rest.strip_prefix('.') {
            rest = r.trim_start();
        } else if rest.starts_with(']') {
            return Some(keys);
        } else {
            return None;
        }
    }
}

/// One key: bare, `"basic"` or `'literal'`; returns it and the rest.
fn key(s: &str) -> Option<(String, &str)> {
    if s.starts_with('"') || s.starts_with('\'') {
        let st = string_at(s, 0)?;
        return Some((st.value, &s[st.span.end..]));
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| (s[..end].to_owned(), &s[end..]))
}

/// `key = ...` → the key and the offset just after `=`.
fn key_value(line: &str) -> Option<(String, usize)> {
    let (k, rest) = key(line)?;
    let rest_trim = rest.trim_start();
    let after_eq = rest_trim.strip_prefix('=')?;
    Some((k, line.len() - after_eq.len()))
}

fn skip_ws(text: &str, mut at: usize) -> usize {
    let b = text.as_bytes();
    while at < b.len() && (b[at] == b' ' || b[at] == b'\t') {
        at += 1;
    }
    at
}

/// A TOML string at `at`: `"basic"` (escapes decoded) or `'literal'`.
fn string_at(text: &str, at: usize) -> Option<Str> {
    let s = &text[at..];
    if s.starts_with("\"\"\"") || s.starts_with("'''") {
        return None;
    }
    if let Some(body) = s.strip_prefix('\'') {
        let close = body.find(['\'', '\n'])?;
        if body.as_bytes()[close] != b'\'' {
            return None;
        }
        return Some(Str {
            value: body[..close].to_owned(),
            span: at..at + close + 2,
            quote: Quote::Single,
        });
    }
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                return Some(Str {
                    value: out,
                    span: at..at + 1 + i + 1,
                    quote: Quote::Double,
                });
            }
            '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'e' => out.push('\u{1b}'),
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'u' | 'U' => {
                        let n = if e == 'u' { 4 } else { 8 };
                        let hex: String =
                            (0..n).filter_map(|_| chars.next().map(|x| x.1)).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// An array of strings at `at` (`[`), over lines, with comments and a
/// trailing comma; returns the items and the offset of `]`.
fn array_at(text: &str, at: usize) -> Option<(Vec<Str>, usize)> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'[') {
        return None;
    }
    let mut pos = at + 1;
    let mut items = Vec::new();
    loop {
        while pos < b.len() {
            match b[pos] {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => pos += 1,
                b'#' => pos = crate::mcp::model::next_line(text, pos),
                _ => break,
            }
        }
        match b.get(pos)? {
            b']' => return Some((items, pos)),
            b'"' | b'\'' => {
                let s = string_at(text, pos)?;
                pos = s.span.end;
                items.push(s);
            }
            _ => return None,
        }
    }
}

/// A string as TOML writes it, in the quoting the file already uses.
pub fn render(s: &str, quote: Quote) -> String {
    if quote == Quote::Single && !s.contains(['\'', '\n', '\r']) {
        return format!("'{s}'");
    }
    crate::mcp::formats::jsonc::render(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_spans_in_multiline_arrays() {
        let text = "model = \"x\"\n\n[mcp_servers.\"a.b\"]\ncommand = 'npx' # launcher\nargs = [\n  \"-y\", # yes\n  '@x/y',\n]\n\n[mcp_servers.\"a.b\".env]\nK = \"v\"\n";
        let s = servers(text).unwrap();
        assert_eq!(s[0].name, "a.b");
        assert_eq!(s[0].env, vec![("K".to_owned(), "v".to_owned())]);
        let sp = s[0].spans.as_ref().unwrap();
        assert_eq!(&text[sp.command.span.clone()], "'npx'");
        assert_eq!(&text[sp.args[1].span.clone()], "'@x/y'");
        // It has an `env` table: nothing is added to it automatically.
        assert!(sp.env.is_none());
    }

    /// `--move-secrets` finds `env` values inline and in a table.
    #[test]
    fn env_values_are_located() {
        for text in [
            "[mcp_servers.m]\ncommand = \"npx\"\nargs = [\"a\"]\nenv = { \"T\" = \"ghp_abc\", B = 'x' } # c\n",
            "[mcp_servers.m]\ncommand = \"npx\"\nargs = [\"a\"]\n\n[mcp_servers.m.env]\nB = 'x'\nT = \"ghp_abc\" # c\nN = 1\n",
        ] {
            let s = servers(text).unwrap();
            let vals = &s[0].spans.as_ref().unwrap().env_values;
            let t = vals
                .iter()
                .find(|(k, _)| k == "T")
                .unwrap_or_else(|| panic!("{vals:?}"));
            assert_eq!(vals.len(), 2, "{vals:?}");
            let edit = crate::mcp::model::Edit {
                range: t.1.span.clone(),
                text: render("safex-secret:m.T", t.1.quote),
            };
            let out = crate::mcp::model::apply(text, &[edit]);
            let back = servers(&out).unwrap();
            assert!(
                back[0]
                    .env
                    .contains(&("T".to_owned(), "safex-secret:m.T".to_owned())),
                "{out}"
            );
            assert!(out.contains("# c"), "{out}");
        }
    }

    #[test]
    fn env_goes_on_a_line_after_args() {
        for (text, want) in [
            (
                "[mcp_servers.m]\ncommand = \"npx\"\nargs = [\n  \"y\",\n] # c\nx = 1\n",
                "[mcp_servers.m]\ncommand = \"npx\"\nargs = [\n  \"y\",\n] # c\nenv = { R = \"u\" }\nx = 1\n",
            ),
            (
                "[mcp_servers.m]\ncommand = \"npx\"\nargs = [\"y\"]",
                "[mcp_servers.m]\ncommand = \"npx\"\nargs = [\"y\"]\nenv = { R = \"u\" }\n",
            ),
        ] {
            let s = servers(text).unwrap();
            let slot = s[0].spans.as_ref().unwrap().env.clone().unwrap();
            let out = crate::mcp::model::apply(text, &[slot.edit("R", "u")]);
            assert_eq!(out, want);
            assert_eq!(
                servers(&out).unwrap()[0].env,
                [("R".to_owned(), "u".to_owned())]
            );
        }
    }

    #[test]
    fn inline_tables_are_read_but_not_rewritten() {
        let text = "[mcp_servers]\nx = { command = \"npx\", args = [\"y\"] }\n";
        let s = servers(text).unwrap();
        assert_eq!(s[0].args, vec!["y"]);
        assert!(s[0].spans.is_none());
    }
}
