//! `PredictHandler` for Python runners: each call goes to a `coglet._worker.Worker` object.
//!
//! The Python side owns the runner logic (loading, setup, input coercion, running sync and
//! async code, output encoding, cancellation); this side converts between the worker loop's
//! Rust types and Python values. See `docs/python-sdk.md` for the threading model.

use std::collections::HashMap;

use coglet::ipc::SlotId;
use std::sync::Arc;

use coglet::worker::{
    Dispatcher, OutputSink, PredictHandler, PredictOutcome, PredictRequest, SetupInfo, SetupRequest,
};
use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

use crate::CancelationException;
use crate::outcome::parse_outcome;
use crate::queue::PredictionQueue;
use crate::sdk::Prediction;

pub struct PyHandler {
    worker: Py<PyAny>,
}

impl PyHandler {
    pub fn new(worker: Py<PyAny>) -> Self {
        Self { worker }
    }
}

/// `ExcType: message` for errors that cross into Rust (the traceback is already in the logs).
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let name = err
        .get_type(py)
        .name()
        .map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
    let message = err.value(py).to_string();
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

impl PredictHandler for PyHandler {
    fn setup(&self, request: &SetupRequest) -> Result<SetupInfo, String> {
        Python::attach(|py| {
            let result = self.worker.call_method1(
                py,
                "setup",
                (
                    request.predictor_ref.as_str(),
                    request.is_train,
                    request.num_slots,
                    request.weights.as_deref(),
                ),
            );
            match result {
                Ok(versions) => {
                    let versions: HashMap<String, String> =
                        versions.extract(py).map_err(|e| describe(py, &e))?;
                    // A sync runner runs one prediction at a time (Cog): with
                    // COG_MAX_CONCURRENCY > 1 its predictions queue in the worker.
                    let is_async: bool = self
                        .worker
                        .getattr(py, "is_async")
                        .and_then(|v| v.extract(py))
                        .map_err(|e| describe(py, &e))?;
                    Ok(SetupInfo {
                        schema: None,
                        versions,
                        one_at_a_time: !is_async,
                    })
                }
                // The worker already printed the traceback into the setup logs.
                Err(e) => Err(e.value(py).to_string()),
            }
        })
    }

    fn predict(&self, slot: SlotId, request: PredictRequest, sink: &OutputSink) -> PredictOutcome {
        let input = match serde_json::to_string(&request.input) {
            Ok(s) => s,
            Err(e) => return PredictOutcome::InvalidInput(format!("input is not valid JSON: {e}")),
        };
        Python::attach(|py| {
            let run = || -> PyResult<PredictOutcome> {
                let context = (&request.context).into_py_dict(py)?;
                let prediction = Py::new(py, Prediction::new(sink.clone(), context.unbind()))?;
                let result = self.worker.call_method1(
                    py,
                    "predict",
                    (slot, prediction, input, request.output_dir.as_os_str()),
                )?;
                parse_outcome(result.bind(py))
            };
            match run() {
                Ok(outcome) => outcome,
                // A cancel that landed after the runner returned, while the worker wrapped up.
                Err(e) if e.is_instance_of::<CancelationException>(py) => PredictOutcome::Canceled,
                Err(e) => PredictOutcome::Failed(describe(py, &e)),
            }
        })
    }

    /// Async runners: their asyncio loop takes every prediction from the dispatcher itself
    /// (`Worker.serve_on_loop`); sync runners keep a thread per slot.
    fn serve_on_event_loop(&self, dispatcher: &Arc<Dispatcher>) -> bool {
        Python::attach(|py| {
            let queue = match Py::new(py, PredictionQueue::new(Arc::clone(dispatcher))) {
                Ok(q) => q,
                Err(e) => {
                    tracing::error!(
                        "could not create the prediction queue: {}",
                        describe(py, &e)
                    );
                    return false;
                }
            };
            match self.worker.call_method1(py, "serve_on_loop", (queue,)) {
                Ok(v) => v.extract::<bool>(py).unwrap_or(false),
                Err(e) => {
                    tracing::error!("could not attach the event loop: {}", describe(py, &e));
                    false
                }
            }
        })
    }

    fn cancel(&self, slot: SlotId, prediction_id: &str) {
        Python::attach(|py| {
            if let Err(e) = self
                .worker
                .call_method1(py, "cancel", (slot, prediction_id))
            {
                tracing::warn!(prediction_id, "cancel failed: {}", describe(py, &e));
            }
        });
    }

    fn healthcheck(&self) -> Result<(), String> {
        Python::attach(|py| match self.worker.call_method0(py, "healthcheck") {
            Ok(v) if v.is_none(py) => Ok(()),
            Ok(v) => Err(v.bind(py).to_string()),
            Err(e) => Err(describe(py, &e)),
        })
    }

    fn shutdown(&self) {
        Python::attach(|py| {
            if let Err(e) = self.worker.call_method0(py, "shutdown") {
                tracing::warn!("shutdown failed: {}", describe(py, &e));
            }
        });
    }
}
