//! `coglet.server.serve(...)`: the parent process (HTTP server + worker supervision).

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
        "import coglet; coglet._run_worker()".to_owned(),
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

#[pyfunction]
#[pyo3(signature = (
    predictor_ref=None,
    host="0.0.0.0".to_owned(),
    port=5000,
    await_explicit_shutdown=false,
    is_train=false,
    upload_url=None,
))]
#[allow(clippy::fn_params_excessive_bools, clippy::needless_pass_by_value)]
pub fn serve(
    py: Python<'_>,
    predictor_ref: Option<String>,
    host: String,
    port: u16,
    await_explicit_shutdown: bool,
    is_train: bool,
    upload_url: Option<String>,
) -> PyResult<()> {
    init_logging();
    let mut config = ServeConfig::from_env(is_train);
    if predictor_ref.is_some() {
        config.predictor_ref = predictor_ref;
    }
    config.host = host;
    config.port = port;
    config.await_explicit_shutdown = await_explicit_shutdown;
    config.upload_url = upload_url.filter(|u| !u.is_empty());
    if std::env::var_os("COGLET_WORKER_COMMAND").is_none() {
        config.worker_command = worker_command(py)?;
    }
    if config.sdk_version.is_none() {
        config.sdk_version = sdk_version(py);
    }
    py.detach(|| coglet::serve_blocking(config))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}
