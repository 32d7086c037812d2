//! Turning the plan's layer steps into layers: cached by content key, built in parallel.
use std::path::Path;

use layers::{BlobStore, Compression, LayerInfo, LayerOptions, LayerSpec};
use rayon::prelude::*;

use crate::plan::{LayerContent, LayerStep, PythonLayout};

use super::{BuildError, BuildOptions};

/// One built (or cached) layer of the plan. A step may give several (wheels).
#[derive(Debug, Clone)]
pub struct LayerOutcome {
    /// The step it came from.
    pub id: String,
    /// What the image history says created it.
    pub created_by: String,
    pub info: LayerInfo,
    pub cached: bool,
}

/// What builds the packages locked as built from source, and for which target.
#[derive(Debug, Clone)]
pub struct SourceBuilds {
    pub builder: std::sync::Arc<dyn wheels::SdistBuilder>,
    pub target: wheels::Target,
}

/// Builds every step; independent steps run in parallel (rayon).
pub fn build_steps(
    steps: &[LayerStep],
    project_dir: &Path,
    store: &BlobStore,
    options: &BuildOptions,
    sources: Option<&SourceBuilds>,
    reporter: &report::SharedReporter,
) -> Result<Vec<LayerOutcome>, BuildError> {
    let layer_options = LayerOptions::new(options.compression);
    let mut task = reporter.task("layers", Some(steps.len() as u64), report::Unit::Items);
    let outcomes: Vec<Result<Vec<LayerOutcome>, BuildError>> = steps
        .par_iter()
        .map(|step| {
            build_step(
                step,
                project_dir,
                store,
                &layer_options,
                options.no_cache,
                sources,
                reporter,
            )
        })
        .collect();
    let outcomes: Vec<LayerOutcome> = outcomes
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    task.inc(steps.len() as u64);
    let cached = outcomes.iter().filter(|o| o.cached).count();
    task.finish(&format!(
        "{} built, {cached} cached",
        outcomes.len() - cached
    ));
    Ok(outcomes)
}

pub(super) fn build_step(
    step: &LayerStep,
    project_dir: &Path,
    store: &BlobStore,
    layer_options: &LayerOptions,
    no_cache: bool,
    sources: Option<&SourceBuilds>,
    reporter: &report::SharedReporter,
) -> Result<Vec<LayerOutcome>, BuildError> {
    if let LayerContent::Wheels { python, packages } = &step.content {
        let mut options = wheels::InstallOptions::python_slim(&python.version);
        options.rebuild = no_cache;
        options.layer = layer_options.clone();
        options.client.reporter = reporter.clone();
        if let Some(sources) = sources {
            options.builder = Some(sources.builder.clone());
            options.target = Some(sources.target.clone());
        }
        return wheel_layers(step, python, packages, store, options);
    }
    let err = |source| BuildError::Layer {
        id: step.id.clone(),
        source,
    };
    let spec = spec_for(step, project_dir).map_err(err)?;
    // Data that does not compress is stored as plain tar: no CPU spent for nothing.
    let plain;
    let layer_options = match &step.content {
        LayerContent::ProjectFiles {
            compress: false, ..
        } => {
            plain = LayerOptions {
                compression: Compression::None,
                ..layer_options.clone()
            };
            &plain
        }
        _ => layer_options,
    };
    let key = spec.cache_key(store, layer_options).map_err(err)?;
    let cached = !no_cache && store.lookup_key(&key).is_some();
    if no_cache {
        store.forget_key(&key).map_err(err)?;
    }
    let info = spec.build(store, layer_options).map_err(err)?;
    tracing::debug!(layer = %step.id, digest = %info.digest, cached, "layer ready");
    Ok(vec![LayerOutcome {
        id: step.id.clone(),
        created_by: step.created_by.clone(),
        info,
        cached,
    }])
}

/// Wheels are downloaded, verified and streamed into layers by the `wheels` crate, which
/// caches each group of wheels by content.
fn wheel_layers(
    step: &LayerStep,
    python: &PythonLayout,
    packages: &[wheels::LockedPackage],
    store: &BlobStore,
    mut options: wheels::InstallOptions,
) -> Result<Vec<LayerOutcome>, BuildError> {
    options.site_packages = python.site_packages.clone().into();
    options.prefix = python.prefix.clone().into();
    options.python = python.interpreter.clone().into();
    let layers =
        wheels::install::install_packages(packages, &options, store).map_err(|source| {
            BuildError::Wheels {
                id: step.id.clone(),
                source,
            }
        })?;
    Ok(layers
        .into_iter()
        .map(|layer| LayerOutcome {
            id: step.id.clone(),
            created_by: format!("pip install {}", layer.packages.join(" ")),
            info: layer.info,
            cached: layer.cached,
        })
        .collect())
}

/// The layer's inputs as a `LayerSpec`. Host paths in the plan are relative to the project.
fn spec_for(step: &LayerStep, project_dir: &Path) -> Result<LayerSpec, layers::Error> {
    let mut spec = LayerSpec::new();
    match &step.content {
        LayerContent::Tree {
            source,
            dest,
            excludes,
        } => {
            spec = spec.tree(project_dir.join(source), dest, excludes)?;
        }
        LayerContent::Files { files } => {
            for file in files {
                spec = match &file.link {
                    Some(target) => spec.symlink(&file.path, target)?,
                    None => spec.file(&file.path, file.mode, file.contents.as_bytes())?,
                };
            }
        }
        LayerContent::ProjectFiles { files, .. } => {
            for file in files {
                // A plan may come from elsewhere: its paths stay inside the project.
                let path = safe_path::relative_path(&file.path).map_err(|e| {
                    layers::Error::InvalidEntry {
                        path: file.path.clone(),
                        reason: e.reason.to_owned(),
                    }
                })?;
                spec =
                    spec.file_from_path(project_dir.join(&path), &format!("/src/{path}"), None)?;
            }
        }
        LayerContent::Wheels { .. }
        | LayerContent::Debs { .. }
        | LayerContent::Run { .. }
        | LayerContent::RuntimeSchema { .. } => {
            unreachable!(
                "wheel, package, command and runtime schema steps have builders of their own"
            )
        }
    }
    Ok(spec)
}
