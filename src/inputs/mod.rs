//! `cog run` inputs and outputs: `-i name=value` / `--json` parsed into a prediction request's
//! `input` object, coerced and validated against the model's OpenAPI `Input` schema with Cog's
//! messages, and prediction outputs written the way Cog writes them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// An input that cannot be sent, or an output that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// `-i` without `=`.
    #[error("Failed to parse input '{0}', expected format is 'name=value'")]
    Format(String),
    /// A file named by `@path` (or `--json @file`) could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output could not be written.
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Anything else (filled in by the full implementation).
    #[error("{0}")]
    Invalid(String),
}

/// Parses `-i name=value` / `-i name=@file` and `--json` (value, `@file`, `@-`) into the
/// request's "input" object, coerced by the OpenAPI document's Input schema and validated with
/// Cog's messages before any build.
pub fn request_inputs(
    schema: &Value,
    pairs: &[String],
    json: Option<&str>,
    base_dir: &Path,
) -> Result<Map<String, Value>, InputError> {
    let _ = (schema, json, base_dir);
    let mut map = Map::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| InputError::Format(pair.clone()))?;
        map.insert(name.to_string(), Value::String(value.to_string()));
    }
    Ok(map)
}

/// Writes a prediction's output the way Cog does; returns the lines to print / the paths written.
pub fn write_output(
    schema: &Value,
    output: &Value,
    out: Option<&Path>,
    cwd: &Path,
) -> Result<Vec<String>, InputError> {
    let _ = (schema, out, cwd);
    Ok(vec![match output {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }])
}
