//! npm registry metadata: packuments, in the abbreviated ("corgi") form that
//! npm itself asks for, and the tarball URLs they point to.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;
use url::Url;

use super::http::{Fault, Http, describe};
use crate::error::{Error, Result};
use crate::redact;
use crate::settings::NpmConfig;
use crate::spec::NpmName;

const CORGI: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

#[derive(Debug, Deserialize)]
pub struct Packument {
    #[serde(rename = "dist-tags", default)]
    pub dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub versions: BTreeMap<String, VersionMeta>,
}

/// One version's registry metadata. Lenient where old packages are odd
/// (dependency lists as arrays, `os` as a string): a field of the wrong shape
/// reads as empty rather than failing the whole packument.
#[derive(Debug, Clone, Deserialize)]
pub struct VersionMeta {
    #[serde(default)]
    pub name: String,
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
    cells: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One packument, fetched once; the error is kept so every waiter sees it.
type Slot = OnceCell<std::result::Result<Arc<Packument>, Error>>;

impl Packuments {
    pub fn new(http: Arc<Http>, npm: Arc<NpmConfig>) -> Arc<Self> {
        Arc::new(Packuments {
            http,
            npm,
            cells: Mutex::new(HashMap::new()),
        })
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
            cell.get_or_init(|| me.fetch(name.clone())).await;
        });
    }

    pub async fn get(&self, name: &NpmName) -> Result<Arc<Packument>> {
        let cell = self.cell(name.as_str());
        cell.get_or_init(|| self.fetch(name.clone())).await.clone()
    }

    async fn fetch(&self, name: NpmName) -> std::result::Result<Arc<Packument>, Error> {
        let registry = self.npm.registry_for(name.as_str())?;
        let url = packument_url(registry, &name)?;
        let cred = self.npm.credential_for(&url);
        let shown = redact::url(&url);
        let bytes = self
            .http
            .retry(|| async {
                let resp = match self.http.get(&url, CORGI, cred).await {
                    Err(Fault::Fatal(e)) if e.message.contains("HTTP 404") => {
                        return Err(Fault::Fatal(
                            Error::registry(format!("package `{name}` was not found on the registry `{shown}`"))
                                .with_hint("check the name, and that the registry (or the scope's registry in `.npmrc`) is the one that has it"),
                        ));
                    }
                    Err(Fault::Fatal(e)) => {
                        return Err(Fault::Fatal(Error {
                            message: format!("cannot get the metadata of `{name}`: {}", e.message),
                            ..e
                        }));
                    }
                    Err(Fault::Transient(e)) => {
                        return Err(Fault::Transient(Error {
                            message: format!("cannot get the metadata of `{name}`: {}", e.message),
                            ..e
                        }));
                    }
                    Ok(r) => r,
                };
                resp.bytes().await.map_err(|e| {
                    Fault::Transient(Error::registry(format!("reading `{shown}` failed: {}", describe(e))))
                })
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
