//! The build plan: pure data, produced by a [`Stack`] of [`Block`]s through a [`Composer`].
//!
//! A plan names every layer the image will have (in phase order), where its content comes from,
//! and the image settings (env, labels, entrypoint, ...). It holds no absolute paths and no
//! timestamps, so the same project gives the same plan on any machine (`cog plan --json`).
//! Blocks never run anything: they only add files and settings.

mod composer;
mod inputs;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::base::{BaseImage, PythonLayout};

pub use composer::Composer;
pub use inputs::{BaseOverride, FoundFile, LargeFiles, PlanInputs};

/// Version of the serialized plan format. Bump on any incompatible change.
pub const PLAN_VERSION: u32 = 2;

/// Build phases, in the order their layers appear in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The base image and operating-system packages.
    System,
    /// The Python interpreter and the cog runtime (SDK + coglet).
    Runtime,
    /// Framework wheels (torch, tensorflow): large, shared between models.
    Framework,
    /// The application's own Python dependencies.
    AppDeps,
    /// `build.run` (and `pre_install`) commands, run over the layers below, as Cog's `RUN`
    /// steps after its `pip install`.
    Commands,
    /// The project's large files (weights), each in a layer of its own, below the code: a
    /// code-only change leaves them untouched.
    Weights,
    /// The project source under `/src`.
    AppSource,
    /// Image settings only (env, labels, entrypoint): adds no layer.
    Config,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Runtime => "runtime",
            Self::Framework => "framework",
            Self::AppDeps => "app-deps",
            Self::Commands => "commands",
            Self::Weights => "weights",
            Self::AppSource => "app-source",
            Self::Config => "config",
        }
    }
}

/// One layer of the image, produced by one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStep {
    /// Stable identifier, unique within the plan (`source`, `openapi-schema`, ...).
    pub id: String,
    pub phase: Phase,
    /// The block that added it.
    pub block: String,
    /// What the image history says created this layer.
    pub created_by: String,
    pub content: LayerContent,
}

/// What goes into a layer. Paths on the host are relative to the project directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LayerContent {
    /// A directory tree of the project copied to `dest`, minus `.dockerignore`-style excludes.
    Tree {
        source: String,
        dest: String,
        excludes: Vec<String>,
    },
    /// Files whose content the plan carries (generated files, small configs).
    Files { files: Vec<InlineFile> },
    /// Debian/Ubuntu packages, pinned by version and hash, unpacked into one layer with the
    /// dpkg database updated (no maintainer scripts run).
    Debs { lock: debian::Lock },
    /// A command run with `/bin/sh -c` over the layers below (in the sandbox), its changes
    /// captured as the layer. `env` is the plan's environment so far, applied over the base
    /// image's as `ENV` lines would be.
    Run {
        command: String,
        env: Vec<(String, String)>,
        mounts: Vec<SecretMount>,
    },
    /// Files of the project copied to `/src/<path>`, no tree walk: the large files (weights)
    /// the source layer leaves out. `compress: false` when their data does not compress (a
    /// sample gained under 10%): written as plain tar, no CPU spent for nothing.
    ProjectFiles {
        files: Vec<ProjectFile>,
        compress: bool,
    },
    /// The OpenAPI schema (`/src/.cog/openapi_schema.json` and the `run.cog.openapi_schema`
    /// label) where static evaluation could not compute every value: the builder imports the
    /// runner with the image's Python over the layers below and completes the schema from
    /// what it reads (see `schema::runtime`). `reasons`: why, one line per value.
    RuntimeSchema {
        predict_ref: Option<String>,
        train_ref: Option<String>,
        reasons: Vec<String>,
    },
    /// Python wheels, pinned by name, version, URL and hash, installed into the image's Python.
    /// Becomes one layer per large wheel and a few stable groups of small ones.
    Wheels {
        python: PythonLayout,
        packages: Vec<wheels::LockedPackage>,
    },
}

/// A file of the project, as the resolve stage found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectFile {
    /// Relative to the project directory, `/`-separated.
    pub path: String,
    pub size: u64,
}

/// A secret the build provides (`cog build --secret id=ID,...`), read-only at `target` while its
/// command runs. Only the id is in the plan, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMount {
    pub id: String,
    pub target: String,
}

/// A generated file placed in a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineFile {
    /// Absolute path inside the image.
    pub path: String,
    /// Unix permission bits (normalized by the layer writer).
    pub mode: u32,
    pub contents: String,
    /// A symbolic link to this target instead of a file (`contents` empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Settings of the image config that blocks contribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSettings {
    /// Environment in the order it was set; a later set of the same name replaces the value in
    /// place. Serialized as `NAME=value` strings, as in an OCI image config.
    #[serde(with = "env_pairs")]
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub exposed_ports: Vec<String>,
    /// OCI manifest annotations (revision, version).
    pub annotations: BTreeMap<String, String>,
}

mod env_pairs {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(env: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(env.iter().map(|(k, v)| format!("{k}={v}")))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Err(D::Error::custom(format!(
                    "env entry {kv:?} is not NAME=value"
                ))),
            })
            .collect()
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    /// The stack that produced it (`python`).
    pub stack: String,
    /// Target platform (`linux/amd64`).
    pub platform: String,
    pub base: BaseImage,
    /// Why this base (Cog's rule, a flag, `--base`); absent in plans made by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_reason: Option<String>,
    pub layers: Vec<LayerStep>,
    pub image: ImageSettings,
}

impl Plan {
    /// The plan as pretty JSON (what `cog plan --json` prints).
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Errors while planning a build.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("block {block}: {message}")]
    Block {
        block: &'static str,
        message: String,
    },
    #[error("layer id {0:?} is used twice in the plan")]
    DuplicateLayer(String),
}

/// A unit of build knowledge: looks at the project and adds layers and settings.
pub trait Block {
    fn name(&self) -> &'static str;
    /// Whether this block has anything to add for this project.
    fn applies(&self, _inputs: &PlanInputs) -> bool {
        true
    }
    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError>;
}

/// A family of projects (Python, for now) and the ordered blocks that build them.
pub trait Stack {
    fn name(&self) -> &'static str;
    fn blocks(&self) -> Vec<Box<dyn Block>>;

    /// Run every applicable block through a composer and return the plan.
    fn plan(&self, inputs: &PlanInputs) -> Result<Plan, PlanError> {
        let mut composer = Composer::new(self.name(), inputs);
        for block in self.blocks() {
            if block.applies(inputs) {
                composer.enter_block(block.name());
                block.contribute(inputs, &mut composer)?;
            }
        }
        composer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trips_through_json() {
        let plan = Plan {
            version: PLAN_VERSION,
            stack: "python".into(),
            platform: "linux/amd64".into(),
            base: BaseImage::Scratch,
            base_reason: Some("--base".into()),
            layers: vec![],
            image: ImageSettings {
                env: vec![("A".into(), "b=c".into())],
                ..ImageSettings::default()
            },
        };
        let back: Plan = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn phases_order_as_the_design_says() {
        let mut phases = [
            Phase::Config,
            Phase::AppSource,
            Phase::System,
            Phase::AppDeps,
            Phase::Framework,
            Phase::Runtime,
            Phase::Commands,
            Phase::Weights,
        ];
        phases.sort();
        let names: Vec<_> = phases.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "system",
                "runtime",
                "framework",
                "app-deps",
                "commands",
                "weights",
                "app-source",
                "config"
            ]
        );
    }
}
