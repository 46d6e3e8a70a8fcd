//! The one HTTP client. rustls with the operating system's certificate store
//! (corporate TLS interception is normal on the laptops safex serves), plus
//! any extra CA files, added to the store rather than replacing it.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use tokio::sync::Semaphore;
use url::Url;

use crate::error::{Error, Result};
use crate::redact;
use crate::settings::Credential;

/// Parallel requests in flight at most (metadata and archives together).
pub const MAX_PARALLEL: usize = 16;
const ATTEMPTS: u32 = 4;

pub struct Http {
    client: reqwest::Client,
    pub limit: Semaphore,
}

/// A failure worth another try (connection reset, 5xx, truncated body) or not.
pub enum Fault {
    Transient(Error),
    Fatal(Error),
}

impl Http {
    pub fn new(ca_files: &[PathBuf]) -> Result<Http> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("safex/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // A redirect may not leave the origin: credentials and the
                // foreign-host rule must not be sidestepped by a 302.
                let same = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if !same || attempt.previous().len() > 5 {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }));
        for path in ca_files {
            let Ok(pem) = std::fs::read(path) else {
                continue;
            };
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::io(format!("CA file `{}` is not PEM: {e}", path.display())))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| Error::io(format!("cannot set up HTTPS: {e}")))?;
        Ok(Http {
            client,
            limit: Semaphore::new(MAX_PARALLEL),
        })
    }

    /// Start a GET; a non-success status is an error that names the URL.
    pub async fn get(
        &self,
        url: &Url,
        accept: &str,
        cred: Option<&Credential>,
    ) -> std::result::Result<reqwest::Response, Fault> {
        let mut req = self.client.get(url.clone()).header(ACCEPT, accept);
        if let Some(c) = cred {
            let value = match c {
                Credential::Bearer(t) => format!("Bearer {t}"),
                Credential::Basic(b) => format!("Basic {b}"),
            };
            let mut v = HeaderValue::from_str(&value).map_err(|_| {
                Fault::Fatal(Error::usage(
                    "a configured registry credential is not a valid header value",
                ))
            })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let shown = redact::url(url);
        let resp = req.send().await.map_err(|e| {
            Fault::Transient(Error::registry(format!(
                "cannot reach `{shown}`: {}",
                describe(e)
            )))
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let err = Error::registry(format!("`{shown}` answered HTTP {status}"));
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(Fault::Transient(err))
        } else if status.is_redirection() {
            Err(Fault::Fatal(
                Error::policy(format!(
                    "`{shown}` redirects to another host, which safex does not follow"
                ))
                .with_hint("point safex at a registry that serves tarballs from its own origin"),
            ))
        } else if status.as_u16() == 401 || status.as_u16() == 403 {
            Err(Fault::Fatal(err.with_hint(
                "the registry wants credentials: add `//host/:_authToken=...` for it to your `.npmrc`",
            )))
        } else {
            Err(Fault::Fatal(err))
        }
    }

    /// Run `op` with retries and exponential backoff on transient faults.
    pub async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Fault>>,
    {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let _permit = self
                .limit
                .acquire()
                .await
                .map_err(|_| Error::internal("request limiter closed"))?;
            match op().await {
                Ok(v) => return Ok(v),
                Err(Fault::Fatal(e)) => return Err(e),
                Err(Fault::Transient(e)) if attempt >= ATTEMPTS => {
                    return Err(Error {
                        message: format!("{} (after {attempt} attempts)", e.message),
                        ..e
                    }
                    .with_hint("check that the registry is up and reachable, then try again"));
                }
                Err(Fault::Transient(_)) => {}
            }
            drop(_permit);
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

/// The error and its causes, without the URL (which may carry credentials).
pub fn describe(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
