//! The OS credential store: the Secret Service on Linux and the BSDs (GNOME
//! Keyring, KeePassXC, KWallet), the Keychain on macOS, the Credential
//! Manager on Windows; all through keyring-core's API. Every item is
//! `service = "safex"`, `username = NAME`, so `secret-tool lookup service
//! safex username NAME` finds it too.
//!
//! A store that does not answer (a Secret Service waiting on an unlock
//! prompt nobody sees) fails after [`DEADLINE`] instead of hanging the
//! launch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

use crate::error::{Error, Kind, Result};

/// Every item safex stores carries this service name.
pub const SERVICE: &str = "safex";

/// The longest an operation may wait for the store (an unlock prompt the
/// user answers counts against it).
const DEADLINE: Duration = Duration::from_secs(60);

/// What the audit log and messages call this OS's store.
pub const fn kind() -> &'static str {
    if cfg!(target_os = "macos") {
        "keychain"
    } else if cfg!(windows) {
        "credential-manager"
    } else {
        "secret-service"
    }
}

/// The store's name for people.
pub const fn shown() -> &'static str {
    if cfg!(target_os = "macos") {
        "the macOS Keychain"
    } else if cfg!(windows) {
        "the Windows Credential Manager"
    } else {
        "the Secret Service"
    }
}

/// An open store.
pub struct Store {
    inner: Arc<CredentialStore>,
}

/// What to do when no store is reachable.
const FALLBACK: &str = "or keep the value in a file only you can read (`chmod 600`) and write the reference as `safex-secret:file:/absolute/path` (docs/secrets.md)";

/// Why no store can be reached before trying: on Linux, no session bus.
fn unreachable_why() -> Option<String> {
    if !cfg!(all(
        unix,
        not(any(
            target_os = "macos",
            target_os = "ios",
            target_os = "android"
        ))
    )) {
        return None;
    }
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(|d| std::path::Path::new(&d).join("bus"));
    if runtime_bus.as_deref().is_some_and(std::path::Path::exists) {
        return None;
    }
    Some(
        "no D-Bus session bus: `DBUS_SESSION_BUS_ADDRESS` is unset and there is no `$XDG_RUNTIME_DIR/bus` (an SSH session, WSL, CI or a container has none)"
            .to_owned(),
    )
}

fn unreachable(why: &str) -> Error {
    Error::new(
        Kind::Runtime,
        format!("no credential store is reachable: {why}"),
    )
    .with_hint(format!(
        "log in to a desktop session with a keyring ({}), start one (`dbus-run-session -- sh`, then `gnome-keyring-daemon --unlock`), {FALLBACK}",
        shown()
    ))
}

/// Run `f` on a thread of its own and wait at most [`DEADLINE`].
fn bounded<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> keyring_core::Result<T> + Send + 'static,
) -> Result<keyring_core::Result<T>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => Ok(r),
        Err(_) => Err(Error::new(
            Kind::Runtime,
            format!(
                "{} did not answer within {} s ({what})",
                shown(),
                DEADLINE.as_secs()
            ),
        )
        .with_hint(format!(
            "it may be locked and waiting for an unlock prompt: unlock it and run again, {FALLBACK}"
        ))),
    }
}

fn failed(what: &str, e: keyring_core::Error) -> Error {
    use keyring_core::Error as E;
    match e {
        E::NoStorageAccess(inner) => unreachable(&format!("{} refused access: {inner}", shown())),
        E::PlatformFailure(inner) => unreachable(&format!("{}: {inner}", shown())),
        other => Error::new(
            Kind::Runtime,
            format!("{} failed to {what}: {other}", shown()),
        ),
    }
}

impl Store {
    /// Connect to this OS's store, or say clearly why it cannot be.
    pub fn open() -> Result<Store> {
        if let Some(why) = unreachable_why() {
            return Err(unreachable(&why));
        }
        let inner = bounded("connecting", platform_store)?.map_err(|e| failed("connect", e))?;
        Ok(Store { inner })
    }

    fn entry(&self, name: &str) -> Result<Entry> {
        let mods = HashMap::from([("label", format!("safex secret {name}"))]);
        let mods: HashMap<&str, &str> = mods.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Entry::new_in_store_with_modifiers(&self.inner, SERVICE, name, &mods)
            .or_else(|_| Entry::new_in_store(&self.inner, SERVICE, name))
            .map_err(|e| failed("name an item", e))
    }

    /// Store `value` under `name`, replacing any value it had.
    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        let entry = self.entry(name)?;
        let value = value.to_owned();
        bounded("storing", move || entry.set_password(&value))?
            .map_err(|e| failed("store the secret", e))
    }

    /// The value stored under `name`, `None` when there is none.
    pub fn get(&self, name: &str) -> Result<Option<String>> {
        let entry = self.entry(name)?;
        match bounded("reading", move || entry.get_password())? {
            Ok(v) => Ok(Some(v)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(failed("read the secret", e)),
        }
    }

    /// Remove `name`; `false` when there was nothing to remove.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let entry = self.entry(name)?;
        match bounded("removing", move || entry.delete_credential())? {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(failed("remove the secret", e)),
        }
    }

    /// The names stored by safex, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let store = self.inner.clone();
        let found = bounded("listing", move || {
            let spec = HashMap::from([("service", SERVICE)]);
            Entry::search_in_store(&store, &spec)
        })?;
        let entries = match found {
            Ok(e) => e,
            Err(keyring_core::Error::NoEntry) => Vec::new(),
            Err(e) => return Err(failed("list the secrets", e)),
        };
        let mut names: Vec<String> = entries
            .iter()
            .filter_map(Entry::get_specifiers)
            .filter(|(service, _)| service == SERVICE)
            .map(|(_, user)| user)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(windows)]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(unix, windows)))]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Err(keyring_core::Error::NotSupportedByStore(
        "no credential store on this OS".into(),
    ))
}
