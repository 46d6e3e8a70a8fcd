//! What one command resolves once: its global options, its settings (policy
//! included), its cache, and the async runtime and HTTP client, made on
//! first use (the warm path never makes them).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::settings::{Overrides, Settings};

/// Options that apply to every command.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    pub quiet: bool,
    pub policy: Option<PathBuf>,
    pub env: Vec<String>,
    /// `--allow-read`, `--allow-write`, `--allow-net`, `--no-sandbox`
    /// before the launcher (they add to the launcher's own).
    pub sandbox: crate::sandbox::Flags,
}

/// The network of one command: a runtime and the client whose connections
/// live on it (a client outliving its runtime would hold dead connections).
struct Net {
    runtime: tokio::runtime::Runtime,
    http: Arc<Http>,
}

pub struct Session {
    pub globals: Globals,
    pub settings: Settings,
    /// The cache as the warm path sees it; the cold path opens it checked
    /// ([`Cache::open_cold`]).
    pub cache: Cache,
    net: OnceLock<Net>,
}

impl Session {
    /// Settings loaded with the global options and `over` (a launch's own
    /// `--registry`, `--offline`, ...).
    pub fn load(globals: &Globals, over: Overrides) -> Result<Session> {
        let settings = Settings::load(&Overrides {
            quiet: globals.quiet || over.quiet,
            policy: globals.policy.clone(),
            ..over
        })?;
        Ok(Session::with(globals, settings))
    }

    pub fn with(globals: &Globals, settings: Settings) -> Session {
        Session {
            globals: Globals {
                quiet: globals.quiet || settings.quiet,
                ..globals.clone()
            },
            cache: Cache::new(&settings.cache_dir),
            settings,
            net: OnceLock::new(),
        }
    }

    fn net(&self) -> Result<&Net> {
        if let Some(n) = self.net.get() {
            return Ok(n);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
        // The deadlines of a cold launch count from its first request.
        let http = Arc::new(Http::new(
            &self.settings.ca_files,
            &self.settings.deadlines.from_now(),
        )?);
        Ok(self.net.get_or_init(|| Net { runtime, http }))
    }

    /// The async runtime (cold paths only).
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime> {
        Ok(&self.net()?.runtime)
    }

    /// The HTTP client, with the system trust store, the configured CA
    /// files and the deadlines.
    pub fn http(&self) -> Result<Arc<Http>> {
        Ok(self.net()?.http.clone())
    }

    /// Stop the runtime: every task of this command is dropped, so nothing
    /// still writes into the cache's staging (swept next).
    pub fn close_network(&mut self) {
        self.net.take();
    }
}
