//! `OutputSink`: how a running prediction streams logs, output items, files and metrics.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::ipc::{self, LogSource, MAX_INLINE_IPC_SIZE, MetricMode, OutputValue, SlotResponse};
use crate::metrics::{MetricError, Metrics, validate_metric_name, validate_metric_name_structure};
use crate::sync::lock;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("the prediction has already finished")]
    Closed,
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error("writing to the slot socket: {0}")]
    Io(#[from] io::Error),
}

struct Inner {
    id: String,
    writer: Arc<Mutex<UnixStream>>,
    output_dir: PathBuf,
    closed: AtomicBool,
    spills: AtomicU64,
    metrics: Mutex<Metrics>,
}

/// Handle to the prediction in progress on one slot. Cheap to clone and usable from any
/// thread; once the prediction has ended every call returns [`SinkError::Closed`].
#[derive(Clone)]
pub struct OutputSink {
    inner: Arc<Inner>,
}

impl OutputSink {
    pub(crate) fn new(id: String, writer: Arc<Mutex<UnixStream>>, output_dir: PathBuf) -> Self {
        Self {
            inner: Arc::new(Inner {
                id,
                writer,
                output_dir,
                closed: AtomicBool::new(false),
                spills: AtomicU64::new(0),
                metrics: Mutex::new(Metrics::new()),
            }),
        }
    }

    pub fn prediction_id(&self) -> &str {
        &self.inner.id
    }

    /// Directory for output files, private to this prediction.
    pub fn output_dir(&self) -> &std::path::Path {
        &self.inner.output_dir
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    fn send(&self, msg: &SlotResponse) -> Result<(), SinkError> {
        if self.is_closed() {
            return Err(SinkError::Closed);
        }
        let frame = ipc::encode_frame(msg)?;
        let mut w = lock(&self.inner.writer);
        io::Write::write_all(&mut *w, &frame)?;
        Ok(())
    }

    /// Appends to the prediction's `logs`. Send whole lines, newline included.
    pub fn log(&self, source: LogSource, data: &str) -> Result<(), SinkError> {
        if data.is_empty() {
            return Ok(());
        }
        self.send(&SlotResponse::Log {
            source,
            data: ipc::truncate_log(data.to_string()),
        })
    }

    /// Streams one output item (generator yield or list element) as JSON. Values over
    /// 6 MiB travel through a file in the output directory.
    pub fn output(&self, value: Value) -> Result<(), SinkError> {
        let output = self.encode_json(value)?;
        self.send(&SlotResponse::Output { output })
    }

    /// Streams one output item that is a file.
    pub fn file(&self, path: PathBuf, mime_type: Option<String>) -> Result<(), SinkError> {
        self.send(&SlotResponse::Output {
            output: OutputValue::File { path, mime_type },
        })
    }

    /// Records a user metric (reference 2.6): the name is validated and the value combined
    /// with earlier ones here, so user code gets the error.
    pub fn metric(&self, name: &str, value: Value, mode: MetricMode) -> Result<(), SinkError> {
        if self.is_closed() {
            return Err(SinkError::Closed);
        }
        if value.is_null() {
            // Deleting: a reserved name cannot exist, so only its shape is checked (as Cog).
            validate_metric_name_structure(name)?;
        } else {
            validate_metric_name(name)?;
        }
        if let Value::Number(n) = &value
            && n.as_f64().is_some_and(|f| !f.is_finite())
        {
            return Err(SinkError::Metric(MetricError::BadValue {
                name: name.to_string(),
                got: "non-finite float",
            }));
        }
        lock(&self.inner.metrics).apply(name, value.clone(), mode)?;
        self.send(&SlotResponse::Metric {
            name: name.to_string(),
            value,
            mode,
        })
    }

    /// Encodes a JSON output value, spilling it to a file when it is too big for a frame.
    pub(crate) fn encode_json(&self, value: Value) -> Result<OutputValue, SinkError> {
        let bytes = serde_json::to_vec(&value).map_err(io::Error::other)?;
        if bytes.len() <= MAX_INLINE_IPC_SIZE {
            return Ok(OutputValue::Json { value });
        }
        let n = self.inner.spills.fetch_add(1, Ordering::Relaxed);
        std::fs::create_dir_all(&self.inner.output_dir)?;
        let path = self.inner.output_dir.join(format!(".spill-{n}.json"));
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
        Ok(OutputValue::Spilled { path })
    }
}
