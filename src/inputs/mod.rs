//! `cog run` inputs and outputs: `-i name=value` / `--json` parsed into a prediction request's
//! `input` object, coerced and validated against the model's OpenAPI `Input` schema with Cog's
//! messages (before anything is built), and prediction outputs written the way Cog writes them.
//!
//! Cog's code: `pkg/cli/predict.go` (`parseInputFlags`, output writing), `pkg/predict/input.go`
//! and `pkg/predict/input_validation.go` (0.22 pre-build validation over kin-openapi).

mod output;
mod parse;
mod schema;
mod validate;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use output::write_output;

/// An input that cannot be sent, or an output that cannot be written. The messages are Cog's.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// `-i` without `=`.
    #[error("Failed to parse input '{0}', expected format is 'name=value'")]
    Format(String),
    /// Both `--json` and `-i` were given.
    #[error("--json and -i/--input cannot be used together")]
    JsonAndInputs,
    /// `--json` is not valid JSON.
    #[error("Failed to parse --json input{}", origin.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default())]
    Json {
        origin: Option<PathBuf>,
        #[source]
        source: serde_json::Error,
    },
    /// `--json` is valid JSON but not an object.
    #[error("--json input must be a JSON object of input names to values, got {0}")]
    JsonNotObject(&'static str),
    /// A file named by `@path` (or `--json @file`) could not be read.
    #[error("Failed to read input file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The OpenAPI document has no `Input` component to validate against.
    #[error("OpenAPI schema is missing Input component")]
    MissingInputSchema,
    /// Inputs the model does not declare (the server would silently drop them; Cog's CLI refuses).
    #[error("{}", unknown_message(.unknown, .valid))]
    Unknown {
        unknown: Vec<String>,
        valid: Vec<String>,
    },
    /// An explicit JSON `null`.
    #[error("invalid input \"{0}\": must not be null (omit the input to use its default)")]
    Null(String),
    /// Values the schema rejects, one Cog-worded message each.
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<String>),
    /// A file output that is neither a data URL nor an http(s) URL, or a malformed data URL.
    #[error("Failed to decode dataurl: {0}")]
    DataUrl(String),
    /// An output whose JSON type does not match the Output schema.
    #[error("Failed to convert prediction output to {expected}: got {got}")]
    OutputType {
        expected: &'static str,
        got: &'static str,
    },
    /// An http(s) file output could not be downloaded.
    #[error("Failed to download output {url}: {message}")]
    Download { url: String, message: String },
    /// An output could not be written.
    #[error("Failed to write output {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_message(unknown: &[String], valid: &[String]) -> String {
    let what = if unknown.len() == 1 {
        format!("unknown input {}", quoted(unknown))
    } else {
        format!("unknown inputs {}", quoted(unknown))
    };
    if valid.is_empty() {
        format!("{what}; model does not accept inputs")
    } else {
        format!("{what}; valid inputs are: {}", valid.join(", "))
    }
}

fn invalid_message(messages: &[String]) -> String {
    match messages {
        [one] => one.clone(),
        many => format!("input validation failed:\n- {}", many.join("\n- ")),
    }
}

/// Parses `-i name=value` / `-i name=@file` and `--json` (a JSON object, `@file`, or `@-`/`-`
/// for stdin) into the request's "input" object, coerced by the OpenAPI document's `Input`
/// schema and validated with Cog's messages, before any build.
///
/// - `-i` values: surrounding double quotes are stripped; `@path` (relative to `base_dir`, `~`
///   expanded) becomes a `data:<mime>;base64,…` URL; repeating a name builds an array; values are
///   coerced by the property's type (boolean, integer, number; JSON for arrays and objects; a
///   single value for an array input becomes a one-element array; unions and strings stay
///   strings).
/// - `--json`: string values starting with `@` are files, sent as data URLs.
/// - Validation (Cog 0.22): unknown names, explicit nulls, then types, `enum` (choices),
///   `minimum`/`maximum`, `minLength`/`maxLength`, `pattern` and missing required inputs.
pub fn request_inputs(
    schema: &Value,
    pairs: &[String],
    json: Option<&str>,
    base_dir: &Path,
) -> Result<Map<String, Value>, InputError> {
    request_inputs_from(schema, pairs, json, base_dir, &mut std::io::stdin().lock())
}

/// [`request_inputs`] reading `--json @-` from `stdin`.
pub fn request_inputs_from(
    schema: &Value,
    pairs: &[String],
    json: Option<&str>,
    base_dir: &Path,
    stdin: &mut dyn std::io::Read,
) -> Result<Map<String, Value>, InputError> {
    if json.is_some() && !pairs.is_empty() {
        return Err(InputError::JsonAndInputs);
    }
    let input = schema::input_schema(schema).ok_or(InputError::MissingInputSchema)?;
    let values = if let Some(json) = json {
        let map = parse::json_inputs(json, base_dir, stdin)?;
        validate::known_names(map.keys(), input)?;
        parse::json_files(map, base_dir)?
    } else {
        let grouped = parse::group_pairs(pairs)?;
        validate::known_names(grouped.iter().map(|(name, _)| name), input)?;
        parse::coerce_pairs(schema, input, grouped, base_dir)?
    };
    validate::validate(schema, input, &values)?;
    Ok(values)
}

#[cfg(test)]
mod tests;
