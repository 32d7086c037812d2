//! The Python worker's answers as the worker loop's Rust types: `("done", output, is_stream)`,
//! `("failed", message)`, `("invalid_input", message)`, `("cancelled",)`.

use coglet::worker::{Output, PredictOutcome};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

fn parse_output(item: &Bound<'_, PyAny>) -> PyResult<Option<Output>> {
    if item.is_none() {
        return Ok(None);
    }
    let tuple = item.cast::<PyTuple>()?;
    let kind: String = tuple.get_item(0)?.extract()?;
    if kind == "file" {
        let path: std::path::PathBuf = tuple.get_item(1)?.extract()?;
        let mime: Option<String> = tuple.get_item(2)?.extract()?;
        return Ok(Some(Output::File {
            path,
            mime_type: mime.filter(|m| !m.is_empty()),
        }));
    }
    let text: String = tuple.get_item(1)?.extract()?;
    let value = serde_json::from_str(&text).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("output is not valid JSON: {e}"))
    })?;
    Ok(Some(Output::Json(value)))
}

pub(crate) fn parse_outcome(result: &Bound<'_, PyAny>) -> PyResult<PredictOutcome> {
    let tuple = result.cast::<PyTuple>()?;
    let kind: String = tuple.get_item(0)?.extract()?;
    Ok(match kind.as_str() {
        "done" => PredictOutcome::Succeeded {
            output: parse_output(&tuple.get_item(1)?)?,
            is_stream: tuple.get_item(2)?.extract()?,
        },
        "failed" => PredictOutcome::Failed(tuple.get_item(1)?.extract()?),
        "invalid_input" => PredictOutcome::InvalidInput(tuple.get_item(1)?.extract()?),
        "cancelled" => PredictOutcome::Canceled,
        other => PredictOutcome::Failed(format!("internal error: unknown outcome '{other}'")),
    })
}
