//! One JSON-RPC line read just far enough: its id, method and where its
//! params, result or error are, without building a tree of the rest (a
//! 5 MiB file content is skipped over, not parsed into values).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The fields the relay looks at; the rest is skipped.
#[derive(Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow, default)]
    pub jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// `None` when `line` is not one JSON object (an array, a batch, text,
    /// a duplicated field).
    pub fn parse(line: &'a [u8]) -> Option<Envelope<'a>> {
        let body = trim(line);
        if body.first() != Some(&b'{') {
            return None;
        }
        serde_json::from_slice(body).ok()
    }

    pub fn is_jsonrpc(&self) -> bool {
        self.jsonrpc.as_deref() == Some("2.0")
    }

    /// The id as a key both sides agree on: `1`, `1.0` and `"1"` are
    /// told apart as JSON tells them apart, whatever the spelling
    /// (`"\u0031"` is `"1"`, `1.0` is `1`).
    pub fn id_key(&self) -> Option<String> {
        self.id.and_then(|raw| id_key(raw.get()))
    }
}

/// A request id in one canonical spelling; `None` for `null` or a value
/// an id cannot be.
pub fn id_key(raw: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(raw).ok()? {
        serde_json::Value::String(s) => Some(serde_json::Value::String(s).to_string()),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i.to_string())
            } else if let Some(u) = n.as_u64() {
                Some(u.to_string())
            } else {
                let f = n.as_f64()?;
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    Some(format!("{}", f as i64))
                } else {
                    Some(n.to_string())
                }
            }
        }
        _ => None,
    }
}

/// `params` of a `tools/call` or `prompts/get`.
#[derive(Deserialize)]
pub struct Named<'a> {
    pub name: String,
    #[serde(borrow, default)]
    pub arguments: Option<&'a RawValue>,
}

/// `params` of a `resources/read`.
#[derive(Deserialize)]
pub struct Uri {
    pub uri: String,
}

/// `params` of `notifications/cancelled`.
#[derive(Deserialize)]
pub struct Cancelled<'a> {
    #[serde(borrow, rename = "requestId")]
    pub request_id: &'a RawValue,
}

/// The one field of a call's result the audit keeps.
#[derive(Deserialize)]
pub struct CallResult {
    #[serde(rename = "isError", default)]
    pub is_error: Option<bool>,
}

/// `line` without surrounding whitespace (its `\r\n` included).
pub fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &line[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_one_spelling() {
        assert_eq!(id_key("1"), id_key("1.0"));
        assert_eq!(id_key("\"\\u0031\""), id_key("\"1\""));
        assert_ne!(id_key("1"), id_key("\"1\""));
        assert_eq!(id_key("null"), None);
        assert_eq!(id_key("{}"), None);
    }

    #[test]
    fn envelopes_refuse_what_is_not_one_object() {
        assert!(Envelope::parse(b"[{\"jsonrpc\":\"2.0\"}]\n").is_none());
        assert!(Envelope::parse(b"hello\n").is_none());
        assert!(Envelope::parse(b"{\"method\":\"a\",\"method\":\"b\"}\n").is_none());
        let e = Envelope::parse(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\r\n").unwrap();
        assert!(e.is_jsonrpc());
        assert_eq!(e.id_key().as_deref(), Some("7"));
        let n: Named = serde_json::from_str(e.params.unwrap().get()).unwrap();
        assert_eq!(n.name, "x");
        assert!(serde_json::from_str::<Named>("{\"name\":\"a\",\"name\":\"b\"}").is_err());
    }
}
