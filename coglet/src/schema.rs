//! The model's OpenAPI schema: what the server validates inputs against (reference 3.2).

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

/// One entry of a 422 `detail` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationIssue {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl ValidationIssue {
    fn field(field: &str, msg: String, kind: &str) -> Self {
        Self {
            loc: vec!["body".into(), "input".into(), field.into()],
            msg,
            kind: kind.into(),
        }
    }
}

/// Validator for one input component (`Input` or `TrainingInput`).
pub struct InputValidator {
    validator: jsonschema::Validator,
    properties: HashSet<String>,
    required: Vec<String>,
    /// Optional, nullable, no default: injected as `null` when omitted.
    inject_null: Vec<String>,
    /// Properties marked `nullable: true` (OpenAPI 3.0): an explicit `null` is valid for them.
    /// JSON Schema has no `nullable`, so the errors a `null` value of one of them raises are
    /// dropped after validation.
    nullable: HashSet<String>,
}

impl std::fmt::Debug for InputValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputValidator")
            .field("properties", &self.properties)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

fn inline_refs(value: &mut Value, schemas: Option<&Map<String, Value>>, depth: u32) {
    if depth > 32 {
        return;
    }
    match value {
        Value::Object(obj) => {
            if let Some(Value::String(r)) = obj.get("$ref")
                && let Some(target) = r
                    .strip_prefix("#/components/schemas/")
                    .and_then(|name| schemas?.get(name))
            {
                *value = target.clone();
                inline_refs(value, schemas, depth + 1);
                return;
            }
            for v in obj.values_mut() {
                inline_refs(v, schemas, depth + 1);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| inline_refs(v, schemas, depth + 1)),
        _ => {}
    }
}

impl InputValidator {
    fn new(document: &Value, component: &str) -> Result<Option<Self>, String> {
        let schemas = document
            .pointer("/components/schemas")
            .and_then(Value::as_object);
        let Some(input) = schemas.and_then(|s| s.get(component)) else {
            return Ok(None);
        };
        let props = input.get("properties").and_then(Value::as_object);
        let properties: HashSet<String> = props
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let required: Vec<String> = input
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let inject_null = props
            .map(|p| {
                p.iter()
                    .filter(|(name, spec)| {
                        spec.get("nullable") == Some(&Value::Bool(true))
                            && spec.get("default").is_none()
                            && !required.contains(name)
                    })
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let nullable = props
            .map(|p| {
                p.iter()
                    .filter(|(_, spec)| spec.get("nullable") == Some(&Value::Bool(true)))
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut resolved = input.clone();
        inline_refs(&mut resolved, schemas, 0);
        let validator = jsonschema::validator_for(&resolved)
            .map_err(|e| format!("components.schemas.{component}: {e}"))?;
        Ok(Some(Self {
            validator,
            properties,
            required,
            inject_null,
            nullable,
        }))
    }

    /// Strips unknown keys (logged), validates (an explicit `null` is valid for a nullable
    /// input), then injects `null` for omitted nullable inputs. On failure returns Cog's `detail` entries.
    pub fn prepare(&self, input: &mut Map<String, Value>) -> Result<(), Vec<ValidationIssue>> {
        if input.keys().any(|k| !self.properties.contains(k)) {
            input.retain(|k, _| {
                let known = self.properties.contains(k);
                if !known {
                    tracing::warn!(field = %k, "ignoring unknown input field");
                }
                known
            });
        }
        // Moved into a Value only for validation: jsonschema validates a &Value.
        let value = Value::Object(std::mem::take(input));
        let result = self.check(&value);
        let Value::Object(map) = value else {
            return result;
        };
        *input = map;
        if result.is_ok() {
            for name in &self.inject_null {
                if !input.contains_key(name) {
                    input.insert(name.clone(), Value::Null);
                }
            }
        }
        result
    }

    fn check(&self, value: &Value) -> Result<(), Vec<ValidationIssue>> {
        if self.validator.is_valid(value) {
            return Ok(());
        }
        let mut issues = Vec::new();
        let mut reported_missing = false;
        for error in self.validator.iter_errors(value) {
            if let jsonschema::error::ValidationErrorKind::Required { .. } = error.kind {
                if !reported_missing {
                    reported_missing = true;
                    for field in &self.required {
                        if value.get(field).is_none() {
                            issues.push(ValidationIssue::field(
                                field,
                                "Field required".into(),
                                "value_error.missing",
                            ));
                        }
                    }
                }
                continue;
            }
            let path = error.instance_path.to_string();
            let field = path.trim_start_matches('/');
            // `null` for a nullable input (`seed: int = Input(default=None)`, `Optional[T]`):
            // valid, the predictor receives `None` (the errors are JSON Schema's, which has
            // no `nullable`).
            if self.nullable.contains(field) && value.get(field) == Some(&Value::Null) {
                continue;
            }
            let field = if field.is_empty() { "__root__" } else { field };
            issues.push(ValidationIssue::field(
                field,
                error.to_string(),
                "value_error",
            ));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }
}

/// The loaded schema and what the server derives from it.
#[derive(Debug)]
pub struct ModelSchema {
    pub document: Value,
    pub input: Option<InputValidator>,
    pub training_input: Option<InputValidator>,
    /// `paths./predictions.post.x-cog-streaming`: SSE allowed.
    pub streaming: bool,
    /// `Output.type == "array"` (and the training equivalent).
    pub output_is_array: bool,
    pub training_output_is_array: bool,
    pub has_training: bool,
}

impl ModelSchema {
    pub fn from_document(document: Value) -> Result<Self, String> {
        let input = InputValidator::new(&document, "Input")?;
        let training_input = InputValidator::new(&document, "TrainingInput")?;
        let is_array = |name: &str| {
            document
                .pointer(&format!("/components/schemas/{name}/type"))
                .and_then(Value::as_str)
                == Some("array")
        };
        Ok(Self {
            streaming: document
                .pointer("/paths/~1predictions/post/x-cog-streaming")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            output_is_array: is_array("Output"),
            training_output_is_array: is_array("TrainingOutput"),
            has_training: document
                .pointer("/components/schemas/TrainingInput")
                .is_some(),
            input,
            training_input,
            document,
        })
    }

    /// Reads the schema file. `Ok(None)` if it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let document: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
        Self::from_document(document)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The validator for a route: trainings use `TrainingInput`, falling back to `Input`.
    pub fn validator(&self, training: bool) -> Option<&InputValidator> {
        if training {
            self.training_input.as_ref().or(self.input.as_ref())
        } else {
            self.input.as_ref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ModelSchema {
        ModelSchema::from_document(json!({
            "paths": {"/predictions": {"post": {"x-cog-streaming": true}}},
            "components": {"schemas": {
                "Input": {
                    "type": "object",
                    "properties": {
                        "s": {"type": "string", "title": "S"},
                        "n": {"type": "integer", "minimum": 1, "default": 3},
                        "maybe": {"type": "string", "nullable": true},
                        "color": {"allOf": [{"$ref": "#/components/schemas/Color"}]},
                        "seed": {"type": "integer", "title": "Seed", "nullable": true},
                        "style": {"allOf": [{"$ref": "#/components/schemas/Color"}], "nullable": true}
                    },
                    "required": ["s"]
                },
                "Color": {"enum": ["red", "green"], "type": "string"},
                "Output": {"type": "array", "items": {"type": "string"}}
            }}
        }))
        .unwrap()
    }

    fn prepare(input: Value) -> Result<Value, Vec<ValidationIssue>> {
        let s = schema();
        let Value::Object(mut map) = input else {
            panic!()
        };
        s.validator(false).unwrap().prepare(&mut map)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn flags() {
        let s = schema();
        assert!(s.streaming && s.output_is_array && !s.has_training);
    }

    #[test]
    fn strips_unknown_and_injects_null() {
        assert_eq!(
            prepare(json!({"s": "x", "bogus": 1})).unwrap(),
            json!({"s": "x", "maybe": null, "seed": null, "style": null})
        );
    }

    #[test]
    fn an_explicit_null_is_valid_for_nullable_inputs_only() {
        // `seed: int = Input(default=None)`: omitted, null and set all reach the predictor.
        let all_null = json!({"s": "x", "maybe": null, "seed": null, "style": null});
        assert_eq!(prepare(all_null.clone()).unwrap(), all_null);
        assert_eq!(
            prepare(json!({"s": "x", "seed": 7, "style": "red"})).unwrap(),
            json!({"s": "x", "seed": 7, "style": "red", "maybe": null})
        );
        // Their values are still checked, and a null elsewhere is still refused.
        let bad = prepare(json!({"s": null, "seed": "7", "style": "blue", "color": null}));
        let mut fields: Vec<String> = bad
            .unwrap_err()
            .into_iter()
            .map(|i| i.loc[2].clone())
            .collect();
        fields.sort();
        fields.dedup(); // a null color breaks both its enum and its type
        assert_eq!(fields, ["color", "s", "seed", "style"]);
    }

    #[test]
    fn errors_have_cog_shape() {
        let missing = prepare(json!({})).unwrap_err();
        insta::assert_json_snapshot!("missing_required", missing);
        let bad = prepare(json!({"s": 1, "n": 0, "color": "blue", "maybe": null})).unwrap_err();
        insta::assert_json_snapshot!("bad_values", bad);
    }
}
