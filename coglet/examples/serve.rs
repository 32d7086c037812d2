//! Runs the coglet server from the environment, as `python -m cog.server.http` would.
//! Handy for benchmarks and manual tests with the Rust test worker:
//!
//! ```sh
//! COGLET_WORKER_COMMAND='["target/release/examples/test_worker"]' \
//!   COG_PREDICT_TYPE_STUB=predict.py:Runner PORT=5000 \
//!   cargo run --release -p coglet --example serve
//! ```

fn main() {
    coglet::init_logging();
    let mut config = coglet::ServeConfig::from_env(false);
    if let Some(host) = std::env::args().nth(1) {
        config.host = host;
    }
    if let Err(e) = coglet::serve_blocking(config) {
        eprintln!("coglet: {e}");
        std::process::exit(1);
    }
}
