//! Continue's `config.yaml` and block files: a top-level `mcpServers:` list
//! whose items carry `name`, `command`, `args` (flow `[...]` or a block
//! sequence) and `env`.
//!
//! No YAML library is used: the scan is line-oriented and understands only
//! this shape (plain, single- and double-quoted scalars; comments; flow and
//! block sequences; block and flow mappings for `env`). What it does not
//! understand (anchors, multi-line scalars, tags) leaves the entry without
//! spans, so it is reported and never rewritten.

use crate::mcp::model::{EnvSlot, Layout, Quote, Server, Spans, Str, next_line};

struct Line<'a> {
    start: usize,
    indent: usize,
    /// Text after the indent, without the newline.
    body: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let end = next_line(text, pos);
        let raw = text[pos..end].trim_end_matches(['\n', '\r']);
        let body = raw.trim_start_matches(' ');
        out.push(Line {
            start: pos,
            indent: raw.len() - body.len(),
            body,
        });
        pos = end;
    }
    out
}

fn blank(l: &Line) -> bool {
    l.body.is_empty() || l.body.starts_with('#')
}

pub fn servers(text: &str) -> Result<Vec<Server>, String> {
    if text.contains('\t') && text.lines().any(|l| l.starts_with('\t')) {
        return Err("tabs used for indentation".into());
    }
    let ls = lines(text);
    let Some(top) = ls
        .iter()
        .position(|l| l.indent == 0 && key_of(l.body).is_some_and(|(k, _)| k == "mcpServers"))
    else {
        return Ok(Vec::new());
    };
    let (_, after) = key_of(ls[top].body).unwrap_or_default();
    if !strip_comment(&ls[top].body[after..]).trim().is_empty() {
        // `mcpServers: []` or a flow list: nothing this scan rewrites.
        return Ok(Vec::new());
    }
    // The list items: `- ` lines at one indent, until a line at indent 0.
    let mut items: Vec<(usize, usize)> = Vec::new(); // (line index, content column)
    let mut item_indent = None;
    for (i, l) in ls.iter().enumerate().skip(top + 1) {
        if blank(l) {
            continue;
        }
        if l.indent == 0 && !l.body.starts_with("- ") {
            break;
        }
        if l.body.starts_with("- ") || l.body == "-" {
            let ind = *item_indent.get_or_insert(l.indent);
            if l.indent == ind {
                let content = l.indent + 2 + l.body[2.min(l.body.len())..].len()
                    - l.body[2.min(l.body.len())..].trim_start().len();
                items.push((i, content));
            }
        }
    }
    let mut out = Vec::new();
    for (n, &(first, col)) in items.iter().enumerate() {
        let last = items.get(n + 1).map_or_else(
            || {
                ls.iter()
                    .enumerate()
                    .skip(first + 1)
                    .find(|(_, l)| !blank(l) && l.indent == 0 && !l.body.starts_with("- "))
                    .map_or(ls.len(), |(i, _)| i)
            },
            |&(i, _)| i,
        );
        out.push(item(text, &ls[first..last], col));
    }
    Ok(out)
}

/// One list item: keys at column `col` (the first one on the `- ` line).
fn item(text: &str, ls: &[Line], col: usize) -> Server {
    let mut s = Server::new("", "");
    let mut command: Option<Str> = None;
    let mut args: Option<(Vec<Str>, Layout)> = None;
    let mut ok = true;
    let mut has_env = false;
    let mut env_values: Vec<(String, Str)> = Vec::new();
    // The start of the line after `args` when `args` ends on a line of its own.
    let mut after_args = None;
    for (i, l) in ls.iter().enumerate() {
        // The key's own text and where it starts in the file.
        let (body, at) = if i == 0 {
            let skip = col - l.indent;
            (&l.body[skip.min(l.body.len())..], l.start + col)
        } else if l.indent == col && !blank(l) {
            (l.body, l.start + l.indent)
        } else {
            continue;
        };
        let Some((key, after)) = key_of(body) else {
            continue;
        };
        let vat = at + after;
        let inline = strip_comment(&text[vat..at + body.len()]).trim();
        match key.as_str() {
            "name" => {
                s.name = scalar(text, skip_sp(text, vat))
                    .map(|x| x.value)
                    .unwrap_or_default()
            }
            "url" => s.url = scalar(text, skip_sp(text, vat)).map(|x| x.value),
            "command" => {
                command = scalar(text, skip_sp(text, vat));
                ok &= command.is_some();
            }
            "args" if inline.starts_with('[') => match flow(text, skip_sp(text, vat)) {
                Some(v) => {
                    after_args = inline.ends_with(']').then(|| next_line(text, vat));
                    args = Some((v, Layout::Flow));
                }
                None => ok = false,
            },
            "args" if inline.is_empty() => match block_list(text, &ls[i + 1..], col) {
                Some(v) => {
                    after_args = v.last().map(|x| next_line(text, x.span.end));
                    args = Some((v, Layout::Block));
                }
                None => ok = false,
            },
            "args" => ok = false,
            "env" | "headers" => {
                let (pairs, spans) = if inline.is_empty() {
                    let m = block_map(text, &ls[i + 1..], col);
                    let spans = m
                        .iter()
                        .filter_map(|(k, _, v)| v.clone().map(|v| (k.clone(), v)))
                        .collect();
                    (m.into_iter().map(|(k, v, _)| (k, v)).collect(), spans)
                } else {
                    (flow_map(inline), Vec::new())
                };
                if key == "env" {
                    has_env = true;
                    s.env = pairs;
                    env_values = spans;
                } else {
                    s.headers = pairs;
                }
            }
            _ => {}
        }
    }
    s.command = command.as_ref().map(|c| c.value.clone());
    if let Some((a, _)) = &args {
        s.args = a.iter().map(|x| x.value.clone()).collect();
    }
    if ok && let (Some(command), Some((args, layout))) = (command, args) {
        // Without an `env`: a block mapping after `args`, at the keys' column.
        let env = after_args.filter(|_| !has_env).map(|at| {
            let sp = " ".repeat(col);
            EnvSlot::lines_at(text, at, format!("{sp}env:\n{sp}  "), ": ", "\n")
        });
        s.spans = Some(Spans {
            command,
            args,
            layout,
            env,
            env_values,
        });
    }
    s
}

/// `key: rest` → the key and the offset just after `:`.
fn key_of(body: &str) -> Option<(String, usize)> {
    let end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    let rest = &body[end..];
    (end > 0
        && (rest.starts_with(": ")
            || rest == ":"
            || rest.starts_with(":\t")
            || rest.starts_with(": #")
            || rest.starts_with(":#")))
    .then(|| (body[..end].to_owned(), end + 1))
}

fn skip_sp(text: &str, mut at: usize) -> usize {
    while text.as_bytes().get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// Text before a ` #` comment (outside quotes, roughly: comments after a
/// quoted scalar are found after its closing quote by the scalar reader).
fn strip_comment(s: &str) -> &str {
    if s.trim_start().starts_with('#') {
        return "";
    }
    match s.find(" #") {
        Some(i) if !s[..i].contains(['"', '\'']) => &s[..i],
        _ => s,
    }
}

/// A scalar at `at` in block context: quoted, or plain up to ` #` / end of line.
fn scalar(text: &str, at: usize) -> Option<Str> {
    quoted(text, at).or_else(|| plain(text, at, false))
}

fn quoted(text: &str, at: usize) -> Option<Str> {
    let s = &text[at..];
    if let Some(body) = s.strip_prefix('\'') {
        let mut out = String::new();
        let mut i = 0;
        let b = body.as_bytes();
        while i < b.len() {
            match b[i] {
                b'\'' if b.get(i + 1) == Some(&b'\'') => {
                    out.push('\'');
                    i += 2;
                }
                b'\'' => {
                    return Some(Str {
                        value: out,
                        span: at..at + 1 + i + 1,
                        quote: Quote::Single,
                    });
                }
                b'\n' => return None,
                _ => {
                    let ch = body[i..].chars().next()?;
                    out.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        return None;
    }
    if s.starts_with('"') {
        // YAML double-quoted escapes are a superset of JSON's; take the
        // common subset and give up on anything else.
        let close = {
            let b = s.as_bytes();
            let mut i = 1;
            loop {
                match b.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break i,
                    b'\n' => return None,
                    _ => i += 1,
                }
            }
        };
        let value: String = serde_json::from_str(&s[..=close]).ok()?;
        return Some(Str {
            value,
            span: at..at + close + 1,
            quote: Quote::Double,
        });
    }
    None
}

fn plain(text: &str, at: usize, in_flow: bool) -> Option<Str> {
    let line_end = text[at..].find(['\n', '\r']).map_or(text.len(), |i| at + i);
    let mut end = line_end;
    let s = &text[at..line_end];
    if let Some(i) = s.find(" #") {
        end = at + i;
    }
    if in_flow && let Some(i) = text[at..end].find([',', ']', '}']) {
        end = at + i;
    }
    let raw = text[at..end].trim_end();
    if raw.is_empty() || raw.starts_with(['[', '{', '&', '*', '!', '|', '>', '%', '@', '`']) {
        return None;
    }
    Some(Str {
        value: raw.to_owned(),
        span: at..at + raw.len(),
        quote: Quote::Plain,
    })
}

/// `[a, "b", 'c']`, possibly over several lines.
fn flow(text: &str, at: usize) -> Option<Vec<Str>> {
    let b = text.as_bytes();
    let mut pos = at + 1;
    let mut items = Vec::new();
    loop {
        while pos < b.len() && matches!(b[pos], b' ' | b'\n' | b'\r' | b',') {
            pos += 1;
        }
        match b.get(pos)? {
            b']' => return Some(items),
            b'#' => return None,
            _ => {
                let s = quoted(text, pos).or_else(|| plain(text, pos, true))?;
                pos = s.span.end;
                items.push(s);
            }
        }
    }
}

/// The `- item` lines under `args:` (at the key's column or deeper).
fn block_list(text: &str, ls: &[Line], col: usize) -> Option<Vec<Str>> {
    let mut items = Vec::new();
    let mut ind = None;
    for l in ls {
        if blank(l) {
            continue;
        }
        if l.indent < col || (l.indent == col && !l.body.starts_with("- ")) {
            break;
        }
        let want = *ind.get_or_insert(l.indent);
        if l.indent != want || !l.body.starts_with("- ") {
            return None;
        }
        items.push(scalar(text, skip_sp(text, l.start + l.indent + 2))?);
    }
    Some(items)
}

/// `KEY: value` lines under `env:`, with where each value sits.
fn block_map(text: &str, ls: &[Line], col: usize) -> Vec<(String, String, Option<Str>)> {
    let mut out = Vec::new();
    for l in ls {
        if blank(l) {
            continue;
        }
        if l.indent <= col {
            break;
        }
        if let Some((k, after)) = key_of(l.body) {
            let v = scalar(text, skip_sp(text, l.start + l.indent + after));
            out.push((
                k,
                v.as_ref().map(|v| v.value.clone()).unwrap_or_default(),
                v,
            ));
        }
    }
    out
}

/// `{ K: v, K2: "w" }` on one line (values with commas are not split right,
/// which only affects what the scan reports, never a rewrite).
fn flow_map(inline: &str) -> Vec<(String, String)> {
    let inner = inline.trim().trim_start_matches('{').trim_end_matches('}');
    inner
        .split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            let unq = |s: &str| s.trim().trim_matches(['"', '\'']).to_owned();
            Some((unq(k), unq(v)))
        })
        .collect()
}

/// A scalar as YAML writes it, in the style the file already uses; a plain
/// scalar only where YAML reads it back as the same string.
pub fn render(s: &str, quote: Quote) -> String {
    match quote {
        Quote::Plain if plain_safe(s) => s.to_owned(),
        Quote::Single if !s.contains(['\n', '\r']) => format!("'{}'", s.replace('\'', "''")),
        _ => crate::mcp::formats::jsonc::render(s),
    }
}

fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphanumeric() || matches!(first, '.' | '/' | '_' | '$' | '-'))
        && !s.starts_with("- ")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@=~+$:".contains(c))
        && !s.contains(": ")
        && !s.ends_with(':')
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_args() {
        let text = "name: x\nmcpServers:\n  - name: A # first\n    command: npx\n    args:\n      - -y\n      - \"@a/b\"\n    env:\n      TOKEN: ${{ secrets.T }}\n  - name: B\n    command: 'uvx'\n    args: [\"mcp-server-time\", --local-timezone=UTC]\nother: 1\n";
        let s = servers(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "A");
        assert_eq!(s[0].args, vec!["-y", "@a/b"]);
        assert_eq!(s[0].env[0].1, "${{ secrets.T }}");
        assert_eq!(s[0].spans.as_ref().unwrap().layout, Layout::Block);
        assert_eq!(s[1].command.as_deref(), Some("uvx"));
        assert_eq!(s[1].args, vec!["mcp-server-time", "--local-timezone=UTC"]);
        let sp = s[1].spans.as_ref().unwrap();
        assert_eq!(&text[sp.command.span.clone()], "'uvx'");
        // A has an `env` already: nothing is added to it automatically.
        assert!(s[0].spans.as_ref().unwrap().env.is_none());
    }

    #[test]
    fn env_goes_after_args_at_the_keys_column() {
        let text = "mcpServers:\n  - name: A\n    command: npx\n    args:\n      - -y\n      - \"@a/b\"\n  - command: uvx\n    args: [x] # c\n    name: B";
        let s = servers(text).unwrap();
        let edits: Vec<_> = s
            .iter()
            .map(|x| {
                x.spans
                    .as_ref()
                    .unwrap()
                    .env
                    .clone()
                    .unwrap()
                    .edit("R", "u")
            })
            .collect();
        let out = crate::mcp::model::apply(text, &edits);
        assert_eq!(
            out,
            "mcpServers:\n  - name: A\n    command: npx\n    args:\n      - -y\n      - \"@a/b\"\n    env:\n      R: \"u\"\n  - command: uvx\n    args: [x] # c\n    env:\n      R: \"u\"\n    name: B"
        );
        for x in servers(&out).unwrap() {
            assert_eq!(x.env, [("R".to_owned(), "u".to_owned())], "{out}");
        }
    }

    /// `--move-secrets` replaces a block-mapping value where it sits.
    #[test]
    fn env_values_are_located() {
        let text = "mcpServers:\n  - name: A\n    command: safex\n    args: [npx, x]\n    env:\n      TOKEN: 'ghp_abc' # c\n      B: \"v\"\n";
        let s = servers(text).unwrap();
        let sp = s[0].spans.as_ref().unwrap();
        let (k, at) = &sp.env_values[0];
        assert_eq!((k.as_str(), &text[at.span.clone()]), ("TOKEN", "'ghp_abc'"));
        let edit = crate::mcp::model::Edit {
            range: at.span.clone(),
            text: render("safex-secret:a.TOKEN", at.quote),
        };
        let out = crate::mcp::model::apply(text, &[edit]);
        assert!(out.contains("TOKEN: 'safex-secret:a.TOKEN' # c"), "{out}");
        assert_eq!(servers(&out).unwrap()[0].env[0].1, "safex-secret:a.TOKEN");
    }

    #[test]
    fn plain_rendering_round_trips() {
        assert_eq!(render("safex", Quote::Plain), "safex");
        assert_eq!(render("@a/b@1.0.0", Quote::Plain), "\"@a/b@1.0.0\"");
        assert_eq!(render("yes", Quote::Plain), "\"yes\"");
        assert_eq!(render("it's", Quote::Single), "'it''s'");
    }
}
