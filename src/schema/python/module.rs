//! What a module defines at top level (imports, constants, type aliases, BaseModel and
//! TypedDict classes), and the local modules it imports, followed across files.

use std::collections::HashMap;

use tree_sitter::Node;

use super::annotation::Ann;
use super::pyval::PyVal;
use super::syntax::{SourceFile, definition, named_children};

/// Where a name came from: `from module import original as name`, or `import module as name`
/// (then `original == module`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEntry {
    pub module: String,
    pub original: String,
}

/// A field of a BaseModel or TypedDict class.
#[derive(Debug, Clone)]
pub struct ModelField {
    pub name: String,
    pub ann: Ann,
    /// Whether a literal default is written (Cog only counts literals).
    pub has_default: bool,
    /// TypedDict key requiredness (`total=`, `Required[...]`, `NotRequired[...]`).
    pub key_required: Option<bool>,
    /// 1-based line of the field, for messages.
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct ModelDef {
    pub fields: Vec<ModelField>,
    pub is_typed_dict: bool,
}

/// A module-level name we can use statically.
#[derive(Debug, Clone)]
pub enum Symbol {
    /// A value: data, an enum, a function or class of the project, or why it is unknown.
    Constant(PyVal),
    /// A type alias, resolved in the module that defined it.
    Alias(Ann, usize),
    /// A BaseModel/TypedDict class: (module index, class name).
    Model(usize, String),
}

pub struct Module {
    pub file: SourceFile,
    pub imports: HashMap<String, ImportEntry>,
    pub symbols: HashMap<String, Symbol>,
    pub models: HashMap<String, ModelDef>,
}

impl Module {
    pub fn is_from(&self, name: &str, modules: &[&str], original: &str) -> bool {
        if let Some((first, rest)) = name.split_once('.') {
            // `typing.List`, `cog.Path`: a module import followed by the name.
            return rest == original
                && self.imports.get(first).is_some_and(|e| {
                    e.original == e.module && modules.contains(&e.module.as_str())
                });
        }
        self.imports
            .get(name)
            .is_some_and(|e| e.original == original && modules.contains(&e.module.as_str()))
    }

    /// Whether `name` denotes `cog.<original>` (imported, qualified, or the bare name).
    pub fn is_cog_name(&self, name: &str, original: &str) -> bool {
        name == original || self.is_from(name, &["cog"], original)
    }
}

/// Modules Cog never looks for on disk (stdlib and well-known packages).
pub(super) fn is_known_external(module: &str) -> bool {
    let top = module
        .trim_start_matches('.')
        .split('.')
        .next()
        .unwrap_or("");
    !module.starts_with('.')
        && matches!(
            top,
            "builtins"
                | "typing"
                | "typing_extensions"
                | "collections"
                | "abc"
                | "enum"
                | "dataclasses"
                | "os"
                | "sys"
                | "io"
                | "json"
                | "re"
                | "math"
                | "pathlib"
                | "functools"
                | "itertools"
                | "contextlib"
                | "concurrent"
                | "asyncio"
                | "multiprocessing"
                | "threading"
                | "logging"
                | "warnings"
                | "unittest"
                | "pytest"
                | "numpy"
                | "torch"
                | "tensorflow"
                | "jax"
                | "scipy"
                | "sklearn"
                | "transformers"
                | "diffusers"
                | "accelerate"
                | "safetensors"
                | "PIL"
                | "cv2"
                | "skimage"
                | "requests"
                | "httpx"
                | "aiohttp"
                | "fastapi"
                | "flask"
                | "pydantic"
                | "cog"
                | "__future__"
        )
}

/// Top-level functions and classes of the runner file, with their decorators.
pub fn top_level_definitions<'t>(
    file: &'t SourceFile,
    kind: &str,
) -> Vec<(Node<'t>, Vec<Node<'t>>)> {
    named_children(file.root())
        .into_iter()
        .filter_map(|n| definition(n, kind))
        .collect()
}
