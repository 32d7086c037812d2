//! What the blocks know about the project: plain data, gathered once by the resolve stage.
use serde::Serialize;

use super::{BaseImage, PythonLayout};

/// A base chosen on the command line (`--base`), overriding the stack's default.
pub type BaseOverride = BaseImage;

/// The inputs of a plan. Everything here is data already read from disk; blocks do no I/O.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanInputs {
    /// Name of the config file inside the project (`cog.yaml`, or what `-f` named).
    pub config_file_name: String,
    /// Contents of that config file (copied to `/src/cog.yaml` when it has another name).
    pub config_file_contents: String,
    /// `build.python_version` as written, if any.
    pub python_version: Option<String>,
    pub gpu: bool,
    /// `run:` (or the deprecated `predict:`) reference, `predict.py:Predictor`.
    pub predict_ref: Option<String>,
    pub train_ref: Option<String>,
    /// `environment:` entries, in the order Cog emits them (sorted by name).
    pub environment: Vec<(String, String)>,
    /// JSON of the effective config, for the `run.cog.config` label.
    pub config_label: String,
    /// Max concurrency: `concurrency.max`, else `@cog.concurrent(max=N)`.
    pub concurrency_max: Option<u32>,
    /// The OpenAPI document written into the image, and its compact label form.
    pub openapi_schema: Option<(String, String)>,
    /// Set instead of `openapi_schema` when the schema needs the runtime path: why, one line
    /// per value static evaluation could not compute.
    pub runtime_schema: Option<Vec<String>>,
    /// Patterns from the project's `.dockerignore`.
    pub dockerignore: Vec<String>,
    /// The project's large files (weights), put in layers of their own below the code.
    pub large_files: LargeFiles,
    /// Managed weights: `/.cog/weights.json` (spec 3.3: each weight's name, target and set
    /// digest, from `weights.lock`); `None` without `weights:` in cog.yaml or a lock.
    pub weights_manifest: Option<String>,
    pub base_override: Option<BaseOverride>,
    /// The default base when there is no override: assembled from packages (a `BaseImage::Assembled`).
    pub assembled_base: Option<BaseImage>,
    /// The base the build starts from, as the resolve stage chose it (Cog's rule, reference
    /// 5.2); `None` in plans made without the resolve stage (then `base_override`, else
    /// `assembled_base`, else `python:X.Y-slim`).
    pub base: Option<BaseImage>,
    /// Why that base was chosen, in words (`cog plan` prints it).
    pub base_reason: Option<String>,
    /// The cog-base image's name when `--use-cog-base-image` chose it (its labels).
    pub cog_base_image: Option<String>,
    /// Where the base's Python is (None: no `build.python_version`).
    pub python: Option<PythonLayout>,
    /// The project's Python dependencies, resolved (from the lock when inputs are unchanged).
    pub python_packages: Vec<wheels::LockedPackage>,
    /// `build.system_packages`, resolved against the base's distribution (new packages only).
    pub system_packages: Option<debian::Lock>,
    /// `build.run` items, then the deprecated `build.pre_install` commands, in Cog's order.
    pub commands: Vec<crate::config::RunItem>,
    /// `COG_CA_CERT`: PEM certificates the image trusts (for the proxies of `build.run`'s
    /// downloads, and the model's own HTTPS calls).
    pub ca_cert: Option<String>,
    /// The cog SDK and coglet wheels built from this repository.
    pub runtime_wheels: Vec<wheels::LockedPackage>,
    /// Target platform, `os/arch[/variant]`.
    pub platform: String,
    /// Version of this CLI (the `run.cog.version` label).
    pub cog_version: String,
    /// Git HEAD and tag of the project, when it is a repository.
    pub git_revision: Option<String>,
    pub git_tag: Option<String>,
}

/// The project's large files, as the resolve stage found them (sorted by path). Each goes into
/// a layer of its own; the source layer leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LargeFiles {
    /// Files of at least this many bytes get a layer each (0: the split is off).
    pub threshold: u64,
    /// At or over the threshold: one layer each.
    pub alone: Vec<FoundFile>,
    /// Known weight formats (`.safetensors`, `.bin`, ...) under the threshold but not tiny:
    /// grouped in one layer.
    pub grouped: Vec<FoundFile>,
}

impl LargeFiles {
    /// Every file split out of the source layer.
    pub fn all(&self) -> impl Iterator<Item = &FoundFile> {
        self.alone.iter().chain(&self.grouped)
    }
}

/// A file of the project split out of the source layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundFile {
    /// Relative to the project directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Whether a sample of it compresses by 10% or more (else it is stored as plain tar).
    pub compressible: bool,
}
