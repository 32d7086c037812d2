//! The entry point: locating `run`/`predict`/`train`, its parameters and `Input(...)` calls,
//! its return type and its decorators.

use std::cell::RefCell;

use tree_sitter::Node;

use super::annotation::{self, Ann};
use super::eval::{Eval, squeeze};
use super::module::{Module, top_level_definitions};
use super::project::Project;
use super::pyval::{InputArg, PyVal};
use super::resolve::Resolver;
use super::syntax::{SourceFile, def_name, definition, line, named_children, text};
use crate::schema::error::{SchemaError, SchemaErrorKind};
use crate::schema::model::{INPUT_KEYWORDS as KEYWORDS, Question};
use crate::schema::model::{
    InputField, Mode, ModelSchema, OutputKind, OutputType, Primitive, Value,
};

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

struct Ctx<'a> {
    project: &'a Project,
    file: &'a SourceFile,
    method: String,
    mode: Mode,
    /// `Some`: what cannot be computed statically is recorded here (to be asked of Python in
    /// the built image) instead of failing; `None`: it is an error.
    deferred: Option<RefCell<Vec<Question>>>,
}

impl Ctx<'_> {
    fn eval(&self) -> Eval<'_> {
        Eval::new(&self.project.modules)
    }

    /// Records `error` as a question for the runtime path (`param`'s `key`), or returns it.
    fn defer(&self, param: Option<&str>, key: &str, error: SchemaError) -> Result<(), SchemaError> {
        match &self.deferred {
            Some(questions) => {
                questions.borrow_mut().push(Question {
                    mode: self.mode,
                    param: param.map(str::to_owned),
                    key: key.to_owned(),
                    reason: error.to_string(),
                });
                Ok(())
            }
            None => Err(error),
        }
    }
}

/// Extracts the schema model of entry point `name` in the runner file (module 0).
pub fn extract(project: &Project, name: &str, mode: Mode) -> Result<ModelSchema, SchemaError> {
    extract_with(project, name, mode, false).map(|(model, _, _)| model)
}

/// [`extract`]; with `defer`, the values static evaluation cannot compute (an `Input()`
/// keyword, a default, the missing return annotation) are returned as [`Question`]s instead of
/// errors, their places in the model left empty (the output `Any`) until answered. Also
/// returns the entry point's function name (`predict`, `run`, ...).
pub fn extract_with(
    project: &Project,
    name: &str,
    mode: Mode,
    defer: bool,
) -> Result<(ModelSchema, Vec<Question>, String), SchemaError> {
    let module = &project.modules[0];
    let file = &module.file;
    let (func, decorators, is_method) = locate(module, name, mode)?;
    let method = def_name(func, &file.src).unwrap_or(name).to_owned();
    let ctx = Ctx {
        project,
        file,
        method,
        mode,
        deferred: defer.then(|| RefCell::new(Vec::new())),
    };

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

    let output = if let Some(ret) = func.child_by_field_name("return_type") {
        let ann = parse_annotation(file, ret)?;
        resolver.output(0, &ann).map_err(|e| file.locate(e, ret))?
    } else {
        let missing = file.locate(
            SchemaError::new(
                SchemaErrorKind::MissingReturnType,
                format!("missing return type annotation on {}", ctx.method),
            ),
            func,
        );
        ctx.defer(None, "return", missing)?;
        OutputType::new(OutputKind::Any)
    };

    let model = ModelSchema {
        mode,
        inputs,
        output,
        streaming,
        concurrency_max,
        is_async,
        file: file.rel_path.clone(),
    };
    let questions = ctx.deferred.map(RefCell::into_inner).unwrap_or_default();
    Ok((model, questions, ctx.method))
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
                            max = match ctx.eval().expr(0, value) {
                                PyVal::Int(n) => n,
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

fn not_resolvable(param: &str, expr: &str, reason: &str) -> SchemaError {
    SchemaError::new(
        SchemaErrorKind::DefaultNotResolvable,
        format!(
            "default value for parameter '{param}' cannot be statically resolved: `{expr}` ({reason}). Defaults \
             must be values computed from literals and constants of the project, or Input() calls."
        ),
    )
}

/// A parameter's default expression: an `Input(...)` (written here, or returned by a helper,
/// a class attribute or another module), or a plain default value.
fn input_call(ctx: &Ctx<'_>, param: &str, value: Node<'_>) -> Result<InputCall, SchemaError> {
    let unresolved = |reason: &str| {
        let error = ctx.file.locate(
            not_resolvable(param, &squeeze(ctx.file.text(value)), reason),
            value,
        );
        // Python answers for the whole default: an `Input(...)` or a plain value.
        ctx.defer(Some(param), "input", error)
            .map(|()| InputCall::default())
    };
    match ctx.eval().expr(0, value) {
        PyVal::Input(args) => InputCall::from_args(ctx, param, &args),
        PyVal::Unknown(reason) => unresolved(&reason),
        other => match other.to_value() {
            Ok(v) => Ok(InputCall {
                default: Some(v),
                ..InputCall::default()
            }),
            Err(reason) => unresolved(&reason),
        },
    }
}

impl InputCall {
    fn has_constraints(&self) -> bool {
        self.ge.is_some()
            || self.le.is_some()
            || self.min_length.is_some()
            || self.max_length.is_some()
            || self.regex.is_some()
    }

    /// The keyword arguments of an evaluated `Input(...)`. A keyword whose value cannot be
    /// computed is an error naming the parameter, the keyword and why: nothing is dropped.
    fn from_args(ctx: &Ctx<'_>, param: &str, args: &[InputArg]) -> Result<InputCall, SchemaError> {
        let mut call = InputCall::default();
        for arg in args {
            let key = arg.key.as_deref().unwrap_or("default");
            let file = &ctx.project.modules[arg.module].file.rel_path;
            let fail = |kind: SchemaErrorKind, reason: &str| {
                SchemaError::new(
                    kind,
                    format!(
                        "{key} for parameter '{param}' cannot be statically resolved: `{}` ({reason})",
                        arg.text
                    ),
                )
                .at(file, arg.line)
            };
            let unresolved = |reason: &str| {
                let kind = match key {
                    "default" => SchemaErrorKind::DefaultNotResolvable,
                    "choices" => SchemaErrorKind::ChoicesNotResolvable,
                    _ => SchemaErrorKind::ArgumentNotResolvable,
                };
                fail(kind, reason)
            };
            if let PyVal::Unknown(reason) = &arg.value {
                if key == "default_factory" {
                    return Err(default_factory(param).at(file, arg.line));
                }
                if KEYWORDS.contains(&key) {
                    ctx.defer(Some(param), key, unresolved(reason))?;
                    continue;
                }
                return Err(unresolved(reason));
            }
            let wrong_type = |want: &str| {
                unresolved(&format!(
                    "{key} must be {want}, got a {}",
                    arg.value.type_name()
                ))
            };
            match key {
                "default" => match arg.value.to_value() {
                    Ok(v) => call.default = Some(v),
                    Err(r) => ctx.defer(Some(param), key, unresolved(&r))?,
                },
                "default_factory" => return Err(default_factory(param).at(file, arg.line)),
                "description" | "regex" | "accept" => {
                    let s = match &arg.value {
                        PyVal::None => None,
                        v => Some(v.as_str().ok_or_else(|| wrong_type("a str"))?.to_owned()),
                    };
                    match key {
                        "description" => call.description = s,
                        "regex" => call.regex = s,
                        _ => call.accept = s,
                    }
                }
                "ge" | "le" => {
                    let n = match &arg.value {
                        PyVal::None => None,
                        v => Some(v.as_f64().ok_or_else(|| wrong_type("a number"))?),
                    };
                    if key == "ge" {
                        call.ge = n;
                    } else {
                        call.le = n;
                    }
                }
                "min_length" | "max_length" => {
                    let n = match &arg.value {
                        PyVal::None => None,
                        v => Some(
                            v.as_int()
                                .and_then(|i| u64::try_from(i).ok())
                                .ok_or_else(|| wrong_type("a non-negative int"))?,
                        ),
                    };
                    if key == "min_length" {
                        call.min_length = n;
                    } else {
                        call.max_length = n;
                    }
                }
                "choices" => {
                    call.choices = match &arg.value {
                        PyVal::None => None,
                        v => match v
                            .iterate()
                            .and_then(|items| items.iter().map(PyVal::to_value).collect())
                        {
                            Ok(choices) => Some(choices),
                            Err(r) => {
                                ctx.defer(Some(param), key, unresolved(&r))?;
                                None
                            }
                        },
                    }
                }
                "deprecated" => match &arg.value {
                    PyVal::None => call.deprecated = None,
                    PyVal::Bool(b) => call.deprecated = Some(*b),
                    _ => return Err(wrong_type("a bool")),
                },
                other => {
                    return Err(SchemaError::new(
                        SchemaErrorKind::InvalidConstraint,
                        format!("Input() has no argument '{other}' (parameter '{param}')"),
                    )
                    .at(file, arg.line));
                }
            }
        }
        Ok(call)
    }
}

fn default_factory(param: &str) -> SchemaError {
    SchemaError::new(
        SchemaErrorKind::DefaultFactoryNotSupported,
        format!(
            "default_factory is not supported in Input() \u{2014} use a literal default value instead \
             (parameter '{param}')"
        ),
    )
}

/// A parameter of the entry point: its name, annotation and default expression.
struct Param<'t> {
    name: &'t str,
    node: Node<'t>,
    type_node: Node<'t>,
    value: Option<Node<'t>>,
}

fn missing_annotation(ctx: &Ctx<'_>, name: &str, node: Node<'_>) -> SchemaError {
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
}

/// Reads one parameter; `None` for `*`, `/`, `*args` and `**kwargs`.
fn read_param<'t>(ctx: &Ctx<'t>, param: Node<'t>) -> Result<Option<Param<'t>>, SchemaError> {
    let src = ctx.file.src.as_str();
    let field_name = |p: Node<'t>| {
        p.child_by_field_name("name")
            .map_or("<unknown>", |n| text(n, src))
    };
    let (name, value) = match param.kind() {
        "identifier" => return Err(missing_annotation(ctx, text(param, src), param)),
        "default_parameter" => return Err(missing_annotation(ctx, field_name(param), param)),
        "typed_parameter" => {
            // `*args: T` / `**kwargs: T` are not inputs.
            let Some(ident) = named_children(param)
                .into_iter()
                .find(|c| c.kind() == "identifier")
            else {
                return Ok(None);
            };
            (text(ident, src), None)
        }
        "typed_default_parameter" => (field_name(param), param.child_by_field_name("value")),
        _ => return Ok(None),
    };
    let Some(type_node) = param.child_by_field_name("type") else {
        return Err(missing_annotation(ctx, name, param));
    };
    Ok(Some(Param {
        name,
        node: param,
        type_node,
        value,
    }))
}

fn extract_inputs(
    ctx: &Ctx<'_>,
    resolver: &Resolver<'_>,
    params: Node<'_>,
    skip_first: bool,
) -> Result<Vec<InputField>, SchemaError> {
    let mut inputs = Vec::new();
    let nodes = named_children(params)
        .into_iter()
        .filter(|p| p.kind() != "comment")
        .skip(usize::from(skip_first));
    for node in nodes {
        let Some(param) = read_param(ctx, node)? else {
            continue;
        };
        inputs.push(input_field(ctx, resolver, &param, inputs.len())?);
    }
    Ok(inputs)
}

fn input_field(
    ctx: &Ctx<'_>,
    resolver: &Resolver<'_>,
    param: &Param<'_>,
    order: usize,
) -> Result<InputField, SchemaError> {
    let name = param.name;
    let ann = parse_annotation(ctx.file, param.type_node)?;
    let (input_type, literal_choices) = resolver
        .input(0, &ann)
        .map_err(|e| ctx.file.locate(e, param.type_node))?;
    let call = match param.value {
        None => InputCall::default(),
        Some(v) => input_call(ctx, name, v)?,
    };
    let (flat, _) = input_type.flat();
    if call.accept.is_some() && !matches!(flat, Primitive::Path | Primitive::File) {
        return Err(ctx.file.locate(
            SchemaError::new(
                SchemaErrorKind::InvalidConstraint,
                format!("accept is only valid on Path or File inputs (parameter '{name}')"),
            ),
            param.node,
        ));
    }
    let constrained = call.has_constraints();
    let choices = call.choices.or(literal_choices).unwrap_or_default();
    if input_type.is_union() && (!choices.is_empty() || constrained) {
        return Err(ctx.file.locate(
            SchemaError::unsupported("constraints and choices are not supported on union inputs"),
            param.node,
        ));
    }
    Ok(InputField {
        name: name.to_owned(),
        order,
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
        line: line(param.node),
    })
}
