//! Checks Cog's build runs on the document (kin-openapi's `doc.Validate`: a default must
//! satisfy its own schema), with kin-openapi's messages, plus constraint/type agreement.

use super::error::{SchemaError, SchemaErrorKind};
use super::json::Json;
use super::model::{InputField, InputKind, InputType, Mode, ModelSchema, Primitive, Value};
use super::openapi;

/// Validates every input of the model; the first problem (in kin-openapi's order: inputs
/// sorted by name) is returned, located at the parameter.
pub fn validate(model: &ModelSchema) -> Result<(), SchemaError> {
    let component = if model.mode == Mode::Train {
        "TrainingInput"
    } else {
        "Input"
    };
    for field in &model.inputs {
        check_constraint_types(field).map_err(|e| e.at(&model.file, field.line))?;
    }
    let mut sorted: Vec<&InputField> = model.inputs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for field in sorted {
        let Some(default) = field.effective_default() else {
            continue;
        };
        if let Err(failure) = check_default(field, default) {
            let (prop, enum_component) = openapi::input_property(field);
            let shown = if failure.in_enum {
                enum_component.map_or(prop, |(_, c)| c)
            } else {
                prop
            };
            let mut message = format!(
                "Model schema is invalid: invalid components: schema \"{component}\": invalid default: {}",
                failure.reason()
            );
            message.push_str("\nSchema:\n  ");
            message.push_str(&shown.to_encoder_indented("  ", "  "));
            message.push_str("\nValue:\n  ");
            message.push_str(&failure.value.to_encoder_indented("  ", "  "));
            return Err(SchemaError::new(SchemaErrorKind::InvalidSchema, message)
                .at(&model.file, field.line));
        }
    }
    Ok(())
}

fn check_constraint_types(field: &InputField) -> Result<(), SchemaError> {
    let invalid = |what: &str, types: &str| {
        SchemaError::new(
            SchemaErrorKind::InvalidConstraint,
            format!(
                "{what} is only valid on {types} inputs (parameter '{}')",
                field.name
            ),
        )
    };
    let scalar = match &field.input_type.kind {
        InputKind::Primitive(p) => Some(*p),
        _ => None,
    };
    let numeric = matches!(scalar, Some(Primitive::Integer | Primitive::Float));
    let string = scalar == Some(Primitive::String);
    if field.ge.is_some() && !numeric {
        return Err(invalid("ge", "int or float"));
    }
    if field.le.is_some() && !numeric {
        return Err(invalid("le", "int or float"));
    }
    for (present, what) in [
        (field.min_length.is_some(), "min_length"),
        (field.max_length.is_some(), "max_length"),
        (field.regex.is_some(), "regex"),
    ] {
        if present && !string {
            return Err(invalid(what, "str"));
        }
    }
    if let Some(regex) = &field.regex
        && let Err(e) = regex::Regex::new(regex)
    {
        return Err(SchemaError::new(
            SchemaErrorKind::InvalidConstraint,
            format!("invalid regex for parameter '{}': {e}", field.name),
        ));
    }
    if !field.choices.is_empty() {
        let (flat, _) = field.input_type.flat();
        if !matches!(flat, Primitive::String | Primitive::Integer) {
            return Err(invalid("choices", "str or int"));
        }
    }
    Ok(())
}

struct Failure {
    reason: String,
    /// JSON pointer of the failing element ("" for the value itself).
    path: String,
    value: Json,
    in_enum: bool,
}

impl Failure {
    fn reason(&self) -> String {
        if self.path.is_empty() {
            self.reason.clone()
        } else {
            format!("Error at \"{}\": {}", self.path, self.reason)
        }
    }
}

fn fail(reason: impl Into<String>, value: &Value) -> Failure {
    Failure {
        reason: reason.into(),
        path: String::new(),
        value: value.to_json(),
        in_enum: false,
    }
}

fn check_default(field: &InputField, value: &Value) -> Result<(), Failure> {
    if *value == Value::None && field.is_nullable() {
        return Ok(());
    }
    if !field.choices.is_empty() {
        let (flat, _) = field.input_type.flat();
        check_type(flat, value).map_err(|mut f| {
            f.in_enum = true;
            f
        })?;
        let json = value.to_json();
        let allowed = field
            .choices
            .iter()
            .any(|c| json_equal(&c.to_json(), &json));
        if !allowed {
            let list = Json::Array(field.choices.iter().map(Value::to_json).collect()).to_compact();
            let mut f = fail(
                format!("value is not one of the allowed values {list}"),
                value,
            );
            f.in_enum = true;
            return Err(f);
        }
        return Ok(());
    }
    check_value(&field.input_type, value)?;
    if let Some(n) = value.as_f64() {
        if let Some(ge) = field.ge.filter(|ge| n < *ge) {
            return Err(fail(
                format!(
                    "number must be at least {}",
                    super::json::go_format_float_g(ge)
                ),
                value,
            ));
        }
        if let Some(le) = field.le.filter(|le| n > *le) {
            return Err(fail(
                format!(
                    "number must be at most {}",
                    super::json::go_format_float_g(le)
                ),
                value,
            ));
        }
    }
    if let Value::Str(s) = value {
        let len = s.chars().count() as u64;
        if let Some(min) = field.min_length.filter(|m| len < *m) {
            return Err(fail(format!("minimum string length is {min}"), value));
        }
        if let Some(max) = field.max_length.filter(|m| len > *m) {
            return Err(fail(format!("maximum string length is {max}"), value));
        }
        if let Some(pattern) = &field.regex
            && let Ok(re) = regex::Regex::new(pattern)
            && !re.is_match(s)
        {
            return Err(fail(
                format!("string doesn't match the regular expression \"{pattern}\""),
                value,
            ));
        }
    }
    Ok(())
}

fn check_value(t: &InputType, value: &Value) -> Result<(), Failure> {
    if *value == Value::None {
        return if t.nullable {
            Ok(())
        } else {
            Err(fail("Value is not nullable", value))
        };
    }
    match &t.kind {
        InputKind::Primitive(p) => check_type(*p, value),
        InputKind::Array(elem) => {
            let Value::List(items) = value else {
                return Err(fail("value must be an array", value));
            };
            for (i, item) in items.iter().enumerate() {
                check_value(elem, item).map_err(|mut f| {
                    f.path = format!("/{i}{}", f.path);
                    f
                })?;
            }
            Ok(())
        }
        InputKind::Union(variants) => {
            if variants.iter().any(|v| check_value(v, value).is_ok()) {
                Ok(())
            } else {
                Err(fail("doesn't match any schema from \"anyOf\"", value))
            }
        }
    }
}

fn check_type(p: Primitive, value: &Value) -> Result<(), Failure> {
    let ok = match p {
        Primitive::Bool => matches!(value, Value::Bool(_)),
        Primitive::Integer => match value {
            Value::Int(_) => true,
            Value::Float(f) => f.fract() == 0.0,
            _ => false,
        },
        Primitive::Float => matches!(value, Value::Int(_) | Value::Float(_)),
        Primitive::String | Primitive::Path | Primitive::File | Primitive::Secret => {
            matches!(value, Value::Str(_))
        }
        Primitive::Any => matches!(value, Value::Dict(_)),
    };
    if ok {
        return Ok(());
    }
    let expected = match p {
        Primitive::Bool => "a boolean",
        Primitive::Integer => "an integer",
        Primitive::Float => "a number",
        Primitive::String | Primitive::Path | Primitive::File | Primitive::Secret => "a string",
        Primitive::Any => "an object",
    };
    Err(fail(format!("value must be {expected}"), value))
}

/// JSON equality with Go's float64 view of numbers (`1` equals `1.0`).
#[allow(clippy::float_cmp)] // exact equality is what Go's comparison does
fn json_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Int(x), Json::Float(y)) | (Json::Float(y), Json::Int(x)) => (*x as f64) == *y,
        _ => a == b,
    }
}
