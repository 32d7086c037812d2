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
    #[error("invalid metric name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },
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

/// Checks a metric name against Cog's rules.
pub fn validate_metric_name(name: &str) -> Result<(), MetricError> {
    let fail = |reason| {
        Err(MetricError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > MAX_METRIC_NAME_LEN {
        return fail("must be at most 128 characters");
    }
    if name == "predict_time" {
        return fail("'predict_time' is reserved");
    }
    if name.starts_with("cog.") || name == "cog" {
        return fail("the 'cog.' prefix is reserved");
    }
    let segments: Vec<&str> = name.split('.').collect();
    if segments.len() > MAX_METRIC_SEGMENTS {
        return fail("must have at most 4 dot-separated segments");
    }
    for segment in segments {
        let bytes = segment.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return fail("segments must not be empty");
        };
        if !first.is_ascii_alphabetic() {
            return fail("each segment must start with a letter");
        }
        if !last.is_ascii_alphanumeric() {
            return fail("each segment must end with a letter or digit");
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            return fail("segments may contain only letters, digits and '_'");
        }
        if segment.contains("__") {
            return fail("segments must not contain '__'");
        }
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
