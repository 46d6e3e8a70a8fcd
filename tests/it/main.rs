//! The integration tests: one binary (one link, one `support` module),
//! one module per area. Each runs the real `safex` binary against real or
//! fixture registries on 127.0.0.1.
//!
//! `cargo test --test it` runs them all; `cargo test --test it conformance`
//! one area.

mod support;

mod cache_bytes;
mod cache_dirs;
mod conformance;
mod lock_edits;
mod mcp_config;
mod mcp_e2e;
mod net_deadlines;
mod npm_cli;
mod npm_threats;
mod policy;
mod policy_audit;
mod policy_env;
mod pypi_cli;
mod pypi_threats;
mod pypiserver;
mod relay;
mod relay_mcp;
mod relay_pins;
mod sandbox_mcp;
mod sandbox_probe;
mod secrets;
mod verdaccio;
