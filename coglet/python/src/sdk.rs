//! `coglet._impl._sdk`: what user code touches during a prediction.
//!
//! - `_Prediction`: the running prediction (its `OutputSink`, `context`, partial log lines).
//!   The worker stores it in a `ContextVar` (`_sdk._current`) for the prediction's duration:
//!   each thread has its own context, so a sync runner (main thread) and every asyncio task
//!   (a context copy per task) see their own prediction.
//! - `Scope`, `MetricRecorder`, `current_scope()`: `cog.current_scope()` and metrics (2.6).
//! - `_SlotLogWriter`: replaces `sys.stdout`/`sys.stderr`; routes lines to the current
//!   prediction's `logs`, else to the original stream (captured fd 1/2 -> server log).
//! - `_TeeWriter`: when user code replaces `sys.stdout`/`sys.stderr` with its own stream, the
//!   worker wraps that stream so that writes reach both it and the prediction's `logs`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use coglet::ipc::{LogSource, MetricMode};
use coglet::metrics::MetricError;
use coglet::worker::{OutputSink, PredictOutcome, SinkError, Ticket};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

use crate::convert::{to_json, type_name};

static CURRENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The `ContextVar` holding the current `_Prediction` (or None).
pub fn current_var(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    CURRENT
        .get_or_try_init(py, || {
            let kwargs = PyDict::new(py);
            kwargs.set_item("default", py.None())?;
            py.import("contextvars")?
                .getattr("ContextVar")?
                .call(("coglet_prediction",), Some(&kwargs))
                .map(Bound::unbind)
        })
        .map(|var| var.bind(py))
}

fn current_prediction(py: Python<'_>) -> PyResult<Option<Bound<'_, Prediction>>> {
    let value = current_var(py)?.call_method0("get")?;
    Ok(value.cast_into::<Prediction>().ok())
}

/// The Python exception Cog raises for each error: a bad metric name is a `ValueError`; a
/// value of the wrong type (or a type change without delete) is a `TypeError`.
fn sink_error(e: SinkError) -> PyErr {
    match e {
        SinkError::Closed => PyRuntimeError::new_err(e.to_string()),
        SinkError::Metric(m @ MetricError::InvalidName { .. }) => {
            PyValueError::new_err(m.to_string())
        }
        SinkError::Metric(m) => PyTypeError::new_err(m.to_string()),
        SinkError::Io(io) => PyOSError::new_err(io.to_string()),
    }
}

fn parse_source(source: &str) -> PyResult<LogSource> {
    match source {
        "stdout" => Ok(LogSource::Stdout),
        "stderr" => Ok(LogSource::Stderr),
        other => Err(PyValueError::new_err(format!(
            "log source must be 'stdout' or 'stderr', got '{other}'"
        ))),
    }
}

/// One running prediction, as the worker and the SDK objects see it.
#[pyclass(frozen, name = "_Prediction", module = "coglet._impl._sdk")]
pub struct Prediction {
    sink: OutputSink,
    context: Py<PyDict>,
    /// Partial lines (no newline yet) of stdout and stderr.
    pending: Mutex<[String; 2]>,
    /// Event-loop mode: how the loop ends the prediction ([`Prediction::finish`]). Dropped
    /// unused, it fails the prediction.
    ticket: Mutex<Option<Ticket>>,
}

impl Prediction {
    pub fn new(sink: OutputSink, context: Py<PyDict>) -> Self {
        Self {
            sink,
            context,
            pending: Mutex::new([String::new(), String::new()]),
            ticket: Mutex::new(None),
        }
    }

    /// A prediction that the event loop ends itself with `finish(outcome)`.
    pub fn with_ticket(ticket: Ticket, context: Py<PyDict>) -> Self {
        Self {
            sink: ticket.sink().clone(),
            context,
            pending: Mutex::new([String::new(), String::new()]),
            ticket: Mutex::new(Some(ticket)),
        }
    }

    /// Line-buffered: whole lines go out now, a trailing partial line waits.
    fn log(&self, source: LogSource, data: &str) {
        let index = usize::from(source == LogSource::Stderr);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let buf = &mut pending[index];
        buf.push_str(data);
        if let Some(end) = buf.rfind('\n') {
            let rest = buf.split_off(end + 1);
            let lines = std::mem::replace(buf, rest);
            for line in lines.split_inclusive('\n') {
                // A finished prediction drops late writes: nothing useful to do with them.
                let _ = self.sink.log(source, line);
            }
        }
    }

    fn flush(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for (index, source) in [LogSource::Stdout, LogSource::Stderr]
            .into_iter()
            .enumerate()
        {
            let mut line = std::mem::take(&mut pending[index]);
            if !line.is_empty() {
                line.push('\n');
                let _ = self.sink.log(source, &line);
            }
        }
    }

    fn metric(&self, name: &str, value: &Bound<'_, PyAny>, mode: &str) -> PyResult<()> {
        let mode = MetricMode::from_str(mode).map_err(PyTypeError::new_err)?;
        let value = to_json(value).map_err(|e| {
            PyTypeError::new_err(format!("metric '{name}': {}", e.value(value.py())))
        })?;
        self.sink.metric(name, value, mode).map_err(sink_error)
    }
}

#[pymethods]
impl Prediction {
    #[getter]
    fn id(&self) -> &str {
        self.sink.prediction_id()
    }

    #[getter]
    fn context(&self, py: Python<'_>) -> Py<PyDict> {
        self.context.clone_ref(py)
    }

    #[getter]
    fn output_dir(&self) -> PathBuf {
        self.sink.output_dir().to_path_buf()
    }

    fn write_log(&self, source: &str, data: &str) -> PyResult<()> {
        self.log(parse_source(source)?, data);
        Ok(())
    }

    fn flush_logs(&self) {
        self.flush();
    }

    /// One streamed output item, already encoded as JSON text.
    fn output_json(&self, py: Python<'_>, text: &str) -> PyResult<()> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| PyValueError::new_err(format!("output is not valid JSON: {e}")))?;
        py.detach(|| self.sink.output(value)).map_err(sink_error)
    }

    /// One streamed output item that is a file.
    #[pyo3(signature = (path, mime_type=None))]
    fn output_file(&self, path: PathBuf, mime_type: Option<String>) -> PyResult<()> {
        self.sink
            .file(path, mime_type.filter(|m| !m.is_empty()))
            .map_err(sink_error)
    }

    #[pyo3(signature = (name, value, mode="replace"))]
    fn record_metric(&self, name: &str, value: &Bound<'_, PyAny>, mode: &str) -> PyResult<()> {
        self.metric(name, value, mode)
    }

    /// Event-loop mode: ends the prediction with the worker's outcome tuple (`("done", output,
    /// is_stream)`, `("failed", msg)`, `("invalid_input", msg)`, `("cancelled",)`) and sends
    /// its result. Only the first call counts.
    fn finish(&self, outcome: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(ticket) = self
            .ticket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(PyRuntimeError::new_err(
                "this prediction has already finished",
            ));
        };
        self.flush();
        let outcome = crate::outcome::parse_outcome(outcome).unwrap_or_else(|e| {
            PredictOutcome::Failed(format!(
                "internal error: bad outcome from the worker: {}",
                e.value(outcome.py())
            ))
        });
        ticket.finish(outcome);
        Ok(())
    }
}

/// `scope.metrics`: `record(k, v, mode)`, `delete(k)`, `m[k] = v`, `del m[k]`.
/// Outside a prediction (no `_Prediction`) every call is a silent no-op.
#[pyclass(frozen, module = "coglet._impl._sdk")]
pub struct MetricRecorder {
    prediction: Option<Py<Prediction>>,
}

#[pymethods]
impl MetricRecorder {
    #[pyo3(signature = (key, value, mode="replace"))]
    fn record(
        &self,
        py: Python<'_>,
        key: &str,
        value: &Bound<'_, PyAny>,
        mode: &str,
    ) -> PyResult<()> {
        match &self.prediction {
            Some(p) => p.bind(py).get().metric(key, value, mode),
            None => MetricMode::from_str(mode)
                .map(drop)
                .map_err(PyTypeError::new_err),
        }
    }

    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        self.record(py, key, &py.None().into_bound(py), "replace")
    }

    fn __setitem__(&self, py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.record(py, key, value, "replace")
    }

    fn __delitem__(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        self.delete(py, key)
    }
}

/// What `cog.current_scope()` returns.
#[pyclass(frozen, module = "coglet._impl._sdk")]
pub struct Scope {
    metrics: Py<MetricRecorder>,
    context: Py<PyDict>,
}

#[pymethods]
impl Scope {
    #[getter]
    fn metrics(&self, py: Python<'_>) -> Py<MetricRecorder> {
        self.metrics.clone_ref(py)
    }

    /// The request's `context` (a copy for each prediction; empty outside one).
    #[getter]
    fn context(&self, py: Python<'_>) -> Py<PyDict> {
        self.context.clone_ref(py)
    }

    #[pyo3(signature = (key, value, mode="replace"))]
    fn record_metric(
        &self,
        py: Python<'_>,
        key: &str,
        value: &Bound<'_, PyAny>,
        mode: &str,
    ) -> PyResult<()> {
        self.metrics.bind(py).get().record(py, key, value, mode)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        if self.metrics.bind(py).get().prediction.is_some() {
            "Scope(prediction)".to_owned()
        } else {
            "Scope(no-op)".to_owned()
        }
    }
}

/// The current prediction's scope, or a no-op scope outside a prediction (never None).
#[pyfunction]
pub fn current_scope(py: Python<'_>) -> PyResult<Scope> {
    let prediction = current_prediction(py)?;
    let context = match &prediction {
        Some(p) => p.get().context.clone_ref(py),
        None => PyDict::new(py).unbind(),
    };
    let metrics = Py::new(
        py,
        MetricRecorder {
            prediction: prediction.map(Bound::unbind),
        },
    )?;
    Ok(Scope { metrics, context })
}

/// Replacement for `sys.stdout` / `sys.stderr` in the worker (`coglet._sdk._SlotLogWriter`,
/// also importable as `SlotLogWriter`).
#[pyclass(frozen, name = "_SlotLogWriter", module = "coglet._impl._sdk")]
pub struct SlotLogWriter {
    source: LogSource,
    /// The stream this one replaced (writes to fd 1/2, which the worker captures).
    original: Py<PyAny>,
}

// The io.TextIOBase protocol: several methods are constants but must be methods.
#[pymethods]
#[allow(clippy::unused_self)]
impl SlotLogWriter {
    #[new]
    fn new(source: &str, original: Py<PyAny>) -> PyResult<Self> {
        Ok(Self {
            source: parse_source(source)?,
            original,
        })
    }

    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let Ok(text) = data.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "write() argument must be str, not {}",
                type_name(data)
            )));
        };
        let text = text.to_str()?;
        if let Some(p) = current_prediction(py)? {
            p.get().log(self.source, text);
        } else {
            let original = self.original.bind(py);
            original.call_method1("write", (text,))?;
            if text.contains('\n') {
                original.call_method0("flush")?;
            }
        }
        Ok(text.chars().count())
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(py, &line?)?;
        }
        Ok(())
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        if current_prediction(py)?.is_none() {
            self.original.bind(py).call_method0("flush")?;
        }
        Ok(())
    }

    fn isatty(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        true
    }

    fn readable(&self) -> bool {
        false
    }

    fn seekable(&self) -> bool {
        false
    }

    fn fileno(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.original
            .bind(py)
            .call_method0("fileno")
            .map(Bound::unbind)
    }

    #[getter]
    fn closed(&self) -> bool {
        false
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }

    #[getter]
    fn errors(&self) -> &'static str {
        "strict"
    }

    #[getter]
    fn name(&self) -> &'static str {
        match self.source {
            LogSource::Stdout => "<stdout>",
            LogSource::Stderr => "<stderr>",
        }
    }

    /// Bytes written to `.buffer` bypass prediction routing (they reach the server log).
    #[getter]
    fn buffer(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.original.bind(py).getattr("buffer").map(Bound::unbind)
    }

    #[getter]
    fn original(&self, py: Python<'_>) -> Py<PyAny> {
        self.original.clone_ref(py)
    }
}

/// What the worker puts in `sys.stdout`/`sys.stderr` when user code has replaced them with a
/// stream of its own (a logging library, a file): every write goes to the `_SlotLogWriter`
/// (so the prediction's `logs` keep it) and to the user's stream (so it works as intended).
#[pyclass(frozen, name = "_TeeWriter", module = "coglet._impl._sdk")]
pub struct TeeWriter {
    inner: Py<PyAny>,
    user_stream: Py<PyAny>,
    name: String,
    closed: AtomicBool,
}

// The io.TextIOBase protocol: several methods are constants but must be methods.
#[pymethods]
#[allow(clippy::unused_self)]
impl TeeWriter {
    #[new]
    fn new(inner: Py<PyAny>, user_stream: Py<PyAny>, name: String) -> Self {
        Self {
            inner,
            user_stream,
            name,
            closed: AtomicBool::new(false),
        }
    }

    /// Writes to the slot writer, then to the user's stream; an error of either is raised.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let Ok(text) = data.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "write() argument must be str, not {}",
                type_name(data)
            )));
        };
        if self.closed.load(Ordering::Relaxed) {
            return Err(PyValueError::new_err("I/O operation on closed file."));
        }
        self.inner.bind(py).call_method1("write", (text,))?;
        self.user_stream.bind(py).call_method1("write", (text,))?;
        Ok(text.to_str()?.chars().count())
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(py, &line?)?;
        }
        Ok(())
    }

    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.bind(py).call_method0("flush")?;
        self.user_stream.bind(py).call_method0("flush")?;
        Ok(())
    }

    /// Closes the tee only: neither the slot writer nor the user's stream is closed.
    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn writable(&self) -> bool {
        !self.closed.load(Ordering::Relaxed)
    }

    fn readable(&self) -> bool {
        false
    }

    fn seekable(&self) -> bool {
        false
    }

    fn isatty(&self, py: Python<'_>) -> PyResult<bool> {
        self.user_stream.bind(py).call_method0("isatty")?.extract()
    }

    fn fileno(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.user_stream
            .bind(py)
            .call_method0("fileno")
            .map(Bound::unbind)
    }

    #[getter]
    fn encoding(&self, py: Python<'_>) -> Py<PyAny> {
        self.user_stream.bind(py).getattr("encoding").map_or_else(
            |_| PyString::new(py, "utf-8").into_any().unbind(),
            Bound::unbind,
        )
    }

    /// `stdout` or `stderr`: which `sys` attribute this tee stands in.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    #[getter]
    fn inner(&self, py: Python<'_>) -> Py<PyAny> {
        self.inner.clone_ref(py)
    }

    #[getter]
    fn user_stream(&self, py: Python<'_>) -> Py<PyAny> {
        self.user_stream.clone_ref(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> bool {
        false
    }
}

pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = parent.py();
    let m = PyModule::new(py, "_sdk")?;
    m.add_class::<Prediction>()?;
    m.add_class::<MetricRecorder>()?;
    m.add_class::<Scope>()?;
    m.add_class::<SlotLogWriter>()?;
    m.add("SlotLogWriter", m.getattr("_SlotLogWriter")?)?;
    m.add_class::<TeeWriter>()?;
    m.add_function(wrap_pyfunction!(current_scope, &m)?)?;
    m.add("_current", current_var(py)?)?;
    parent.add_submodule(&m)?;
    // Make `import coglet._impl._sdk` work, not only attribute access.
    py.import("sys")?
        .getattr("modules")?
        .set_item("coglet._impl._sdk", &m)?;
    Ok(())
}
