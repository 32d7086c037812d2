//! What a module defines at top level (imports, constants, type aliases, BaseModel and
//! TypedDict classes), and the local modules it imports, followed across files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::annotation::{self, Ann};
use super::literal::{self, Constants};
use super::syntax::{SourceFile, def_name, definition, named_children, text, unwrap_statement};
use crate::schema::error::{SchemaError, SchemaErrorKind};
use crate::schema::model::Value;

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
    Constant(Value),
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

impl Constants for HashMap<String, Symbol> {
    fn constant(&self, name: &str) -> Option<&Value> {
        match self.get(name)? {
            Symbol::Constant(v) => Some(v),
            _ => None,
        }
    }
}

/// Modules Cog never looks for on disk (stdlib and well-known packages).
fn is_known_external(module: &str) -> bool {
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

/// How deep we follow local imports.
const MAX_IMPORT_DEPTH: usize = 8;

/// All modules loaded for one entry point; index 0 is the runner file.
pub struct Project {
    pub dir: PathBuf,
    pub modules: Vec<Module>,
    by_path: HashMap<PathBuf, usize>,
}

impl Project {
    pub fn new(dir: &Path) -> Project {
        Project {
            dir: dir.to_path_buf(),
            modules: Vec::new(),
            by_path: HashMap::new(),
        }
    }

    /// Loads a file (relative to the project) and the local modules it imports.
    pub fn load(&mut self, rel: &Path) -> Result<usize, SchemaError> {
        self.load_depth(rel, 0)
    }

    fn load_depth(&mut self, rel: &Path, depth: usize) -> Result<usize, SchemaError> {
        if let Some(&idx) = self.by_path.get(rel) {
            return Ok(idx);
        }
        let full = self.dir.join(rel);
        let src = fs_err::read_to_string(&full).map_err(|e| {
            SchemaError::new(
                SchemaErrorKind::Io,
                format!("failed to read predictor source: {e}"),
            )
        })?;
        self.insert(rel, src, depth)
    }

    /// Loads a runner file from memory (its local imports are still read from disk).
    pub fn load_source(&mut self, rel: &Path, src: String) -> Result<usize, SchemaError> {
        self.insert(rel, src, 0)
    }

    fn insert(&mut self, rel: &Path, src: String, depth: usize) -> Result<usize, SchemaError> {
        let file = SourceFile::parse(rel.to_path_buf(), src)?;
        let idx = self.modules.len();
        self.by_path.insert(rel.to_path_buf(), idx);
        self.modules.push(Module {
            file,
            imports: HashMap::new(),
            symbols: HashMap::new(),
            models: HashMap::new(),
        });
        self.collect(idx, depth);
        Ok(idx)
    }

    /// Walks the module's top-level statements in order, so constants can refer to earlier
    /// constants and imports.
    fn collect(&mut self, idx: usize, depth: usize) {
        let count = self.modules[idx].file.root().named_child_count();
        for i in 0..count {
            let is_import = {
                let Some(node) = self.modules[idx].file.root().named_child(i) else {
                    continue;
                };
                matches!(
                    unwrap_statement(node).kind(),
                    "import_statement" | "import_from_statement"
                )
            };
            if is_import {
                self.collect_import(idx, i, depth);
                continue;
            }
            let module = &mut self.modules[idx];
            let Some(node) = module.file.root().named_child(i) else {
                continue;
            };
            let (symbols, models) = collect_definition(module, node);
            module
                .symbols
                .extend(symbols.into_iter().map(|(k, s)| match s {
                    Symbol::Alias(a, usize::MAX) => (k, Symbol::Alias(a, idx)),
                    s => (k, s),
                }));
            for (name, def) in models {
                module
                    .symbols
                    .insert(name.clone(), Symbol::Model(idx, name.clone()));
                module.models.insert(name, def);
            }
        }
    }

    fn collect_import(&mut self, idx: usize, child: usize, depth: usize) {
        let (entries, from_module) = {
            let module = &self.modules[idx];
            let Some(node) = module.file.root().named_child(child) else {
                return;
            };
            parse_import(unwrap_statement(node), &module.file.src)
        };
        let importer = self.modules[idx].file.rel_path.clone();
        for (local, entry) in entries {
            self.modules[idx]
                .imports
                .insert(local.clone(), entry.clone());
            if depth >= MAX_IMPORT_DEPTH || is_known_external(&entry.module) {
                continue;
            }
            if from_module {
                // `from m import name`: a symbol of m, or a submodule m/name.py.
                if let Some(target) = self.find_local(&importer, &entry.module)
                    && let Ok(t) = self.load_depth(&target, depth + 1)
                    && let Some(sym) = self.modules[t].symbols.get(&entry.original).cloned()
                {
                    self.modules[idx].symbols.insert(local, sym);
                    continue;
                }
                let sub = format!("{}.{}", entry.module.trim_end_matches('.'), entry.original);
                let sub = if entry.module.chars().all(|c| c == '.') {
                    format!("{}{}", entry.module, entry.original)
                } else {
                    sub
                };
                if let Some(target) = self.find_local(&importer, &sub)
                    && let Ok(t) = self.load_depth(&target, depth + 1)
                {
                    self.import_module_symbols(idx, t, &local);
                }
            } else if let Some(target) = self.find_local(&importer, &entry.module)
                && let Ok(t) = self.load_depth(&target, depth + 1)
            {
                self.import_module_symbols(idx, t, &local);
            }
        }
    }

    /// `import m as n`: m's symbols become `n.<name>`.
    fn import_module_symbols(&mut self, idx: usize, target: usize, prefix: &str) {
        let symbols: Vec<(String, Symbol)> = self.modules[target]
            .symbols
            .iter()
            .map(|(k, v)| (format!("{prefix}.{k}"), v.clone()))
            .collect();
        self.modules[idx].symbols.extend(symbols);
    }

    /// The project file for a module name, relative imports taken from the importer's folder.
    fn find_local(&self, importer: &Path, module: &str) -> Option<PathBuf> {
        let dots = module.chars().take_while(|c| *c == '.').count();
        let rest = &module[dots..];
        let mut bases = Vec::new();
        if dots > 0 {
            let mut base = importer.parent().unwrap_or(Path::new("")).to_path_buf();
            for _ in 1..dots {
                base = base.parent()?.to_path_buf();
            }
            bases.push(base);
        } else {
            bases.push(PathBuf::new());
            if let Some(parent) = importer.parent()
                && !parent.as_os_str().is_empty()
            {
                bases.push(parent.to_path_buf());
            }
        }
        for base in bases {
            let mut path = base;
            for part in rest.split('.').filter(|p| !p.is_empty()) {
                path.push(part);
            }
            if rest.is_empty() {
                continue;
            }
            let file = path.with_extension("py");
            if self.dir.join(&file).is_file() {
                return Some(file);
            }
            let init = path.join("__init__.py");
            if self.dir.join(&init).is_file() {
                return Some(init);
            }
        }
        None
    }
}

/// `(local name, entry)` pairs of an import statement, and whether it is a `from` import.
fn parse_import(node: Node<'_>, src: &str) -> (Vec<(String, ImportEntry)>, bool) {
    let mut out = Vec::new();
    if node.kind() == "import_statement" {
        for child in named_children(node) {
            match child.kind() {
                "dotted_name" => {
                    let module = text(child, src).to_owned();
                    out.push((
                        module.clone(),
                        ImportEntry {
                            original: module.clone(),
                            module,
                        },
                    ));
                }
                "aliased_import" => {
                    let (Some(name), Some(alias)) = (
                        child.child_by_field_name("name"),
                        child.child_by_field_name("alias"),
                    ) else {
                        continue;
                    };
                    let module = text(name, src).to_owned();
                    out.push((
                        text(alias, src).to_owned(),
                        ImportEntry {
                            original: module.clone(),
                            module,
                        },
                    ));
                }
                _ => {}
            }
        }
        return (out, false);
    }
    let Some(module_node) = node.child_by_field_name("module_name") else {
        return (out, true);
    };
    let module: String = text(module_node, src)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut cursor = node.walk();
    for child in node.children_by_field_name("name", &mut cursor) {
        match child.kind() {
            "dotted_name" => {
                let name = text(child, src).to_owned();
                out.push((
                    name.clone(),
                    ImportEntry {
                        module: module.clone(),
                        original: name,
                    },
                ));
            }
            "aliased_import" => {
                let (Some(name), Some(alias)) = (
                    child.child_by_field_name("name"),
                    child.child_by_field_name("alias"),
                ) else {
                    continue;
                };
                out.push((
                    text(alias, src).to_owned(),
                    ImportEntry {
                        module: module.clone(),
                        original: text(name, src).to_owned(),
                    },
                ));
            }
            _ => {}
        }
    }
    (out, true)
}

/// Constants, aliases and model classes defined by one top-level statement.
/// Names a statement defines: plain symbols, and model classes.
type Definitions = (Vec<(String, Symbol)>, Vec<(String, ModelDef)>);

fn collect_definition(module: &Module, node: Node<'_>) -> Definitions {
    let src = module.file.src.as_str();
    let stmt = unwrap_statement(node);
    let mut symbols = Vec::new();
    let mut models = Vec::new();
    match stmt.kind() {
        "assignment" => {
            let (Some(left), Some(right)) = (
                stmt.child_by_field_name("left"),
                stmt.child_by_field_name("right"),
            ) else {
                return (symbols, models);
            };
            if left.kind() != "identifier" {
                return (symbols, models);
            }
            let name = text(left, src).to_owned();
            let declared_alias = stmt
                .child_by_field_name("type")
                .is_some_and(|t| annotation::last_segment(text(t, src).trim()) == "TypeAlias");
            if !declared_alias && let Some(value) = literal::eval(right, src, &module.symbols) {
                symbols.push((name, Symbol::Constant(value)));
                return (symbols, models);
            }
            if (declared_alias
                || matches!(
                    right.kind(),
                    "identifier" | "attribute" | "subscript" | "binary_operator" | "none"
                ))
                && let Some(ann) = annotation::parse(text(right, src))
            {
                symbols.push((name, Symbol::Alias(ann, usize::MAX)));
            }
        }
        "type_alias_statement" => {
            let named = named_children(stmt);
            if let (Some(left), Some(right)) = (named.first(), named.get(1))
                && let Some(ann) = annotation::parse(text(*right, src))
            {
                symbols.push((
                    text(*left, src).trim().to_owned(),
                    Symbol::Alias(ann, usize::MAX),
                ));
            }
        }
        _ => {
            if let Some((class, _)) = definition(node, "class_definition")
                && let Some((name, def)) = model_class(module, class)
            {
                models.push((name, def));
            }
        }
    }
    (symbols, models)
}

/// A BaseModel or TypedDict subclass, with its fields (inherited ones first).
fn model_class(module: &Module, class: Node<'_>) -> Option<(String, ModelDef)> {
    let src = module.file.src.as_str();
    let name = def_name(class, src)?.to_owned();
    let supers = class.child_by_field_name("superclasses")?;
    let mut is_model = false;
    let mut is_typed_dict = false;
    let mut total = true;
    let mut fields: Vec<ModelField> = Vec::new();
    for sup in named_children(supers) {
        match sup.kind() {
            "identifier" | "attribute" => {
                let base = text(sup, src);
                if module.is_from(base, &["cog", "pydantic", "pydantic.v1"], "BaseModel")
                    || base == "BaseModel"
                    || base.ends_with(".BaseModel")
                {
                    is_model = true;
                } else if module.is_from(base, &["typing", "typing_extensions"], "TypedDict")
                    || base == "TypedDict"
                    || base.ends_with(".TypedDict")
                {
                    is_model = true;
                    is_typed_dict = true;
                } else if let Some(parent) = module.models.get(base) {
                    is_model = true;
                    is_typed_dict |= parent.is_typed_dict;
                    fields.extend(parent.fields.iter().cloned());
                }
            }
            "keyword_argument" => {
                let key = sup.child_by_field_name("name").map(|n| text(n, src));
                let value = sup.child_by_field_name("value").map(|n| n.kind());
                if key == Some("total") && value == Some("false") {
                    total = false;
                }
            }
            _ => {}
        }
    }
    if !is_model {
        return None;
    }
    let body = class.child_by_field_name("body")?;
    let consts = &module.symbols;
    for stmt in named_children(body) {
        let stmt = unwrap_statement(stmt);
        if stmt.kind() != "assignment" {
            continue;
        }
        let (Some(left), Some(ty)) = (
            stmt.child_by_field_name("left"),
            stmt.child_by_field_name("type"),
        ) else {
            continue;
        };
        if left.kind() != "identifier" {
            continue;
        }
        let Some(mut ann) = annotation::parse(text(ty, src)) else {
            continue;
        };
        if let Ann::Simple(n) | Ann::Generic(n, _) = &ann
            && annotation::last_segment(n) == "ClassVar"
        {
            continue;
        }
        let mut key_required = is_typed_dict.then_some(total);
        if is_typed_dict && let Ann::Generic(outer, args) = &ann {
            let qualifier = annotation::last_segment(outer);
            if (qualifier == "Required" || qualifier == "NotRequired") && args.len() == 1 {
                key_required = Some(qualifier == "Required");
                ann = args[0].clone();
            }
        }
        let has_default = stmt
            .child_by_field_name("right")
            .is_some_and(|r| literal::eval(r, src, consts).is_some());
        let field_name = text(left, src).to_owned();
        fields.retain(|f| f.name != field_name);
        fields.push(ModelField {
            name: field_name,
            ann,
            has_default,
            key_required,
            line: super::syntax::line(stmt),
        });
    }
    Some((
        name,
        ModelDef {
            fields,
            is_typed_dict,
        },
    ))
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
