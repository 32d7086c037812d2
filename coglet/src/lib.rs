//! coglet: the Rust prediction server core (axum), orchestrator and worker IPC
