//! The torch / TensorFlow / CUDA matrices Cog embeds (`pkg/config/*_compatibility.json`) and
//! the lookups on them: CUDA/cuDNN completion and the GPU/CPU torch packages.

use std::sync::LazyLock;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CudaBaseImage {
    pub tag: String,
    #[serde(rename = "CUDA")]
    pub cuda: String,
    #[serde(rename = "CuDNN")]
    pub cudnn: String,
    pub is_devel: bool,
    pub ubuntu: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TorchCompatibility {
    #[serde(rename = "Torch")]
    pub torch: String,
    #[serde(rename = "Torchvision")]
    pub torchvision: String,
    #[serde(rename = "Torchaudio")]
    pub torchaudio: String,
    #[serde(rename = "FindLinks")]
    pub find_links: String,
    #[serde(rename = "ExtraIndexURL")]
    pub extra_index_url: String,
    #[serde(rename = "CUDA")]
    pub cuda: Option<String>,
    #[serde(rename = "Pythons")]
    pub pythons: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TfCompatibility {
    #[serde(rename = "TF")]
    pub tf: String,
    #[serde(rename = "TFCPUPackage")]
    pub tf_cpu_package: String,
    #[serde(rename = "TFGPUPackage")]
    pub tf_gpu_package: String,
    /// `major.minor`, as Cog normalizes it on load.
    #[serde(rename = "CUDA")]
    pub cuda: String,
    /// Major only, to match nvidia image tags.
    #[serde(rename = "CuDNN")]
    pub cudnn: String,
    #[serde(rename = "Pythons")]
    pub pythons: Vec<String>,
}

// The data is embedded and checked by the tests below; a broken file gives an empty matrix
// rather than a panic at runtime.
pub static CUDA_BASE_IMAGES: LazyLock<Vec<CudaBaseImage>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("data/cuda_compatibility.json")).unwrap_or_default()
});

pub static TF_MATRIX: LazyLock<Vec<TfCompatibility>> = LazyLock::new(|| {
    let rows: Vec<TfCompatibility> =
        serde_json::from_str(include_str!("data/tf_compatibility.json")).unwrap_or_default();
    rows.into_iter()
        .filter_map(|mut row| {
            let cuda = Version::parse(&row.cuda)?;
            let cudnn = Version::parse(&row.cudnn)?;
            row.cuda = format!("{}.{}", cuda.major, cuda.minor);
            row.cudnn = cudnn.major.to_string();
            Some(row)
        })
        .collect()
});

/// Filtered, as Cog does, to the CUDA versions that have a base image.
pub static TORCH_MATRIX: LazyLock<Vec<TorchCompatibility>> = LazyLock::new(|| {
    let rows: Vec<TorchCompatibility> =
        serde_json::from_str(include_str!("data/torch_compatibility.json")).unwrap_or_default();
    rows.into_iter()
        .filter(|row| match &row.cuda {
            None => true,
            Some(cuda) => CUDA_BASE_IMAGES
                .iter()
                .any(|image| version_matches(cuda, &image.cuda)),
        })
        .collect()
});

/// Cog's `util/version.Version`: `major[.minor[.patch]][+metadata]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: Option<u64>,
    pub metadata: String,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let (number, metadata) = s.split_once('+').unwrap_or((s, ""));
        let parts: Vec<&str> = number.split('.').collect();
        if parts.len() > 3 {
            return None;
        }
        let major = parts[0].parse().ok()?;
        let minor = match parts.get(1) {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        let patch = match parts.get(2) {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        Some(Version {
            major,
            minor,
            patch,
            metadata: metadata.to_owned(),
        })
    }

    fn key(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch.unwrap_or(0))
    }
}

/// `a` matches `b` when major and minor agree and, if both have one, the patch.
pub fn version_matches(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => {
            a.major == b.major
                && a.minor == b.minor
                && (a.patch.is_none() || b.patch.is_none() || a.patch == b.patch)
        }
        _ => false,
    }
}

pub fn version_greater(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => a.key() > b.key(),
        _ => false,
    }
}

pub fn version_equal(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => a.key() == b.key() && a.metadata == b.metadata,
        _ => false,
    }
}

pub fn version_equal_minor(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => a.major == b.major && a.minor == b.minor,
        _ => false,
    }
}

pub fn strip_modifier(v: &str) -> &str {
    v.split('+').next().unwrap_or(v)
}

/// `2.1.0+cu118` -> (`11.8`, `2.1.0`); no CUDA modifier -> (``, version).
fn cuda_from_torch_modifier(version: &str) -> (String, &str) {
    let parts: Vec<&str> = version.split('+').collect();
    if parts.len() <= 1 {
        return (String::new(), version);
    }
    let Some(digits) = parts[parts.len() - 1].strip_prefix("cu") else {
        return (String::new(), version);
    };
    if digits.len() < 2 || !digits.is_ascii() {
        return (String::new(), version);
    }
    let (major, minor) = digits.split_at(digits.len() - 1);
    (format!("{major}.{minor}"), parts[0])
}

/// The CUDA versions torch `version` was built for (sorted as strings, as Cog does).
pub fn cudas_from_torch(version: &str) -> Vec<String> {
    let (modifier_cuda, version) = cuda_from_torch_modifier(version);
    if !modifier_cuda.is_empty()
        && let Some(row) = TORCH_MATRIX.iter().find(|row| {
            row.cuda.as_deref() == Some(modifier_cuda.as_str())
                && version_matches(version, strip_modifier(&row.torch))
        })
    {
        return row.cuda.iter().cloned().collect();
    }
    let mut cudas: Vec<String> = TORCH_MATRIX
        .iter()
        .filter(|row| version_matches(version, strip_modifier(&row.torch)))
        .filter_map(|row| row.cuda.clone())
        .collect();
    cudas.sort();
    cudas
}

/// (CUDA, cuDNN) for an exact TensorFlow version.
pub fn cuda_from_tf(version: &str) -> Option<(String, String)> {
    TF_MATRIX
        .iter()
        .find(|row| row.tf == version)
        .map(|row| (row.cuda.clone(), row.cudnn.clone()))
}

/// cuDNN versions with a base image for exactly this CUDA string.
pub fn compatible_cudnns_for_cuda(cuda: &str) -> Vec<String> {
    CUDA_BASE_IMAGES
        .iter()
        .filter(|image| image.cuda == cuda)
        .map(|image| image.cudnn.clone())
        .collect()
}

/// CUDA when nothing pins it (Cog's `defaultCUDA`).
pub const DEFAULT_CUDA: &str = "11.8";

pub fn latest_cuda_from(cudas: &[String]) -> Option<String> {
    let mut latest: Option<&String> = None;
    for cuda in cudas {
        if latest.is_none_or(|l| version_greater(cuda, l)) {
            latest = Some(cuda);
        }
    }
    latest.cloned()
}

/// The highest cuDNN with a base image for `cuda`; Cog's `CUDA X is not supported by Cog`.
pub fn latest_cudnn_for_cuda(cuda: &str) -> Result<String, String> {
    let mut cudnns: Vec<&String> = CUDA_BASE_IMAGES
        .iter()
        .filter(|image| version_matches(cuda, &image.cuda))
        .map(|image| &image.cudnn)
        .collect();
    cudnns.sort_by(|a, b| {
        if version_greater(a, b) {
            std::cmp::Ordering::Less
        } else if version_greater(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    cudnns
        .first()
        .map(|c| (*c).clone())
        .ok_or_else(|| format!("CUDA {cuda} is not supported by Cog"))
}

/// The `nvidia/cuda` devel image for a CUDA/cuDNN pair: highest CUDA patch, newest Ubuntu.
pub fn cuda_base_image_for(cuda: &str, cudnn: &str) -> Option<String> {
    let mut images: Vec<&CudaBaseImage> = CUDA_BASE_IMAGES
        .iter()
        .filter(|image| version_matches(cuda, &image.cuda) && image.cudnn == cudnn)
        .collect();
    images.sort_by(|a, b| {
        if a.cuda == b.cuda {
            b.ubuntu.cmp(&a.ubuntu)
        } else if version_greater(&a.cuda, &b.cuda) {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        }
    });
    images
        .first()
        .map(|image| format!("nvidia/cuda:{}", image.tag))
}

/// A package line rewritten for the target, with the index options it needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchPackage {
    pub name: String,
    pub version: String,
    pub find_links: String,
    pub extra_index_url: String,
}

/// The torch row for `version` with the highest CUDA not above `cuda`.
fn best_gpu_row(
    cuda: &str,
    matches: impl Fn(&TorchCompatibility) -> bool,
) -> Option<&'static TorchCompatibility> {
    let mut latest: Option<&TorchCompatibility> = None;
    for row in TORCH_MATRIX.iter() {
        let Some(row_cuda) = &row.cuda else { continue };
        if !matches(row) || version_greater(row_cuda, cuda) {
            continue;
        }
        if latest.is_none_or(|l| {
            l.cuda
                .as_deref()
                .is_some_and(|lc| version_greater(row_cuda, lc))
        }) {
            latest = Some(row);
        }
    }
    latest
}

pub fn torch_gpu_package(version: &str, cuda: &str) -> ArchPackage {
    match best_gpu_row(cuda, |row| {
        version_matches(strip_modifier(&row.torch), version)
    }) {
        Some(row) => ArchPackage {
            name: "torch".into(),
            version: strip_modifier(&row.torch).into(),
            find_links: row.find_links.clone(),
            extra_index_url: row.extra_index_url.clone(),
        },
        None => ArchPackage {
            name: "torch".into(),
            version: version.into(),
            ..ArchPackage::default()
        },
    }
}

pub fn torchvision_gpu_package(version: &str, cuda: &str) -> (ArchPackage, Option<String>) {
    match best_gpu_row(cuda, |row| strip_modifier(&row.torchvision) == version) {
        Some(row) => (
            ArchPackage {
                name: "torchvision".into(),
                version: strip_modifier(&row.torchvision).into(),
                find_links: row.find_links.clone(),
                extra_index_url: row.extra_index_url.clone(),
            },
            None,
        ),
        None => (
            ArchPackage {
                name: "torchvision".into(),
                version: version.into(),
                ..ArchPackage::default()
            },
            Some(format!(
                "Cog doesn't know if CUDA {cuda} is compatible with torchvision {version}. This might cause CUDA problems."
            )),
        ),
    }
}

/// The CPU row (`+cpu`); aarch64 Linux wheels carry no `+cpu` suffix on the torch index.
pub fn torch_cpu_package(name: &str, version: &str, arch: &str) -> ArchPackage {
    let pick = |row: &TorchCompatibility| {
        if name == "torch" {
            row.torch.clone()
        } else {
            row.torchvision.clone()
        }
    };
    for row in TORCH_MATRIX.iter() {
        if row.cuda.is_none() && strip_modifier(&pick(row)) == version {
            let mut pinned = pick(row);
            if arch == "arm64" || arch == "aarch64" {
                pinned = pinned.replace("+cpu", "");
            }
            // Cog 0.22 writes torch without its local version (`torch==2.1.0`, which the
            // `/cpu` index answers with `2.1.0+cpu`) and keeps torchvision's.
            if name == "torch" {
                let end = strip_modifier(&pinned).len();
                pinned.truncate(end);
            }
            return ArchPackage {
                name: name.into(),
                version: pinned,
                find_links: row.find_links.clone(),
                extra_index_url: row.extra_index_url.clone(),
            };
        }
    }
    ArchPackage {
        name: name.into(),
        version: version.into(),
        ..ArchPackage::default()
    }
}

/// The TensorFlow GPU package for an exact version and CUDA (same name today).
pub fn tf_gpu_package(version: &str, cuda: &str) -> Option<(String, String)> {
    TF_MATRIX
        .iter()
        .find(|row| row.tf == version && version_equal(&row.cuda, cuda))
        .and_then(|row| {
            let (name, version) = row.tf_gpu_package.split_once("==")?;
            Some((name.to_owned(), version.to_owned()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_matrices_load() {
        assert_eq!(CUDA_BASE_IMAGES.len(), 83);
        assert_eq!(TF_MATRIX.len(), 18);
        assert!(TORCH_MATRIX.len() > 80 && TORCH_MATRIX.len() <= 96);
        assert!(TF_MATRIX.iter().all(|row| !row.cudnn.contains('.')));
    }

    #[test]
    fn version_helpers_follow_cog() {
        assert!(version_matches("11.8", "11.8.0"));
        assert!(!version_matches("11.8.1", "11.8.0"));
        assert!(version_greater("12.1", "11.8"));
        assert!(version_equal_minor("12.1.1", "12.1"));
        assert_eq!(Version::parse("1.2.3.4"), None);
    }

    #[test]
    fn torch_cuda_lookup() {
        assert_eq!(cudas_from_torch("2.1.0+cu118"), vec!["11.8".to_owned()]);
        let cudas = cudas_from_torch("2.1.0");
        assert!(cudas.contains(&"12.1".to_owned()), "{cudas:?}");
        assert_eq!(latest_cuda_from(&cudas).as_deref(), Some("12.1"));
        assert_eq!(latest_cudnn_for_cuda("11.8").as_deref(), Ok("8"));
        assert_eq!(
            latest_cudnn_for_cuda("10.2").unwrap_err(),
            "CUDA 10.2 is not supported by Cog"
        );
    }

    #[test]
    fn torch_packages_for_gpu_and_cpu() {
        let gpu = torch_gpu_package("2.1.0", "12.1");
        assert_eq!(gpu.version, "2.1.0");
        assert_eq!(
            gpu.extra_index_url,
            "https://download.pytorch.org/whl/cu121/"
        );
        let cpu = torch_cpu_package("torch", "2.1.0", "amd64");
        assert_eq!(cpu.version, "2.1.0");
        assert_eq!(cpu.extra_index_url, "https://download.pytorch.org/whl/cpu/");
    }

    #[test]
    fn base_image_for_cuda() {
        assert_eq!(
            cuda_base_image_for("11.8", "8").as_deref(),
            Some("nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04")
        );
    }
}
