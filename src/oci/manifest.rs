//! Image manifests and indexes, and their canonical JSON bytes.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::descriptor::Descriptor;
use super::media_types;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    /// Required by Docker schema2, recommended by OCI: we always write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// An OCI manifest for `config` and `layers`.
    pub fn oci(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    pub fn oci(manifests: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// Compact JSON with the field order fixed by the types (maps sorted), so the same image always
/// has the same bytes, hence the same digest.
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our types serialize only strings, numbers, maps and sequences: this cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The `mediaType` a manifest document declares, if any (to tell an index from a manifest).
pub fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    probe.media_type.or_else(|| {
        // OCI allows leaving mediaType out: tell them apart by shape.
        if probe.manifests.is_some() {
            Some(media_types::OCI_INDEX.to_string())
        } else if probe.config.is_some() {
            Some(media_types::OCI_MANIFEST.to_string())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use layers::Digest;

    #[test]
    fn manifest_json_is_canonical() {
        let config = Descriptor::new(media_types::OCI_CONFIG, Digest::of(b"c"), 1);
        let layer = Descriptor::new(media_types::OCI_LAYER_GZIP, Digest::of(b"l"), 1);
        let mut manifest = Manifest::oci(config, vec![layer]);
        manifest.annotations.insert("z".into(), "1".into());
        manifest.annotations.insert("a".into(), "2".into());
        let bytes = canonical_json(&manifest);
        insta::assert_snapshot!(String::from_utf8(bytes.clone()).unwrap(), @r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:acac86c0e609ca906f632b0e2dacccb2b77d22b0621f20ebece1a4835b93f6f0","size":1}],"annotations":{"a":"2","z":"1"}}"#);
        let back: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(canonical_json(&back), bytes);
        assert_eq!(
            declared_media_type(&bytes).as_deref(),
            Some(media_types::OCI_MANIFEST)
        );
    }

    #[test]
    fn media_type_by_shape_when_absent() {
        assert_eq!(
            declared_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_types::OCI_INDEX)
        );
        assert_eq!(
            declared_media_type(br#"{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#).as_deref(),
            Some(media_types::DOCKER_MANIFEST_LIST)
        );
        assert_eq!(declared_media_type(b"[]"), None);
    }
}
