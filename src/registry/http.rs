//! The one HTTP client. rustls with the operating system's certificate store
//! (corporate TLS interception is normal on the laptops safex serves), plus
//! any extra CA files, added to the store rather than replacing it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use tokio::sync::Semaphore;
use url::Url;

use crate::error::{Error, Result};
use crate::redact;
use crate::settings::Credential;

/// Parallel requests in flight at most (metadata and archives together).
pub const MAX_PARALLEL: usize = 64;
/// Parallel requests to an origin that answers over HTTP/1.x, as browsers
/// allow: each request there is a connection of its own, and a small server
/// (pypiserver's default one keeps 5 pending connections) drops those beyond
/// its backlog, which then wait a full second for the TCP retry.
pub const PER_ORIGIN_HTTP1: usize = 6;
const ATTEMPTS: u32 = 4;
/// Redirects to other origins an archive download may take.
const MAX_HOPS: usize = 5;

pub struct Http {
    client: reqwest::Client,
    limit: Semaphore,
    origins: Mutex<HashMap<String, Arc<OriginLimit>>>,
}

/// One origin's budget of parallel requests: one until it has answered and
/// its protocol is known (so that a burst does not open a connection per
/// request to a server that multiplexes them all over one), then
/// [`PER_ORIGIN_HTTP1`] for HTTP/1.x or [`MAX_PARALLEL`] for HTTP/2.
struct OriginLimit {
    permits: Semaphore,
    known: AtomicBool,
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
        for path in extra_ca_files(ca_files) {
            let Ok(pem) = std::fs::read(&path) else {
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
            origins: Mutex::new(HashMap::new()),
        })
    }

    fn origin(&self, url: &Url) -> Arc<OriginLimit> {
        let key = url.origin().ascii_serialization();
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        origins
            .entry(key)
            .or_insert_with(|| {
                Arc::new(OriginLimit {
                    permits: Semaphore::new(1),
                    known: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Start a GET; a non-success status is an error that names the URL.
    /// Redirects are followed within the origin only: metadata comes from
    /// the registry itself.
    pub async fn get(
        &self,
        url: &Url,
        accept: &str,
        cred: Option<&Credential>,
    ) -> std::result::Result<reqwest::Response, Fault> {
        let resp = self.get_raw(url, accept, cred).await?;
        let shown = redact::url(url);
        answer(resp, &shown)
    }

    /// Start the GET of an archive, following redirects to other origins
    /// (blob storage behind a registry) when `allow` accepts the next URL.
    /// The credential goes only to `url`'s own origin: a hop elsewhere is
    /// sent without it. Same-origin hops the client follows by itself.
    pub async fn get_archive(
        &self,
        url: &Url,
        cred: Option<&Credential>,
        allow: &(dyn Fn(&Url) -> Result<()> + Sync),
    ) -> std::result::Result<reqwest::Response, Fault> {
        let mut current = url.clone();
        for _ in 0..MAX_HOPS {
            let cred = if current.origin() == url.origin() {
                cred
            } else {
                None
            };
            let resp = self
                .get_raw(&current, "application/octet-stream", cred)
                .await?;
            if !resp.status().is_redirection() {
                return answer(resp, &redact::url(&current));
            }
            let shown = redact::url(resp.url());
            let next = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
                .ok_or_else(|| {
                    Fault::Fatal(Error::registry(format!(
                        "`{shown}` answered HTTP {} without a usable `Location`",
                        resp.status()
                    )))
                })?;
            allow(&next).map_err(Fault::Fatal)?;
            current = next;
        }
        Err(Fault::Fatal(Error::registry(format!(
            "`{}` redirects more than {MAX_HOPS} times",
            redact::url(url)
        ))))
    }

    async fn get_raw(
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
        let origin = self.origin(url);
        if !origin.known.swap(true, Ordering::Relaxed) {
            origin
                .permits
                .add_permits(if resp.version() >= reqwest::Version::HTTP_2 {
                    MAX_PARALLEL
                } else {
                    PER_ORIGIN_HTTP1 - 1
                });
        }
        Ok(resp)
    }

    /// Run `op`, a request to `url`, within the limits on parallel
    /// requests, with retries and exponential backoff on transient faults.
    pub async fn retry<T, F, Fut>(&self, url: &Url, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Fault>>,
    {
        let closed = |_| Error::internal("request limiter closed");
        let origin = self.origin(url);
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let _origin_permit = origin.permits.acquire().await.map_err(closed)?;
            let _permit = self.limit.acquire().await.map_err(closed)?;
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
            drop(_origin_permit);
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

/// A response as a result: success, or an error that names the URL.
fn answer(resp: reqwest::Response, shown: &str) -> std::result::Result<reqwest::Response, Fault> {
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
            .with_hint("safex reads metadata only from the configured registry's own origin; configure the URL it redirects to"),
        ))
    } else if status.as_u16() == 401 || status.as_u16() == 403 {
        Err(Fault::Fatal(err.with_hint(
            "the registry wants credentials: add `//host/:_authToken=...` for it to your `.npmrc`",
        )))
    } else {
        Err(Fault::Fatal(err))
    }
}

/// The extra CA files worth reading: each file once (npm's `cafile` and
/// `NODE_EXTRA_CA_CERTS` often name the same bundle), and not the bundle
/// that `SSL_CERT_FILE` names, which the system store already loaded.
/// Parsing a full bundle again costs more than the rest of a warm launch.
fn extra_ca_files(ca_files: &[PathBuf]) -> Vec<PathBuf> {
    let system = crate::env_vars::get("SSL_CERT_FILE").map(PathBuf::from);
    distinct_ca_files(ca_files, system.as_deref())
}

/// `ca_files` without repeats and without `system` (compared as canonical
/// paths), in their order.
fn distinct_ca_files(ca_files: &[PathBuf], system: Option<&std::path::Path>) -> Vec<PathBuf> {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let mut seen: Vec<PathBuf> = system.map(canonical).into_iter().collect();
    let mut out = Vec::new();
    for path in ca_files {
        let c = canonical(path);
        if !seen.contains(&c) {
            seen.push(c);
            out.push(path.clone());
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_ca_bundle_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        let other = dir.path().join("corp.pem");
        std::fs::write(&bundle, "x").unwrap();
        std::fs::write(&other, "y").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&bundle, dir.path().join("link.pem")).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&bundle, dir.path().join("link.pem")).unwrap();
        let files = vec![
            bundle.clone(),
            dir.path().join("link.pem"),
            other.clone(),
            other.clone(),
        ];
        let expect_link = if cfg!(unix) { 0 } else { 1 };
        assert_eq!(distinct_ca_files(&files, None).len(), 2 + expect_link);
        // The system bundle is in the store already.
        let left = distinct_ca_files(&files, Some(&bundle));
        assert!(!left.contains(&bundle), "{left:?}");
        assert!(left.contains(&other), "{left:?}");
        // A file that does not exist is kept (reading it is skipped later).
        let missing = dir.path().join("missing.pem");
        assert_eq!(
            distinct_ca_files(std::slice::from_ref(&missing), None),
            vec![missing]
        );
    }

    /// An HTTP/1.0 server that answers one connection at a time after a
    /// pause, counting how many connections are open at once.
    fn slow_server() -> (Url, Arc<AtomicUsize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (open2, most2) = (open.clone(), most.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (open, most) = (open2.clone(), most2.clone());
                std::thread::spawn(move || {
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    std::thread::sleep(Duration::from_millis(30));
                    let _ = stream.write_all(
                        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                    let _ = stream.flush();
                    drop(stream);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (url, most)
    }

    #[test]
    fn an_http1_origin_gets_a_few_connections_at_a_time() {
        let (url, most) = slow_server();
        let http = Arc::new(Http::new(&[]).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let bodies = rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..3 * PER_ORIGIN_HTTP1 {
                let (http, url) = (http.clone(), url.clone());
                tasks.spawn(async move {
                    http.retry(&url, || async {
                        let resp = http.get(&url, "*/*", None).await?;
                        resp.bytes()
                            .await
                            .map_err(|e| Fault::Transient(Error::registry(describe(e))))
                    })
                    .await
                });
            }
            let mut bodies = Vec::new();
            while let Some(r) = tasks.join_next().await {
                bodies.push(r.unwrap().unwrap());
            }
            bodies
        });
        assert_eq!(bodies.len(), 3 * PER_ORIGIN_HTTP1);
        assert!(bodies.iter().all(|b| &b[..] == b"ok"));
        let most = most.load(Ordering::SeqCst);
        assert!(
            (2..=PER_ORIGIN_HTTP1).contains(&most),
            "{most} connections at once"
        );
    }
}
