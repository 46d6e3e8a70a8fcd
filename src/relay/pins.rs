//! Tool definitions pinned like packages: the digests recorded on a lock
//! entry's first mediated session, compared on later ones.
//! STUB: filled in when the pin store lands.

use std::path::PathBuf;

use super::Mediation;

pub type Digests = std::collections::BTreeMap<String, String>;

/// The pins of this server's tools.
pub struct PinBook {
    pub pinned: Option<Digests>,
    pub review: Option<PathBuf>,
}

impl PinBook {
    pub fn load(_m: &Mediation) -> PinBook {
        PinBook {
            pinned: None,
            review: None,
        }
    }
    pub fn digest(tool: &serde_json::Value) -> String {
        {
            use sha2::Digest;
            format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(tool.to_string().as_bytes()))
            )
        }
    }
    pub fn flags(_tool: &serde_json::Value) -> Vec<String> {
        Vec::new()
    }
    pub fn record(&self, _m: &Mediation, _d: &Digests) -> crate::error::Result<()> {
        Ok(())
    }
    /// Review mode (`safex mcp tools`): say which lock entry this is.
    pub fn write_review(&self, _m: &Mediation) {}
}
