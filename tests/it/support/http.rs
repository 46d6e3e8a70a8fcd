//! The HTTP/1.1 engine both in-process fixtures (npm registry, PyPI index)
//! serve with: an accept loop on 127.0.0.1, keep-alive connections, a
//! request log, and per-path faults (status, reset, truncation, slowness).
//! Each fixture supplies only its routes, through [`Routes`].

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A way for one path to misbehave.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and the fixture's error body.
    Status(u16),
    /// Close the connection without answering; the unread request makes the
    /// kernel send a TCP reset.
    Reset,
    /// Promise the whole body in `Content-Length`, send half, close.
    Truncate,
    /// Wait this long before the first byte of the response.
    SlowFirstByte(Duration),
    /// Send the body in `chunk`-byte pieces with `delay` between them.
    SlowBody { chunk: usize, delay: Duration },
    /// Answer `302 Found` with this `Location` (blob storage behind a registry).
    Redirect(String),
    /// Read the request, then say nothing and keep the connection open until
    /// the server stops (a registry that accepts and hangs).
    Silent,
    /// Answer with this status and a `Retry-After` header of this value
    /// (seconds, or an HTTP-date).
    RetryAfter(u16, String),
    /// Send the first half of the body with a `Content-Length` that says
    /// that half is all of it (a proxy that cut the body and its length):
    /// the length matches, the hash does not.
    CutShort,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target exactly as sent.
    pub target: String,
    /// The target as the fixture normalizes it ([`Routes::normalize`]).
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Arc<Vec<u8>>,
    pub location: Option<String>,
}

impl Response {
    pub fn ok(content_type: &str, body: impl Into<Arc<Vec<u8>>>) -> Response {
        Response {
            status: 200,
            content_type: content_type.into(),
            body: body.into(),
            location: None,
        }
    }
}

/// What a fixture's state provides to the engine.
pub trait Routes: Send + 'static {
    fn route(&self, req: &Request, port: u16) -> Response;
    /// The response for an error status (also for [`Fault::Status`]).
    fn error(status: u16) -> Response;
    /// The request target as the fixture keys paths (faults, the log).
    fn normalize(target: &str) -> String;
}

/// The server state: the fixture's own, plus faults and the request log.
pub struct Locked<S> {
    pub app: S,
    pub faults: HashMap<String, VecDeque<(Fault, usize)>>,
    pub log: Vec<Request>,
}

struct Shared<S> {
    state: Mutex<Locked<S>>,
    stopping: AtomicBool,
}

/// A running server; dropping it stops the accept loop.
pub struct Server<S> {
    addr: SocketAddr,
    shared: Arc<Shared<S>>,
}

impl<S: Routes> Server<S> {
    pub fn start(app: S) -> Server<S> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(Locked {
                app,
                faults: HashMap::new(),
                log: Vec::new(),
            }),
            stopping: AtomicBool::new(false),
        });
        let accept = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept.clone();
                thread::spawn(move || serve_connection(stream, &shared));
            }
        });
        Server { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> MutexGuard<'_, Locked<S>> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S> Drop for Server<S> {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve_connection<S: Routes>(mut stream: TcpStream, shared: &Shared<S>) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    // A TLS client hello (record type 22) on this plain-HTTP port gets the
    // answer a real HTTP server gives to bytes that are not HTTP.
    let mut first = [0u8; 1];
    if stream.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        let _ = stream.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    loop {
        // Peek rather than read, so that a `Reset` fault can close the
        // socket with the request still unread (which makes it an RST).
        let Some((head_len, head)) = peek_head(&stream) else {
            return;
        };
        let Some(req) = parse_head::<S>(&head) else {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            return;
        };
        let port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
        let (fault, response) = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.log.push(req.clone());
            let fault = take_fault(&mut st.faults, &req.path);
            (fault, st.app.route(&req, port))
        };
        if matches!(fault, Some(Fault::Reset)) {
            return; // dropped with unread bytes: reset
        }
        let mut head_bytes = vec![0; head_len];
        if stream.read_exact(&mut head_bytes).is_err() || !skip_body(&mut stream, &req) {
            return;
        }
        if matches!(fault, Some(Fault::Silent)) {
            let until = Instant::now() + Duration::from_secs(600);
            while !shared.stopping.load(Ordering::SeqCst) && Instant::now() < until {
                thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        let mut response = match &fault {
            Some(Fault::Status(code)) | Some(Fault::RetryAfter(code, _)) => S::error(*code),
            Some(Fault::Redirect(to)) => Response {
                status: 302,
                location: Some(to.clone()),
                ..S::error(302)
            },
            _ => response,
        };
        if let Some(Fault::CutShort) = &fault {
            let half = response.body[..response.body.len() / 2].to_vec();
            response.body = Arc::new(half);
        }
        if let Some(Fault::SlowFirstByte(d)) = &fault {
            thread::sleep(*d);
        }
        let closing = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if !write_response(&mut stream, &req, &response, fault.as_ref(), closing) || closing {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// The request head (up to and excluding the blank line) and its length
/// including the blank line, or `None` at end of stream.
fn peek_head(stream: &TcpStream) -> Option<(usize, String)> {
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + IDLE_TIMEOUT;
    loop {
        let n = stream.peek(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return Some((end + 4, String::from_utf8_lossy(&buf[..end]).into_owned()));
        }
        if n == buf.len() || Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn parse_head<S: Routes>(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let path = S::normalize(&target);
    Some(Request {
        method,
        target,
        path,
        headers,
    })
}

fn skip_body(stream: &mut TcpStream, req: &Request) -> bool {
    let len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut stream.take(len), &mut std::io::sink()).is_ok_and(|n| n == len)
}

fn take_fault(faults: &mut HashMap<String, VecDeque<(Fault, usize)>>, path: &str) -> Option<Fault> {
    let queue = faults.get_mut(path)?;
    let (fault, left) = queue.front_mut()?;
    let fault = fault.clone();
    *left -= 1;
    if *left == 0 {
        queue.pop_front();
    }
    Some(fault)
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Write one response; `false` if the connection must (or did) end.
fn write_response(
    stream: &mut TcpStream,
    req: &Request,
    resp: &Response,
    fault: Option<&Fault>,
    closing: bool,
) -> bool {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nVary: Accept\r\nConnection: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
        if closing { "close" } else { "keep-alive" },
    );
    if let Some(loc) = &resp.location {
        head.push_str(&format!("Location: {loc}\r\n"));
    }
    if let Some(Fault::RetryAfter(_, after)) = fault {
        head.push_str(&format!("Retry-After: {after}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    let body: &[u8] = if req.method == "HEAD" {
        &[]
    } else {
        &resp.body
    };
    match fault {
        Some(Fault::Truncate) => {
            let _ = stream.write_all(&body[..body.len() / 2]);
            let _ = stream.flush();
            false
        }
        Some(Fault::SlowBody { chunk, delay }) => {
            for piece in body.chunks((*chunk).max(1)) {
                if stream
                    .write_all(piece)
                    .and_then(|_| stream.flush())
                    .is_err()
                {
                    return false;
                }
                thread::sleep(*delay);
            }
            true
        }
        _ => stream.write_all(body).is_ok(),
    }
}

/// The fixture's own fields read through the lock as if they were its own.
impl<S> std::ops::Deref for Locked<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.app
    }
}

impl<S> std::ops::DerefMut for Locked<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.app
    }
}
