//! Shared test helpers. Each integration test file does `mod support;` and
//! uses what it needs; not every file uses every helper.
#![allow(dead_code)]

pub mod corpus;
pub mod env;
pub mod fixture;
pub mod http;
pub mod mcp;
pub mod pyfixture;
pub mod pypiserver;
pub mod tls;
pub mod verdaccio;
