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

use crate::oci::{self, BuiltImage, Platform};
use crate::plan::{LayerContent, Plan};
use crate::progress::Progress;

pub use base::{ResolvedBase, resolve_base};
pub use layer_steps::LayerOutcome;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub compression: Compression,
    /// Rebuild every layer even when the cache has it (`--no-cache`).
    pub no_cache: bool,
    /// Plain HTTP to a base image's registry that is not on loopback (`--insecure`).
    pub insecure_registry: bool,
    pub progress: Progress,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildResult {
    pub image: BuiltImage,
    /// Layers that came from the base image, untouched.
    pub base_layers: usize,
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
    #[error("layer {id:?}: {message}")]
    Packages { id: String, message: String },
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

    // Base fetch (I/O) and layer builds (CPU) overlap; system packages need the base's dpkg
    // database, so they wait for it.
    let (deb_steps, other_steps): (Vec<_>, Vec<_>) = plan
        .layers
        .iter()
        .cloned()
        .partition(|s| matches!(s.content, LayerContent::Debs { .. }));
    let layer_job = {
        let dir = project_dir.to_path_buf();
        let store = store.clone();
        let options = options.clone();
        tokio::task::spawn_blocking(move || {
            layer_steps::build_steps(&other_steps, &dir, &store, &options)
        })
    };
    let base = resolve_base(
        &plan.base,
        &platform,
        store,
        &options.progress,
        options.insecure_registry,
    )
    .await?;
    let mut outcomes = system_package_layers(&deb_steps, &base, store, options).await?;
    outcomes.extend(
        layer_job
            .await
            .map_err(|e| BuildError::Join(e.to_string()))??,
    );
    // Image order is the plan's order (phases), whichever finished first.
    let position = |id: &str| {
        plan.layers
            .iter()
            .position(|l| l.id == id)
            .unwrap_or(usize::MAX)
    };
    outcomes.sort_by_key(|o| position(&o.id));

    let history: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|o| (o.id.as_str(), o.created_by.as_str()))
        .collect();
    let config = image_config::apply(base.config.as_ref(), &platform, &plan.image, &history);
    let mut all_layers: Vec<LayerInfo> = base.layers.clone();
    all_layers.extend(outcomes.iter().map(|o| o.info.clone()));
    let image = oci::assemble(store, &config, &all_layers, plan.image.annotations.clone())?;
    let cached = outcomes.iter().filter(|o| o.cached).count();
    options.progress.message(&format!(
        "built {} in {:.2}s ({} layers from the base, {} built, {} cached)",
        image.manifest_digest,
        started.elapsed().as_secs_f64(),
        base.layers.len(),
        outcomes.len() - cached,
        cached
    ));
    Ok(BuildResult {
        image,
        base_layers: base.layers.len(),
        layers: outcomes,
    })
}

/// The apt layers, in plan order, each on the dpkg database the previous one left.
async fn system_package_layers(
    steps: &[crate::plan::LayerStep],
    base: &ResolvedBase,
    store: &BlobStore,
    options: &BuildOptions,
) -> Result<Vec<LayerOutcome>, BuildError> {
    let mut status = base.dpkg_status.clone();
    let mut libraries = base.libraries.clone();
    let mut merged_usr = true;
    let mut outcomes = Vec::new();
    for step in steps {
        let LayerContent::Debs { lock } = &step.content else {
            continue;
        };
        let failed = |message: String| BuildError::Packages {
            id: step.id.clone(),
            message,
        };
        if status.is_none() {
            // A registry or local base: read its dpkg database and libraries from its layers.
            let system = read_base_system(base, &lock.arch, store)
                .await
                .map_err(|e| failed(format!("reading the base image: {e}")))?;
            let Some(found) = system.dpkg_status else {
                return Err(failed(
                    "build.system_packages: the base image has no dpkg database (/var/lib/dpkg/status); system packages need a Debian or Ubuntu base".into(),
                ));
            };
            status = Some(found);
            libraries = Some(system.libraries);
            merged_usr = system.merged_usr;
        }
        let Some(current) = &status else {
            continue;
        };
        let install_options = debian::InstallOptions {
            compression: options.compression,
            base_libraries: libraries.clone(),
            merged_usr,
            rebuild: options.no_cache,
            ..debian::InstallOptions::default()
        };
        let installed = debian::install(lock, current, store, &install_options)
            .await
            .map_err(|e| failed(e.to_string()))?;
        outcomes.push(LayerOutcome {
            id: step.id.clone(),
            created_by: step.created_by.clone(),
            info: installed.layer,
            cached: installed.cached,
        });
        status = Some(installed.status);
        libraries = Some(installed.libraries);
    }
    Ok(outcomes)
}

/// What a registry or local base is (dpkg status, libraries, merged /usr), read from its layers.
async fn read_base_system(
    base: &ResolvedBase,
    arch: &str,
    store: &BlobStore,
) -> Result<debian::BaseSystem, String> {
    let layers = base.layers.clone();
    let arch = arch.to_owned();
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        debian::rootfs::inspect_cached(&store, &layers, &arch, &debian::fetch::default_cache_dir())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}
