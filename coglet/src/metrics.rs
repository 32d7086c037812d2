//! User metrics (Cog reference 2.6): name rules and how values combine.
//!
//! The worker validates names and applies values as the runner records them (so that a bad
//! metric raises in user code); the server applies the same rules when it builds `metrics`.

use serde_json::{Map, Value};

use crate::ipc::MetricMode;

pub const MAX_METRIC_NAME_LEN: usize = 128;
pub const MAX_METRIC_SEGMENTS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// The message says which rule `name` breaks.
    #[error("{message}")]
    InvalidName { name: String, message: String },
    #[error(
        "metric '{name}' already holds a {existing} value; delete it before setting a {new} value"
    )]
    TypeChange {
        name: String,
        existing: &'static str,
        new: &'static str,
    },
    #[error("metric '{name}': mode 'incr' needs a number, got {got}")]
    NotNumeric { name: String, got: &'static str },
    #[error(
        "metric '{name}': a value of type {got} is not allowed (bool, int, float, str, list or dict)"
    )]
    BadValue { name: String, got: &'static str },
}

/// Checks a metric name against Cog's rules, reserved names included (recording).
/// The messages are Cog's, word for word: user code and scripts match on them.
pub fn validate_metric_name(name: &str) -> Result<(), MetricError> {
    if name == "predict_time" {
        return Err(invalid(
            name,
            "'predict_time' is reserved by the runtime".into(),
        ));
    }
    if name.starts_with("cog.") {
        return Err(invalid(
            name,
            "the 'cog.' prefix is reserved for system metrics".into(),
        ));
    }
    validate_metric_name_structure(name)
}

fn invalid(name: &str, message: String) -> MetricError {
    MetricError::InvalidName {
        name: name.to_string(),
        message,
    }
}

/// The shape rules alone (deleting a metric: a reserved name is harmless there, as in Cog).
/// Each dot-separated segment matches `[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*`; at most 128
/// characters and 4 segments.
pub fn validate_metric_name_structure(name: &str) -> Result<(), MetricError> {
    if name.is_empty() {
        return Err(invalid(name, "metric name must not be empty".into()));
    }
    if name.len() > MAX_METRIC_NAME_LEN {
        return Err(invalid(
            name,
            format!(
                "metric name must be {MAX_METRIC_NAME_LEN} characters or fewer (got {} characters)",
                name.len()
            ),
        ));
    }
    let segments: Vec<&str> = name.split('.').collect();
    if segments.len() > MAX_METRIC_SEGMENTS {
        return Err(invalid(
            name,
            format!(
                "metric name must have at most {MAX_METRIC_SEGMENTS} dot-separated segments (got {})",
                segments.len()
            ),
        ));
    }
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            let message = match index {
                0 => "metric name must not start with a dot",
                i if i == last => "metric name must not end with a dot",
                _ => "metric name must not contain empty segments (consecutive dots)",
            };
            return Err(invalid(name, message.into()));
        }
        validate_segment(segment).map_err(|message| invalid(name, message))?;
    }
    Ok(())
}

fn validate_segment(segment: &str) -> Result<(), String> {
    let mut chars = segment.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "metric name segment '{segment}' must start with a letter"
        ));
    }
    let mut after_underscore = false;
    for c in chars {
        if c == '_' {
            if after_underscore {
                return Err(format!(
                    "metric name segment '{segment}' must not contain consecutive underscores"
                ));
            }
            after_underscore = true;
        } else if c.is_ascii_alphanumeric() {
            after_underscore = false;
        } else {
            return Err(format!(
                "metric name segment '{segment}' contains invalid character '{c}'"
            ));
        }
    }
    if after_underscore {
        return Err(format!(
            "metric name segment '{segment}' must end with a letter or digit"
        ));
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The metrics of one prediction, nested by dotted name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    root: Map<String, Value>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.root
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.root
    }

    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// Records `value` under `name`; `null` deletes. The name must already be valid.
    pub fn apply(&mut self, name: &str, value: Value, mode: MetricMode) -> Result<(), MetricError> {
        let mut parts: Vec<&str> = name.split('.').collect();
        let Some(leaf) = parts.pop() else {
            return Ok(());
        };
        if value.is_null() {
            let mut node = &mut self.root;
            for part in &parts {
                match node.get_mut(*part) {
                    Some(Value::Object(next)) => node = next,
                    _ => return Ok(()),
                }
            }
            node.shift_remove(leaf);
            return Ok(());
        }
        let mut node = &mut self.root;
        for part in &parts {
            let entry = node
                .entry((*part).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                return Err(MetricError::TypeChange {
                    name: name.to_string(),
                    existing: kind(entry),
                    new: "dict",
                });
            }
            let Value::Object(next) = entry else {
                return Ok(());
            };
            node = next;
        }
        let existing = node.get_mut(leaf);
        match mode {
            MetricMode::Replace => {
                if let Some(old) = &existing {
                    let (a, b) = (kind(old), kind(&value));
                    let numeric = matches!((a, b), ("int" | "float", "int" | "float"));
                    if a != b && !numeric {
                        return Err(MetricError::TypeChange {
                            name: name.to_string(),
                            existing: a,
                            new: b,
                        });
                    }
                }
                node.insert(leaf.to_string(), value);
            }
            MetricMode::Increment => {
                let Value::Number(add) = &value else {
                    return Err(MetricError::NotNumeric {
                        name: name.to_string(),
                        got: kind(&value),
                    });
                };
                let sum = match existing {
                    None => value.clone(),
                    Some(Value::Number(old)) => add_numbers(old, add),
                    Some(other) => {
                        return Err(MetricError::TypeChange {
                            name: name.to_string(),
                            existing: kind(other),
                            new: kind(&value),
                        });
                    }
                };
                node.insert(leaf.to_string(), sum);
            }
            MetricMode::Append => match existing {
                None => {
                    node.insert(leaf.to_string(), Value::Array(vec![value]));
                }
                Some(Value::Array(items)) => items.push(value),
                Some(scalar) => {
                    let old = scalar.take();
                    *scalar = Value::Array(vec![old, value]);
                }
            },
        }
        Ok(())
    }
}

fn add_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Value {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64())
        && let Some(sum) = x.checked_add(y)
    {
        return Value::from(sum);
    }
    let sum = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    serde_json::Number::from_f64(sum).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_cog_rules() {
        for ok in ["tokens", "a.b.c.d", "gpu_mem2", "t1.x_y"] {
            validate_metric_name(ok).unwrap();
        }
        for bad in [
            "",
            "predict_time",
            "cog.x",
            "1a",
            "a_",
            "a__b",
            "a.b.c.d.e",
            "a..b",
            "a-b",
        ] {
            assert!(validate_metric_name(bad).is_err(), "{bad}");
        }
        assert!(validate_metric_name(&"a".repeat(129)).is_err());
        // Only `cog.` is reserved, not `cog` itself.
        validate_metric_name("cog").unwrap();
    }

    #[test]
    fn name_errors_use_cogs_wording() {
        let message = |name: &str| validate_metric_name(name).unwrap_err().to_string();
        let cases = [
            ("_x", "metric name segment '_x' must start with a letter"),
            (
                "foo__bar",
                "metric name segment 'foo__bar' must not contain consecutive underscores",
            ),
            (
                "foo_",
                "metric name segment 'foo_' must end with a letter or digit",
            ),
            (
                "a-b",
                "metric name segment 'a-b' contains invalid character '-'",
            ),
            (".a", "metric name must not start with a dot"),
            ("a.", "metric name must not end with a dot"),
            (
                "a..b",
                "metric name must not contain empty segments (consecutive dots)",
            ),
            (
                "a.b.c.d.e",
                "metric name must have at most 4 dot-separated segments (got 5)",
            ),
            ("predict_time", "'predict_time' is reserved by the runtime"),
            ("cog.x", "the 'cog.' prefix is reserved for system metrics"),
            ("", "metric name must not be empty"),
        ];
        for (name, expected) in cases {
            assert_eq!(message(name), expected, "{name:?}");
        }
        assert_eq!(
            message(&"a".repeat(129)),
            "metric name must be 128 characters or fewer (got 129 characters)"
        );
    }

    #[test]
    fn deleting_checks_the_shape_but_not_reserved_names() {
        validate_metric_name_structure("predict_time").unwrap();
        validate_metric_name_structure("cog.x").unwrap();
        assert!(validate_metric_name_structure("a__b").is_err());
    }

    #[test]
    fn modes_and_nesting() {
        let mut m = Metrics::new();
        m.apply("tokens", json!(1), MetricMode::Increment).unwrap();
        m.apply("tokens", json!(2), MetricMode::Increment).unwrap();
        m.apply("timing.pre", json!(0.5), MetricMode::Replace)
            .unwrap();
        m.apply("seen", json!("a"), MetricMode::Replace).unwrap();
        m.apply("seen", json!("b"), MetricMode::Append).unwrap();
        m.apply("gone", json!(true), MetricMode::Replace).unwrap();
        m.apply("gone", Value::Null, MetricMode::Replace).unwrap();
        assert_eq!(
            Value::Object(m.into_map()),
            json!({"tokens": 3, "timing": {"pre": 0.5}, "seen": ["a", "b"]})
        );
    }

    #[test]
    fn type_is_fixed_until_deleted() {
        let mut m = Metrics::new();
        m.apply("x", json!(1), MetricMode::Replace).unwrap();
        m.apply("x", json!(1.5), MetricMode::Replace).unwrap();
        assert!(m.apply("x", json!("s"), MetricMode::Replace).is_err());
        assert!(m.apply("x", json!("s"), MetricMode::Increment).is_err());
        m.apply("x", Value::Null, MetricMode::Replace).unwrap();
        m.apply("x", json!("s"), MetricMode::Replace).unwrap();
    }
}
