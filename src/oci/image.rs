//! Images whose blobs are in the store: a base image read from somewhere (`SourceImage`), an
//! image the builder assembled (`BuiltImage`), and a pointer to either (`ImageRef`).
use std::collections::BTreeMap;

use layers::{BlobStore, Digest, LayerInfo};

use super::config::{ImageConfig, RootFs};
use super::descriptor::{Descriptor, Platform};
use super::error::OciError;
use super::manifest::{Index, Manifest, canonical_json, declared_media_type};
use super::media_types;

/// What to write or export: a manifest or an index, by digest, whose blobs are in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl ImageRef {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.media_type.clone(), self.digest, self.size)
    }
}

/// A base image: its manifest, config and layers, every blob already in the store, layers
/// exactly as they were served (never recompressed).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceImage {
    pub manifest_digest: Digest,
    /// Size of the manifest blob as stored (its bytes may not be our canonical form).
    pub manifest_size: u64,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// In manifest order; `diff_id` from the config's `rootfs`.
    pub layers: Vec<LayerInfo>,
}

/// An image the builder assembled: config and manifest blobs written into the store.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltImage {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
}

impl BuiltImage {
    pub fn image_ref(&self) -> ImageRef {
        ImageRef {
            media_type: media_types::OCI_MANIFEST.to_string(),
            digest: self.manifest_digest,
            size: self.manifest_size,
        }
    }
}

impl SourceImage {
    /// Reads the manifest `manifest_digest` and its config from the store. `location` names where
    /// the image came from, for errors.
    pub fn from_store(
        store: &BlobStore,
        manifest_digest: &Digest,
        location: &str,
    ) -> Result<Self, OciError> {
        let bytes = read_blob(store, manifest_digest, "manifest", location)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| OciError::BlobJson {
                what: "manifest",
                digest: *manifest_digest,
                source,
            })?;
        let config_digest = manifest.config.digest;
        let config_bytes = read_blob(store, &config_digest, "image config", location)?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|source| OciError::BlobJson {
                what: "image config",
                digest: config_digest,
                source,
            })?;
        let layers = layer_infos(&manifest, &config, location)?;
        Ok(Self {
            manifest_digest: *manifest_digest,
            manifest_size: bytes.len() as u64,
            manifest,
            config_digest,
            config,
            layers,
        })
    }

    pub fn image_ref(&self) -> ImageRef {
        ImageRef {
            media_type: self
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media_types::OCI_MANIFEST.to_string()),
            digest: self.manifest_digest,
            size: self.manifest_size,
        }
    }
}

/// Pairs each manifest layer with its diff_id from the config.
pub(crate) fn layer_infos(
    manifest: &Manifest,
    config: &ImageConfig,
    location: &str,
) -> Result<Vec<LayerInfo>, OciError> {
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(OciError::Invalid {
            location: location.to_string(),
            message: format!(
                "the manifest lists {} layers but the image config {} has {} diff_ids",
                manifest.layers.len(),
                manifest.config.digest,
                diff_ids.len()
            ),
        });
    }
    Ok(manifest
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(layer, diff_id)| LayerInfo {
            digest: layer.digest,
            size: layer.size,
            diff_id: *diff_id,
            media_type: layer.media_type.clone(),
        })
        .collect())
}

/// Writes `config` (its `rootfs` set from `layers`) and an OCI manifest into the store.
/// Docker's gzip layer type becomes OCI's (the same bytes), so the manifest is pure OCI.
pub fn assemble(
    store: &BlobStore,
    config: &ImageConfig,
    layers: &[LayerInfo],
    annotations: BTreeMap<String, String>,
) -> Result<BuiltImage, OciError> {
    let mut config = config.clone();
    config.rootfs = RootFs {
        fs_type: "layers".to_string(),
        diff_ids: layers.iter().map(|l| l.diff_id).collect(),
    };
    let (config_digest, config_size) = store.put_bytes(&canonical_json(&config))?;
    let layer_descriptors = layers
        .iter()
        .map(|l| Descriptor::new(oci_layer_media_type(&l.media_type), l.digest, l.size))
        .collect();
    let mut manifest = Manifest::oci(
        Descriptor::new(media_types::OCI_CONFIG, config_digest, config_size),
        layer_descriptors,
    );
    manifest.annotations = annotations;
    let (manifest_digest, manifest_size) = store.put_bytes(&canonical_json(&manifest))?;
    Ok(BuiltImage {
        manifest_digest,
        manifest_size,
        manifest,
        config_digest,
        config,
    })
}

/// Writes an OCI index of per-platform images into the store.
pub fn assemble_index(
    store: &BlobStore,
    images: &[(ImageRef, Platform)],
    annotations: BTreeMap<String, String>,
) -> Result<ImageRef, OciError> {
    let manifests = images
        .iter()
        .map(|(image, platform)| Descriptor {
            platform: Some(platform.clone()),
            ..image.descriptor()
        })
        .collect();
    let mut index = Index::oci(manifests);
    index.annotations = annotations;
    let (digest, size) = store.put_bytes(&canonical_json(&index))?;
    Ok(ImageRef {
        media_type: media_types::OCI_INDEX.to_string(),
        digest,
        size,
    })
}

fn oci_layer_media_type(media_type: &str) -> String {
    match media_type {
        media_types::DOCKER_LAYER_GZIP => media_types::OCI_LAYER_GZIP.to_string(),
        other => other.to_string(),
    }
}

/// Picks the entry of `index` for `wanted`; the error lists what the index offers.
pub fn select_platform<'a>(
    index: &'a Index,
    wanted: &Platform,
    location: &str,
) -> Result<&'a Descriptor, OciError> {
    index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(wanted)))
        .ok_or_else(|| OciError::PlatformNotFound {
            location: location.to_string(),
            wanted: wanted.to_string(),
            available: available_platforms(index),
        })
}

/// `linux/amd64, linux/arm64` (attestations, `unknown/unknown`, left out).
pub fn available_platforms(index: &Index) -> String {
    let names: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(ToString::to_string)
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Follows `descriptor` (an index or a manifest, in the store) to the manifest for `platform`.
pub fn resolve_in_store(
    store: &BlobStore,
    descriptor: &Descriptor,
    platform: &Platform,
    location: &str,
) -> Result<SourceImage, OciError> {
    resolve(store, descriptor, platform, location, &mut |_| Ok(()))
}

/// Follows `descriptor` to the manifest for `platform`, calling `ensure` on each blob it needs
/// (index, manifest, config, layers) before reading it, so a source can import blobs lazily.
pub(crate) fn resolve(
    store: &BlobStore,
    descriptor: &Descriptor,
    platform: &Platform,
    location: &str,
    ensure: &mut dyn FnMut(&Descriptor) -> Result<(), OciError>,
) -> Result<SourceImage, OciError> {
    let mut current = descriptor.clone();
    // Indexes may nest (an index of indexes); a few levels is plenty, and bounds a cycle.
    for _ in 0..4 {
        ensure(&current)?;
        let bytes = read_blob(store, &current.digest, "manifest", location)?;
        let media_type = declared_media_type(&bytes).unwrap_or_else(|| current.media_type.clone());
        if media_types::is_index(&media_type) {
            let index: Index =
                serde_json::from_slice(&bytes).map_err(|source| OciError::BlobJson {
                    what: "index",
                    digest: current.digest,
                    source,
                })?;
            current = select_platform(&index, platform, location)?.clone();
        } else if media_types::is_manifest(&media_type) {
            let manifest: Manifest =
                serde_json::from_slice(&bytes).map_err(|source| OciError::BlobJson {
                    what: "manifest",
                    digest: current.digest,
                    source,
                })?;
            ensure(&manifest.config)?;
            for layer in &manifest.layers {
                ensure(layer)?;
            }
            return SourceImage::from_store(store, &current.digest, location);
        } else {
            return Err(OciError::UnsupportedMediaType {
                location: location.to_string(),
                what: "an image manifest",
                media_type,
            });
        }
    }
    Err(OciError::Invalid {
        location: location.to_string(),
        message: "indexes nested too deeply".to_string(),
    })
}

/// Every blob `root` reaches (itself, child manifests, configs, layers), each once, in order.
pub fn reachable_blobs(
    store: &BlobStore,
    root: &Descriptor,
    location: &str,
) -> Result<Vec<Descriptor>, OciError> {
    let mut out: Vec<Descriptor> = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(descriptor) = pending.pop() {
        if out.iter().any(|d| d.digest == descriptor.digest) {
            continue;
        }
        let is_json = media_types::is_index(&descriptor.media_type)
            || media_types::is_manifest(&descriptor.media_type);
        if is_json {
            let bytes = read_blob(store, &descriptor.digest, "manifest", location)?;
            let media_type =
                declared_media_type(&bytes).unwrap_or_else(|| descriptor.media_type.clone());
            if media_types::is_index(&media_type) {
                let index: Index =
                    serde_json::from_slice(&bytes).map_err(|source| OciError::BlobJson {
                        what: "index",
                        digest: descriptor.digest,
                        source,
                    })?;
                pending.extend(index.manifests.into_iter().rev());
            } else {
                let manifest: Manifest =
                    serde_json::from_slice(&bytes).map_err(|source| OciError::BlobJson {
                        what: "manifest",
                        digest: descriptor.digest,
                        source,
                    })?;
                pending.extend(manifest.layers.into_iter().rev());
                pending.push(manifest.config);
            }
        } else if !store.has(&descriptor.digest) {
            return Err(OciError::MissingBlob {
                what: "blob",
                digest: descriptor.digest,
                location: location.to_string(),
            });
        }
        out.push(descriptor);
    }
    Ok(out)
}

pub(crate) fn read_blob(
    store: &BlobStore,
    digest: &Digest,
    what: &'static str,
    location: &str,
) -> Result<Vec<u8>, OciError> {
    if !store.has(digest) {
        return Err(OciError::MissingBlob {
            what,
            digest: *digest,
            location: location.to_string(),
        });
    }
    Ok(fs_err::read(store.blob_path(digest))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(store: &BlobStore, content: &[u8]) -> LayerInfo {
        let (digest, size) = store.put_bytes(content).unwrap();
        LayerInfo {
            digest,
            size,
            diff_id: Digest::of(content),
            media_type: media_types::DOCKER_LAYER_GZIP.into(),
        }
    }

    #[test]
    fn assemble_is_reproducible_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let layers = vec![layer(&store, b"one"), layer(&store, b"two")];
        let mut config = ImageConfig::new_linux_amd64();
        config.container_config_mut().cmd = Some(vec!["sh".into()]);
        let built = assemble(&store, &config, &layers, BTreeMap::new()).unwrap();
        let again = assemble(&store, &config, &layers, BTreeMap::new()).unwrap();
        assert_eq!(built.manifest_digest, again.manifest_digest);
        assert_eq!(
            built.manifest.layers[0].media_type,
            media_types::OCI_LAYER_GZIP
        );
        let read = SourceImage::from_store(&store, &built.manifest_digest, "test").unwrap();
        assert_eq!(read.config, built.config);
        assert_eq!(
            read.layers.iter().map(|l| l.diff_id).collect::<Vec<_>>(),
            vec![Digest::of(b"one"), Digest::of(b"two")]
        );
        assert_eq!(read.image_ref(), built.image_ref());
    }

    #[test]
    fn index_resolves_per_platform_and_lists_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let amd = assemble(
            &store,
            &ImageConfig::new_linux_amd64(),
            &[layer(&store, b"a")],
            BTreeMap::new(),
        )
        .unwrap();
        let arm_config = ImageConfig {
            architecture: "arm64".into(),
            ..ImageConfig::new_linux_amd64()
        };
        let arm = assemble(&store, &arm_config, &[layer(&store, b"b")], BTreeMap::new()).unwrap();
        let index = assemble_index(
            &store,
            &[
                (amd.image_ref(), Platform::linux_amd64()),
                (arm.image_ref(), "linux/arm64/v8".parse().unwrap()),
            ],
            BTreeMap::new(),
        )
        .unwrap();
        let got = resolve_in_store(
            &store,
            &index.descriptor(),
            &"linux/arm64".parse().unwrap(),
            "test",
        )
        .unwrap();
        assert_eq!(got.manifest_digest, arm.manifest_digest);
        let got = resolve_in_store(
            &store,
            &index.descriptor(),
            &Platform::linux_amd64(),
            "test",
        )
        .unwrap();
        assert_eq!(got.manifest_digest, amd.manifest_digest);
        let err = resolve_in_store(
            &store,
            &index.descriptor(),
            &"linux/s390x".parse().unwrap(),
            "oci:/x",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "oci:/x: no image for platform linux/s390x; available: linux/amd64, linux/arm64"
        );
    }

    #[test]
    fn mismatched_diff_ids_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let built = assemble(
            &store,
            &ImageConfig::new_linux_amd64(),
            &[layer(&store, b"a")],
            BTreeMap::new(),
        )
        .unwrap();
        let mut manifest = built.manifest.clone();
        manifest.layers.push(manifest.layers[0].clone());
        let (digest, _) = store.put_bytes(&canonical_json(&manifest)).unwrap();
        let err = SourceImage::from_store(&store, &digest, "oci:/base")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("oci:/base: the manifest lists 2 layers but the image config"),
            "{err}"
        );
    }
}
