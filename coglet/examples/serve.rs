//! Runs the coglet server from the environment, as `python -m cog.server.http` would, and
//! prints `listening on ADDR` on stdout once bound (`PORT=0` picks a free port).
//! Handy for benchmarks and manual tests with the Rust test worker:
//!
//! ```sh
//! COGLET_WORKER_COMMAND='["target/release/examples/test_worker"]' \
//!   COG_PREDICT_TYPE_STUB=predict.py:Runner PORT=5000 \
//!   cargo run --release -p coglet --example serve
//! ```

use std::io::Write;

fn main() {
    coglet::init_logging();
    let mut config = match coglet::ServeConfig::from_env(false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coglet: {e}");
            std::process::exit(2);
        }
    };
    if let Some(host) = std::env::args().nth(1) {
        config.host = host;
    }
    let served = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(coglet::ServeError::Runtime)
        .and_then(|rt| {
            rt.block_on(async {
                let server = coglet::Server::bind(config).await?;
                if let Ok(addr) = server.local_addr() {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "listening on {addr}");
                    let _ = out.flush();
                }
                server.run().await
            })
        });
    if let Err(e) = served {
        eprintln!("coglet: {e}");
        std::process::exit(1);
    }
}
