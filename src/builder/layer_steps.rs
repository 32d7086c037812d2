//! Turning the plan's layer steps into layers: cached by content key, built in parallel.
use std::path::Path;

use layers::{BlobStore, LayerInfo, LayerOptions, LayerSpec};
use rayon::prelude::*;

use crate::plan::{LayerContent, LayerStep};

use super::{BuildError, BuildOptions};

/// One built (or cached) layer of the plan.
#[derive(Debug, Clone)]
pub struct LayerOutcome {
    pub id: String,
    pub info: LayerInfo,
    pub cached: bool,
}

/// Builds every step; independent steps run in parallel (rayon).
pub fn build_steps(
    steps: &[LayerStep],
    project_dir: &Path,
    store: &BlobStore,
    options: &BuildOptions,
) -> Result<Vec<LayerOutcome>, BuildError> {
    let layer_options = LayerOptions::new(options.compression);
    let mut task = options.progress.task("layers", Some(steps.len() as u64), crate::progress::Unit::Items);
    let outcomes: Vec<Result<LayerOutcome, BuildError>> = steps
        .par_iter()
        .map(|step| build_step(step, project_dir, store, &layer_options, options.no_cache))
        .collect();
    let outcomes: Vec<LayerOutcome> = outcomes.into_iter().collect::<Result<_, _>>()?;
    task.inc(outcomes.len() as u64);
    let cached = outcomes.iter().filter(|o| o.cached).count();
    task.finish(&format!("{} built, {cached} cached", outcomes.len() - cached));
    Ok(outcomes)
}

fn build_step(
    step: &LayerStep,
    project_dir: &Path,
    store: &BlobStore,
    layer_options: &LayerOptions,
    no_cache: bool,
) -> Result<LayerOutcome, BuildError> {
    let err = |source| BuildError::Layer { id: step.id.clone(), source };
    let spec = spec_for(step, project_dir).map_err(err)?;
    let key = spec.cache_key(layer_options).map_err(err)?;
    let cached = !no_cache && store.lookup_key(&key).is_some();
    if no_cache {
        store.forget_key(&key).map_err(err)?;
    }
    let info = spec.build(store, layer_options).map_err(err)?;
    tracing::debug!(layer = %step.id, digest = %info.digest, cached, "layer ready");
    Ok(LayerOutcome { id: step.id.clone(), info, cached })
}

/// The layer's inputs as a `LayerSpec`. Host paths in the plan are relative to the project.
fn spec_for(step: &LayerStep, project_dir: &Path) -> Result<LayerSpec, layers::Error> {
    let mut spec = LayerSpec::new();
    match &step.content {
        LayerContent::Tree { source, dest, excludes } => {
            spec = spec.tree(project_dir.join(source), dest, excludes)?;
        }
        LayerContent::Files { files } => {
            for file in files {
                spec = spec.file(&file.path, file.mode, file.contents.as_bytes())?;
            }
        }
    }
    Ok(spec)
}
