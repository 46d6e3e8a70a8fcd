//! Literal secrets in a server's `env`, `headers` and `args`.
//!
//! A config file is read by every tool that scans the disk, synced by dotfile
//! managers and pasted into bug reports; a token written there in plain text
//! is as good as published. A value counts as a literal secret when its name
//! says so (`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`) and it is not an
//! interpolation (`${VAR}`, `${env:X}`, `${input:x}`, `${{ secrets.X }}`,
//! `$VAR`) or a placeholder, or when it carries a well-known token prefix, or
//! a URL with a password in it. Values are never shown, only a mask.

/// One literal secret: where it is and a masked form of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// `env `NAME``, `args[3]`, `header `Authorization``.
    pub place: String,
    pub masked: String,
}

/// Token formats that identify the issuer, so a hit is rarely a false one.
const PREFIXES: &[&str] = &[
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "glpat-",
    "sk-ant-",
    "sk-proj-",
    "sk_live_",
    "rk_live_",
    "sk-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxs-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "ntn_",
    "npm_",
    "pypi-",
    "hf_",
    "tvly-",
];

const NAME_WORDS: &[&str] = &["TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD"];

/// Names that hold a reference to a secret, not the secret.
const NAME_SUFFIXES_OK: &[&str] = &[
    "_FILE", "_PATH", "_DIR", "_ENV_VAR", "_ENV", "_NAME", "_ID_VAR",
];

pub fn find(
    env: &[(String, String)],
    headers: &[(String, String)],
    args: &[String],
) -> Vec<Secret> {
    let mut out = Vec::new();
    for (k, v) in env {
        if let Some(masked) = judge(Some(k), v) {
            out.push(Secret {
                place: format!("env `{k}`"),
                masked,
            });
        }
    }
    for (k, v) in headers {
        let auth = k.eq_ignore_ascii_case("authorization")
            || k.eq_ignore_ascii_case("proxy-authorization");
        let hit = judge(Some(k), v).or_else(|| (auth && literal(v)).then(|| "****".to_owned()));
        if let Some(masked) = hit {
            out.push(Secret {
                place: format!("header `{k}`"),
                masked,
            });
        }
    }
    for hit in in_args(args) {
        out.push(Secret {
            place: format!("args[{}]", hit.index),
            masked: hit.mask,
        });
    }
    out
}

/// One argument that carries a literal secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgSecret {
    /// Its position in the argument list.
    pub index: usize,
    /// The short mask `safex mcp scan` shows (`ghp_****`).
    pub mask: String,
    /// The whole argument with the secret part masked and the rest kept
    /// (`--token=ghp_****`, `https://****@host/x`): what the audit log records.
    pub masked_arg: String,
}

/// The detector for program arguments, shared by `safex mcp scan` and the
/// audit log: `--api-key=VALUE` and `--api-key VALUE` (any flag whose name
/// says secret), `NAME=VALUE` with such a name, and any argument that
/// carries a known token prefix or a URL with credentials in it.
pub fn in_args(args: &[String]) -> Vec<ArgSecret> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let flag = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        let hit = match flag.map(|f| f.split_once('=')) {
            // `--api-key=VALUE`.
            Some(Some((name, value))) if secret_name(name) => {
                judge(Some(name), value).map(|m| (m, masked_after(a, value)))
            }
            // `--api-key VALUE`: the value is the next argument.
            Some(None) if secret_name(flag.unwrap_or_default()) && i + 1 < args.len() => {
                let value = &args[i + 1];
                let r = judge(flag, value).map(|m| (m, mask_value(value)));
                if r.is_some() {
                    i += 1;
                }
                r
            }
            // `API_KEY=VALUE`, as env-style arguments (`env`, `docker -e`) take them.
            None if a
                .split_once('=')
                .is_some_and(|(n, _)| env_name(n) && secret_name(n)) =>
            {
                let (name, value) = a.split_once('=').unwrap_or_default();
                judge(Some(name), value).map(|m| (m, masked_after(a, value)))
            }
            _ => judge(None, a).map(|m| (m, mask_value(a))),
        };
        if let Some((mask, masked_arg)) = hit {
            out.push(ArgSecret {
                index: i,
                mask,
                masked_arg,
            });
        }
        i += 1;
    }
    out
}

/// `args` with every secret that `in_args` finds masked, the rest verbatim.
pub fn mask_args(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    for hit in in_args(args) {
        out[hit.index] = hit.masked_arg;
    }
    out
}

/// Whether an environment variable holds a secret, by its name or by its
/// value (the rule `find` applies to a config's `env`).
pub fn is_secret(name: &str, value: &str) -> bool {
    judge(Some(name), value).is_some()
}

/// The texts of a secret value that must not be shown: the value itself,
/// and each token and URL password inside it.
pub fn secret_parts(value: &str) -> Vec<String> {
    let mut parts = vec![value.to_owned()];
    let mut rest = value;
    while let Some((start, len, _)) = token_at(rest) {
        parts.push(rest[start..start + len].to_owned());
        rest = &rest[start + len..];
    }
    if let Some(range) = url_userinfo(value)
        && let Some((_, pw)) = value[range].split_once(':')
    {
        parts.push(pw.to_owned());
    }
    parts
}

/// `text` (a diff of a config) with every literal secret of `servers`
/// replaced by `****`, the longest first.
pub fn mask_in(text: &str, servers: &[crate::mcp::model::Server]) -> String {
    let mut values: Vec<String> = Vec::new();
    for s in servers {
        for (k, v) in s.env.iter().chain(&s.headers) {
            if is_secret(k, v) {
                values.extend(secret_parts(v));
            }
        }
        for hit in in_args(&s.args) {
            let a = &s.args[hit.index];
            // `--token=VALUE`: the flag stays readable.
            let v = match a.split_once('=') {
                Some((flag, v)) if flag.starts_with('-') => v,
                _ => a,
            };
            values.extend(secret_parts(v));
        }
    }
    values.retain(|v| v.len() >= 4);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    let mut out = text.to_owned();
    for v in &values {
        for form in [
            v.clone(),
            crate::mcp::formats::jsonc::render(v)
                .trim_matches('"')
                .to_owned(),
        ] {
            if out.contains(&form) {
                out = out.replace(&form, "****");
            }
        }
    }
    out
}

/// A shell-style variable name: letters, digits, `_`, not starting with a digit.
fn env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `arg` ends with `value`: mask that tail, keep the `NAME=` before it.
fn masked_after(arg: &str, value: &str) -> String {
    let head = &arg[..arg.len() - value.len()];
    format!("{head}{}", mask_value(value))
}

/// `value` with its secret parts masked in place: each known-prefix token
/// becomes `prefix****`, URL userinfo becomes `****`; a value that is a
/// secret only by its name becomes `****`.
fn mask_value(value: &str) -> String {
    let mut out = value.to_owned();
    while let Some((start, len, p)) = token_at(&out) {
        out.replace_range(start..start + len, &format!("{p}****"));
    }
    if let Some(range) = url_userinfo(&out) {
        out.replace_range(range, "****");
    }
    if out == value { "****".to_owned() } else { out }
}

fn secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase().replace('-', "_");
    NAME_WORDS.iter().any(|w| up.contains(w)) && !NAME_SUFFIXES_OK.iter().any(|s| up.ends_with(s))
}

/// The mask for `value` if it is a literal secret.
fn judge(name: Option<&str>, value: &str) -> Option<String> {
    if value.trim().starts_with(crate::secret::PREFIX) {
        return None;
    }
    if let Some(p) = token_prefix(value) {
        return Some(format!("{p}****"));
    }
    if url_password(value) {
        return Some("://****:****@".to_owned());
    }
    let name = name?;
    if !secret_name(name) || !literal(value) {
        return None;
    }
    Some("****".to_owned())
}

/// A known prefix at the start of a word, followed by enough token characters.
fn token_prefix(value: &str) -> Option<&'static str> {
    token_at(value).map(|(_, _, p)| p)
}

/// Where the first unmasked token is: its start, its length and its prefix.
/// A token already masked (`prefix****`) is too short to count again.
fn token_at(value: &str) -> Option<(usize, usize, &'static str)> {
    for (i, _) in value.char_indices() {
        if i > 0 && value[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &value[i..];
        for p in PREFIXES {
            if let Some(tail) = rest.strip_prefix(p) {
                let n: usize = tail
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
                    .map(char::len_utf8)
                    .sum();
                if n >= 12 {
                    return Some((i, p.len() + n, p));
                }
            }
        }
    }
    None
}

/// `scheme://user:password@host` with a literal password.
fn url_password(value: &str) -> bool {
    url_userinfo(value).is_some()
}

/// The byte range of the userinfo in `scheme://user:password@host`, when the
/// password is literal.
fn url_userinfo(value: &str) -> Option<std::ops::Range<usize>> {
    let start = value.find("://")? + 3;
    let rest = &value[start..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, _) = authority.rsplit_once('@')?;
    match userinfo.split_once(':') {
        Some((_, pw)) if literal(pw) => Some(start..start + userinfo.len()),
        _ => None,
    }
}

/// Not empty, not interpolated, not a placeholder.
fn literal(value: &str) -> bool {
    let v = value.trim();
    if v.starts_with(crate::secret::PREFIX) {
        return false;
    }
    if v.len() < 4 || v.contains("${") || v.contains("{{") {
        return false;
    }
    // `$VAR` anywhere (Gemini CLI expands it in every string value).
    let b = v.as_bytes();
    if b.windows(2)
        .any(|w| w[0] == b'$' && (w[1].is_ascii_uppercase() || w[1] == b'_'))
    {
        return false;
    }
    if v.starts_with('%') && v.ends_with('%') {
        return false;
    }
    let up = v.to_ascii_uppercase();
    let placeholder = up.contains("YOUR")
        || v.contains('…')
        || v.contains("...")
        || up.contains("CHANGEME")
        || up.contains("REPLACE")
        || (v.starts_with('<') && v.ends_with('>'))
        || v.chars()
            .all(|c| c == 'x' || c == 'X' || c == '*' || c == '.');
    !placeholder && !matches!(up.as_str(), "TRUE" | "FALSE" | "NULL" | "NONE")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_owned(), v.to_owned())]
    }

    #[test]
    fn literal_values_under_secret_names() {
        for (k, v, masked) in [
            (
                "GITHUB_PERSONAL_ACCESS_TOKEN",
                "ghp_abcdefghijklmnop1234",
                Some("ghp_****"),
            ),
            ("BRAVE_API_KEY", "BSAx8s7d6f5g4h", Some("****")),
            ("DB_PASSWORD", "hunter22", Some("****")),
            ("API_KEY", "${env:API_KEY}", None),
            ("API_KEY", "${input:key}", None),
            ("API_KEY", "$API_KEY", None),
            ("API_KEY", "${{ secrets.KEY }}", None),
            ("API_KEY", "YOUR_API_KEY", None),
            ("API_KEY", "<your-key>", None),
            ("API_KEY", "", None),
            ("KEY_FILE", "/etc/key.pem", None),
            ("MEMORY_FILE_PATH", "/tmp/m.jsonl", None),
            ("LOG_LEVEL", "sk-abcdefghijklmnopqrst", Some("sk-****")),
            (
                "DATABASE_URL",
                "postgres://u:pa55word@h/db",
                Some("://****:****@"),
            ),
            ("DATABASE_URL", "postgres://u:${PW}@h/db", None),
        ] {
            let got = find(&env(k, v), &[], &[]);
            assert_eq!(got.first().map(|s| s.masked.as_str()), masked, "{k}={v}");
        }
    }

    #[test]
    fn secrets_in_args_and_headers() {
        let args: Vec<String> = [
            "-y",
            "x",
            "--api-key",
            "abcd1234efgh",
            "--token=${T}",
            "Bearer xoxb-1234567890-abcdef",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = find(&[], &env("Authorization", "Bearer abcdefghijkl"), &args);
        let places: Vec<&str> = got.iter().map(|s| s.place.as_str()).collect();
        assert_eq!(places, ["header `Authorization`", "args[3]", "args[5]"]);
        assert!(find(&[], &env("Authorization", "Bearer ${TOKEN}"), &[]).is_empty());
    }

    #[test]
    fn masked_args_keep_what_is_not_secret() {
        let args: Vec<String> = [
            "--api-key",
            "abcd1234efgh",
            "--token=ghp_abcdefghijklmnop1234",
            "https://u:pa55word@h.example/x?y",
            "API_KEY=BSAx8s7d6f5g4h",
            "Bearer xoxb-1234567890-abcdef and sk-abcdefghijklmnopqrst",
            "--token=${T}",
            "LOG_LEVEL=debug",
            "--port",
            "8080",
            "https://h.example/open",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            mask_args(&args),
            [
                "--api-key",
                "****",
                "--token=ghp_****",
                "https://****@h.example/x?y",
                "API_KEY=****",
                "Bearer xoxb-**** and sk-****",
                "--token=${T}",
                "LOG_LEVEL=debug",
                "--port",
                "8080",
                "https://h.example/open",
            ]
        );
        // The scan sees the same arguments, at the same places.
        let places: Vec<String> = find(&[], &[], &args).into_iter().map(|s| s.place).collect();
        assert_eq!(
            places,
            ["args[1]", "args[2]", "args[3]", "args[4]", "args[5]"]
        );
    }
}
