//! PyO3 bridge between the coglet server core and Python (`coglet._impl`).
//!
//! - `serve(...)`: the parent: runs `coglet::serve` with the GIL released.
//! - `_run_worker()`: the worker subprocess: runs `coglet::worker::run` with a
//!   [`handler::PyHandler`] that drives `coglet._worker.Worker` (Python).
//! - `_sdk`: `Scope`, `MetricRecorder`, `current_scope`, `SlotLogWriter` (see [`sdk`]).

mod convert;
mod handler;
mod queue;
mod sdk;
mod serve;

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

/// The worker subprocess's entry point: `python -c "import coglet; coglet._run_worker()"`.
/// Must run on the main thread: setup and sync predictions run here, so that a cancel can
/// interrupt blocking calls with a signal.
#[pyfunction]
fn _run_worker(py: Python<'_>) -> PyResult<()> {
    let worker = py
        .import("coglet._worker")?
        .getattr("Worker")?
        .call0()?
        .unbind();
    let handler = handler::PyHandler::new(worker);
    match py.detach(|| coglet::worker::run(handler)) {
        Ok(()) => Ok(()),
        // The error already reached the server as SetupFailed; exit non-zero quietly.
        Err(WorkerError::Setup(_)) => Err(PySystemExit::new_err(1)),
        Err(e) => Err(PyRuntimeError::new_err(e.to_string())),
    }
}

#[pymodule]
fn _impl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "CancelationException",
        py.get_type::<CancelationException>(),
    )?;
    m.add_function(wrap_pyfunction!(serve::serve, m)?)?;
    m.add_function(wrap_pyfunction!(_run_worker, m)?)?;
    sdk::register(m)?;
    m.add_class::<queue::PredictionQueue>()?;
    Ok(())
}
