//! `coglet.server.serve(...)`: the parent process (HTTP server + worker supervision).
//! Logs `Starting coglet server on HOST:PORT` once the socket is bound.

use coglet::ServeConfig;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How the server starts its worker: this interpreter, so the worker sees the same
/// environment (a venv's `python` need not be first on PATH).
fn worker_command(py: Python<'_>) -> PyResult<Vec<String>> {
    let executable: String = py.import("sys")?.getattr("executable")?.extract()?;
    let program = if executable.is_empty() {
        "python".to_owned()
    } else {
        executable
    };
    Ok(vec![
        program,
        "-c".to_owned(),
        "import coglet; coglet.server._run_worker()".to_owned(),
    ])
}

fn sdk_version(py: Python<'_>) -> Option<String> {
    py.import("cog._version")
        .and_then(|m| m.getattr("__version__"))
        .and_then(|v| v.extract())
        .ok()
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            std::env::var("COG_LOG_LEVEL")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second serve() in one process keeps the first subscriber: ignore the error.
    let _ = if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "console") {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}

/// What `coglet.server.serve(...)` was called with.
pub struct ServeArgs {
    pub predictor_ref: Option<String>,
    pub host: String,
    pub port: u16,
    pub await_explicit_shutdown: bool,
    pub is_train: bool,
    pub upload_url: Option<String>,
}

/// Binds, announces the bound address, then serves until shutdown.
async fn bind_and_run(config: ServeConfig) -> Result<(), String> {
    let server = coglet::Server::bind(config)
        .await
        .map_err(|e| e.to_string())?;
    let addr = server
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // Cog's wording: tools (Cog's own tests among them) find the port of a `port=0` server here.
    tracing::info!("Starting coglet server on {addr}");
    server.run().await.map_err(|e| e.to_string())
}

pub fn serve(py: Python<'_>, args: ServeArgs) -> PyResult<()> {
    init_logging();
    let mut config = ServeConfig::from_env(args.is_train)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    if args.predictor_ref.is_some() {
        config.predictor_ref = args.predictor_ref;
    }
    config.host = args.host;
    config.port = args.port;
    config.await_explicit_shutdown = args.await_explicit_shutdown;
    config.upload_url = args.upload_url.filter(|u| !u.is_empty());
    if std::env::var_os("COGLET_WORKER_COMMAND").is_none() {
        config.worker_command = worker_command(py)?;
    }
    if config.sdk_version.is_none() {
        config.sdk_version = sdk_version(py);
    }
    py.detach(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?
            .block_on(bind_and_run(config))
    })
    .map_err(PyRuntimeError::new_err)
}
