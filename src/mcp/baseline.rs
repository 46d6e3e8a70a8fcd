//! The baseline: which servers each config file had at the previous scan,
//! and a hash of how each was launched. Malware that wants a foothold in an
//! AI client adds a server to its config (or swaps an existing server's
//! command); against a baseline that change stands out at the next scan.
//!
//! The first scan creates the baseline and reports nothing as new. Each scan
//! then replaces the records of the files it read; `safex mcp pin --write`
//! records its own rewrites, so they are not reported as changes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    pub servers: Vec<Seen>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub client: String,
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub server: String,
    pub command_hash: String,
}

impl Seen {
    fn key(&self) -> (&str, &str, &str) {
        (&self.file, &self.scope, &self.server)
    }
}

/// What the baseline says about a server now on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Known,
    New,
    Changed,
}

/// `<data dir>/safex/mcp-baseline.json`, next to the user's lockfile.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "safex").map(|d| d.data_dir().join("mcp-baseline.json"))
}

/// `None` when there is no baseline yet.
pub fn load(path: &Path) -> Result<Option<Baseline>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::io(format!(
                "cannot read baseline `{}`: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::io(format!("baseline `{}` is not valid: {e}", path.display()))
            .with_hint("remove it; the next scan records a new one")
    })
}

impl Baseline {
    pub fn judge(&self, now: &Seen) -> Change {
        match self.servers.iter().find(|s| s.key() == now.key()) {
            None => Change::New,
            Some(s) if s.command_hash == now.command_hash => Change::Known,
            Some(_) => Change::Changed,
        }
    }

    /// Replace the records of the files in `files` by `now`.
    pub fn update(&mut self, files: &[String], now: Vec<Seen>) {
        self.version = 1;
        self.servers.retain(|s| !files.contains(&s.file));
        self.servers.extend(now);
        self.servers
            .sort_by(|a, b| (&a.file, &a.scope, &a.server).cmp(&(&b.file, &b.scope, &b.server)));
    }

    /// A rewrite by `pin`: a record that matched the old command now
    /// matches the new one.
    pub fn accept(&mut self, file: &str, scope: &str, server: &str, old: &str, new: &str) {
        for s in &mut self.servers {
            if s.key() == (file, scope, server) && s.command_hash == old {
                s.command_hash = new.to_owned();
            }
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode the baseline: {e}")))?;
        text.push('\n');
        crate::lock::write_atomic(path, text.as_bytes())
    }
}
