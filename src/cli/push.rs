//! `cog push [IMAGE]`: build the image, then push it straight to its registry (no daemon).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::progress::ProgressMode;
use crate::registry::{
    Client, ClientOptions, DEFAULT_PUSH_CONCURRENCY, ManifestFormat, Reference, RegistryError,
};

use super::build::{self, BuildArgs, Built, CompressionArg};

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image to push, e.g. r8.im/your-username/hotdog-detector (default: cog.yaml's `image`)
    image: Option<String>,
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    file: String,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Set type of build progress output: 'auto' (default), 'tty', 'plain', 'quiet' or 'json'
    #[arg(long, value_enum)]
    progress: Option<ProgressMode>,
    /// Base image: a registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    #[arg(long)]
    base: Option<String>,
    /// Target platform
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Load OpenAPI schema from a file instead of generating it
    #[arg(long, value_name = "FILE")]
    openapi_schema: Option<PathBuf>,
    /// Resolve Python requirements again, ignoring the lock file
    #[arg(long)]
    upgrade: bool,
    /// Layer compression
    #[arg(long, value_enum, default_value = "gzip")]
    compression: CompressionArg,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// How to talk to the registry.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to registries (the target, and a --base image) even when they are not
    /// on loopback
    #[arg(long)]
    pub(super) insecure: bool,
    /// Blobs uploaded at once
    #[arg(long, env = "COG_PUSH_CONCURRENCY", default_value_t = DEFAULT_PUSH_CONCURRENCY, value_parser = parse_concurrency)]
    concurrency: usize,
    /// Manifest format: OCI (as built) or Docker schema2
    #[arg(long, value_enum, default_value = "oci")]
    manifest_format: FormatArg,
}

impl Default for RegistryArgs {
    /// What `cog build --push` uses: defaults, with `$COG_PUSH_CONCURRENCY` when set.
    fn default() -> Self {
        Self {
            insecure: false,
            concurrency: std::env::var("COG_PUSH_CONCURRENCY")
                .ok()
                .and_then(|v| parse_concurrency(&v).ok())
                .unwrap_or(DEFAULT_PUSH_CONCURRENCY),
            manifest_format: FormatArg::Oci,
        }
    }
}

/// 1 to 256 blobs at once.
fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a number from 1 to 256")),
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Oci,
    Docker,
}

pub fn run(args: &PushArgs) -> Result<ExitCode> {
    let build_args = BuildArgs {
        tag: args.image.clone(),
        push: true,
        file: args.file.clone(),
        no_cache: args.no_cache,
        progress: args.progress,
        base: args.base.clone(),
        output: None,
        platform: args.platform.clone(),
        openapi_schema: args.openapi_schema.clone(),
        upgrade: args.upgrade,
        compression: args.compression,
        registry: args.registry.clone(),
    };
    let loaded = build::load(&build_args)?;
    // Cog's rule: push needs a name from the argument or cog.yaml, never the directory default.
    if args.image.is_none() && loaded.config.image.is_none() && loaded.config.model.is_none() {
        bail!(
            "To push images, you must either set the 'image' option in cog.yaml or pass an image name as an argument. For example, 'cog push r8.im/your-username/hotdog-detector'"
        );
    }
    let name = build::image_name(args.image.as_deref(), &loaded.config, &loaded.dir);
    let built = build::build_and_save(&build_args, &loaded, &name)?;
    let digest = push_built(&built, args.base.as_deref(), &args.registry)?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// Pushes a built image under its name, mounting shared blobs from `base` when it is an image on
/// the same registry; returns the digest the tag now points at.
pub(super) fn push_built(
    built: &Built,
    base: Option<&str>,
    settings: &RegistryArgs,
) -> Result<layers::Digest> {
    let target = Reference::parse(&built.name)
        .with_context(|| format!("cannot push {}: not a valid image reference", built.name))?;
    let mount_from = base
        .filter(|b| !b.starts_with("oci:") && !b.contains("-archive:"))
        .and_then(|b| Reference::parse(b).ok());
    built
        .progress
        .message(&format!("Pushing image '{}'...", built.name));
    let client = Client::new(ClientOptions {
        insecure: settings.insecure,
        push_concurrency: settings.concurrency,
        ..ClientOptions::default()
    })?;
    let format = match settings.manifest_format {
        FormatArg::Oci => ManifestFormat::Oci,
        FormatArg::Docker => ManifestFormat::Docker,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let pushed = runtime.block_on(client.push_with(
        &built.store,
        &built.image,
        &target,
        mount_from.as_ref(),
        format,
        &built.progress,
    ));
    match pushed {
        Ok(digest) => {
            built
                .progress
                .message(&format!("Image '{}' pushed", built.name));
            Ok(digest)
        }
        Err(err @ RegistryError::Unauthorized { .. }) => Err(anyhow::Error::new(err).context(
            format!(
                "pushing {} failed with 401 Unauthorized: log in with `cog login` or `docker login {}`",
                built.name,
                target.registry()
            ),
        )),
        Err(err) => Err(anyhow::Error::new(err).context(format!("pushing {}", built.name))),
    }
}
