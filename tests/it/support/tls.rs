//! An HTTPS front for a fixture server: TLS on 127.0.0.1 for the name
//! `localhost`, with a throwaway CA made by `openssl` (safex trusts it through
//! `SAFEX_CA_FILE`), passing each request on to the plain-HTTP fixture. It
//! makes "a file on another HTTPS host" real: another origin, real TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TlsFront {
    /// `https://localhost:<port>`.
    pub base: String,
    /// The CA certificate (PEM) that signed the front's certificate.
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    /// Serve HTTPS for `backend` (a plain-HTTP server on 127.0.0.1).
    /// Panics, saying why, when `openssl` is missing: a test that needs
    /// HTTPS must not pass without it.
    pub fn new(backend: SocketAddr) -> TlsFront {
        let dir = tempfile::tempdir().unwrap();
        make_certs(dir.path());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.path().join("leaf.pem"))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.path().join("leaf.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        // Its own listener: TLS is the point; the HTTP behind it is the
        // fixture's engine, reached by relaying each decrypted connection.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let config = config.clone();
                std::thread::spawn(move || relay(stream, config, backend));
            }
        });
        TlsFront {
            base: format!("https://localhost:{port}"),
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("this test needs `openssl` on PATH to make a test CA: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=safex test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "leaf.key", "-out", "leaf.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
}

/// One client connection: each request is read whole (GET and HEAD have no
/// body), passed to the backend on a fresh connection with
/// `Connection: close`, and the answer sent back; then the connection ends.
fn relay(stream: TcpStream, config: Arc<rustls::ServerConfig>, backend: SocketAddr) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines: Vec<&str> = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let request = format!("{}\r\n\r\n", lines.join("\r\n"));
    let Ok(mut up) = TcpStream::connect(backend) else {
        return;
    };
    if up.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    let _ = tls.write_all(&answer);
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
