//! Showing URLs without the credentials that may be inside them.

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
