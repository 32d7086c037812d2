//! The static Python parser: tree-sitter over the runner file and the local modules it imports.

mod annotation;
mod entry;
mod eval;
pub(crate) mod import_text;
mod literal;
mod module;
mod ops;
mod project;
mod pyval;
mod resolve;
mod skim;
mod syntax;

use std::path::{Path, PathBuf};

use crate::schema::error::{SchemaError, SchemaErrorKind};
use crate::schema::model::{Mode, ModelSchema};

/// Splits `file.py:Name`.
pub fn split_ref(reference: &str) -> Result<(PathBuf, String), SchemaError> {
    match reference.split_once(':') {
        Some((file, name)) if !file.is_empty() && !name.is_empty() => {
            Ok((PathBuf::from(file), name.to_owned()))
        }
        _ => Err(SchemaError::new(
            SchemaErrorKind::InvalidPredictRef,
            format!(
                "invalid predict reference '{reference}' \u{2014} expected format: file.py:ClassName or \
                 file.py:function_name"
            ),
        )),
    }
}

/// Parses the entry point `reference` (`file.py:Name`) of the project in `project_dir`.
pub fn parse_entry(
    project_dir: &Path,
    reference: &str,
    mode: Mode,
) -> Result<ModelSchema, SchemaError> {
    let (file, name) = split_ref(reference)?;
    let mut project = project::Project::new(project_dir);
    project.load(&file)?;
    entry::extract(&project, &name, mode)
}

/// [`parse_entry`], with what cannot be computed statically returned as questions for the
/// runtime path (see `entry::extract_with`), and the entry point's function name.
pub fn parse_entry_deferred(
    project_dir: &Path,
    reference: &str,
    mode: Mode,
) -> Result<(ModelSchema, Vec<crate::schema::model::Question>, String), SchemaError> {
    let (file, name) = split_ref(reference)?;
    let mut project = project::Project::new(project_dir);
    project.load(&file)?;
    entry::extract_with(&project, &name, mode, true)
}

/// Parses source text as the runner file `predict.py` (no other files are read unless
/// `project_dir` holds them). Used by the fuzz tests and benchmarks.
pub fn parse_source(
    project_dir: &Path,
    file_name: &str,
    src: &str,
    name: &str,
    mode: Mode,
) -> Result<ModelSchema, SchemaError> {
    let mut project = project::Project::new(project_dir);
    project.load_source(Path::new(file_name), src.to_owned())?;
    entry::extract(&project, name, mode)
}
