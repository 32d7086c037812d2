//! The entry point: locating `run`/`predict`/`train`, its parameters and `Input(...)` calls,
//! its return type and its decorators.

use std::collections::HashMap;

use tree_sitter::Node;

use super::annotation::{self, Ann};
use super::literal;
use super::module::{Module, Project, top_level_definitions};
use super::resolve::Resolver;
use super::syntax::{
    SourceFile, children, def_name, definition, line, named_children, text, unwrap_statement,
};
use crate::schema::error::{SchemaError, SchemaErrorKind};
use crate::schema::model::{InputField, Mode, ModelSchema, Primitive, Value};

/// The keyword arguments of one `Input(...)` call.
#[derive(Debug, Clone, Default)]
struct InputCall {
    default: Option<Value>,
    description: Option<String>,
    ge: Option<f64>,
    le: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    regex: Option<String>,
    choices: Option<Vec<Value>>,
    deprecated: Option<bool>,
    accept: Option<String>,
}

/// `Input(...)` calls stored as class attributes (`Cls.attr`) or returned by helper methods
/// (`Cls.method(...)`), which predictors reuse as defaults.
#[derive(Default)]
struct InputRegistry {
    attributes: HashMap<String, InputCall>,
    methods: HashMap<String, (Vec<String>, InputCall)>,
}

struct Ctx<'a> {
    module: &'a Module,
    file: &'a SourceFile,
    consts: &'a HashMap<String, super::module::Symbol>,
    registry: InputRegistry,
    method: String,
}

/// Extracts the schema model of entry point `name` in the runner file (module 0).
pub fn extract(project: &Project, name: &str, mode: Mode) -> Result<ModelSchema, SchemaError> {
    let module = &project.modules[0];
    let file = &module.file;
    let (func, decorators, is_method) = locate(module, name, mode)?;
    let method = def_name(func, &file.src).unwrap_or(name).to_owned();
    let mut ctx = Ctx {
        module,
        file,
        consts: &module.symbols,
        registry: InputRegistry::default(),
        method,
    };
    ctx.registry = collect_registry(&ctx);

    let is_async = func.child(0).is_some_and(|c| c.kind() == "async");
    let (streaming, concurrency_max) = read_decorators(&ctx, &decorators, is_async)?;
    let is_static = decorators
        .iter()
        .any(|d| decorator_name(d, &file.src).0 == "staticmethod");

    let params = func.child_by_field_name("parameters").ok_or_else(|| {
        file.locate(
            SchemaError::new(SchemaErrorKind::Parse, "function has no parameters node"),
            func,
        )
    })?;
    let resolver = Resolver { project };
    let inputs = extract_inputs(&ctx, &resolver, params, is_method && !is_static)?;

    let Some(ret) = func.child_by_field_name("return_type") else {
        return Err(file.locate(
            SchemaError::new(
                SchemaErrorKind::MissingReturnType,
                format!("missing return type annotation on {}", ctx.method),
            ),
            func,
        ));
    };
    let ann = parse_annotation(file, ret)?;
    let output = resolver.output(0, &ann).map_err(|e| file.locate(e, ret))?;

    Ok(ModelSchema {
        mode,
        inputs,
        output,
        streaming,
        concurrency_max,
        is_async,
        file: file.rel_path.clone(),
    })
}

fn parse_annotation(file: &SourceFile, node: Node<'_>) -> Result<Ann, SchemaError> {
    let raw = file.text(node);
    annotation::parse(raw).ok_or_else(|| {
        let shown: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        file.locate(SchemaError::unsupported(shown), node)
    })
}

/// Finds the target function: a method of class `name`, or the function `name`.
fn locate<'t>(
    module: &'t Module,
    name: &str,
    mode: Mode,
) -> Result<(Node<'t>, Vec<Node<'t>>, bool), SchemaError> {
    let file = &module.file;
    let classes = top_level_definitions(file, "class_definition");
    if let Some((class, _)) = classes
        .iter()
        .find(|(c, _)| def_name(*c, &file.src) == Some(name))
    {
        let find = |method: &str| find_method(file, &classes, *class, method, 0);
        return match mode {
            Mode::Train => find("train").map(|(f, d)| (f, d, true)).ok_or_else(|| {
                file.locate(
                    SchemaError::new(
                        SchemaErrorKind::MethodNotFound,
                        format!("train method not found on {name}"),
                    ),
                    *class,
                )
            }),
            Mode::Predict => match (find("run"), find("predict")) {
                (Some(_), Some(_)) => Err(file.locate(
                    SchemaError::new(
                        SchemaErrorKind::MethodNotFound,
                        format!("{name} must define either run() or predict(), not both"),
                    ),
                    *class,
                )),
                (Some((f, d)), None) | (None, Some((f, d))) => Ok((f, d, true)),
                (None, None) => Err(file.locate(
                    SchemaError::new(
                        SchemaErrorKind::MethodNotFound,
                        format!("run or predict method not found: {name}"),
                    ),
                    *class,
                )),
            },
        };
    }
    for (func, decorators) in top_level_definitions(file, "function_definition") {
        if def_name(func, &file.src) == Some(name) {
            return Ok((func, decorators, false));
        }
    }
    Err(SchemaError::new(
        SchemaErrorKind::PredictorNotFound,
        format!("predictor not found: {name}"),
    )
    .at(&file.rel_path, 1))
}

/// A method defined in the class body, else in a base class defined in the same file.
fn find_method<'t>(
    file: &'t SourceFile,
    classes: &[(Node<'t>, Vec<Node<'t>>)],
    class: Node<'t>,
    method: &str,
    depth: usize,
) -> Option<(Node<'t>, Vec<Node<'t>>)> {
    if depth > annotation::MAX_DEPTH {
        return None;
    }
    let body = class.child_by_field_name("body")?;
    for stmt in named_children(body) {
        if let Some((func, decorators)) = definition(stmt, "function_definition")
            && def_name(func, &file.src) == Some(method)
        {
            return Some((func, decorators));
        }
    }
    let supers = class.child_by_field_name("superclasses")?;
    for sup in named_children(supers) {
        let base = file.text(sup);
        if let Some((parent, _)) = classes
            .iter()
            .find(|(c, _)| def_name(*c, &file.src) == Some(base))
            && let Some(found) = find_method(file, classes, *parent, method, depth + 1)
        {
            return Some(found);
        }
    }
    None
}

/// `(name, call arguments)` of a decorator: `@x`, `@cog.x`, `@x(...)`.
fn decorator_name<'t>(decorator: &Node<'t>, src: &'t str) -> (&'t str, Option<Node<'t>>) {
    let Some(expr) = decorator.named_child(0) else {
        return ("", None);
    };
    if expr.kind() == "call" {
        let name = expr
            .child_by_field_name("function")
            .map_or("", |f| text(f, src));
        return (
            annotation::last_segment(name),
            expr.child_by_field_name("arguments"),
        );
    }
    (annotation::last_segment(text(expr, src)), None)
}

fn read_decorators(
    ctx: &Ctx<'_>,
    decorators: &[Node<'_>],
    is_async: bool,
) -> Result<(bool, Option<u32>), SchemaError> {
    let src = &ctx.file.src;
    let mut streaming = false;
    let mut concurrency = None;
    for decorator in decorators {
        let (name, args) = decorator_name(decorator, src);
        match name {
            "streaming" => streaming = true,
            "concurrent" => {
                let err = |msg: &str| {
                    ctx.file.locate(
                        SchemaError::new(SchemaErrorKind::InvalidDecorator, msg),
                        *decorator,
                    )
                };
                let mut max: i64 = 1;
                if let Some(args) = args {
                    for arg in named_children(args) {
                        if arg.kind() != "keyword_argument" {
                            continue;
                        }
                        let key = arg.child_by_field_name("name").map(|n| text(n, src));
                        let Some(value) = arg.child_by_field_name("value") else {
                            continue;
                        };
                        if key == Some("max") {
                            max = match literal::eval(value, src, ctx.consts) {
                                Some(Value::Int(n)) => n,
                                _ => return Err(err("concurrent max must be an integer")),
                            };
                        }
                    }
                }
                if max < 1 {
                    return Err(err("concurrent max must be at least 1"));
                }
                if max > 1 && !is_async {
                    return Err(err(
                        "concurrent max greater than 1 requires an async function",
                    ));
                }
                concurrency =
                    Some(u32::try_from(max).map_err(|_| err("concurrent max is too large"))?);
            }
            _ => {}
        }
    }
    Ok((streaming, concurrency))
}

fn is_input_call(ctx: &Ctx<'_>, node: Node<'_>) -> bool {
    node.kind() == "call"
        && node
            .child_by_field_name("function")
            .is_some_and(|f| ctx.module.is_cog_name(text(f, &ctx.file.src), "Input"))
}

fn collect_registry(ctx: &Ctx<'_>) -> InputRegistry {
    let src = &ctx.file.src;
    let mut registry = InputRegistry::default();
    for (class, _) in top_level_definitions(ctx.file, "class_definition") {
        let (Some(class_name), Some(body)) =
            (def_name(class, src), class.child_by_field_name("body"))
        else {
            continue;
        };
        for stmt in named_children(body) {
            let inner = unwrap_statement(stmt);
            if inner.kind() == "assignment"
                && let (Some(left), Some(right)) = (
                    inner.child_by_field_name("left"),
                    inner.child_by_field_name("right"),
                )
                && left.kind() == "identifier"
                && is_input_call(ctx, right)
            {
                let key = format!("{class_name}.{}", text(left, src));
                if let Ok(call) = parse_input_call(ctx, right, &key, true) {
                    registry.attributes.insert(key, call);
                }
            }
            let Some((func, _)) = definition(inner, "function_definition") else {
                continue;
            };
            let (Some(method), Some(params), Some(fbody)) = (
                def_name(func, src),
                func.child_by_field_name("parameters"),
                func.child_by_field_name("body"),
            ) else {
                continue;
            };
            let names: Vec<String> = named_children(params)
                .into_iter()
                .filter_map(|p| param_name(p, src))
                .filter(|n| n != "self" && n != "cls")
                .collect();
            let ret = named_children(fbody)
                .into_iter()
                .filter(|s| s.kind() == "return_statement")
                .find_map(|s| s.named_child(0).filter(|e| is_input_call(ctx, *e)));
            if let Some(call_node) = ret {
                let key = format!("{class_name}.{method}");
                if let Ok(call) = parse_input_call(ctx, call_node, &key, true) {
                    registry.methods.insert(key, (names, call));
                }
            }
        }
    }
    registry
}

fn param_name(param: Node<'_>, src: &str) -> Option<String> {
    match param.kind() {
        "identifier" => Some(text(param, src).to_owned()),
        "typed_parameter" => named_children(param)
            .into_iter()
            .find(|c| c.kind() == "identifier")
            .map(|c| text(c, src).to_owned()),
        "typed_default_parameter" | "default_parameter" => param
            .child_by_field_name("name")
            .map(|n| text(n, src).to_owned()),
        _ => None,
    }
}

/// A reference to a registered `Input(...)`: `Cls.attr` or `Cls.method(args)`.
fn registry_reference(ctx: &Ctx<'_>, node: Node<'_>) -> Option<InputCall> {
    let src = &ctx.file.src;
    match node.kind() {
        "attribute" => ctx.registry.attributes.get(text(node, src)).cloned(),
        "call" => {
            let func = node
                .child_by_field_name("function")
                .filter(|f| f.kind() == "attribute")?;
            let (names, base) = ctx.registry.methods.get(text(func, src))?;
            let mut call = base.clone();
            let mut positional = 0;
            for arg in node
                .child_by_field_name("arguments")
                .map(named_children)
                .unwrap_or_default()
            {
                let (name, value) = if arg.kind() == "keyword_argument" {
                    let (Some(n), Some(v)) = (
                        arg.child_by_field_name("name"),
                        arg.child_by_field_name("value"),
                    ) else {
                        continue;
                    };
                    (text(n, src).to_owned(), v)
                } else if let Some(n) = names.get(positional) {
                    positional += 1;
                    (n.clone(), arg)
                } else {
                    continue;
                };
                match name.as_str() {
                    "default" => {
                        call.default = literal::eval(value, src, ctx.consts).or(call.default);
                    }
                    "description" => {
                        call.description = string_value(ctx, value).or(call.description);
                    }
                    "ge" => call.ge = number_value(ctx, value).or(call.ge),
                    "le" => call.le = number_value(ctx, value).or(call.le),
                    _ => {}
                }
            }
            Some(call)
        }
        _ => None,
    }
}

fn string_value(ctx: &Ctx<'_>, node: Node<'_>) -> Option<String> {
    literal::string(node, &ctx.file.src).or_else(|| {
        match literal::eval(node, &ctx.file.src, ctx.consts) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    })
}

fn number_value(ctx: &Ctx<'_>, node: Node<'_>) -> Option<f64> {
    literal::eval(node, &ctx.file.src, ctx.consts).and_then(|v| v.as_f64())
}

fn not_resolvable(param: &str, expr: &str) -> SchemaError {
    SchemaError::new(
        SchemaErrorKind::DefaultNotResolvable,
        format!(
            "default value for parameter '{param}' cannot be statically resolved: `{expr}`. Defaults must be literals \
             (string, int, float, bool, None, list) or Input() calls."
        ),
    )
}

/// `lenient` is for registry helpers, whose defaults may be their own parameters
/// (`def steps(default=20): return Input(default=default)`): those are filled at the call site.
fn parse_input_call(
    ctx: &Ctx<'_>,
    node: Node<'_>,
    param: &str,
    lenient: bool,
) -> Result<InputCall, SchemaError> {
    let src = &ctx.file.src;
    let mut call = InputCall::default();
    let Some(args) = node.child_by_field_name("arguments") else {
        return Ok(call);
    };
    let mut positional = 0;
    for arg in named_children(args) {
        if arg.kind() == "comment" {
            continue;
        }
        if arg.kind() != "keyword_argument" {
            // Input(default=None, *, ...): the one positional argument is the default.
            if positional == 0 {
                call.default = literal::eval(arg, src, ctx.consts).or(Some(Value::None));
            }
            positional += 1;
            continue;
        }
        let (Some(key), Some(value)) = (
            arg.child_by_field_name("name"),
            arg.child_by_field_name("value"),
        ) else {
            continue;
        };
        let key = text(key, src);
        let ignored = |what: &str| {
            tracing::warn!(
                "{}:{}: {what} for parameter '{param}' cannot be statically resolved; it is left out of the schema",
                ctx.file.rel_path.display(),
                line(value)
            );
        };
        match key {
            "default" => match literal::eval(value, src, ctx.consts) {
                Some(v) => call.default = Some(v),
                None if lenient => {}
                // Cog reads an unresolvable `Input(default=...)` as `default=None` (so a
                // non-optional input becomes required); warn rather than fail the build.
                None => {
                    tracing::warn!(
                        "{}:{}: default for parameter '{param}' cannot be statically resolved \
                         (`{}`); the schema treats it as default=None",
                        ctx.file.rel_path.display(),
                        line(value),
                        text(value, src)
                    );
                    call.default = Some(Value::None);
                }
            },
            "default_factory" => {
                return Err(ctx.file.locate(
                    SchemaError::new(
                        SchemaErrorKind::DefaultFactoryNotSupported,
                        format!(
                            "default_factory is not supported in Input() \u{2014} use a literal default value instead \
                             (parameter '{param}')"
                        ),
                    ),
                    arg,
                ));
            }
            "description" => match string_value(ctx, value) {
                Some(s) => call.description = Some(s),
                None => ignored("description"),
            },
            "ge" | "le" => match number_value(ctx, value) {
                Some(n) if key == "ge" => call.ge = Some(n),
                Some(n) => call.le = Some(n),
                None => ignored(key),
            },
            "min_length" | "max_length" => match number_value(ctx, value) {
                Some(n) if n >= 0.0 && key == "min_length" => call.min_length = Some(n as u64),
                Some(n) if n >= 0.0 => call.max_length = Some(n as u64),
                _ => ignored(key),
            },
            "regex" => match string_value(ctx, value) {
                Some(s) => call.regex = Some(s),
                None => ignored("regex"),
            },
            "choices" => {
                call.choices = Some(resolve_choices(ctx, value, 0).ok_or_else(|| {
                    ctx.file.locate(
                        SchemaError::new(
                            SchemaErrorKind::ChoicesNotResolvable,
                            format!(
                                "choices for parameter '{param}' cannot be statically resolved \u{2014} use a literal \
                                 list instead (e.g. choices=[\"a\", \"b\"])"
                            ),
                        ),
                        value,
                    )
                })?);
            }
            "deprecated" => match literal::eval(value, src, ctx.consts) {
                Some(Value::Bool(b)) => call.deprecated = Some(b),
                _ => ignored("deprecated"),
            },
            "accept" => match string_value(ctx, value) {
                Some(s) => call.accept = Some(s),
                None => ignored("accept"),
            },
            _ => {}
        }
    }
    Ok(call)
}

/// `choices=`: a literal or constant list, `list(D.keys())`, `list(D.values())`, or `a + b`.
fn resolve_choices(ctx: &Ctx<'_>, node: Node<'_>, depth: usize) -> Option<Vec<Value>> {
    if depth > annotation::MAX_DEPTH {
        return None;
    }
    let src = &ctx.file.src;
    match node.kind() {
        "binary_operator" => {
            let op = children(node)
                .into_iter()
                .find(|c| !c.is_named())
                .map(|c| text(c, src));
            if op != Some("+") {
                return None;
            }
            let mut left = resolve_choices(ctx, node.child_by_field_name("left")?, depth + 1)?;
            left.extend(resolve_choices(
                ctx,
                node.child_by_field_name("right")?,
                depth + 1,
            )?);
            Some(left)
        }
        "call" => {
            let func = node.child_by_field_name("function")?;
            if text(func, src) != "list" {
                return None;
            }
            let arg = named_children(node.child_by_field_name("arguments")?)
                .into_iter()
                .next()?;
            let (dict_node, method) = if arg.kind() == "call" {
                let inner = arg
                    .child_by_field_name("function")
                    .filter(|f| f.kind() == "attribute")?;
                let attr = inner
                    .child_by_field_name("attribute")
                    .map(|a| text(a, src))?;
                (inner.child_by_field_name("object")?, attr)
            } else {
                (arg, "keys")
            };
            match literal::eval(dict_node, src, ctx.consts)? {
                Value::Dict(pairs) => match method {
                    "keys" => Some(pairs.into_iter().map(|(k, _)| k).collect()),
                    "values" => Some(pairs.into_iter().map(|(_, v)| v).collect()),
                    _ => None,
                },
                Value::List(items) if arg.kind() != "call" => Some(items),
                _ => None,
            }
        }
        _ => match literal::eval(node, src, ctx.consts)? {
            Value::List(items) => Some(items),
            _ => None,
        },
    }
}

fn extract_inputs(
    ctx: &Ctx<'_>,
    resolver: &Resolver<'_>,
    params: Node<'_>,
    skip_first: bool,
) -> Result<Vec<InputField>, SchemaError> {
    let src = &ctx.file.src;
    let mut inputs = Vec::new();
    let mut skipped_first = !skip_first;
    let missing_annotation = |name: &str, node: Node<'_>| {
        ctx.file.locate(
            SchemaError::new(
                SchemaErrorKind::MissingTypeAnnotation,
                format!(
                    "parameter '{name}' on {} has no type annotation",
                    ctx.method
                ),
            ),
            node,
        )
    };
    for param in named_children(params) {
        if param.kind() == "comment" {
            continue;
        }
        if !skipped_first {
            skipped_first = true;
            continue;
        }
        let (name, type_node, value) = match param.kind() {
            "identifier" => return Err(missing_annotation(text(param, src), param)),
            "default_parameter" => {
                let name = param
                    .child_by_field_name("name")
                    .map_or("<unknown>", |n| text(n, src));
                return Err(missing_annotation(name, param));
            }
            "typed_parameter" => {
                // `*args: T` / `**kwargs: T` are not inputs.
                let Some(ident) = named_children(param)
                    .into_iter()
                    .find(|c| c.kind() == "identifier")
                else {
                    continue;
                };
                (text(ident, src), param.child_by_field_name("type"), None)
            }
            "typed_default_parameter" => (
                param
                    .child_by_field_name("name")
                    .map_or("<unknown>", |n| text(n, src)),
                param.child_by_field_name("type"),
                param.child_by_field_name("value"),
            ),
            // `*`, `/`, `*args`, `**kwargs`.
            _ => continue,
        };
        let Some(type_node) = type_node else {
            return Err(missing_annotation(name, param));
        };
        let ann = parse_annotation(ctx.file, type_node)?;
        let (input_type, literal_choices) = resolver
            .input(0, &ann)
            .map_err(|e| ctx.file.locate(e, type_node))?;

        let call =
            match value {
                None => InputCall::default(),
                Some(v) if is_input_call(ctx, v) => parse_input_call(ctx, v, name, false)?,
                Some(v) => match registry_reference(ctx, v) {
                    Some(call) => call,
                    None => InputCall {
                        default: Some(literal::eval(v, src, ctx.consts).ok_or_else(|| {
                            ctx.file.locate(not_resolvable(name, text(v, src)), v)
                        })?),
                        ..InputCall::default()
                    },
                },
            };

        let (flat, _) = input_type.flat();
        if call.accept.is_some() && !matches!(flat, Primitive::Path | Primitive::File) {
            return Err(ctx.file.locate(
                SchemaError::new(
                    SchemaErrorKind::InvalidConstraint,
                    format!("accept is only valid on Path or File inputs (parameter '{name}')"),
                ),
                param,
            ));
        }
        let choices = call.choices.or(literal_choices).unwrap_or_default();
        if input_type.is_union()
            && (!choices.is_empty()
                || call.ge.is_some()
                || call.le.is_some()
                || call.min_length.is_some()
                || call.max_length.is_some()
                || call.regex.is_some())
        {
            return Err(ctx.file.locate(
                SchemaError::unsupported(
                    "constraints and choices are not supported on union inputs",
                ),
                param,
            ));
        }
        inputs.push(InputField {
            name: name.to_owned(),
            order: inputs.len(),
            input_type,
            default: call.default,
            description: call.description,
            ge: call.ge,
            le: call.le,
            min_length: call.min_length,
            max_length: call.max_length,
            regex: call.regex,
            choices,
            deprecated: call.deprecated.unwrap_or(false),
            accept: call.accept,
            line: line(param),
        });
    }
    Ok(inputs)
}
