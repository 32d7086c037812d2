//! Which base image a build starts from: Cog 0.22's rule (`StandardGenerator.BaseImage`,
//! reference section 5.2), with our own default for CPU models.
//!
//! 1. `--base` (ours) wins.
//! 2. `--use-cog-base-image`: `<registry>/cog-base:<tag>`, the tag made of the `cuda`, `python`
//!    and `torch` components Cog's configurations list (`r8.im` unless `COG_REGISTRY_HOST`).
//! 3. `gpu: true` unless `--use-cuda-base-image false`: the `nvidia/cuda` devel image for the
//!    config's CUDA and cuDNN (`cuda_compatibility.json`: CUDA matched at minor level, exact
//!    cuDNN, highest patch, newest Ubuntu).
//! 4. Otherwise our default, the base assembled from distribution packages (Cog's is
//!    `python:X.Y-slim`, which is what we use when no assembled base is at hand).
//!
//! Cog also tries the cog-base image when `--use-cog-base-image` is not given and falls back
//! with a warning when it does not exist; we only use it when asked (decision in
//! docs/decisions.md, "GPU base images").
use crate::base::BaseImage;
use crate::config::compat::{self, TORCH_MATRIX, strip_modifier, version_greater, version_matches};

/// `nvidia/cuda` images older than this have no cog-base image (`MinimumCUDAVersion`).
pub const MINIMUM_CUDA_VERSION: &str = "11.6";
/// `MinimumPythonVersion` of Cog's base images.
pub const MINIMUM_PYTHON_VERSION: &str = "3.10";
/// `MinimumTorchVersion` of Cog's base images.
pub const MINIMUM_TORCH_VERSION: &str = "1.13.1";
/// The repository of Cog's base images on its registry.
pub const COG_BASE_IMAGE_NAME: &str = "cog-base";
/// Cog's registry when `COG_REGISTRY_HOST` is not set.
pub const DEFAULT_REGISTRY_HOST: &str = "r8.im";

/// `--use-cuda-base-image`: Cog reads anything but `false` as yes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UseCudaBaseImage {
    #[default]
    Auto,
    True,
    False,
}

/// The base-choosing flags of `cog build` and the commands that build. `None`: not given (Cog
/// tells a flag left alone from one set to its default value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseFlags {
    pub use_cog_base_image: Option<bool>,
    pub use_cuda_base_image: Option<UseCudaBaseImage>,
}

/// What a choice is made from: the config's resolved versions and the command's flags.
#[derive(Debug, Clone, Default)]
pub struct BaseRequest<'a> {
    pub gpu: bool,
    /// `build.cuda` / `build.cudnn` as the config completed them (GPU configs only).
    pub cuda: Option<&'a str>,
    pub cudnn: Option<&'a str>,
    /// `build.python_version` as written.
    pub python_version: Option<&'a str>,
    /// The version the requirements pin torch to (`2.1.0`, `2.1.0+cu118`), if any.
    pub torch_version: Option<&'a str>,
    /// `--base`.
    pub base_arg: Option<BaseImage>,
    /// Our default base for this project (assembled from packages), when there is one.
    pub assembled: Option<BaseImage>,
    pub flags: BaseFlags,
    /// `COG_REGISTRY_HOST`, else `r8.im`.
    pub registry_host: &'a str,
}

impl<'a> BaseRequest<'a> {
    /// The request for a loaded config (versions as the config completed them).
    pub fn for_config(config: &'a crate::config::Config, torch_version: Option<&'a str>) -> Self {
        let build = &config.build;
        Self {
            gpu: build.gpu,
            cuda: build.cuda.as_deref(),
            cudnn: build.cudnn.as_deref(),
            python_version: Some(build.python_version.as_str()).filter(|v| !v.is_empty()),
            torch_version,
            registry_host: DEFAULT_REGISTRY_HOST,
            ..Self::default()
        }
    }
}

/// `COG_REGISTRY_HOST`, else `r8.im`.
pub fn registry_host() -> String {
    std::env::var("COG_REGISTRY_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_REGISTRY_HOST.to_owned())
}

/// The base and, in words, why it was chosen (`cog plan` prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChoice {
    pub base: BaseImage,
    pub reason: String,
    /// The cog-base image's name (`r8.im/cog-base:cuda12.1-python3.11-torch2.1.0`), for the
    /// `run.cog.cog-base-image-*` labels.
    pub cog_base_image: Option<String>,
    /// Our default (a CPU model): the caller may put the assembled base in its place.
    pub default: bool,
    /// The `nvidia/cuda` image Cog's rule picked for `gpu: true`.
    pub cuda_image: bool,
}

/// A base cannot be chosen; the messages are Cog's where Cog has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("The flags {} are mutually exclusive: you can only set one of them.", .0.join(" and "))]
    MutuallyExclusive(Vec<&'static str>),
    #[error(
        "unsupported base image configuration: CUDA: {} / Python: {} / Torch: {}",
        none(.cuda), none(.python), none(.torch)
    )]
    UnsupportedCogBase {
        cuda: String,
        python: String,
        torch: String,
    },
    #[error("no matching base image for CUDA {cuda} and CuDNN {cudnn}")]
    NoCudaBase { cuda: String, cudnn: String },
    #[error("invalid build.python_version {0:?}")]
    PythonVersion(String),
    #[error("no base image: cog.yaml has no build.python_version and no --base was given")]
    NoPython,
}

fn none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

/// One of Cog's base images (`BaseImageConfiguration`): empty strings for absent components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseConfiguration {
    pub cuda: String,
    pub python: String,
    pub torch: String,
}

/// Cog's `BaseImageConfigurations`: every torch row (Python >= 3.10, torch >= 1.13.1, CUDA >=
/// 11.6 for GPU rows), then each Python with each CUDA, then each Python alone.
pub fn base_image_configurations() -> Vec<BaseConfiguration> {
    let mut configs = Vec::new();
    let mut pythons: Vec<String> = Vec::new();
    let mut cudas: Vec<String> = Vec::new();
    for row in TORCH_MATRIX.iter() {
        for python in &row.pythons {
            if !greater_or_equal(python, MINIMUM_PYTHON_VERSION)
                || !greater_or_equal(&row.torch, MINIMUM_TORCH_VERSION)
            {
                continue;
            }
            match &row.cuda {
                None => configs.push(BaseConfiguration {
                    cuda: String::new(),
                    python: python.clone(),
                    torch: row.torch.clone(),
                }),
                Some(cuda) if greater_or_equal(cuda, MINIMUM_CUDA_VERSION) => {
                    configs.push(BaseConfiguration {
                        cuda: cuda.clone(),
                        python: python.clone(),
                        torch: row.torch.clone(),
                    });
                    if !pythons.contains(python) {
                        pythons.push(python.clone());
                    }
                    if !cudas.contains(cuda) {
                        cudas.push(cuda.clone());
                    }
                }
                Some(_) => {}
            }
        }
    }
    for python in &pythons {
        for cuda in &cudas {
            configs.push(BaseConfiguration {
                cuda: cuda.clone(),
                python: python.clone(),
                torch: String::new(),
            });
        }
    }
    for python in &pythons {
        configs.push(BaseConfiguration {
            cuda: String::new(),
            python: python.clone(),
            torch: String::new(),
        });
    }
    configs
}

fn greater_or_equal(a: &str, b: &str) -> bool {
    match (compat::Version::parse(a), compat::Version::parse(b)) {
        (Some(_), Some(_)) => version_greater(a, b) || !version_greater(b, a),
        _ => a == b,
    }
}

/// Cog's `isVersionCompatible`: both absent, or both present and matching.
fn compatible(conf: &str, requested: &str) -> bool {
    if conf.is_empty() || requested.is_empty() {
        return conf == requested;
    }
    version_matches(requested, conf)
}

/// Cog's `baseImageComponentNormalisation` and `BaseImageConfigurationExists`: the newest
/// torch patch among the configurations that fit, and whether any fits.
fn normalise(cuda: &str, python: &str, torch: &str) -> (String, bool) {
    let mut torch_found = String::new();
    let mut valid = false;
    let configs = base_image_configurations();
    for conf in &configs {
        if compatible(&conf.cuda, cuda)
            && compatible(&conf.python, python)
            && compatible(&conf.torch, torch)
            && (torch_found.is_empty() || version_greater(&conf.torch, &torch_found))
        {
            strip_modifier(&conf.torch).clone_into(&mut torch_found);
        }
    }
    for conf in &configs {
        if compatible(&conf.cuda, cuda)
            && compatible(&conf.python, python)
            && compatible(&conf.torch, &torch_found)
        {
            valid = true;
        }
    }
    (torch_found, valid)
}

/// `major.minor` of a version (Cog's `StripPatch`).
fn strip_patch(v: &str) -> String {
    match compat::Version::parse(v) {
        Some(v) => format!("{}.{}", v.major, v.minor),
        None => v.to_owned(),
    }
}

/// Cog's `BaseImageName` for already normalised components.
pub fn cog_base_image_name(host: &str, cuda: &str, python: &str, torch: &str) -> String {
    let mut components = Vec::new();
    if !cuda.is_empty() {
        components.push(format!("cuda{}", strip_patch(cuda)));
    }
    if !python.is_empty() {
        components.push(format!("python{}", strip_patch(python)));
    }
    if !torch.is_empty() {
        components.push(format!("torch{}", strip_modifier(torch)));
    }
    let tag = if components.is_empty() {
        "latest".to_owned()
    } else {
        components.join("-")
    };
    format!("{host}/{COG_BASE_IMAGE_NAME}:{tag}")
}

/// The cog-base image for a config (Cog's `determineBaseImageName` without the registry check,
/// which the caller does): Python's patch stripped, torch normalised to the newest patch.
pub fn cog_base_image_for(
    host: &str,
    cuda: &str,
    python: &str,
    torch: &str,
) -> Result<String, SelectError> {
    let python = if python.is_empty() {
        String::new()
    } else {
        let v = compat::Version::parse(python)
            .ok_or_else(|| SelectError::PythonVersion(python.to_owned()))?;
        format!("{}.{}", v.major, v.minor)
    };
    let (torch, valid) = normalise(cuda, &python, torch);
    if !valid {
        return Err(SelectError::UnsupportedCogBase {
            cuda: cuda.to_owned(),
            python,
            torch,
        });
    }
    Ok(cog_base_image_name(host, cuda, &python, &torch))
}

/// The `nvidia/cuda` image for a CUDA/cuDNN pair (Cog's `CUDABaseImageTag`).
pub fn cuda_base_image(cuda: &str, cudnn: &str) -> Result<String, SelectError> {
    compat::cuda_base_image_for(cuda, cudnn).ok_or_else(|| SelectError::NoCudaBase {
        cuda: cuda.to_owned(),
        cudnn: cudnn.to_owned(),
    })
}

/// Chooses the base (see the module's documentation for the order).
pub fn choose(request: &BaseRequest<'_>) -> Result<BaseChoice, SelectError> {
    let mut set = Vec::new();
    if request.base_arg.is_some() {
        set.push("--base");
    }
    if request.flags.use_cog_base_image.is_some() {
        set.push("--use-cog-base-image");
    }
    if request.flags.use_cuda_base_image.is_some() {
        set.push("--use-cuda-base-image");
    }
    if set.len() > 1 {
        return Err(SelectError::MutuallyExclusive(set));
    }
    if let Some(base) = &request.base_arg {
        return Ok(BaseChoice {
            base: base.clone(),
            reason: "--base".into(),
            cog_base_image: None,
            default: false,
            cuda_image: false,
        });
    }
    // Cog reads `build.cuda` as it is: completed for GPU configs, as written otherwise.
    let cuda = request.cuda.unwrap_or_default();
    if request.flags.use_cog_base_image == Some(true) {
        let name = cog_base_image_for(
            request.registry_host,
            cuda,
            request.python_version.unwrap_or_default(),
            request.torch_version.unwrap_or_default(),
        )?;
        return Ok(BaseChoice {
            base: BaseImage::Registry {
                reference: name.clone(),
            },
            reason: "--use-cog-base-image: Cog's base image for this CUDA, Python and torch".into(),
            cog_base_image: Some(name),
            default: false,
            cuda_image: false,
        });
    }
    if request.gpu && request.flags.use_cuda_base_image != Some(UseCudaBaseImage::False) {
        let cudnn = request.cudnn.unwrap_or_default();
        let reference = cuda_base_image(cuda, cudnn)?;
        let from = match request.torch_version {
            Some(torch) if !torch.is_empty() => {
                format!(" (build.cuda from torch=={torch} when not set)")
            }
            _ => String::new(),
        };
        return Ok(BaseChoice {
            base: BaseImage::Registry { reference },
            reason: format!(
                "gpu: true: the nvidia/cuda devel image for CUDA {cuda} and cuDNN {cudnn}{from}"
            ),
            cog_base_image: None,
            default: false,
            cuda_image: true,
        });
    }
    if let Some(assembled) = &request.assembled {
        return Ok(BaseChoice {
            base: assembled.clone(),
            reason: default_reason(request.gpu),
            cog_base_image: None,
            default: true,
            cuda_image: false,
        });
    }
    let why_cpu = if request.gpu {
        "--use-cuda-base-image false"
    } else {
        "a CPU model"
    };
    let Some(python) = request.python_version else {
        return Err(SelectError::NoPython);
    };
    // Cog strips the patch version when it picks a base.
    let minor = strip_patch(python);
    Ok(BaseChoice {
        base: BaseImage::Registry {
            reference: format!("python:{minor}-slim"),
        },
        reason: format!("{why_cpu}: Cog's python:X.Y-slim"),
        cog_base_image: None,
        default: true,
        cuda_image: false,
    })
}

/// Why the assembled base was chosen.
pub fn default_reason(gpu: bool) -> String {
    let why = if gpu {
        "--use-cuda-base-image false"
    } else {
        "a CPU model"
    };
    format!("{why}: the default base, assembled from distribution packages")
}

#[cfg(test)]
mod tests;
