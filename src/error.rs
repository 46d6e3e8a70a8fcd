//! One error type for the whole pipeline.
//!
//! Every error carries a [`Kind`] that fixes its exit code (see
//! `docs/exit-codes.md`), a message that names the thing it is about in
//! backticks, and usually a hint with the next step. Messages are built where
//! the facts are known; this module only classifies and prints them.

use std::fmt;

/// The class of a failure. The numeric codes are part of safex's contract:
/// MCP clients and scripts may branch on them, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bug in safex or an unexpected state. Exit code 1.
    Internal,
    /// Bad command line: unknown option, malformed or unpinned spec. Exit code 2.
    Usage,
    /// Refused by policy: frozen lock without an entry, foreign tarball host,
    /// scripts in `refuse` mode, a non-registry dependency spec. Exit code 3.
    Policy,
    /// Bytes do not match the expected hash (registry or lockfile). Exit code 4.
    Integrity,
    /// The package itself is unsafe: archive escapes, links, devices, bombs,
    /// a `bin` outside its package, a tarball whose `package.json` disagrees
    /// with the registry about its name or version. Exit code 5.
    Unsafe,
    /// Registry or network: unreachable, not found, no matching version,
    /// server faults after retries, or offline with nothing cached. Exit code 6.
    Registry,
    /// Local files: the cache, the lockfile, a config file. Exit code 7.
    Io,
    /// The runtime (`node`) is missing. Exit code 8.
    Runtime,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Policy => 3,
            Kind::Integrity => 4,
            Kind::Unsafe => 5,
            Kind::Registry => 6,
            Kind::Io => 7,
            Kind::Runtime => 8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
    /// What would have made it work, for callers that can provide it.
    pub needs: Option<Need>,
}

/// Something a caller can branch on instead of matching message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// A pinned root requires a Python in this `Requires-Python` range.
    Python(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            needs: None,
        }
    }

    pub fn needs(mut self, need: Need) -> Self {
        self.needs = Some(need);
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn policy(message: impl Into<String>) -> Self {
        Self::new(Kind::Policy, message)
    }
    pub fn integrity(message: impl Into<String>) -> Self {
        Self::new(Kind::Integrity, message)
    }
    pub fn unsafe_pkg(message: impl Into<String>) -> Self {
        Self::new(Kind::Unsafe, message)
    }
    pub fn registry(message: impl Into<String>) -> Self {
        Self::new(Kind::Registry, message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(Kind::Io, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// I/O errors from `fs-err` already name their path; they are local I/O.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e.to_string())
    }
}

/// A `debug: ...` note on stderr when `SAFEX_DEBUG` is set: what safex
/// skipped and why (files on a project page it cannot use, and the like).
/// `note` runs only then.
pub fn debug(note: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| crate::env_vars::flag(crate::env_vars::SAFEX_DEBUG)) {
        eprintln!("debug: {}", note());
    }
}
