//! The npm side: specs, npm's configuration, the registry's packuments, npm's tree building, what
//! a tarball's `package.json` declares, the `node_modules` tree, and the
//! pipeline that runs them.

pub mod config;
pub mod inspect;
pub mod pipeline;
pub mod registry;
pub mod resolve;
pub mod spec;
pub mod tree;
