//! `cog.yaml`, read exactly as Cog 0.22 reads it.
//!
//! Flow: [`find_project`] walks up from the working directory; [`load`] parses the YAML (a
//! libyaml-based reader, like Cog's Go YAML library), decodes it with Go's typing rules,
//! validates it against the schema and Cog's semantic rules (collecting every error and
//! deprecation warning), then completes it: requirements read, CUDA/cuDNN resolved, environment
//! parsed. Every message is Cog's.

pub mod compat;
mod decode;
mod env;
mod error;
mod file;
mod image_name;
mod model;
mod requirements;
mod schema;
pub mod support;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};

pub use compat::{CudaBaseImage, TfCompatibility, TorchCompatibility};
pub use env::DENY_LIST as ENVIRONMENT_DENY_LIST;
pub use error::{ConfigError, Issue, Warning};
pub use file::{Mount, RunItem, WeightFile, WeightSource};
pub use image_name::default_image_name;
pub use model::{Build, Config, DEFAULT_PYTHON_VERSION, PythonRequirements};
pub use requirements::{
    LocalArtifact, package_name, parse_lines as parse_requirement_lines,
    versions as requirement_versions,
};

/// The config file name Cog looks for (`-f/--file` default).
pub const DEFAULT_CONFIG_FILE: &str = "cog.yaml";

/// How far up [`find_project`] walks (Cog's `maxSearchDepth`).
const MAX_SEARCH_DEPTH: usize = 100;

/// A loaded config and the warnings the CLI should print.
#[derive(Debug, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
    /// What cog-rs cannot do yet, and the fields it ignores as Cog does ([`support`]).
    pub support: support::Findings,
}

/// Finds the project: the nearest directory, from `cwd` upwards, holding `file_flag` (default
/// `cog.yaml`). Returns the project directory and the config file's path. An absolute
/// `file_flag` names the file directly.
pub fn find_project(
    cwd: &Path,
    file_flag: Option<&str>,
) -> Result<(PathBuf, PathBuf), ConfigError> {
    let file = file_flag
        .filter(|f| !f.is_empty())
        .unwrap_or(DEFAULT_CONFIG_FILE);
    let not_found = || ConfigError::NotFound {
        file: file.to_owned(),
        dir: cwd.to_path_buf(),
    };
    if Path::new(file).is_absolute() {
        let path = PathBuf::from(file);
        if !path.is_file() {
            return Err(not_found());
        }
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        return Ok((dir, path));
    }
    let mut dir = cwd.to_path_buf();
    for _ in 0..MAX_SEARCH_DEPTH {
        let candidate = dir.join(file);
        match std::fs::metadata(&candidate) {
            Ok(_) => {
                let project = candidate
                    .parent()
                    .map_or_else(|| dir.clone(), Path::to_path_buf);
                return Ok((project, candidate));
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory => {}
            Err(source) => {
                return Err(ConfigError::Io {
                    path: candidate,
                    source,
                });
            }
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => return Err(not_found()),
        }
    }
    Err(not_found())
}

/// Loads, validates and completes the config at `config_path` for the project in `project_dir`.
pub fn load(project_dir: &Path, config_path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = fs_err::read(config_path).map_err(|source| ConfigError::Io {
        path: config_path.to_path_buf(),
        source,
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => load_str(project_dir, config_path, text),
        // Not UTF-8: let the YAML reader report where, in Cog's words.
        Err(_) => Err(ConfigError::Parse {
            path: config_path.to_path_buf(),
            message: yaml::parse_bytes(&bytes)
                .err()
                .map_or_else(|| "yaml: invalid UTF-8".to_owned(), |e| e.0),
        }),
    }
}

/// [`load`] on text already read (`config_path` is only used in messages).
pub fn load_str(project_dir: &Path, config_path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let parse_error = |message: String| ConfigError::Parse {
        path: config_path.to_path_buf(),
        message,
    };
    let root = yaml::parse(text).map_err(|e| parse_error(e.0))?;
    let file = decode::decode(root.as_ref()).map_err(|e| parse_error(e.0))?;
    let outcome = validate::validate(&file, project_dir);
    if !outcome.issues.is_empty() {
        return Err(ConfigError::Invalid {
            path: config_path.to_path_buf(),
            issues: outcome.issues,
        });
    }
    let (config, completion_warnings) =
        model::complete(&file, project_dir).map_err(|issues| ConfigError::Invalid {
            path: config_path.to_path_buf(),
            issues,
        })?;
    let mut warnings = outcome.warnings;
    warnings.extend(completion_warnings);
    let support = support::check(&file);
    tracing::debug!(path = %config_path.display(), cuda = ?config.build.cuda, cudnn = ?config.build.cudnn, "loaded config");
    Ok(Loaded {
        config,
        warnings,
        support,
    })
}

#[cfg(test)]
mod tests;
