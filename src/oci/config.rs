//! The image configuration (`application/vnd.oci.image.config.v1+json`). Fields we do not model
//! are kept in `extra` maps, so reading a base image's config and writing it back loses nothing.
use std::collections::BTreeMap;

use layers::Digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Omitted unless set: a timestamp would make every build differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// `os.version`, `os.features`, Docker's `container_config`, `docker_version`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How a container of this image runs (Docker's capitalized field names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `Healthcheck`, `ArgsEscaped`, `OnBuild`, `Shell`...
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub fs_type: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            fs_type: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// An empty `linux/amd64` config.
    pub fn new_linux_amd64() -> Self {
        Self {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Self::default()
        }
    }

    /// The container config, created empty if the image had none.
    pub fn container_config_mut(&mut self) -> &mut ContainerConfig {
        self.config.get_or_insert_with(ContainerConfig::default)
    }

    /// The platform this config declares.
    pub fn platform(&self) -> super::Platform {
        super::Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_of_a_base_config() {
        let base = r#"{"architecture":"amd64","os":"linux","os.version":"x","docker_version":"20.10",
            "config":{"Env":["PATH=/bin"],"Cmd":null,"Healthcheck":{"Test":["NONE"]},"ArgsEscaped":true,"Labels":{"b":"2","a":"1"}},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh","empty_layer":true},{"comment":"c"}],
            "container_config":{"Hostname":"h"}}"#;
        let config: ImageConfig = serde_json::from_str(base).unwrap();
        let container = config.config.as_ref().unwrap();
        assert_eq!(
            container.env.as_deref(),
            Some(&["PATH=/bin".to_string()][..])
        );
        assert_eq!(container.cmd, None);
        assert!(container.extra.contains_key("Healthcheck"));
        let written = serde_json::to_string(&config).unwrap();
        insta::assert_snapshot!(written, @r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Labels":{"a":"1","b":"2"},"Healthcheck":{"Test":["NONE"]},"ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh","empty_layer":true},{"comment":"c"}],"os.version":"x","docker_version":"20.10","container_config":{"Hostname":"h"}}"#);
        let again: ImageConfig = serde_json::from_str(&written).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn a_new_config_has_no_timestamp() {
        let json = serde_json::to_string(&ImageConfig::new_linux_amd64()).unwrap();
        assert_eq!(
            json,
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        );
    }
}
