//! Content descriptors and platforms.
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use layers::Digest;
use serde::{Deserialize, Serialize};

/// Points at a blob: what it is, its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// The platform an image runs on: `linux/amd64`, `linux/arm64`, `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformError(pub String);

impl Platform {
    /// `linux/amd64`: what Cog builds, and what a pull selects unless told otherwise.
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64", None)
    }

    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: Vec::new(),
            variant: variant.map(str::to_string),
        }
        .normalized()
    }

    /// containerd's normalization: `aarch64` is `arm64` (whose `v8` is the default variant),
    /// `x86_64` is `amd64`, `armhf` is `arm/v7`.
    pub fn normalized(mut self) -> Self {
        self.os = self.os.to_lowercase();
        let arch = self.architecture.to_lowercase();
        let variant = self
            .variant
            .take()
            .map(|v| v.to_lowercase())
            .filter(|v| !v.is_empty());
        let (arch, variant) = match arch.as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), variant.filter(|v| v != "v1")),
            "aarch64" | "arm64" => (
                "arm64".to_string(),
                variant.filter(|v| !matches!(v.as_str(), "8" | "v8" | "v8.0")),
            ),
            "armhf" => ("arm".to_string(), Some("v7".to_string())),
            "armel" => ("arm".to_string(), Some("v6".to_string())),
            "arm" => (
                "arm".to_string(),
                Some(variant.unwrap_or_else(|| "v7".to_string())),
            ),
            "i386" | "i686" | "386" => ("386".to_string(), variant),
            _ => (arch, variant),
        };
        self.architecture = arch;
        self.variant = variant;
        self
    }

    /// Whether an image for `self` (from an index entry) serves `wanted`.
    pub fn matches(&self, wanted: &Platform) -> bool {
        let have = self.clone().normalized();
        let want = wanted.clone().normalized();
        have.os == want.os
            && have.architecture == want.architecture
            && (want.variant.is_none() || have.variant == want.variant)
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(PlatformError(s.to_string()));
        }
        Ok(Self::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes_platforms() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("Linux/AMD64", "linux/amd64"),
        ];
        for (input, shown) in cases {
            assert_eq!(
                input.parse::<Platform>().unwrap().to_string(),
                shown,
                "{input}"
            );
        }
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux amd64",
        ] {
            let err = bad.parse::<Platform>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn matching_ignores_default_variants() {
        let arm64_v8 = Platform::new("linux", "arm64", Some("v8"));
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert!(arm64_v8.matches(&arm64));
        assert!(arm64.matches(&"linux/arm64/v8".parse().unwrap()));
        assert!(!arm64.matches(&Platform::linux_amd64()));
        let armv6: Platform = "linux/arm/v6".parse().unwrap();
        assert!(!armv6.matches(&"linux/arm/v7".parse().unwrap()));
    }

    #[test]
    fn descriptor_json_omits_empty_fields() {
        let d = Descriptor::new(crate::oci::media_types::OCI_CONFIG, Digest::of(b"{}"), 2);
        insta::assert_snapshot!(serde_json::to_string(&d).unwrap(), @r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#);
        let mut p = Descriptor::new("x", Digest::of(b""), 0);
        p.platform = Some("linux/arm64/v8".parse().unwrap());
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            json.contains(r#""platform":{"architecture":"arm64","os":"linux"}"#),
            "{json}"
        );
        let back: Descriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
