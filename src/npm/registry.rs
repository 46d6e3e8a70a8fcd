//! npm registry metadata: packuments, in the abbreviated ("corgi") form that
//! npm itself asks for, and the tarball URLs they point to.
//!
//! The corgi form leaves out `time` (when each version was published). When
//! the policy's cooldown is on, the full document is asked for instead: it is
//! larger, but the only place the registry says how old a version is.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;
use url::Url;

use crate::error::{Error, Result};
use crate::http::{Fault, Http};
use crate::npm::config::NpmConfig;
use crate::npm::spec::NpmName;
use crate::redact;

const CORGI: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";
/// The full packument, with `time`.
const FULL: &str = "application/json";

#[derive(Debug, Deserialize)]
pub struct Packument {
    #[serde(rename = "dist-tags", default)]
    pub dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub versions: BTreeMap<String, VersionMeta>,
    /// Publish time (RFC 3339) by version, plus `created` and `modified`.
    /// Full documents only; empty in the corgi form.
    #[serde(default, deserialize_with = "string_map")]
    pub time: BTreeMap<String, String>,
}

impl Packument {
    /// The packages the `latest` version depends on (aliases by their real
    /// name, bundled ones left out): what the resolver will most likely ask
    /// for next.
    pub fn likely_dependencies(&self) -> Vec<NpmName> {
        let Some(meta) = self
            .dist_tags
            .get("latest")
            .and_then(|v| self.versions.get(v))
        else {
            return Vec::new();
        };
        // Bundled ones ship inside the tarball: the registry's copy is never
        // asked for.
        let bundled = meta.bundled();
        meta.dependencies
            .iter()
            .chain(&meta.optional_dependencies)
            .chain(&meta.peer_dependencies)
            .filter(|(name, _)| !bundled.contains(name))
            .filter_map(|(key, raw)| {
                crate::npm::spec::DepSpec::target(key, raw).map(|(name, _)| name)
            })
            .collect()
    }

    /// When `version` was published, if the document says so (and says it
    /// in a form that parses).
    pub fn published(&self, version: &str) -> Option<std::time::SystemTime> {
        self.time
            .get(version)
            .and_then(|t| crate::time::parse_rfc3339(t))
    }
}

/// One version's registry metadata. Lenient where old packages are odd
/// (dependency lists as arrays, `os` as a string): a field of the wrong shape
/// reads as empty rather than failing the whole packument.
#[derive(Debug, Clone, Deserialize)]
pub struct VersionMeta {
    #[serde(default)]
    pub name: String,
    /// The registry's word that install scripts exist (abbreviated form).
    #[serde(rename = "hasInstallScript", default)]
    pub has_install_script: bool,
    /// Set by npm at publish when the package has a `binding.gyp`.
    #[serde(default)]
    pub gypfile: bool,
    /// Scripts (full documents only).
    #[serde(default, deserialize_with = "string_map")]
    pub scripts: BTreeMap<String, String>,
    #[serde(default)]
    pub version: String,
    #[serde(default, deserialize_with = "string_map")]
    pub dependencies: BTreeMap<String, String>,
    #[serde(
        rename = "optionalDependencies",
        default,
        deserialize_with = "string_map"
    )]
    pub optional_dependencies: BTreeMap<String, String>,
    #[serde(rename = "peerDependencies", default, deserialize_with = "string_map")]
    pub peer_dependencies: BTreeMap<String, String>,
    #[serde(rename = "peerDependenciesMeta", default)]
    pub peer_dependencies_meta: Option<Value>,
    #[serde(rename = "bundleDependencies", default)]
    pub bundle_dependencies: Option<Value>,
    #[serde(rename = "bundledDependencies", default)]
    pub bundled_dependencies: Option<Value>,
    #[serde(default, deserialize_with = "string_list")]
    pub os: Vec<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub cpu: Vec<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub libc: Vec<String>,
    #[serde(default)]
    pub dist: Dist,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Dist {
    #[serde(default)]
    pub tarball: String,
    #[serde(default)]
    pub integrity: Option<String>,
    #[serde(default)]
    pub shasum: Option<String>,
}

impl VersionMeta {
    /// What the registry's metadata says about install-time code, named as
    /// a launch names what it finds in the tarball (`inspect::install_code`).
    /// Used by `policy check` when the tree is not built yet; once it is,
    /// the check reads what the launch read (the metadata can lie).
    pub fn declared_install_hooks(&self) -> Vec<String> {
        use crate::npm::inspect::{BINDING_GYP, DECLARED_ONLY, INSTALL_HOOKS};
        let mut hooks: Vec<String> = INSTALL_HOOKS
            .iter()
            .filter(|h| self.scripts.contains_key(**h))
            .map(|h| h.to_string())
            .collect();
        let own_install = hooks.iter().any(|h| h == "install" || h == "preinstall");
        if self.gypfile && !own_install {
            hooks.push(BINDING_GYP.to_owned());
        }
        if hooks.is_empty() && self.has_install_script {
            hooks.push(DECLARED_ONLY.to_owned());
        }
        hooks
    }

    /// Names of bundled dependencies (shipped inside the tarball).
    pub fn bundled(&self) -> Vec<String> {
        let v = self
            .bundle_dependencies
            .as_ref()
            .or(self.bundled_dependencies.as_ref());
        match v {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            Some(Value::Bool(true)) => self.dependencies.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    pub fn peer_optional(&self, name: &str) -> bool {
        self.peer_dependencies_meta
            .as_ref()
            .and_then(|m| m.get(name))
            .and_then(|m| m.get("optional"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

fn string_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
            .collect(),
        _ => BTreeMap::new(),
    })
}

fn string_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s],
        _ => Vec::new(),
    })
}

/// The packument URL: `<registry>/<name>` with the scope's `/` escaped.
pub fn packument_url(registry: &Url, name: &NpmName) -> Result<Url> {
    registry
        .join(&name.url_segment())
        .map_err(|e| Error::internal(format!("cannot build the URL of `{name}`: {e}")))
}

/// The conventional tarball URL, used when the lock already knows version and
/// hash, so no metadata request is needed: `<registry>/<name>/-/<unscoped>-<version>.tgz`.
pub fn conventional_tarball_url(registry: &Url, name: &NpmName, version: &str) -> Result<Url> {
    registry
        .join(&format!(
            "{}/-/{}-{}.tgz",
            name.as_str(),
            name.unscoped(),
            version
        ))
        .map_err(|e| {
            Error::internal(format!(
                "cannot build the tarball URL of `{name}@{version}`: {e}"
            ))
        })
}

/// Packuments, fetched at most once each per run, and fetched ahead of need
/// (`prefetch`) so the resolver rarely waits on the network.
pub struct Packuments {
    http: Arc<Http>,
    npm: Arc<NpmConfig>,
    /// Ask for full documents (with `time`) rather than corgi ones.
    times: bool,
    /// When a prefetched document arrives, prefetch the dependencies of its
    /// `latest` version too (see [`Self::speculate`]).
    speculate: std::sync::atomic::AtomicBool,
    cells: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One packument, fetched once; the error is kept so every waiter sees it.
type Slot = OnceCell<std::result::Result<Arc<Packument>, Error>>;

impl Packuments {
    /// Corgi documents: what npm asks for, and all resolution needs when the
    /// cooldown is off.
    pub fn new(http: Arc<Http>, npm: Arc<NpmConfig>) -> Arc<Self> {
        Self::new_with_times(http, npm, false)
    }

    /// `times`: fetch full documents, which carry `time`, as the cooldown
    /// needs (pass `!cooldown.is_off()`); else corgi ones, as [`Self::new`].
    pub fn new_with_times(http: Arc<Http>, npm: Arc<NpmConfig>, times: bool) -> Arc<Self> {
        Arc::new(Packuments {
            http,
            npm,
            times,
            speculate: std::sync::atomic::AtomicBool::new(false),
            cells: Mutex::new(HashMap::new()),
        })
    }

    /// Fetch ahead of the resolver: when a prefetched document arrives, its
    /// `latest` version's dependencies are prefetched at once, without
    /// waiting for the resolver to reach and choose it. The tree's depth in
    /// round trips stays, but no document waits behind the resolver's queue.
    /// A wrong guess (a dependency chose an older major) costs a document
    /// that is not needed.
    pub fn speculate(self: &Arc<Self>) -> Arc<Self> {
        self.speculate
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.clone()
    }

    /// Whether these packuments carry `time`.
    pub fn has_times(&self) -> bool {
        self.times
    }

    /// These packuments if they carry `time`, else a new set (same HTTP
    /// client and configuration) that fetches full documents.
    pub fn with_times(self: &Arc<Self>) -> Arc<Self> {
        if self.times {
            return self.clone();
        }
        let full = Self::new_with_times(self.http.clone(), self.npm.clone(), true);
        if self.speculate.load(std::sync::atomic::Ordering::Relaxed) {
            full.speculate();
        }
        full
    }

    fn cell(&self, name: &str) -> Arc<Slot> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(name.to_owned()).or_default().clone()
    }

    /// Start fetching in the background; `get` picks up the result.
    pub fn prefetch(self: &Arc<Self>, name: &NpmName) {
        let cell = self.cell(name.as_str());
        if cell.initialized() {
            return;
        }
        let me = self.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let doc = cell.get_or_init(|| me.fetch(name.clone())).await;
            if let Ok(doc) = doc
                && me.speculate.load(std::sync::atomic::Ordering::Relaxed)
            {
                for dep in doc.likely_dependencies() {
                    me.prefetch(&dep);
                }
            }
        });
    }

    pub async fn get(&self, name: &NpmName) -> Result<Arc<Packument>> {
        let cell = self.cell(name.as_str());
        cell.get_or_init(|| self.fetch(name.clone())).await.clone()
    }

    async fn fetch(&self, name: NpmName) -> std::result::Result<Arc<Packument>, Error> {
        let registry = self.npm.registry_for(name.as_str())?;
        let url = packument_url(registry.url(), &name)?;
        let cred = self.npm.credential_for(&url);
        let shown = redact::url(&url);
        let accept = if self.times { FULL } else { CORGI };
        let bytes = self
            .http
            .retry(&url, || async {
                let resp = match self.http.get(&url, accept, cred).await {
                    Err(Fault::Refused { status: 404, .. }) => {
                        return Err(Fault::Fatal(
                            Error::registry(format!("package `{name}` was not found on the registry `{shown}`"))
                                .with_hint("check the name, and that the registry (or the scope's registry in `.npmrc`) is the one that has it"),
                        ));
                    }
                    Err(f) => {
                        return Err(f.map(|e| Error {
                            message: format!("cannot get the metadata of `{name}`: {}", e.message),
                            ..e
                        }));
                    }
                    Ok(r) => r,
                };
                self.http.body(resp, format!("reading `{shown}`")).all().await
            })
            .await?;
        let p: Packument = serde_json::from_slice(&bytes).map_err(|e| {
            Error::registry(format!(
                "the registry's metadata for `{name}` is not valid JSON: {e}"
            ))
        })?;
        Ok(Arc::new(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packument_time_is_read_leniently() {
        let p: Packument = serde_json::from_value(serde_json::json!({
            "versions": {"1.0.0": {"version": "1.0.0"}},
            "time": {
                "created": "2020-01-01T00:00:00.000Z",
                "1.0.0": "2020-01-02T03:04:05.678Z",
                "1.1.0": "not a time",
                "1.2.0": 17
            }
        }))
        .unwrap();
        assert_eq!(
            p.published("1.0.0"),
            crate::time::parse_rfc3339("2020-01-02T03:04:05.678Z")
        );
        assert!(p.published("1.0.0").is_some());
        assert_eq!(p.published("1.1.0"), None);
        assert_eq!(p.published("1.2.0"), None);
        assert_eq!(p.published("9.9.9"), None);

        // The corgi form has no `time`; a `time` of the wrong shape is empty.
        for doc in [
            serde_json::json!({"versions": {}}),
            serde_json::json!({"versions": {}, "time": "2020-01-01T00:00:00Z"}),
        ] {
            let p: Packument = serde_json::from_value(doc).unwrap();
            assert!(p.time.is_empty());
        }
    }

    #[test]
    fn likely_dependencies_are_latests_without_bundled_ones() {
        let p: Packument = serde_json::from_value(serde_json::json!({
            "dist-tags": {"latest": "2.0.0"},
            "versions": {
                "1.0.0": {"version": "1.0.0", "dependencies": {"old-dep": "^1"}},
                "2.0.0": {
                    "version": "2.0.0",
                    "dependencies": {"a": "^1", "inside": "^1", "alias": "npm:@s/real@^3"},
                    "optionalDependencies": {"opt": "^1"},
                    "peerDependencies": {"peer": "*"},
                    "bundleDependencies": ["inside"]
                }
            }
        }))
        .unwrap();
        let mut names: Vec<String> = p
            .likely_dependencies()
            .iter()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["@s/real", "a", "opt", "peer"]);

        let none: Packument =
            serde_json::from_value(serde_json::json!({"versions": {"1.0.0": {}}})).unwrap();
        assert!(none.likely_dependencies().is_empty());
    }

    /// A registry on 127.0.0.1 that answers every request with `body` and
    /// records each request's head.
    fn registry(body: &'static str) -> (Url, Arc<Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_lowercase());
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn full_documents_only_when_times_are_wanted() {
        let (url, seen) = registry(
            r#"{"versions": {"1.0.0": {"version": "1.0.0"}}, "time": {"1.0.0": "2020-01-02T03:04:05.000Z"}}"#,
        );
        let http = Arc::new(Http::new(&[], &crate::http::Deadlines::default()).unwrap());
        let npm = Arc::new(NpmConfig {
            registry: Some((crate::redact::SafeUrl::new(url), "test".to_owned())),
            ..Default::default()
        });
        let name = NpmName::parse_legacy("pkg").unwrap();

        let corgi = Packuments::new(http.clone(), npm.clone());
        assert!(!corgi.has_times());
        corgi.get(&name).await.unwrap();
        let full = corgi.with_times();
        assert!(full.has_times());
        assert!(Arc::ptr_eq(&full, &full.with_times()));
        let p = full.get(&name).await.unwrap();
        assert!(p.published("1.0.0").is_some());
        Packuments::new_with_times(http, npm, true)
            .get(&name)
            .await
            .unwrap();

        let seen = seen.lock().unwrap().clone();
        let accept = |head: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix("accept: "))
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(seen.len(), 3);
        assert_eq!(accept(&seen[0]), CORGI.to_lowercase());
        assert_eq!(accept(&seen[1]), "application/json");
        assert_eq!(accept(&seen[2]), "application/json");
    }
}
