//! Managed weights (Cog's `weights:` in cog.yaml; spec `specs/draft-weights.md` upstream):
//! named sets of files imported from a directory or a URL into OCI artifacts of their own,
//! pushed to `<model>/weights/<name>:<timestamp>`, recorded in `weights.lock`, kept in a local
//! content store of files, and bind-mounted read-only into `cog run` / `cog serve` containers.
//! `cog push` pushes the model as an OCI index of the image and the weight manifests.
//!
//! - [`lock`]: `weights.lock` (Cog's format) and the drift check `cog build` runs.
//! - [`source`]: directories and URLs, include/exclude.
//! - [`pack`]: files -> layers (big files alone and uncompressed, small ones bundled).
//! - [`artifact`]: config blob, manifest, index entries.
//! - [`store`]: the local content store of files.
//! - [`import`], [`pull`], [`status`]: the `cog weights` commands; [`mount`]: run/serve.
pub mod artifact;
pub mod import;
pub mod lock;
pub mod mount;
pub mod pack;
pub mod pull;
pub mod source;
pub mod status;
pub mod store;

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::oci::Reference;

pub use lock::{LOCK_FILE, WeightsLock};
pub use store::FileStore;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{}: {reason}", .path.display())]
    InvalidLock { path: PathBuf, reason: String },
    #[error("{0}")]
    Drift(String),
    #[error("weight {weight:?} source {uri}: {reason}")]
    Source {
        weight: String,
        uri: String,
        reason: String,
    },
    #[error("{what}: expected {expected}, got {actual}")]
    Mismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid digest: {0}")]
    Digest(String),
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("writing a layer")]
    Layer(#[from] layers::Error),
    #[error("registry")]
    Registry(#[source] Box<crate::registry::RegistryError>),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<crate::registry::RegistryError> for WeightsError {
    fn from(error: crate::registry::RegistryError) -> Self {
        WeightsError::Registry(Box::new(error))
    }
}

/// The project's `weights.lock`.
pub fn lock_path(project_dir: &Path) -> PathBuf {
    project_dir.join(LOCK_FILE)
}

/// Fails with Cog's message when cog.yaml's weights and `weights.lock` disagree (a weight not
/// imported, removed, or whose target or source changed). Nothing to check without weights.
pub fn check_drift(
    project_dir: &Path,
    config: &Config,
) -> Result<Option<WeightsLock>, WeightsError> {
    if config.weights.is_empty() {
        return Ok(None);
    }
    let lock = WeightsLock::load(&lock_path(project_dir))?;
    let found = lock::drift(&config.weights, lock.as_ref())?;
    if !found.is_empty() {
        return Err(WeightsError::Drift(lock::drift_message(&found)));
    }
    Ok(lock)
}

/// `/.cog/weights.json` (spec 3.3) for the image: the name, target and set digest of each
/// weight of the lock. `None` without `weights:` in cog.yaml, or without a lock (a build stops
/// on the drift check first).
pub fn runtime_manifest(
    project_dir: &Path,
    config: &Config,
) -> Result<Option<String>, WeightsError> {
    if config.weights.is_empty() {
        return Ok(None);
    }
    let Some(lock) = WeightsLock::load(&lock_path(project_dir))? else {
        return Ok(None);
    };
    let weights: Vec<serde_json::Value> = lock
        .weights
        .iter()
        .map(|w| serde_json::json!({"name": w.name, "target": w.target, "setDigest": w.set_digest}))
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "weights": weights }))
        .unwrap_or_default();
    text.push('\n');
    Ok(Some(text))
}

/// The model's repository (`registry/repo`, no tag), as Cog resolves it for weights: `COG_MODEL`,
/// else `model` in cog.yaml (or `COG_MODEL_REPO`) on `COG_MODEL_REGISTRY`, else its own
/// registry, else r8.im.
pub fn model_repository(config: &Config, config_file: &str) -> Result<String, WeightsError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(full) = env("COG_MODEL") {
        let reference = Reference::parse(&full)
            .map_err(|e| WeightsError::Usage(format!("invalid COG_MODEL value: {e}")))?;
        return Ok(format!(
            "{}/{}",
            reference.registry(),
            reference.repository()
        ));
    }
    let model = env("COG_MODEL_REPO").or_else(|| config.model.clone());
    let Some(model) = model else {
        if config.image.is_some() {
            return Err(WeightsError::Usage(format!(
                "weight commands require 'model' in {config_file}, not 'image' — rename 'image' to 'model'"
            )));
        }
        return Err(WeightsError::Usage(format!(
            "weight commands require a model ref: set 'model' in {config_file}, or export COG_MODEL / COG_MODEL_REPO"
        )));
    };
    let (host, path) = match model.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first.to_string()), rest.to_string())
        }
        _ => (None, model.clone()),
    };
    let registry = env("COG_MODEL_REGISTRY")
        .or(host)
        .unwrap_or_else(|| "r8.im".to_string());
    if registry.contains('/') || registry.contains('@') {
        return Err(WeightsError::Usage(format!(
            "invalid COG_MODEL_REGISTRY {registry:?}: must be a bare host (no path, tag, or digest)"
        )));
    }
    let repository = format!("{registry}/{path}");
    Reference::parse(&repository)
        .map_err(|e| WeightsError::Usage(format!("invalid model ref {repository:?}: {e}")))?;
    Ok(repository)
}

/// `<model>/weights/<name>` with `tag` (or `@digest`).
pub fn weight_reference(
    repository: &str,
    name: &str,
    tag: &str,
) -> Result<Reference, WeightsError> {
    let separator = if tag.starts_with("sha256:") { '@' } else { ':' };
    let text = format!("{repository}/weights/{name}{separator}{tag}");
    Reference::parse(&text)
        .map_err(|e| WeightsError::Usage(format!("invalid weight reference {text:?}: {e}")))
}

/// Cog's timestamp tag: `YYYYMMDDTHHMMSSZ`, UTC.
pub fn timestamp_tag(now: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    now.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// Sizes as Cog prints them (`1.5GB`, `12.0MB`, `3.1KB`, `12B`).
pub fn format_size(bytes: u64) -> String {
    const KB: u64 = 1024;
    match bytes {
        b if b >= KB * KB * KB => format!("{:.1}GB", b as f64 / (KB * KB * KB) as f64),
        b if b >= KB * KB => format!("{:.1}MB", b as f64 / (KB * KB) as f64),
        b if b >= KB => format!("{:.1}KB", b as f64 / KB as f64),
        b => format!("{b}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_tags_are_compact_iso8601() {
        let t = time::macros::datetime!(2026-04-16 17:27:07 UTC);
        assert_eq!(timestamp_tag(t), "20260416T172707Z");
        assert_eq!(format_size(1536), "1.5KB");
        assert_eq!(format_size(12), "12B");
    }
}
