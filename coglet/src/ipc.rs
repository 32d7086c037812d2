//! The wire protocol between the server (parent) and the worker (child).
//!
//! Framing: every message is a 4-byte big-endian length followed by that many bytes of JSON
//! (one object, internally tagged by `"type"`). Frames larger than [`MAX_FRAME_SIZE`] are refused.
//!
//! Channels:
//! - **control**: the worker's stdin (parent -> worker) and stdout (worker -> parent).
//!   The worker moves them away from fds 0/1 before running any user code.
//! - **slot i** (one per concurrent prediction): a Unix stream socket the worker connects to,
//!   so that a slot streaming output never blocks another slot or the control channel.
//!
//! The parent sends `Init` first; the worker answers `Ready` (or `SetupFailed`) after setup.
//! [`PROTOCOL_VERSION`] is in both; a mismatch is fatal. See `docs/ipc.md`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bumped on any incompatible change to the messages below.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame either side accepts (8 MiB).
pub const MAX_FRAME_SIZE: usize = 8 * 1024 * 1024;

/// Inputs or outputs larger than this (6 MiB of JSON) travel through a file instead of a frame.
pub const MAX_INLINE_IPC_SIZE: usize = 6 * 1024 * 1024;

/// Log lines longer than this (4 MiB) are truncated with [`LOG_TRUNCATE_NOTICE`].
pub const MAX_LOG_LINE: usize = 4 * 1024 * 1024;
pub const LOG_TRUNCATE_NOTICE: &str = "[**** LOG LINE TRUNCATED AT 4 MiB ****]";

/// Index of a prediction slot, `0..num_slots`.
pub type SlotId = u32;

/// Parent -> worker, on the control channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Always the first message.
    Init {
        protocol_version: u32,
        /// `path/to/file.py:Name` (from `COG_PREDICT_TYPE_STUB` / `COG_TRAIN_TYPE_STUB`).
        predictor_ref: String,
        is_train: bool,
        num_slots: u32,
        /// Socket address of each slot, in slot order. A leading `@` means the Linux abstract
        /// namespace; anything else is a filesystem path.
        slot_sockets: Vec<String>,
        /// Value of `COG_WEIGHTS`, passed to `setup(weights)`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<String>,
    },
    /// Cancel the prediction `id` if it is still running on `slot` (a stale cancel is ignored).
    Cancel { slot: SlotId, id: String },
    /// Run the user `healthcheck()`; answered by `HealthcheckResult` with the same id.
    Healthcheck { id: String },
    /// Finish: the worker calls the handler's `shutdown`, answers `ShuttingDown` and exits.
    Shutdown,
}

/// Worker -> parent, on the control channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlResponse {
    /// Setup succeeded; all slots are connected and accept `Predict`.
    Ready {
        protocol_version: u32,
        /// Schema the worker found (informational: the server reads its own copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<serde_json::Value>,
        /// Versions shown in `/health-check` (`python_sdk`, `python`).
        #[serde(default, skip_serializing_if = "HashMap::is_empty")]
        versions: HashMap<String, String>,
    },
    /// Setup raised or could not load the runner. The worker exits after sending it.
    SetupFailed {
        error: String,
    },
    /// Output captured from fds 1/2 (user code, subprocesses) or setup logs. `data` is raw
    /// text, normally one line with its newline.
    Log {
        source: LogSource,
        data: String,
    },
    /// A structured log record from the worker's own Rust code.
    WorkerLog {
        level: String,
        target: String,
        message: String,
    },
    HealthcheckResult {
        id: String,
        status: HealthcheckStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The worker cannot continue (for example a slot socket broke). It exits after sending it.
    Fatal {
        reason: String,
    },
    ShuttingDown,
}

/// Parent -> worker, on a slot socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SlotRequest {
    Predict {
        id: String,
        /// The validated input, inline when it fits in [`MAX_INLINE_IPC_SIZE`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<serde_json::Value>,
        /// Otherwise a JSON file holding it; the worker reads and deletes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_file: Option<PathBuf>,
        /// A directory private to this prediction for output files. Not created by the
        /// parent (create it before writing); the parent deletes it after the prediction.
        output_dir: PathBuf,
        #[serde(default, skip_serializing_if = "HashMap::is_empty")]
        context: HashMap<String, String>,
    },
}

/// Worker -> parent, on a slot socket, about the prediction running there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SlotResponse {
    /// A line the prediction wrote to `sys.stdout`/`sys.stderr`: goes to its `logs`.
    Log { source: LogSource, data: String },
    /// One streamed output item (generator yield, list element).
    Output { output: OutputValue },
    /// A user metric (name already validated by the worker).
    Metric {
        name: String,
        value: serde_json::Value,
        mode: MetricMode,
    },
    /// Terminal: succeeded. `output` is the single return value of a non-streaming runner;
    /// when items were streamed with `Output` it is absent and the final output is the array.
    Done {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputValue>,
        /// The runner returned a list, tuple, generator or iterator: the output is an array.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_stream: bool,
        /// Seconds spent in the runner, measured in the worker.
        predict_time: f64,
    },
    /// Terminal: the runner raised.
    Failed { id: String, error: String },
    /// Terminal: the input could not be coerced (answered with HTTP 422).
    InvalidInput { id: String, error: String },
    /// Terminal: canceled.
    Cancelled { id: String },
}

impl SlotResponse {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Done { .. }
                | Self::Failed { .. }
                | Self::InvalidInput { .. }
                | Self::Cancelled { .. }
        )
    }
}

/// An output value as it crosses the IPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputValue {
    /// Plain JSON.
    Json { value: serde_json::Value },
    /// A file the runner produced (`Path`, `IOBase`); the parent turns it into a data URL or
    /// uploads it, then deletes it if it lies in the prediction's `output_dir`.
    File {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
    /// JSON too large for a frame, written to this file (deleted by the parent after reading).
    Spilled { path: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    Stdout,
    Stderr,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthcheckStatus {
    Healthy,
    Unhealthy,
}

/// How a metric value combines with an earlier one of the same name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricMode {
    #[default]
    Replace,
    #[serde(alias = "incr")]
    Increment,
    Append,
}

impl MetricMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Increment => "increment",
            Self::Append => "append",
        }
    }
}

impl std::str::FromStr for MetricMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "replace" => Ok(Self::Replace),
            "incr" | "increment" => Ok(Self::Increment),
            "append" => Ok(Self::Append),
            other => Err(format!(
                "invalid metric mode '{other}': expected 'replace', 'incr' or 'append'"
            )),
        }
    }
}

/// Truncates a log line to [`MAX_LOG_LINE`] bytes (on a char boundary) with a notice.
pub fn truncate_log(mut line: String) -> String {
    if line.len() > MAX_LOG_LINE {
        let mut cut = MAX_LOG_LINE - LOG_TRUNCATE_NOTICE.len();
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(LOG_TRUNCATE_NOTICE);
    }
    line
}

/// Serializes `msg` into one frame: length prefix and JSON, in a single buffer.
pub fn encode_frame<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut buf, msg).map_err(io::Error::other)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("IPC frame of {len} bytes exceeds the {MAX_FRAME_SIZE}-byte limit"),
        ));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

fn frame_len(prefix: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("IPC frame of {len} bytes exceeds the {MAX_FRAME_SIZE}-byte limit"),
        ));
    }
    Ok(len)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes one frame (blocking).
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> io::Result<()> {
    w.write_all(&encode_frame(msg)?)?;
    w.flush()
}

/// Reads one frame (blocking). `Ok(None)` on a clean end of stream between frames.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> io::Result<Option<T>> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(prefix)?];
    r.read_exact(&mut body)?;
    decode(&body).map(Some)
}

/// Writes one frame (async).
pub async fn write_frame_async<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> io::Result<()> {
    w.write_all(&encode_frame(msg)?).await?;
    w.flush().await
}

/// Reads one frame (async). `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame_async<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> io::Result<Option<T>> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(prefix)?];
    r.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(msg: &T) {
        let frame = encode_frame(msg).unwrap();
        let back: T = read_frame(&mut frame.as_slice()).unwrap().unwrap();
        assert_eq!(&back, msg);
    }

    fn control_requests() -> Vec<ControlRequest> {
        vec![
            ControlRequest::Init {
                protocol_version: PROTOCOL_VERSION,
                predictor_ref: "predict.py:Predictor".into(),
                is_train: false,
                num_slots: 2,
                slot_sockets: vec!["@coglet-1-0".into(), "@coglet-1-1".into()],
                weights: Some("/src/weights".into()),
            },
            ControlRequest::Cancel {
                slot: 1,
                id: "pred_1".into(),
            },
            ControlRequest::Healthcheck { id: "hc_1".into() },
            ControlRequest::Shutdown,
        ]
    }

    fn control_responses() -> Vec<ControlResponse> {
        vec![
            ControlResponse::Ready {
                protocol_version: PROTOCOL_VERSION,
                schema: Some(json!({"openapi": "3.0.2"})),
                versions: HashMap::from([("python".to_string(), "3.12.1".to_string())]),
            },
            ControlResponse::SetupFailed {
                error: "ValueError: bad weights".into(),
            },
            ControlResponse::Log {
                source: LogSource::Stderr,
                data: "loading model\n".into(),
            },
            ControlResponse::WorkerLog {
                level: "warn".into(),
                target: "coglet::worker".into(),
                message: "slow".into(),
            },
            ControlResponse::HealthcheckResult {
                id: "hc_1".into(),
                status: HealthcheckStatus::Unhealthy,
                error: Some("healthcheck returned False".into()),
            },
            ControlResponse::Fatal {
                reason: "slot 0 socket closed".into(),
            },
            ControlResponse::ShuttingDown,
        ]
    }

    fn slot_messages() -> (Vec<SlotRequest>, Vec<SlotResponse>) {
        let requests = vec![
            SlotRequest::Predict {
                id: "pred_1".into(),
                input: Some(json!({"text": "hi"})),
                input_file: None,
                output_dir: "/tmp/coglet/predictions/pred_1/outputs".into(),
                context: HashMap::from([("replicate_api_token".to_string(), "t".to_string())]),
            },
            SlotRequest::Predict {
                id: "pred_2".into(),
                input: None,
                input_file: Some("/tmp/coglet/predictions/pred_2/inputs/input.json".into()),
                output_dir: "/tmp/coglet/predictions/pred_2/outputs".into(),
                context: HashMap::new(),
            },
        ];
        let responses = vec![
            SlotResponse::Log {
                source: LogSource::Stdout,
                data: "step 1\n".into(),
            },
            SlotResponse::Output {
                output: OutputValue::Json {
                    value: json!("tok"),
                },
            },
            SlotResponse::Output {
                output: OutputValue::File {
                    path: "/tmp/out.png".into(),
                    mime_type: Some("image/png".into()),
                },
            },
            SlotResponse::Output {
                output: OutputValue::Spilled {
                    path: "/tmp/coglet/predictions/pred_1/outputs/spill-0.json".into(),
                },
            },
            SlotResponse::Metric {
                name: "tokens.in".into(),
                value: json!(3),
                mode: MetricMode::Increment,
            },
            SlotResponse::Done {
                id: "pred_1".into(),
                output: Some(OutputValue::Json { value: json!(42) }),
                is_stream: false,
                predict_time: 0.25,
            },
            SlotResponse::Done {
                id: "pred_1".into(),
                output: None,
                is_stream: true,
                predict_time: 1.5,
            },
            SlotResponse::Failed {
                id: "pred_1".into(),
                error: "boom".into(),
            },
            SlotResponse::InvalidInput {
                id: "pred_1".into(),
                error: "image: could not download".into(),
            },
            SlotResponse::Cancelled {
                id: "pred_1".into(),
            },
        ];
        (requests, responses)
    }

    #[test]
    fn every_message_serializes_as_documented() {
        let (slot_req, slot_resp) = slot_messages();
        insta::assert_json_snapshot!("control_requests", control_requests());
        insta::assert_json_snapshot!("control_responses", control_responses());
        insta::assert_json_snapshot!("slot_requests", slot_req);
        insta::assert_json_snapshot!("slot_responses", slot_resp);
    }

    #[test]
    fn every_message_roundtrips_through_a_frame() {
        let (slot_req, slot_resp) = slot_messages();
        control_requests().iter().for_each(roundtrip);
        control_responses().iter().for_each(roundtrip);
        slot_req.iter().for_each(roundtrip);
        slot_resp.iter().for_each(roundtrip);
    }

    #[test]
    fn frame_is_big_endian_length_then_json() {
        let frame = encode_frame(&ControlRequest::Shutdown).unwrap();
        let body = br#"{"type":"shutdown"}"#;
        assert_eq!(&frame[..4], &(body.len() as u32).to_be_bytes());
        assert_eq!(&frame[4..], body);
    }

    #[test]
    fn oversized_frame_is_refused_on_read() {
        let mut bytes = ((MAX_FRAME_SIZE + 1) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        let err = read_frame::<_, ControlRequest>(&mut bytes.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn clean_eof_is_none_and_truncated_frame_is_an_error() {
        let empty: &[u8] = &[];
        assert!(
            read_frame::<_, ControlRequest>(&mut &*empty)
                .unwrap()
                .is_none()
        );
        let frame = encode_frame(&ControlRequest::Shutdown).unwrap();
        let cut = &frame[..frame.len() - 1];
        assert!(read_frame::<_, ControlRequest>(&mut &*cut).is_err());
    }

    #[tokio::test]
    async fn async_codec_matches_blocking_codec() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let msg = SlotResponse::Cancelled { id: "p".into() };
        let sent = msg.clone();
        tokio::spawn(async move { write_frame_async(&mut a, &sent).await.unwrap() });
        let got: SlotResponse = read_frame_async(&mut b).await.unwrap().unwrap();
        assert_eq!(got, msg);
    }

    #[test]
    fn metric_mode_accepts_cog_spellings() {
        assert_eq!("incr".parse::<MetricMode>().unwrap(), MetricMode::Increment);
        assert_eq!(
            "increment".parse::<MetricMode>().unwrap(),
            MetricMode::Increment
        );
        assert!("sum".parse::<MetricMode>().is_err());
    }

    #[test]
    fn long_log_lines_are_truncated_with_notice() {
        let line = "é".repeat(MAX_LOG_LINE);
        let out = truncate_log(line);
        assert!(out.len() <= MAX_LOG_LINE);
        assert!(out.ends_with(LOG_TRUNCATE_NOTICE));
    }
}
