//! A source's `[build-system]` table (PEP 517/518), read as pip reads it: what a lock records
//! of a source build, and what the builder is asked to run.
use std::path::Path;
use std::sync::Arc;

use pep508_rs::Requirement;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};

/// A source's `[build-system]` table (PEP 517/518), with pip's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BuildSystem {
    /// PEP 508 requirements of the build environment.
    pub requires: Vec<String>,
    /// `module:object` of the backend.
    #[serde(rename = "build-backend")]
    pub build_backend: String,
    /// Directories of the source tree to put first on `sys.path` (in-tree backends).
    #[serde(
        rename = "backend-path",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub backend_path: Vec<String>,
}

impl BuildSystem {
    /// The backend pip uses for a source without `build-backend` (setup.py projects).
    pub const LEGACY_BACKEND: &'static str = "setuptools.build_meta:__legacy__";

    /// pip's choice for a source without a `[build-system]` table (or without pyproject.toml).
    pub fn pip_default() -> Self {
        Self {
            requires: vec!["setuptools>=40.8.0".into()],
            build_backend: Self::LEGACY_BACKEND.into(),
            backend_path: Vec::new(),
        }
    }

    /// Reads `[build-system]` of a `pyproject.toml` (`None`: the source has none) as pip does;
    /// `file` names it in errors.
    pub fn from_pyproject(text: Option<&str>, file: &str) -> Result<Self> {
        let Some(text) = text else {
            return Ok(Self::pip_default());
        };
        let bad = |message: String| Error::Pyproject {
            file: file.to_string(),
            message,
            source: None,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| Error::Pyproject {
            file: file.to_string(),
            message: "invalid TOML".into(),
            source: Some(Arc::new(e)),
        })?;
        let Some(system) = table.get("build-system") else {
            return Ok(Self::pip_default());
        };
        let system = system
            .as_table()
            .ok_or_else(|| bad("[build-system] must be a table".into()))?;
        let strings = |key: &str| -> Result<Option<Vec<String>>> {
            let Some(v) = system.get(key) else {
                return Ok(None);
            };
            v.as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .map(Some)
                .ok_or_else(|| bad(format!("[build-system] {key} must be a list of strings")))
        };
        let requires = strings("requires")?.ok_or_else(|| {
            bad("the [build-system] table is missing the mandatory `requires` key (pip refuses it too)".into())
        })?;
        for r in &requires {
            Requirement::<Url>::parse(r, Path::new(".")).map_err(|e| Error::Pyproject {
                file: file.to_string(),
                message: format!("[build-system] requires: invalid requirement {r:?}"),
                source: Some(Arc::new(e)),
            })?;
        }
        let build_backend = match system.get("build-backend") {
            None => Self::LEGACY_BACKEND.to_string(),
            Some(v) => v
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| bad("[build-system] build-backend must be a string".into()))?
                .to_string(),
        };
        let backend_path = strings("backend-path")?.unwrap_or_default();
        for p in &backend_path {
            safe_path::relative_path(p).map_err(|e| Error::Pyproject {
                file: file.to_string(),
                message: format!(
                    "[build-system] backend-path {p:?} must be a directory inside the source tree"
                ),
                source: Some(Arc::new(e)),
            })?;
        }
        Ok(Self {
            requires,
            build_backend,
            backend_path,
        })
    }
}
