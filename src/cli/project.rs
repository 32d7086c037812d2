//! Gathers everything a plan needs from the project directory: config, `.dockerignore`, git.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config;
use crate::plan::{BaseImage, Project};

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
    let max = config.max_concurrency();
    let inputs = Project {
        config_file_name,
        config_file_contents,
        python_version,
        gpu: config.build.gpu,
        predict_ref: config.predict.clone(),
        train_ref: config.train.clone(),
        environment: config.parsed_environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        config_label: config.label_json(None),
        concurrency_max: (max > 1).then_some(max as u32),
        openapi_schema: None,
        dockerignore: read_dockerignore(&dir)?,
        base_override: options.base.map(BaseImage::parse),
        platform: options.platform.to_string(),
        cog_version: super::VERSION.to_string(),
        git_revision: git(&dir, &["rev-parse", "HEAD"]),
        git_tag: git(&dir, &["describe", "--tags", "--exact-match", "HEAD"]),
    };
    Ok(LoadedProject { dir, config, inputs })
}

/// The patterns of `.dockerignore`: one per line, `#` comments and blank lines dropped.
fn read_dockerignore(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(".dockerignore");
    match fs_err::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()),
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
