//! Tier 2's HTTP proxy, run by safex outside the program's network
//! namespace on the listener the helper created inside it: `CONNECT
//! host:port` (HTTPS and anything else tunnelled) and absolute-form
//! requests (`GET http://host/path`, plain HTTP), each checked against the
//! allow-list by host name and port, connected from safex's own network,
//! and written to the audit log (`net-connect`: host, port, decision).
//! Refused: `403` with the reason, which names the flag that would allow it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One entry of `allow_net`: `host`, `*.domain`, with or without a port
/// (without: any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    host: String,
    port: Option<u16>,
}

#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<Allowed>);

impl AllowList {
    pub fn new(entries: &[(String, Option<u16>)]) -> AllowList {
        AllowList(
            entries
                .iter()
                .map(|(h, p)| Allowed {
                    host: normalize(h),
                    port: *p,
                })
                .collect(),
        )
    }

    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = normalize(host);
        self.0.iter().any(|a| {
            let name = match a.host.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => a.host == host,
            };
            name && a.port.is_none_or(|p| p == port)
        })
    }
}

fn normalize(h: &str) -> String {
    h.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Serve until the listener fails (the namespace is gone with the program).
pub fn serve(listener: TcpListener, allow: AllowList, audit: crate::audit::Context) {
    let shared = Arc::new((allow, audit));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        std::thread::spawn(move || {
            let (allow, audit) = &*shared;
            let _ = handle(conn, allow, audit);
        });
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    /// `CONNECT`: a tunnel. Otherwise the request line to send upstream
    /// (origin form) and the rest of the head as read.
    forward: Option<Vec<u8>>,
}

fn handle(
    mut client: TcpStream,
    allow: &AllowList,
    audit: &crate::audit::Context,
) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (head, rest) = read_head(&mut client)?;
    let target = match parse(&head) {
        Ok(t) => t,
        Err(why) => {
            return respond(
                &mut client,
                "400 Bad Request",
                &format!("safex proxy: {why}\n"),
            );
        }
    };
    let method = if target.forward.is_none() {
        "CONNECT"
    } else {
        "forward"
    };
    if !allow.allows(&target.host, target.port) {
        audit.event(
            "net-connect",
            json!({"host": target.host, "port": target.port, "method": method, "decision": "deny"}),
        );
        return respond(
            &mut client,
            "403 Forbidden",
            &format!(
                "safex sandbox: {host}:{port} is not in the network allow-list; allow it with `--allow-net={host}:{port}` or in the policy's `sandbox.allow_net`\n",
                host = target.host,
                port = target.port
            ),
        );
    }
    let upstream = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| {
            addrs.find_map(|a| TcpStream::connect_timeout(&a, CONNECT_TIMEOUT).ok())
        });
    let outcome = if upstream.is_some() {
        "allow"
    } else {
        "unreachable"
    };
    audit.event(
        "net-connect",
        json!({"host": target.host, "port": target.port, "method": method, "decision": outcome}),
    );
    let Some(mut upstream) = upstream else {
        return respond(
            &mut client,
            "502 Bad Gateway",
            &format!(
                "safex proxy: cannot connect to {}:{}\n",
                target.host, target.port
            ),
        );
    };
    client.set_read_timeout(None)?;
    match &target.forward {
        None => client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?,
        Some(request) => upstream.write_all(request)?,
    }
    upstream.write_all(&rest)?;
    splice(client, upstream)
}

fn respond(client: &mut TcpStream, status: &str, body: &str) -> io::Result<()> {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(msg.as_bytes())
}

/// The request head (through the blank line) and whatever came after it.
fn read_head(client: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

fn parse(head: &[u8]) -> Result<Target, String> {
    let text = std::str::from_utf8(head).map_err(|_| "the request is not text")?;
    let (line, after) = text.split_once("\r\n").ok_or("no request line")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line `{line}`"));
    };
    if method == "CONNECT" {
        let (host, port) = host_port(target, None)?;
        return Ok(Target {
            host,
            port,
            forward: None,
        });
    }
    let rest = target.strip_prefix("http://").ok_or_else(|| {
        format!("`{method} {target}`: only CONNECT and http:// requests go through this proxy")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = host_port(authority, Some(80))?;
    let mut forward = format!("{method} {path} {version}\r\n").into_bytes();
    forward.extend_from_slice(after.as_bytes());
    Ok(Target {
        host,
        port,
        forward: Some(forward),
    })
}

/// `host:port`, `[v6]:port`, or `host` when a default port is given.
fn host_port(s: &str, default: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = super::grants::split_host_port(s).map_err(|e| e.message)?;
    let port = port
        .or(default)
        .ok_or_else(|| format!("`{s}` is not host:port"))?;
    Ok((host, port))
}

/// Copy both ways until each side is done.
fn splice(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let (mut c2, mut u2) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let (mut c, mut u) = (client, upstream);
    let _ = io::copy(&mut u, &mut c);
    let _ = c.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let t = parse(b"CONNECT Api.Example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.forward),
            ("api.example.com", 443, None)
        );
        let t = parse(b"GET http://h.example:8080/a?b HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("h.example", 8080));
        assert_eq!(
            t.forward.unwrap(),
            b"GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()
        );
        let t = parse(b"GET http://user:pw@h.example HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("h.example", 80));
        assert!(parse(b"GET /local HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(b"CONNECT nohost HTTP/1.1\r\n\r\n").is_err());
        let t = parse(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
    }

    #[test]
    fn allow_list() {
        let a = AllowList::new(&[
            ("api.example.com".into(), Some(443)),
            ("*.internal.example".into(), None),
            ("Localhost.".into(), None),
        ]);
        assert!(a.allows("API.example.com", 443));
        assert!(!a.allows("api.example.com", 80));
        assert!(!a.allows("evil-api.example.com", 443));
        assert!(a.allows("x.internal.example", 8443));
        assert!(!a.allows("internal.example", 443));
        assert!(!a.allows("x.internal.example.evil.com", 443));
        assert!(a.allows("localhost", 1));
    }
}
