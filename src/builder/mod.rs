//! The builder: executes a [`Plan`] without a daemon.
//!
//! The base image is fetched (registry pull or local import) while the plan's own layers are
//! built, in parallel, each keyed by a hash of its inputs so that a rebuild redoes only what
//! changed. Base layers are passed through untouched. The result is an OCI manifest and config
//! in the blob store.
mod commands;
mod image_config;
mod layer_steps;
mod runtime_schema;

use std::path::Path;
use std::time::Instant;

use layers::{BlobStore, Compression, LayerInfo};

use crate::base::{BaseError, FetchedBase, SystemLayerError, fetch_base};
use crate::oci::{self, BuiltImage, Platform};
use crate::plan::{LayerContent, Plan};
use crate::session::Session;

pub use layer_steps::LayerOutcome;

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub compression: Compression,
    /// Rebuild every layer even when the cache has it (`--no-cache`).
    pub no_cache: bool,
    /// `--secret`: what the commands' secret mounts read (never in a layer, key or log).
    pub secrets: Vec<crate::sandbox::Secret>,
}

/// What a build produced.
#[derive(Debug)]
pub struct BuildResult {
    pub image: BuiltImage,
    /// Layers that came from the base image, untouched.
    pub base_layers: usize,
    /// The plan's own layers, in image order, each with whether the cache had it.
    pub layers: Vec<LayerOutcome>,
    /// The OpenAPI document the build completed by the runtime path (a `RuntimeSchema`
    /// step); `None` when the plan carried its schema (or has none).
    pub runtime_schema: Option<String>,
}

/// Errors of a build; each names the step, file or reference involved, and keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid platform in the plan")]
    Platform(#[from] oci::PlatformError),
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error("layer {id:?}")]
    Layer {
        id: String,
        #[source]
        source: layers::Error,
    },
    #[error("layer {id:?}")]
    Wheels {
        id: String,
        #[source]
        source: wheels::Error,
    },
    #[error("layer {id:?}")]
    Packages {
        id: String,
        #[source]
        source: debian::Error,
    },
    #[error(
        "layer {id:?}: the base image has no dpkg database (/var/lib/dpkg/status); build.system_packages need a Debian or Ubuntu base"
    )]
    NoDpkg { id: String },
    #[error("running the build commands")]
    Command {
        #[source]
        source: Box<crate::sandbox::SandboxError>,
    },
    #[error("setting up source builds")]
    SourceBuilder {
        #[source]
        source: Box<crate::resolve::ResolveError>,
    },
    #[error(
        "the schema needs values static evaluation cannot compute, read from the predictor in the image: {reason}\n(`cog build --openapi-schema FILE` gives the schema instead)"
    )]
    RuntimeSchema { reason: String },
    #[error("writing the image")]
    Oci(#[from] oci::OciError),
    #[error("a build task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Builds `plan` for the project in `project_dir` into the session's store.
pub async fn build(
    session: &Session,
    plan: &Plan,
    project_dir: &Path,
    options: &BuildOptions,
) -> Result<BuildResult, BuildError> {
    let started = Instant::now();
    let store = &session.store;
    let platform: Platform = plan.platform.parse()?;

    // Base fetch (I/O) and layer builds (CPU) overlap; system packages need the base's dpkg
    // database, so they wait for it.
    // Commands run over everything below them, so they wait for all of it.
    let (deb_steps, other_steps): (Vec<_>, Vec<_>) = plan
        .layers
        .iter()
        .cloned()
        .partition(|s| matches!(s.content, LayerContent::Debs { .. }));
    let (command_steps, other_steps): (Vec<_>, Vec<_>) = other_steps
        .into_iter()
        .partition(|s| matches!(s.content, LayerContent::Run { .. }));
    // The runtime schema imports the runner over everything below it: it runs last.
    let (schema_steps, other_steps): (Vec<_>, Vec<_>) = other_steps
        .into_iter()
        .partition(|s| matches!(s.content, LayerContent::RuntimeSchema { .. }));
    let sources = source_builds(session, plan, options)?;
    let layer_job = {
        let dir = project_dir.to_path_buf();
        let store = store.clone();
        let options = options.clone();
        let reporter = session.reporter.clone();
        tokio::task::spawn_blocking(move || {
            layer_steps::build_steps(
                &other_steps,
                &dir,
                &store,
                &options,
                sources.as_ref(),
                &reporter,
            )
        })
    };
    let base = fetch_base(session, &plan.base, &platform).await?;
    // The runtime schema imports the runner in the sandbox over the base: the base is
    // unpacked for it now, while the other layers are built, rather than when it starts (a
    // no-op once unpacked). A failure here is left for the step itself to report. Build
    // commands are not waited for so: whether they run (or are cached) is known only once
    // the layers below them are.
    let base_unpacked = (!schema_steps.is_empty()).then(|| {
        let (store, layers) = (store.clone(), base.layers.clone());
        let sandbox = commands::sandbox_options(&platform, options);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = sandbox.map_err(|e| e.to_string()).and_then(|sandbox| {
                crate::sandbox::prepare_lower(&store, &layers, &sandbox).map_err(|e| e.to_string())
            }) {
                tracing::debug!("unpacking the base ahead of the sandbox: {e}");
            }
        })
    });
    let mut outcomes =
        system_package_layers(&deb_steps, &base, store, options, &session.reporter).await?;
    outcomes.extend(layer_job.await??);
    if let Some(unpacking) = base_unpacked {
        let _ = unpacking.await;
    }
    // Image order is the plan's order (phases), whichever finished first.
    let position = |id: &str| {
        plan.layers
            .iter()
            .position(|l| l.id == id)
            .unwrap_or(usize::MAX)
    };
    outcomes.sort_by_key(|o| position(&o.id));
    if let Some(first) = command_steps.first() {
        let first = position(&first.id);
        let mut lower = base.layers.clone();
        lower.extend(
            outcomes
                .iter()
                .filter(|o| position(&o.id) < first)
                .map(|o| o.info.clone()),
        );
        let ran = commands::run(session, &command_steps, &base, lower, &platform, options).await?;
        outcomes.extend(ran);
        outcomes.sort_by_key(|o| position(&o.id));
    }
    let mut image_settings = plan.image.clone();
    let mut runtime_document = None;
    if let Some(step) = schema_steps.first() {
        let at = position(&step.id);
        let below: Vec<&LayerOutcome> = outcomes.iter().filter(|o| position(&o.id) < at).collect();
        let mut lower = base.layers.clone();
        lower.extend(below.iter().map(|o| o.info.clone()));
        let mut keyed = base.layers.clone();
        keyed.extend(
            below
                .iter()
                .filter(|o| {
                    !plan.layers.iter().any(|l| {
                        l.id == o.id
                            && matches!(
                                l.phase,
                                crate::plan::Phase::AppSource | crate::plan::Phase::Weights
                            )
                    })
                })
                .map(|o| o.info.clone()),
        );
        let inputs = runtime_schema::Inputs {
            lower,
            keyed,
            env: image_config::env_over(base.config.as_ref(), &plan.image.env),
            python: plan_python(plan),
            sandbox: commands::sandbox_options(&platform, options)?,
        };
        let step = step.clone();
        let dir = project_dir.to_path_buf();
        let ctx = runtime_schema::Ctx {
            store: store.clone(),
            reporter: session.reporter.clone(),
        };
        let options = options.clone();
        let done = tokio::task::spawn_blocking(move || {
            runtime_schema::complete(&ctx, &step, &dir, &inputs, &options)
        })
        .await??;
        image_settings
            .labels
            .insert("run.cog.openapi_schema".into(), done.label);
        runtime_document = Some(done.document);
        outcomes.push(done.outcome);
        outcomes.sort_by_key(|o| position(&o.id));
    }

    let history: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|o| (o.id.as_str(), o.created_by.as_str()))
        .collect();
    let settings = with_cog_base_labels(&image_settings, &base);
    let config = image_config::apply(base.config.as_ref(), &platform, &settings, &history);
    let mut all_layers: Vec<LayerInfo> = base.layers.clone();
    all_layers.extend(outcomes.iter().map(|o| o.info.clone()));
    let image = oci::assemble(
        store,
        &config,
        &all_layers,
        image_settings.annotations.clone(),
    )?;
    let cached = outcomes.iter().filter(|o| o.cached).count();
    session.reporter.message(&format!(
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
        runtime_schema: runtime_document,
    })
}

/// The interpreter of the image's Python (the plan's wheels' layout), else `python` on `PATH`.
fn plan_python(plan: &Plan) -> String {
    plan.layers
        .iter()
        .find_map(|s| match &s.content {
            LayerContent::Wheels { python, .. } => Some(python.interpreter.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "python".to_string())
}

/// The builder of the packages locked as built from source (their wheels are usually cached
/// since resolution; a fresh cache builds them again), in the image's environment: the plan's
/// base and system packages. `None` when no package is built from source.
fn source_builds(
    session: &Session,
    plan: &Plan,
    options: &BuildOptions,
) -> Result<Option<layer_steps::SourceBuilds>, BuildError> {
    let Some(python) = plan.layers.iter().find_map(|s| match &s.content {
        LayerContent::Wheels { python, packages } if packages.iter().any(|p| p.build.is_some()) => {
            Some(python)
        }
        _ => None,
    }) else {
        return Ok(None);
    };
    let system_packages = plan.layers.iter().find_map(|s| match &s.content {
        LayerContent::Debs { lock } => Some(lock.clone()),
        _ => None,
    });
    let failed = |source| BuildError::SourceBuilder {
        source: Box::new(source),
    };
    let target = crate::resolve::python_target(&python.version, &plan.platform).map_err(failed)?;
    let builder = crate::resolve::sdist_builder(
        session,
        plan.base.clone(),
        system_packages,
        python.clone(),
        &plan.platform,
        plan.image.env.clone(),
        options.compression,
    )
    .map_err(failed)?;
    Ok(Some(layer_steps::SourceBuilds { builder, target }))
}

/// Cog's labels of an image on a cog-base image: the base's last layer, by DiffID and index
/// (`pkg/image/build.go`), once the base's layers are known.
fn with_cog_base_labels(
    settings: &crate::plan::ImageSettings,
    base: &FetchedBase,
) -> crate::plan::ImageSettings {
    use crate::blocks::{
        COG_BASE_IMAGE_LAST_LAYER_IDX_LABEL, COG_BASE_IMAGE_LAST_LAYER_SHA_LABEL,
        COG_BASE_IMAGE_NAME_LABEL,
    };
    let mut settings = settings.clone();
    if settings.labels.contains_key(COG_BASE_IMAGE_NAME_LABEL)
        && let Some(last) = base.layers.last()
    {
        settings.labels.insert(
            COG_BASE_IMAGE_LAST_LAYER_SHA_LABEL.to_owned(),
            last.diff_id.to_string(),
        );
        settings.labels.insert(
            COG_BASE_IMAGE_LAST_LAYER_IDX_LABEL.to_owned(),
            (base.layers.len() - 1).to_string(),
        );
    }
    settings
}

/// The apt layers, in plan order, each on the dpkg database the previous one left.
async fn system_package_layers(
    steps: &[crate::plan::LayerStep],
    base: &FetchedBase,
    store: &BlobStore,
    options: &BuildOptions,
    reporter: &report::SharedReporter,
) -> Result<Vec<LayerOutcome>, BuildError> {
    let debs: Vec<(&crate::plan::LayerStep, &debian::Lock)> = steps
        .iter()
        .filter_map(|step| match &step.content {
            LayerContent::Debs { lock } => Some((step, lock)),
            _ => None,
        })
        .collect();
    let locks: Vec<&debian::Lock> = debs.iter().map(|(_, lock)| *lock).collect();
    let layers = crate::base::system_package_layers(
        &locks,
        base,
        store,
        options.compression,
        options.no_cache,
        reporter,
    )
    .await
    .map_err(|e| match e {
        SystemLayerError::NoDpkg { index } => BuildError::NoDpkg {
            id: debs[index].0.id.clone(),
        },
        SystemLayerError::Packages { index, source } => BuildError::Packages {
            id: debs[index].0.id.clone(),
            source,
        },
        SystemLayerError::Join(e) => BuildError::Join(e),
    })?;
    Ok(debs
        .iter()
        .zip(layers)
        .map(|((step, _), layer)| LayerOutcome {
            id: step.id.clone(),
            created_by: step.created_by.clone(),
            info: layer.info,
            cached: layer.cached,
        })
        .collect())
}

/// `--separate-weights`: the weights image (Cog's `<image>-weights`, `FROM scratch` plus the
/// weight files at `/src/...`), made of the very layers of `result` the plan's weights phase
/// built: the runner image and it share those blobs, stored and pushed once. `None` when the
/// project has no large files.
pub fn weights_image(
    store: &BlobStore,
    plan: &Plan,
    result: &BuildResult,
) -> Result<Option<BuiltImage>, BuildError> {
    let is_weight = |id: &str| {
        plan.layers
            .iter()
            .any(|l| l.id == id && l.phase == crate::plan::Phase::Weights)
    };
    let weights: Vec<&LayerOutcome> = result.layers.iter().filter(|o| is_weight(&o.id)).collect();
    if weights.is_empty() {
        return Ok(None);
    }
    let platform: Platform = plan.platform.parse()?;
    let history: Vec<(&str, &str)> = weights
        .iter()
        .map(|o| (o.id.as_str(), o.created_by.as_str()))
        .collect();
    let config = image_config::apply(
        None,
        &platform,
        &crate::plan::ImageSettings::default(),
        &history,
    );
    let layers: Vec<LayerInfo> = weights.iter().map(|o| o.info.clone()).collect();
    Ok(Some(oci::assemble(
        store,
        &config,
        &layers,
        std::collections::BTreeMap::new(),
    )?))
}
