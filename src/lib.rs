//! cog-rs: a daemonless, drop-in replacement for Cog.
//!
//! Data flows one way: `config` -> `schema` -> `resolve` -> `plan` (Stack, Blocks, Composer)
//! -> `builder` -> layers (the `layers` crate) -> `oci` / `registry`. The CLI (`cli`) parses
//! flags, makes one [`session::Session`] per command and calls the stages; `runtime` runs built
//! images; `inputs` turns `-i` flags into a prediction request.

pub mod base;
pub mod blocks;
pub mod builder;
pub mod cli;
pub mod config;
pub mod go;
pub mod inputs;
pub mod oci;
pub mod plan;
pub mod registry;
pub mod remote_cache;
pub mod resolve;
pub mod runtime;
pub mod sandbox;
pub mod schema;
pub mod session;
pub mod source_build;
pub mod weights;

/// This CLI's version, baked into images as `run.cog.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
