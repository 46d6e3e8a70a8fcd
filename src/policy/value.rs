//! One key's value read from a policy file into its type (a URL, a size, a
//! duration, one of a few words, package patterns), or an error naming the
//! file, line and key.

use std::time::Duration;

use toml::Spanned;

use super::Pattern;
use super::file::Parsed;
use crate::error::Result;

/// One of the words `options` names, as its value.
pub(super) fn choice<T: Copy>(
    parsed: &Parsed,
    key: &str,
    v: &Spanned<String>,
    options: &[(&str, T)],
) -> Result<T> {
    options
        .iter()
        .find(|(s, _)| *s == v.get_ref())
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<String> = options.iter().map(|(s, _)| format!("`{s}`")).collect();
            parsed.bad(
                key,
                v.span(),
                &format!(
                    "is `{}`; expected {}",
                    crate::redact::shown(v.get_ref()),
                    names.join(" or ")
                ),
            )
        })
}

/// A list of package patterns (a name glob, with `@version` or `==version`).
pub(super) fn patterns(
    parsed: &Parsed,
    key: &str,
    v: &Spanned<Vec<String>>,
) -> Result<Vec<Pattern>> {
    v.get_ref()
        .iter()
        .map(|s| {
            Pattern::parse(s).ok_or_else(|| {
                parsed.bad(
                    key,
                    v.span(),
                    &format!("has an invalid pattern `{}`", crate::redact::shown(s)),
                )
            })
        })
        .collect()
}

/// `"4GiB"`, `"512MiB"`, `"64KiB"`, `"1TiB"` or a plain byte count.
pub(super) fn size_value(parsed: &Parsed, key: &str, v: &Spanned<String>) -> Result<u64> {
    parse_size(v.get_ref()).ok_or_else(|| {
        parsed.bad(
            key,
            v.span(),
            &format!(
                "is `{}`; expected a size like `4GiB`, `512MiB` or a number of bytes",
                crate::redact::shown(v.get_ref())
            ),
        )
    })
}

/// `"7d"`, `"12h"`, `"30m"` or `"0"`.
pub(super) fn duration_value(parsed: &Parsed, key: &str, v: &Spanned<String>) -> Result<Duration> {
    crate::time::parse_duration(v.get_ref()).ok_or_else(|| {
        parsed.bad(
            key,
            v.span(),
            &format!(
                "is `{}`; expected a duration like `7d`, `12h`, `30m` or `0`",
                crate::redact::shown(v.get_ref())
            ),
        )
    })
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A URL, kept as written.
pub(super) fn url_value(parsed: &Parsed, key: &str, v: &Spanned<String>) -> Result<String> {
    url::Url::parse(v.get_ref())
        .map(|_| v.get_ref().clone())
        .map_err(|e| parsed.bad(key, v.span(), &format!("is not a URL: {e}")))
}
