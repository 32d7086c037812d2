//! Fetching the base image into the store: a registry pull or a local import.
use std::path::PathBuf;

use layers::BlobStore;

use crate::oci::{LocalSource, Platform, SourceImage};
use crate::plan::BaseImage;
use crate::progress::Progress;
use crate::registry::{Client, ClientOptions, Reference};

use super::BuildError;

/// Brings the plan's base image into `store`; `None` for `scratch`.
pub async fn resolve_base(
    base: &BaseImage,
    platform: &Platform,
    store: &BlobStore,
    progress: &Progress,
) -> Result<Option<SourceImage>, BuildError> {
    let local = match base {
        BaseImage::Scratch => return Ok(None),
        BaseImage::Registry { reference } => {
            let failed = |message: String| BuildError::Base { base: base.to_string(), message };
            let reference = Reference::parse(reference).map_err(|e| failed(e.to_string()))?;
            let client = Client::new(ClientOptions::default()).map_err(|e| failed(e.to_string()))?;
            let image = client
                .pull(&reference, platform, store, progress)
                .await
                .map_err(|e| failed(e.to_string()))?;
            return Ok(Some(image));
        }
        BaseImage::OciLayout { path, tag } => LocalSource::OciDir { dir: PathBuf::from(path), tag: tag.clone() },
        BaseImage::OciArchive { path, tag } => {
            LocalSource::OciArchive { file: PathBuf::from(path), tag: tag.clone() }
        }
        BaseImage::DockerArchive { path } => LocalSource::DockerArchive { file: PathBuf::from(path) },
    };
    let store = store.clone();
    let platform = platform.clone();
    let task = progress.task(&format!("import {base}"), None, crate::progress::Unit::Items);
    let image = tokio::task::spawn_blocking(move || local.import(&store, &platform))
        .await
        .map_err(|e| BuildError::Join(e.to_string()))?
        .map_err(|e| BuildError::Base { base: base.to_string(), message: e.to_string() })?;
    task.finish(&format!("{} layers", image.layers.len()));
    Ok(Some(image))
}
