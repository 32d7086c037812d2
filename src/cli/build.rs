//! `cog build`: build the image described by cog.yaml, with no daemon.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use layers::{BlobStore, Compression};

use crate::blocks::PythonStack;
use crate::builder::{self, BuildOptions, BuildResult};
use crate::config;
use crate::oci;
use crate::plan::Stack;
use crate::progress::{Progress, ProgressMode};

use super::project::{self, ProjectOptions};
use super::push::RegistryArgs;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// A name for the built image in the form 'repository:tag'
    #[arg(short = 't', long = "tag")]
    pub(super) tag: Option<String>,
    /// Push the image to its registry after building it
    #[arg(long)]
    pub(super) push: bool,
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    pub(super) file: String,
    /// Do not use cache when building the image
    #[arg(long)]
    pub(super) no_cache: bool,
    /// Set type of build progress output: 'auto' (default), 'tty', 'plain', 'quiet' or 'json'
    #[arg(long, value_enum)]
    pub(super) progress: Option<ProgressMode>,
    /// Base image: a registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    #[arg(long)]
    pub(super) base: Option<String>,
    /// Also write the image to PATH: an OCI layout directory, or a tarball (PATH ending in .tar)
    /// that docker load, podman load and skopeo all accept
    #[arg(short = 'o', long)]
    pub(super) output: Option<PathBuf>,
    /// Target platform
    #[arg(long, default_value = "linux/amd64")]
    pub(super) platform: String,
    /// Load OpenAPI schema from a file instead of generating it
    #[arg(long, value_name = "FILE")]
    pub(super) openapi_schema: Option<PathBuf>,
    /// Resolve Python requirements again, ignoring the lock file
    #[arg(long)]
    pub(super) upgrade: bool,
    /// Layer compression
    #[arg(long, value_enum, default_value = "gzip")]
    pub(super) compression: CompressionArg,
    #[command(flatten)]
    pub(super) registry: RegistryArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum CompressionArg {
    Gzip,
    Zstd,
}

pub fn run(args: &BuildArgs) -> Result<ExitCode> {
    let loaded = load(args)?;
    let name = image_name(args.tag.as_deref(), &loaded.config, &loaded.dir);
    let built = build_and_save(args, &loaded, &name)?;
    // The digest the registry has (another one with `--manifest-format docker`), as `cog push`.
    let digest = if args.push {
        super::push::push_built(&built, args.base.as_deref(), &args.registry)?
    } else {
        built.image.digest
    };
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// An image built and recorded in the local image layout under `name`.
pub(super) struct Built {
    pub store: BlobStore,
    pub image: oci::ImageRef,
    pub name: String,
    pub progress: Progress,
}

/// Loads cog.yaml and the project, as `cog build` does.
pub(super) fn load(args: &BuildArgs) -> Result<project::LoadedProject> {
    project::load(&ProjectOptions {
        config_file: Some(&args.file),
        base: args.base.as_deref(),
        platform: &args.platform,
        openapi_schema: args.openapi_schema.as_deref(),
        upgrade: args.upgrade,
        resolve: true,
        insecure_registry: args.registry.insecure,
    })
}

/// Builds the loaded project, records it under `name` (and writes `--output`).
pub(super) fn build_and_save(
    args: &BuildArgs,
    loaded: &project::LoadedProject,
    name: &str,
) -> Result<Built> {
    let plan = PythonStack.plan(&loaded.inputs)?;
    let store = BlobStore::open(BlobStore::default_root()).context("opening the cog cache")?;
    let progress = Progress::new(args.progress.unwrap_or_else(ProgressMode::from_env));
    let options = BuildOptions {
        compression: match args.compression {
            CompressionArg::Gzip => Compression::gzip(),
            CompressionArg::Zstd => Compression::zstd(),
        },
        no_cache: args.no_cache,
        insecure_registry: args.registry.insecure,
        progress: progress.clone(),
    };
    progress.message(&format!(
        "Building Docker image from environment in {}...",
        loaded.inputs.config_file_name
    ));
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(builder::build(&plan, &loaded.dir, &store, &options))?;
    save(&store, &result, name, args.output.as_deref())?;
    progress.message(&format!("Image built as {name}"));
    Ok(Built {
        store,
        image: result.image.image_ref(),
        name: name.to_string(),
        progress,
    })
}

/// Cog's naming: `-t` > `image` > `model` > `cog-<dir>`, with `:latest` when no tag is given.
pub(super) fn image_name(tag: Option<&str>, config: &config::Config, dir: &Path) -> String {
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
fn save(store: &BlobStore, result: &BuildResult, name: &str, output: Option<&Path>) -> Result<()> {
    let image = result.image.image_ref();
    let images = store.root().join("images");
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
}
