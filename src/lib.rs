//! cog-rs: a daemonless, drop-in replacement for Cog.
//!
//! Data flows one way: `config` -> `schema` -> `plan` (Stack, Blocks, Composer) -> `builder`
//! -> layers (the `layers` crate) -> `oci` / `registry`.

pub mod blocks;
pub mod builder;
pub mod cli;
pub mod config;
pub mod inputs;
pub mod oci;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod schema;
