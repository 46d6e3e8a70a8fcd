//! Dependency resolution: from a root spec to a whole tree.

pub mod npm;
pub mod pypi;
