//! The three config formats, each read by a scanner that keeps byte spans so
//! that a rewrite is a splice into the original text.

pub mod jsonc;
pub mod toml;
pub mod yaml;
