//! The resolve stage, between config and plan: a project directory, its `cog.yaml` and the
//! command's options become a [`Project`] whose [`PlanInputs`] hold everything the blocks need,
//! already read and pinned: the schema, the base image, the wheel and apt locks (written next to
//! cog.yaml as [`LockMode`] allows), the runtime wheels and git metadata.
//!
//! [`Project::open`] reads only the directory (config and static schema: what `cog run` needs to
//! validate inputs before any build); [`Project::resolve`] does the rest, with the network when
//! `Options::network` allows it.
mod ca_cert;
pub mod large_files;
mod lockfile;
mod python;
pub mod runtime_wheels;
mod system;

use std::path::{Path, PathBuf};

pub use lockfile::{LockError, LockMode};
pub use python::{DEFAULT_GLIBC, sdist_builder, target as python_target};
pub use system::BASE_LOCK_FILE;

use crate::base::BaseImage;
use crate::base::select::{self, BaseFlags, BaseRequest, SelectError};
use crate::config::{self, Config, ConfigError};
use crate::plan::{PlanInputs, PythonLayout};
use crate::schema::runtime::{Deferred, Generated};
use crate::schema::{SchemaError, SchemaOutput};
use crate::session::Session;

/// What a command asks of the resolve stage.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// `-f`: the config file (default `cog.yaml`), looked for from the current directory up.
    pub config_file: Option<&'a str>,
    /// `--base`: a registry reference, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
    /// `docker-archive:FILE` or `scratch`.
    pub base: Option<&'a str>,
    pub platform: &'a str,
    /// `--openapi-schema FILE` (else `$COG_OPENAPI_SCHEMA`): use this document instead of
    /// generating one.
    pub openapi_schema: Option<&'a Path>,
    pub lock_mode: LockMode,
    /// Resolve what the locks lack (off for `cog plan` without `--resolve`: planning then needs
    /// no network and uses only current locks).
    pub network: bool,
    /// `--use-cog-base-image`, `--use-cuda-base-image`.
    pub base_flags: BaseFlags,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            config_file: None,
            base: None,
            platform: "linux/amd64",
            openapi_schema: None,
            lock_mode: LockMode::Update,
            network: true,
            base_flags: BaseFlags::default(),
        }
    }
}

impl Options<'_> {
    fn config_file_name(&self) -> &str {
        self.config_file
            .filter(|f| !f.is_empty())
            .unwrap_or(config::DEFAULT_CONFIG_FILE)
    }
}

/// Errors of the resolve stage; each names the file, field, flag or package involved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("reading the current directory")]
    CurrentDir(#[source] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("{}: cog-rs cannot build this yet:\n  {}", .path.display(), .fields.join("\n  "))]
    Unsupported { path: PathBuf, fields: Vec<String> },
    #[error("{}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a JSON OpenAPI document", .path.display())]
    SchemaFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Weights(#[from] Box<crate::weights::WeightsError>),
    #[error("concurrency.max > 1 requires an async run() or predict() method")]
    Concurrency,
    #[error("--base {arg}")]
    BaseArg {
        arg: String,
        #[source]
        source: crate::oci::OciError,
    },
    #[error("--platform {platform}: {reason}")]
    Platform {
        platform: String,
        reason: &'static str,
    },
    #[error("--platform {platform}")]
    PlatformSyntax {
        platform: String,
        #[source]
        source: crate::oci::PlatformError,
    },
    #[error("invalid Python target")]
    Target(#[source] wheels::Error),
    #[error("reading the Python requirements")]
    Requirements(#[source] wheels::Error),
    #[error("the PyTorch index {url:?} (COG_PYTORCH_INDEX_URL) is not a URL")]
    TorchIndex { url: String },
    #[error("resolving the Python requirements of {}", .dir.display())]
    Wheels {
        dir: PathBuf,
        #[source]
        source: LockError<wheels::Error>,
    },
    #[error("{what}")]
    Debian {
        what: String,
        #[source]
        source: debian::Error,
    },
    #[error("{what}")]
    DebianLock {
        what: String,
        #[source]
        source: LockError<debian::Error>,
    },
    #[error("{field}: base image {base} has no Debian or Ubuntu system to install them on")]
    NoDistribution { field: String, base: String },
    #[error(transparent)]
    FetchBase(#[from] crate::base::BaseError),
    #[error(
        "{}={value}: not a size (bytes, or a number with K, M or G; `off` keeps large files in the source layer)",
        large_files::THRESHOLD_VAR
    )]
    LargeFileThreshold { value: String },
    #[error("{}", .path.display())]
    Dockerignore {
        path: PathBuf,
        #[source]
        source: layers::Error,
    },
    #[error(transparent)]
    BaseChoice(#[from] SelectError),
    #[error(
        "build.gpu: base image {base} has no Python on its PATH and is not a Debian or Ubuntu image to install python{python} on: Cog installs Python {python} with uv, cog-rs installs it only from a Debian or Ubuntu archive yet; pass --base with a CUDA image that has Python {python} (or --use-cog-base-image, or mirror {base} with one that has it)"
    )]
    NoPythonOnBase { base: String, python: String },
    #[error(
        "build.python_version {python}: base image {base} runs Python {found} ({interpreter}); cog-rs does not install another Python onto a base yet"
    )]
    PythonMismatch {
        base: String,
        interpreter: String,
        found: String,
        python: String,
    },
    #[error("base image {base}: looking for its Python")]
    BasePython {
        base: String,
        #[source]
        source: crate::base::python::PythonError,
    },
    #[error("COG_CA_CERT: {reason}")]
    CaCert { reason: String },
    #[error(transparent)]
    RuntimeWheels(#[from] runtime_wheels::RuntimeWheelError),
}

/// A Cog project: where it is, its config, its schema and, once resolved, the plan inputs.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub config: Config,
    /// The OpenAPI document: `--openapi-schema`, else generated from the runner; `None` when
    /// cog.yaml names no runner, or when it needs the runtime path (`deferred`).
    pub schema: Option<SchemaOutput>,
    /// The schema's values static evaluation could not compute: the build completes it by
    /// importing the runner in the image (see `schema::runtime`).
    pub deferred: Option<Deferred>,
}

impl Project {
    /// Finds cog.yaml from the current directory up, loads and validates it, and generates the
    /// schema. Reads only the project directory. Config warnings go to the session's reporter.
    pub fn open(session: &Session, options: &Options<'_>) -> Result<Self, ResolveError> {
        let cwd = std::env::current_dir().map_err(ResolveError::CurrentDir)?;
        let (dir, config_path) = config::find_project(&cwd, options.config_file)?;
        let loaded = config::load(&dir, &config_path)?;
        for warning in &loaded.warnings {
            session.reporter.warning(&warning.to_string());
        }
        for warning in &loaded.support.warnings {
            session.reporter.warning(warning);
        }
        if !loaded.support.errors.is_empty() {
            return Err(ResolveError::Unsupported {
                path: config_path,
                fields: loaded.support.errors,
            });
        }
        let config = loaded.config;
        let (schema, deferred) = match load_schema(&dir, &config, options.openapi_schema)? {
            None => (None, None),
            Some(Generated::Static(schema)) => (Some(*schema), None),
            Some(Generated::Runtime(deferred)) => {
                session.reporter.message(&format!(
                    "schema: {} value(s) cannot be computed statically; the build reads them from the predictor imported in the image (as Cog <= 0.16 did):\n  {}",
                    deferred.questions().count(),
                    deferred.reasons().join("\n  ")
                ));
                (None, Some(deferred))
            }
        };
        Ok(Self {
            dir,
            config_path,
            config,
            schema,
            deferred,
        })
    }

    /// The schema as JSON (`null` without a runner).
    pub fn schema_json(&self) -> Result<serde_json::Value, ResolveError> {
        match &self.schema {
            Some(s) => {
                serde_json::from_str(&s.document).map_err(|source| ResolveError::SchemaFile {
                    path: self.dir.join(".cog/openapi_schema.json"),
                    source,
                })
            }
            None => Ok(serde_json::Value::Null),
        }
    }

    /// Resolves the base, the packages and the runtime wheels into the plan's inputs.
    pub fn resolve(
        &self,
        session: &Session,
        options: &Options<'_>,
    ) -> Result<PlanInputs, ResolveError> {
        let config = &self.config;
        let dir = &self.dir;
        let config_file_name = self
            .config_path
            .strip_prefix(dir)
            .unwrap_or(&self.config_path)
            .to_string_lossy()
            .into_owned();
        let config_file_contents =
            fs_err::read_to_string(&self.config_path).map_err(|source| ResolveError::Io {
                path: self.config_path.clone(),
                source,
            })?;
        let python_version = Some(config.build.python_version.clone()).filter(|v| !v.is_empty());
        let base_override = options
            .base
            .map(|arg| {
                BaseImage::parse(arg).map_err(|source| ResolveError::BaseArg {
                    arg: arg.to_owned(),
                    source,
                })
            })
            .transpose()?;
        // Cog's rule (reference 5.2); a CPU model's default is assembled from distribution
        // packages, pinned by a lock.
        let torch_version = config.package_version("torch");
        let registry_host = select::registry_host();
        let mut request = BaseRequest::for_config(config, torch_version.as_deref());
        request.base_arg.clone_from(&base_override);
        request.flags = options.base_flags.clone();
        request.registry_host = registry_host.as_str();
        let mut choice = select::choose(&request)?;
        let assembled = match &python_version {
            Some(version) if choice.default => {
                system::resolve_assembled(session, dir, config, version, options)?
            }
            _ => None,
        };
        if let Some(assembled) = &assembled {
            choice.base = assembled.base.clone();
            choice.reason = select::default_reason(config.build.gpu);
        }
        // Any base but ours: its own Python, read from its layers (needs the base, so only when
        // resolving with the network; a plan without it assumes python.org's). A Debian or
        // Ubuntu base without it gets `python3.X` from its archive, with the system packages.
        let mut base_python_packages = Vec::new();
        let python = match python_version.as_deref() {
            Some(version)
                if options.network
                    && !choice.default
                    && !matches!(choice.base, BaseImage::Scratch) =>
            {
                Some(
                    match python_on_base(session, &choice.base, version, options)? {
                        BasePython::Found(layout) => layout,
                        BasePython::Missing { minor } => {
                            match system::archive_of(session, &choice.base, options)? {
                                Some(suite) => {
                                    session.reporter.message(&format!(
                                        "base image {} has no Python: python{minor} from {suite}",
                                        choice.base
                                    ));
                                    base_python_packages.push(format!("python{minor}"));
                                    PythonLayout {
                                        python_link: Some(format!("/usr/bin/python{minor}")),
                                        ..PythonLayout::debian(&minor)
                                    }
                                }
                                None if choice.cuda_image => {
                                    return Err(ResolveError::NoPythonOnBase {
                                        base: choice.base.to_string(),
                                        python: minor,
                                    });
                                }
                                None => {
                                    // build.run may bring it; packages go where python.org's
                                    // build would look.
                                    session.reporter.warning(&format!(
                                        "base image {} has no `python` or `python3` on its PATH and is not a Debian or Ubuntu image: the Python packages are installed for python.org's Python {minor} in /usr/local (cog-rs does not install Python onto such a base yet)",
                                        choice.base
                                    ));
                                    python::layout_for(&minor, false)
                                }
                            }
                        }
                    },
                )
            }
            Some(version) => Some(python::layout_for(version, assembled.is_some())),
            None => None,
        };
        // On any other base, system packages are resolved against that image's distribution.
        let base_system_packages = if choice.default {
            None
        } else {
            system::resolve_on_base(
                session,
                dir,
                config,
                &choice.base,
                &base_python_packages,
                options,
            )?
        };
        let system_packages = assembled
            .as_ref()
            .and_then(|a| a.system_packages.clone())
            .or(base_system_packages);
        // Source distributions build in the image's environment: the base and its system
        // packages (made only when a build needs them).
        let builder = match (
            &python,
            Some(&choice.base).filter(|b| !matches!(b, BaseImage::Scratch)),
        ) {
            (Some(layout), Some(base)) if options.network => Some(python::sdist_builder(
                session,
                base.clone(),
                system_packages.clone(),
                layout.clone(),
                options.platform,
                config
                    .parsed_environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                layers::Compression::default(),
            )?),
            _ => None,
        };
        let (python_packages, runtime_wheels) = match &python_version {
            Some(version) if options.network => {
                let target = python::target(version, options.platform)?;
                let packages = python::resolve(session, dir, config, &target, options, builder)?;
                let runtime = runtime_wheels::find(session, &target)?;
                (packages, runtime)
            }
            Some(version) => {
                let target = python::target(version, options.platform)?;
                let packages = python::resolve(session, dir, config, &target, options, None)?;
                (packages, Vec::new())
            }
            None => (Vec::new(), Vec::new()),
        };
        let decorator = match (&self.schema, &self.deferred) {
            (Some(s), _) if s.predict.is_some() || s.train.is_some() => {
                Some((s.concurrency_max, s.run_is_async))
            }
            (_, Some(d)) => Some(d.concurrency()),
            _ => None,
        };
        let concurrency_max = effective_concurrency(config, decorator)?;
        let dockerignore = read_dockerignore(dir)?;
        let mut source_excludes = dockerignore.clone();
        source_excludes.push(".cog".to_string());
        let large_files =
            large_files::scan(dir, &source_excludes, large_files::threshold_from_env()?)?;
        let weights_manifest = crate::weights::runtime_manifest(dir, config).map_err(Box::new)?;
        Ok(PlanInputs {
            weights_manifest,
            config_file_name,
            config_file_contents,
            python_version,
            gpu: config.build.gpu,
            predict_ref: config.predict.clone(),
            train_ref: config.train.clone(),
            environment: config
                .parsed_environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            config_label: config.label_json(concurrency_max.map(i64::from)),
            concurrency_max,
            openapi_schema: self
                .schema
                .as_ref()
                .map(|s| (s.document.clone(), s.label.clone())),
            runtime_schema: self.deferred.as_ref().map(Deferred::reasons),
            dockerignore,
            large_files,
            base_override,
            assembled_base: assembled.as_ref().map(|a| a.base.clone()),
            base: Some(choice.base.clone()),
            base_reason: Some(choice.reason.clone()),
            cog_base_image: choice.cog_base_image.clone(),
            system_packages,
            python,
            python_packages,
            commands: config.build.commands(),
            ca_cert: ca_cert::from_env()?,
            runtime_wheels,
            platform: options.platform.to_string(),
            cog_version: crate::VERSION.to_string(),
            git_revision: git(dir, &["rev-parse", "HEAD"]),
            git_tag: git(dir, &["describe", "--tags", "--exact-match", "HEAD"]),
        })
    }
}

/// The Python a base has, or what it lacks.
enum BasePython {
    /// Where its Python imports packages from.
    Found(PythonLayout),
    /// No `python` or `python3` on its `PATH`; `X.Y` is wanted.
    Missing { minor: String },
}

/// `--platform`, parsed.
pub(crate) fn parse_platform(platform: &str) -> Result<crate::oci::Platform, ResolveError> {
    platform
        .parse()
        .map_err(|source| ResolveError::PlatformSyntax {
            platform: platform.to_owned(),
            source,
        })
}

/// `base` brought into the session's store for `platform` (`--platform`).
pub(crate) fn fetch_base_for(
    session: &Session,
    base: &BaseImage,
    platform: &str,
) -> Result<crate::base::FetchedBase, ResolveError> {
    let platform = parse_platform(platform)?;
    Ok(session.block_on(crate::base::fetch_base(session, base, &platform))?)
}

/// Where the base's own Python imports packages from (`crate::base::python`).
fn python_on_base(
    session: &Session,
    base: &BaseImage,
    version: &str,
    options: &Options<'_>,
) -> Result<BasePython, ResolveError> {
    let fetched = fetch_base_for(session, base, options.platform)?;
    let tree =
        crate::base::python::BaseTree::read(&session.store, &fetched.layers).map_err(|source| {
            ResolveError::BasePython {
                base: base.to_string(),
                source,
            }
        })?;
    let env = fetched
        .config
        .as_ref()
        .and_then(|c| c.config.as_ref())
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    let wanted: Vec<&str> = version.split('.').take(2).collect();
    let wanted = wanted.join(".");
    let Some(found) = tree.python(&crate::base::python::path_env(&env)) else {
        return Ok(BasePython::Missing { minor: wanted });
    };
    match (&found.version, found.layout) {
        (Some(found_version), Some(layout)) if *found_version == wanted => {
            tracing::debug!(?layout, "python on the base");
            Ok(BasePython::Found(layout))
        }
        (found_version, _) => Err(ResolveError::PythonMismatch {
            base: base.to_string(),
            interpreter: found.interpreter,
            found: found_version.clone().unwrap_or_else(|| "unknown".into()),
            python: wanted,
        }),
    }
}

/// The schema document: from `--openapi-schema`/`COG_OPENAPI_SCHEMA`, else generated
/// statically from the runner (Cog 0.22's default; what static evaluation cannot compute is
/// left to the build's runtime path), else none when cog.yaml names no runner.
fn load_schema(
    dir: &Path,
    config: &Config,
    file: Option<&Path>,
) -> Result<Option<Generated>, ResolveError> {
    let env_file = std::env::var_os("COG_OPENAPI_SCHEMA").map(PathBuf::from);
    if let Some(path) = file.map(Path::to_path_buf).or(env_file) {
        let document = fs_err::read_to_string(&path).map_err(|source| ResolveError::Io {
            path: path.clone(),
            source,
        })?;
        let value: serde_json::Value = serde_json::from_str(&document)
            .map_err(|source| ResolveError::SchemaFile { path, source })?;
        return Ok(Some(Generated::Static(Box::new(SchemaOutput {
            label: value.to_string(),
            document,
            concurrency_max: None,
            run_is_async: false,
            predict: None,
            train: None,
        }))));
    }
    if config.predict.is_none() && config.train.is_none() {
        return Ok(None);
    }
    let schema = crate::schema::runtime::generate_or_defer(
        dir,
        config.predict.as_deref(),
        config.train.as_deref(),
    )?;
    Ok(Some(schema))
}

/// `concurrency.max` (deprecated) wins over `@cog.concurrent(max=N)`; above 1 the runner must be
/// async (Cog checks this at build time). `decorator`: `(max, async)` of the parsed runner
/// (`None` when it was not parsed: `--openapi-schema`, no runner).
fn effective_concurrency(
    config: &Config,
    decorator: Option<(Option<u32>, bool)>,
) -> Result<Option<u32>, ResolveError> {
    let from_config = config.concurrency.flatten().filter(|max| *max >= 1);
    let max = match (from_config, decorator.and_then(|(max, _)| max)) {
        (Some(max), _) => u32::try_from(max).ok(),
        (None, decorator) => decorator,
    };
    if let (Some(max), Some((_, is_async))) = (max, decorator)
        && max > 1
        && !is_async
    {
        return Err(ResolveError::Concurrency);
    }
    Ok(max.filter(|m| *m > 1))
}

/// The patterns of the project's `.dockerignore`, read as Docker reads them.
fn read_dockerignore(dir: &Path) -> Result<Vec<String>, ResolveError> {
    let path = dir.join(".dockerignore");
    match fs_err::read_to_string(&path) {
        Ok(text) => Ok(layers::parse_dockerignore(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(ResolveError::Io { path, source }),
    }
}

/// Output of a git command in `dir`, when git is installed and `dir` is in a repository.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
