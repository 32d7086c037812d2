//! What `cog run`, `cog serve` and `cog exec` share: open the project, build it as `cog build`
//! would, pick a runtime and make the image ready for it, and remove the container on Ctrl-C.
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::args::{BuildFlags, ProjectArgs};
use super::build;
use crate::resolve::Project;
use crate::runtime::{self, GpuRequest, Image, Mount, RunSpec, Runtime, RuntimeKind};
use crate::session::Session;

/// The port the image's server listens on inside the container.
pub const SERVER_PORT: u16 = 5000;

/// The project (config and static schema), before any build: `cog run` validates its inputs
/// against the schema first. `need_runner`: cog.yaml must name a runner (`run`, `serve`).
pub fn open_project(session: &Session, args: &ProjectArgs, need_runner: bool) -> Result<Project> {
    let flags = BuildFlags::for_project(args);
    let project = Project::open(session, &flags.resolve_options())?;
    if need_runner && project.config.predict.is_none() && project.config.train.is_none() {
        bail!(
            "{}: no `predict` (or `run`) entry point: set it to e.g. \"predict.py:Predictor\" to run predictions",
            project.config_path.display()
        );
    }
    Ok(project)
}

/// The GPUs a container gets: `--gpus`, else all of them when the model sets `build.gpu`
/// (Cog's default). runc gives none: `--gpus` is refused there, and the default becomes a
/// warning that the container runs without.
pub fn gpus(
    session: &Session,
    runtime: &Runtime,
    flag: Option<&GpuRequest>,
    build_gpu: bool,
) -> Result<Option<GpuRequest>> {
    let wanted = flag.cloned().or(build_gpu.then_some(GpuRequest::All));
    if runtime.kind != RuntimeKind::Runc {
        return Ok(wanted);
    }
    match (flag, wanted) {
        (Some(flag), _) => bail!("--gpus {flag}: {}", runtime::RUNC_NO_GPUS),
        (None, Some(_)) => {
            session.reporter.warning(&format!(
                "build.gpu is true, but the container runs without GPUs: {}",
                runtime::RUNC_NO_GPUS
            ));
            Ok(None)
        }
        (None, None) => Ok(None),
    }
}

/// A project built, with the runtime that will run it, the image ready for that runtime.
pub struct Ready {
    pub runtime: Runtime,
    pub image: Image,
    /// The image's OpenAPI document (`None` for an image not built here, or without a runner).
    pub schema: Option<String>,
    /// The project's managed weights, assembled for the container (removed on drop).
    pub weights: crate::weights::mount::Mounts,
}

impl Ready {
    /// The managed weights' read-only mounts, added to `spec`.
    pub fn mount_weights(&self, spec: &mut RunSpec) {
        spec.mounts.extend(self.weights.mounts.iter().cloned());
    }
}

/// Builds `project` as `cog build` does (recorded in the cache), then makes it ready for the
/// runtime `args` picks.
pub fn build_for_runtime(
    session: &Session,
    args: &ProjectArgs,
    project: &Project,
) -> Result<Ready> {
    let runtime = detect_runtime(session, args)?;
    let flags = BuildFlags::for_project(args);
    let name = build::image_name(None, &project.config, &project.dir);
    let built = build::build_and_save(session, project, &flags, &name, None)?;
    write_schema(project, built.schema.as_deref())?;
    let image = runtime::built_image(&session.store, &name, &built.image.digest)?;
    prepare(&runtime, &image)?;
    let weights = crate::weights::mount::prepare(
        &project.dir,
        &project.config,
        &crate::weights::FileStore::under(session.store.root()),
    )?;
    Ok(Ready {
        runtime,
        image,
        schema: built.schema,
        weights,
    })
}

pub fn detect_runtime(session: &Session, args: &ProjectArgs) -> Result<Runtime> {
    let kind = runtime::detect(args.runtime)?;
    tracing::debug!("running containers with {kind}");
    Ok(Runtime::new(
        kind,
        session.store.clone(),
        session.reporter.clone(),
    ))
}

pub fn prepare(runtime: &Runtime, image: &Image) -> Result<()> {
    runtime
        .prepare(image)
        .with_context(|| format!("preparing {} for {}", image.name(), runtime.kind))
}

/// Writes the image's schema into the project's `.cog/` as Cog does: the project is mounted
/// over the image's `/src`, and the server reads `/src/.cog/openapi_schema.json`.
fn write_schema(project: &Project, document: Option<&str>) -> Result<()> {
    let Some(document) = document else {
        return Ok(());
    };
    let dir = project.dir.join(".cog");
    let path = dir.join("openapi_schema.json");
    if fs_err::read_to_string(&path).ok().as_deref() != Some(document) {
        fs_err::create_dir_all(&dir)?;
        fs_err::write(&path, document)?;
    }
    Ok(())
}

/// The project mounted at `/src`, read-write, as Cog mounts it.
pub fn project_mount(dir: &Path) -> Mount {
    Mount {
        source: dir.to_path_buf(),
        target: "/src".to_string(),
        read_only: false,
    }
}

/// `-e KEY=VALUE` pairs.
pub fn parse_env(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("-e {pair}: expected the form KEY=VALUE"),
        })
        .collect()
}

/// The command that starts the image's prediction server, with `extra` flags. On runc the
/// container shares the host's network, so the server itself binds 127.0.0.1.
fn server_command(runtime: &Runtime, image: &Image, extra: &[String]) -> Vec<String> {
    let mut args = match image {
        Image::Local { image, .. } => image
            .config
            .config
            .as_ref()
            .and_then(|c| c.cmd.clone())
            .unwrap_or_default(),
        Image::Daemon { .. } => Vec::new(),
    };
    if args.is_empty() {
        args = ["python", "-m", "cog.server.http"]
            .map(String::from)
            .to_vec();
    }
    if runtime.shares_host_network() {
        args.extend(["--host".to_string(), "127.0.0.1".to_string()]);
    }
    args.extend(extra.iter().cloned());
    args
}

/// How Cog runs the prediction server locally: the project at `/src`, port 5000 published on
/// 127.0.0.1, console logs at warning level (debug with `--debug`).
pub fn server_spec(
    runtime: &Runtime,
    image: &Image,
    user_env: Vec<(String, String)>,
    project_dir: Option<&Path>,
    gpus: Option<GpuRequest>,
    extra: &[String],
) -> RunSpec {
    let level = if tracing::enabled!(tracing::Level::DEBUG) {
        "debug"
    } else {
        "warning"
    };
    let mut env = vec![
        ("LOG_FORMAT".to_string(), "console".to_string()),
        ("COG_LOG_LEVEL".to_string(), level.to_string()),
    ];
    if project_dir.is_some() {
        // The project is mounted read-write: Python must not leave root-owned __pycache__
        // directories in it (they would also change the next build's source layer).
        env.push(("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()));
    }
    env.extend(user_env);
    RunSpec {
        args: server_command(runtime, image, extra),
        env,
        mounts: project_dir.map(project_mount).into_iter().collect(),
        publish: Some(SERVER_PORT),
        gpus,
        ..RunSpec::default()
    }
}

/// Publishes the server on `ip` instead of 127.0.0.1; on runc, which shares the host's network,
/// the server itself binds it.
pub fn set_publish_ip(runtime: &Runtime, spec: &mut RunSpec, ip: &str) {
    spec.publish_ip = Some(ip.to_string());
    if runtime.shares_host_network()
        && let Some(at) = spec.args.iter().position(|a| a == "--host")
        && let Some(value) = spec.args.get_mut(at + 1)
    {
        *value = ip.to_string();
    }
}

/// Runs a container in the foreground and exits with its code.
pub fn run_attached(ready: &Ready, spec: &RunSpec) -> Result<ExitCode> {
    let code = ready
        .runtime
        .run_attached(&ready.image, spec)
        .with_context(|| format!("running {} with {}", ready.image.name(), ready.runtime.kind))?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// After Ctrl-C the interrupt handler removes the containers and exits 130; whatever the main
/// thread sees meanwhile (a container gone, a refused connection) is not the outcome to report.
pub fn settle<T>(result: Result<T>) -> Result<T> {
    if runtime::interrupted() {
        loop {
            std::thread::park();
        }
    }
    result
}

/// On Ctrl-C (or SIGTERM): remove the containers this process started, then exit 130.
pub fn install_interrupt_handler(session: &Session) {
    let reporter = session.reporter.clone();
    session.handle().spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        reporter.message("Interrupted: removing the container...");
        // Removal runs `docker rm` and friends: off the async workers.
        let _ = tokio::task::spawn_blocking(runtime::remove_all).await;
        crate::weights::mount::remove_assembled();
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_need_an_equals_sign() {
        assert_eq!(
            parse_env(&["A=1=2".into(), "B=".into()]).unwrap(),
            vec![("A".into(), "1=2".into()), ("B".into(), String::new())]
        );
        let err = parse_env(&["NOPE".into()]).unwrap_err().to_string();
        assert_eq!(err, "-e NOPE: expected the form KEY=VALUE");
    }
}
