//! Gathers everything a plan needs from the project directory: config, `.dockerignore`, git.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config;
use crate::plan::{BaseImage, Project};

use super::{python_packages, system_packages};

/// A loaded project: where it is, its config, and the plan inputs derived from them.
#[derive(Debug)]
pub struct LoadedProject {
    pub dir: PathBuf,
    pub config: config::Config,
    pub inputs: Project,
}

/// Options that shape the plan, from the command line.
#[derive(Debug, Default)]
pub struct ProjectOptions<'a> {
    pub config_file: Option<&'a str>,
    pub base: Option<&'a str>,
    pub platform: &'a str,
    /// `--openapi-schema FILE` (else `$COG_OPENAPI_SCHEMA`): use this document instead of
    /// generating one.
    pub openapi_schema: Option<&'a Path>,
    /// Resolve Python requirements again even when the lock matches (`--upgrade`).
    pub upgrade: bool,
    /// Resolve packages (off for `cog plan` without `--resolve`: planning then needs no network).
    pub resolve: bool,
    /// Plain HTTP to a `--base` registry that is not on loopback (`--insecure`).
    pub insecure_registry: bool,
}

pub fn load(options: &ProjectOptions<'_>) -> Result<LoadedProject> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let (dir, config_path) = config::find_project(&cwd, options.config_file)?;
    let loaded = config::load(&dir, &config_path)?;
    for warning in &loaded.warnings {
        eprintln!("⚠ {warning}");
    }
    let config = loaded.config;
    let config_file_name = config_path
        .strip_prefix(&dir)
        .unwrap_or(&config_path)
        .to_string_lossy()
        .into_owned();
    let config_file_contents = fs_err::read_to_string(&config_path)?;
    let python_version = Some(config.build.python_version.clone()).filter(|v| !v.is_empty());
    let schema = load_schema(&dir, &config, options.openapi_schema)?;
    let base_override = options.base.map(BaseImage::parse).transpose()?;
    // The default base is assembled from distribution packages, pinned by a lock; `cog plan`
    // without `--resolve` shows it only when the lock already exists.
    let assembled = match (&base_override, &python_version) {
        (None, Some(version))
            if options.resolve || dir.join(system_packages::BASE_LOCK_FILE).is_file() =>
        {
            Some(system_packages::resolve(
                &dir,
                &config,
                version,
                options.platform,
                options.upgrade,
            )?)
        }
        _ => None,
    };
    // With --base, system packages are resolved against that image's distribution.
    let base_system_packages = match &base_override {
        Some(base) => system_packages::resolve_on_base(
            &dir,
            &config,
            base,
            options.platform,
            options.upgrade,
            options.resolve,
            options.insecure_registry,
        )?,
        None => None,
    };
    let python = python_version
        .as_deref()
        .map(|v| python_packages::layout_for(v, assembled.is_some()));
    let (python_packages, runtime_wheels) = match (&python_version, options.resolve) {
        (Some(version), true) => {
            let target =
                python_packages::target(version, options.platform, python_packages::DEFAULT_GLIBC)?;
            let packages = python_packages::resolve(&dir, &config, &target, options.upgrade)?;
            let runtime = python_packages::runtime_wheels(target.arch)?;
            if runtime.is_none() {
                eprintln!(
                    "⚠ the cog SDK and coglet wheels were not found (set COG_SDK_WHEEL and COGLET_WHEEL, or run python/build-wheels.sh): the image will have no prediction server"
                );
            }
            (packages, runtime.unwrap_or_default())
        }
        _ => (Vec::new(), Vec::new()),
    };
    let concurrency_max = effective_concurrency(&config, schema.as_ref())?;
    let inputs = Project {
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
        openapi_schema: schema.map(|s| (s.document, s.label)),
        dockerignore: read_dockerignore(&dir)?,
        base_override,
        assembled_base: assembled.as_ref().map(|a| a.base.clone()),
        system_packages: assembled
            .and_then(|a| a.system_packages)
            .or(base_system_packages),
        python,
        python_packages,
        runtime_wheels,
        platform: options.platform.to_string(),
        cog_version: super::VERSION.to_string(),
        git_revision: git(&dir, &["rev-parse", "HEAD"]),
        git_tag: git(&dir, &["describe", "--tags", "--exact-match", "HEAD"]),
    };
    Ok(LoadedProject {
        dir,
        config,
        inputs,
    })
}

/// The schema document: from `--openapi-schema`/`COG_OPENAPI_SCHEMA`, else generated
/// statically from the runner (Cog 0.22's default), else none when cog.yaml names no runner.
fn load_schema(
    dir: &Path,
    config: &config::Config,
    file: Option<&Path>,
) -> Result<Option<crate::schema::SchemaOutput>> {
    let env_file = std::env::var_os("COG_OPENAPI_SCHEMA").map(PathBuf::from);
    if let Some(file) = file.map(Path::to_path_buf).or(env_file) {
        let text = fs_err::read_to_string(&file)?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON OpenAPI document", file.display()))?;
        let label = serde_json::to_string(&value)?;
        return Ok(Some(crate::schema::SchemaOutput {
            document: text,
            label,
            concurrency_max: None,
            run_is_async: false,
            predict: None,
            train: None,
        }));
    }
    if config.predict.is_none() && config.train.is_none() {
        return Ok(None);
    }
    let schema = crate::schema::generate(dir, config.predict.as_deref(), config.train.as_deref())?;
    Ok(Some(schema))
}

/// `concurrency.max` (deprecated) wins over `@cog.concurrent(max=N)`; above 1 the runner must be
/// async (Cog checks this at build time).
fn effective_concurrency(
    config: &config::Config,
    schema: Option<&crate::schema::SchemaOutput>,
) -> Result<Option<u32>> {
    let from_config = config.concurrency.flatten().filter(|max| *max >= 1);
    let max = match (from_config, schema.and_then(|s| s.concurrency_max)) {
        (Some(max), _) => u32::try_from(max).ok(),
        (None, decorator) => decorator,
    };
    if let (Some(max), Some(schema)) = (max, schema) {
        let parsed = schema.predict.is_some() || schema.train.is_some();
        if max > 1 && parsed && !schema.run_is_async {
            bail!("concurrency.max > 1 requires an async run() or predict() method");
        }
    }
    Ok(max.filter(|m| *m > 1))
}

/// The patterns of the project's `.dockerignore`, read as Docker reads them.
fn read_dockerignore(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(".dockerignore");
    match fs_err::read_to_string(&path) {
        Ok(text) => Ok(layers::parse_dockerignore(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
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
