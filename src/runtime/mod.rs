//! Running images: on Docker when a daemon answers, else on podman, else with no daemon at all
//! (the image unpacked into an OCI bundle and run with `runc`).
//!
//! Every container started here is removed when its [`Container`] is dropped, and also by
//! [`remove_all`] (which the CLI calls on Ctrl-C).
mod docker_api;
mod engine;
pub mod gpus;
mod runc;
mod unpack;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use layers::{BlobStore, Digest};

use crate::oci::{self, SourceImage};

pub use engine::Loaded;
pub use gpus::GpuRequest;
pub use unpack::{UnpackBudget, apply_layer};

/// Where the images `cog build` made are recorded, in the cache.
pub fn images_layout(store: &BlobStore) -> PathBuf {
    store.root().join("images")
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "no container runtime found: install Docker (https://docs.docker.com/engine/install/, and start its daemon), podman (apt-get install podman) or runc (apt-get install runc) to run models"
    )]
    NoneAvailable,
    #[error("--runtime {kind}: {reason}")]
    Unavailable { kind: RuntimeKind, reason: String },
    #[error("unknown runtime {0:?}: use docker, podman or runc")]
    UnknownKind(String),
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "image {0} not found: build it with `cog build -t {0}`, or pull it with docker or podman"
    )]
    ImageNotFound(String),
    #[error("image {image}")]
    Image {
        image: String,
        #[source]
        source: oci::OciError,
    },
    #[error("unpacking layer {layer}")]
    Unpack {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("{}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("streaming {image} into {engine}")]
    Load {
        image: String,
        engine: RuntimeKind,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    DockerApi(#[from] docker_api::ApiError),
    #[error("{0}")]
    Other(String),
}

/// The three ways to run a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    Docker,
    Podman,
    Runc,
}

impl RuntimeKind {
    pub fn program(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
            Self::Runc => "runc",
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker" => Ok(Self::Docker),
            "podman" => Ok(Self::Podman),
            "runc" => Ok(Self::Runc),
            other => Err(RuntimeError::UnknownKind(other.to_string())),
        }
    }
}

/// Picks the runtime: `forced` when given (it must work), else Docker when its daemon answers,
/// else podman, else runc. `$COG_RUNTIME` is read by the CLI as the default for `forced`.
pub fn detect(forced: Option<RuntimeKind>) -> Result<RuntimeKind, RuntimeError> {
    if let Some(kind) = forced {
        probe(kind).map_err(|reason| RuntimeError::Unavailable { kind, reason })?;
        return Ok(kind);
    }
    for kind in [RuntimeKind::Docker, RuntimeKind::Podman, RuntimeKind::Runc] {
        match probe(kind) {
            Ok(()) => return Ok(kind),
            Err(reason) => tracing::debug!("{kind} is not usable: {reason}"),
        }
    }
    Err(RuntimeError::NoneAvailable)
}

/// Where `cog build -t NAME` puts NAME so that users can run it: the Docker daemon when it
/// answers, else podman's local storage when podman works here; `None`: our store only.
pub fn local_engine() -> Option<RuntimeKind> {
    [RuntimeKind::Docker, RuntimeKind::Podman]
        .into_iter()
        .find(|kind| match probe(*kind) {
            Ok(()) => true,
            Err(reason) => {
                tracing::debug!("not loading into {kind}: {reason}");
                false
            }
        })
}

/// Streams an image of our store into Docker or podman (unless it has that image already,
/// by id), named as the image is named.
pub fn load_into_engine(
    kind: RuntimeKind,
    store: &BlobStore,
    image: &Image,
) -> Result<Loaded, RuntimeError> {
    engine::ensure_loaded(kind, store, image)
}

/// Whether `kind` can run containers here; the reason when not.
fn probe(kind: RuntimeKind) -> Result<(), String> {
    let program = kind.program();
    if find_program(program).is_none() {
        return Err(format!("`{program}` is not installed (not found on PATH)"));
    }
    // The daemon's socket answers in a millisecond; `docker info` takes a tenth of a second.
    if kind == RuntimeKind::Docker && engine::docker_api().is_some() {
        return Ok(());
    }
    let args: &[&str] = match kind {
        RuntimeKind::Docker => &["info", "--format", "{{.ServerVersion}}"],
        RuntimeKind::Podman => &["info", "--format", "{{.Version.Version}}"],
        RuntimeKind::Runc => &["--version"],
    };
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(match kind {
            RuntimeKind::Docker => format!(
                "the Docker daemon does not answer ({})",
                stderr.trim().lines().last().unwrap_or_default()
            ),
            _ => format!("`{program} {}` failed: {}", args.join(" "), stderr.trim()),
        })
    }
}

pub use crate::sandbox::find_program;

/// An image to run: known to our cache (built by `cog build`), or only to the daemon.
#[derive(Debug, Clone)]
pub enum Image {
    /// In the blob store, with its name in the cache's image layout.
    Local {
        name: String,
        image: Box<SourceImage>,
    },
    /// A name the Docker/podman daemon knows or can pull.
    Daemon { name: String },
}

impl Image {
    pub fn name(&self) -> &str {
        match self {
            Self::Local { name, .. } | Self::Daemon { name } => name,
        }
    }

    /// The image's labels (from its config; from the daemon for a daemon-only image).
    pub fn labels(&self, kind: RuntimeKind) -> Result<BTreeMap<String, String>, RuntimeError> {
        match self {
            Self::Local { image, .. } => Ok(image
                .config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default()),
            Self::Daemon { name } => engine::labels(kind, name),
        }
    }
}

/// Finds `name` in the cache's image layout (what `cog build` recorded), reading it into the
/// store; `None` when the layout has no such name.
pub fn local_image(store: &BlobStore, name: &str) -> Result<Option<Image>, RuntimeError> {
    let layout = images_layout(store);
    if !layout.join("index.json").is_file() {
        return Ok(None);
    }
    let candidates = [name.to_string(), format!("{name}:latest")];
    for tag in candidates {
        match oci::read_layout(store, &layout, Some(&tag), &oci::Platform::linux_amd64()) {
            Ok(image) => {
                return Ok(Some(Image::Local {
                    name: tag,
                    image: Box::new(image),
                }));
            }
            Err(oci::OciError::TagNotFound { .. }) => {}
            Err(source) => {
                return Err(RuntimeError::Image {
                    image: name.to_string(),
                    source,
                });
            }
        }
    }
    Ok(None)
}

/// Reads an image we just built from the store.
pub fn built_image(
    store: &BlobStore,
    name: &str,
    manifest: &Digest,
) -> Result<Image, RuntimeError> {
    let image =
        SourceImage::from_store(store, manifest, name).map_err(|source| RuntimeError::Image {
            image: name.to_string(),
            source,
        })?;
    Ok(Image::Local {
        name: name.to_string(),
        image: Box::new(image),
    })
}

/// A bind mount into the container.
#[derive(Debug, Clone)]
pub struct Mount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// How to run a container.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// The command; empty keeps the image's `Cmd` (the `Entrypoint` always stays).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    /// The container port to publish on 127.0.0.1 (on a free host port unless `host_port`).
    pub publish: Option<u16>,
    pub host_port: Option<u16>,
    /// The host address the port is published on (default 127.0.0.1).
    pub publish_ip: Option<String>,
    /// GPUs for the container (Docker's `--gpus`, podman's CDI devices; runc has none).
    pub gpus: Option<GpuRequest>,
    pub workdir: Option<String>,
    /// Extra `/etc/hosts` entries (`host.docker.internal:host-gateway`).
    pub add_hosts: Vec<String>,
    /// Attach stdin and a TTY (for `cog exec` in a terminal).
    pub tty: bool,
}

/// The size of `/dev/shm`, as Cog gives its containers.
pub const SHM_SIZE: &str = "6g";

/// A running (or finished) container; removed when dropped.
#[derive(Debug)]
pub struct Container {
    inner: Handle,
    /// The host port the published container port is reachable on, at 127.0.0.1.
    pub host_port: Option<u16>,
}

#[derive(Debug)]
enum Handle {
    Engine(engine::EngineContainer),
    Runc(runc::RuncContainer),
}

impl Container {
    pub fn id(&self) -> &str {
        match &self.inner {
            Handle::Engine(c) => &c.id,
            Handle::Runc(c) => &c.id,
        }
    }

    /// Everything the container wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        match &self.inner {
            Handle::Engine(c) => c.logs(),
            Handle::Runc(c) => c.logs(),
        }
    }

    /// Whether the container's process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.inner {
            Handle::Engine(c) => c.is_running(),
            Handle::Runc(c) => c.is_running(),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let id = self.id().to_string();
        match &mut self.inner {
            Handle::Engine(c) => c.remove(),
            Handle::Runc(c) => c.remove(),
        }
        forget_active(&id);
    }
}

/// A chosen runtime, ready to run images.
#[derive(Clone)]
pub struct Runtime {
    pub kind: RuntimeKind,
    store: BlobStore,
    reporter: report::SharedReporter,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(kind: RuntimeKind, store: BlobStore, reporter: report::SharedReporter) -> Self {
        Self {
            kind,
            store,
            reporter,
        }
    }

    /// Makes the image available to the runtime: loads it into Docker/podman unless the daemon
    /// already has this image id (our config digest); unpacks it for runc (once per image).
    pub fn prepare(&self, image: &Image) -> Result<(), RuntimeError> {
        match (self.kind, image) {
            (RuntimeKind::Docker | RuntimeKind::Podman, _) => {
                engine::ensure_loaded(self.kind, &self.store, image).map(|_| ())
            }
            (RuntimeKind::Runc, Image::Local { image, .. }) => {
                runc::ensure_unpacked(&self.store, image).map(|_| ())
            }
            (RuntimeKind::Runc, Image::Daemon { name }) => {
                Err(RuntimeError::ImageNotFound(name.clone()))
            }
        }
    }

    /// Starts a container in the background (output kept for [`Container::logs`]).
    pub fn start(&self, image: &Image, spec: &RunSpec) -> Result<Container, RuntimeError> {
        let container = match self.kind {
            RuntimeKind::Docker | RuntimeKind::Podman => {
                let c = engine::start(self.kind, image, spec, self.reporter.as_ref())?;
                remember_active(self.kind, &c.id);
                let port = match spec.publish {
                    Some(port) => Some(c.host_port(port)?),
                    None => None,
                };
                Container {
                    inner: Handle::Engine(c),
                    host_port: port,
                }
            }
            RuntimeKind::Runc => {
                let Image::Local { image, .. } = image else {
                    return Err(RuntimeError::ImageNotFound(image.name().to_string()));
                };
                no_gpus_on_runc(spec)?;
                let c = runc::start(&self.store, image, spec, false)?;
                remember_active(self.kind, &c.id);
                let port = c.host_port;
                Container {
                    inner: Handle::Runc(c),
                    host_port: port,
                }
            }
        };
        Ok(container)
    }

    /// Runs a container in the foreground with this process's stdio, and returns its exit code.
    pub fn run_attached(&self, image: &Image, spec: &RunSpec) -> Result<i32, RuntimeError> {
        match self.kind {
            RuntimeKind::Docker | RuntimeKind::Podman => {
                engine::run_attached(self.kind, image, spec, self.reporter.as_ref())
            }
            RuntimeKind::Runc => {
                let Image::Local { image, .. } = image else {
                    return Err(RuntimeError::ImageNotFound(image.name().to_string()));
                };
                no_gpus_on_runc(spec)?;
                let mut c = runc::start(&self.store, image, spec, true)?;
                remember_active(self.kind, &c.id);
                let code = c.wait();
                c.remove();
                forget_active(&c.id);
                code
            }
        }
    }

    /// Whether the server in the container must be told to listen on 127.0.0.1 itself (runc
    /// shares the host's network; Docker and podman publish the port on 127.0.0.1 instead).
    pub fn shares_host_network(&self) -> bool {
        self.kind == RuntimeKind::Runc
    }
}

/// The message for GPUs asked of runc.
pub const RUNC_NO_GPUS: &str = "runc containers get no GPUs in cog-rs yet (the NVIDIA container toolkit's hook and CDI spec are not applied): use --runtime docker or --runtime podman";

/// runc is given no GPUs: asking for them is an error, not a container without them.
fn no_gpus_on_runc(spec: &RunSpec) -> Result<(), RuntimeError> {
    match &spec.gpus {
        Some(gpus) => Err(RuntimeError::Other(format!(
            "--gpus {gpus}: {RUNC_NO_GPUS}"
        ))),
        None => Ok(()),
    }
}

/// Containers started and not yet removed, for [`remove_all`].
static ACTIVE: Mutex<Vec<(RuntimeKind, String)>> = Mutex::new(Vec::new());

fn remember_active(kind: RuntimeKind, id: &str) {
    tracing::debug!("started container {id} with {kind}");
    if let Ok(mut active) = ACTIVE.lock() {
        active.push((kind, id.to_string()));
    }
}

fn forget_active(id: &str) {
    if let Ok(mut active) = ACTIVE.lock() {
        active.retain(|(_, i)| i != id);
    }
}

/// Set once Ctrl-C arrived: what the main thread sees failing after that is the interruption.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`remove_all`] was called because of an interruption.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Removes every container this process started and has not removed yet (on Ctrl-C).
pub fn remove_all() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    let active = match ACTIVE.lock() {
        Ok(mut active) => std::mem::take(&mut *active),
        Err(_) => return,
    };
    for (kind, id) in active {
        match kind {
            RuntimeKind::Docker | RuntimeKind::Podman => engine::remove(kind, &id),
            RuntimeKind::Runc => runc::remove_by_id(&id),
        }
    }
}

/// A name for a new container: `cog-<random>`.
fn container_name() -> String {
    format!("cog-{}", &uuid_like()[..12])
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!("{nanos}-{}-{:p}", std::process::id(), &nanos);
    Digest::of(seed.as_bytes()).hex()
}

/// Runs a command, returning stdout; the error carries stderr.
fn output_of(program: &str, args: &[&str]) -> Result<String, RuntimeError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| RuntimeError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(RuntimeError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kinds_parse_and_name_their_program() {
        for kind in [RuntimeKind::Docker, RuntimeKind::Podman, RuntimeKind::Runc] {
            assert_eq!(kind.to_string().parse::<RuntimeKind>().unwrap(), kind);
        }
        let err = "crun".parse::<RuntimeKind>().unwrap_err().to_string();
        assert_eq!(err, "unknown runtime \"crun\": use docker, podman or runc");
    }

    #[test]
    fn no_runtime_says_what_to_install() {
        let message = RuntimeError::NoneAvailable.to_string();
        for what in ["Docker", "podman", "runc", "apt-get install"] {
            assert!(message.contains(what), "{message}");
        }
    }

    #[test]
    fn images_are_found_in_the_cache_layout_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path()).unwrap();
        assert!(
            local_image(&store, "model").unwrap().is_none(),
            "no layout yet"
        );
        let layer = b"layer";
        let (digest, size) = store.put_bytes(layer).unwrap();
        let info = layers::LayerInfo {
            digest,
            size,
            diff_id: Digest::of(layer),
            media_type: oci::media_types::OCI_LAYER.into(),
        };
        let mut config = oci::ImageConfig::new_linux_amd64();
        config.container_config_mut().labels = Some(BTreeMap::from([(
            "run.cog.openapi_schema".into(),
            "{}".into(),
        )]));
        let built = oci::assemble(&store, &config, &[info], BTreeMap::new()).unwrap();
        oci::write_layout(
            &store,
            &built.image_ref(),
            &images_layout(&store),
            "model:latest",
        )
        .unwrap();

        let image = local_image(&store, "model").unwrap().unwrap();
        assert_eq!(image.name(), "model:latest");
        let labels = image.labels(RuntimeKind::Runc).unwrap();
        assert_eq!(labels["run.cog.openapi_schema"], "{}");
        let Image::Local { image, .. } = image else {
            panic!("not local")
        };
        assert_eq!(image.manifest_digest, built.manifest_digest);
        assert!(local_image(&store, "other").unwrap().is_none());
    }

    #[test]
    fn container_names_differ() {
        let a = container_name();
        let b = container_name();
        assert!(a.starts_with("cog-") && a.len() == 16, "{a}");
        assert_ne!(a, b);
    }
}
