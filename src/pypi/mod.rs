//! The PyPI side: specs, the simple index, PubGrub resolution, interpreters,
//! wheel tags, metadata, wheels (RECORD, startup hooks, entry points), venvs,
//! and the pipeline that runs them.

pub mod config;
pub mod entry_points;
pub mod index;
pub mod interpreter;
pub mod metadata;
pub mod pipeline;
pub mod record;
pub mod resolve;
mod simple;
pub mod spec;
pub mod startup_hooks;
pub mod tags;
pub mod venv;
pub mod wheel;
#[cfg(test)]
mod wheel_fixture;
