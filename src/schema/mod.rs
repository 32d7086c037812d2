//! Static OpenAPI schema from `predict.py`, byte-equal to the document Cog writes.
//!
//! The runner file and the local modules it imports are parsed with tree-sitter-python (no
//! Python is run). The result is a [`ModelSchema`] (inputs with types, constraints and order;
//! the output type; streaming, concurrency, async) and the OpenAPI 3.0.2 document Cog would
//! write to `.cog/openapi_schema.json` and the `run.cog.openapi_schema` label.

mod error;
mod json;
mod model;
mod openapi;
mod python;
pub mod runtime;
mod validate;

use std::path::Path;

pub use error::{Location, SchemaError, SchemaErrorKind};
pub use json::Json;
pub use model::title_case;
pub use model::{
    InputField, InputKind, InputType, Mode, ModelSchema, OutputField, OutputKind, OutputType,
    Primitive, Value,
};
pub use openapi::COG_VERSION;

/// The generated schema and what the build needs from the runner's signature.
#[derive(Debug, Clone)]
pub struct SchemaOutput {
    /// Exact bytes Cog writes to `.cog/openapi_schema.json` (compact JSON for one mode; the
    /// combined predict+train document is indented, as Cog's `GenerateCombined` writes it).
    pub document: String,
    /// The `run.cog.openapi_schema` label value. Cog uses the same bytes as the file.
    pub label: String,
    /// `@cog.concurrent(max=N)` on the predict entry point (train's when there is no predict).
    pub concurrency_max: Option<u32>,
    /// Whether that entry point is `async def`.
    pub run_is_async: bool,
    /// The parsed predict entry point, when `predict:`/`run:` is set.
    pub predict: Option<ModelSchema>,
    /// The parsed train entry point, when `train:` is set.
    pub train: Option<ModelSchema>,
}

/// Parses one entry point (`file.py:Name`, relative to `project_dir`) into its model.
pub fn parse_model(
    project_dir: &Path,
    reference: &str,
    mode: Mode,
) -> Result<ModelSchema, SchemaError> {
    let model = python::parse_entry(project_dir, reference, mode)?;
    validate::validate(&model)?;
    Ok(model)
}

/// Parses source text as the runner file (for tests, fuzzing and benchmarks).
pub fn parse_model_source(src: &str, name: &str, mode: Mode) -> Result<ModelSchema, SchemaError> {
    let model = python::parse_source(Path::new("."), "predict.py", src, name, mode)?;
    validate::validate(&model)?;
    Ok(model)
}

/// The OpenAPI document of one entry point, as a JSON tree.
pub fn document(model: &ModelSchema) -> Json {
    openapi::document(model)
}

/// Generates the schema for cog.yaml's `predict:`/`run:` and `train:` references.
pub fn generate(
    project_dir: &Path,
    predict_ref: Option<&str>,
    train_ref: Option<&str>,
) -> Result<SchemaOutput, SchemaError> {
    let predict_ref = predict_ref.filter(|r| !r.is_empty());
    let train_ref = train_ref.filter(|r| !r.is_empty());
    let wrap = |prefix: &'static str, both: bool| {
        move |e: SchemaError| {
            if both {
                SchemaError {
                    message: format!("{prefix}: {}", e.message),
                    ..e
                }
            } else {
                e
            }
        }
    };
    let both = predict_ref.is_some() && train_ref.is_some();
    let predict = predict_ref
        .map(|r| parse_model(project_dir, r, Mode::Predict))
        .transpose()
        .map_err(wrap("predict schema", both))?;
    let train = train_ref
        .map(|r| parse_model(project_dir, r, Mode::Train))
        .transpose()
        .map_err(wrap("train schema", both))?;
    output_of(predict, train)
}

/// The document and label of the parsed entry points.
fn output_of(
    predict: Option<ModelSchema>,
    train: Option<ModelSchema>,
) -> Result<SchemaOutput, SchemaError> {
    let document = match (&predict, &train) {
        (Some(p), Some(t)) => {
            openapi::merge(&openapi::document(p), &openapi::document(t)).to_indented()
        }
        (Some(m), None) | (None, Some(m)) => openapi::document(m).to_compact(),
        (None, None) => {
            return Err(SchemaError::new(
                SchemaErrorKind::InvalidPredictRef,
                "no predict or train reference found in cog.yaml",
            ));
        }
    };
    let main = predict.as_ref().or(train.as_ref());
    Ok(SchemaOutput {
        label: document.clone(),
        document,
        concurrency_max: main.and_then(|m| m.concurrency_max),
        run_is_async: main.is_some_and(|m| m.is_async),
        predict,
        train,
    })
}
