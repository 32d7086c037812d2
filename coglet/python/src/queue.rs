//! `coglet._impl._PredictionQueue`: the worker loop's [`Dispatcher`] as an async runner's
//! asyncio loop sees it (`coglet/_worker.py`, `Worker.serve_on_loop`).

use std::sync::Arc;

use coglet::worker::Dispatcher;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyList, PyTuple};

use crate::sdk::Prediction;

#[pyclass(frozen, name = "_PredictionQueue", module = "coglet._impl")]
pub struct PredictionQueue {
    dispatcher: Arc<Dispatcher>,
}

impl PredictionQueue {
    pub fn new(dispatcher: Arc<Dispatcher>) -> Self {
        Self { dispatcher }
    }
}

#[pymethods]
impl PredictionQueue {
    /// Readable when `take()` may return predictions (for `loop.add_reader`).
    fn fileno(&self) -> i32 {
        self.dispatcher.wake_fd()
    }

    /// Every prediction waiting to start, as `(slot, prediction, input_json, output_dir)`;
    /// often empty. Each `prediction` must be ended with `prediction.finish(outcome)`.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for started in self.dispatcher.take() {
            let request = started.request;
            let context = (&request.context).into_py_dict(py)?;
            let input = request.input.to_string();
            let prediction = Py::new(
                py,
                Prediction::with_ticket(started.ticket, context.unbind()),
            )?;
            let item = PyTuple::new(
                py,
                [
                    started.slot.into_pyobject(py)?.into_any(),
                    prediction.into_bound(py).into_any(),
                    input.into_pyobject(py)?.into_any(),
                    request.output_dir.as_os_str().into_pyobject(py)?.into_any(),
                ],
            )?;
            list.append(item)?;
        }
        Ok(list)
    }
}
