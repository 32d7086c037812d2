//! Docker and podman, through their command-line clients (same flags for both).
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::process::{Command, Stdio};

use layers::{BlobStore, Digest};

use super::docker_api::{self, DockerApi};
use super::{
    GpuRequest, Image, RunSpec, RuntimeError, RuntimeKind, SHM_SIZE, container_name, output_of,
};
use crate::oci;

#[derive(Debug)]
pub(super) struct EngineContainer {
    pub kind: RuntimeKind,
    pub id: String,
    removed: bool,
}

/// What to hand `docker run`: the image id (our config digest) for images from our cache, so a
/// name the daemon maps elsewhere (podman's `localhost/` prefix) cannot matter.
fn run_ref(kind: RuntimeKind, image: &Image) -> String {
    match image {
        Image::Local { image, .. } => match kind {
            RuntimeKind::Podman => image.config_digest.hex(),
            _ => image.config_digest.to_string(),
        },
        Image::Daemon { name } => name.clone(),
    }
}

/// The daemon's id for `name`, without `sha256:`; `None` when it does not have it.
fn daemon_image_id(kind: RuntimeKind, name: &str) -> Option<String> {
    if kind == RuntimeKind::Docker
        && let Some(api) = docker_api()
    {
        return api
            .image_id(name)
            .ok()
            .flatten()
            .map(|id| id.trim_start_matches("sha256:").to_string());
    }
    let out = output_of(
        kind.program(),
        &["image", "inspect", "--format", "{{.Id}}", name],
    )
    .ok()?;
    let id = out.trim();
    (!id.is_empty()).then(|| id.trim_start_matches("sha256:").to_string())
}

/// The Docker daemon's API on its unix socket, when it answers there.
pub(super) fn docker_api() -> Option<DockerApi> {
    let socket = docker_api::socket_path()?;
    if !socket.exists() {
        return None;
    }
    DockerApi::connect(&socket)
        .inspect_err(|e| tracing::debug!("Docker API: {e}"))
        .ok()
}

/// What [`ensure_loaded`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// The engine had the image (by id) already; at most a tag was added.
    AlreadyThere,
    /// The image was streamed into the engine: `sent` of its `layers` layers (the others it
    /// had already, under the image's previous build).
    Loaded { sent: usize, layers: usize },
}

/// Loads an image from our cache into the daemon unless it already has that image id (our
/// config digest, or the manifest digest where the engine names images by it), and gives it
/// `name`; pulls a daemon-only image it does not have. The image goes in as a stream: through
/// Docker's image-load API, or into `docker load`/`podman load` on stdin; never a file of ours.
pub(super) fn ensure_loaded(
    kind: RuntimeKind,
    store: &BlobStore,
    image: &Image,
) -> Result<Loaded, RuntimeError> {
    match image {
        Image::Local { name, image } => load_local(kind, store, image, name),
        Image::Daemon { name } => {
            if daemon_image_id(kind, name).is_none() {
                output_of(kind.program(), &["pull", name])?;
                return Ok(Loaded::Loaded { sent: 0, layers: 0 });
            }
            Ok(Loaded::AlreadyThere)
        }
    }
}

fn load_local(
    kind: RuntimeKind,
    store: &BlobStore,
    image: &oci::SourceImage,
    name: &str,
) -> Result<Loaded, RuntimeError> {
    let config = image.config_digest.hex();
    let manifest = image.manifest_digest.hex();
    let ours = |id: &str| id == config || id == manifest;
    let api = (kind == RuntimeKind::Docker).then(docker_api).flatten();
    let id_of = |reference: &str| -> Result<Option<String>, RuntimeError> {
        Ok(match &api {
            Some(api) => api
                .image_id(reference)?
                .map(|id| id.trim_start_matches("sha256:").to_string()),
            None => daemon_image_id(kind, reference),
        })
    };
    if id_of(name)?.as_deref().is_some_and(ours) {
        tracing::debug!("{kind} already has {name} ({config})");
        return Ok(Loaded::AlreadyThere);
    }
    let reference = match kind {
        RuntimeKind::Podman => config.clone(),
        _ => image.config_digest.to_string(),
    };
    if let Some(id) = id_of(&reference)?.filter(|id| ours(id.as_str())) {
        // Same content under another name: name it too.
        tracing::debug!("{kind} has {config}; tagging it {name}");
        match &api {
            Some(api) => api.tag(&id, name)?,
            None => {
                output_of(kind.program(), &["tag", &id, name])?;
            }
        }
        return Ok(Loaded::AlreadyThere);
    }
    let image_ref = image.image_ref();
    let tags = [name.to_string()];
    let layers = image.layers.len();
    let mut sent = layers;
    let (image_ref, tags) = (&image_ref, &tags);
    let writer = |omit: HashSet<Digest>| {
        move |out: &mut dyn Write| -> io::Result<()> {
            oci::write_tarball_omitting(store, image_ref, out, tags, &omit)
                .map(|_| ())
                .map_err(io::Error::other)
        }
    };
    match &api {
        Some(api) => {
            // A rebuild under the same name mostly shares its lower layers with the image the
            // daemon has under that name: those are left out of the stream.
            let omit = api
                .image_layers(name)
                .ok()
                .flatten()
                .map(|theirs| shared_lower_layers(&image.layers, &theirs))
                .unwrap_or_default();
            let partial = !omit.is_empty();
            sent = layers - omit.len();
            let loaded = api.load(&mut writer(omit)).or_else(|e| {
                if !partial {
                    return Err(e);
                }
                sent = layers;
                // The daemon lost those layers meanwhile, or loads another way: send them all.
                tracing::debug!(
                    "{kind} refused a load without its known layers ({e}); sending all"
                );
                api.load(&mut writer(HashSet::new()))
            });
            let lines = loaded.map_err(|e| RuntimeError::Load {
                image: name.to_string(),
                engine: kind,
                source: Box::new(e),
            })?;
            tracing::debug!("{kind}: {}", lines.join("; "));
        }
        None => load_through_client(kind, name, &mut writer(HashSet::new()))?,
    }
    // The archive names the image; podman may prefix it with `localhost/`, so name it as asked.
    if kind == RuntimeKind::Podman {
        output_of(kind.program(), &["tag", &config, name])?;
    }
    Ok(Loaded::Loaded { sent, layers })
}

/// The blobs of `ours` whose layer chain (this layer and every one below it) equals the start of
/// `theirs` (an image's diff ids as the daemon reports them): Docker finds a layer by its chain,
/// so those need not be sent again.
fn shared_lower_layers(ours: &[layers::LayerInfo], theirs: &[String]) -> HashSet<Digest> {
    ours.iter()
        .zip(theirs)
        .take_while(|(layer, diff_id)| layer.diff_id.to_string() == **diff_id)
        .map(|(layer, _)| layer.digest)
        .collect()
}

/// `docker load` / `podman load` with the tarball written into its stdin as it is made.
fn load_through_client(
    kind: RuntimeKind,
    name: &str,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> Result<(), RuntimeError> {
    let program = kind.program();
    let mut child = Command::new(program)
        .args(["load", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RuntimeError::Spawn {
            program: program.to_string(),
            source,
        })?;
    let written = match child.stdin.take() {
        Some(stdin) => {
            let mut stdin = io::BufWriter::with_capacity(1 << 20, stdin);
            write(&mut stdin).and_then(|()| stdin.flush())
        }
        None => Err(io::Error::other("no stdin")),
    };
    let output = child
        .wait_with_output()
        .map_err(|source| RuntimeError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(RuntimeError::Command {
            command: format!("{program} load"),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    written.map_err(|source| RuntimeError::Load {
        image: name.to_string(),
        engine: kind,
        source: Box::new(source),
    })
}

/// The labels of an image the daemon has (pulling it first when it does not).
pub(super) fn labels(
    kind: RuntimeKind,
    name: &str,
) -> Result<BTreeMap<String, String>, RuntimeError> {
    if daemon_image_id(kind, name).is_none() {
        output_of(kind.program(), &["pull", name])?;
    }
    let out = output_of(
        kind.program(),
        &[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            name,
        ],
    )?;
    let labels: Option<BTreeMap<String, String>> = serde_json::from_str(out.trim())
        .map_err(|e| RuntimeError::Other(format!("labels of {name} from {kind}: {e}")))?;
    Ok(labels.unwrap_or_default())
}

/// `docker run` arguments shared by detached and attached runs.
fn run_args(kind: RuntimeKind, image: &Image, spec: &RunSpec, name: &str) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        "--name".into(),
        name.into(),
        "--shm-size".into(),
        SHM_SIZE.into(),
    ];
    if let Some(port) = spec.publish {
        args.push("--publish".into());
        let ip = spec.publish_ip.as_deref().unwrap_or("127.0.0.1");
        match spec.host_port {
            Some(host) => args.push(format!("{ip}:{host}:{port}")),
            None => args.push(format!("{ip}::{port}")),
        }
    }
    for (key, value) in &spec.env {
        args.push("--env".into());
        args.push(format!("{key}={value}"));
    }
    for mount in &spec.mounts {
        args.push("--volume".into());
        let mode = if mount.read_only { ":ro" } else { "" };
        args.push(format!("{}:{}{mode}", mount.source.display(), mount.target));
    }
    if let Some(dir) = &spec.workdir {
        args.push("--workdir".into());
        args.push(dir.clone());
    }
    for host in &spec.add_hosts {
        args.push("--add-host".into());
        args.push(host.clone());
    }
    if let Some(gpus) = &spec.gpus {
        if kind == RuntimeKind::Podman {
            // podman gives GPUs through CDI (`nvidia-ctk cdi generate`).
            for device in gpus.cdi_devices() {
                args.push("--device".into());
                args.push(device);
            }
        } else {
            args.push("--gpus".into());
            args.push(gpus.docker_arg());
        }
    }
    if spec.tty {
        args.push("--interactive".into());
        args.push("--tty".into());
    }
    if kind == RuntimeKind::Podman {
        // Never ask a registry for an image we just loaded.
        args.push("--pull".into());
        args.push("never".into());
    }
    args.push(run_ref(kind, image));
    args.extend(spec.args.iter().cloned());
    args
}

/// Whether `docker run` failed because the machine has no GPU driver (Cog then retries without).
fn missing_gpu_driver(stderr: &str) -> bool {
    stderr.contains("could not select device driver")
        || stderr.contains("nvidia-container-cli")
        || stderr.contains("unresolvable CDI devices")
}

/// Docker's container-create body for `spec` (what `docker run` sends for the same flags).
fn create_body(image: &Image, spec: &RunSpec) -> serde_json::Value {
    let mut config = serde_json::json!({
        "Image": run_ref(RuntimeKind::Docker, image),
        "Env": spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
    });
    if !spec.args.is_empty() {
        config["Cmd"] = serde_json::json!(spec.args);
    }
    if let Some(dir) = &spec.workdir {
        config["WorkingDir"] = serde_json::json!(dir);
    }
    let mut host = serde_json::json!({
        "ShmSize": 6_u64 << 30,
        "Binds": spec.mounts.iter().map(|m| {
            let mode = if m.read_only { ":ro" } else { "" };
            format!("{}:{}{mode}", m.source.display(), m.target)
        }).collect::<Vec<_>>(),
        "ExtraHosts": spec.add_hosts,
    });
    if let Some(port) = spec.publish {
        let key = format!("{port}/tcp");
        config["ExposedPorts"] = serde_json::json!({ key.clone(): {} });
        host["PortBindings"] = serde_json::json!({ key: [{
            "HostIp": spec.publish_ip.as_deref().unwrap_or("127.0.0.1"),
            "HostPort": spec.host_port.map(|p| p.to_string()).unwrap_or_default(),
        }]});
    }
    if let Some(gpus) = &spec.gpus {
        host["DeviceRequests"] = gpus.device_requests();
    }
    config["HostConfig"] = host;
    config
}

/// `docker run --detach`, through the API: create, then start (no client process).
fn start_with_api(
    api: &DockerApi,
    image: &Image,
    spec: &RunSpec,
    name: &str,
) -> Result<(), RuntimeError> {
    api.create_container(name, &create_body(image, spec))?;
    api.start_container(name)?;
    Ok(())
}

pub(super) fn start(
    kind: RuntimeKind,
    image: &Image,
    spec: &RunSpec,
    reporter: &dyn report::Reporter,
) -> Result<EngineContainer, RuntimeError> {
    let name = container_name();
    // Images from our cache are in the daemon by now; a daemon-only name may need a pull,
    // which `docker run` does.
    let started = if kind == RuntimeKind::Docker
        && matches!(image, Image::Local { .. })
        && let Some(api) = docker_api()
    {
        start_with_api(&api, image, spec, &name)
    } else {
        let mut args = run_args(kind, image, spec, &name);
        args.insert(1, "--detach".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        output_of(kind.program(), &refs).map(drop)
    };
    match started {
        Ok(()) => Ok(EngineContainer {
            kind,
            id: name,
            removed: false,
        }),
        Err(err) => {
            remove(kind, &name);
            // Cog retries without GPUs when the host has no NVIDIA driver, unless particular
            // GPUs were asked for (then the error is what the user needs to see).
            let no_driver = match &err {
                RuntimeError::DockerApi(docker_api::ApiError::Status { message, .. }) => {
                    missing_gpu_driver(message)
                }
                RuntimeError::Command { stderr, .. } => missing_gpu_driver(stderr),
                _ => false,
            };
            if !(spec.gpus == Some(GpuRequest::All) && no_driver) {
                return Err(err);
            }
            reporter.warning(&no_driver_message(kind));
            let spec = RunSpec {
                gpus: None,
                ..spec.clone()
            };
            start(kind, image, &spec, reporter)
        }
    }
}

pub(super) fn run_attached(
    kind: RuntimeKind,
    image: &Image,
    spec: &RunSpec,
    reporter: &dyn report::Reporter,
) -> Result<i32, RuntimeError> {
    let name = container_name();
    let mut args = run_args(kind, image, spec, &name);
    args.insert(1, "--rm".into());
    super::remember_active(kind, &name);
    // With all GPUs asked (Cog's default for `gpu: true`), the engine's own error is watched
    // for on its way to our stderr: without a GPU driver Cog runs again without GPUs.
    let watch = spec.gpus == Some(GpuRequest::All);
    let mut command = Command::new(kind.program());
    command.args(&args).stdin(if spec.tty {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    if watch {
        command.stderr(Stdio::piped());
    }
    let spawned = command.spawn().map_err(|source| RuntimeError::Spawn {
        program: kind.program().to_string(),
        source,
    });
    let status = spawned.and_then(|mut child| {
        let tail = child.stderr.take().map(|stderr| {
            std::thread::spawn(move || {
                let mut tail = Vec::new();
                copy_keeping_tail(stderr, &mut io::stderr(), &mut tail);
                tail
            })
        });
        let status = child.wait().map_err(|source| RuntimeError::Spawn {
            program: kind.program().to_string(),
            source,
        })?;
        let tail = tail.and_then(|t| t.join().ok()).unwrap_or_default();
        Ok((status, String::from_utf8_lossy(&tail).into_owned()))
    });
    remove(kind, &name);
    super::forget_active(&name);
    let (status, tail) = status?;
    let code = status.code().unwrap_or(1);
    // 125: the engine itself failed (the container never ran).
    if watch && code == 125 && missing_gpu_driver(&tail) {
        reporter.warning(&no_driver_message(kind));
        let spec = RunSpec {
            gpus: None,
            ..spec.clone()
        };
        return run_attached(kind, image, &spec, reporter);
    }
    Ok(code)
}

/// Copies `from` to `to` as it comes, keeping its last few KiB.
fn copy_keeping_tail(mut from: impl io::Read, to: &mut impl Write, tail: &mut Vec<u8>) {
    const KEEP: usize = 8 << 10;
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = to.write_all(&buf[..n]);
        let _ = to.flush();
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > KEEP {
            tail.drain(..tail.len() - KEEP);
        }
    }
}

/// Cog's words when it runs again without GPUs, and what to set up for them.
fn no_driver_message(kind: RuntimeKind) -> String {
    let setup = match kind {
        RuntimeKind::Podman => {
            "podman finds NVIDIA GPUs through the NVIDIA container toolkit's CDI spec: `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"
        }
        _ => {
            "Docker needs the NVIDIA driver and the NVIDIA container toolkit (`nvidia-ctk runtime configure --runtime=docker`)"
        }
    };
    format!("Missing device driver, re-trying without GPU ({setup})")
}

impl EngineContainer {
    /// The host port that `container_port` is published on (at 127.0.0.1).
    pub fn host_port(&self, container_port: u16) -> Result<u16, RuntimeError> {
        if self.kind == RuntimeKind::Docker
            && let Some(api) = docker_api()
        {
            let key = format!("{container_port}/tcp");
            let state = api.container(&self.id)?;
            return state
                .and_then(|s| s.ports.into_iter().find(|(p, _)| *p == key))
                .map(|(_, host)| host)
                .ok_or_else(|| {
                    RuntimeError::Other(format!(
                        "docker container {}: no host port published for {key}",
                        self.id
                    ))
                });
        }
        let out = output_of(
            self.kind.program(),
            &["port", &self.id, &format!("{container_port}/tcp")],
        )?;
        out.lines()
            .filter_map(|line| line.trim().rsplit_once(':'))
            .find_map(|(_, port)| port.parse().ok())
            .ok_or_else(|| {
                RuntimeError::Other(format!(
                    "{} port {}: no host port published for {container_port}/tcp (got {out:?})",
                    self.kind, self.id
                ))
            })
    }

    pub fn logs(&self) -> String {
        let output = Command::new(self.kind.program())
            .args(["logs", &self.id])
            .output();
        match output {
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                text
            }
            Err(e) => format!("(cannot read the logs of {}: {e})", self.id),
        }
    }

    pub fn is_running(&self) -> bool {
        if self.kind == RuntimeKind::Docker
            && let Some(api) = docker_api()
        {
            return api
                .container(&self.id)
                .is_ok_and(|s| s.is_some_and(|s| s.running));
        }
        output_of(
            self.kind.program(),
            &["inspect", "--format", "{{.State.Running}}", &self.id],
        )
        .is_ok_and(|out| out.trim() == "true")
    }

    pub fn remove(&mut self) {
        if !self.removed {
            remove(self.kind, &self.id);
            self.removed = true;
        }
    }
}

impl Drop for EngineContainer {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `docker rm --force`, quietly (the container may already be gone).
pub(super) fn remove(kind: RuntimeKind, id: &str) {
    if kind == RuntimeKind::Docker
        && let Some(api) = docker_api()
        && api.remove_container(id).is_ok()
    {
        return;
    }
    let _ = Command::new(kind.program())
        .args(["rm", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::runtime::{GpuRequest, Mount};

    #[test]
    fn run_arguments_publish_on_loopback_and_mount_the_project() {
        let spec = RunSpec {
            args: vec!["python".into(), "-m".into(), "cog.server.http".into()],
            env: vec![("COG_LOG_LEVEL".into(), "warning".into())],
            mounts: vec![Mount {
                source: PathBuf::from("/work/model"),
                target: "/src".into(),
                read_only: false,
            }],
            publish: Some(5000),
            gpus: Some(GpuRequest::All),
            ..RunSpec::default()
        };
        let image = Image::Daemon {
            name: "r8.im/me/model".into(),
        };
        let args = run_args(RuntimeKind::Docker, &image, &spec, "cog-x").join(" ");
        assert_eq!(
            args,
            "run --name cog-x --shm-size 6g --publish 127.0.0.1::5000 --env COG_LOG_LEVEL=warning \
             --volume /work/model:/src --gpus all r8.im/me/model python -m cog.server.http"
        );
        let podman = run_args(RuntimeKind::Podman, &image, &spec, "cog-x").join(" ");
        assert!(podman.contains("--pull never r8.im/me/model"), "{podman}");
        assert!(
            podman.contains(" --device nvidia.com/gpu=all ") && !podman.contains("--gpus"),
            "{podman}"
        );
    }

    #[test]
    fn the_api_create_body_asks_what_docker_run_flags_ask() {
        let spec = RunSpec {
            args: vec!["python".into(), "-m".into(), "cog.server.http".into()],
            env: vec![("A".into(), "1".into())],
            mounts: vec![Mount {
                source: PathBuf::from("/work/model"),
                target: "/src".into(),
                read_only: true,
            }],
            publish: Some(5000),
            gpus: Some(GpuRequest::All),
            add_hosts: vec!["host.docker.internal:host-gateway".into()],
            ..RunSpec::default()
        };
        let image = Image::Daemon {
            name: "model:latest".into(),
        };
        let body = create_body(&image, &spec);
        assert_eq!(body["Image"], "model:latest");
        assert_eq!(
            body["Cmd"],
            serde_json::json!(["python", "-m", "cog.server.http"])
        );
        assert_eq!(body["Env"], serde_json::json!(["A=1"]));
        let host = &body["HostConfig"];
        assert_eq!(host["ShmSize"], 6_u64 << 30);
        assert_eq!(host["Binds"], serde_json::json!(["/work/model:/src:ro"]));
        assert_eq!(
            host["PortBindings"]["5000/tcp"],
            serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": ""}])
        );
        assert_eq!(
            host["DeviceRequests"][0]["Capabilities"],
            serde_json::json!([["gpu"]])
        );
        assert_eq!(
            host["ExtraHosts"],
            serde_json::json!(["host.docker.internal:host-gateway"])
        );
        // No command: the image's own.
        let bare = create_body(&image, &RunSpec::default());
        assert!(bare.get("Cmd").is_none() && bare["HostConfig"].get("PortBindings").is_none());
    }

    #[test]
    fn only_layers_whose_whole_chain_the_daemon_has_are_left_out() {
        let layer = |n: u8| layers::LayerInfo {
            digest: Digest::of(&[n]),
            size: 1,
            diff_id: Digest::of(&[n, n]),
            media_type: String::new(),
        };
        let ours = [layer(1), layer(2), layer(3)];
        let id = |n: u8| Digest::of(&[n, n]).to_string();
        let omitted = shared_lower_layers(&ours, &[id(1), id(2), id(9)]);
        assert_eq!(omitted, HashSet::from([layer(1).digest, layer(2).digest]));
        // A layer the daemon has above a different one is another chain: sent again.
        let omitted = shared_lower_layers(&ours, &[id(9), id(2), id(3)]);
        assert!(omitted.is_empty());
        // An image with fewer layers than ours.
        assert_eq!(shared_lower_layers(&ours, &[id(1)]).len(), 1);
    }

    #[test]
    fn gpu_driver_errors_are_recognised() {
        assert!(missing_gpu_driver(
            "docker: Error response from daemon: could not select device driver \"\" with capabilities: [[gpu]]."
        ));
        assert!(!missing_gpu_driver("no such image"));
    }
}
