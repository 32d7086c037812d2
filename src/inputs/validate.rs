//! Validation of a request's inputs against the `Input` schema, with the messages of Cog 0.22's
//! pre-build check (`pkg/predict/input_validation.go` over kin-openapi's reasons).

use serde_json::Value;

use super::InputError;
use super::schema::{json_type_name, resolve};

/// Rejects names the schema does not declare (Cog's CLI refuses them; the server drops them).
pub(super) fn known_names<'a>(
    names: impl Iterator<Item = &'a String>,
    input: &Value,
) -> Result<(), InputError> {
    let properties = input.get("properties").and_then(Value::as_object);
    let mut unknown: Vec<String> = names
        .filter(|name| !properties.is_some_and(|p| p.contains_key(name.as_str())))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    unknown.dedup();
    let mut valid: Vec<String> = properties
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    valid.sort();
    Err(InputError::Unknown { unknown, valid })
}

/// Validates the whole input object: explicit nulls first, then every property (by name), then
/// missing required inputs.
pub(super) fn validate(
    doc: &Value,
    input: &Value,
    values: &serde_json::Map<String, Value>,
) -> Result<(), InputError> {
    let mut nulls: Vec<&String> = values
        .iter()
        .filter(|(_, v)| v.is_null())
        .map(|(k, _)| k)
        .collect();
    nulls.sort();
    if let Some(first) = nulls.first() {
        return Err(InputError::Null((*first).clone()));
    }

    let mut errors = Vec::new();
    let properties = input.get("properties").and_then(Value::as_object);
    let mut names: Vec<&String> = values.keys().collect();
    names.sort();
    for name in names {
        if let (Some(prop), Some(value)) = (properties.and_then(|p| p.get(name)), values.get(name))
        {
            check(doc, prop, value, name, &mut errors);
        }
    }
    for required in input
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !values.contains_key(required) {
            errors.push(format!("missing required input {required:?}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InputError::Invalid(errors))
    }
}

/// Go's `%g` for the bounds in kin-openapi's messages (`1`, `0.5`, `1e+21`).
fn go_g(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

/// Go's `%v` for an enum value: strings bare, everything else as JSON.
fn go_v(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0)
        }
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// Checks one value against one schema, pushing `invalid input "path": …` messages.
fn check(doc: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    let fail = |errors: &mut Vec<String>, reason: String| {
        errors.push(format!("invalid input {path:?}: {reason}"));
    };

    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            fail(errors, "must not be null".to_string());
        }
        return;
    }

    if let Some(all_of) = schema.get("allOf").and_then(Value::as_array) {
        for inner in all_of {
            check(doc, inner, value, path, errors);
        }
    }
    if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array) {
        let matched = any_of.iter().any(|variant| {
            let mut scratch = Vec::new();
            check(doc, variant, value, path, &mut scratch);
            scratch.is_empty()
        });
        if !matched {
            fail(
                errors,
                "doesn't match any schema from \"anyOf\"".to_string(),
            );
            return;
        }
    }

    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        fail(
            errors,
            format!("expected {expected}, got {}", json_type_name(value)),
        );
        return;
    }

    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.iter().any(|choice| same_value(choice, value))
    {
        let listed: Vec<String> = choices.iter().map(go_v).collect();
        fail(errors, format!("must be one of: {}", listed.join(", ")));
        return;
    }

    match value {
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                fail(errors, format!("number must be at least {}", go_g(min)));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                fail(errors, format!("number must be at most {}", go_g(max)));
            }
        }
        Value::String(s) => {
            let length = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && min != 0
                && length < min
            {
                fail(errors, format!("minimum string length is {min}"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && length > max
            {
                fail(errors, format!("maximum string length is {max}"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(pattern) {
                    Ok(re) if re.is_match(s) => {}
                    Ok(_) => fail(
                        errors,
                        format!("string doesn't match the regular expression \"{pattern}\""),
                    ),
                    Err(err) => fail(
                        errors,
                        format!("cannot compile the schema's pattern \"{pattern}\": {err}"),
                    ),
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && min != 0
                && len < min
            {
                fail(errors, format!("minimum number of items is {min}"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && len > max
            {
                fail(errors, format!("maximum number of items is {max}"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(doc, item_schema, item, &format!("{path}.{i}"), errors);
                }
            }
        }
        _ => {}
    }
}

/// JSON equality where `1` and `1.0` are the same number, as in Go's decoded `float64`s.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
