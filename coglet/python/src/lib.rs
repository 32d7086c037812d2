//! PyO3 bridge between the coglet server core and Python (`coglet._impl`).
//!
//! - `server`: a frozen object (repr `coglet.server`) with `serve(...)` (the parent: runs the
//!   HTTP server with the GIL released), `_run_worker()` (the worker subprocess: runs
//!   `coglet::worker::run` with a [`handler::PyHandler`] that drives `coglet._worker.Worker`)
//!   and `active` (true inside a worker).
//! - `__build__`: [`BuildInfo`], what this extension was built from.
//! - `_sdk`: `Scope`, `MetricRecorder`, `current_scope`, `_SlotLogWriter`, `_TeeWriter` (see [`sdk`]).

mod convert;
mod handler;
mod outcome;
mod queue;
mod sdk;
mod serve;

use std::sync::atomic::{AtomicBool, Ordering};

use coglet::worker::WorkerError;
use pyo3::create_exception;
use pyo3::exceptions::{PyBaseException, PyRuntimeError, PySystemExit};
use pyo3::prelude::*;

create_exception!(
    coglet,
    CancelationException,
    PyBaseException,
    "Raised inside a sync run() when its prediction is canceled. Re-raise it if you catch it."
);

/// Set once this process has become a worker (`coglet.server.active`).
static WORKER_ACTIVE: AtomicBool = AtomicBool::new(false);

/// The worker subprocess's entry point: `python -c "import coglet; coglet.server._run_worker()"`.
/// Must run on the main thread: setup and sync predictions run here, so that a cancel can
/// interrupt blocking calls with a signal.
#[pyfunction(name = "_run_worker")]
fn run_worker(py: Python<'_>) -> PyResult<()> {
    let worker = py
        .import("coglet._worker")?
        .getattr("Worker")?
        .call0()?
        .unbind();
    WORKER_ACTIVE.store(true, Ordering::SeqCst);
    let handler = handler::PyHandler::new(worker);
    match py.detach(|| coglet::worker::run(handler)) {
        Ok(()) => Ok(()),
        // The error already reached the server as SetupFailed; exit non-zero quietly.
        Err(WorkerError::Setup(_)) => Err(PySystemExit::new_err(1)),
        Err(e) => Err(PyRuntimeError::new_err(e.to_string())),
    }
}

/// `coglet.__build__`: what this extension was built from (see `build.rs`).
#[pyclass(frozen, name = "BuildInfo", module = "coglet")]
pub struct BuildInfo {
    #[pyo3(get)]
    version: &'static str,
    #[pyo3(get)]
    git_sha: &'static str,
    #[pyo3(get)]
    build_time: &'static str,
    #[pyo3(get)]
    rustc_version: &'static str,
}

impl BuildInfo {
    const CURRENT: Self = Self {
        version: env!("CARGO_PKG_VERSION"),
        git_sha: env!("COGLET_GIT_SHA"),
        build_time: env!("COGLET_BUILD_TIME"),
        rustc_version: env!("COGLET_RUSTC_VERSION"),
    };
}

#[pymethods]
impl BuildInfo {
    fn __repr__(&self) -> String {
        format!(
            "BuildInfo(version='{}', git_sha='{}', build_time='{}', rustc_version='{}')",
            self.version, self.git_sha, self.build_time, self.rustc_version
        )
    }
}

/// `coglet.server`: the server's entry points. Frozen: no attribute can be set.
#[pyclass(frozen, name = "Server", module = "coglet")]
pub struct Server;

// The methods are Python's API: `self` is the singleton and carries nothing.
#[pymethods]
#[allow(clippy::unused_self)]
impl Server {
    /// True inside a worker subprocess (where predictions run), false elsewhere.
    #[getter]
    fn active(&self) -> bool {
        WORKER_ACTIVE.load(Ordering::SeqCst)
    }

    /// Runs the prediction server until shutdown (the GIL is released meanwhile).
    #[pyo3(signature = (
        predictor_ref=None,
        host="0.0.0.0".to_owned(),
        port=5000,
        await_explicit_shutdown=false,
        is_train=false,
        upload_url=None,
    ))]
    #[allow(clippy::fn_params_excessive_bools, clippy::too_many_arguments)]
    fn serve(
        &self,
        py: Python<'_>,
        predictor_ref: Option<String>,
        host: String,
        port: u16,
        await_explicit_shutdown: bool,
        is_train: bool,
        upload_url: Option<String>,
    ) -> PyResult<()> {
        serve::serve(
            py,
            serve::ServeArgs {
                predictor_ref,
                host,
                port,
                await_explicit_shutdown,
                is_train,
                upload_url,
            },
        )
    }

    /// The worker subprocess's entry point.
    fn _run_worker(&self, py: Python<'_>) -> PyResult<()> {
        run_worker(py)
    }

    fn __repr__(&self) -> &'static str {
        "coglet.server"
    }
}

#[pymodule]
fn _impl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("__build__", BuildInfo::CURRENT)?;
    m.add("server", Server)?;
    m.add(
        "CancelationException",
        py.get_type::<CancelationException>(),
    )?;
    m.add_function(wrap_pyfunction!(run_worker, m)?)?;
    sdk::register(m)?;
    m.add_class::<queue::PredictionQueue>()?;
    Ok(())
}
