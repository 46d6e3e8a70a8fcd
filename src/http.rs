//! The one HTTP client. rustls with the operating system's certificate store
//! (corporate TLS interception is normal on the laptops safex serves), plus
//! any extra CA files, added to the store rather than replacing it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use tokio::sync::Semaphore;
use url::Url;

use crate::error::{Error, Result};
use crate::redact;
use crate::redact::SafeUrl;

/// A credential sent to one registry or index origin (and path prefix):
/// from `.npmrc`, pip's URL userinfo or netrc.
#[derive(Clone)]
pub enum Credential {
    Bearer(String),
    /// Already base64 (`_auth`, or `username` + `_password`).
    Basic(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

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
    deadlines: Deadlines,
    /// The requests (redacted URLs) in [`Http::retry`] now: what a launch
    /// that runs out of time was still waiting for.
    pending: Mutex<Vec<String>>,
    /// URLs whose retries are spent, with the error: a second request for
    /// one in the same launch (the installer after a fetch-ahead guessed
    /// the same tarball) gets that error at once rather than as many
    /// attempts again, so the count in the message is what was sent, and a
    /// stall is waited out once, not twice.
    failed: Mutex<HashMap<String, Error>>,
}

/// How long safex waits on the network. An MCP client gives a server a few
/// minutes at most to start, and nobody watches it: every wait has an end,
/// and the error says which wait ended and where.
///
/// Set by `SAFEX_STALL_TIMEOUT`, `SAFEX_MIN_RATE`, `SAFEX_LAUNCH_TIMEOUT`,
/// `SAFEX_RETRY_AFTER_MAX` or the config file's keys of the same names
/// (README, "Network deadlines").
#[derive(Debug, Clone)]
pub struct Deadlines {
    /// No byte for this long, while connecting, waiting for the answer or
    /// reading the body: the request fails. Also the window the body's rate
    /// is averaged over.
    pub stall: Duration,
    /// Bytes per second a body must average over `stall` once it has run
    /// that long; 0 turns the floor off. Low on purpose (a working but slow
    /// link on a big file is still well above it): it is there to end a
    /// body that trickles in, not to judge a network.
    pub min_rate: u64,
    /// Every network wait of one launch ends by `started + launch`.
    pub launch: Duration,
    pub started: Instant,
    /// The longest `Retry-After` safex waits for; a server that asks for
    /// longer gets an error that says when to try again.
    pub retry_after_max: Duration,
}

impl Deadlines {
    /// The same deadlines with the launch counted from now: for a lookup
    /// that is not part of a launch (the current version for a hint, or
    /// for each server `safex mcp pin` pins).
    pub fn from_now(&self) -> Deadlines {
        Deadlines {
            started: Instant::now(),
            ..self.clone()
        }
    }
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            stall: Duration::from_secs(30),
            min_rate: 1024,
            launch: Duration::from_secs(120),
            started: Instant::now(),
            retry_after_max: Duration::from_secs(30),
        }
    }
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
    /// Worth another try after this long (the server's `Retry-After`).
    Later(Error, Duration),
    Fatal(Error),
    /// The server answered with a status another try will not change (404,
    /// 401, 403, ...): final, like [`Fault::Fatal`], and typed so that a
    /// caller can say what the status means for its request ("not found",
    /// "wants credentials") without reading the message.
    Refused {
        status: u16,
        error: Error,
    },
}

impl Fault {
    /// The same kind of fault with its error changed (context added).
    pub fn map(self, f: impl FnOnce(Error) -> Error) -> Fault {
        match self {
            Fault::Transient(e) => Fault::Transient(f(e)),
            Fault::Later(e, d) => Fault::Later(f(e), d),
            Fault::Fatal(e) => Fault::Fatal(f(e)),
            Fault::Refused { status, error } => Fault::Refused {
                status,
                error: f(error),
            },
        }
    }
}

impl Http {
    pub fn new(ca_files: &[PathBuf], deadlines: &Deadlines) -> Result<Http> {
        // Waits for the answer and for each part of the body are bounded
        // here, not by the client, so that the error can say which it was.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("safex/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(deadlines.stall)
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
            deadlines: deadlines.clone(),
            pending: Mutex::new(Vec::new()),
            failed: Mutex::new(HashMap::new()),
        })
    }

    /// A response's body, read under the stall and rate deadlines. `what`
    /// names it in messages ("the download of `URL`").
    pub fn body(&self, resp: reqwest::Response, what: String) -> Body {
        Body {
            resp,
            what,
            stall: self.deadlines.stall,
            pace: Pace::new(self.deadlines.min_rate, self.deadlines.stall),
        }
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
        self.answer(resp, &shown)
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
                return self.answer(resp, &redact::url(&current));
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
        let stall = self.deadlines.stall;
        let resp = match tokio::time::timeout(stall, req.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(send_fault(url, &shown, stall, e)),
            Err(_) => {
                return Err(Fault::Fatal(
                    Error::registry(format!(
                        "`{shown}` did not answer: no data for {}",
                        secs(stall)
                    ))
                    .with_hint(STALL_HINT),
                ));
            }
        };
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
    /// requests, with retries and exponential backoff on transient faults
    /// (or the wait the server asked for), and within the launch deadline.
    pub async fn retry<T, F, Fut>(&self, url: &Url, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Fault>>,
    {
        let failed = |f: &Mutex<HashMap<String, Error>>| {
            f.lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(url.as_str())
                .cloned()
        };
        if let Some(e) = failed(&self.failed) {
            return Err(e);
        }
        let shown = redact::url(url);
        let _pending = Pending::add(&self.pending, shown);
        let ends = self.deadlines.started + self.deadlines.launch;
        let result = match tokio::time::timeout_at(ends.into(), self.attempts(url, op)).await {
            Ok(r) => r,
            Err(_) => Err(self.out_of_time()),
        };
        if let Err(e) = &result {
            self.failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(url.as_str().to_owned(), e.clone());
        }
        result
    }

    async fn attempts<T, F, Fut>(&self, url: &Url, mut op: F) -> Result<T>
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
            let wait = match op().await {
                Ok(v) => return Ok(v),
                Err(Fault::Fatal(e) | Fault::Refused { error: e, .. }) => return Err(e),
                Err(Fault::Transient(e) | Fault::Later(e, _)) if attempt >= ATTEMPTS => {
                    let tries = if attempt == 1 {
                        "1 attempt".to_owned()
                    } else {
                        format!("{attempt} attempts")
                    };
                    return Err(Error {
                        message: format!("{} (after {tries})", e.message),
                        ..e
                    }
                    .with_hint("check that the registry is up and reachable, then try again"));
                }
                Err(Fault::Transient(_)) => delay,
                Err(Fault::Later(_, after)) => after,
            };
            drop(_permit);
            drop(_origin_permit);
            tokio::time::sleep(wait).await;
            delay *= 2;
            attempt += 1;
        }
    }

    /// The launch ran out of time: say how long it had and what it was
    /// still waiting for.
    fn out_of_time(&self) -> Error {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut waiting: Vec<String> = Vec::new();
        for p in pending.iter() {
            if !waiting.contains(p) {
                waiting.push(p.clone());
            }
        }
        let more = waiting.len().saturating_sub(5);
        let mut list = waiting
            .iter()
            .take(5)
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        Error::registry(format!(
            "the launch did not finish within {} (`{}`); still waiting for {list}",
            secs(self.deadlines.launch),
            crate::env_vars::SAFEX_LAUNCH_TIMEOUT
        ))
        .with_hint(format!(
            "the registry answers too slowly; try again, or raise `{}` (seconds) if this link is known to be slow",
            crate::env_vars::SAFEX_LAUNCH_TIMEOUT
        ))
    }

    /// A response as a result: success, or an error that names the URL.
    fn answer(
        &self,
        resp: reqwest::Response,
        shown: &str,
    ) -> std::result::Result<reqwest::Response, Fault> {
        let status = resp.status();
        if (status.as_u16() == 429 || status.as_u16() == 503)
            && let Some(after) = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, SystemTime::now()))
        {
            let err = Error::registry(format!("`{shown}` answered HTTP {status}"));
            let cap = self.deadlines.retry_after_max;
            if after <= cap {
                return Err(Fault::Later(err, after));
            }
            let when = crate::time::format_rfc3339(SystemTime::now() + after);
            return Err(Fault::Fatal(
                Error::registry(format!(
                    "`{shown}` answered HTTP {status} and asks to be tried again in {} (at {when}), longer than safex waits ({})",
                    secs(after),
                    secs(cap)
                ))
                .with_hint(format!(
                    "try again after {when}; `{}` sets the longest wait safex accepts",
                    crate::env_vars::SAFEX_RETRY_AFTER_MAX
                )),
            ));
        }
        answer(resp, shown)
    }
}

/// Keeps a request in [`Http::pending`] while it is in flight.
struct Pending<'a> {
    list: &'a Mutex<Vec<String>>,
    shown: String,
}

impl<'a> Pending<'a> {
    fn add(list: &'a Mutex<Vec<String>>, shown: String) -> Pending<'a> {
        list.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(shown.clone());
        Pending { list, shown }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = list.iter().position(|p| *p == self.shown) {
            list.swap_remove(i);
        }
    }
}

const STALL_HINT: &str =
    "the registry (or a proxy on the way) stopped answering; check that it is up, then try again";

/// `30 s`, `1.5 s`.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A failed send as a fault: a timeout (connecting took longer than the
/// stall deadline) and a scheme that does not match the port's protocol
/// end at once, in words; anything else may be a passing fault.
fn send_fault(url: &Url, shown: &str, stall: Duration, e: reqwest::Error) -> Fault {
    if e.is_timeout() {
        return Fault::Fatal(
            Error::registry(format!(
                "cannot connect to `{shown}`: no data for {}",
                secs(stall)
            ))
            .with_hint(STALL_HINT),
        );
    }
    let chain = describe(e);
    // rustls, reading an HTTP answer where a TLS record should be.
    if url.scheme() == "https" && chain.contains("InvalidContentType") {
        return Fault::Fatal(
            Error::registry(format!(
                "the server at `{shown}` answered in plain HTTP, not TLS: use `http://` or check the port"
            ))
            .with_hint("the URL says `https://`, but that port speaks plain HTTP"),
        );
    }
    // hyper, reading a TLS alert where an HTTP status line should be.
    if url.scheme() == "http" && chain.contains("invalid HTTP version") {
        return Fault::Fatal(
            Error::registry(format!(
                "the server at `{shown}` did not answer in plain HTTP (it may expect TLS): use `https://` or check the port"
            ))
            .with_hint("the URL says `http://`, but that port does not speak plain HTTP"),
        );
    }
    Fault::Transient(Error::registry(format!("cannot reach `{shown}`: {chain}")))
}

/// A `Retry-After` value (delay in seconds, or an HTTP-date) as a wait from
/// `now`; a date in the past is no wait.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(n) = value.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let at = crate::time::parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A response body read under the deadlines: a stall (no byte for
/// [`Deadlines::stall`]) ends it, and so does a rate below
/// [`Deadlines::min_rate`] averaged over the last `stall`.
pub struct Body {
    resp: reqwest::Response,
    what: String,
    stall: Duration,
    pace: Pace,
}

impl Body {
    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> std::result::Result<Option<bytes::Bytes>, Fault> {
        let next = tokio::time::timeout(self.stall, self.resp.chunk()).await;
        match next {
            Err(_) => Err(Fault::Fatal(
                Error::registry(format!(
                    "{} stalled: no data for {}",
                    self.what,
                    secs(self.stall)
                ))
                .with_hint(STALL_HINT),
            )),
            Ok(Err(e)) => Err(Fault::Transient(Error::registry(format!(
                "{} broke off: {}",
                self.what,
                describe(e)
            )))),
            Ok(Ok(None)) => Ok(None),
            Ok(Ok(Some(b))) => {
                if let Some((bytes, span)) = self.pace.record(b.len() as u64, Instant::now()) {
                    return Err(Fault::Fatal(
                        Error::registry(format!(
                            "{} is too slow: {bytes} bytes in the last {}, below the floor of {} bytes/s",
                            self.what,
                            secs(span),
                            self.pace.floor
                        ))
                        .with_hint(format!(
                            "the registry (or a proxy) sends data too slowly; try again, or lower `{}` (bytes per second, 0 for no floor) if this link is known to be slow",
                            crate::env_vars::SAFEX_MIN_RATE
                        )),
                    ));
                }
                Ok(Some(b))
            }
        }
    }

    /// The whole body.
    pub async fn all(mut self) -> std::result::Result<Vec<u8>, Fault> {
        let mut out = Vec::new();
        while let Some(b) = self.chunk().await? {
            out.extend_from_slice(&b);
        }
        Ok(out)
    }
}

/// The rate of a body over a sliding window: a few marks (time, bytes so
/// far), one per eighth of the window at most, so that the memory stays
/// small at any speed.
struct Pace {
    floor: u64,
    window: Duration,
    total: u64,
    marks: VecDeque<(Instant, u64)>,
}

impl Pace {
    fn new(floor: u64, window: Duration) -> Pace {
        Pace {
            floor,
            window,
            total: 0,
            marks: VecDeque::from([(Instant::now(), 0)]),
        }
    }

    /// Count `n` bytes arriving at `now`; `Some((bytes, span))` when the
    /// body ran at least a window and the bytes of the last `span` (a
    /// window or a little more) are below the floor.
    fn record(&mut self, n: u64, now: Instant) -> Option<(u64, Duration)> {
        self.total += n;
        let last = self.marks.back().map(|m| m.0).unwrap_or(now);
        if now.saturating_duration_since(last) >= self.window / 8 {
            self.marks.push_back((now, self.total));
        }
        if self.floor == 0 {
            return None;
        }
        let start = now.checked_sub(self.window)?;
        // Keep the newest mark at or before the window's start.
        while self.marks.len() >= 2 && self.marks[1].0 <= start {
            self.marks.pop_front();
        }
        let (t0, b0) = *self.marks.front()?;
        let span = now.saturating_duration_since(t0);
        if span < self.window {
            return None;
        }
        let bytes = self.total - b0;
        ((bytes as f64) < self.floor as f64 * span.as_secs_f64()).then_some((bytes, span))
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
        Err(Fault::Refused {
            status: status.as_u16(),
            error: err.with_hint(
                "the server wants credentials safex did not send: an npm registry's go in `.npmrc` (`//host/:_authToken=...`), a Python index's in its URL or `~/.netrc`; safex sends none to another origin",
            ),
        })
    } else {
        Err(Fault::Refused {
            status: status.as_u16(),
            error: err,
        })
    }
}

/// The base URL of an npm registry (`what` = "registry") or a PyPI index
/// ("index"), checked by one rule for both: `https`; plain `http` only on
/// loopback or on a host the policy lists in `registries.allowed_hosts`; a
/// trailing `/` so that joins stay below it. Userinfo is kept: it is the
/// credential for that origin, sent to it only.
pub fn parse_base_url(
    raw: &str,
    what: &str,
    source: &str,
    allowed_hosts: Option<&[String]>,
) -> Result<SafeUrl> {
    let mut s = raw.trim().to_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    let example = if what == "index" {
        "https://index.example.com/simple/"
    } else {
        "https://registry.example.com/"
    };
    let url = Url::parse(&s).map_err(|e| {
        Error::usage(format!("{what} URL from {source} is invalid: {e}"))
            .with_hint(format!("a {what} URL looks like `{example}`"))
    })?;
    let allowed = |url: &Url| {
        url.host_str().is_some_and(|h| {
            allowed_hosts.is_some_and(|a| a.iter().any(|x| x.eq_ignore_ascii_case(h)))
        })
    };
    match url.scheme() {
        "https" => Ok(SafeUrl::new(url)),
        "http" if is_loopback(&url) || allowed(&url) => Ok(SafeUrl::new(url)),
        "http" => Err(Error::policy(format!(
            "{what} `{}` from {source} is plain http on a non-loopback host",
            crate::redact::url(&url)
        ))
        .with_hint("use https; plain http is allowed only on 127.0.0.1, ::1 and localhost, or on a host the policy lists in `registries.allowed_hosts`")),
        other => Err(
            Error::usage(format!("{what} URL from {source} has scheme `{other}`"))
                .with_hint("use an `https://` URL"),
        ),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
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

    /// One rule for npm registries and PyPI indexes: `registries.
    /// allowed_hosts` admits plain http on a listed host for both
    /// (`docs/policy.md`), and nowhere else but loopback.
    #[test]
    fn registry_and_index_urls_follow_one_rule() {
        let allowed = ["pkgs.corp.example".to_owned()];
        for (url, hosts, ok) in [
            ("https://r.example/x", None, true),
            ("http://127.0.0.1:4873", None, true),
            ("http://pkgs.corp.example/simple", None, false),
            ("http://pkgs.corp.example/simple", Some(&allowed[..]), true),
            ("http://PKGS.corp.example/simple", Some(&allowed[..]), true),
            ("http://other.corp.example/", Some(&allowed[..]), false),
            ("ftp://pkgs.corp.example/", Some(&allowed[..]), false),
        ] {
            for what in ["registry", "index"] {
                let got = parse_base_url(url, what, "t", hosts);
                assert_eq!(got.is_ok(), ok, "{what} {url} {hosts:?}: {got:?}");
                if let Ok(u) = got {
                    assert!(u.url().as_str().ends_with('/'), "{u}");
                }
            }
        }
    }
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = crate::time::parse_rfc3339("1994-11-06T08:49:30Z").unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                retry_after(date, now),
                Some(Duration::from_secs(7)),
                "{date}"
            );
        }
        // In the past: no wait.
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "soon",
            "-5",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn pace_cuts_off_a_trickle_but_not_a_slow_steady_body() {
        let window = Duration::from_secs(30);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 10 bytes/s: judged only once a window has passed, then too slow.
        let mut p = Pace::new(1024, window);
        p.marks = VecDeque::from([(t0, 0)]);
        let mut cut = None;
        for i in 1..=400u64 {
            if let Some(c) = p.record(1, at(i * 100)) {
                cut = Some((i * 100, c));
                break;
            }
        }
        let (when, (bytes, span)) = cut.expect("a trickle is cut off");
        assert!((30_000..=34_000).contains(&when), "cut at {when} ms");
        assert!(
            span >= window && bytes < 1024 * span.as_secs(),
            "{bytes} in {span:?}"
        );
        // 2 KiB/s for five minutes with pauses: never cut off, few marks.
        let mut p = Pace::new(1024, window);
        p.marks = VecDeque::from([(t0, 0)]);
        for i in 1..=3000u64 {
            assert_eq!(p.record(200, at(i * 100)), None, "at {i}");
        }
        assert!(p.marks.len() <= 10, "{} marks", p.marks.len());
        // Floor 0: off.
        let mut p = Pace::new(0, window);
        assert_eq!(p.record(1, t0 + Duration::from_secs(100)), None);
    }

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
                    std::thread::sleep(Duration::from_millis(100));
                    // Counted down before answering: the client can open its
                    // next connection only once this answer is in, so a
                    // loaded machine cannot make the count overshoot.
                    open.fetch_sub(1, Ordering::SeqCst);
                    let _ = stream.write_all(
                        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                    let _ = stream.flush();
                    drop(stream);
                });
            }
        });
        (url, most)
    }

    #[test]
    fn an_http1_origin_gets_a_few_connections_at_a_time() {
        let (url, most) = slow_server();
        let http = Arc::new(Http::new(&[], &Deadlines::default()).unwrap());
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
