//! `cog build`: build the image described by cog.yaml, with no daemon.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::args::BuildFlags;
use crate::blocks::PythonStack;
use crate::builder::{self, BuildOptions, BuildResult};
use crate::config;
use crate::oci;
use crate::plan::Stack;
use crate::resolve::Project;
use crate::runtime;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// A name for the built image in the form 'repository:tag'
    #[arg(short = 't', long = "tag")]
    pub tag: Option<String>,
    /// Push the image to its registry after building it
    #[arg(long)]
    pub push: bool,
    /// Also write the image to PATH: an OCI layout directory, or a tarball (PATH ending in .tar)
    /// that docker load, podman load and skopeo all accept
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Keep the image in cog's own store only: do not load it into Docker (or podman, when
    /// no Docker daemon answers) as `docker run NAME` needs
    #[arg(long, env = "COG_NO_LOAD", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_load: bool,
    #[command(flatten)]
    pub flags: BuildFlags,
}

pub fn run(session: &Session, args: &BuildArgs) -> Result<ExitCode> {
    let project = Project::open(session, &args.flags.resolve_options())?;
    let name = image_name(args.tag.as_deref(), &project.config, &project.dir);
    let target = if args.push {
        Some(super::publish::target(&name)?)
    } else {
        None
    };
    let engine = if args.no_load {
        None
    } else {
        runtime::local_engine()
    };
    let built = build_and_save_for(
        session,
        &project,
        &args.flags,
        &name,
        &Destination {
            output: args.output.as_deref(),
            push: target.as_ref(),
            local: engine.is_some(),
        },
    )?;
    if let Some(kind) = engine {
        load_into_local_engine(session, kind, &name, &built)?;
    }
    // The digest the registry has (another one with `--manifest-format docker`), as `cog push`.
    let digest = if args.push {
        if let Some((weights, weights_name)) = &built.weights {
            super::publish::push_built(session, weights, weights_name, &args.flags)?;
        }
        match super::publish::push_with_weights(
            session,
            &project,
            &built.image,
            &name,
            &args.flags,
        )? {
            Some(digest) => digest,
            None => super::publish::push_built(session, &built.image, &name, &args.flags)?,
        }
    } else {
        built.image.digest
    };
    super::publish::save_cache(session, &project, &args.flags, target.as_ref())?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// An image built and recorded in the local image layout under `name`.
pub struct Built {
    pub image: oci::ImageRef,
    pub name: String,
    /// `--separate-weights`: the weights image and its name.
    pub weights: Option<(oci::ImageRef, String)>,
    /// The OpenAPI document in the image: the project's, or the one the build completed by
    /// the runtime path.
    pub schema: Option<String>,
}

/// Resolves and builds the project, records it under `name` (and writes `output`).
pub fn build_and_save(
    session: &Session,
    project: &Project,
    flags: &BuildFlags,
    name: &str,
    output: Option<&Path>,
) -> Result<Built> {
    let destination = Destination {
        output,
        push: None,
        local: true,
    };
    build_and_save_for(session, project, flags, name, &destination)
}

/// Where a built image goes, which decides whether the layers a `--cache-from` holds are
/// downloaded: only when their bytes are needed here.
pub struct Destination<'a> {
    /// `--output`.
    pub output: Option<&'a Path>,
    /// The registry reference the image is pushed to, if it is.
    pub push: Option<&'a crate::registry::Reference>,
    /// Whether the image is loaded into a local engine (Docker, podman).
    pub local: bool,
}

/// [`build_and_save`] for an image bound to `destination`: with `--cache-from`, layers the
/// cache holds are not built, and, when the image only goes to a push that can mount them from
/// the cache's registry, not downloaded either.
pub fn build_and_save_for(
    session: &Session,
    project: &Project,
    flags: &BuildFlags,
    name: &str,
    destination: &Destination<'_>,
) -> Result<Built> {
    flags.check_compat()?;
    // Managed weights: cog.yaml and weights.lock must agree (Cog's check and message).
    crate::weights::check_drift(&project.dir, &project.config)?;
    let output = destination.output;
    let cache = flags.remote_cache()?;
    if flags.no_cache && !cache.from.is_empty() {
        session
            .reporter
            .warning("--no-cache: --cache-from is not read (every layer is built)");
    }
    if !flags.no_cache && !cache.from.is_empty() {
        let fetch = destination.local
            || output.is_some()
            || flags.separate_weights
            || destination
                .push
                .is_none_or(|target| !cache.mountable_into(target));
        let write_locks = flags.locks.mode() == crate::resolve::LockMode::Update;
        cache.load(
            session,
            &project.dir,
            &project.dir.join(&flags.file),
            fetch,
            write_locks,
        );
    }
    let inputs = project.resolve(session, &flags.resolve_options())?;
    let plan = PythonStack.plan(&inputs)?;
    let options = BuildOptions {
        compression: flags.compression(),
        no_cache: flags.no_cache,
        secrets: flags.secrets(),
    };
    session.reporter.message(&format!(
        "Building Docker image from environment in {}...",
        inputs.config_file_name
    ));
    let result = session.block_on(builder::build(session, &plan, &project.dir, &options))?;
    let weights = if flags.separate_weights {
        save_weights_image(session, &plan, &result, name)?
    } else {
        None
    };
    save(session, &result, name, output)?;
    session.reporter.message(&format!("Image built as {name}"));
    let schema = match result.runtime_schema {
        Some(document) => Some(document),
        None => project.schema.as_ref().map(|s| s.document.clone()),
    };
    Ok(Built {
        image: result.image.image_ref(),
        name: name.to_string(),
        weights,
        schema,
    })
}

/// `--separate-weights`: records the weights image as `<image>-weights` (Cog's name).
fn save_weights_image(
    session: &Session,
    plan: &crate::plan::Plan,
    result: &BuildResult,
    name: &str,
) -> Result<Option<(oci::ImageRef, String)>> {
    let Some(image) = builder::weights_image(&session.store, plan, result)? else {
        session.reporter.warning(
            "--separate-weights: no large files (weights) found in the project, so no weights image was made",
        );
        return Ok(None);
    };
    let weights_name = weights_image_name(name)?;
    let image = image.image_ref();
    let images = session.store.root().join("images");
    oci::write_layout(&session.store, &image, &images, &weights_name)
        .with_context(|| format!("recording {weights_name} in {}", images.display()))?;
    session
        .reporter
        .message(&format!("Weights image built as {weights_name}"));
    Ok(Some((image, weights_name)))
}

/// Cog names the weights image `<image>-weights`: `me/model:latest` -> `me/model-weights:latest`,
/// `me/model:v1` -> `me/model:v1-weights`.
pub fn weights_image_name(name: &str) -> Result<String> {
    if name.contains('@') {
        bail!("--separate-weights: {name} is a digest reference; name the image with a tag");
    }
    Ok(match name.rsplit_once(':') {
        Some((repo, "latest")) if !repo.ends_with('/') => format!("{repo}-weights:latest"),
        Some((repo, tag)) if !tag.contains('/') => format!("{repo}:{tag}-weights"),
        _ => format!("{name}-weights"),
    })
}

/// Makes `name` runnable where users run images, as Cog's build leaves it in Docker: streamed
/// into the Docker daemon when one answers, else into podman's storage; else it stays in our
/// store only (`cog run NAME` runs it from there).
fn load_into_local_engine(
    session: &Session,
    kind: runtime::RuntimeKind,
    name: &str,
    built: &Built,
) -> Result<()> {
    let image = runtime::built_image(&session.store, name, &built.image.digest)?;
    let loaded = runtime::load_into_engine(kind, &session.store, &image).with_context(|| {
        format!("loading {name} into {kind} (the image is built, in cog's store; --no-load skips this step)")
    })?;
    session.reporter.message(&match loaded {
        runtime::Loaded::Loaded { sent, layers } if sent < layers => {
            format!("Loaded {name} into {kind} ({sent} of {layers} layers sent; it had the rest)")
        }
        runtime::Loaded::Loaded { .. } => format!("Loaded {name} into {kind}"),
        runtime::Loaded::AlreadyThere => format!("{kind} already has {name}'s image"),
    });
    Ok(())
}

/// Cog's naming: `-t` > `image` > `model` > `cog-<dir>`, with `:latest` when no tag is given.
pub fn image_name(tag: Option<&str>, config: &config::Config, dir: &Path) -> String {
    let name = tag
        .map(str::to_string)
        .or_else(|| config.image.clone())
        .or_else(|| config.model.clone())
        .unwrap_or_else(|| config::default_image_name(dir));
    let last = name.rsplit('/').next().unwrap_or(&name);
    if last.contains(':') || last.contains('@') {
        name
    } else {
        format!("{name}:latest")
    }
}

/// Records the image in the local image layout (`<cache>/images`) under `name`, and writes it
/// to `output` when asked.
fn save(session: &Session, result: &BuildResult, name: &str, output: Option<&Path>) -> Result<()> {
    let store = &session.store;
    let image = result.image.image_ref();
    let images = store.root().join("images");
    let remote = result
        .layers
        .iter()
        .filter(|l| !store.has(&l.info.digest))
        .count();
    if remote > 0 && output.is_none() {
        // Layers a --cache-from had, left in the registry for the push to mount.
        session.reporter.message(&format!(
            "{name} not recorded in the local image store: {remote} of its layers were not downloaded (they are in the build cache)"
        ));
        return Ok(());
    }
    oci::write_layout(store, &image, &images, name)
        .with_context(|| format!("recording {name} in {}", images.display()))?;
    let Some(output) = output else { return Ok(()) };
    let is_tarball = output.extension().is_some_and(|e| e == "tar");
    if is_tarball {
        oci::export_tarball(store, &image, output, &[name.to_string()])
            .with_context(|| format!("writing {}", output.display()))?;
    } else if output.is_file() {
        bail!(
            "--output {}: is a file; name a directory, or a tarball ending in .tar",
            output.display()
        );
    } else {
        oci::write_layout(store, &image, output, name)
            .with_context(|| format!("writing {}", output.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_name_precedence() {
        let mut config = config::Config::default();
        let dir = Path::new("/work/My Model");
        assert_eq!(image_name(Some("me/x:v1"), &config, dir), "me/x:v1");
        assert_eq!(
            image_name(Some("localhost:5000/x"), &config, dir),
            "localhost:5000/x:latest"
        );
        config.model = Some("reg.io/me/model".into());
        assert_eq!(image_name(None, &config, dir), "reg.io/me/model:latest");
        config.image = Some("r8.im/me/img".into());
        assert_eq!(image_name(None, &config, dir), "r8.im/me/img:latest");
    }

    #[test]
    fn weights_image_names_as_cog() {
        assert_eq!(
            weights_image_name("me/model:latest").unwrap(),
            "me/model-weights:latest"
        );
        assert_eq!(
            weights_image_name("localhost:5000/me/model:v1").unwrap(),
            "localhost:5000/me/model:v1-weights"
        );
        assert!(weights_image_name("me/model@sha256:00").is_err());
    }
}
