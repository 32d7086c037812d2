//! The predictor's interface as data: what `run`/`predict`/`train` accepts and returns.
//! The OpenAPI document is rendered from this, and the CLI's `cog run -i` coerces against it.

use super::json::{Json, go_format_float_g};

/// Which entry point a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Predict,
    Train,
}

/// Scalar types Cog knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    Bool,
    Float,
    Integer,
    String,
    /// `cog.Path`: a URL or data URI on the wire.
    Path,
    /// `cog.File` (deprecated): same wire format as `Path`.
    File,
    /// `cog.Secret`: write-only, masked.
    Secret,
    /// `Any`, `dict`, a TypedDict: an opaque JSON object.
    Any,
}

impl Primitive {
    pub fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "bool" => Primitive::Bool,
            "float" => Primitive::Float,
            "int" => Primitive::Integer,
            "str" => Primitive::String,
            "Path" => Primitive::Path,
            "File" => Primitive::File,
            "Secret" => Primitive::Secret,
            "Any" => Primitive::Any,
            _ => return None,
        })
    }

    /// The Python spelling, as Cog's messages use it.
    pub fn python_name(self) -> &'static str {
        match self {
            Primitive::Bool => "bool",
            Primitive::Float => "float",
            Primitive::Integer => "int",
            Primitive::String => "str",
            Primitive::Path => "Path",
            Primitive::File => "File",
            Primitive::Secret => "Secret",
            Primitive::Any => "Any",
        }
    }

    /// The JSON-schema fragment (`PrimitiveType.JSONType` upstream).
    pub fn json_schema(self) -> Vec<(&'static str, Json)> {
        match self {
            Primitive::Bool => vec![("type", Json::str("boolean"))],
            Primitive::Float => vec![("type", Json::str("number"))],
            Primitive::Integer => vec![("type", Json::str("integer"))],
            Primitive::String => vec![("type", Json::str("string"))],
            Primitive::Path | Primitive::File => {
                vec![("type", Json::str("string")), ("format", Json::str("uri"))]
            }
            Primitive::Secret => vec![
                ("type", Json::str("string")),
                ("format", Json::str("password")),
                ("writeOnly", Json::Bool(true)),
                ("x-cog-secret", Json::Bool(true)),
            ],
            Primitive::Any => vec![("type", Json::str("object"))],
        }
    }

    /// The JSON `type` keyword alone.
    pub fn json_type(self) -> &'static str {
        match self {
            Primitive::Bool => "boolean",
            Primitive::Float => "number",
            Primitive::Integer => "integer",
            Primitive::String | Primitive::Path | Primitive::File | Primitive::Secret => "string",
            Primitive::Any => "object",
        }
    }
}

/// An input's type: JSON-native, possibly a union (Cog 0.21+), possibly nullable.
#[derive(Debug, Clone, PartialEq)]
pub struct InputType {
    pub kind: InputKind,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    Primitive(Primitive),
    /// `list[T]` (no nesting).
    Array(Box<InputType>),
    /// `A | B | ...` of JSON-native types.
    Union(Vec<InputType>),
}

impl InputType {
    pub fn primitive(p: Primitive) -> InputType {
        InputType {
            kind: InputKind::Primitive(p),
            nullable: false,
        }
    }

    pub fn array(elem: InputType) -> InputType {
        InputType {
            kind: InputKind::Array(Box::new(elem)),
            nullable: false,
        }
    }

    /// The flat view Cog keeps beside the recursive type (`FieldType` upstream): the element
    /// primitive and whether the value is a list.
    pub fn flat(&self) -> (Primitive, bool) {
        match &self.kind {
            InputKind::Primitive(p) => (*p, false),
            InputKind::Array(elem) => match elem.kind {
                InputKind::Primitive(p) => (p, true),
                _ => (Primitive::Any, true),
            },
            InputKind::Union(_) => (Primitive::Any, false),
        }
    }

    pub fn is_union(&self) -> bool {
        matches!(self.kind, InputKind::Union(_))
    }

    /// The JSON-schema fragment for this type (`inputTypeJSONSchema` upstream).
    pub fn json_schema(&self) -> Vec<(String, Json)> {
        let mut out: Vec<(String, Json)> = match &self.kind {
            InputKind::Primitive(p) => p
                .json_schema()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            InputKind::Array(elem) => vec![
                ("type".to_owned(), Json::str("array")),
                ("items".to_owned(), Json::map(elem.json_schema())),
            ],
            InputKind::Union(variants) => {
                let variants = variants
                    .iter()
                    .map(|v| {
                        let mut schema = v.json_schema();
                        if self.nullable {
                            schema.push(("nullable".to_owned(), Json::Bool(true)));
                        }
                        Json::map(schema)
                    })
                    .collect();
                vec![("anyOf".to_owned(), Json::Array(variants))]
            }
        };
        if self.nullable {
            out.push(("nullable".to_owned(), Json::Bool(true)));
        }
        out
    }

    /// The Python spelling, for messages.
    pub fn python_name(&self) -> String {
        let base = match &self.kind {
            InputKind::Primitive(p) => p.python_name().to_owned(),
            InputKind::Array(elem) => format!("list[{}]", elem.python_name()),
            InputKind::Union(variants) => variants
                .iter()
                .map(InputType::python_name)
                .collect::<Vec<_>>()
                .join(" | "),
        };
        if self.nullable {
            format!("{base} | None")
        } else {
            base
        }
    }
}

/// A statically evaluated Python literal (a default, a choice, a constant).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// Keys and values in source order.
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// The JSON form, as Cog's `DefaultValue.ToJSON` (dicts become Go maps: sorted keys,
    /// non-string keys printed with `%v`).
    pub fn to_json(&self) -> Json {
        match self {
            Value::None => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Int(*i),
            Value::Float(f) => Json::Float(*f),
            Value::Str(s) => Json::Str(s.clone()),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Dict(pairs) => Json::map(pairs.iter().map(|(k, v)| (k.go_key(), v.to_json()))),
        }
    }

    fn go_key(&self) -> String {
        match self {
            Value::None => "<nil>".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => go_format_float_g(*f),
            Value::Str(s) => s.clone(),
            Value::List(items) => {
                format!(
                    "[{}]",
                    items
                        .iter()
                        .map(Value::go_key)
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
            Value::Dict(_) => "map[]".to_owned(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// One parameter of the entry point.
#[derive(Debug, Clone, PartialEq)]
pub struct InputField {
    pub name: String,
    /// 0-based position among the parameters (`x-order`).
    pub order: usize,
    pub input_type: InputType,
    /// `None` when no default was written. `Some(Value::None)` is `default=None`.
    pub default: Option<Value>,
    pub description: Option<String>,
    pub ge: Option<f64>,
    pub le: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub regex: Option<String>,
    /// From `choices=[...]` or `Literal[...]`.
    pub choices: Vec<Value>,
    pub deprecated: bool,
    pub accept: Option<String>,
    /// 1-based source line of the parameter, for messages.
    pub line: usize,
}

impl InputField {
    /// `default=None` on a type that does not admit `None` (`seed: int = Input(default=None)`):
    /// the input is optional and the predictor receives `None` when it is left out, as Cog up
    /// to 0.16 treated it (Cog 0.22's static generator made it required).
    pub fn is_none_default_optional(&self) -> bool {
        self.default == Some(Value::None)
            && !self.input_type.nullable
            && self.input_type.kind != InputKind::Primitive(Primitive::Secret)
    }

    /// Whether `null` is a valid value (Cog's `isNullable`, including the `Secret = None`
    /// idiom, and any `default=None`).
    pub fn is_nullable(&self) -> bool {
        self.input_type.nullable || self.default == Some(Value::None)
    }

    /// The default the schema advertises. A `default=None` on a type that does not admit
    /// `None` advertises none: the input is nullable and left out of `required`, and the
    /// server passes `null` when it is omitted.
    pub fn effective_default(&self) -> Option<&Value> {
        if self.is_none_default_optional() {
            return None;
        }
        self.default.as_ref()
    }

    /// Whether the field is listed in `required`.
    pub fn is_required(&self) -> bool {
        !self.is_none_default_optional()
            && self.effective_default().is_none()
            && (self.input_type.is_union() || !self.input_type.nullable)
    }
}

/// A named field of a BaseModel / TypedDict output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputField {
    pub name: String,
    pub output_type: OutputType,
    pub required: bool,
}

/// An output type (Cog's recursive `SchemaType`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputType {
    pub kind: OutputKind,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutputKind {
    Primitive(Primitive),
    /// Opaque JSON object.
    Any,
    Array(Box<OutputType>),
    /// `dict[str, V]`.
    Dict(Box<OutputType>),
    /// BaseModel or TypedDict.
    Object(Vec<OutputField>),
    /// `Iterator[T]`, `AsyncIterator[T]`, generators.
    Iterator(Box<OutputType>),
    /// `ConcatenateIterator[str]`.
    ConcatenateIterator,
}

impl OutputType {
    pub fn new(kind: OutputKind) -> OutputType {
        OutputType {
            kind,
            nullable: false,
        }
    }

    /// The JSON schema; the top level gets `"title": "Output"`.
    pub fn json_schema(&self, top_level: bool) -> Json {
        let mut entries: Vec<(String, Json)> = match &self.kind {
            OutputKind::Primitive(p) => p
                .json_schema()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            OutputKind::Any => vec![("type".into(), Json::str("object"))],
            OutputKind::Array(items) => vec![
                ("type".into(), Json::str("array")),
                ("items".into(), items.json_schema(false)),
            ],
            OutputKind::Dict(value) => vec![
                ("type".into(), Json::str("object")),
                ("additionalProperties".into(), value.json_schema(false)),
            ],
            OutputKind::Object(fields) => {
                let properties = fields.iter().map(|f| {
                    let mut prop = f.output_type.json_schema(false);
                    if let Json::Object(entries) = &mut prop {
                        entries.push(("title".into(), Json::Str(title_case(&f.name))));
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                    }
                    (f.name.clone(), prop)
                });
                let required: Vec<Json> = fields
                    .iter()
                    .filter(|f| f.required)
                    .map(|f| Json::Str(f.name.clone()))
                    .collect();
                let mut entries = vec![
                    ("type".into(), Json::str("object")),
                    ("properties".into(), Json::ordered(properties)),
                ];
                if !required.is_empty() {
                    entries.push(("required".into(), Json::Array(required)));
                }
                entries
            }
            OutputKind::Iterator(elem) => vec![
                ("type".into(), Json::str("array")),
                ("items".into(), elem.json_schema(false)),
                ("x-cog-array-type".into(), Json::str("iterator")),
            ],
            OutputKind::ConcatenateIterator => vec![
                ("type".into(), Json::str("array")),
                ("items".into(), Json::map([("type", Json::str("string"))])),
                ("x-cog-array-type".into(), Json::str("iterator")),
                ("x-cog-array-display".into(), Json::str("concatenate")),
            ],
        };
        if top_level {
            entries.push(("title".into(), Json::str("Output")));
        }
        if self.nullable {
            entries.push(("nullable".into(), Json::Bool(true)));
        }
        Json::map(entries)
    }
}

/// Everything the static parser learned about one entry point.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSchema {
    pub mode: Mode,
    /// Parameters in declaration order.
    pub inputs: Vec<InputField>,
    pub output: OutputType,
    /// `@cog.streaming` on the entry point.
    pub streaming: bool,
    /// `@cog.concurrent(max=N)` on the entry point (bare `@concurrent` is 1).
    pub concurrency_max: Option<u32>,
    /// `async def` (or an async generator).
    pub is_async: bool,
    /// The runner file, relative to the project (for messages).
    pub file: std::path::PathBuf,
}

impl ModelSchema {
    pub fn input(&self, name: &str) -> Option<&InputField> {
        self.inputs.iter().find(|f| f.name == name)
    }
}

/// `snake_case` -> `Snake Case`, as Cog's `TitleCase` (ASCII upper-casing of each part's
/// first letter).
pub fn title_case(s: &str) -> String {
    s.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) if first.is_ascii() => {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                }
                // Go upper-cases the first *byte*; a split UTF-8 sequence becomes U+FFFD per byte.
                Some(first) => "\u{fffd}".repeat(first.len_utf8()) + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One value the static pass could not compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub mode: Mode,
    /// The parameter; `None` for the return annotation.
    pub param: Option<String>,
    /// An `Input()` keyword (`default`, `choices`, ...), `input` (the whole default
    /// expression: an `Input(...)` or a plain value) or `return`.
    pub key: String,
    /// Why the static pass could not: its error, with file and line.
    pub reason: String,
}

/// The `Input()` keywords the runtime path can answer.
pub const INPUT_KEYWORDS: [&str; 10] = [
    "default",
    "description",
    "ge",
    "le",
    "min_length",
    "max_length",
    "regex",
    "choices",
    "deprecated",
    "accept",
];
