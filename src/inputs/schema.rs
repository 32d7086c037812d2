//! Reading the parts of Cog's OpenAPI document that input coercion and output writing need.

use serde_json::Value;

/// `components.schemas.Input` of an OpenAPI document.
pub(super) fn input_schema(doc: &Value) -> Option<&Value> {
    component(doc, "Input").filter(|s| s.is_object())
}

/// `components.schemas.Output` of an OpenAPI document.
pub(super) fn output_schema(doc: &Value) -> Option<&Value> {
    component(doc, "Output").filter(|s| s.is_object())
}

fn component<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get("components")?.get("schemas")?.get(name)
}

/// Follows a local `$ref` (`#/components/schemas/X`); anything else is returned as is.
pub(super) fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    // A bounded walk: a document with a reference cycle is not worth looping on.
    for _ in 0..8 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        match reference
            .strip_prefix("#/components/schemas/")
            .and_then(|name| component(doc, name))
        {
            Some(target) => current = target,
            None => return current,
        }
    }
    current
}

/// The JSON shape an input property expects, as far as coercing a command-line string goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array(Box<Kind>),
    /// `anyOf` (JSON-native unions) or no type at all: strings stay strings.
    Other,
}

/// The [`Kind`] of a property schema: through `$ref` and Cog's `allOf: [{$ref: enum}]` wrapper
/// for choices.
pub(super) fn kind(doc: &Value, schema: &Value) -> Kind {
    let schema = resolve(doc, schema);
    if let Some([inner]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return kind(doc, inner);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => Kind::String,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("object") => Kind::Object,
        Some("array") => Kind::Array(Box::new(
            schema
                .get("items")
                .map_or(Kind::Other, |items| kind(doc, items)),
        )),
        _ => Kind::Other,
    }
}

/// Whether a schema is a file (`type: string, format: uri`), through `$ref`.
pub(super) fn is_uri(doc: &Value, schema: &Value) -> bool {
    let schema = resolve(doc, schema);
    schema.get("type").and_then(Value::as_str) == Some("string")
        && schema.get("format").and_then(Value::as_str) == Some("uri")
}

/// The JSON type name Cog uses in messages (`jsonTypeName`): every number is `number`.
pub(super) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
