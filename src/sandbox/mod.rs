//! Build commands (`build.run`, `pre_install`) run over an image's filesystem with no daemon,
//! each captured as one reproducible OCI layer. See `docs/sandbox.md`.
//!
//! ```text
//! run_steps(store, lower, steps, secrets, options, on_event) -> Vec<StepOutcome>
//! ```
//!
//! For each [`RunStep`], in order: its [cache key](step_key) (the chain id of the layers
//! below, the command, environment, working directory, secret ids and targets, network,
//! platform, `SOURCE_DATE_EPOCH`, compression, [`SANDBOX_VERSION`]; never a secret's bytes) is
//! looked up in the store's key cache; a hit is the step's layer ([`Event::Cached`]). Otherwise
//! (or with [`SandboxOptions::no_cache`]) the step runs in a sandbox process, `cog` itself
//! started again ([`SandboxOptions::helper`], [`HELPER_ARG`]; `main` must call
//! [`helper_main`] first):
//!
//! 1. Without root it enters a user namespace whose maps newuidmap/newgidmap write (the user is
//!    root inside, their `/etc/subuid` range is ids 1 and up); then its own mount and pid
//!    namespaces, so no mount or process outlives it.
//! 2. Each layer below is unpacked once into the cache, in overlayfs's format, by chain id
//!    (`<cache>/sandbox/snapshots/<format>/<chain id>`), safely (see `unpack`), within
//!    [`SandboxOptions::max_unpacked_bytes`].
//! 3. An overlay of those (plus a small layer of missing mount points) with an empty upper
//!    directory is the container's root; runc runs `/bin/sh -c COMMAND` in it as root, in the
//!    step's working directory, with its environment plus `SOURCE_DATE_EPOCH`, the host's
//!    network, `/etc/resolv.conf` and `/etc/hosts` read-only, and its secrets read-only.
//! 4. Every line the command prints goes to `on_event` ([`Event::Output`]); nothing is printed
//!    here.
//! 5. On success the upper directory is written as the step's layer ([`layers::Entry`]s: owners,
//!    modes, whiteouts, opaque directories, hard links, `security.capability`, mtimes clamped
//!    to `SOURCE_DATE_EPOCH`), and its key recorded. A failing command is
//!    [`SandboxError::CommandFailed`] with its exit code and last lines; nothing is recorded.
//!
//! The returned [`StepOutcome`]s give each step's [`LayerInfo`] (for the manifest and the
//! config's diff_ids) and whether it came from the cache. The caller records the command in
//! the image's history; [`step_key`] and [`chain_id`] let a planner show keys without running
//! anything; [`Privilege::detect`] says whether this machine can run steps at all (what is
//! missing if not); [`interrupt_all`] stops running steps on Ctrl-C.
mod bundle;
mod capture;
mod error;
mod fsops;
mod helper;
mod identity;
mod key;
pub mod limits;
mod overlay;
mod platform;
mod secrets;
mod stubs;
mod unpack;

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use layers::{BlobStore, Compression, LayerInfo};

pub use bundle::{CAPABILITIES, HOSTNAME, nofile_limit};
pub use error::{RootlessError, SandboxError, StepError};
pub use identity::{IdMap, Privilege};
pub use key::{SANDBOX_VERSION, chain_id, step_key};
pub use platform::{BINFMT_DIR, find_program, host_platform};
pub use secrets::{MAX_SECRET_BYTES, Secret, SecretSource, default_target};

use crate::oci::Platform;
use helper::{Lower, Message, Request, StepJob};

/// The first argument that makes `cog` the sandbox process (see [`helper_main`]).
pub const HELPER_ARG: &str = "__cog-sandbox";

/// Lines of output kept for a failing command's error.
pub const TAIL_LINES: usize = 20;

/// The default cap on bytes unpacked for one step (the layers below it not yet in the cache).
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 256 << 30;

/// `PATH` when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One command to run: a `build.run` entry (or `pre_install`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStep {
    /// Run as `/bin/sh -c COMMAND`.
    pub command: String,
    /// The environment: the image's so far, in order (`PATH` defaults to [`DEFAULT_PATH`],
    /// `HOME` to `/root`; `SOURCE_DATE_EPOCH` is [`SandboxOptions::source_date_epoch`] unless
    /// set here).
    pub env: Vec<(String, String)>,
    /// Absolute; `/` for Cog's steps. Made (for the run only) when the image lacks it.
    pub workdir: String,
    /// Secrets mounted for this step only.
    pub mounts: Vec<SecretMount>,
    /// Share the host's network (Cog's steps always do); `false` gives a loopback only.
    pub network: bool,
}

impl RunStep {
    /// `command` in `/`, with the host's network, no environment, no mounts.
    pub fn new(command: impl Into<String>) -> Self {
        RunStep {
            command: command.into(),
            env: Vec::new(),
            workdir: "/".to_string(),
            mounts: Vec::new(),
            network: true,
        }
    }
}

/// `mounts: [{type: secret, id, target}]`: the secret `id` read-only at `target` (absolute;
/// [`default_target`] when the config gives none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMount {
    pub id: String,
    pub target: String,
}

/// How steps run and their layers are written.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub compression: Compression,
    /// Run every step even when its layer is cached (`cog build --no-cache`); the new layer is
    /// recorded.
    pub no_cache: bool,
    /// The image's platform. Another architecture than the host's needs an emulator
    /// registered with binfmt_misc, or fails.
    pub platform: Platform,
    /// Set in each command's environment and the clamp for every mtime in the layers.
    pub source_date_epoch: u64,
    /// Cap on the bytes unpacked for one step (the layers below not yet unpacked).
    pub max_unpacked_bytes: u64,
    /// Cap on how far one compressed layer below may expand (uncompressed bytes per
    /// compressed byte; see [`limits`]).
    pub max_layer_ratio: u64,
    /// The executable that runs [`helper_main`]: this program (`cog`) by default.
    pub helper: PathBuf,
    /// The OCI runtime; `runc` on `PATH` by default.
    pub runc: Option<PathBuf>,
    /// Compression workers (see [`layers::LayerOptions::threads`]).
    pub threads: Option<usize>,
}

impl SandboxOptions {
    /// The host's platform, `SOURCE_DATE_EPOCH` from the environment (else 0), this program
    /// as the sandbox process.
    pub fn new(compression: Compression) -> Self {
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        SandboxOptions {
            compression,
            no_cache: false,
            platform: host_platform(),
            source_date_epoch: epoch,
            max_unpacked_bytes: DEFAULT_MAX_UNPACKED_BYTES,
            max_layer_ratio: limits::DEFAULT_MAX_LAYER_RATIO,
            helper: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cog")),
            runc: None,
            threads: None,
        }
    }
}

/// What a step produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOutcome {
    pub layer: LayerInfo,
    /// Taken from the key cache, not run.
    pub cached: bool,
    /// Its cache key ([`step_key`]).
    pub key: String,
}

/// What happens while steps run, for the progress reporter.
#[derive(Debug)]
pub enum Event<'a> {
    /// Step `step`'s layer came from the cache.
    Cached { step: usize, layer: &'a LayerInfo },
    /// Step `step` starts (unpacking what it needs first).
    Started { step: usize, command: &'a str },
    /// One line the command printed (stdout and stderr, in order; without its newline).
    Output { step: usize, line: &'a str },
    /// Step `step` ran and its layer is written.
    Finished {
        step: usize,
        layer: &'a LayerInfo,
        elapsed: Duration,
    },
}

/// The index of the first step whose layer is not in the key cache (`steps.len()` if all are).
fn first_uncached(
    store: &BlobStore,
    lower: &[LayerInfo],
    steps: &[RunStep],
    options: &SandboxOptions,
) -> usize {
    let mut diff_ids: Vec<layers::Digest> = lower.iter().map(|l| l.diff_id).collect();
    for (index, step) in steps.iter().enumerate() {
        let below = chain_id(diff_ids.iter());
        match store.lookup_key(&step_key(below.as_ref(), step, options)) {
            Some(layer) => diff_ids.push(layer.diff_id),
            None => return index,
        }
    }
    steps.len()
}

/// Makes sure every layer of `layers` is in the store (one only a remote build cache had is
/// downloaded now): the sandbox unpacks them.
fn ensure_local(store: &BlobStore, layers: &[LayerInfo]) -> Result<(), SandboxError> {
    for layer in layers {
        if let Err(reason) = store.ensure_local(layer) {
            tracing::warn!("layer {} below the run steps: {reason}", layer.digest);
            return Err(SandboxError::MissingLayer {
                digest: layer.digest,
                store: store.root().to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Runs `steps` in order over the image whose layers (bottom first, blobs in `store`) are
/// `lower`, each step over the layers of the ones before; see the module docs.
///
/// It blocks until the last step is done, calling `on_event` on this thread (from async code:
/// `spawn_blocking`). The sandbox processes it starts die if this thread ends.
pub fn run_steps(
    store: &BlobStore,
    lower: &[LayerInfo],
    steps: &[RunStep],
    secrets: &[Secret],
    options: &SandboxOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<StepOutcome>, SandboxError> {
    for (index, step) in steps.iter().enumerate() {
        check_step(index, step)?;
    }
    // Secrets are needed only by the steps that will run: a cached step's layer is reused
    // without its secret (as BuildKit does; `cog run` has no --secret).
    let first_to_run = if options.no_cache {
        0
    } else {
        first_uncached(store, lower, steps, options)
    };
    secrets::check_ids(steps, first_to_run, secrets)?;
    if first_to_run < steps.len() {
        ensure_local(store, lower)?;
    }
    let mut stack: Vec<LayerInfo> = lower.to_vec();
    let mut outcomes = Vec::with_capacity(steps.len());
    let mut ready: Option<(Privilege, PathBuf)> = None;
    for (index, step) in steps.iter().enumerate() {
        let below = chain_id(stack.iter().map(|l| &l.diff_id));
        let key = step_key(below.as_ref(), step, options);
        if !options.no_cache
            && let Some(layer) = store.lookup_key(&key)
        {
            on_event(Event::Cached {
                step: index,
                layer: &layer,
            });
            stack.push(layer.clone());
            outcomes.push(StepOutcome {
                layer,
                cached: true,
                key,
            });
            continue;
        }
        if ready.is_none() {
            ready = Some(check_host(options)?);
        }
        let (privilege, runc) = ready.clone().expect("set above");
        // The layers of cached steps below may be in a remote build cache only.
        ensure_local(store, &stack)?;
        on_event(Event::Started {
            step: index,
            command: &step.command,
        });
        let started = Instant::now();
        let job = Job {
            index,
            step,
            secrets,
            binds: Vec::new(),
            capture: true,
        };
        let layer = run_one(store, &stack, &job, options, privilege, runc, &mut |line| {
            on_event(Event::Output { step: index, line });
        })?
        .ok_or_else(|| SandboxError::HelperDied {
            program: options.helper.clone(),
            status: "answered without a layer".into(),
            stderr: Vec::new(),
        })?;
        store
            .record_key(&key, &layer)
            .map_err(SandboxError::Store)?;
        on_event(Event::Finished {
            step: index,
            layer: &layer,
            elapsed: started.elapsed(),
        });
        stack.push(layer.clone());
        outcomes.push(StepOutcome {
            layer,
            cached: false,
            key,
        });
    }
    Ok(outcomes)
}

/// Whether this machine can run steps for `options` (the platform runnable here, runc, root or
/// a user namespace), and how: for `cog doctor`, or to fail before a long build. `run_steps`
/// checks this itself before the first step it has to run.
pub fn check_host(options: &SandboxOptions) -> Result<(Privilege, PathBuf), SandboxError> {
    platform::check_runnable(&options.platform, std::path::Path::new(BINFMT_DIR)).map_err(
        |reason| SandboxError::ForeignPlatform {
            platform: options.platform.to_string(),
            host: host_platform().to_string(),
            reason,
        },
    )?;
    let runc = match &options.runc {
        Some(path) => path.clone(),
        None => find_program("runc").ok_or(SandboxError::NoRuntime)?,
    };
    Ok((Privilege::detect()?, runc))
}

fn check_step(index: usize, step: &RunStep) -> Result<(), SandboxError> {
    let invalid = |field: &'static str, value: &str, reason: &str| SandboxError::InvalidStep {
        step: index,
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if step.command.trim().is_empty() {
        return Err(invalid("command", &step.command, "it is empty"));
    }
    if step.command.contains('\0') {
        return Err(invalid("command", &step.command, "it contains a NUL byte"));
    }
    let absolute = |field: &'static str, path: &str| {
        if !path.starts_with('/') {
            return Err(invalid(field, path, "it must be an absolute path"));
        }
        if path.trim_matches('/').is_empty() {
            return Ok(());
        }
        safe_path::relative_path(path)
            .map(|_| ())
            .map_err(|e| invalid(field, path, e.reason))
    };
    absolute("workdir", &step.workdir)?;
    for mount in &step.mounts {
        absolute("mount target", &mount.target)?;
        if mount.target.trim_matches('/').is_empty() {
            return Err(invalid(
                "mount target",
                &mount.target,
                "a secret cannot be mounted on /",
            ));
        }
        if mount.id.is_empty() {
            return Err(invalid("mount id", &mount.id, "it is empty"));
        }
    }
    for (name, _) in &step.env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(invalid("environment variable", name, "not a valid name"));
        }
    }
    Ok(())
}

/// The command's environment: the step's, with `PATH`, `HOME` and `SOURCE_DATE_EPOCH` added
/// when absent.
fn environment(step: &RunStep, options: &SandboxOptions) -> Vec<(String, String)> {
    let mut env = step.env.clone();
    for (name, value) in [
        ("PATH", DEFAULT_PATH.to_string()),
        ("HOME", "/root".to_string()),
        ("SOURCE_DATE_EPOCH", options.source_date_epoch.to_string()),
    ] {
        if !env.iter().any(|(k, _)| k == name) {
            env.push((name.to_string(), value));
        }
    }
    env
}

/// A host directory shared read-write with a [`run_command`] command at `target` (absolute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
}

/// Runs one command as a step runs (over `lower`, root in the image, its environment,
/// network as `step.network` says) with `binds` shared read-write, and captures no layer:
/// what it makes is what it writes into the binds; its other changes are discarded. For work
/// done in the image's environment whose result is files (building a wheel from an sdist).
///
/// Each line the command prints goes to `on_line`. A failure is
/// [`SandboxError::CommandFailed`] with its last lines. It blocks; several may run at once,
/// from several threads (each in its own sandbox process and work directory).
pub fn run_command(
    store: &BlobStore,
    lower: &[LayerInfo],
    step: &RunStep,
    binds: &[Bind],
    options: &SandboxOptions,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), SandboxError> {
    check_step(0, step)?;
    if !step.mounts.is_empty() {
        return Err(SandboxError::InvalidStep {
            step: 0,
            field: "mounts",
            value: format!("{} secret mounts", step.mounts.len()),
            reason: "run_command takes no secrets".into(),
        });
    }
    let mut mounts = Vec::with_capacity(binds.len());
    for bind in binds {
        let invalid = |reason: String| SandboxError::InvalidStep {
            step: 0,
            field: "bind",
            value: format!("{} -> {}", bind.source.display(), bind.target),
            reason,
        };
        if !bind.target.starts_with('/') || bind.target.trim_matches('/').is_empty() {
            return Err(invalid(
                "the target must be an absolute path below /".into(),
            ));
        }
        safe_path::relative_path(&bind.target).map_err(|e| invalid(e.reason.to_string()))?;
        let source = fs_err::canonicalize(&bind.source).map_err(|e| invalid(e.to_string()))?;
        if !source.is_dir() {
            return Err(invalid("the source must be a directory".into()));
        }
        mounts.push(bundle::FileMount {
            source: source.to_string_lossy().into_owned(),
            target: bind.target.clone(),
        });
    }
    ensure_local(store, lower)?;
    let (privilege, runc) = check_host(options)?;
    let job = Job {
        index: 0,
        step,
        secrets: &[],
        binds: mounts,
        capture: false,
    };
    run_one(store, lower, &job, options, privilege, runc, on_line).map(|_| ())
}

/// One command for a sandbox process.
struct Job<'a> {
    index: usize,
    step: &'a RunStep,
    secrets: &'a [Secret],
    binds: Vec<bundle::FileMount>,
    capture: bool,
}

/// Runs `job` over `stack`: its layer when it captures one.
fn run_one(
    store: &BlobStore,
    stack: &[LayerInfo],
    job: &Job<'_>,
    options: &SandboxOptions,
    privilege: Privilege,
    runc: PathBuf,
    on_line: &mut dyn FnMut(&str),
) -> Result<Option<LayerInfo>, SandboxError> {
    let (index, step, secrets) = (job.index, job.step, job.secrets);
    let written = secrets::StepSecrets::write(&step.mounts, secrets)?;
    let lower = lowers(stack);
    let request = Request {
        store: absolute(store)?,
        fsync: store.fsyncs(),
        privilege,
        job: helper::Job::Step(Box::new(StepJob {
            lower,
            command: step.command.clone(),
            env: environment(step, options),
            workdir: step.workdir.clone(),
            network: step.network,
            mounts: written.mounts.clone(),
            runc,
            compression: options.compression,
            threads: options.threads,
            epoch: options.source_date_epoch,
            max_unpacked_bytes: options.max_unpacked_bytes,
            max_layer_ratio: options.max_layer_ratio,
            binds: job.binds.clone(),
            capture: job.capture,
        })),
    };
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let answer = talk(&options.helper, &request, &step.command, &mut |line| {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
        on_line(line);
    })?;
    drop(written);
    let tail = || tail.iter().cloned().collect::<Vec<_>>();
    match answer {
        Message::Layer {
            layer,
            skipped_sockets,
        } => {
            for socket in skipped_sockets {
                tracing::warn!(
                    "`{}` left the socket /{socket}; a layer cannot hold one",
                    step.command
                );
            }
            Ok(Some(layer))
        }
        Message::Ran => Ok(None),
        Message::Exited { exit_code } => Err(SandboxError::CommandFailed {
            step: index,
            command: step.command.clone(),
            exit_code,
            tail: tail(),
        }),
        Message::RuntimeFailed { exit_code } => Err(SandboxError::RuntimeFailed {
            step: index,
            command: step.command.clone(),
            exit_code,
            tail: tail(),
        }),
        Message::Failed(source) => Err(SandboxError::Step {
            step: index,
            command: step.command.clone(),
            source,
        }),
        Message::Ready | Message::Removed => Err(SandboxError::HelperDied {
            program: options.helper.clone(),
            status: "answered out of turn".into(),
            stderr: Vec::new(),
        }),
    }
}

/// Each layer of `stack` with the chain id of the stack up to it (what the sandbox process
/// unpacks it under).
fn lowers(stack: &[LayerInfo]) -> Vec<Lower> {
    let mut diff_ids = Vec::with_capacity(stack.len());
    stack
        .iter()
        .map(|layer| {
            diff_ids.push(layer.diff_id);
            Lower {
                digest: layer.digest,
                chain: chain_id(diff_ids.iter()).expect("at least one layer"),
            }
        })
        .collect()
}

/// Unpacks `lower` into the cache now, so that a step over them later starts without doing it
/// (a build calls this in the background as soon as the base is there, while its other layers
/// are built). Layers unpacked already cost nothing: this returns without starting anything.
pub fn prepare_lower(
    store: &BlobStore,
    lower: &[LayerInfo],
    options: &SandboxOptions,
) -> Result<(), SandboxError> {
    if lower.is_empty() {
        return Ok(());
    }
    ensure_local(store, lower)?;
    let (privilege, _runc) = check_host(options)?;
    let layers = lowers(lower);
    let snapshots = store
        .root()
        .join("sandbox/snapshots")
        .join(privilege.format_name());
    if layers
        .iter()
        .all(|l| snapshots.join(l.chain.hex()).is_dir())
    {
        return Ok(());
    }
    let request = Request {
        store: absolute(store)?,
        fsync: store.fsyncs(),
        privilege,
        job: helper::Job::Unpack(helper::UnpackJob {
            lower: layers,
            max_unpacked_bytes: options.max_unpacked_bytes,
            max_layer_ratio: options.max_layer_ratio,
        }),
    };
    match talk(&options.helper, &request, "unpacking layers", &mut |_| {})? {
        Message::Ran => Ok(()),
        Message::Failed(source) => Err(SandboxError::Step {
            step: 0,
            command: "unpacking the layers below".into(),
            source,
        }),
        _ => Err(SandboxError::HelperDied {
            program: options.helper.clone(),
            status: "answered out of turn".into(),
            stderr: Vec::new(),
        }),
    }
}

/// Removes the layers that builds unpacked into `<cache>/sandbox` (they are unpacked again when
/// needed). Without root, files there belong to the user's subordinate ids, which the user
/// cannot delete directly: this removes them from inside the user namespace. Run it while no
/// build uses this cache.
pub fn remove_unpacked(store: &BlobStore, options: &SandboxOptions) -> Result<(), SandboxError> {
    if !store.root().join("sandbox").exists() {
        return Ok(());
    }
    let request = Request {
        store: absolute(store)?,
        fsync: store.fsyncs(),
        privilege: Privilege::detect()?,
        job: helper::Job::RemoveUnpacked,
    };
    match talk(
        &options.helper,
        &request,
        "removing unpacked layers",
        &mut |_| {},
    )? {
        Message::Removed => Ok(()),
        Message::Failed(source) => Err(SandboxError::Cleanup(source)),
        _ => Err(SandboxError::HelperDied {
            program: options.helper.clone(),
            status: "answered out of turn".into(),
            stderr: Vec::new(),
        }),
    }
}

/// The store's root as an absolute path (the sandbox works from its own directory).
fn absolute(store: &BlobStore) -> Result<PathBuf, SandboxError> {
    fs_err::canonicalize(store.root()).map_err(|e| {
        SandboxError::Store(layers::Error::Store {
            path: store.root().to_path_buf(),
            source: e,
        })
    })
}

/// Processes started by [`talk`] and not yet reaped, for [`interrupt_all`].
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every sandbox process this process started that is still running (on Ctrl-C): the
/// commands in them die with them, their mounts go with their namespaces, and the next build
/// removes their work directories. The interrupted [`run_steps`] returns an error.
pub fn interrupt_all() {
    let pids = RUNNING.lock().map(|p| p.clone()).unwrap_or_default();
    for pid in pids {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Starts the sandbox process, hands it `request`, passes each output line to `on_line`, and
/// returns its answer.
fn talk(
    program: &Path,
    request: &Request,
    what: &str,
    on_line: &mut dyn FnMut(&str),
) -> Result<Message, SandboxError> {
    let spawn_error = |source| SandboxError::Spawn {
        program: program.to_path_buf(),
        source,
    };
    let mut command = Command::new(program);
    command
        .arg(HELPER_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Ctrl-C in the terminal is the caller's to handle (interrupt_all), not the sandbox's.
        .process_group(0);
    // SAFETY: prctl is async-signal-safe. The sandbox dies if this thread goes away.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn().map_err(spawn_error)?;
    let pid = child.id();
    if let Ok(mut running) = RUNNING.lock() {
        running.push(pid);
    }
    let reaped = Reaper { pid };
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut diagnostics = Vec::new();

    // Without root: the sandbox answers Ready from its new user namespace, we write its maps.
    let mut handshake = || -> Result<Option<Message>, SandboxError> {
        let mut text = serde_json::to_string(request).expect("requests serialize");
        text.push('\n');
        stdin.write_all(text.as_bytes()).map_err(spawn_error)?;
        if let Privilege::UserNamespace { uids, gids } = request.privilege {
            match read_message(&mut stderr, &mut diagnostics) {
                Some(Message::Ready) => {}
                Some(answer) => return Ok(Some(answer)),
                None => return Err(died(program, "no answer", &diagnostics)),
            }
            identity::write_maps(pid, &uids, &gids)?;
            stdin.write_all(b"go\n").map_err(spawn_error)?;
        }
        Ok(None)
    };
    let early = handshake();
    drop(stdin);
    if !matches!(early, Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
        drop(reaped);
        tracing::debug!("the sandbox for {what} stopped early");
        return early.map(|answer| answer.expect("an answer"));
    }

    // Answers on stderr, read on a thread while the output is read here.
    let answers = std::thread::spawn(move || {
        let mut last = None;
        while let Some(message) = read_message(&mut stderr, &mut diagnostics) {
            last = Some(message);
        }
        (last, diagnostics)
    });
    read_lines(stdout, on_line);
    let status = child.wait().map_err(spawn_error)?;
    drop(reaped);
    let (answer, diagnostics) = answers.join().unwrap_or((None, Vec::new()));
    answer.ok_or_else(|| died(program, &status.to_string(), &diagnostics))
}

/// Forgets a sandbox process once it is reaped.
struct Reaper {
    pid: u32,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|p| *p != self.pid);
        }
    }
}

fn died(program: &Path, status: &str, diagnostics: &[String]) -> SandboxError {
    let start = diagnostics.len().saturating_sub(TAIL_LINES);
    SandboxError::HelperDied {
        program: program.to_path_buf(),
        status: status.to_string(),
        stderr: diagnostics[start..].to_vec(),
    }
}

/// The next message on the sandbox's stderr; other lines (a panic) are kept as diagnostics.
fn read_message(stderr: &mut impl BufRead, diagnostics: &mut Vec<String>) -> Option<Message> {
    let mut line = String::new();
    loop {
        line.clear();
        match stderr.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => match serde_json::from_str::<Message>(line.trim_end()) {
                Ok(message) => return Some(message),
                Err(_) => diagnostics.push(line.trim_end().to_string()),
            },
        }
    }
}

/// The longest line passed on whole; longer ones are cut into pieces of this size.
const MAX_LINE: usize = 64 << 10;

/// Splits `output` into lines (`\n`, a trailing `\r` dropped; invalid UTF-8 replaced).
fn read_lines(output: impl Read, on_line: &mut dyn FnMut(&str)) {
    let mut reader = BufReader::new(output);
    let mut line = Vec::new();
    let mut emit = |bytes: &[u8]| {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        on_line(&String::from_utf8_lossy(bytes));
    };
    loop {
        let available = match reader.fill_buf() {
            Ok([]) | Err(_) => break,
            Ok(bytes) => bytes,
        };
        let room = MAX_LINE - line.len();
        let window = &available[..available.len().min(room)];
        let (used, ended) = match window.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (window.len(), false),
        };
        line.extend_from_slice(&window[..if ended { used - 1 } else { used }]);
        reader.consume(used);
        if ended || line.len() >= MAX_LINE {
            emit(&line);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

/// Runs the sandbox process when this program was started as one (first argument
/// [`HELPER_ARG`]); `None` otherwise. `main` must call it before anything else, while the
/// process has a single thread (a user namespace can only be entered then).
pub fn helper_main() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(HELPER_ARG)) {
        return None;
    }
    let rest: Vec<std::ffi::OsString> = args.collect();
    Some(match rest.split_first() {
        None => helper::main(),
        Some((mode, runc)) if mode.as_os_str() == OsStr::new(helper::PID1_ARG) => {
            helper::pid1(runc)
        }
        Some((mode, _)) => {
            eprintln!("cog sandbox: unknown mode {}", mode.to_string_lossy());
            ExitCode::from(2)
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn output_is_split_into_lines() {
        let mut lines = Vec::new();
        let long = "y".repeat(MAX_LINE + 10);
        let text = format!("one\r\ntwo\n\n{long}\nlast");
        read_lines(text.as_bytes(), &mut |l| lines.push(l.to_string()));
        assert_eq!(lines[..3], ["one", "two", ""]);
        assert_eq!(lines[3].len(), MAX_LINE);
        assert_eq!(lines[4].len(), 10);
        assert_eq!(lines[5], "last");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn steps_are_checked_before_anything_runs() {
        for (step, expected) in [
            (RunStep::new("  "), "command"),
            (
                RunStep {
                    workdir: "src".into(),
                    ..RunStep::new("ls")
                },
                "absolute",
            ),
            (
                RunStep {
                    mounts: vec![SecretMount {
                        id: "a".into(),
                        target: "/run/../etc/passwd".into(),
                    }],
                    ..RunStep::new("ls")
                },
                "`..`",
            ),
            (
                RunStep {
                    env: vec![("A=B".into(), "1".into())],
                    ..RunStep::new("ls")
                },
                "environment variable",
            ),
        ] {
            let err = check_step(3, &step).unwrap_err().to_string();
            assert!(
                err.starts_with("run step 3:") && err.contains(expected),
                "{err}"
            );
        }
        check_step(0, &RunStep::new("ls")).unwrap();
    }

    #[test]
    fn the_environment_gets_path_home_and_the_epoch() {
        let mut options = SandboxOptions::new(Compression::gzip());
        options.source_date_epoch = 42;
        let step = RunStep {
            env: vec![("PATH".into(), "/opt/bin".into())],
            ..RunStep::new("true")
        };
        assert_eq!(
            environment(&step, &options),
            [
                ("PATH".to_string(), "/opt/bin".to_string()),
                ("HOME".into(), "/root".into()),
                ("SOURCE_DATE_EPOCH".into(), "42".into())
            ]
        );
    }
}
