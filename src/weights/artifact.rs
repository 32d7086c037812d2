//! A weight as an OCI artifact (spec 2): its config blob (the file index), its manifest
//! (`artifactType application/vnd.cog.weight.v1`, annotations, layers sorted by digest), and
//! its entry in the model's OCI index. Nothing volatile goes in: the same files, packing and
//! cog.yaml entry give the same manifest digest.
use std::collections::BTreeMap;

use layers::{BlobStore, Digest};
use serde::{Deserialize, Serialize};

use super::WeightsError;
use super::lock::LockEntry;
use crate::oci::{Descriptor, ImageRef, Manifest, Platform, canonical_json, media_types};

pub const ARTIFACT_TYPE: &str = "application/vnd.cog.weight.v1";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cog.weight.config.v1+json";
pub const ANNOTATION_NAME: &str = "run.cog.weight.name";
pub const ANNOTATION_TARGET: &str = "run.cog.weight.target";
pub const ANNOTATION_SET_DIGEST: &str = "run.cog.weight.set-digest";
pub const ANNOTATION_SIZE: &str = "run.cog.weight.size.uncompressed";

/// The config blob: the weight's file index (spec 2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightConfig {
    pub name: String,
    pub target: String,
    pub set_digest: String,
    pub files: Vec<ConfigFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    pub path: String,
    pub layer: String,
    pub size: u64,
    pub digest: String,
}

impl WeightConfig {
    pub fn of(entry: &LockEntry) -> Self {
        let mut files: Vec<ConfigFile> = entry
            .files
            .iter()
            .map(|f| ConfigFile {
                path: f.path.clone(),
                layer: f.layer.clone(),
                size: f.size,
                digest: f.digest.clone(),
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        WeightConfig {
            name: entry.name.clone(),
            target: entry.target.clone(),
            set_digest: entry.set_digest.clone(),
            files,
        }
    }
}

/// The manifest of `entry` (whose `digest` is not read), and its config blob's bytes.
pub fn manifest(entry: &LockEntry) -> Result<(Manifest, Vec<u8>), WeightsError> {
    let config = canonical_json(&WeightConfig::of(entry));
    let config_descriptor =
        Descriptor::new(CONFIG_MEDIA_TYPE, Digest::of(&config), config.len() as u64);
    let mut layers = Vec::new();
    let mut sorted = entry.layers.clone();
    sorted.sort_by(|a, b| a.digest.cmp(&b.digest));
    for layer in sorted {
        let digest = super::lock::digest(&layer.digest).map_err(WeightsError::Digest)?;
        let mut descriptor = Descriptor::new(layer.media_type.clone(), digest, layer.size);
        descriptor.annotations.insert(
            ANNOTATION_SIZE.to_string(),
            layer.size_uncompressed.to_string(),
        );
        layers.push(descriptor);
    }
    let mut manifest = Manifest::oci(config_descriptor, layers);
    manifest.artifact_type = Some(ARTIFACT_TYPE.to_string());
    manifest.annotations = BTreeMap::from([
        (ANNOTATION_NAME.to_string(), entry.name.clone()),
        (ANNOTATION_TARGET.to_string(), entry.target.clone()),
        (ANNOTATION_SET_DIGEST.to_string(), entry.set_digest.clone()),
    ]);
    Ok((manifest, config))
}

/// Writes `entry`'s config blob and manifest into `store`; the manifest as an [`ImageRef`].
pub fn store(entry: &LockEntry, store: &BlobStore) -> Result<ImageRef, WeightsError> {
    let (manifest, config) = manifest(entry)?;
    store.put_bytes(&config)?;
    let bytes = canonical_json(&manifest);
    let (digest, size) = store.put_bytes(&bytes)?;
    Ok(ImageRef {
        media_type: media_types::OCI_MANIFEST.to_string(),
        digest,
        size,
    })
}

/// Checks a manifest fetched for `entry` against it: the digest the lock records, the layers,
/// the annotations and the config blob's file index must all be the lock's.
pub fn check_manifest(
    entry: &LockEntry,
    bytes: &[u8],
    config: Option<&[u8]>,
) -> Result<Manifest, WeightsError> {
    let mismatch = |what: &str, expected: String, actual: String| WeightsError::Mismatch {
        what: format!("weight {:?} {what}", entry.name),
        expected,
        actual,
    };
    let digest = Digest::of(bytes).to_string();
    if digest != entry.digest {
        return Err(mismatch("manifest", entry.digest.clone(), digest));
    }
    let (wanted, wanted_config) = manifest(entry)?;
    let got: Manifest = serde_json::from_slice(bytes).map_err(|e| WeightsError::Mismatch {
        what: format!("weight {:?} manifest", entry.name),
        expected: "an OCI manifest".to_string(),
        actual: e.to_string(),
    })?;
    if got != wanted {
        return Err(mismatch(
            "manifest",
            "the manifest weights.lock describes".to_string(),
            "another manifest".to_string(),
        ));
    }
    if let Some(config) = config
        && config != wanted_config.as_slice()
    {
        return Err(mismatch(
            "config",
            "the file index weights.lock describes".to_string(),
            "another file index".to_string(),
        ));
    }
    Ok(got)
}

/// The entry of a weight in the model's OCI index (spec 2.6).
pub fn index_descriptor(entry: &LockEntry, manifest: &ImageRef) -> Descriptor {
    let mut descriptor = manifest.descriptor();
    descriptor.artifact_type = Some(ARTIFACT_TYPE.to_string());
    descriptor.platform = Some(Platform::new("unknown", "unknown", None));
    descriptor.annotations = BTreeMap::from([
        (ANNOTATION_NAME.to_string(), entry.name.clone()),
        (ANNOTATION_SET_DIGEST.to_string(), entry.set_digest.clone()),
        (ANNOTATION_SIZE.to_string(), entry.size.to_string()),
    ]);
    descriptor
}
