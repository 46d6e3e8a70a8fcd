//! The simple-index client: project pages fetched once each, with the index's credential.
//!
//! A page is fetched at most once per run (ahead of need when asked), never
//! with userinfo in the URL, and read into the project's files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use url::Url;

use crate::env_vars as ev;
use crate::env_vars::PIP_INDEX_URL;
use crate::error::{Error, Result};
use crate::http::{Fault, Http};
use crate::pypi::config::PypiConfig;
use crate::pypi::simple::{IndexFile, project_files, without_userinfo};
use crate::pypi::tags::{normalize, valid_project_name};
use crate::redact;

/// PEP 691 content negotiation: JSON preferred, HTML (PEP 503) accepted.
const SIMPLE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// Project pages, fetched at most once each per run, and ahead of need
/// (`prefetch`) so that the resolver rarely waits on the network.
pub(crate) struct SimpleIndex {
    http: Arc<Http>,
    config: Arc<PypiConfig>,
    cells: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One project page, fetched once; the error is kept so every waiter sees it.
type Slot = OnceCell<std::result::Result<Arc<Vec<IndexFile>>, Error>>;

impl SimpleIndex {
    pub(crate) fn new(http: Arc<Http>, config: Arc<PypiConfig>) -> Arc<Self> {
        Arc::new(SimpleIndex {
            http,
            config,
            cells: Mutex::new(HashMap::new()),
        })
    }

    fn cell(&self, name: &str) -> Arc<Slot> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(name.to_owned()).or_default().clone()
    }

    /// Start fetching in the background; `project` picks up the result.
    pub(crate) fn prefetch(self: &Arc<Self>, name: &str) {
        if !valid_project_name(name) {
            return; // `project` says why
        }
        let name = normalize(name);
        let cell = self.cell(&name);
        if cell.initialized() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            cell.get_or_init(|| me.fetch(name.clone())).await;
        });
    }

    /// The files of a project (PEP 503-normalized name), from `<index>/<name>/`.
    pub(crate) async fn project(&self, name: &str) -> Result<Vec<IndexFile>> {
        if !valid_project_name(name) {
            return Err(Error::usage(format!(
                "`{}` is not a valid Python project name",
                name.escape_debug()
            ))
            .with_hint("a name has letters, digits, `-`, `_` and `.`, and starts and ends with a letter or digit"));
        }
        let name = normalize(name);
        let cell = self.cell(&name);
        let files = cell
            .get_or_init(|| self.fetch(name.clone()))
            .await
            .clone()?;
        Ok(files.as_ref().clone())
    }

    async fn fetch(&self, name: String) -> Result<Arc<Vec<IndexFile>>> {
        let index = self.config.index()?;
        let url = index
            .join(&format!("{name}/"))
            .map_err(|e| Error::internal(format!("cannot build the URL of `{name}`: {e}")))?;
        let cred = self.config.credential_for(&url);
        let url = without_userinfo(&url);
        let shown = redact::url(index);
        let (page, json, bytes) = self
            .http
            .retry(&url, || async {
                let resp = match self.http.get(&url, SIMPLE_ACCEPT, cred.as_ref()).await {
                    Err(Fault::Refused { status: 404, .. }) => {
                        return Err(Fault::Fatal(
                            Error::registry(format!(
                                "project `{name}` was not found on the index `{shown}`"
                            ))
                            .with_hint(format!(
                                "check the name, and that the index (`--index-url`, `{}`, `{PIP_INDEX_URL}` or `pip.conf`) is the one that has it{}",
                                ev::SAFEX_PYPI_INDEX,
                                if self.config.extra.is_empty() {
                                    ""
                                } else {
                                    "; safex reads only that one index, never the extra indexes configured for pip or uv (`extra-index-url`, `PIP_EXTRA_INDEX_URL`, `UV_INDEX`), so that another index cannot supply a project of the same name"
                                }
                            )),
                        ));
                    }
                    Err(f) => return Err(auth_hint(f).map(|e| in_context(&name, e))),
                    Ok(r) => r,
                };
                let page = without_userinfo(resp.url());
                let json = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case(SIMPLE_JSON));
                let bytes = self
                    .http
                    .body(
                        resp,
                        format!("reading the index page of `{name}` from `{shown}`"),
                    )
                    .all()
                    .await?;
                Ok((page, json, bytes))
            })
            .await?;
        Ok(Arc::new(project_files(&name, &page, json, &bytes)?))
    }

    /// The bytes at `url` (a PEP 658 metadata file, say), with the index's
    /// credential if `url` is on its origin. Userinfo in `url` is not sent.
    pub(crate) async fn get_bytes(&self, url: &Url) -> Result<Vec<u8>> {
        let cred = self.config.credential_for(url);
        let url = without_userinfo(url);
        let shown = redact::url(&url);
        let bytes = self
            .http
            .retry(&url, || async {
                let resp = self
                    .http
                    .get(&url, "*/*", cred.as_ref())
                    .await
                    .map_err(auth_hint)?;
                self.http
                    .body(resp, format!("reading `{shown}`"))
                    .all()
                    .await
            })
            .await?;
        Ok(bytes)
    }
}

fn in_context(name: &str, e: Error) -> Error {
    Error {
        message: format!("cannot get the index page of `{name}`: {}", e.message),
        ..e
    }
}

/// `Http::get` hints at `.npmrc` for 401/403; an index's credentials live
/// elsewhere.
fn auth_hint(f: Fault) -> Fault {
    match f {
        Fault::Refused {
            status: status @ (401 | 403),
            error,
        } => Fault::Refused {
            status,
            error: error.with_hint("the index wants credentials: put them in the index URL (`https://user:token@host/simple/`) or in `~/.netrc`"),
        },
        f => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::pypi::config::ConfigSources;
    use base64::Engine as _;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A one-thread HTTP/1.1 server on 127.0.0.1 that records each request's
    /// path and `Authorization` header and answers from a fixed table.
    type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

    fn serve() -> (u16, RequestLog) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        auth = Some(v.trim().to_owned());
                    }
                }
                seen.lock().unwrap().push((path.clone(), auth));
                let (status, ctype, body) = match path.as_str() {
                    "/simple/foo/" => (
                        "200 OK",
                        "application/vnd.pypi.simple.v1+json",
                        format!(
                            r#"{{"meta":{{"api-version":"1.0"}},"files":[{{"filename":"foo-1.0-py3-none-any.whl","url":"../../files/foo-1.0-py3-none-any.whl","hashes":{{"sha256":"{SHA}"}},"core-metadata":true}}]}}"#
                        ),
                    ),
                    "/simple/bar/" => (
                        "200 OK",
                        "text/html; charset=utf-8",
                        format!(r#"<a href="/files/bar-2.0.tar.gz#sha256={SHA}">bar</a>"#),
                    ),
                    "/files/foo-1.0-py3-none-any.whl.metadata" => (
                        "200 OK",
                        "application/octet-stream",
                        "Name: foo\n".to_owned(),
                    ),
                    "/simple/private/" => ("401 Unauthorized", "text/plain", "no".to_owned()),
                    "/files/locked.metadata" => ("403 Forbidden", "text/plain", "no".to_owned()),
                    _ => ("404 Not Found", "text/plain", "no".to_owned()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (port, log)
    }

    #[test]
    fn simple_index_client() {
        let (port, log) = serve();
        let config = PypiConfig::load_with(
            Some((
                format!("http://me:pw@127.0.0.1:{port}/simple"),
                "test".into(),
            )),
            &|_| None,
            &ConfigSources::default(),
            None,
        )
        .unwrap();
        let index = SimpleIndex::new(
            Arc::new(Http::new(&[], &crate::http::Deadlines::default()).unwrap()),
            Arc::new(config),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("me:pw")
        );
        rt.block_on(async {
            index.prefetch("bar");
            let foo = index.project("Foo").await.unwrap();
            assert_eq!(foo.len(), 1);
            assert_eq!(
                foo[0].url.as_str(),
                format!("http://127.0.0.1:{port}/files/foo-1.0-py3-none-any.whl")
            );
            assert_eq!(foo[0].metadata, Some(None));
            // Cached: the second call asks nothing.
            assert_eq!(index.project("foo").await.unwrap(), foo);
            let bar = index.project("bar").await.unwrap();
            assert_eq!(bar[0].filename, "bar-2.0.tar.gz");
            assert_eq!(bar[0].sha256.as_deref(), Some(SHA));

            let e = index.project("missing").await.unwrap_err();
            assert_eq!(e.kind, Kind::Registry);
            assert_eq!(
                e.message,
                format!("project `missing` was not found on the index `http://***:***@127.0.0.1:{port}/simple/`")
            );
            assert!(e.hint.is_some());
            let e = index.project("../etc").await.unwrap_err();
            assert_eq!(e.kind, Kind::Usage);
            assert!(e.message.starts_with("`../etc`"), "{}", e.message);

            // A refused credential: the hint is about the index's
            // credentials, not npm's.
            let index_hint = "the index wants credentials: put them in the index URL (`https://user:token@host/simple/`) or in `~/.netrc`";
            let e = index.project("private").await.unwrap_err();
            assert_eq!(
                e.message,
                format!("cannot get the index page of `private`: `http://127.0.0.1:{port}/simple/private/` answered HTTP 401 Unauthorized")
            );
            assert_eq!(e.hint.as_deref(), Some(index_hint));
            let locked = Url::parse(&format!("http://127.0.0.1:{port}/files/locked.metadata")).unwrap();
            let e = index.get_bytes(&locked).await.unwrap_err();
            assert_eq!(
                e.message,
                format!("`http://127.0.0.1:{port}/files/locked.metadata` answered HTTP 403 Forbidden")
            );
            assert_eq!(e.hint.as_deref(), Some(index_hint));

            let meta = Url::parse(&format!("{}.metadata", foo[0].url)).unwrap();
            assert_eq!(index.get_bytes(&meta).await.unwrap(), b"Name: foo\n");
            // Another origin (same server, other host name): no credential,
            // and userinfo in the URL itself is not sent either.
            let elsewhere = Url::parse(&format!(
                "http://u:p@localhost:{port}/files/foo-1.0-py3-none-any.whl.metadata"
            ))
            .unwrap();
            assert_eq!(index.get_bytes(&elsewhere).await.unwrap(), b"Name: foo\n");
        });
        let log = log.lock().unwrap();
        let paths: Vec<&str> = log.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths.iter().filter(|p| **p == "/simple/foo/").count(), 1);
        assert_eq!(paths.iter().filter(|p| **p == "/simple/bar/").count(), 1);
        let auths: Vec<Option<&str>> = log.iter().map(|(_, a)| a.as_deref()).collect();
        assert_eq!(
            auths[..auths.len() - 1],
            vec![Some(basic.as_str()); auths.len() - 1]
        );
        assert_eq!(auths.last().unwrap(), &None);
    }
}
