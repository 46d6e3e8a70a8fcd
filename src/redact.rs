//! What messages may show: URLs without the credentials inside them, and
//! untrusted text escaped and cut.

use url::Url;

/// The URL with any user name and password replaced by `***`.
pub fn url(u: &Url) -> String {
    let mut u = u.clone();
    if !u.username().is_empty() {
        let _ = u.set_username("***");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// A configured registry or index URL, which may carry the credential for
/// its origin as userinfo: shown (`Display`, `Debug`) only without it, so a
/// message, a log line or a debug print cannot leak it. The URL itself,
/// credential included, is [`SafeUrl::url`], for requests to that origin.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafeUrl(Url);

impl SafeUrl {
    pub fn new(u: Url) -> SafeUrl {
        SafeUrl(u)
    }

    /// The URL with its credentials: for requests, never for messages.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl std::fmt::Display for SafeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&url(&self.0))
    }
}

impl std::fmt::Debug for SafeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafeUrl({self})")
    }
}

/// Printable form of untrusted input: control characters escaped, length capped.
pub fn shown(s: &str) -> String {
    cut(s, 80)
}

/// [`shown`] with a cap of `max` characters.
pub fn cut(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(|c| c.escape_debug()).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn userinfo_is_hidden() {
        let u = url::Url::parse("https://me:secret@r.example/x").unwrap();
        let shown = super::url(&u);
        assert!(
            !shown.contains("secret") && !shown.contains("me:"),
            "{shown}"
        );
        let safe = super::SafeUrl::new(u.clone());
        for shown in [safe.to_string(), format!("{safe:?}")] {
            assert!(
                !shown.contains("secret") && shown.contains("r.example"),
                "{shown}"
            );
        }
        assert_eq!(safe.url().password(), Some("secret"));
    }
}
