//! The sandbox process: `cog` started again with [`HELPER_ARG`](super::HELPER_ARG), one per
//! step. It enters its namespaces while it is still single-threaded (a user namespace when not
//! root, then a private mount namespace and a pid namespace), unpacks the layers below into the
//! cache, mounts the step's overlay, runs the command with runc, and writes the upper directory
//! as a layer into the store.
//!
//! Protocol (JSON lines): the caller writes a [`Request`] on stdin; stdout carries the
//! command's output (runc's stdout and stderr); stderr carries [`Message`]s. Without root the
//! process answers `Ready` once in its new user namespace, and waits for a line on stdin: the
//! caller writes it after newuidmap/newgidmap wrote the maps.
use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use layers::{BlobStore, Compression, Digest, LayerInfo, LayerOptions, LayerWriter};
use rustix::thread::UnshareFlags;
use serde::{Deserialize, Serialize};

use super::bundle::{self, BundleSpec, FileMount};
use super::capture;
use super::error::{StepError, io_text};
use super::fsops;
use super::identity::Privilege;
use super::overlay::{self, RunDir, View};
use super::stubs::{self, MountPoint, PointKind};
use super::unpack::{self, Budget, XattrSpace};

/// A layer below the step, with the chain id of the stack up to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Lower {
    pub digest: Digest,
    pub chain: Digest,
}

/// What the sandbox process is asked to do, and as whom.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub store: PathBuf,
    pub fsync: bool,
    pub privilege: Privilege,
    pub job: Job,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Job {
    Step(Box<StepJob>),
    /// Unpack layers into the cache ahead of a step that will need them; run nothing.
    Unpack(UnpackJob),
    /// Remove what builds unpacked (`<cache>/sandbox`).
    RemoveUnpacked,
}

/// Layers to unpack into the cache, within the limits a step has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UnpackJob {
    pub lower: Vec<Lower>,
    pub max_unpacked_bytes: u64,
    pub max_layer_ratio: u64,
}

/// One build step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepJob {
    pub lower: Vec<Lower>,
    pub command: String,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub network: bool,
    /// Read-only file mounts: the host's resolv.conf and hosts, the secrets.
    pub mounts: Vec<FileMount>,
    pub runc: PathBuf,
    pub compression: Compression,
    pub threads: Option<usize>,
    pub epoch: u64,
    pub max_unpacked_bytes: u64,
    pub max_layer_ratio: u64,
    /// Host directories bind-mounted read-write (source → target), for commands whose results
    /// are files on the host rather than a layer.
    #[serde(default)]
    pub binds: Vec<FileMount>,
    /// Write the command's changes as a layer (a build step); without it the container's
    /// changes outside `binds` are discarded.
    #[serde(default = "yes")]
    pub capture: bool,
}

fn yes() -> bool {
    true
}

/// What the sandbox process says, on stderr.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Message {
    /// In its user namespace, waiting for the maps.
    Ready,
    /// The command succeeded; its changes are this layer, committed to the store.
    Layer {
        layer: LayerInfo,
        skipped_sockets: Vec<String>,
    },
    /// The command ran and failed.
    Exited {
        exit_code: i32,
    },
    /// The command succeeded; nothing was captured (`StepJob::capture` off).
    Ran,
    /// runc failed before the command started.
    RuntimeFailed {
        exit_code: i32,
    },
    /// What builds unpacked is removed.
    Removed,
    Failed(StepError),
}

pub(crate) fn main() -> ExitCode {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut line = String::new();
    if input.read_line(&mut line).is_err() {
        return ExitCode::from(2);
    }
    let request: Request = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("cog sandbox: bad request: {e}");
            return ExitCode::from(2);
        }
    };
    let message = match enter_namespaces(&request, &mut input).and_then(|()| run(&request)) {
        Ok(message) => message,
        Err(e) => Message::Failed(e),
    };
    send(&message);
    ExitCode::SUCCESS
}

fn send(message: &Message) {
    if let Ok(text) = serde_json::to_string(message) {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "{text}");
        let _ = err.flush();
    }
}

fn enter_namespaces(request: &Request, input: &mut impl BufRead) -> Result<(), StepError> {
    if let Privilege::UserNamespace { .. } = request.privilege {
        // SAFETY: no other thread exists yet; nothing shares our file table.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER) }
            .map_err(|e| StepError::system("creating a user namespace", &e.into()))?;
        send(&Message::Ready);
        let mut go = String::new();
        input
            .read_line(&mut go)
            .map_err(|e| StepError::system("waiting for the user namespace's maps", &e))?;
        if !rustix::process::getuid().is_root() {
            return Err(StepError::System {
                action: "entering the user namespace".into(),
                reason: "its maps were not written".into(),
            });
        }
    }
    // SAFETY: as above.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }
        .map_err(|e| StepError::system("creating a mount namespace", &e.into()))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| StepError::system("making the mounts private", &e.into()))?;
    Ok(())
}

fn run(request: &Request) -> Result<Message, StepError> {
    match &request.job {
        Job::Step(step) => run_step(request, step),
        Job::Unpack(job) => {
            let cache = Cache::open(request)?;
            let run = RunDir::create(&cache.runs)?;
            let mut budget = Budget {
                limit: job.max_unpacked_bytes,
                used: 0,
                max_ratio: job.max_layer_ratio,
            };
            cache.unpack(&run, &job.lower, &mut budget)?;
            Ok(Message::Ran)
        }
        Job::RemoveUnpacked => {
            let base = request.store.join("sandbox");
            let runc = super::find_program("runc");
            overlay::sweep(&base.join("runs"), runc.as_deref());
            let snapshots = base.join("snapshots");
            match fs_err::remove_dir_all(&snapshots) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(StepError::system("removing the unpacked layers", &e))
                }
                _ => Ok(Message::Removed),
            }
        }
    }
}

/// The sandbox's part of the cache: unpacked layers (`snapshots/<format>/<chain id>`) and the
/// runs' work directories.
struct Cache {
    store: BlobStore,
    snapshots: PathBuf,
    runs: PathBuf,
    space: XattrSpace,
}

impl Cache {
    fn open(request: &Request) -> Result<Self, StepError> {
        let store = BlobStore::open(&request.store)
            .map_err(|e| StepError::System {
                action: "opening the blob store".into(),
                reason: e.to_string(),
            })?
            .with_fsync(request.fsync);
        let base = request.store.join("sandbox");
        let space = match request.privilege {
            Privilege::Root => XattrSpace::Trusted,
            Privilege::UserNamespace { .. } => XattrSpace::User,
        };
        let snapshots = base.join("snapshots").join(request.privilege.format_name());
        let runs = base.join("runs");
        for dir in [&snapshots, &runs] {
            fs_err::create_dir_all(dir).map_err(|e| StepError::system("the sandbox cache", &e))?;
        }
        Ok(Cache {
            store,
            snapshots,
            runs,
            space,
        })
    }

    /// Unpacks each layer of `lower` not yet in the cache (by chain id), and links each into
    /// `run/l/<index>`: the returned names, relative to `run`, bottom first.
    fn unpack(
        &self,
        run: &RunDir,
        lower: &[Lower],
        budget: &mut Budget,
    ) -> Result<Vec<String>, StepError> {
        let system = |what: &str| {
            let what = what.to_string();
            move |e: io::Error| StepError::system(what, &e)
        };
        let userxattr = self.space == XattrSpace::User;
        fs_err::create_dir(run.path.join("l")).map_err(system("the layer links"))?;
        let mut lowers: Vec<String> = Vec::new();
        for (index, layer) in lower.iter().enumerate() {
            let snapshot = self.snapshots.join(layer.chain.hex());
            if !snapshot.is_dir() {
                let partial = run.path.join(format!("unpack-{index}"));
                fs_err::create_dir(&partial).map_err(system("unpacking"))?;
                let view = View::new(&run.path, &lowers, &format!("below-{index}"), userxattr)?;
                let blob = self
                    .store
                    .open_blob(&layer.digest)
                    .map_err(|e| StepError::Layer {
                        layer: layer.digest.to_string(),
                        reason: e.to_string(),
                    })?;
                unpack::unpack_layer(
                    blob,
                    &partial,
                    &layer.digest.to_string(),
                    (!lowers.is_empty()).then_some(view.path.as_path()),
                    self.space,
                    budget,
                )?;
                drop(view);
                if let Err(e) = fs_err::rename(&partial, &snapshot) {
                    // Another build unpacked the same layers first: theirs serves.
                    if !snapshot.is_dir() {
                        return Err(StepError::system("storing an unpacked layer", &e));
                    }
                }
            }
            let link = format!("l/{index}");
            std::os::unix::fs::symlink(&snapshot, run.path.join(&link))
                .map_err(system("linking a layer"))?;
            lowers.push(link);
        }
        Ok(lowers)
    }
}

fn run_step(request: &Request, step: &StepJob) -> Result<Message, StepError> {
    let cache = Cache::open(request)?;
    let (store, space, runs) = (&cache.store, cache.space, &cache.runs);
    let userxattr = space == XattrSpace::User;
    overlay::sweep(runs, Some(&step.runc));
    let run = RunDir::create(runs)?;
    std::env::set_current_dir(&run.path)
        .map_err(|e| StepError::system(format!("entering {}", run.path.display()), &e))?;
    let system = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| StepError::system(what, &e)
    };

    // The layers below, each unpacked once into the cache (by chain id).
    let mut budget = Budget {
        limit: step.max_unpacked_bytes,
        used: 0,
        max_ratio: step.max_layer_ratio,
    };
    let lowers = cache.unpack(&run, &step.lower, &mut budget)?;

    // Mount points the image lacks, in a layer of their own.
    let host_files: Vec<FileMount> = ["/etc/resolv.conf", "/etc/hosts"]
        .into_iter()
        .filter(|path| Path::new(path).exists())
        .map(|path| FileMount {
            source: path.to_string(),
            target: path.to_string(),
        })
        .chain(step.mounts.iter().cloned())
        .collect();
    let mut points: Vec<MountPoint> = ["/proc", "/dev", "/sys"]
        .into_iter()
        .map(|target| MountPoint {
            target: target.into(),
            kind: PointKind::Dir,
        })
        .collect();
    points.push(MountPoint {
        target: step.workdir.clone(),
        kind: PointKind::Dir,
    });
    points.extend(host_files.iter().map(|m| MountPoint {
        target: m.target.clone(),
        kind: PointKind::File,
    }));
    points.extend(step.binds.iter().map(|m| MountPoint {
        target: m.target.clone(),
        kind: PointKind::Dir,
    }));
    let stub = run.path.join("stub");
    fs_err::create_dir(&stub).map_err(system("the mount-point layer"))?;
    let upper = run.path.join("upper");
    fs_err::create_dir(&upper).map_err(system("the upper directory"))?;
    {
        let view = View::new(&run.path, &lowers, "view", userxattr)?;
        stubs::build(&view.path, &stub, &points)?;
        // The overlay's root shows the upper directory's attributes: the image's root's.
        let root = fsops::open_dir(&view.path).map_err(system("the image's root"))?;
        let stat = rustix::fs::fstat(&root)
            .map_err(|e| StepError::system("the image's root", &e.into()))?;
        let upper_fd = fsops::open_dir(&upper).map_err(system("the upper directory"))?;
        fsops::set_attrs(upper_fd.as_fd(), &fsops::Attrs::of(&stat))
            .map_err(system("the upper directory"))?;
    }

    // The container's root.
    for dir in ["work", "bundle", "bundle/rootfs", "state"] {
        fs_err::create_dir(run.path.join(dir)).map_err(system("the bundle"))?;
    }
    let mut stack = vec!["stub".to_string()];
    stack.extend(lowers.iter().rev().cloned());
    let rootfs = overlay::mount_overlay(
        &stack,
        Some(("upper", "work")),
        Path::new("bundle/rootfs"),
        userxattr,
    )?;
    let config = bundle::config(&BundleSpec {
        command: &step.command,
        env: &step.env,
        workdir: &step.workdir,
        network: step.network,
        mounts: &host_files,
        binds: &step.binds,
        nofile: bundle::nofile_limit(),
    });
    let config_text = serde_json::to_vec_pretty(&config).map_err(|e| StepError::System {
        action: "writing config.json".into(),
        reason: e.to_string(),
    })?;
    fs_err::write(run.path.join("bundle/config.json"), config_text)
        .map_err(system("writing config.json"))?;

    // The command.
    let status = runc(step, &run.path)?;
    drop(rootfs);
    let started = run.path.join("pid").exists();
    if !status.success() {
        let exit_code = status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9)
        });
        return Ok(if started {
            Message::Exited { exit_code }
        } else {
            Message::RuntimeFailed { exit_code }
        });
    }

    if !step.capture {
        return Ok(Message::Ran);
    }

    // Its changes, as a layer.
    let options = LayerOptions {
        compression: step.compression,
        mtime: Some(step.epoch),
        threads: step.threads,
    };
    let mut writer = LayerWriter::new(store, &options).map_err(|e| StepError::System {
        action: "starting the layer".into(),
        reason: e.to_string(),
    })?;
    let captured = capture::capture(&upper, &mut writer, step.epoch, space)?;
    let layer = writer.finish().map_err(|e| StepError::System {
        action: "writing the layer".into(),
        reason: e.to_string(),
    })?;
    Ok(Message::Layer {
        layer,
        skipped_sockets: captured.skipped_sockets,
    })
}

/// The container's name: its work directory's (unique), so that runc's cgroups never clash.
fn container_id(run: &Path) -> String {
    run.file_name().map_or_else(
        || "cog-step".to_string(),
        |n| format!("cog-{}", n.to_string_lossy()),
    )
}

/// `runc run` in the foreground, its output on our stdout, as the first process of a pid
/// namespace of its own (under [`pid1`]): it dies with us, and everything in that namespace (the
/// command's processes) dies with it.
fn runc(request: &StepJob, run: &Path) -> Result<std::process::ExitStatus, StepError> {
    let output = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| StepError::system("sharing the output", &e))?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg(super::HELPER_ARG)
        .arg(PID1_ARG)
        .arg(&request.runc)
        .arg("--root")
        .arg(run.join("state"))
        .arg("run")
        .arg("--bundle")
        .arg(run.join("bundle"))
        .arg("--pid-file")
        .arg(run.join("pid"))
        .arg(container_id(run))
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::from(output));
    // The pid namespace is unshared here, in the child, not in this process: a process that
    // did so can no longer start threads, and writing the layer needs them.
    // SAFETY: prctl and unshare are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            rustix::thread::unshare_unsafe(UnshareFlags::NEWPID)?;
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| StepError::System {
        action: format!("starting {}", request.runc.display()),
        reason: io_text(&e),
    })?;
    child
        .wait()
        .map_err(|e| StepError::system("waiting for runc", &e))
}

/// The second argument that makes the sandbox process [`pid1`].
pub(crate) const PID1_ARG: &str = "pid1";

/// Runs `args` (runc and its arguments) as the first process of the pid namespace this
/// process's children go into, with a `/proc` of that namespace (runc reads it), and exits as
/// it did. It dies with its parent, and its child with it; when the first process of a pid
/// namespace ends, the kernel kills every other process in it.
pub(crate) fn pid1(args: &[std::ffi::OsString]) -> ExitCode {
    let Some((program, rest)) = args.split_first() else {
        return ExitCode::from(2);
    };
    let mut command = Command::new(program);
    command.args(rest);
    // SAFETY: prctl, unshare and mount are async-signal-safe; no allocation here.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)?;
            rustix::mount::mount(
                c"proc",
                c"/proc",
                c"proc",
                rustix::mount::MountFlags::NOSUID
                    | rustix::mount::MountFlags::NODEV
                    | rustix::mount::MountFlags::NOEXEC,
                None,
            )?;
            Ok(())
        });
    }
    match command.status() {
        Ok(status) => {
            let code = status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9)
            });
            ExitCode::from(u8::try_from(code).unwrap_or(255))
        }
        Err(e) => {
            eprintln!("cannot start {}: {e}", program.to_string_lossy());
            ExitCode::from(125)
        }
    }
}
