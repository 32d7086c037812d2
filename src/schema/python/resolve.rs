//! Type annotations -> input and output types, with Cog's rules and messages
//! (`pkg/schema/types.go`, `schema_type.go` upstream).

use std::collections::HashSet;

use super::annotation::{Ann, MAX_DEPTH, last_segment};
use super::module::{ModelDef, Symbol};
use super::project::Project;
use crate::schema::error::SchemaError;
use crate::schema::model::{
    InputKind, InputType, OutputField, OutputKind, OutputType, Primitive, Value,
};

/// Resolves annotations written in module `module` of `project`.
pub struct Resolver<'p> {
    pub project: &'p Project,
}

/// An input type, and the choices a `Literal[...]` implies.
pub type ResolvedInput = (InputType, Option<Vec<Value>>);

fn too_deep() -> SchemaError {
    SchemaError::unsupported("type annotation is nested too deeply")
}

impl Resolver<'_> {
    fn symbol(&self, module: usize, name: &str) -> Option<&Symbol> {
        self.project.modules.get(module)?.symbols.get(name)
    }

    fn model(&self, module: usize, name: &str) -> Option<(usize, String, &ModelDef)> {
        match self.symbol(module, name)? {
            Symbol::Model(m, class) => {
                let def = self.project.modules.get(*m)?.models.get(class)?;
                Some((*m, class.clone(), def))
            }
            _ => None,
        }
    }

    fn alias(&self, module: usize, name: &str) -> Option<(Ann, usize)> {
        match self.symbol(module, name)? {
            Symbol::Alias(ann, m) => Some((ann.clone(), *m)),
            _ => None,
        }
    }

    fn is_opaque(&self, module: usize, ann: &Ann) -> bool {
        matches!(ann, Ann::Simple(n) if self.project.modules[module].is_cog_name(n, "Opaque"))
    }

    /// `Annotated[T, ..., Opaque, ...]` -> `T`.
    fn opaque_inner<'a>(&self, module: usize, ann: &'a Ann) -> Option<&'a Ann> {
        match ann {
            Ann::Generic(outer, args)
                if last_segment(outer) == "Annotated"
                    && args.len() >= 2
                    && args[1..].iter().any(|a| self.is_opaque(module, a)) =>
            {
                Some(&args[0])
            }
            _ => None,
        }
    }

    /// The module a name was imported from, for "cannot resolve" messages.
    fn imported_from(&self, module: usize, name: &str) -> Option<(String, String)> {
        let imports = &self.project.modules.get(module)?.imports;
        if let Some((first, _)) = name.split_once('.') {
            return imports
                .get(first)
                .map(|e| (last_segment(name).to_owned(), e.module.clone()));
        }
        imports
            .get(name)
            .map(|e| (name.to_owned(), e.module.clone()))
            // Cog registers these builtins as imported from `builtins`.
            .or_else(|| {
                matches!(
                    name,
                    "str" | "int" | "float" | "bool" | "list" | "dict" | "set" | "None"
                )
                .then(|| (name.to_owned(), "builtins".to_owned()))
            })
    }

    // ---------------------------------------------------------------- inputs

    pub fn input(&self, module: usize, ann: &Ann) -> Result<ResolvedInput, SchemaError> {
        self.input_depth(module, ann, 0)
    }

    fn input_depth(
        &self,
        module: usize,
        ann: &Ann,
        depth: usize,
    ) -> Result<ResolvedInput, SchemaError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        if let Some(inner) = self.opaque_inner(module, ann) {
            return Ok((opaque_input(inner), None));
        }
        match ann {
            Ann::Simple(name) => self.input_simple(module, name, depth),
            Ann::Generic(outer, args) => self.input_generic(module, outer, args, depth),
            Ann::Union(members) => self.input_union(module, members, depth),
            Ann::Literal(_, values) => {
                let p = literal_primitive(values)?;
                Ok((InputType::primitive(p), Some(values.clone())))
            }
            Ann::Opaque(text) => Err(SchemaError::unsupported(text)),
        }
    }

    fn input_simple(
        &self,
        module: usize,
        name: &str,
        depth: usize,
    ) -> Result<ResolvedInput, SchemaError> {
        if let Some((alias, m)) = self.alias(module, name) {
            return self.input_depth(m, &alias, depth + 1);
        }
        if let Some((_, _, def)) = self.model(module, name) {
            if def.is_typed_dict {
                return Ok((InputType::primitive(Primitive::Any), None));
            }
            return Err(SchemaError::unsupported(last_segment(name)));
        }
        let short = last_segment(name);
        match short {
            "dict" | "Dict" => return Ok((InputType::primitive(Primitive::Any), None)),
            "list" | "List" => {
                return Ok((InputType::array(InputType::primitive(Primitive::Any)), None));
            }
            _ => {}
        }
        if let Some(p) = Primitive::from_name(short) {
            return Ok((InputType::primitive(p), None));
        }
        Err(match self.imported_from(module, name) {
            Some((n, m)) => SchemaError::unresolvable_imported(&n, &m),
            None => SchemaError::unsupported(short),
        })
    }

    fn input_generic(
        &self,
        module: usize,
        outer: &str,
        args: &[Ann],
        depth: usize,
    ) -> Result<ResolvedInput, SchemaError> {
        let outer_name = match self.alias(module, outer) {
            Some((Ann::Simple(real), _)) => real,
            _ => outer.to_owned(),
        };
        let short = last_segment(&outer_name);
        match short {
            "dict" | "Dict" => Ok((InputType::primitive(Primitive::Any), None)),
            "Optional" => {
                if args.len() != 1 {
                    return Err(SchemaError::unsupported(format!(
                        "Optional expects exactly 1 type argument, got {}",
                        args.len()
                    )));
                }
                let (mut inner, choices) = self.input_depth(module, &args[0], depth + 1)?;
                inner.nullable = true;
                Ok((inner, choices))
            }
            "Union" => self.input_union(module, args, depth),
            "Annotated" => match args.first() {
                Some(first) => self.input_depth(module, first, depth + 1),
                None => Err(SchemaError::unsupported(
                    "Annotated expects at least 1 type argument",
                )),
            },
            "List" | "list" => {
                if args.len() != 1 {
                    return Err(SchemaError::unsupported(format!(
                        "List expects exactly 1 type argument, got {}",
                        args.len()
                    )));
                }
                let (inner, choices) = match self.opaque_inner(module, &args[0]) {
                    Some(o) => (opaque_input(o), None),
                    None => self.input_depth(module, &args[0], depth + 1)?,
                };
                if inner.nullable || !matches!(inner.kind, InputKind::Primitive(_)) {
                    return Err(SchemaError::unsupported(
                        "nested generics like List[Optional[X]] are not supported",
                    ));
                }
                Ok((InputType::array(inner), choices))
            }
            _ => Err(SchemaError::unsupported(format!(
                "{short}[...] is not a supported input type"
            ))),
        }
    }

    fn input_union(
        &self,
        module: usize,
        members: &[Ann],
        depth: usize,
    ) -> Result<ResolvedInput, SchemaError> {
        let mut variants = Vec::new();
        let mut nullable = false;
        let mut choices = None;
        for member in members {
            if member.is_none() {
                nullable = true;
                continue;
            }
            if matches!(member, Ann::Union(_))
                || matches!(member, Ann::Generic(n, _) if last_segment(n) == "Union")
            {
                return Err(SchemaError::unsupported(
                    "nested union inputs are not supported",
                ));
            }
            let (variant, c) = self.input_depth(module, member, depth + 1)?;
            if variant.is_union() {
                return Err(SchemaError::unsupported(
                    "nested union inputs are not supported",
                ));
            }
            if c.is_some() {
                choices = c;
            }
            variants.push(variant);
        }
        match variants.len() {
            0 => Err(SchemaError::unsupported(
                "union inputs must include at least one non-None type",
            )),
            1 => {
                let mut only = variants.remove(0);
                only.nullable |= nullable;
                Ok((only, choices))
            }
            _ => {
                if choices.is_some() {
                    return Err(SchemaError::unsupported(
                        "constraints and choices are not supported on union inputs",
                    ));
                }
                for v in &variants {
                    validate_union_variant(v)?;
                }
                Ok((
                    InputType {
                        kind: InputKind::Union(variants),
                        nullable,
                    },
                    None,
                ))
            }
        }
    }

    // ---------------------------------------------------------------- outputs

    pub fn output(&self, module: usize, ann: &Ann) -> Result<OutputType, SchemaError> {
        self.output_depth(module, ann, &mut HashSet::new(), 0)
    }

    fn output_depth(
        &self,
        module: usize,
        ann: &Ann,
        seen: &mut HashSet<(usize, String)>,
        depth: usize,
    ) -> Result<OutputType, SchemaError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        if let Some(inner) = self.opaque_inner(module, ann) {
            if optional_inner(inner).is_some() {
                return Err(SchemaError::optional_output());
            }
            return Ok(opaque_output(inner));
        }
        match ann {
            Ann::Simple(name) => self.output_simple(module, name, seen, depth),
            Ann::Generic(outer, args) => self.output_generic(module, outer, args, seen, depth),
            Ann::Union(members) => Err(union_output_error(members)),
            Ann::Literal(_, values) => Ok(OutputType::new(OutputKind::Primitive(
                literal_primitive(values)?,
            ))),
            Ann::Opaque(text) => Err(SchemaError::unsupported(text)),
        }
    }

    fn output_simple(
        &self,
        module: usize,
        name: &str,
        seen: &mut HashSet<(usize, String)>,
        depth: usize,
    ) -> Result<OutputType, SchemaError> {
        if let Some((alias, m)) = self.alias(module, name) {
            return self.output_depth(m, &alias, seen, depth + 1);
        }
        if let Some((m, class, def)) = self.model(module, name) {
            let key = (m, class);
            if seen.contains(&key) {
                return Ok(OutputType::new(OutputKind::Any));
            }
            let def = def.clone();
            seen.insert(key.clone());
            let result = self.model_output(m, &def, seen, depth);
            seen.remove(&key);
            return result;
        }
        let short = last_segment(name);
        match short {
            "Any" | "dict" | "Dict" => return Ok(OutputType::new(OutputKind::Any)),
            "list" | "List" => {
                return Ok(OutputType::new(OutputKind::Array(Box::new(
                    OutputType::new(OutputKind::Any),
                ))));
            }
            _ => {}
        }
        if let Some(p) = Primitive::from_name(short) {
            return Ok(OutputType::new(OutputKind::Primitive(p)));
        }
        Err(match self.imported_from(module, name) {
            Some((n, m)) => SchemaError::unresolvable_imported(&n, &m),
            None => SchemaError::unresolvable(short),
        })
    }

    fn output_generic(
        &self,
        module: usize,
        outer: &str,
        args: &[Ann],
        seen: &mut HashSet<(usize, String)>,
        depth: usize,
    ) -> Result<OutputType, SchemaError> {
        let outer_name = match self.alias(module, outer) {
            Some((Ann::Simple(real), _)) => real,
            _ => outer.to_owned(),
        };
        let short = last_segment(&outer_name);
        let recurse = |a: &Ann, seen: &mut HashSet<(usize, String)>| {
            self.output_depth(module, a, seen, depth + 1)
        };
        match short {
            "Annotated" => match args.first() {
                Some(first) => recurse(first, seen),
                None => Err(SchemaError::unsupported(
                    "Annotated expects at least 1 type argument",
                )),
            },
            "dict" | "Dict" => match args.len() {
                2 => {
                    let value = recurse(&args[1], seen).map_err(|e| SchemaError {
                        message: format!("resolving dict value type: {}", e.message),
                        ..e
                    })?;
                    Ok(OutputType::new(OutputKind::Dict(Box::new(value))))
                }
                0 => Ok(OutputType::new(OutputKind::Any)),
                _ => Err(SchemaError::unsupported(
                    "dict expects 0 or 2 type arguments",
                )),
            },
            "Optional" => {
                if args.len() != 1 {
                    return Err(SchemaError::unsupported(
                        "Optional expects exactly 1 type argument",
                    ));
                }
                Err(SchemaError::optional_output())
            }
            "Union" => Err(union_output_error(args)),
            "list" | "List" => {
                if args.len() != 1 {
                    return Err(SchemaError::unsupported(
                        "list expects exactly 1 type argument",
                    ));
                }
                Ok(OutputType::new(OutputKind::Array(Box::new(recurse(
                    &args[0], seen,
                )?))))
            }
            "Iterator" | "AsyncIterator" => {
                if args.len() != 1 {
                    return Err(SchemaError::unsupported(
                        "Iterator expects exactly 1 type argument",
                    ));
                }
                Ok(OutputType::new(OutputKind::Iterator(Box::new(recurse(
                    &args[0], seen,
                )?))))
            }
            "Generator" | "AsyncGenerator" => {
                let Some(first) = args.first() else {
                    return Err(SchemaError::unsupported(
                        "Generator expects at least 1 type argument",
                    ));
                };
                Ok(OutputType::new(OutputKind::Iterator(Box::new(recurse(
                    first, seen,
                )?))))
            }
            "ConcatenateIterator" | "AsyncConcatenateIterator" => {
                if args.len() != 1 {
                    return Err(SchemaError::unsupported(
                        "ConcatenateIterator expects exactly 1 type argument",
                    ));
                }
                let Ann::Simple(elem) = &args[0] else {
                    return Err(SchemaError::unsupported(
                        "ConcatenateIterator element type must be a simple type",
                    ));
                };
                if Primitive::from_name(elem) != Some(Primitive::String) {
                    return Err(SchemaError::new(
                        crate::schema::error::SchemaErrorKind::ConcatIteratorNotStr,
                        format!("ConcatenateIterator element type must be str, got {elem}"),
                    ));
                }
                Ok(OutputType::new(OutputKind::ConcatenateIterator))
            }
            _ => Err(SchemaError::unsupported(format!(
                "{short}[...] is not a supported output type"
            ))),
        }
    }

    fn model_output(
        &self,
        module: usize,
        def: &ModelDef,
        seen: &mut HashSet<(usize, String)>,
        depth: usize,
    ) -> Result<OutputType, SchemaError> {
        let mut fields = Vec::new();
        for field in &def.fields {
            let (output_type, mut required) = self
                .field_output(module, &field.ann, seen, depth + 1)
                .map_err(|e| {
                    let file = &self.project.modules[module].file.rel_path;
                    SchemaError {
                        message: format!("field \"{}\": {}", field.name, e.message),
                        ..e
                    }
                    .at(file, field.line)
                })?;
            if let Some(key_required) = field.key_required {
                required = key_required;
            }
            if field.has_default {
                required = false;
            }
            fields.push(OutputField {
                name: field.name.clone(),
                output_type,
                required,
            });
        }
        Ok(OutputType::new(OutputKind::Object(fields)))
    }

    /// A model field's type: like an output, but `Optional[T]` is allowed (nullable, not required).
    fn field_output(
        &self,
        module: usize,
        ann: &Ann,
        seen: &mut HashSet<(usize, String)>,
        depth: usize,
    ) -> Result<(OutputType, bool), SchemaError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        if let Some(inner) = self.opaque_inner(module, ann) {
            if let Some(opt) = optional_inner(inner) {
                let mut t = opaque_output(opt);
                t.nullable = true;
                return Ok((t, false));
            }
            return Ok((opaque_output(inner), true));
        }
        if let Ann::Generic(outer, args) = ann
            && last_segment(outer) == "Annotated"
        {
            let Some(first) = args.first() else {
                return Err(SchemaError::unsupported(
                    "Annotated expects at least 1 type argument",
                ));
            };
            return self.field_output(module, first, seen, depth + 1);
        }
        if let Some(inner) = optional_inner(ann) {
            let mut t = self.output_depth(module, inner, seen, depth + 1)?;
            t.nullable = true;
            return Ok((t, false));
        }
        Ok((self.output_depth(module, ann, seen, depth + 1)?, true))
    }
}

fn union_output_error(members: &[Ann]) -> SchemaError {
    if members.len() == 2 && members.iter().any(Ann::is_none) {
        SchemaError::optional_output()
    } else {
        SchemaError::unsupported("union types are not supported as output")
    }
}

/// `Optional[X]`, `Union[X, None]`, `X | None` -> `X`.
fn optional_inner(ann: &Ann) -> Option<&Ann> {
    match ann {
        Ann::Generic(outer, args) if last_segment(outer) == "Optional" && args.len() == 1 => {
            Some(&args[0])
        }
        Ann::Generic(outer, args) if last_segment(outer) == "Union" && args.len() == 2 => {
            args.iter().position(Ann::is_none).map(|i| &args[1 - i])
        }
        Ann::Union(args) if args.len() == 2 => {
            args.iter().position(Ann::is_none).map(|i| &args[1 - i])
        }
        _ => None,
    }
}

fn opaque_input(inner: &Ann) -> InputType {
    if let Some(opt) = optional_inner(inner) {
        let mut t = opaque_input(opt);
        t.nullable = true;
        return t;
    }
    let any = InputType::primitive(Primitive::Any);
    match inner {
        Ann::Simple(n) | Ann::Generic(n, _) if matches!(last_segment(n), "list" | "List") => {
            InputType::array(any)
        }
        Ann::Generic(n, args) if last_segment(n) == "Annotated" && !args.is_empty() => {
            opaque_input(&args[0])
        }
        _ => any,
    }
}

fn opaque_output(inner: &Ann) -> OutputType {
    match inner {
        Ann::Simple(n) | Ann::Generic(n, _) if matches!(last_segment(n), "list" | "List") => {
            OutputType::new(OutputKind::Array(Box::new(OutputType::new(
                OutputKind::Primitive(Primitive::Any),
            ))))
        }
        _ => OutputType::new(OutputKind::Primitive(Primitive::Any)),
    }
}

fn validate_union_variant(t: &InputType) -> Result<(), SchemaError> {
    if t.nullable {
        return Err(SchemaError::unsupported(
            "nested nullable variants are not supported in union inputs",
        ));
    }
    match &t.kind {
        InputKind::Primitive(p @ (Primitive::Path | Primitive::File | Primitive::Secret)) => {
            Err(SchemaError::unsupported(format!(
                "{} is not supported in union inputs",
                p.python_name()
            )))
        }
        InputKind::Array(elem) => validate_union_variant(elem),
        InputKind::Union(_) => Err(SchemaError::unsupported(
            "nested union inputs are not supported",
        )),
        InputKind::Primitive(_) => Ok(()),
    }
}

/// The type of a `Literal[...]`'s values; they must agree.
fn literal_primitive(values: &[Value]) -> Result<Primitive, SchemaError> {
    let kind = |v: &Value| match v {
        Value::Str(_) => Some(Primitive::String),
        Value::Int(_) => Some(Primitive::Integer),
        Value::Bool(_) => Some(Primitive::Bool),
        Value::Float(_) => Some(Primitive::Float),
        _ => None,
    };
    let mut found: Option<Primitive> = None;
    for v in values {
        let Some(k) = kind(v) else {
            return Err(SchemaError::unsupported(
                "Literal values must be str, int, float or bool",
            ));
        };
        if found.is_some_and(|f| f != k) {
            return Err(SchemaError::unsupported(
                "Literal values must all have the same type",
            ));
        }
        found = Some(k);
    }
    found.ok_or_else(|| SchemaError::unsupported("Literal expects at least 1 value"))
}
