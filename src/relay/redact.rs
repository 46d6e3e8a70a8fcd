//! Secrets kept out of answers: the values of the secrets safex put into the
//! server's environment, replaced in every server → client message by
//! `[redacted:NAME]`, as written and in their JSON-escaped form. A line the
//! byte replacement would break (a secret outside a string) is rewritten
//! from its parsed form instead, string by string.

use memchr::memmem;

/// One value to keep out, in the forms a JSON line can carry it.
struct Secret {
    /// The replacement text: `[redacted:NAME]`.
    mark: Vec<u8>,
    /// The value as written, and JSON-escaped when that differs.
    forms: Vec<memmem::Finder<'static>>,
    value: String,
}

/// The values to keep out of answers; empty when there are none.
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<Secret>,
}

/// Values shorter than this are not redacted: they would match ordinary text.
const MIN_LEN: usize = 8;

impl Redactor {
    /// From the program's environment: every variable whose name or value
    /// says it is a secret (the detector `safex mcp scan` uses).
    pub fn from_env(env: &[(std::ffi::OsString, std::ffi::OsString)]) -> Redactor {
        let mut r = Redactor::default();
        for (k, v) in env {
            let (Some(name), Some(value)) = (k.to_str(), v.to_str()) else {
                continue;
            };
            if crate::mcp::secrets::is_secret(name, value) {
                r.add(name, value);
            }
        }
        r
    }

    /// Also the values safex resolved from `safex-secret:` references
    /// (`(mark, value)`), whatever their names say.
    pub fn with(mut self, resolved: &[(String, String)]) -> Redactor {
        for (name, value) in resolved {
            self.add(name, value);
        }
        self
    }

    /// Keep `value` and its token and password parts out, marked
    /// `[redacted:NAME]`.
    fn add(&mut self, name: &str, value: &str) {
        for part in crate::mcp::secrets::secret_parts(value) {
            if part.len() >= MIN_LEN && !self.secrets.iter().any(|s| s.value == part) {
                self.secrets.push(Secret::new(name, part));
            }
        }
        // The longest first: a secret that contains another is replaced whole.
        self.secrets
            .sort_by_key(|s| std::cmp::Reverse(s.value.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Replace every secret in `line` (one JSON-RPC line, its terminator
    /// included); returns how many were replaced. The result parses as
    /// JSON whenever the input did.
    pub fn redact(&self, line: &mut Vec<u8>) -> usize {
        if self.secrets.is_empty() {
            return 0;
        }
        let mut count = 0;
        let mut out: Option<Vec<u8>> = None;
        for s in &self.secrets {
            for f in &s.forms {
                let cur = out.as_deref().unwrap_or(line);
                if f.find(cur).is_none() {
                    continue;
                }
                let (next, n) = replace_all(cur, f, &s.mark);
                out = Some(next);
                count += n;
            }
        }
        // A backslash escape can spell a secret no byte search sees
        // (`\u0067hp_…`, `\/`): then, and when the replacement left
        // something that no longer parses, work on the parsed strings.
        let cur = out.as_deref().unwrap_or(line);
        let escaped = memmem::find(cur, b"\\u").is_some() || memmem::find(cur, b"\\/").is_some();
        let broken = count > 0 && serde_json::from_slice::<serde::de::IgnoredAny>(cur).is_err();
        if (escaped || broken)
            && let Some((text, n)) = self.redact_parsed(line)
            && (n > 0 || broken)
        {
            *line = text;
            return n;
        }
        if let Some(o) = out {
            *line = o;
        }
        count
    }

    /// The parsed form of `line`, every string (keys too) with the secrets
    /// replaced, written back; `None` when `line` is not JSON.
    fn redact_parsed(&self, line: &[u8]) -> Option<(Vec<u8>, usize)> {
        let (body, end) = split_terminator(line);
        let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let mut n = 0;
        self.walk(&mut v, &mut n);
        let mut out = serde_json::to_vec(&v).ok()?;
        out.extend_from_slice(end);
        Some((out, n))
    }

    fn walk(&self, v: &mut serde_json::Value, n: &mut usize) {
        use serde_json::Value;
        match v {
            Value::String(s) => *n += self.in_text(s),
            Value::Number(num) => {
                let text = num.to_string();
                if let Some(sec) = self.secrets.iter().find(|s| s.value == text) {
                    *v = Value::String(String::from_utf8_lossy(&sec.mark).into_owned());
                    *n += 1;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.walk(x, n)),
            Value::Object(m) => {
                let old = std::mem::take(m);
                for (mut k, mut x) in old {
                    *n += self.in_text(&mut k);
                    self.walk(&mut x, n);
                    m.insert(k, x);
                }
            }
            _ => {}
        }
    }

    fn in_text(&self, s: &mut String) -> usize {
        let mut n = 0;
        for sec in &self.secrets {
            let hits = s.matches(sec.value.as_str()).count();
            if hits > 0 {
                *s = s.replace(
                    sec.value.as_str(),
                    std::str::from_utf8(&sec.mark).unwrap_or(""),
                );
                n += hits;
            }
        }
        n
    }
}

impl Secret {
    fn new(name: &str, value: String) -> Secret {
        let mut forms = vec![memmem::Finder::new(value.as_bytes()).into_owned()];
        let json = serde_json::to_string(&value).unwrap_or_default();
        let escaped = &json[1..json.len().saturating_sub(1).max(1)];
        if escaped != value {
            forms.push(memmem::Finder::new(escaped.as_bytes()).into_owned());
        }
        Secret {
            mark: format!("[redacted:{name}]").into_bytes(),
            forms,
            value,
        }
    }
}

fn split_terminator(line: &[u8]) -> (&[u8], &[u8]) {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    (body, &line[body.len()..])
}

fn replace_all(hay: &[u8], f: &memmem::Finder<'_>, with: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(hay.len());
    let mut last = 0;
    let mut n = 0;
    for at in f.find_iter(hay) {
        if at < last {
            continue;
        }
        out.extend_from_slice(&hay[last..at]);
        out.extend_from_slice(with);
        last = at + f.needle().len();
        n += 1;
    }
    out.extend_from_slice(&hay[last..]);
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn redactor(vars: &[(&str, &str)]) -> Redactor {
        let env: Vec<(OsString, OsString)> = vars
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        Redactor::from_env(&env)
    }

    fn redacted(r: &Redactor, line: &str) -> (String, usize) {
        let mut buf = line.as_bytes().to_vec();
        let n = r.redact(&mut buf);
        (String::from_utf8(buf).unwrap(), n)
    }

    #[test]
    fn secrets_by_name_or_value_only() {
        let r = redactor(&[
            ("MY_SERVICE_TOKEN", "s3cr3t-value-123"),
            ("HOME", "/root/somewhere"),
            ("GREETING", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            ("SHORT_TOKEN", "abc"),
        ]);
        let (out, n) = redacted(
            &r,
            "{\"a\":\"x s3cr3t-value-123 y /root/somewhere ghp_abcdefghijklmnopqrstuvwxyz0123456789 abc\"}\n",
        );
        assert_eq!(n, 2, "{out}");
        assert_eq!(
            out,
            "{\"a\":\"x [redacted:MY_SERVICE_TOKEN] y /root/somewhere [redacted:GREETING] abc\"}\n"
        );
    }

    #[test]
    fn escaped_forms_are_found_too() {
        let r = redactor(&[("API_KEY", "pa\"ss\\word-1234")]);
        let line = format!(
            "{}\n",
            serde_json::json!({ "text": "key=pa\"ss\\word-1234 end" })
        );
        let (out, n) = redacted(&r, &line);
        assert_eq!(n, 1, "{out}");
        assert!(out.contains("key=[redacted:API_KEY] end"), "{out}");
        let r = redactor(&[("API_KEY", "plainsecret99")]);
        let (out, n) = redacted(&r, "{\"t\":\"\\u0070lainsecret99\",\"k\":\"\\u00e9\"}\n");
        assert_eq!(n, 1, "{out}");
        assert!(
            out.contains("[redacted:API_KEY]") && out.ends_with('\n'),
            "{out}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    }

    #[test]
    fn a_line_without_secrets_is_untouched_and_json_stays_json() {
        let r = redactor(&[("DB_PASSWORD", "12345678")]);
        let line = "{\"t\":\"caf\\u00e9\",\"n\":1}\n";
        assert_eq!(redacted(&r, line), (line.to_owned(), 0));
        // The secret outside a string: the line is rewritten from its parse.
        let (out, n) = redacted(&r, "{\"pin\":12345678,\"s\":\"12345678\"}\n");
        assert_eq!(n, 2, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["s"], "[redacted:DB_PASSWORD]");
        assert_eq!(v["pin"], "[redacted:DB_PASSWORD]");
        assert!(Redactor::default().is_empty());
    }
}
