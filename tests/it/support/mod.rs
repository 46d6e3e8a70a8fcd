//! Shared test helpers for every module of the integration tests.

pub mod corpus;
pub mod env;
pub mod fixture;
pub mod http;
pub mod keyring;
pub mod mcp;
pub mod pyfixture;
pub mod pypiserver;
pub mod sandbox;
pub mod snapshot;
pub mod tls;
pub mod verdaccio;
