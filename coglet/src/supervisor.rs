//! The parent side of the IPC: spawns the worker, runs the handshake, routes slot messages to
//! predictions, and respawns the worker (with backoff) when it dies.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ServeConfig;
use crate::files::OutputResolver;
use crate::health::{Health, HealthState, SetupRecord, SetupStatus};
use crate::ipc::{
    self, ControlRequest, ControlResponse, HealthcheckStatus, LogSource, MAX_INLINE_IPC_SIZE,
    PROTOCOL_VERSION, SlotId, SlotRequest, SlotResponse,
};
use crate::prediction::{Ending, Prediction};
use crate::sync::lock;

/// How long the user healthcheck may take.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a worker gets to exit after `Shutdown` before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(500);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A worker that stayed up this long resets the restart backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// A prediction running on a slot.
struct Running {
    prediction: Arc<Prediction>,
    dir: PathBuf,
    output_dir: PathBuf,
    /// The first streamed output that could not be resolved: it fails the prediction when it
    /// ends (the output is incomplete, so it must not report `succeeded`).
    output_error: Option<String>,
}

struct SlotLink {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    current: Mutex<Option<Running>>,
}

/// One live worker process: its control channel and slots.
pub struct WorkerLink {
    control: mpsc::UnboundedSender<ControlRequest>,
    slots: Vec<SlotLink>,
    alive: AtomicBool,
    healthchecks: Mutex<HashMap<String, oneshot::Sender<Result<(), String>>>>,
}

impl WorkerLink {
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

/// The right to run one prediction on one slot. Consumed by [`Supervisor::dispatch`];
/// the slot returns to the pool when the worker reports the prediction finished.
pub struct Permit {
    link: Arc<WorkerLink>,
    slot: SlotId,
}

/// Free slots. No queue: a request that finds none gets 409.
#[derive(Default)]
pub struct SlotPool {
    free: Mutex<Vec<Permit>>,
}

impl SlotPool {
    pub fn try_acquire(&self) -> Option<Permit> {
        lock(&self.free).pop()
    }

    fn release(&self, permit: Permit) {
        if permit.link.is_alive() {
            lock(&self.free).push(permit);
        }
    }

    fn fill(&self, link: &Arc<WorkerLink>) {
        let mut free = lock(&self.free);
        free.clear();
        // Reversed so that slot 0 (the worker's main thread) is used first.
        free.extend((0..link.slots.len()).rev().map(|slot| Permit {
            link: Arc::clone(link),
            slot: slot as SlotId,
        }));
    }

    fn clear(&self) {
        lock(&self.free).clear();
    }

    pub fn has_free(&self) -> bool {
        !lock(&self.free).is_empty()
    }
}

/// How long to read what an exited worker left in its pipe during setup.
const EXITED_WORKER_DRAIN: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Spawn(String),
    #[error("worker {0} during setup")]
    Exited(String),
    #[error("Setup timed out after {0:?}")]
    Timeout(Duration),
    #[error("shutdown requested")]
    Shutdown,
}

/// Describes how a process ended, e.g. `exited with code 1`, `killed by signal 11 (SIGSEGV)`.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGFPE => " (SIGFPE)",
                libc::SIGILL => " (SIGILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGINT => " (SIGINT)",
                _ => "",
            };
            format!("killed by signal {sig}{name}")
        }
        None => "exited".to_string(),
    }
}

pub struct Supervisor {
    config: Arc<ServeConfig>,
    pub health: Arc<Mutex<HealthState>>,
    pub pool: SlotPool,
    resolver: OutputResolver,
    link: Mutex<Option<Arc<WorkerLink>>>,
    /// Names of scratch directories: chosen here, never taken from the prediction id (which
    /// comes from the client), so no id can reach a path.
    scratch: ScratchNames,
}

/// `<random>-<n>`: unique across servers sharing a `work_dir`, and across restarts.
struct ScratchNames {
    prefix: String,
    next: std::sync::atomic::AtomicU64,
}

impl ScratchNames {
    fn new() -> Self {
        let mut prefix = uuid::Uuid::new_v4().simple().to_string();
        prefix.truncate(12);
        Self {
            prefix,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
    }
}

impl Supervisor {
    pub fn new(config: Arc<ServeConfig>, health: Arc<Mutex<HealthState>>) -> Arc<Self> {
        Arc::new(Self {
            resolver: OutputResolver::new(config.upload_url.clone()),
            config,
            health,
            pool: SlotPool::default(),
            link: Mutex::new(None),
            scratch: ScratchNames::new(),
        })
    }

    fn setup_log(&self, text: &str) {
        let mut h = lock(&self.health);
        if let Some(setup) = &mut h.setup
            && setup.status == SetupStatus::Starting
        {
            setup.logs.push_str(text);
        }
    }

    /// Runs worker generations until `shutdown` flips to true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = RESTART_BACKOFF_MIN;
        let mut crash_note = String::new();
        loop {
            {
                let mut h = lock(&self.health);
                h.health = Health::Starting;
                let mut record = SetupRecord::starting();
                record.logs = std::mem::take(&mut crash_note);
                h.setup = Some(record);
            }
            let (link, mut child) = match self.start_worker(&mut shutdown).await {
                Ok(started) => started,
                Err(StartError::Shutdown) => return,
                Err(e) => {
                    tracing::error!(error = %e, "worker setup failed");
                    {
                        let mut h = lock(&self.health);
                        h.health = Health::SetupFailed;
                        if let Some(setup) = &mut h.setup {
                            if !setup.logs.is_empty() && !setup.logs.ends_with('\n') {
                                setup.logs.push('\n');
                            }
                            setup.logs.push_str(&e.to_string());
                            setup.complete(SetupStatus::Failed);
                        }
                    }
                    // A failed setup is deterministic: stay SETUP_FAILED until shutdown.
                    let _ = shutdown.wait_for(|s| *s).await;
                    return;
                }
            };
            let ready_at = tokio::time::Instant::now();
            *lock(&self.link) = Some(Arc::clone(&link));
            self.pool.fill(&link);
            {
                let mut h = lock(&self.health);
                h.health = Health::Ready;
                if let Some(setup) = &mut h.setup {
                    setup.complete(SetupStatus::Succeeded);
                }
            }
            tracing::info!("worker ready");
            let exited = tokio::select! {
                status = child.wait() => Some(status),
                _ = shutdown.wait_for(|s| *s) => None,
            };
            let Some(status) = exited else {
                let _ = link.control.send(ControlRequest::Shutdown);
                if tokio::time::timeout(SHUTDOWN_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    tracing::warn!("worker did not exit after shutdown; killing it");
                    let _ = child.kill().await;
                }
                link.alive.store(false, Ordering::Release);
                return;
            };
            let how = status.map_or_else(|e| format!("could not be waited on: {e}"), describe_exit);
            self.worker_gone(&link, &format!("worker process {how}"));
            if *shutdown.borrow() {
                return;
            }
            if !self.config.restart_worker {
                lock(&self.health).health = Health::Defunct;
                let _ = shutdown.wait_for(|s| *s).await;
                return;
            }
            if ready_at.elapsed() > STABLE_AFTER {
                backoff = RESTART_BACKOFF_MIN;
            }
            crash_note = format!("Previous worker process {how}; restarting\n");
            {
                let mut h = lock(&self.health);
                h.restarts += 1;
                h.health = Health::Starting;
                let mut record = SetupRecord::starting();
                record.logs.clone_from(&crash_note);
                h.setup = Some(record);
            }
            tracing::error!("worker process {how}; restarting in {backoff:?}");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
    }

    /// The worker died: poison its slots and fail what ran there.
    fn worker_gone(&self, link: &Arc<WorkerLink>, why: &str) {
        link.alive.store(false, Ordering::Release);
        self.pool.clear();
        *lock(&self.link) = None;
        for (_, tx) in lock(&link.healthchecks).drain() {
            let _ = tx.send(Err(why.to_string()));
        }
        for slot in &link.slots {
            if let Some(running) = lock(&slot.current).take() {
                running.prediction.finish(
                    Ending::Failed(format!("Prediction failed: {why}")),
                    None,
                    false,
                    0.0,
                );
                remove_dir_soon(running.dir);
            }
        }
    }

    async fn start_worker(
        self: &Arc<Self>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(Arc<WorkerLink>, Child), StartError> {
        let num_slots = self.config.max_concurrency.max(1);
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut listeners = Vec::with_capacity(num_slots as usize);
        let mut addresses = Vec::with_capacity(num_slots as usize);
        for i in 0..num_slots {
            let (listener, address) = bind_slot(&self.config.work_dir, &nonce, i)
                .map_err(|e| StartError::Spawn(format!("cannot create slot socket: {e}")))?;
            listeners.push(listener);
            addresses.push(address);
        }
        let Some((program, args)) = self.config.worker_command.split_first() else {
            return Err(StartError::Spawn("the worker command is empty".into()));
        };
        let mut child = Command::new(program)
            .args(args)
            .envs(self.config.worker_env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StartError::Spawn(format!("cannot start worker {program:?}: {e}")))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(StartError::Spawn("worker stdio was not piped".into()));
        };
        {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!(target: "coglet::user", source = "stderr", "{line}");
                    this.setup_log(&format!("{line}\n"));
                }
            });
        }
        let init = ControlRequest::Init {
            protocol_version: PROTOCOL_VERSION,
            predictor_ref: self.config.predictor_ref.clone().unwrap_or_default(),
            is_train: self.config.is_train,
            num_slots,
            slot_sockets: addresses,
            weights: self.config.weights.clone(),
        };

        let result = {
            let mut handshake =
                std::pin::pin!(self.handshake(&mut stdin, stdout, listeners, &init));
            let timeout = async {
                match self.config.setup_timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                biased;
                r = &mut handshake => r,
                status = child.wait() => Err(StartError::Exited(
                    status.map_or_else(|e| e.to_string(), describe_exit),
                )),
                () = timeout => Err(StartError::Timeout(self.config.setup_timeout.unwrap_or_default())),
                _ = shutdown.wait_for(|s| *s) => Err(StartError::Shutdown),
            };
            // A worker that reports its setup failure and exits at once can be seen exiting before
            // its last frames (the failure and its logs) are read: read what it left in the pipe.
            match result {
                Err(exited @ StartError::Exited(_)) => {
                    match tokio::time::timeout(EXITED_WORKER_DRAIN, &mut handshake).await {
                        Ok(Err(reported @ StartError::Setup(_))) => Err(reported),
                        _ => Err(exited),
                    }
                }
                other => other,
            }
        };
        match result {
            Ok((streams, stdout, versions)) => {
                let (control_tx, control_rx) = mpsc::unbounded_channel();
                let mut readers = Vec::with_capacity(streams.len());
                let mut slots = Vec::with_capacity(streams.len());
                for stream in streams {
                    let (read, write) = stream.into_split();
                    readers.push(read);
                    slots.push(SlotLink {
                        writer: tokio::sync::Mutex::new(write),
                        current: Mutex::new(None),
                    });
                }
                let link = Arc::new(WorkerLink {
                    control: control_tx,
                    slots,
                    alive: AtomicBool::new(true),
                    healthchecks: Mutex::new(HashMap::new()),
                });
                {
                    let mut h = lock(&self.health);
                    for (k, v) in versions {
                        h.versions.entry(k).or_insert(Value::String(v));
                    }
                    if let Some(sdk) = &self.config.sdk_version {
                        h.versions
                            .entry("python_sdk")
                            .or_insert_with(|| Value::String(sdk.clone()));
                    }
                }
                tokio::spawn(control_writer(stdin, control_rx));
                tokio::spawn(control_reader(Arc::clone(&link), stdout));
                for (slot, read) in readers.into_iter().enumerate() {
                    tokio::spawn(slot_reader(
                        Arc::clone(self),
                        Arc::clone(&link),
                        slot as SlotId,
                        read,
                    ));
                }
                Ok((link, child))
            }
            Err(e) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                Err(e)
            }
        }
    }

    /// Init, slot connections, then setup logs until Ready.
    async fn handshake(
        &self,
        stdin: &mut ChildStdin,
        stdout: ChildStdout,
        listeners: Vec<UnixListener>,
        init: &ControlRequest,
    ) -> Result<
        (
            Vec<tokio::net::UnixStream>,
            BufReader<ChildStdout>,
            HashMap<String, String>,
        ),
        StartError,
    > {
        let lost = |e: std::io::Error| StartError::Spawn(format!("worker control channel: {e}"));
        ipc::write_frame_async(stdin, init).await.map_err(lost)?;
        let mut streams = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let (stream, _) = listener.accept().await.map_err(lost)?;
            streams.push(stream);
        }
        let mut stdout = BufReader::new(stdout);
        loop {
            match ipc::read_frame_async::<_, ControlResponse>(&mut stdout).await {
                Ok(Some(ControlResponse::Ready {
                    protocol_version,
                    versions,
                    ..
                })) => {
                    if protocol_version != PROTOCOL_VERSION {
                        return Err(StartError::Setup(format!(
                            "IPC protocol version mismatch: server speaks {PROTOCOL_VERSION}, worker speaks {protocol_version}"
                        )));
                    }
                    return Ok((streams, stdout, versions));
                }
                Ok(Some(ControlResponse::SetupFailed { error })) => {
                    return Err(StartError::Setup(error));
                }
                Ok(Some(ControlResponse::Fatal { reason })) => {
                    return Err(StartError::Setup(reason));
                }
                Ok(Some(ControlResponse::Log { source, data })) => {
                    tracing::info!(target: "coglet::user", source = source.as_str(), "{}", data.trim_end());
                    self.setup_log(&data);
                }
                Ok(Some(ControlResponse::WorkerLog {
                    level,
                    target,
                    message,
                })) => {
                    log_worker(&level, &target, &message);
                }
                Ok(Some(other)) => tracing::debug!(?other, "ignoring control message during setup"),
                // The worker is going away: child.wait() reports how.
                Ok(None) | Err(_) => std::future::pending::<()>().await,
            }
        }
    }

    /// Sends a prediction to the worker on the permit's slot.
    pub async fn dispatch(
        &self,
        permit: Permit,
        prediction: Arc<Prediction>,
        input: Value,
        context: HashMap<String, String>,
    ) {
        let Permit { link, slot } = permit;
        let Some(slot_link) = link.slots.get(slot as usize) else {
            return;
        };
        let dir = self
            .config
            .work_dir
            .join("predictions")
            .join(self.scratch.next());
        let output_dir = dir.join("outputs");
        let mut request = SlotRequest::Predict {
            id: prediction.id.clone(),
            input: Some(input),
            input_file: None,
            output_dir: output_dir.clone(),
            context,
        };
        let frame = match ipc::encode_frame(&request) {
            Ok(f) if f.len() <= MAX_INLINE_IPC_SIZE => Ok(f),
            _ => spill_input(&mut request, &dir).await,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                self.pool.release(Permit { link, slot });
                prediction.finish(
                    Ending::Failed(format!("cannot pass the input to the worker: {e}")),
                    None,
                    false,
                    0.0,
                );
                return;
            }
        };
        *lock(&slot_link.current) = Some(Running {
            prediction: Arc::clone(&prediction),
            dir,
            output_dir,
            output_error: None,
        });
        prediction.start();
        let written = {
            let mut w = slot_link.writer.lock().await;
            match w.write_all(&frame).await {
                Ok(()) => w.flush().await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = written {
            // The slot is broken; the worker's death (if that is it) is handled elsewhere.
            if let Some(running) = lock(&slot_link.current).take() {
                running.prediction.finish(
                    Ending::Failed(format!("Prediction failed: lost the worker: {e}")),
                    None,
                    false,
                    0.0,
                );
            }
            return;
        }
        let control = link.control.clone();
        let id = prediction.id.clone();
        let canceller: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = control.send(ControlRequest::Cancel {
                slot,
                id: id.clone(),
            });
        });
        if !prediction.set_canceller(Arc::clone(&canceller)) {
            canceller();
        }
    }

    /// Runs the user healthcheck in the worker. `Ok(())` when healthy or no worker is ready.
    pub async fn healthcheck(&self) -> Result<(), String> {
        let Some(link) = lock(&self.link).clone() else {
            return Ok(());
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&link.healthchecks).insert(id.clone(), tx);
        if link
            .control
            .send(ControlRequest::Healthcheck { id: id.clone() })
            .is_err()
        {
            lock(&link.healthchecks).remove(&id);
            return Ok(());
        }
        match tokio::time::timeout(HEALTHCHECK_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Ok(()),
            Err(_) => {
                lock(&link.healthchecks).remove(&id);
                // Cog's wording, as the worker reports its own timeout.
                Err(format!(
                    "Healthcheck failed: user-defined healthcheck timed out after {:.1} seconds",
                    HEALTHCHECK_TIMEOUT.as_secs_f64()
                ))
            }
        }
    }

    /// Whether a worker is up and ready.
    pub fn is_ready(&self) -> bool {
        lock(&self.link).is_some()
    }

    /// Completes a prediction reported finished on `slot`, returning the slot first.
    async fn finish_on_slot(
        &self,
        link: &Arc<WorkerLink>,
        slot: SlotId,
        id: &str,
        response: SlotResponse,
    ) {
        let Some(slot_link) = link.slots.get(slot as usize) else {
            return;
        };
        let running = {
            let mut current = lock(&slot_link.current);
            match current.as_ref() {
                Some(r) if r.prediction.id == id => current.take(),
                _ => None,
            }
        };
        let Some(running) = running else {
            tracing::warn!(%id, slot, "terminal message for a prediction not running on this slot");
            return;
        };
        let (ending, output, is_stream, predict_time) = match response {
            SlotResponse::Done {
                output,
                is_stream,
                predict_time,
                ..
            } => {
                let mut failure = running.output_error.clone();
                let output = match output {
                    Some(v) => match self.resolver.resolve(v, &running.output_dir).await {
                        Ok(v) => Some(v),
                        Err(e) => {
                            tracing::error!(prediction_id = %id, error = %e, "output dropped");
                            if e.fails_prediction() && failure.is_none() {
                                failure = Some(e.prediction_error());
                            }
                            None
                        }
                    },
                    None => None,
                };
                match failure {
                    Some(error) => (Ending::Failed(error), None, false, predict_time),
                    None => (Ending::Succeeded, output, is_stream, predict_time),
                }
            }
            SlotResponse::Failed { error, .. } => (Ending::Failed(error), None, false, 0.0),
            SlotResponse::InvalidInput { error, .. } => {
                (Ending::InvalidInput(error), None, false, 0.0)
            }
            _ => (Ending::Canceled, None, false, 0.0),
        };
        let predict_time = if predict_time > 0.0 {
            predict_time
        } else {
            running.prediction.elapsed_secs()
        };
        // Free the slot before anyone hears the result: a client that sends its next
        // request as soon as it has this response must not get a 409.
        self.pool.release(Permit {
            link: Arc::clone(link),
            slot,
        });
        running
            .prediction
            .finish(ending, output, is_stream, predict_time);
        remove_dir_soon(running.dir);
    }
}

async fn spill_input(request: &mut SlotRequest, dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let SlotRequest::Predict {
        input, input_file, ..
    } = request;
    let inputs = dir.join("inputs");
    tokio::fs::create_dir_all(&inputs).await?;
    let path = inputs.join("input.json");
    let bytes = serde_json::to_vec(&input.take()).map_err(std::io::Error::other)?;
    let tmp = inputs.join("input.json.tmp");
    tokio::fs::write(&tmp, &bytes).await?;
    tokio::fs::rename(&tmp, &path).await?;
    *input_file = Some(path);
    ipc::encode_frame(request)
}

/// Removes a prediction's scratch directory if anything created it (one stat when not).
fn remove_dir_soon(dir: PathBuf) {
    if std::fs::symlink_metadata(&dir).is_ok() {
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}

#[cfg(target_os = "linux")]
fn bind_slot(
    _work_dir: &std::path::Path,
    nonce: &str,
    i: u32,
) -> std::io::Result<(UnixListener, String)> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("coglet-{nonce}-{i}");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    listener.set_nonblocking(true)?;
    Ok((UnixListener::from_std(listener)?, format!("@{name}")))
}

#[cfg(not(target_os = "linux"))]
fn bind_slot(
    work_dir: &std::path::Path,
    nonce: &str,
    i: u32,
) -> std::io::Result<(UnixListener, String)> {
    std::fs::create_dir_all(work_dir)?;
    let path = work_dir.join(format!("coglet-{nonce}-{i}.sock"));
    let listener = UnixListener::bind(&path)?;
    Ok((listener, path.to_string_lossy().into_owned()))
}

fn log_worker(level: &str, target: &str, message: &str) {
    match level {
        "error" => tracing::error!(target: "coglet::worker", worker_target = target, "{message}"),
        "warn" => tracing::warn!(target: "coglet::worker", worker_target = target, "{message}"),
        "debug" | "trace" => {
            tracing::debug!(target: "coglet::worker", worker_target = target, "{message}");
        }
        _ => tracing::info!(target: "coglet::worker", worker_target = target, "{message}"),
    }
}

async fn control_writer(mut stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<ControlRequest>) {
    while let Some(msg) = rx.recv().await {
        if ipc::write_frame_async(&mut stdin, &msg).await.is_err() {
            return;
        }
    }
}

async fn control_reader(link: Arc<WorkerLink>, mut stdout: BufReader<ChildStdout>) {
    loop {
        match ipc::read_frame_async::<_, ControlResponse>(&mut stdout).await {
            Ok(Some(ControlResponse::Log { source, data })) => {
                let line = data.trim_end();
                match source {
                    LogSource::Stdout => {
                        tracing::info!(target: "coglet::user", source = "stdout", "{line}");
                    }
                    LogSource::Stderr => {
                        tracing::info!(target: "coglet::user", source = "stderr", "{line}");
                    }
                }
            }
            Ok(Some(ControlResponse::WorkerLog {
                level,
                target,
                message,
            })) => {
                log_worker(&level, &target, &message);
            }
            Ok(Some(ControlResponse::HealthcheckResult { id, status, error })) => {
                if let Some(tx) = lock(&link.healthchecks).remove(&id) {
                    let _ = tx.send(match status {
                        HealthcheckStatus::Healthy => Ok(()),
                        HealthcheckStatus::Unhealthy => {
                            Err(error.unwrap_or_else(|| "user healthcheck failed".into()))
                        }
                    });
                }
            }
            Ok(Some(ControlResponse::Fatal { reason })) => {
                tracing::error!(%reason, "worker reported a fatal error");
            }
            Ok(Some(ControlResponse::ShuttingDown)) => tracing::info!("worker shutting down"),
            Ok(Some(other)) => tracing::debug!(?other, "ignoring control message"),
            Ok(None) | Err(_) => return,
        }
    }
}

async fn slot_reader(
    sup: Arc<Supervisor>,
    link: Arc<WorkerLink>,
    slot: SlotId,
    read: OwnedReadHalf,
) {
    let mut read = BufReader::with_capacity(64 * 1024, read);
    let Some(slot_link) = link.slots.get(slot as usize) else {
        return;
    };
    let current = |slot_link: &SlotLink| {
        lock(&slot_link.current)
            .as_ref()
            .map(|r| (Arc::clone(&r.prediction), r.output_dir.clone()))
    };
    loop {
        let msg = match ipc::read_frame_async::<_, SlotResponse>(&mut read).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(slot, error = %e, "slot channel broken");
                return;
            }
        };
        match msg {
            SlotResponse::Log { source, data } => {
                if let Some((p, _)) = current(slot_link) {
                    p.append_log(source, &data);
                }
            }
            SlotResponse::Output { output } => {
                if let Some((p, dir)) = current(slot_link) {
                    match sup.resolver.resolve(output, &dir).await {
                        Ok(v) => p.push_output(v),
                        Err(e) => {
                            tracing::error!(prediction_id = %p.id, error = %e, "output dropped");
                            if e.fails_prediction()
                                && let Some(r) = lock(&slot_link.current).as_mut()
                                && Arc::ptr_eq(&r.prediction, &p)
                            {
                                r.output_error.get_or_insert_with(|| e.prediction_error());
                            }
                        }
                    }
                }
            }
            SlotResponse::Metric { name, value, mode } => {
                if let Some((p, _)) = current(slot_link) {
                    p.record_metric(&name, value, mode);
                }
            }
            terminal => {
                let id = match &terminal {
                    SlotResponse::Done { id, .. }
                    | SlotResponse::Failed { id, .. }
                    | SlotResponse::InvalidInput { id, .. }
                    | SlotResponse::Cancelled { id } => id.clone(),
                    _ => continue,
                };
                sup.finish_on_slot(&link, slot, &id, terminal).await;
            }
        }
    }
}
