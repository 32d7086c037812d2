//! coglet: the Rust prediction server core (axum), orchestrator and worker IPC.
//!
//! - [`serve`] runs the HTTP server and supervises the worker subprocess (the parent).
//! - [`worker::run`] is the event loop inside the worker subprocess; the runner plugs in
//!   through [`worker::PredictHandler`].
//! - [`ipc`] is the framed, versioned protocol between the two (`docs/ipc.md`).

pub mod config;
pub mod connections;
pub mod files;
pub mod health;
pub mod ipc;
pub mod logging;
pub mod metrics;
pub mod prediction;
pub mod routes;
pub mod schema;
pub mod server;
pub mod service;
pub mod supervisor;
pub mod sync;
pub mod webhook;
pub mod worker;

pub use config::{ConfigError, ConnectionLimits, ServeConfig};
pub use logging::init_logging;
pub use server::{ServeError, Server, ShutdownHandle, serve, serve_blocking};
