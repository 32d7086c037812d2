//! The completed [`Config`]: defaults applied, requirements read, CUDA/cuDNN resolved, the
//! environment parsed. Also what Cog derives from it: the `run.cog.config` label and the
//! architecture-specific requirements.txt.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use super::compat;
use super::env::parse_environment;
use super::error::{Issue, Warning};
use super::file::{ConfigFile, RunItem, WeightFile, WeightSource};
use super::requirements::{self, LocalArtifact};

/// Used by templates when a config has no `build` section (Cog's `DefaultPythonVersion`).
pub const DEFAULT_PYTHON_VERSION: &str = "3.13";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub build: Build,
    pub image: Option<String>,
    pub model: Option<String>,
    /// `run:`, or the deprecated `predict:` (Cog stores both as `Predict`).
    pub predict: Option<String>,
    pub train: Option<String>,
    /// `concurrency.max` from cog.yaml; `Some(None)` when `concurrency:` has no `max`.
    pub concurrency: Option<Option<i64>>,
    /// `environment:` as written.
    pub environment: Vec<String>,
    /// `environment:` parsed, in file order.
    pub parsed_environment: IndexMap<String, String>,
    pub weights: Vec<WeightFile>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Build {
    pub gpu: bool,
    /// As written; empty only when cog.yaml has no `build` section.
    pub python_version: String,
    /// The `python_requirements` path as written.
    pub python_requirements: Option<String>,
    pub python_packages: Vec<String>,
    /// `build.run` items (see [`Build::commands`] for what the image runs).
    pub run: Vec<RunItem>,
    pub system_packages: Vec<String>,
    pub pre_install: Vec<String>,
    /// Resolved when `gpu` is true.
    pub cuda: Option<String>,
    pub cudnn: Option<String>,
    pub sdk_version: Option<String>,
    /// What the requirements (file or `python_packages`) say.
    pub requirements: PythonRequirements,
}

/// Requirement lines for the wheels crate, with what Cog's config layer already checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PythonRequirements {
    /// Absolute path of the requirements file, when one is used.
    pub file: Option<PathBuf>,
    /// Logical lines (comments dropped, continuations joined), `cog`/`coglet` removed.
    pub lines: Vec<String>,
    /// Bare local wheel/sdist paths among `lines`, resolved inside the project.
    pub local_artifacts: Vec<LocalArtifact>,
}

impl Build {
    /// The commands the image runs, in order: `run` items, then the deprecated `pre_install`.
    pub fn commands(&self) -> Vec<RunItem> {
        let pre_install = self.pre_install.iter().map(|command| RunItem {
            command: command.clone(),
            mounts: Vec::new(),
        });
        self.run.iter().cloned().chain(pre_install).collect()
    }
}

impl Config {
    /// The Python version to build with: as written, else Cog's default.
    pub fn python_version(&self) -> &str {
        if self.build.python_version.is_empty() {
            DEFAULT_PYTHON_VERSION
        } else {
            &self.build.python_version
        }
    }

    /// `max` from cog.yaml (default 1); the decorator value, when the schema has one, wins.
    pub fn max_concurrency(&self) -> i64 {
        self.concurrency.flatten().unwrap_or(1)
    }

    pub fn package_version(&self, name: &str) -> Option<String> {
        requirements::package_version(&self.build.requirements.lines, name)
    }

    /// The `nvidia/cuda` base image for the resolved CUDA/cuDNN (GPU configs only).
    pub fn cuda_base_image(&self) -> Option<String> {
        compat::cuda_base_image_for(self.build.cuda.as_deref()?, self.build.cudnn.as_deref()?)
    }

    /// The JSON Cog writes into the `run.cog.config` label: Go's encoding of its `Config`
    /// struct (field order, `omitempty`, `run:` as `predict`, HTML-safe escaping).
    /// `effective_max_concurrency` is the `@cog.concurrent(max=N)` value found in the runner,
    /// which Cog writes into the label in place of cog.yaml's.
    pub fn label_json(&self, effective_max_concurrency: Option<i64>) -> String {
        let concurrency = match effective_max_concurrency {
            Some(max) => Some(LabelConcurrency { max }),
            None => self.concurrency.map(|max| LabelConcurrency {
                max: max.unwrap_or(0),
            }),
        };
        let label = LabelConfig {
            build: LabelBuild {
                gpu: self.build.gpu,
                python_version: &self.build.python_version,
                python_requirements: self
                    .build
                    .python_requirements
                    .as_deref()
                    .unwrap_or_default(),
                python_packages: &self.build.python_packages,
                run: &self.build.run,
                system_packages: &self.build.system_packages,
                pre_install: &self.build.pre_install,
                cuda: self.build.cuda.as_deref().unwrap_or_default(),
                cudnn: self.build.cudnn.as_deref().unwrap_or_default(),
                sdk_version: self.build.sdk_version.as_deref().unwrap_or_default(),
            },
            image: self.image.as_deref().unwrap_or_default(),
            model: self.model.as_deref().unwrap_or_default(),
            predict: self.predict.as_deref().unwrap_or_default(),
            train: self.train.as_deref().unwrap_or_default(),
            concurrency,
            environment: &self.environment,
            weights: self
                .weights
                .iter()
                .map(|w| LabelWeight {
                    name: &w.name,
                    target: &w.target,
                    source: LabelSource(&w.source),
                })
                .collect(),
        };
        // Serializing plain structs of strings cannot fail.
        go_html_escape(&serde_json::to_string(&label).unwrap_or_default())
    }

    /// Cog's `PythonRequirementsForArch`: the requirements.txt the image installs, with torch
    /// and torchvision pinned to the wheel for the target (CUDA index for GPU, `+cpu` for CPU)
    /// and their index options hoisted to the top. `arch` is Go's GOARCH (`amd64`, `arm64`).
    /// `include_packages` are appended unless the requirements already name them.
    pub fn python_requirements_for_arch(
        &self,
        arch: &str,
        include_packages: &[String],
    ) -> (String, Vec<Warning>) {
        let mut warnings = Vec::new();
        let mut packages = Vec::new();
        let mut find_links: Vec<String> = Vec::new();
        let mut extra_index_urls: Vec<String> = Vec::new();
        let mut include: Vec<(String, String)> = include_packages
            .iter()
            .map(|p| (requirements::package_name(p).to_owned(), p.clone()))
            .collect();
        for line in &self.build.requirements.lines {
            let (package, links, urls) = self.package_for_arch(line, arch, &mut warnings);
            for link in links {
                if !find_links.contains(&link) {
                    find_links.push(link);
                }
            }
            for url in urls {
                if !extra_index_urls.contains(&url) {
                    extra_index_urls.push(url);
                }
            }
            let name = requirements::package_name(&package);
            if !name.is_empty()
                && let Some(i) = include.iter().position(|(n, _)| n == name)
            {
                include.remove(i);
            }
            packages.push(package);
        }
        packages.extend(include.into_iter().map(|(_, line)| line));
        // Go iterates a map here (random order); sorted is the deterministic equivalent.
        find_links.sort();
        extra_index_urls.sort();
        let mut lines: Vec<String> = find_links
            .into_iter()
            .map(|l| format!("--find-links {l}"))
            .collect();
        lines.extend(
            extra_index_urls
                .into_iter()
                .map(|u| format!("--extra-index-url {u}")),
        );
        lines.extend(packages);
        (lines.join("\n"), warnings)
    }

    /// One requirement line as Cog rewrites it for the target (`PythonRequirementsForArch` on
    /// one line): the line, its find-links and extra index URLs, and Cog's warnings.
    pub fn requirement_for_arch(
        &self,
        line: &str,
        arch: &str,
    ) -> (String, Vec<String>, Vec<String>, Vec<Warning>) {
        let mut warnings = Vec::new();
        let (package, links, urls) = self.package_for_arch(line, arch, &mut warnings);
        (package, links, urls, warnings)
    }

    fn package_for_arch(
        &self,
        line: &str,
        arch: &str,
        warnings: &mut Vec<Warning>,
    ) -> (String, Vec<String>, Vec<String>) {
        let Some(pinned) = requirements::split_pinned(line) else {
            return (line.to_owned(), Vec::new(), Vec::new());
        };
        if !pinned.extra_index_urls.is_empty() {
            return (
                format!("{}=={}", pinned.name, pinned.version),
                pinned.find_links,
                pinned.extra_index_urls,
            );
        }
        let cuda = self.build.cuda.as_deref().unwrap_or_default();
        let resolved = match pinned.name.as_str() {
            "tensorflow" if self.build.gpu => match compat::tf_gpu_package(&pinned.version, cuda) {
                Some((name, version)) => compat::ArchPackage {
                    name,
                    version,
                    ..compat::ArchPackage::default()
                },
                // Cog writes an empty name here; keep the user's pin instead of a broken line.
                None => compat::ArchPackage {
                    name: pinned.name.clone(),
                    version: pinned.version.clone(),
                    ..Default::default()
                },
            },
            "torch" if self.build.gpu => compat::torch_gpu_package(&pinned.version, cuda),
            "torch" => compat::torch_cpu_package("torch", &pinned.version, arch),
            "torchvision" if self.build.gpu => {
                let (package, warning) = compat::torchvision_gpu_package(&pinned.version, cuda);
                warnings.extend(warning.map(Warning::Other));
                package
            }
            "torchvision" => compat::torch_cpu_package("torchvision", &pinned.version, arch),
            _ => compat::ArchPackage {
                name: pinned.name.clone(),
                version: pinned.version.clone(),
                ..Default::default()
            },
        };
        let mut package = resolved.name;
        if !resolved.version.is_empty() {
            package = format!("{package}=={}", resolved.version);
        }
        let mut find_links = pinned.find_links;
        if !resolved.find_links.is_empty() {
            find_links = vec![resolved.find_links];
        }
        let urls = if resolved.extra_index_url.is_empty() {
            Vec::new()
        } else {
            vec![resolved.extra_index_url]
        };
        (package, find_links, urls)
    }
}

#[derive(Serialize)]
struct LabelConfig<'a> {
    build: LabelBuild<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    image: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    model: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    predict: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    train: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<LabelConcurrency>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    environment: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    weights: Vec<LabelWeight<'a>>,
}

#[derive(Serialize)]
struct LabelBuild<'a> {
    #[serde(skip_serializing_if = "is_false")]
    gpu: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    python_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    python_requirements: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    python_packages: &'a [String],
    #[serde(skip_serializing_if = "<[RunItem]>::is_empty")]
    run: &'a [RunItem],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    system_packages: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pre_install: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    cuda: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    cudnn: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    sdk_version: &'a str,
}

#[derive(Serialize)]
struct LabelConcurrency {
    #[serde(skip_serializing_if = "is_zero")]
    max: i64,
}

#[derive(Serialize)]
struct LabelWeight<'a> {
    name: &'a str,
    target: &'a str,
    source: LabelSource<'a>,
}

/// One source is written as an object, several as a list (Cog's `WeightSourceList`).
struct LabelSource<'a>(&'a [WeightSource]);

impl Serialize for LabelSource<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            [] => serializer.serialize_none(),
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029; they only occur inside strings.
fn go_html_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Turns a validated [`ConfigFile`] into a [`Config`] (Cog's conversion plus `Complete`).
pub fn complete(
    file: &ConfigFile,
    project_dir: &Path,
) -> Result<(Config, Vec<Warning>), Vec<Issue>> {
    let mut warnings = Vec::new();
    let raw = file.build.clone().unwrap_or_default();
    let run = raw.run.clone().unwrap_or_default();
    let pre_install = raw.pre_install.clone().unwrap_or_default();
    let mut build = Build {
        gpu: raw.gpu.unwrap_or(false),
        python_version: match (&file.build, &raw.python_version) {
            (_, Some(version)) => version.clone(),
            (Some(_), None) => DEFAULT_PYTHON_VERSION.to_owned(),
            (None, None) => String::new(),
        },
        python_requirements: raw.python_requirements.clone().filter(|p| !p.is_empty()),
        python_packages: raw.python_packages.clone().unwrap_or_default(),
        run,
        system_packages: raw.system_packages.clone().unwrap_or_default(),
        pre_install,
        cuda: raw.cuda.clone().filter(|c| !c.is_empty()),
        cudnn: raw.cudnn.clone().filter(|c| !c.is_empty()),
        sdk_version: raw.sdk_version.clone().filter(|s| !s.is_empty()),
        requirements: PythonRequirements::default(),
    };
    build.requirements = read_requirements(&build, project_dir, &mut warnings)?;
    let parsed_environment = parse_environment(file.environment.as_deref().unwrap_or_default())
        .map_err(|m| vec![Issue::invalid("environment", "", m)])?;
    let mut config = Config {
        build,
        image: file.image.clone().filter(|s| !s.is_empty()),
        model: file.model.clone().filter(|s| !s.is_empty()),
        predict: file
            .resolved_run()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        train: file.train.clone().filter(|s| !s.is_empty()),
        concurrency: file.concurrency.as_ref().map(|c| c.max),
        environment: file.environment.clone().unwrap_or_default(),
        parsed_environment,
        weights: file.weights.clone().unwrap_or_default(),
    };
    if config.build.gpu {
        resolve_cuda(&mut config, &mut warnings).map_err(|m| vec![Issue::Other(m)])?;
    }
    Ok((config, warnings))
}

fn read_requirements(
    build: &Build,
    project_dir: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<PythonRequirements, Vec<Issue>> {
    let Some(path) = &build.python_requirements else {
        return Ok(PythonRequirements {
            file: None,
            lines: build.python_packages.clone(),
            local_artifacts: Vec::new(),
        });
    };
    let file = project_dir.join(path);
    let lines = requirements::read_lines(&file).map_err(|e| {
        vec![Issue::Other(format!(
            "failed to open python_requirements file: {e}"
        ))]
    })?;
    let requirements_dir = file.parent().unwrap_or(project_dir);
    let mut kept = Vec::new();
    let mut local_artifacts = Vec::new();
    let mut issues = Vec::new();
    for line in lines {
        if requirements::is_managed_package(&line) {
            warnings.push(Warning::Other(format!(
                "Ignoring {} in {path}: cog and coglet are installed by Cog itself",
                crate::go::quote(line.trim())
            )));
            continue;
        }
        match requirements::local_artifact(&line) {
            Ok(Some(artifact)) => {
                match requirements::resolve_local_artifact(artifact, requirements_dir, project_dir)
                {
                    Ok(resolved) => local_artifacts.push(LocalArtifact {
                        line: line.clone(),
                        path: resolved,
                    }),
                    Err(message) => issues.push(Issue::invalid(
                        "build.python_requirements",
                        path.as_str(),
                        message,
                    )),
                }
            }
            Ok(None) => {}
            Err(message) => issues.push(Issue::invalid(
                "build.python_requirements",
                path.as_str(),
                message,
            )),
        }
        kept.push(line);
    }
    if issues.is_empty() {
        Ok(PythonRequirements {
            file: Some(file),
            lines: kept,
            local_artifacts,
        })
    } else {
        Err(issues)
    }
}

/// Cog's `validateAndCompleteCUDA`: CUDA and cuDNN from TensorFlow, torch, or the default.
fn resolve_cuda(config: &mut Config, warnings: &mut Vec<Warning>) -> Result<(), String> {
    let torch = config.package_version("torch");
    let tf = config.package_version("tensorflow");
    let build = &mut config.build;
    if let Some(tf_version) = tf {
        let known = compat::cuda_from_tf(&tf_version);
        match (&build.cuda, &known) {
            (None, None) => {
                return Err(format!(
                    "Cog doesn't know what CUDA version is compatible with tensorflow=={tf_version}. You might need to upgrade Cog: https://github.com/replicate/cog#upgrade\n\nIf that doesn't work, you need to set the 'cuda' option in cog.yaml to set what version to use. You might be able to find this out from https://www.tensorflow.org/"
                ));
            }
            (None, Some((tf_cuda, _))) => build.cuda = Some(tf_cuda.clone()),
            (Some(cuda), Some((tf_cuda, _))) if !compat::version_equal_minor(tf_cuda, cuda) => {
                warnings.push(Warning::Other(format!(
                    "Cog doesn't know if CUDA {cuda} is compatible with Tensorflow {tf_version}. This might cause CUDA problems."
                )));
                warnings.push(Warning::Other(format!("Try {tf_cuda} instead?")));
            }
            _ => {}
        }
        match (&build.cudnn, &known) {
            (None, Some((_, tf_cudnn))) => build.cudnn = Some(tf_cudnn.clone()),
            (None, None) => {
                build.cudnn = Some(compat::latest_cudnn_for_cuda(
                    build.cuda.as_deref().unwrap_or_default(),
                )?);
            }
            (Some(cudnn), Some((_, tf_cudnn))) if cudnn != tf_cudnn => {
                return Err(format!(
                    "The specified cuDNN version {cudnn} is not compatible with tensorflow=={tf_version}.\nCompatible cuDNN version is: {tf_cudnn}"
                ));
            }
            _ => {}
        }
        return Ok(());
    }
    if let Some(torch_version) = torch {
        let cudas = compat::cudas_from_torch(&torch_version);
        match &build.cuda {
            None if torch_version.is_empty() => {
                return Err("torch version must be specified when using CUDA".to_owned());
            }
            None => {
                let latest = compat::latest_cuda_from(&cudas).ok_or_else(|| {
                    format!(
                        "Cog doesn't know what CUDA version is compatible with torch=={torch_version}. You might need to upgrade Cog: https://github.com/replicate/cog#upgrade\n\nIf that doesn't work, you need to set the 'cuda' option in cog.yaml to set what version to use. You might be able to find this out from https://pytorch.org/"
                    )
                })?;
                build.cuda = Some(latest);
            }
            Some(cuda) if !cudas.iter().any(|c| compat::version_equal_minor(c, cuda)) => {
                warnings.push(Warning::Other(format!(
                    "Cog doesn't know if CUDA {cuda} is compatible with PyTorch {torch_version}. This might cause CUDA problems."
                )));
                if let Some(last) = cudas.last() {
                    warnings.push(Warning::Other(format!("Try {last} instead?")));
                }
            }
            Some(_) => {}
        }
    } else if build.cuda.is_none() {
        build.cuda = Some(compat::DEFAULT_CUDA.to_owned());
    }
    if build.cudnn.is_none() {
        build.cudnn = Some(compat::latest_cudnn_for_cuda(
            build.cuda.as_deref().unwrap_or_default(),
        )?);
    }
    Ok(())
}
