//! The worker side: the generic event loop that runs inside the worker subprocess.
//!
//! The PyO3 bridge implements [`PredictHandler`] and calls [`run`] from the Python main thread
//! (with the GIL released). `run` owns the IPC and the fd isolation; see `docs/ipc.md`.
//!
//! Threads: setup and **slot 0's predictions run on the thread that called `run`** (so a sync
//! runner can be interrupted by a signal delivered to the main thread); slots 1.. each get a
//! thread; one thread reads the control channel and calls `cancel`/`shutdown`; one runs
//! healthchecks; two forward captured fd 1/2 output.
//!
//! A runner that runs one prediction at a time ([`SetupInfo::one_at_a_time`], a sync runner)
//! with several slots (`COG_MAX_CONCURRENCY > 1`) is different: every slot gets a reader
//! thread that queues its requests, and the thread that called `run` runs them all, one at a
//! time, in arrival order. Every sync prediction thus runs on the main thread (so a signal
//! can interrupt it), and a queued prediction can be canceled before it starts.
//!
//! A handler with its own event loop (an async Python runner) takes the third way: it accepts
//! [`PredictHandler::serve_on_event_loop`], the slot readers queue every request in a
//! [`Dispatcher`], and the loop starts and finishes all predictions on its own thread (see
//! `dispatch.rs`).

mod dispatch;
mod sink;
mod stdio;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use serde_json::Value;

use crate::ipc::{
    self, ControlRequest, ControlResponse, HealthcheckStatus, LogSource, OutputValue,
    PROTOCOL_VERSION, SlotId, SlotRequest, SlotResponse,
};
use crate::sync::lock;
pub use dispatch::{Dispatcher, Started, Ticket};
pub use sink::{OutputSink, SinkError};

/// What `setup` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRequest {
    /// `path/to/file.py:Name`.
    pub predictor_ref: String,
    /// Load the `train` entry point instead of `run`/`predict`.
    pub is_train: bool,
    /// Number of slots (`COG_MAX_CONCURRENCY`); > 1 only for async runners.
    pub num_slots: u32,
    /// `COG_WEIGHTS`, for `setup(weights)`.
    pub weights: Option<String>,
}

/// What a successful `setup` reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetupInfo {
    /// The schema the worker found, if any (informational).
    pub schema: Option<Value>,
    /// Extra `/health-check` version keys, e.g. `python_sdk`, `python`.
    pub versions: HashMap<String, String>,
    /// The runner runs one prediction at a time (a sync runner, as Cog runs them). With more
    /// than one slot, predictions queue in the worker and all run on the thread that called
    /// [`run`]; the server still accepts one per slot and answers 409 beyond that.
    pub one_at_a_time: bool,
}

/// One prediction, handed to `predict`.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    pub id: String,
    /// The validated input object. URLs for file inputs are still URLs: the handler fetches
    /// them (see `docs/ipc.md`, "File inputs").
    pub input: Value,
    /// `context` from the request (`current_scope().context`).
    pub context: HashMap<String, String>,
    /// Private directory for output files, not yet created (create it before writing);
    /// deleted by the server afterwards.
    pub output_dir: PathBuf,
}

/// A final (non-streamed) output value.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Json(Value),
    /// A file; the server inlines it as a data URL or uploads it.
    File {
        path: PathBuf,
        mime_type: Option<String>,
    },
}

/// How a prediction ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PredictOutcome {
    /// `output` is the return value of a non-streaming runner. Streaming runners (generators,
    /// or a returned list/tuple/iterator) send each item with [`OutputSink::output`] /
    /// [`OutputSink::file`] and return `output: None, is_stream: true`.
    Succeeded {
        output: Option<Output>,
        is_stream: bool,
    },
    /// The runner raised: the message becomes the prediction's `error`.
    Failed(String),
    /// The input could not be coerced (a download failed, a bad value): HTTP 422.
    InvalidInput(String),
    Canceled,
}

/// The runner, as the worker loop sees it. Implemented by the PyO3 bridge (and test workers).
///
/// - `setup` runs once, on the thread that called [`run`].
/// - `predict` runs on the slot's thread (slot 0: the thread that called [`run`]) and blocks
///   until the prediction ends. Sync runners run the user code right there; async runners
///   submit a coroutine to their event loop and wait for it; generators push each item to the
///   sink as it is produced.
/// - `cancel` is called from the control thread while `predict` runs on `slot` with that id.
///   It must not block: a sync runner raises in the runner thread (signal or async exception),
///   an async runner cancels the task. `predict` then returns `Canceled`.
/// - `healthcheck` runs on its own thread; the server times it out after 5 s.
/// - `shutdown` is called once, from the control thread, before the worker exits.
pub trait PredictHandler: Send + Sync + 'static {
    fn setup(&self, request: &SetupRequest) -> Result<SetupInfo, String>;
    fn predict(&self, slot: SlotId, request: PredictRequest, sink: &OutputSink) -> PredictOutcome;
    fn cancel(&self, slot: SlotId, prediction_id: &str);
    /// `Err(message)` means unhealthy. The default is always healthy.
    fn healthcheck(&self) -> Result<(), String> {
        Ok(())
    }
    fn shutdown(&self) {}
    /// Called once after a successful setup (unless [`SetupInfo::one_at_a_time`] applies). A
    /// handler that returns `true` starts every prediction itself from `dispatcher` (watch
    /// [`Dispatcher::wake_fd`], call [`Dispatcher::take`], end each with [`Ticket::finish`]);
    /// `predict` is then never called, while `cancel` still is (with the slot and id of a
    /// prediction that `take` handed out and that has not finished). The default, `false`,
    /// runs `predict` on a thread per slot.
    fn serve_on_event_loop(&self, dispatcher: &Arc<Dispatcher>) -> bool {
        let _ = dispatcher;
        false
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker stdio isolation failed: {0}")]
    Isolate(#[source] io::Error),
    #[error("reading the control channel: {0}")]
    Control(#[source] io::Error),
    #[error("the server closed the control channel before sending Init")]
    NoInit,
    #[error("expected Init as the first control message, got {0}")]
    UnexpectedMessage(String),
    #[error("IPC protocol version mismatch: server speaks {server}, worker speaks {worker}")]
    Version { server: u32, worker: u32 },
    #[error("connecting to slot socket {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("setup failed: {0}")]
    Setup(String),
}

type ControlWriter = Arc<Mutex<File>>;

fn send_control(writer: &ControlWriter, msg: &ControlResponse) -> io::Result<()> {
    let mut w = lock(writer);
    ipc::write_frame(&mut *w, msg)
}

/// Per-slot bookkeeping shared with the control thread, so a cancel only hits the prediction
/// it names (and a cancel that arrives before its `Predict` is remembered).
#[derive(Default)]
struct SlotState {
    running: Option<String>,
    pending_cancel: Option<String>,
    /// One-at-a-time mode: the prediction read from this slot and waiting for its turn.
    queued: Option<String>,
}

type SlotStates = Arc<Vec<Mutex<SlotState>>>;
type SlotWriter = Arc<Mutex<UnixStream>>;
type SlotWriters = Arc<Vec<SlotWriter>>;

fn send_slot(writer: &SlotWriter, msg: &SlotResponse) -> io::Result<()> {
    let mut w = lock(writer);
    ipc::write_frame(&mut *w, msg)
}

/// Runs the worker until the server sends `Shutdown` or goes away.
///
/// Must be called once, early, in the worker subprocess whose stdin/stdout are the control
/// channel (as spawned by the server). Returns an error only when setup could not complete;
/// the caller should then exit non-zero.
pub fn run<H: PredictHandler>(handler: H) -> Result<(), WorkerError> {
    let handler = Arc::new(handler);
    let stdio = stdio::isolate().map_err(WorkerError::Isolate)?;
    let mut control_in = BufReader::new(stdio.control_in);
    let control_out: ControlWriter = Arc::new(Mutex::new(stdio.control_out));
    let captures = Arc::new(CaptureSync::default());
    spawn_capture(
        stdio.stdout_capture,
        LogSource::Stdout,
        &control_out,
        &captures,
    );
    spawn_capture(
        stdio.stderr_capture,
        LogSource::Stderr,
        &control_out,
        &captures,
    );

    let init: ControlRequest = ipc::read_frame(&mut control_in)
        .map_err(WorkerError::Control)?
        .ok_or(WorkerError::NoInit)?;
    let ControlRequest::Init {
        protocol_version,
        predictor_ref,
        is_train,
        num_slots,
        slot_sockets,
        weights,
    } = init
    else {
        return Err(WorkerError::UnexpectedMessage(format!("{init:?}")));
    };
    if protocol_version != PROTOCOL_VERSION {
        let err = WorkerError::Version {
            server: protocol_version,
            worker: PROTOCOL_VERSION,
        };
        let _ = send_control(
            &control_out,
            &ControlResponse::Fatal {
                reason: err.to_string(),
            },
        );
        return Err(err);
    }

    let mut sockets = Vec::with_capacity(slot_sockets.len());
    for address in &slot_sockets {
        let stream = connect(address).map_err(|source| WorkerError::Connect {
            address: address.clone(),
            source,
        })?;
        sockets.push(stream);
    }

    let setup = SetupRequest {
        predictor_ref,
        is_train,
        num_slots,
        weights,
    };
    let result = handler.setup(&setup);
    // Setup's output must reach the server before Ready/SetupFailed does.
    captures.flush();
    let info = match result {
        Ok(info) => info,
        Err(error) => {
            let _ = send_control(
                &control_out,
                &ControlResponse::SetupFailed {
                    error: error.clone(),
                },
            );
            return Err(WorkerError::Setup(error));
        }
    };

    let states: SlotStates = Arc::new((0..sockets.len()).map(|_| Mutex::default()).collect());
    // Clones used to unblock the slot readers at shutdown.
    let closers: Vec<UnixStream> = sockets.iter().filter_map(|s| s.try_clone().ok()).collect();
    let writers: SlotWriters = Arc::new(
        sockets
            .iter()
            .map(|s| s.try_clone().map(|w| Arc::new(Mutex::new(w))))
            .collect::<io::Result<_>>()
            .map_err(WorkerError::Control)?,
    );
    let one_at_a_time = info.one_at_a_time && sockets.len() > 1;
    let event_loop = if one_at_a_time {
        None
    } else {
        let dispatcher = Dispatcher::new(Arc::clone(&states), Arc::clone(&writers))
            .map_err(WorkerError::Control)?;
        handler
            .serve_on_event_loop(&dispatcher)
            .then_some(dispatcher)
    };

    send_control(
        &control_out,
        &ControlResponse::Ready {
            protocol_version: PROTOCOL_VERSION,
            schema: info.schema,
            versions: info.versions,
        },
    )
    .map_err(WorkerError::Control)?;

    let health_tx = spawn_healthcheck(&handler, &control_out);
    let cancel_unlocked = event_loop.is_some();
    {
        let handler = Arc::clone(&handler);
        let control_out = Arc::clone(&control_out);
        let states = Arc::clone(&states);
        let writers = Arc::clone(&writers);
        thread::Builder::new()
            .name("coglet-control".into())
            .spawn(move || {
                control_loop(
                    &mut control_in,
                    &*handler,
                    &control_out,
                    &Slots {
                        states: &states,
                        writers: &writers,
                        cancel_unlocked,
                    },
                    &health_tx,
                );
                for closer in &closers {
                    let _ = closer.shutdown(std::net::Shutdown::Both);
                }
            })
            .map_err(WorkerError::Control)?;
    }

    if one_at_a_time {
        run_one_at_a_time(sockets, &*handler, &states, &writers);
        return Ok(());
    }
    if let Some(dispatcher) = event_loop {
        let readers = spawn_queue_readers(sockets, &states, &writers, move |slot, request| {
            dispatcher.push(slot, request);
            true
        });
        for reader in readers {
            let _ = reader.join();
        }
        return Ok(());
    }
    let mut sockets = sockets.into_iter();
    let first = sockets.next();
    let mut others = Vec::new();
    for (index, socket) in sockets.enumerate() {
        let slot = (index + 1) as SlotId;
        let handler = Arc::clone(&handler);
        let states = Arc::clone(&states);
        let writers = Arc::clone(&writers);
        let spawned = thread::Builder::new()
            .name(format!("coglet-slot-{slot}"))
            .spawn(move || slot_loop(slot, socket, &*handler, &states, &writers));
        if let Ok(h) = spawned {
            others.push(h);
        }
    }
    if let Some(socket) = first {
        slot_loop(0, socket, &*handler, &states, &writers);
    }
    for h in others {
        let _ = h.join();
    }
    Ok(())
}

/// One-at-a-time mode: a reader thread per slot queues requests; this thread runs them in
/// arrival order. Returns when every slot socket is closed.
fn run_one_at_a_time<H: PredictHandler>(
    sockets: Vec<UnixStream>,
    handler: &H,
    states: &SlotStates,
    writers: &SlotWriters,
) {
    let (tx, rx) = mpsc::channel::<(SlotId, SlotRequest)>();
    let _readers = spawn_queue_readers(sockets, states, writers, move |slot, request| {
        tx.send((slot, request)).is_ok()
    });
    for (slot, request) in rx {
        let (Some(state), Some(writer)) = (states.get(slot as usize), writers.get(slot as usize))
        else {
            continue;
        };
        let SlotRequest::Predict { ref id, .. } = request;
        if !start_queued(state, id) {
            continue;
        }
        let terminal = run_prediction(slot, request, handler, state, writer);
        if send_slot(writer, &terminal).is_err() {
            tracing::warn!(
                slot,
                "could not send a prediction's result: slot socket closed"
            );
        }
    }
}

/// A reader thread per slot that marks each request `queued` and hands it to `enqueue` (which
/// returns false when nobody takes requests any more). A request whose cancel arrived first is
/// answered `Cancelled` here and never queued.
fn spawn_queue_readers<F>(
    sockets: Vec<UnixStream>,
    states: &SlotStates,
    writers: &SlotWriters,
    enqueue: F,
) -> Vec<thread::JoinHandle<()>>
where
    F: Fn(SlotId, SlotRequest) -> bool + Send + Sync + 'static,
{
    let enqueue = Arc::new(enqueue);
    let mut readers = Vec::with_capacity(sockets.len());
    for (index, socket) in sockets.into_iter().enumerate() {
        let slot = index as SlotId;
        let enqueue = Arc::clone(&enqueue);
        let states = Arc::clone(states);
        let writers = Arc::clone(writers);
        let spawned = thread::Builder::new()
            .name(format!("coglet-slot-{slot}"))
            .spawn(move || queue_requests(slot, socket, &*enqueue, &states, &writers));
        match spawned {
            Ok(handle) => readers.push(handle),
            Err(e) => tracing::error!(slot, "could not start the slot reader: {e}"),
        }
    }
    readers
}

fn queue_requests(
    slot: SlotId,
    socket: UnixStream,
    enqueue: &dyn Fn(SlotId, SlotRequest) -> bool,
    states: &SlotStates,
    writers: &SlotWriters,
) {
    let mut reader = BufReader::new(socket);
    let (Some(state), Some(writer)) = (states.get(slot as usize), writers.get(slot as usize))
    else {
        return;
    };
    while let Ok(Some(request)) = ipc::read_frame::<_, SlotRequest>(&mut reader) {
        let SlotRequest::Predict { ref id, .. } = request;
        let mut s = lock(state);
        if s.pending_cancel.as_deref() == Some(id.as_str()) {
            s.pending_cancel = None;
            let canceled = SlotResponse::Cancelled { id: id.clone() };
            drop(s);
            if send_slot(writer, &canceled).is_err() {
                return;
            }
            continue;
        }
        s.queued = Some(id.clone());
        drop(s);
        if !enqueue(slot, request) {
            return;
        }
    }
}

#[cfg(target_os = "linux")]
fn connect(address: &str) -> io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    match address.strip_prefix('@') {
        Some(name) => UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?),
        None => UnixStream::connect(address),
    }
}

#[cfg(not(target_os = "linux"))]
fn connect(address: &str) -> io::Result<UnixStream> {
    UnixStream::connect(address)
}

/// Lets the main thread wait until everything written to fds 1/2 so far has been forwarded:
/// it writes a sentinel line to each and waits for both capture threads to read it.
#[derive(Default)]
struct CaptureSync {
    seen: Mutex<[u64; 2]>,
    cv: std::sync::Condvar,
    sent: std::sync::atomic::AtomicU64,
}

const SENTINEL: &[u8] = b"\0coglet-capture-flush\n";

impl CaptureSync {
    fn flush(&self) {
        let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let _ = io::Write::write_all(&mut io::stdout(), SENTINEL);
        let _ = io::Write::flush(&mut io::stdout());
        let _ = io::Write::write_all(&mut io::stderr(), SENTINEL);
        let guard = lock(&self.seen);
        let _ = self
            .cv
            .wait_timeout_while(guard, std::time::Duration::from_secs(2), |seen| {
                seen[0] < n || seen[1] < n
            });
    }

    fn mark(&self, source: LogSource) {
        let mut seen = lock(&self.seen);
        seen[usize::from(source == LogSource::Stderr)] += 1;
        self.cv.notify_all();
    }
}

fn spawn_capture(
    pipe: io::PipeReader,
    source: LogSource,
    control: &ControlWriter,
    sync: &Arc<CaptureSync>,
) {
    let control = Arc::clone(control);
    let sync = Arc::clone(sync);
    let _ = thread::Builder::new()
        .name(format!("coglet-capture-{}", source.as_str()))
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let flushed = line.ends_with(SENTINEL);
                        if flushed {
                            // A partial line before the sentinel still counts as a line.
                            line.truncate(line.len() - SENTINEL.len());
                            if !line.is_empty() {
                                line.push(b'\n');
                            }
                        }
                        if !line.is_empty() {
                            let data =
                                ipc::truncate_log(String::from_utf8_lossy(&line).into_owned());
                            if send_control(&control, &ControlResponse::Log { source, data })
                                .is_err()
                            {
                                break;
                            }
                        }
                        if flushed {
                            sync.mark(source);
                        }
                    }
                }
            }
        });
}

fn spawn_healthcheck<H: PredictHandler>(
    handler: &Arc<H>,
    control: &ControlWriter,
) -> mpsc::Sender<String> {
    let (tx, rx) = mpsc::channel::<String>();
    let handler = Arc::clone(handler);
    let control = Arc::clone(control);
    let _ = thread::Builder::new()
        .name("coglet-healthcheck".into())
        .spawn(move || {
            while let Ok(id) = rx.recv() {
                let msg = match handler.healthcheck() {
                    Ok(()) => ControlResponse::HealthcheckResult {
                        id,
                        status: HealthcheckStatus::Healthy,
                        error: None,
                    },
                    Err(error) => ControlResponse::HealthcheckResult {
                        id,
                        status: HealthcheckStatus::Unhealthy,
                        error: Some(error),
                    },
                };
                if send_control(&control, &msg).is_err() {
                    break;
                }
            }
        });
    tx
}

/// What the control thread needs to cancel a prediction on a slot.
struct Slots<'a> {
    states: &'a SlotStates,
    writers: &'a SlotWriters,
    /// Event-loop mode: call `cancel` after releasing the slot lock. The loop takes slot locks
    /// from inside the handler (holding, for Python, the GIL), so calling the handler under a
    /// slot lock could deadlock; the handler checks the id on its loop instead.
    cancel_unlocked: bool,
}

fn control_loop<H: PredictHandler, R: Read>(
    control_in: &mut R,
    handler: &H,
    control_out: &ControlWriter,
    slots: &Slots<'_>,
    health: &mpsc::Sender<String>,
) {
    let states = slots.states;
    loop {
        match ipc::read_frame::<_, ControlRequest>(control_in) {
            Ok(Some(ControlRequest::Cancel { slot, id })) => {
                let (Some(state), Some(writer)) =
                    (states.get(slot as usize), slots.writers.get(slot as usize))
                else {
                    continue;
                };
                let mut state = lock(state);
                if state.running.as_deref() == Some(id.as_str()) {
                    if slots.cancel_unlocked {
                        drop(state);
                        handler.cancel(slot, &id);
                        continue;
                    }
                    // Called under the slot lock so the prediction cannot end and another
                    // start in between.
                    handler.cancel(slot, &id);
                } else if state.queued.as_deref() == Some(id.as_str()) {
                    // Waiting for its turn (one-at-a-time mode): it ends now, never runs.
                    state.queued = None;
                    let _ = send_slot(writer, &SlotResponse::Cancelled { id });
                } else {
                    state.pending_cancel = Some(id);
                }
            }
            Ok(Some(ControlRequest::Healthcheck { id })) => {
                let _ = health.send(id);
            }
            Ok(Some(ControlRequest::Shutdown)) => {
                handler.shutdown();
                let _ = send_control(control_out, &ControlResponse::ShuttingDown);
                return;
            }
            Ok(Some(ControlRequest::Init { .. })) => {
                tracing::warn!("ignoring a second Init");
            }
            Ok(None) | Err(_) => {
                // The server is gone: stop whatever runs, then let run() return.
                for (slot, state) in states.iter().enumerate() {
                    let mut state = lock(state);
                    // Queued predictions never start.
                    state.queued = None;
                    if let Some(id) = state.running.clone() {
                        if slots.cancel_unlocked {
                            drop(state);
                        }
                        handler.cancel(slot as SlotId, &id);
                    }
                }
                handler.shutdown();
                return;
            }
        }
    }
}

fn slot_loop<H: PredictHandler>(
    slot: SlotId,
    socket: UnixStream,
    handler: &H,
    states: &SlotStates,
    writers: &SlotWriters,
) {
    let mut reader = BufReader::new(socket);
    let (Some(state), Some(writer)) = (states.get(slot as usize), writers.get(slot as usize))
    else {
        return;
    };
    while let Ok(Some(request)) = ipc::read_frame::<_, SlotRequest>(&mut reader) {
        let SlotRequest::Predict { ref id, .. } = request;
        let canceled_early = {
            let mut s = lock(state);
            if s.pending_cancel.as_deref() == Some(id.as_str()) {
                s.pending_cancel = None;
                true
            } else {
                s.running = Some(id.clone());
                false
            }
        };
        let terminal = if canceled_early {
            SlotResponse::Cancelled { id: id.clone() }
        } else {
            run_prediction(slot, request, handler, state, writer)
        };
        if send_slot(writer, &terminal).is_err() {
            return;
        }
    }
}

/// Runs one prediction already marked `running` on its slot; clears that mark and returns the
/// terminal message.
fn run_prediction<H: PredictHandler>(
    slot: SlotId,
    request: SlotRequest,
    handler: &H,
    state: &Mutex<SlotState>,
    writer: &SlotWriter,
) -> SlotResponse {
    let SlotRequest::Predict {
        id,
        input,
        input_file,
        output_dir,
        context,
    } = request;
    let terminal = match load_input(input, input_file) {
        Ok(input) => {
            let sink = OutputSink::new(id.clone(), Arc::clone(writer), output_dir.clone());
            let started = Instant::now();
            let outcome = handler.predict(
                slot,
                PredictRequest {
                    id: id.clone(),
                    input,
                    context,
                    output_dir,
                },
                &sink,
            );
            let predict_time = started.elapsed().as_secs_f64();
            // Late writes from threads the runner left behind are dropped from here on.
            sink.close();
            terminal_message(&sink, id.clone(), outcome, predict_time)
        }
        Err(e) => unreadable_input(id.clone(), &e),
    };
    finish_slot(state, &id);
    terminal
}

/// Marks the queued prediction `id` running on its slot. False when it was canceled while
/// queued: its terminal message is already sent and it must not run.
fn start_queued(state: &Mutex<SlotState>, id: &str) -> bool {
    let mut s = lock(state);
    if s.queued.as_deref() != Some(id) {
        return false;
    }
    s.queued = None;
    s.running = Some(id.to_owned());
    true
}

/// A spilled input that could not be read: the prediction's input error.
fn unreadable_input(id: String, error: &io::Error) -> SlotResponse {
    SlotResponse::InvalidInput {
        id,
        error: format!("could not read the spilled input: {error}"),
    }
}

/// The prediction `id` has ended: the slot is free, and a cancel that raced with the end is
/// forgotten.
fn finish_slot(state: &Mutex<SlotState>, id: &str) {
    let mut s = lock(state);
    s.running = None;
    if s.pending_cancel.as_deref() == Some(id) {
        s.pending_cancel = None;
    }
}

fn load_input(inline: Option<Value>, file: Option<PathBuf>) -> io::Result<Value> {
    match (inline, file) {
        (Some(value), _) => Ok(value),
        (None, Some(path)) => {
            let bytes = std::fs::read(&path)?;
            let _ = std::fs::remove_file(&path);
            serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        (None, None) => Ok(Value::Object(serde_json::Map::new())),
    }
}

fn terminal_message(
    sink: &OutputSink,
    id: String,
    outcome: PredictOutcome,
    predict_time: f64,
) -> SlotResponse {
    match outcome {
        PredictOutcome::Succeeded { output, is_stream } => {
            let output = match output {
                None => None,
                Some(Output::File { path, mime_type }) => {
                    Some(OutputValue::File { path, mime_type })
                }
                Some(Output::Json(value)) => match sink.encode_json(value) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        return SlotResponse::Failed {
                            id,
                            error: format!("could not send the output: {e}"),
                        };
                    }
                },
            };
            SlotResponse::Done {
                id,
                output,
                is_stream,
                predict_time,
            }
        }
        PredictOutcome::Failed(error) => SlotResponse::Failed { id, error },
        PredictOutcome::InvalidInput(error) => SlotResponse::InvalidInput { id, error },
        PredictOutcome::Canceled => SlotResponse::Cancelled { id },
    }
}
