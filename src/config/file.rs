//! The raw cog.yaml as written: every field optional, so "not set" differs from "set to zero".
//! Mirrors Cog's `configFile` (only the fields Cog 0.22 knows; other keys are dropped).

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigFile {
    pub build: Option<BuildFile>,
    pub image: Option<String>,
    pub model: Option<String>,
    pub run: Option<String>,
    pub predict: Option<String>,
    pub train: Option<String>,
    pub concurrency: Option<ConcurrencyFile>,
    pub environment: Option<Vec<String>>,
    pub weights: Option<Vec<WeightFile>>,
    /// Keys Cog's decoder drops, with their line (`build.fast`, `tests`, typos).
    pub ignored: Vec<(String, usize)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildFile {
    pub gpu: Option<bool>,
    pub python_version: Option<String>,
    pub python_requirements: Option<String>,
    pub run: Option<Vec<RunItem>>,
    pub system_packages: Option<Vec<String>>,
    pub cuda: Option<String>,
    pub cudnn: Option<String>,
    pub sdk_version: Option<String>,
    pub python_packages: Option<Vec<String>>,
    pub pre_install: Option<Vec<String>>,
}

/// One `build.run` entry: a string, or `{command, mounts}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunItem {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConcurrencyFile {
    pub max: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightFile {
    pub name: String,
    pub target: String,
    /// A single source object, or a list of them; empty when absent.
    pub source: Vec<WeightSource>,
    /// Whether `source` was written as a list (kept for the label JSON).
    pub source_is_list: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WeightSource {
    pub uri: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl ConfigFile {
    /// `run:` wins over the deprecated `predict:`.
    pub fn resolved_run(&self) -> Option<&str> {
        self.run.as_deref().or(self.predict.as_deref())
    }
}
