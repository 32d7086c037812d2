//! A project's modules for one entry point: the runner file and the local modules it imports,
//! loaded and followed across files, each module's top level evaluated as it is read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::annotation::{self, Ann};
use super::eval::{Eval, def_ref};
use super::module::{ImportEntry, ModelDef, ModelField, Module, Symbol, is_known_external};
use super::pyval::PyVal;
use super::syntax::{SourceFile, def_name, definition, named_children, text, unwrap_statement};
use crate::schema::error::{SchemaError, SchemaErrorKind};

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
            let (symbols, models) = {
                let Some(node) = self.modules[idx].file.root().named_child(i) else {
                    continue;
                };
                let eval = Eval::new(&self.modules);
                collect_definition(&eval, idx, node)
            };
            let module = &mut self.modules[idx];
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

fn collect_definition(eval: &Eval<'_>, idx: usize, node: Node<'_>) -> Definitions {
    let module = &eval.modules[idx];
    let src = module.file.src.as_str();
    let stmt = unwrap_statement(node);
    let mut symbols = Vec::new();
    let mut models = Vec::new();
    match stmt.kind() {
        "assignment" => symbols = assignment(eval, idx, stmt),
        "augmented_assignment" => symbols = augmented_assignment(eval, idx, stmt),
        "call" => symbols = mutating_call(eval, idx, stmt),
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
        "if_statement" | "for_statement" | "while_statement" | "try_statement"
        | "with_statement" | "delete_statement" | "match_statement" => {
            if !is_guard_block(stmt, src) {
                symbols = poisoned(module, stmt);
            }
        }
        _ => {
            if let Some((class, _)) = definition(node, "class_definition") {
                if let Some((name, def)) = model_class(eval, idx, class) {
                    models.push((name, def));
                } else if let Some(name) = def_name(class, src) {
                    let value = eval
                        .enum_class(idx, class)
                        .unwrap_or_else(|| PyVal::Class(def_ref(idx, name)));
                    symbols.push((name.to_owned(), Symbol::Constant(value)));
                }
            } else if let Some((func, _)) = definition(node, "function_definition")
                && let Some(name) = def_name(func, src)
            {
                symbols.push((
                    name.to_owned(),
                    Symbol::Constant(PyVal::Function(def_ref(idx, name))),
                ));
            }
        }
    }
    (symbols, models)
}

/// `NAME = value`, `A, B = ...`, `X[k] = v`: the names it (re)defines.
fn assignment(eval: &Eval<'_>, idx: usize, stmt: Node<'_>) -> Vec<(String, Symbol)> {
    let module = &eval.modules[idx];
    let src = module.file.src.as_str();
    let (Some(left), Some(right)) = (
        stmt.child_by_field_name("left"),
        stmt.child_by_field_name("right"),
    ) else {
        return Vec::new();
    };
    match left.kind() {
        "identifier" => {}
        "pattern_list" | "tuple_pattern" | "list_pattern" => {
            let value = eval.expr(idx, right);
            let items = value
                .iterate()
                .ok()
                .filter(|i| i.len() == left.named_child_count());
            return named_children(left)
                .into_iter()
                .enumerate()
                .filter(|(_, n)| n.kind() == "identifier")
                .map(|(i, n)| {
                    let v = items.as_ref().map_or_else(
                        || {
                            PyVal::unknown(format!(
                                "`{}` is unpacked from a value not evaluated statically",
                                text(n, src)
                            ))
                        },
                        |items| items[i].clone(),
                    );
                    (text(n, src).to_owned(), Symbol::Constant(v))
                })
                .collect();
        }
        "subscript" => return subscript_assignment(eval, idx, left, right),
        _ => return poisoned(module, stmt),
    }
    let name = text(left, src).to_owned();
    let declared_alias = stmt
        .child_by_field_name("type")
        .is_some_and(|t| annotation::last_segment(text(t, src).trim()) == "TypeAlias");
    let value = eval.expr(idx, right);
    if !declared_alias && value.is_data() {
        return vec![(name, Symbol::Constant(value))];
    }
    if (declared_alias
        || matches!(
            right.kind(),
            "identifier" | "attribute" | "subscript" | "binary_operator" | "none"
        ) && matches!(value, PyVal::Unknown(_) | PyVal::Builtin(_)))
        && let Some(ann) = annotation::parse(text(right, src))
    {
        return vec![(name, Symbol::Alias(ann, usize::MAX))];
    }
    vec![(name, Symbol::Constant(value))]
}

/// `X[k] = v` on a module-level dict or list.
fn subscript_assignment(
    eval: &Eval<'_>,
    idx: usize,
    left: Node<'_>,
    right: Node<'_>,
) -> Vec<(String, Symbol)> {
    let module = &eval.modules[idx];
    let src = module.file.src.as_str();
    let (Some(target), Some(key)) = (
        left.child_by_field_name("value"),
        left.child_by_field_name("subscript"),
    ) else {
        return Vec::new();
    };
    if target.kind() != "identifier" {
        return poisoned(module, left);
    }
    let name = text(target, src).to_owned();
    let Some(Symbol::Constant(current)) = module.symbols.get(&name) else {
        return Vec::new();
    };
    let key = eval.expr(idx, key);
    let value = eval.expr(idx, right);
    let updated = match (current.clone(), key) {
        (_, PyVal::Unknown(r)) => PyVal::Unknown(r),
        (PyVal::Dict(mut pairs), key) => {
            super::ops::dict_set(&mut pairs, key, value);
            PyVal::Dict(pairs)
        }
        (PyVal::List(mut items), PyVal::Int(i)) => {
            let at = if i < 0 { items.len() as i64 + i } else { i };
            match usize::try_from(at).ok().and_then(|at| items.get_mut(at)) {
                Some(slot) => {
                    *slot = value;
                    PyVal::List(items)
                }
                None => PyVal::unknown(format!(
                    "`{name}[{i}]` is out of range (line {})",
                    line_of(left)
                )),
            }
        }
        _ => PyVal::unknown(format!(
            "`{name}` is changed at {}:{} in a way not evaluated statically",
            module.file.rel_path.display(),
            line_of(left)
        )),
    };
    vec![(name, Symbol::Constant(updated))]
}

/// `X += v` and friends.
fn augmented_assignment(eval: &Eval<'_>, idx: usize, stmt: Node<'_>) -> Vec<(String, Symbol)> {
    let module = &eval.modules[idx];
    let src = module.file.src.as_str();
    let (Some(left), Some(op), Some(right)) = (
        stmt.child_by_field_name("left"),
        stmt.child_by_field_name("operator"),
        stmt.child_by_field_name("right"),
    ) else {
        return Vec::new();
    };
    if left.kind() != "identifier" {
        return poisoned(module, stmt);
    }
    let name = text(left, src).to_owned();
    let current = eval.name(idx, &name, &Vec::new());
    let op = text(op, src).trim_end_matches('=');
    let value =
        super::ops::binary(op, &current, &eval.expr(idx, right)).unwrap_or_else(PyVal::Unknown);
    vec![(name, Symbol::Constant(value))]
}

/// `X.append(v)`, `X.update(d)`, ... on a module-level constant.
fn mutating_call(eval: &Eval<'_>, idx: usize, call: Node<'_>) -> Vec<(String, Symbol)> {
    let module = &eval.modules[idx];
    let src = module.file.src.as_str();
    let Some(func) = call
        .child_by_field_name("function")
        .filter(|f| f.kind() == "attribute")
    else {
        return Vec::new();
    };
    let (Some(object), Some(method)) = (
        func.child_by_field_name("object"),
        func.child_by_field_name("attribute"),
    ) else {
        return Vec::new();
    };
    let name = text(object, src);
    let Some(Symbol::Constant(current)) = module.symbols.get(name) else {
        return Vec::new();
    };
    if !current.is_data() {
        return Vec::new();
    }
    let mut updated = current.clone();
    let args: Vec<PyVal> = call
        .child_by_field_name("arguments")
        .map(named_children)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.kind() != "comment")
        .map(|a| {
            if a.kind() == "keyword_argument" {
                PyVal::unknown("keyword arguments to a mutating method")
            } else {
                eval.expr(idx, a)
            }
        })
        .collect();
    if let Err(reason) = super::ops::mutate(&mut updated, text(method, src), &args) {
        updated = PyVal::unknown(format!(
            "`{name}` is changed at {}:{}: {reason}",
            module.file.rel_path.display(),
            line_of(call)
        ));
    }
    vec![(name.to_owned(), Symbol::Constant(updated))]
}

/// `if __name__ == "__main__":` and `if TYPE_CHECKING:` blocks do not define constants the
/// predictor sees at import.
fn is_guard_block(stmt: Node<'_>, src: &str) -> bool {
    stmt.kind() == "if_statement"
        && stmt.child_by_field_name("condition").is_some_and(|c| {
            let t: String = text(c, src).split_whitespace().collect();
            t.contains("__name__") || t.ends_with("TYPE_CHECKING")
        })
}

fn line_of(node: Node<'_>) -> usize {
    super::syntax::line(node)
}

/// Names a compound statement (an `if`, a loop, a `try`...) assigns or changes: their values
/// depend on what runs, so they become unknown, naming the statement.
fn poisoned(module: &Module, stmt: Node<'_>) -> Vec<(String, Symbol)> {
    let src = module.file.src.as_str();
    let mut names = Vec::new();
    collect_targets(stmt, src, &mut names, 0);
    let kind = stmt.kind().trim_end_matches("_statement");
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| module.symbols.contains_key(n) || !module.imports.contains_key(n))
        .map(|n| {
            let reason = format!(
                "`{n}` is assigned or changed inside the `{kind}` at {}:{}, which is not evaluated statically",
                module.file.rel_path.display(),
                line_of(stmt)
            );
            (n, Symbol::Constant(PyVal::unknown(reason)))
        })
        .collect()
}

fn collect_targets(node: Node<'_>, src: &str, names: &mut Vec<String>, depth: usize) {
    if depth > annotation::MAX_DEPTH {
        return;
    }
    let root = |n: Node<'_>| -> Option<String> {
        let mut n = n;
        while matches!(n.kind(), "subscript" | "attribute") {
            n = n.child_by_field_name(if n.kind() == "subscript" {
                "value"
            } else {
                "object"
            })?;
        }
        (n.kind() == "identifier").then(|| text(n, src).to_owned())
    };
    match node.kind() {
        "assignment" | "augmented_assignment" | "for_statement" | "for_in_clause" => {
            if let Some(left) = node.child_by_field_name("left") {
                if matches!(
                    left.kind(),
                    "pattern_list" | "tuple_pattern" | "list_pattern"
                ) {
                    names.extend(named_children(left).into_iter().filter_map(root));
                } else {
                    names.extend(root(left));
                }
            }
        }
        "call" => {
            if let Some(f) = node
                .child_by_field_name("function")
                .filter(|f| f.kind() == "attribute")
                && let Some(object) = f.child_by_field_name("object")
            {
                names.extend(root(object));
            }
        }
        "function_definition" | "class_definition" => {
            names.extend(def_name(node, src).map(str::to_owned));
            return;
        }
        "delete_statement" => {
            names.extend(named_children(node).into_iter().filter_map(root));
        }
        "as_pattern_target" => names.extend(root(node)),
        _ => {}
    }
    for child in named_children(node) {
        collect_targets(child, src, names, depth + 1);
    }
}

/// A BaseModel or TypedDict subclass, with its fields (inherited ones first).
fn model_class(eval: &Eval<'_>, idx: usize, class: Node<'_>) -> Option<(String, ModelDef)> {
    let module = &eval.modules[idx];
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
            .is_some_and(|r| eval.expr(idx, r).is_data());
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
