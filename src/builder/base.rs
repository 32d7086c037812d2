//! Fetching the base image into the store: a registry pull, a local import, or assembly from
//! distribution packages.
use layers::{BlobStore, LayerInfo};

use crate::oci::{ContainerConfig, ImageConfig, Platform};
use crate::plan::BaseImage;
use crate::progress::{Progress, Unit};
use crate::registry::{Client, ClientOptions, Reference};

use super::BuildError;

/// A base image ready to build on: its config and layers (blobs in the store, as they came),
/// plus its dpkg database when we know it (for an apt layer on top).
#[derive(Debug, Clone, Default)]
pub struct ResolvedBase {
    pub config: Option<ImageConfig>,
    pub layers: Vec<LayerInfo>,
    pub dpkg_status: Option<Vec<u8>>,
    /// Shared libraries of the base, so an apt layer's `/etc/ld.so.cache` covers both.
    pub libraries: Option<Vec<String>>,
}

/// Brings the plan's base image into `store`; empty for `scratch`.
pub async fn resolve_base(
    base: &BaseImage,
    platform: &Platform,
    store: &BlobStore,
    progress: &Progress,
    insecure: bool,
) -> Result<ResolvedBase, BuildError> {
    let failed = |message: String| BuildError::Base {
        base: base.to_string(),
        message,
    };
    let local = match base {
        BaseImage::Scratch => return Ok(ResolvedBase::default()),
        BaseImage::Registry { reference } => {
            let reference = Reference::parse(reference).map_err(|e| failed(e.to_string()))?;
            let client = Client::new(ClientOptions {
                insecure,
                ..ClientOptions::default()
            })
            .map_err(|e| failed(e.to_string()))?;
            let image = client
                .pull(&reference, platform, store, progress)
                .await
                .map_err(|e| failed(e.to_string()))?;
            return Ok(ResolvedBase {
                config: Some(image.config),
                layers: image.layers,
                ..ResolvedBase::default()
            });
        }
        BaseImage::Assembled { lock, .. } => {
            let task = progress.task(
                &format!("assemble {base}"),
                Some(lock.packages.len() as u64),
                Unit::Items,
            );
            let assembled =
                debian::assemble_base_from_lock(lock, &debian::AssembleOptions::default(), store)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
            task.finish(&format!("{} packages", lock.packages.len()));
            let config = ImageConfig {
                config: Some(ContainerConfig {
                    env: Some(
                        assembled
                            .env
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect(),
                    ),
                    entrypoint: Some(assembled.entrypoint.clone()),
                    ..ContainerConfig::default()
                }),
                ..ImageConfig::new_linux_amd64()
            };
            let mut config = config;
            config.architecture.clone_from(&platform.architecture);
            return Ok(ResolvedBase {
                config: Some(config),
                layers: assembled.layers,
                dpkg_status: Some(assembled.status),
                libraries: Some(assembled.libraries),
            });
        }
        BaseImage::OciLayout { .. }
        | BaseImage::OciArchive { .. }
        | BaseImage::DockerArchive { .. } => base
            .local_source()
            .ok_or_else(|| failed("not a local image".to_owned()))?,
    };
    let store = store.clone();
    let platform = platform.clone();
    let task = progress.task(&format!("import {base}"), None, Unit::Items);
    let image = tokio::task::spawn_blocking(move || local.import(&store, &platform))
        .await
        .map_err(|e| BuildError::Join(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    task.finish(&format!("{} layers", image.layers.len()));
    Ok(ResolvedBase {
        config: Some(image.config),
        layers: image.layers,
        ..ResolvedBase::default()
    })
}
