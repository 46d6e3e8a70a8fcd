//! Registry clients: HTTP with the system trust store, retries for transient
//! faults, credentials sent only to their own origin.

pub mod http;
pub mod npm;
pub mod pypi;
