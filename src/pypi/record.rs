//! A wheel's `RECORD`: its CSV, its sha256 and size rows, and the check of each file against them.
//!
//! Every file must be listed in the wheel's `RECORD` with its sha256 and
//! size, and every `RECORD` row must name a file: pip and uv check the same.
//! Sizes are compared before anything is written, hashes while streaming.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::archive::zip::{FileDigest, ValidatedZip};

/// One row of a `RECORD`: path, sha256 (none for `RECORD` itself and its
/// signatures), size.
pub type RecordRow = (String, Option<[u8; 32]>, Option<u64>);

/// The rows of an installed `RECORD` (for `safex cache verify --deep`).
pub fn record_rows(bytes: &[u8], dist_info: &str) -> Result<Vec<RecordRow>, String> {
    let record = Record::parse(bytes, dist_info)?;
    let mut rows: Vec<_> = record
        .rows
        .into_iter()
        .map(|(path, (hash, size))| (path, hash, size))
        .collect();
    rows.sort();
    Ok(rows)
}

/// The wheel's `RECORD`: sha256 and size for every file but itself.
pub(super) struct Record {
    dist_info: String,
    rows: HashMap<String, (Option<[u8; 32]>, Option<u64>)>,
}

impl Record {
    pub(super) fn parse(bytes: &[u8], dist_info: &str) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("has a `{dist_info}/RECORD` that is not UTF-8"))?;
        let mut rows = HashMap::new();
        for (line, row) in parse_csv(text)
            .map_err(|e| format!("has a `{dist_info}/RECORD` that is not valid CSV: {e}"))?
        {
            let [path, hash, size] = <[String; 3]>::try_from(row).map_err(|row| {
                format!(
                    "has a `{dist_info}/RECORD` whose line {line} has {} fields, not 3",
                    row.len()
                )
            })?;
            let exempt = is_signature_file(&path, dist_info);
            let hash = match (hash.as_str(), exempt) {
                ("", true) => None,
                (hash, _) => Some(parse_hash(hash).map_err(|e| {
                    format!("has a `{dist_info}/RECORD` whose row for `{path}` {e}")
                })?),
            };
            let size = match (size.as_str(), exempt) {
                ("", true) => None,
                (size, _) => Some(size.parse::<u64>().map_err(|_| {
                    format!("has a `{dist_info}/RECORD` whose row for `{path}` has size `{size}`")
                })?),
            };
            match rows.entry(path) {
                Entry::Vacant(v) => {
                    v.insert((hash, size));
                }
                Entry::Occupied(o) if *o.get() == (hash, size) => {}
                Entry::Occupied(o) => {
                    return Err(format!(
                        "has a `{dist_info}/RECORD` that lists `{}` twice, differently",
                        o.key()
                    ));
                }
            }
        }
        Ok(Record {
            dist_info: dist_info.to_owned(),
            rows,
        })
    }

    /// Every file listed with its declared size, every row a file.
    pub(super) fn check_listing(&self, zip: &ValidatedZip) -> Result<(), String> {
        for member in zip.files() {
            if is_signature_file(&member.name, &self.dist_info) {
                continue;
            }
            match self.rows.get(&member.name) {
                None => {
                    return Err(format!(
                        "has a file `{}` that its RECORD does not list",
                        member.name
                    ));
                }
                Some((_, Some(size))) if *size != member.size => {
                    return Err(format!(
                        "has a file `{}` of {} bytes, but its RECORD says {size}",
                        member.name, member.size
                    ));
                }
                Some(_) => {}
            }
        }
        let mut missing: Vec<&String> = self
            .rows
            .keys()
            .filter(|p| !is_signature_file(p, &self.dist_info) && zip.file(p).is_none())
            .collect();
        missing.sort_unstable();
        match missing.first() {
            Some(path) => Err(format!("lists `{path}` in its RECORD but has no such file")),
            None => Ok(()),
        }
    }

    /// The sha256 `RECORD` lists for `name`.
    pub(super) fn sha256_of(&self, name: &str) -> Option<[u8; 32]> {
        self.rows.get(name).and_then(|(h, _)| *h)
    }

    pub(super) fn check_digest(&self, name: &str, digest: &FileDigest) -> Result<(), String> {
        if is_signature_file(name, &self.dist_info) {
            return Ok(());
        }
        let Some((hash, size)) = self.rows.get(name) else {
            return Err(format!("has a file `{name}` that its RECORD does not list"));
        };
        if *size != Some(digest.size) {
            return Err(format!(
                "has a file `{name}` of {} bytes, but its RECORD says {}",
                digest.size,
                size.map_or_else(|| "nothing".to_owned(), |s| s.to_string())
            ));
        }
        if *hash != Some(digest.sha256) {
            return Err(format!(
                "has a file `{name}` whose sha256 differs from its RECORD \
                 (RECORD: `{}`, file: `sha256={}`)",
                hash.map_or_else(String::new, |h| format!(
                    "sha256={}",
                    URL_SAFE_NO_PAD.encode(h)
                )),
                URL_SAFE_NO_PAD.encode(digest.sha256)
            ));
        }
        Ok(())
    }
}

/// `RECORD` itself and its signatures are not listed with hashes.
fn is_signature_file(path: &str, dist_info: &str) -> bool {
    path.strip_prefix(dist_info)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|f| matches!(f, "RECORD" | "RECORD.jws" | "RECORD.p7s"))
}

/// `sha256=<urlsafe base64, padding optional>`.
fn parse_hash(value: &str) -> Result<[u8; 32], String> {
    let Some((algo, b64)) = value.split_once('=') else {
        return Err(format!("has no hash (`{value}`)"));
    };
    if algo != "sha256" {
        return Err(format!("uses `{algo}`; safex checks sha256"));
    }
    URL_SAFE_NO_PAD
        .decode(b64.trim_end_matches('='))
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("has a malformed sha256 `{b64}`"))
}

/// CSV as Python's `csv` module writes it: `,` between fields, `"` around
/// fields that need it, `""` for a quote inside them, `\n` or `\r\n` between
/// rows. Returns rows with their 1-based line numbers; blank lines are skipped.
pub(super) fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false; // inside quotes
    let mut was_quoted = false; // this field was quoted
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !(row.is_empty() && field.is_empty() && !was_quoted) {
                    row.push(std::mem::take(&mut field));
                    rows.push((row_line, std::mem::take(&mut row)));
                }
                was_quoted = false;
                line += 1;
                row_line = line;
            }
            '"' => return Err(format!("line {line} has a stray quote")),
            _ if was_quoted => return Err(format!("line {line} has text after a closing quote")),
            c => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {row_line} has an unterminated quote"));
    }
    if !(row.is_empty() && field.is_empty() && !was_quoted) {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::policy::PthPolicy;
    use crate::pypi::wheel_fixture::*;

    #[test]
    fn refuses_record_hash_mismatch() {
        let files = files(vec![]);
        let mut record = record_for(&files);
        record = record.replacen(
            &record_row("demo_pkg/__init__.py", &files[0].1),
            &record_row("demo_pkg/__init__.py", b"def main():\n    return 1\n"),
            1,
        );
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "file `demo_pkg/__init__.py` whose sha256 differs from its RECORD",
        );
    }

    #[test]
    fn refuses_record_hash_mismatch_of_metadata_read_early() {
        let files = files(vec![]);
        let wheel = format!("{DIST}.dist-info/WHEEL");
        let record = record_for(&files).replacen(
            &record_row(&wheel, WHEEL.as_bytes()),
            &record_row(&wheel, WHEEL.replace("test", "tset").as_bytes()),
            1,
        );
        let err = refused(
            &files,
            Some(record),
            Kind::Integrity,
            "whose sha256 differs",
        );
        assert!(err.message.contains(&wheel), "{err}");
    }

    #[test]
    fn refuses_unlisted_file() {
        let files = files(vec![f("demo_pkg/extra.py", "x = 1\n")]);
        let record = record_for(&files).replace(&record_row("demo_pkg/extra.py", b"x = 1\n"), "");
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "file `demo_pkg/extra.py` that its RECORD does not list",
        );
    }

    #[test]
    fn refuses_record_row_for_missing_file() {
        let files = files(vec![]);
        let mut record = record_for(&files);
        record.push_str(&record_row("demo_pkg/gone.py", b"x"));
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "lists `demo_pkg/gone.py` in its RECORD but has no such file",
        );
    }

    #[test]
    fn refuses_size_mismatch() {
        let files = files(vec![]);
        let good = record_row("demo_pkg/__init__.py", &files[0].1);
        let bad = good.replace(&format!(",{}\n", files[0].1.len()), ",3\n");
        let record = record_for(&files).replacen(&good, &bad, 1);
        refused(
            &files,
            Some(record),
            Kind::Integrity,
            "file `demo_pkg/__init__.py` of 25 bytes, but its RECORD says 3",
        );
    }

    #[test]
    fn refuses_malformed_record() {
        let files = files(vec![]);
        for (record, needle) in [
            (
                "demo_pkg/__init__.py,sha256=abc\n".to_owned(),
                "has 2 fields, not 3",
            ),
            (
                record_for(&files).replacen("sha256=", "md5=", 1),
                "uses `md5`; safex checks sha256",
            ),
            ("\"unterminated,,\n".to_owned(), "unterminated quote"),
        ] {
            refused(&files, Some(record), Kind::Integrity, needle);
        }
    }

    #[test]
    fn record_csv_with_quotes_is_understood() {
        let tmp = tempfile::tempdir().unwrap();
        let files = files(vec![f("demo_pkg/a,\"b\".txt", "q")]);
        let record: String = files
            .iter()
            .map(|(n, d, _)| {
                let row = record_row(n, d);
                if n.contains(',') {
                    row.replacen("demo_pkg/a,\"b\".txt", "\"demo_pkg/a,\"\"b\"\".txt\"", 1)
                        .replace('\n', "\r\n")
                } else {
                    row
                }
            })
            .collect::<String>()
            + &format!("{DIST}.dist-info/RECORD,,\n");
        let whl = build(tmp.path(), &files, Some(record));
        let layout = layout(tmp.path());
        install(&whl, &layout, PthPolicy::RefuseExecutable).unwrap();
        assert!(layout.purelib.join("demo_pkg/a,\"b\".txt").is_file());
    }

    #[test]
    fn csv_table() {
        let ok = |s: &str| parse_csv(s).unwrap();
        assert_eq!(
            ok("a,b,c\n"),
            vec![(1, vec!["a".into(), "b".into(), "c".into()])]
        );
        assert_eq!(
            ok("\"a,1\",,\r\n\nx,\"\"\"y\"\"\",3"),
            vec![
                (1, vec!["a,1".into(), String::new(), String::new()]),
                (3, vec!["x".into(), "\"y\"".into(), "3".into()]),
            ]
        );
        assert!(parse_csv("a\"b,c,d\n").is_err());
        assert!(parse_csv("\"a\"b,c,d\n").is_err());
    }
}
