//! The builder: executes a [`Plan`] without a daemon.
//!
//! The base image is fetched (registry pull or local import) while the plan's own layers are
//! built, in parallel, each keyed by a hash of its inputs so that a rebuild redoes only what
//! changed. Base layers are passed through untouched. The result is an OCI manifest and config
//! in the blob store.
mod base;
mod image_config;
mod layer_steps;

use std::path::Path;
use std::time::Instant;

use layers::{BlobStore, Compression, LayerInfo};

use crate::oci::{self, BuiltImage, Platform, SourceImage};
use crate::plan::Plan;
use crate::progress::Progress;

pub use base::resolve_base;
pub use layer_steps::LayerOutcome;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub compression: Compression,
    /// Rebuild every layer even when the cache has it (`--no-cache`).
    pub no_cache: bool,
    pub progress: Progress,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildResult {
    pub image: BuiltImage,
    pub base: Option<SourceImage>,
    /// The plan's own layers, in image order, each with whether the cache had it.
    pub layers: Vec<LayerOutcome>,
}

/// Errors of a build; each names the step, file or reference involved.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid platform in the plan: {0}")]
    Platform(#[from] oci::PlatformError),
    #[error("base image {base}: {message}")]
    Base { base: String, message: String },
    #[error("layer {id:?}: {source}")]
    Layer {
        id: String,
        #[source]
        source: layers::Error,
    },
    #[error("layer {id:?}: {message}")]
    Wheels { id: String, message: String },
    #[error("writing the image: {0}")]
    Oci(#[from] oci::OciError),
    #[error("a build task failed: {0}")]
    Join(String),
}

/// Builds `plan` for the project in `project_dir` into `store`.
pub async fn build(
    plan: &Plan,
    project_dir: &Path,
    store: &BlobStore,
    options: &BuildOptions,
) -> Result<BuildResult, BuildError> {
    let started = Instant::now();
    let platform: Platform = plan.platform.parse()?;

    // Base fetch (I/O) and layer builds (CPU) overlap.
    let layer_job = {
        let steps = plan.layers.clone();
        let dir = project_dir.to_path_buf();
        let store = store.clone();
        let options = options.clone();
        tokio::task::spawn_blocking(move || layer_steps::build_steps(&steps, &dir, &store, &options))
    };
    let base = resolve_base(&plan.base, &platform, store, &options.progress).await?;
    let outcomes = layer_job.await.map_err(|e| BuildError::Join(e.to_string()))??;

    let history: Vec<(&str, &str)> = outcomes.iter().map(|o| (o.id.as_str(), o.created_by.as_str())).collect();
    let config = image_config::apply(base.as_ref().map(|b| &b.config), &platform, &plan.image, &history);
    let mut all_layers: Vec<LayerInfo> = base.as_ref().map(|b| b.layers.clone()).unwrap_or_default();
    all_layers.extend(outcomes.iter().map(|o| o.info.clone()));
    let image = oci::assemble(store, &config, &all_layers, plan.image.annotations.clone())?;
    let cached = outcomes.iter().filter(|o| o.cached).count();
    options.progress.message(&format!(
        "built {} in {:.2}s ({} layers from the base, {} built, {} cached)",
        image.manifest_digest,
        started.elapsed().as_secs_f64(),
        base.as_ref().map_or(0, |b| b.layers.len()),
        outcomes.len() - cached,
        cached
    ));
    Ok(BuildResult { image, base, layers: outcomes })
}
