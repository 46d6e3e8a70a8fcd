//! A unified diff of a splice. The changed regions are known exactly (the
//! edits), so no line-matching algorithm is needed, and a large file such as
//! `~/.claude.json` costs only its line index.

use crate::mcp::model::{Edit, apply};

const CONTEXT: usize = 3;

/// `--- a/FILE`, `+++ b/FILE` and hunks with three lines of context; empty
/// when there are no edits.
pub fn unified(label: &str, old: &str, edits: &[Edit]) -> String {
    if edits.is_empty() {
        return String::new();
    }
    let lines = Lines {
        text: old,
        starts: line_starts(old),
    };
    let changes = changes(&lines, edits);
    let mut out = format!("--- a/{label}\n+++ b/{label}\n");
    hunks(&lines, &changes, &mut out);
    out
}

/// The old text and where each of its lines starts.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl Lines<'_> {
    /// The line that holds byte `at`.
    fn line_of(&self, at: usize) -> usize {
        self.starts.partition_point(|&s| s <= at).saturating_sub(1)
    }

    /// The byte after `line` (its newline included).
    fn end_of(&self, line: usize) -> usize {
        self.starts
            .get(line + 1)
            .copied()
            .unwrap_or(self.text.len())
    }
}

/// Old lines `first..=last` and the lines that replace them.
struct Change {
    first: usize,
    last: usize,
    new: Vec<String>,
}

/// The edits as changed lines: edits whose line ranges touch are one
/// change, its new lines the old ones with those edits applied.
fn changes(lines: &Lines, edits: &[Edit]) -> Vec<Change> {
    // Line ranges [first, last] touched by each edit, merged when they touch.
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.range.start, e.range.end));
    let mut groups: Vec<(usize, usize, Vec<&Edit>)> = Vec::new();
    for e in sorted {
        let first = lines.line_of(e.range.start);
        let last = lines.line_of(e.range.end.saturating_sub(1).max(e.range.start));
        match groups.last_mut() {
            Some(g) if first <= g.1 => {
                g.1 = g.1.max(last);
                g.2.push(e);
            }
            _ => groups.push((first, last, vec![e])),
        }
    }
    // Each group: its old lines and its new lines.
    let old = lines.text;
    groups
        .into_iter()
        .map(|(first, last, es)| {
            let (a, b) = (lines.starts[first], lines.end_of(last));
            let local: Vec<Edit> = es
                .iter()
                .map(|e| Edit {
                    range: e.range.start - a..e.range.end - a,
                    text: e.text.clone(),
                })
                .collect();
            let new_chunk = apply(&old[a..b], &local);
            Change {
                first,
                last,
                new: split(&new_chunk).into_iter().map(str::to_owned).collect(),
            }
        })
        .collect()
}

/// The hunks: changes whose context overlaps are printed together.
fn hunks(lines: &Lines, changes: &[Change], out: &mut String) {
    let nlines = lines.starts.len();
    let old_lines: Vec<&str> = (0..nlines)
        .map(|i| &lines.text[lines.starts[i]..lines.end_of(i)])
        .collect();
    let mut delta: isize = 0;
    let mut i = 0;
    while i < changes.len() {
        let mut j = i;
        while j + 1 < changes.len() && changes[j + 1].first <= changes[j].last + 1 + 2 * CONTEXT {
            j += 1;
        }
        let from = changes[i].first.saturating_sub(CONTEXT);
        let to = (changes[j].last + 1 + CONTEXT).min(nlines);
        let mut body = String::new();
        let (mut old_n, mut new_n) = (0usize, 0usize);
        let mut line = from;
        let mut hunk_delta = 0isize;
        for Change { first, last, new } in &changes[i..=j] {
            for l in &old_lines[line..*first] {
                push(&mut body, ' ', l);
                old_n += 1;
                new_n += 1;
            }
            for l in &old_lines[*first..=*last] {
                push(&mut body, '-', l);
                old_n += 1;
            }
            for l in new {
                push(&mut body, '+', l);
                new_n += 1;
            }
            hunk_delta += new.len() as isize - (last - first + 1) as isize;
            line = last + 1;
        }
        for l in &old_lines[line..to] {
            push(&mut body, ' ', l);
            old_n += 1;
            new_n += 1;
        }
        let new_start = (from as isize + delta) as usize;
        out.push_str(&format!(
            "@@ -{} +{} @@\n{body}",
            range(from, old_n),
            range(new_start, new_n)
        ));
        delta += hunk_delta;
        i = j + 1;
    }
}

fn range(start0: usize, n: usize) -> String {
    let start = if n == 0 { start0 } else { start0 + 1 };
    if n == 1 {
        format!("{start}")
    } else {
        format!("{start},{n}")
    }
}

fn push(out: &mut String, mark: char, line: &str) {
    out.push(mark);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(
        text.match_indices('\n')
            .map(|(i, _)| i + 1)
            .filter(|&i| i < text.len()),
    );
    v
}

fn split(chunk: &str) -> Vec<&str> {
    chunk.split_inclusive('\n').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_with_context() {
        let old: String = (1..=20).map(|i| format!("l{i}\n")).collect();
        let at = |s: &str| old.find(s).unwrap();
        let edits = vec![
            Edit {
                range: at("l2\n")..at("l2\n") + 2,
                text: "L2".into(),
            },
            Edit {
                range: at("l15")..at("l15") + 3,
                text: "L15\nextra".into(),
            },
        ];
        let d = unified("f", &old, &edits);
        assert_eq!(
            d,
            "--- a/f\n+++ b/f\n@@ -1,5 +1,5 @@\n l1\n-l2\n+L2\n l3\n l4\n l5\n@@ -12,7 +12,8 @@\n l12\n l13\n l14\n-l15\n+L15\n+extra\n l16\n l17\n l18\n"
        );
    }

    #[test]
    fn no_trailing_newline() {
        let d = unified(
            "f",
            "a",
            &[Edit {
                range: 0..1,
                text: "b".into(),
            }],
        );
        assert_eq!(
            d,
            "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n"
        );
    }
}
