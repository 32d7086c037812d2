//! The runtime path: what the static evaluator cannot compute is asked of Python in the built
//! image, as Cog up to 0.16 read the whole schema from the imported module.
//!
//! The static pass ([`generate_or_defer`]) records each value it cannot compute as a
//! [`Question`] (a parameter's `Input()` keyword, a whole default expression, or the missing
//! return annotation) and leaves its place in the model empty. [`Deferred::query`] is the JSON
//! the build hands to [`SCRIPT`], run with the image's Python over the built layers (see
//! `builder::runtime_schema`): it imports the runner module, reads the entry point's
//! `inspect.signature` and the `Input()` objects' attributes, and writes the answers as JSON.
//! [`Deferred::complete`] fills them in and produces the document exactly as a static schema
//! is produced (one generator: `openapi.rs`).
//!
//! A missing return annotation: Cog <= 0.16 refused it at build time ("You must set an output
//! type"); the runtime path asks Python (an annotation added at runtime is used when it is a
//! name the static resolver knows), and without one the output is `Any` (`{"type":"object"}`),
//! with a warning: the server does not need the output type to run the model.

pub(crate) use super::python::import_text::without_runner_bodies;
use serde_json::{Map, Value as JsonValue, json};

use super::error::{SchemaError, SchemaErrorKind};
pub use super::model::Question;
use super::model::{
    INPUT_KEYWORDS as KEYWORDS, InputField, Mode, ModelSchema, OutputKind, Primitive, Value,
};
use super::{SchemaOutput, python, validate};

/// The entry points of a project whose schema needs the runtime path.
#[derive(Debug, Clone)]
pub struct Deferred {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    reference: String,
    method: String,
    model: ModelSchema,
    questions: Vec<Question>,
}

/// A schema: complete from the static pass, or waiting for Python's answers.
// One value per build: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Generated {
    Static(Box<SchemaOutput>),
    Runtime(Deferred),
}

/// The static pass with the runtime path allowed: a schema when everything was computed, else
/// the questions for Python. Errors that Python cannot answer (syntax, unsupported types, a
/// missing predictor) are still errors.
pub fn generate_or_defer(
    project_dir: &std::path::Path,
    predict_ref: Option<&str>,
    train_ref: Option<&str>,
) -> Result<Generated, SchemaError> {
    let predict_ref = predict_ref.filter(|r| !r.is_empty());
    let train_ref = train_ref.filter(|r| !r.is_empty());
    let both = predict_ref.is_some() && train_ref.is_some();
    let mut entries = Vec::new();
    for (reference, mode) in [(predict_ref, Mode::Predict), (train_ref, Mode::Train)] {
        let Some(reference) = reference else { continue };
        // As `generate` words it when both entry points are parsed.
        let prefix = |e: SchemaError| match (both, mode) {
            (false, _) => e,
            (true, Mode::Predict) => SchemaError {
                message: format!("predict schema: {}", e.message),
                ..e
            },
            (true, Mode::Train) => SchemaError {
                message: format!("train schema: {}", e.message),
                ..e
            },
        };
        let (model, questions, method) =
            python::parse_entry_deferred(project_dir, reference, mode).map_err(prefix)?;
        if questions.is_empty() {
            validate::validate(&model).map_err(prefix)?;
        }
        entries.push(Entry {
            reference: reference.to_owned(),
            method,
            model,
            questions,
        });
    }
    if entries.iter().all(|e| e.questions.is_empty()) {
        // Nothing was deferred: the same models `generate` makes, parsed once.
        if entries.is_empty() {
            return super::generate(project_dir, None, None)
                .map(|s| Generated::Static(Box::new(s)));
        }
        let mut models = entries.into_iter().map(|e| e.model);
        let (first, second) = (models.next(), models.next());
        let (predict, train) = match (predict_ref, first, second) {
            (Some(_), p, t) => (p, t),
            (None, t, _) => (None, t),
        };
        return super::output_of(predict, train).map(|s| Generated::Static(Box::new(s)));
    }
    Ok(Generated::Runtime(Deferred { entries }))
}

impl Deferred {
    /// Every question, in order.
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.entries.iter().flat_map(|e| e.questions.iter())
    }

    /// `@cog.concurrent(max=N)` and `async def` of the main entry point (read statically).
    pub fn concurrency(&self) -> (Option<u32>, bool) {
        self.entries.first().map_or((None, false), |e| {
            (e.model.concurrency_max, e.model.is_async)
        })
    }

    /// Why the runtime path is taken, one line per question.
    pub fn reasons(&self) -> Vec<String> {
        self.questions().map(|q| q.reason.clone()).collect()
    }

    /// The JSON [`SCRIPT`] reads: per entry point, its reference, mode, function and
    /// questions.
    pub fn query(&self) -> JsonValue {
        let entries: Vec<JsonValue> = self
            .entries
            .iter()
            .map(|e| {
                json!({
                    "ref": e.reference,
                    "mode": mode_name(e.model.mode),
                    "method": e.method,
                    "questions": e.questions.iter().map(|q| json!({
                        "param": q.param,
                        "key": q.key,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "version": 1, "entries": entries })
    }

    /// Fills Python's answers (what [`SCRIPT`] wrote) into the models and generates the
    /// document. Also returns warnings (an output without a type).
    pub fn complete(
        &self,
        answers: &JsonValue,
    ) -> Result<(SchemaOutput, Vec<String>), SchemaError> {
        let failed =
            |message: String| SchemaError::new(SchemaErrorKind::ArgumentNotResolvable, message);
        if let Some(error) = answers.get("error").and_then(JsonValue::as_str) {
            return Err(failed(format!(
                "importing the predictor to read its schema failed:\n{error}"
            )));
        }
        let per_entry = answers
            .get("entries")
            .and_then(JsonValue::as_array)
            .ok_or_else(|| failed("the schema script wrote no `entries`".into()))?;
        if per_entry.len() != self.entries.len() {
            return Err(failed(format!(
                "the schema script answered for {} entry points, not {}",
                per_entry.len(),
                self.entries.len()
            )));
        }
        let mut warnings = Vec::new();
        let mut models = Vec::new();
        for (entry, answered) in self.entries.iter().zip(per_entry) {
            let list = answered
                .as_array()
                .ok_or_else(|| failed("answers must be a list".into()))?;
            if list.len() != entry.questions.len() {
                return Err(failed(format!(
                    "{}: {} answers for {} questions",
                    entry.reference,
                    list.len(),
                    entry.questions.len()
                )));
            }
            let mut model = entry.model.clone();
            for (question, answer) in entry.questions.iter().zip(list) {
                apply(&mut model, &entry.method, question, answer, &mut warnings)
                    .map_err(|e| located(e, &model, question))?;
            }
            for field in &model.inputs {
                check_field(field).map_err(|e| e.at(&model.file, field.line))?;
            }
            validate::validate(&model)?;
            models.push(model);
        }
        let predict = models.iter().find(|m| m.mode == Mode::Predict).cloned();
        let train = models.iter().find(|m| m.mode == Mode::Train).cloned();
        let output = super::output_of(predict, train)?;
        Ok((output, warnings))
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Predict => "predict",
        Mode::Train => "train",
    }
}

fn located(error: SchemaError, model: &ModelSchema, question: &Question) -> SchemaError {
    let line = question
        .param
        .as_deref()
        .and_then(|p| model.input(p))
        .map_or(1, |f| f.line);
    error.at(&model.file, line)
}

/// One answer into the model.
fn apply(
    model: &mut ModelSchema,
    method: &str,
    question: &Question,
    answer: &JsonValue,
    warnings: &mut Vec<String>,
) -> Result<(), SchemaError> {
    let what = match &question.param {
        Some(p) => format!("{} for parameter '{p}'", question.key),
        None => format!("the return annotation of {method}"),
    };
    let failed = |reason: String| {
        SchemaError::new(
            SchemaErrorKind::ArgumentNotResolvable,
            format!("{what}: importing the predictor did not give it either: {reason}"),
        )
    };
    if let Some(error) = answer.get("error").and_then(JsonValue::as_str) {
        return Err(failed(error.to_owned()));
    }
    let value = answer
        .get("value")
        .ok_or_else(|| failed("no value in the answer".into()))?;
    let Some(param) = &question.param else {
        return match value {
            JsonValue::Null => {
                warnings.push(format!(
                    "{method} has no return type annotation, also at runtime: the schema's output is `Any` \
                     (Cog <= 0.16 refused this; annotate it, e.g. `-> str`, to type the output)"
                ));
                debug_assert!(matches!(model.output.kind, OutputKind::Any));
                Ok(())
            }
            other => Err(failed(format!(
                "the annotation `{}` exists only at runtime; write it on {method}",
                other.as_str().unwrap_or("?")
            ))),
        };
    };
    let field = model
        .inputs
        .iter_mut()
        .find(|f| &f.name == param)
        .ok_or_else(|| failed(format!("no parameter '{param}' in the static model")))?;
    if question.key == "input" {
        // The whole default: `Input(...)`'s keywords, or a plain default value.
        let object = value
            .as_object()
            .ok_or_else(|| failed("expected an object of Input() keywords".into()))?;
        for (key, v) in object {
            set(field, key, v).map_err(|r| failed(format!("{key}: {r}")))?;
        }
        return Ok(());
    }
    set(field, &question.key, value).map_err(failed)
}

/// Sets one `Input()` keyword from its JSON answer.
fn set(field: &mut InputField, key: &str, value: &JsonValue) -> Result<(), String> {
    let string = |v: &JsonValue| match v {
        JsonValue::Null => Ok(None),
        JsonValue::String(s) => Ok(Some(s.clone())),
        other => Err(format!("must be a str, got {other}")),
    };
    let number = |v: &JsonValue| match v {
        JsonValue::Null => Ok(None),
        JsonValue::Number(n) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a number")),
        other => Err(format!("must be a number, got {other}")),
    };
    let length = |v: &JsonValue| match v {
        JsonValue::Null => Ok(None),
        JsonValue::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a non-negative int")),
        other => Err(format!("must be a non-negative int, got {other}")),
    };
    match key {
        "default" => field.default = Some(from_json(value, 0)?),
        "description" => field.description = string(value)?,
        "regex" => field.regex = string(value)?,
        "accept" => field.accept = string(value)?,
        "ge" => field.ge = number(value)?,
        "le" => field.le = number(value)?,
        "min_length" => field.min_length = length(value)?,
        "max_length" => field.max_length = length(value)?,
        "deprecated" => {
            field.deprecated = match value {
                JsonValue::Null => false,
                JsonValue::Bool(b) => *b,
                other => return Err(format!("must be a bool, got {other}")),
            }
        }
        "choices" => {
            field.choices = match value {
                JsonValue::Null => Vec::new(),
                JsonValue::Array(items) => items
                    .iter()
                    .map(|v| from_json(v, 0))
                    .collect::<Result<_, _>>()?,
                other => return Err(format!("must be a list, got {other}")),
            }
        }
        other if !KEYWORDS.contains(&other) => {
            return Err(format!("Input() has no argument '{other}'"));
        }
        _ => {}
    }
    Ok(())
}

/// A JSON answer as a schema value (a `None` is JSON `null`).
fn from_json(value: &JsonValue, depth: usize) -> Result<Value, String> {
    if depth > 32 {
        return Err("value nested too deeply".into());
    }
    Ok(match value {
        JsonValue::Null => Value::None,
        JsonValue::Bool(b) => Value::Bool(*b),
        JsonValue::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().ok_or_else(|| format!("{n} is out of range"))?),
        },
        JsonValue::String(s) => Value::Str(s.clone()),
        JsonValue::Array(items) => Value::List(
            items
                .iter()
                .map(|v| from_json(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        JsonValue::Object(map) => Value::Dict(
            map.iter()
                .map(|(k, v)| Ok((Value::Str(k.clone()), from_json(v, depth + 1)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// The checks the static pass makes on a parameter's keywords, for values Python gave.
fn check_field(field: &InputField) -> Result<(), SchemaError> {
    let (flat, _) = field.input_type.flat();
    if field.accept.is_some() && !matches!(flat, Primitive::Path | Primitive::File) {
        return Err(SchemaError::new(
            SchemaErrorKind::InvalidConstraint,
            format!(
                "accept is only valid on Path or File inputs (parameter '{}')",
                field.name
            ),
        ));
    }
    let constrained = field.ge.is_some()
        || field.le.is_some()
        || field.min_length.is_some()
        || field.max_length.is_some()
        || field.regex.is_some();
    if field.input_type.is_union() && (!field.choices.is_empty() || constrained) {
        return Err(SchemaError::unsupported(
            "constraints and choices are not supported on union inputs",
        ));
    }
    Ok(())
}

/// Reads the answers file's JSON (for messages: what the script wrote is not JSON).
pub fn parse_answers(text: &str) -> Result<JsonValue, SchemaError> {
    serde_json::from_str(text).map_err(|e| {
        SchemaError::new(
            SchemaErrorKind::ArgumentNotResolvable,
            format!("the schema script's answer is not JSON: {e}"),
        )
    })
}

/// An answer object for tests and tools: `{"value": v}`.
pub fn answer(value: JsonValue) -> JsonValue {
    let mut map = Map::new();
    map.insert("value".into(), value);
    JsonValue::Object(map)
}

/// The script run with the image's Python: `python SCRIPT QUERY ANSWERS [SRC]` in the project
/// (`SRC`, `/src` by default). It imports
/// each entry point's module (as the runtime does: not `setup()`), reads
/// `inspect.signature(...)` and the `Input()` objects, and writes
/// `{"entries": [[{"value": ...} | {"error": "..."}, ...], ...]}` (or `{"error": traceback}`
/// when the import fails). Values are JSON: enum members as their values, tuples and other
/// iterables of choices as lists, paths as strings; anything else is an error naming it.
pub const SCRIPT: &str = r#"import enum, importlib.util, inspect, json, math, os, sys, traceback

KEYWORDS = ("default", "description", "ge", "le", "min_length", "max_length", "regex",
            "choices", "deprecated", "accept")


def encode(v, depth=0):
    if depth > 32:
        raise ValueError("value nested too deeply")
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"{v!r} has no JSON form")
        return v
    if isinstance(v, enum.Enum):
        return encode(v.value, depth + 1)
    if isinstance(v, (list, tuple)):
        return [encode(x, depth + 1) for x in v]
    if isinstance(v, dict):
        return {str(k): encode(x, depth + 1) for k, x in v.items()}
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    raise TypeError(f"a {type(v).__name__} value ({v!r:.80}) has no JSON form")


def is_input(d):
    return type(d).__name__ == "FieldInfo" and all(hasattr(d, k) for k in KEYWORDS)


def keyword(d, key):
    v = getattr(d, key)
    if key == "choices" and v is not None and not isinstance(v, (list, tuple, str)):
        v = list(v)
    return encode(v)


modules = {}
SRC = sys.argv[3] if len(sys.argv) > 3 else "/src"


def load(file):
    path = os.path.join(SRC, file)
    if path not in modules:
        name = os.path.splitext(os.path.basename(file))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules[path] = module
    return modules[path]


def answer(fn, q):
    if q["param"] is None:
        ann = inspect.signature(fn).return_annotation
        return None if ann is inspect.Signature.empty else repr(ann)
    params = inspect.signature(fn).parameters
    if q["param"] not in params:
        raise KeyError(f"no parameter {q['param']!r} at runtime")
    d = params[q["param"]].default
    if d is inspect.Parameter.empty:
        raise ValueError("the parameter has no default at runtime")
    if q["key"] == "input":
        if is_input(d):
            # The SDK's Input() has default=None when none is given: not a default then
            # (required, unless the type admits None); an explicit default=None is one.
            given = getattr(d, "_default_given", d.default is not None)
            return {k: keyword(d, k) for k in KEYWORDS if k != "default" or given}
        return {"default": encode(d)}
    if not is_input(d):
        raise TypeError(f"the default is a {type(d).__name__}, not Input(...)")
    return keyword(d, q["key"])


def main(query_path, answers_path):
    with open(query_path, encoding="utf-8") as f:
        query = json.load(f)
    sys.path.insert(0, SRC)
    out = {"entries": []}
    try:
        for entry in query["entries"]:
            file, _, name = entry["ref"].partition(":")
            obj = getattr(load(file), name)
            fn = getattr(obj, entry["method"]) if inspect.isclass(obj) else obj
            answers = []
            for q in entry["questions"]:
                try:
                    answers.append({"value": answer(fn, q)})
                except Exception as e:
                    answers.append({"error": f"{type(e).__name__}: {e}"})
            out["entries"].append(answers)
    except BaseException:
        out = {"error": traceback.format_exc()}
    with open(answers_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(out, f)
    os.replace(answers_path + ".tmp", answers_path)


main(sys.argv[1], sys.argv[2])
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn project(src: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("predict.py"), src).unwrap();
        dir
    }

    fn deferred(src: &str) -> (tempfile::TempDir, Deferred) {
        let dir = project(src);
        match generate_or_defer(dir.path(), Some("predict.py:Predictor"), None).unwrap() {
            Generated::Runtime(d) => (dir, d),
            Generated::Static(s) => panic!("static: {}", s.document),
        }
    }

    const SCHEDULERS: &str = r#"from cog import BasePredictor, Input
from diffusers import DDIMScheduler, EulerScheduler

SCHEDULERS = {cls.__name__: cls for cls in [DDIMScheduler, EulerScheduler]}

def default_format():
    import os
    return os.environ.get("FORMAT", "webp")

class Predictor(BasePredictor):
    def predict(
        self,
        scheduler: str = Input(description="Scheduler", choices=list(SCHEDULERS.keys()), default="DDIMScheduler"),
        output_format: str = default_format(),
        seed: int = Input(default=None),
    ):
        return 1
"#;

    #[test]
    fn what_static_evaluation_cannot_compute_becomes_questions() {
        let (_dir, d) = deferred(SCHEDULERS);
        let asked: Vec<(Option<&str>, &str)> = d
            .questions()
            .map(|q| (q.param.as_deref(), q.key.as_str()))
            .collect();
        assert_eq!(
            asked,
            [
                (Some("scheduler"), "choices"),
                (Some("output_format"), "input"),
                (None, "return")
            ]
        );
        assert!(d.reasons()[0].contains("predict.py:"), "{:?}", d.reasons());
        assert_eq!(
            d.query()["entries"][0]["questions"][1],
            json!({"param": "output_format", "key": "input"})
        );
        assert_eq!(d.query()["entries"][0]["method"], "predict");
    }

    #[test]
    fn answers_complete_the_schema_as_the_static_path_would_write_it() {
        let (_dir, d) = deferred(SCHEDULERS);
        let answers = json!({"entries": [[
            {"value": ["DDIMScheduler", "EulerScheduler"]},
            {"value": {"default": "webp"}},
            {"value": null},
        ]]});
        let (out, warnings) = d.complete(&answers).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // The same document as a project whose values are literals.
        let literal = project(
            r#"from cog import BasePredictor, Input
from typing import Any
class Predictor(BasePredictor):
    def predict(
        self,
        scheduler: str = Input(description="Scheduler", choices=["DDIMScheduler", "EulerScheduler"], default="DDIMScheduler"),
        output_format: str = "webp",
        seed: int = Input(default=None),
    ) -> Any:
        return 1
"#,
        );
        let expected =
            crate::schema::generate(literal.path(), Some("predict.py:Predictor"), None).unwrap();
        assert_eq!(out.document, expected.document);
        assert_eq!(out.label, expected.label);
    }

    #[test]
    fn a_bad_or_missing_answer_is_an_error_naming_the_parameter() {
        let (_dir, d) = deferred(SCHEDULERS);
        let err = d
            .complete(&json!({"entries": [[
                {"error": "NameError: SCHEDULERS"},
                {"value": {"default": "webp"}},
                {"value": null},
            ]]}))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("choices for parameter 'scheduler'"),
            "{err}"
        );
        assert!(err.to_string().contains("NameError"), "{err}");
        let err = d
            .complete(&json!({"error": "Traceback ...\nModuleNotFoundError: diffusers"}))
            .unwrap_err();
        assert!(err.to_string().contains("ModuleNotFoundError"), "{err}");
        // A default outside the choices Python gave is Cog's validation error.
        let err = d
            .complete(&json!({"entries": [[
                {"value": ["EulerScheduler"]},
                {"value": {"default": "webp"}},
                {"value": null},
            ]]}))
            .unwrap_err();
        assert_eq!(err.kind, SchemaErrorKind::InvalidSchema, "{err}");
    }

    #[test]
    fn a_project_the_static_pass_answers_is_static() {
        let dir = project(
            "from cog import BasePredictor\nclass Predictor(BasePredictor):\n    def predict(self, x: int = 3) -> int:\n        return x\n",
        );
        assert!(matches!(
            generate_or_defer(dir.path(), Some("predict.py:Predictor"), None).unwrap(),
            Generated::Static(_)
        ));
    }
}
