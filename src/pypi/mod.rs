//! The PyPI side: specs, interpreters, wheel tags, metadata, wheels, venvs.

pub mod interpreter;
pub mod metadata;
pub mod spec;
pub mod tags;
pub mod venv;
pub mod wheel;
