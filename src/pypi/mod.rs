//! The PyPI side: specs, the simple index, PubGrub resolution, interpreters,
//! wheel tags, metadata, wheels, venvs, and the pipeline that runs them.

pub mod config;
pub mod index;
pub mod interpreter;
pub mod metadata;
pub mod pipeline;
pub mod resolve;
mod simple;
pub mod spec;
pub mod tags;
pub mod venv;
pub mod wheel;
