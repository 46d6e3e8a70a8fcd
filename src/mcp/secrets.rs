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
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        // `--api-key=VALUE` and `--api-key VALUE`.
        let flag = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        let hit = match flag.map(|f| f.split_once('=')) {
            Some(Some((name, value))) if secret_name(name) => judge(Some(name), value),
            Some(None) if secret_name(flag.unwrap_or_default()) && i + 1 < args.len() => {
                let r = judge(flag, &args[i + 1]);
                if r.is_some() {
                    i += 1;
                }
                r
            }
            _ => judge(None, a),
        };
        if let Some(masked) = hit {
            out.push(Secret {
                place: format!("args[{i}]"),
                masked,
            });
        }
        i += 1;
    }
    out
}

fn secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase().replace('-', "_");
    NAME_WORDS.iter().any(|w| up.contains(w)) && !NAME_SUFFIXES_OK.iter().any(|s| up.ends_with(s))
}

/// The mask for `value` if it is a literal secret.
fn judge(name: Option<&str>, value: &str) -> Option<String> {
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
    for (i, _) in value.char_indices() {
        if i > 0 && value[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &value[i..];
        for p in PREFIXES {
            if let Some(tail) = rest.strip_prefix(p) {
                let n = tail
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
                    .count();
                if n >= 12 {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// `scheme://user:password@host` with a literal password.
fn url_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return false;
    };
    matches!(userinfo.split_once(':'), Some((_, pw)) if literal(pw))
}

/// Not empty, not interpolated, not a placeholder.
fn literal(value: &str) -> bool {
    let v = value.trim();
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
}
