//! Content hashes: npm's Subresource Integrity strings (`sha512-<base64>`),
//! the legacy hex `shasum`, and a streaming hasher that computes what is
//! needed while bytes are written to disk.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use std::fmt;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algo {
    Sha1,
    Sha256,
    Sha512,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha1 => "sha1",
            Algo::Sha256 => "sha256",
            Algo::Sha512 => "sha512",
        }
    }
}

/// One hash value. Equality is on algorithm and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hash {
    pub algo: Algo,
    pub bytes: Vec<u8>,
}

impl Hash {
    pub fn hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// `sha512-<base64>`: the form npm and the lockfile use.
    pub fn sri(&self) -> String {
        format!("{}-{}", self.algo.name(), STANDARD.encode(&self.bytes))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sri())
    }
}

/// What bytes must hash to. Holds the strongest value known; weaker ones are
/// not consulted when a stronger one exists (a sha1 collision must not be
/// enough to pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    pub strongest: Hash,
}

impl Integrity {
    /// Parse an SRI string. Several space-separated values may appear
    /// (`sha1-... sha512-...`); options after `?` are ignored as the SRI spec
    /// says; unknown algorithms are skipped; at least one known value is needed.
    pub fn parse_sri(s: &str) -> Result<Self> {
        let mut best: Option<Hash> = None;
        for token in s.split_whitespace() {
            let Some((algo, rest)) = token.split_once('-') else {
                continue;
            };
            let algo = match algo {
                "sha512" => Algo::Sha512,
                "sha256" => Algo::Sha256,
                "sha1" => Algo::Sha1,
                _ => continue,
            };
            let b64 = rest.split('?').next().unwrap_or("");
            let bytes = STANDARD.decode(b64).map_err(|_| {
                Error::integrity(format!(
                    "integrity value `{}` is not valid base64",
                    crate::redact::shown(token)
                ))
            })?;
            let expected_len = match algo {
                Algo::Sha512 => 64,
                Algo::Sha256 => 32,
                Algo::Sha1 => 20,
            };
            if bytes.len() != expected_len {
                return Err(Error::integrity(format!(
                    "integrity value `{}` has {} bytes, {} expects {expected_len}",
                    crate::redact::shown(token),
                    bytes.len(),
                    algo.name()
                )));
            }
            let h = Hash { algo, bytes };
            if best.as_ref().is_none_or(|b| h.algo > b.algo) {
                best = Some(h);
            }
        }
        best.map(|strongest| Integrity { strongest })
            .ok_or_else(|| {
                Error::integrity(format!(
                    "no usable hash in integrity `{}`",
                    crate::redact::shown(s)
                ))
            })
    }

    /// The legacy `shasum` field: 40 hex digits of sha1.
    pub fn from_sha1_hex(s: &str) -> Result<Self> {
        let bytes = hex::decode(s.trim())
            .ok()
            .filter(|b| b.len() == 20)
            .ok_or_else(|| {
                Error::integrity(format!(
                    "shasum `{}` is not 40 hex digits",
                    crate::redact::shown(s)
                ))
            })?;
        Ok(Integrity {
            strongest: Hash {
                algo: Algo::Sha1,
                bytes,
            },
        })
    }

    /// A wheel hash as PyPI indexes and the lockfile give it: 64 hex digits.
    pub fn from_sha256_hex(s: &str) -> Result<Self> {
        let bytes = hex::decode(s.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                Error::integrity(format!(
                    "sha256 `{}` is not 64 hex digits",
                    crate::redact::shown(s)
                ))
            })?;
        Ok(Integrity {
            strongest: Hash {
                algo: Algo::Sha256,
                bytes,
            },
        })
    }

    pub fn sha512(bytes: Vec<u8>) -> Self {
        Integrity {
            strongest: Hash {
                algo: Algo::Sha512,
                bytes,
            },
        }
    }

    pub fn matches(&self, computed: &Computed) -> bool {
        let got = match self.strongest.algo {
            Algo::Sha512 => &computed.sha512,
            Algo::Sha1 => &computed.sha1,
            Algo::Sha256 => &computed.sha256,
        };
        got.as_slice() == self.strongest.bytes.as_slice()
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.strongest.fmt(f)
    }
}

/// A sha256 digest as the lockfile records a wheel's: 64 lowercase hex
/// digits, nothing else (an uppercase or padded value is refused, so the
/// value written back is the value read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// `None` unless `s` is exactly 64 lowercase hex digits.
    pub fn parse_lower_hex(s: &str) -> Option<Self> {
        let lower = s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let mut bytes = [0u8; 32];
        (lower && hex::decode_to_slice(s, &mut bytes).is_ok()).then_some(Sha256Digest(bytes))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// What a download of this wheel must hash to.
    pub fn integrity(&self) -> Integrity {
        Integrity {
            strongest: Hash {
                algo: Algo::Sha256,
                bytes: self.0.to_vec(),
            },
        }
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Hashes of a byte stream, fed as it is written. sha512 always (it is what
/// the lock records); the weaker ones only when an expected value needs them.
pub struct Hasher {
    sha512: Sha512,
    sha256: Option<Sha256>,
    sha1: Option<Sha1>,
}

pub struct Computed {
    pub sha512: Vec<u8>,
    pub sha256: Vec<u8>,
    pub sha1: Vec<u8>,
}

impl Computed {
    pub fn sha256_hex(&self) -> String {
        hex::encode(&self.sha256)
    }

    pub fn sha512_integrity(&self) -> Integrity {
        Integrity::sha512(self.sha512.clone())
    }

    /// The computed value in the same algorithm as `expected`, for messages.
    pub fn same_algo_as(&self, expected: &Integrity) -> Hash {
        let algo = expected.strongest.algo;
        let bytes = match algo {
            Algo::Sha512 => self.sha512.clone(),
            Algo::Sha256 => self.sha256.clone(),
            Algo::Sha1 => self.sha1.clone(),
        };
        Hash { algo, bytes }
    }
}

impl Hasher {
    /// A hasher that can check `expected` (and always yields sha512).
    pub fn for_expected(expected: Option<&Integrity>) -> Self {
        let algo = expected.map(|e| e.strongest.algo);
        Hasher {
            sha512: Sha512::new(),
            sha256: (algo == Some(Algo::Sha256)).then(Sha256::new),
            sha1: (algo == Some(Algo::Sha1)).then(Sha1::new),
        }
    }
    pub fn all() -> Self {
        Hasher {
            sha512: Sha512::new(),
            sha256: Some(Sha256::new()),
            sha1: Some(Sha1::new()),
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        self.sha512.update(data);
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
    }
    pub fn finish(self) -> Computed {
        Computed {
            sha512: self.sha512.finalize().to_vec(),
            sha256: self
                .sha256
                .map(|h| h.finalize().to_vec())
                .unwrap_or_default(),
            sha1: self.sha1.map(|h| h.finalize().to_vec()).unwrap_or_default(),
        }
    }
}

/// The digest, in `algo` only, of everything `r` yields: cached archives
/// re-hashed at use, downloads re-read from disk, `safex cache verify`.
/// (One algorithm: sha512 in software is several times slower than sha256,
/// and a wheel needs only sha256.)
pub fn digest_reader(r: &mut dyn std::io::Read, algo: Algo) -> std::io::Result<Vec<u8>> {
    use sha2::Digest;
    fn feed(r: &mut dyn std::io::Read, h: &mut dyn sha2::digest::DynDigest) -> std::io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            h.update(&buf[..n]);
        }
    }
    let mut h: Box<dyn sha2::digest::DynDigest> = match algo {
        Algo::Sha512 => Box::new(sha2::Sha512::new()),
        Algo::Sha256 => Box::new(sha2::Sha256::new()),
        Algo::Sha1 => Box::new(sha1::Sha1::new()),
    };
    feed(r, h.as_mut())?;
    Ok(h.finalize().to_vec())
}

/// sha256 hex of a string: tree digests and cache keys.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn computed(data: &[u8]) -> Computed {
        let mut h = Hasher::all();
        h.update(data);
        h.finish()
    }

    #[test]
    fn sri_table() {
        let c = computed(b"hello");
        let sha512 = c.sha512_integrity().to_string();
        let sha1_sri = format!("sha1-{}", STANDARD.encode(&c.sha1));
        let cases: Vec<(String, Option<Algo>)> = vec![
            (sha512.clone(), Some(Algo::Sha512)),
            (format!("{sha1_sri} {sha512}"), Some(Algo::Sha512)),
            (format!("{sha512}?opt"), Some(Algo::Sha512)),
            (format!("md5-AAAA {sha1_sri}"), Some(Algo::Sha1)),
            ("md5-AAAA".into(), None),
            ("".into(), None),
            ("sha512-!!!".into(), None),
            ("sha512-AAAA".into(), None),
        ];
        for (s, want) in cases {
            match (Integrity::parse_sri(&s), want) {
                (Ok(i), Some(a)) => {
                    assert_eq!(i.strongest.algo, a, "{s}");
                    assert!(i.matches(&c), "{s}");
                }
                (Err(_), None) => {}
                (got, want) => panic!("{s}: got {got:?}, want {want:?}"),
            }
        }
        assert!(
            !Integrity::parse_sri(&sha512)
                .unwrap()
                .matches(&computed(b"hellO"))
        );
    }

    #[test]
    fn sha256_digest_is_lowercase_hex_only() {
        let hex = sha256_hex(b"x");
        let d = Sha256Digest::parse_lower_hex(&hex).unwrap();
        assert_eq!(d.to_string(), hex);
        assert_eq!(d.integrity(), Integrity::from_sha256_hex(&hex).unwrap());
        for bad in [
            hex.to_uppercase(),
            hex[..62].to_owned(),
            format!(" {hex}"),
            "g".repeat(64),
        ] {
            assert!(Sha256Digest::parse_lower_hex(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn shasum() {
        let c = computed(b"abc");
        let i = Integrity::from_sha1_hex(&hex::encode(&c.sha1)).unwrap();
        assert!(i.matches(&c));
        assert!(Integrity::from_sha1_hex("abcd").is_err());
        assert!(Integrity::from_sha1_hex(&"z".repeat(40)).is_err());
    }
}
