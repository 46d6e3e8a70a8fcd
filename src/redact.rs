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

/// Printable form of untrusted input: control characters escaped, length capped.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(|c| c.escape_debug()).collect();
    if s.chars().count() > 80 {
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
    }
}
