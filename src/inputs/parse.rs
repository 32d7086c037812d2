//! `-i name=value` and `--json` into JSON values, coerced by the schema the way Cog's CLI does.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::InputError;
use super::schema::{Kind, kind};

/// Splits `name=value` flags and groups repeated names, in order of first appearance.
/// Surrounding double quotes are stripped from values, as Cog does.
pub(super) fn group_pairs(pairs: &[String]) -> Result<Vec<(String, Vec<String>)>, InputError> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| InputError::Format(pair.clone()))?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match grouped.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value.to_string()),
            None => grouped.push((name.to_string(), vec![value.to_string()])),
        }
    }
    Ok(grouped)
}

/// Coerces grouped `-i` values by each property's type. Names were checked already; a name the
/// schema does not know is kept as a string.
pub(super) fn coerce_pairs(
    doc: &Value,
    input: &Value,
    grouped: Vec<(String, Vec<String>)>,
    base_dir: &Path,
) -> Result<Map<String, Value>, InputError> {
    let mut map = Map::new();
    for (name, values) in grouped {
        let kind = input
            .get("properties")
            .and_then(|p| p.get(&name))
            .map_or(Kind::String, |prop| kind(doc, prop));
        let value = match (values.as_slice(), &kind) {
            ([one], Kind::Array(item)) => {
                if let Some(path) = one.strip_prefix('@') {
                    Value::Array(vec![data_url(path, base_dir)?])
                } else if let Some(list) = json_array(one) {
                    list
                } else {
                    Value::Array(vec![coerce(item, one)])
                }
            }
            ([one], kind) => coerce_or_file(kind, one, base_dir)?,
            (many, kind) => {
                let item = match kind {
                    Kind::Array(item) => item.as_ref(),
                    other => other,
                };
                Value::Array(
                    many.iter()
                        .map(|v| coerce_or_file(item, v, base_dir))
                        .collect::<Result<_, _>>()?,
                )
            }
        };
        map.insert(name, value);
    }
    Ok(map)
}

fn coerce_or_file(kind: &Kind, value: &str, base_dir: &Path) -> Result<Value, InputError> {
    match value.strip_prefix('@') {
        Some(path) => data_url(path, base_dir),
        None => Ok(coerce(kind, value)),
    }
}

fn json_array(value: &str) -> Option<Value> {
    if !value.trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Value>(value)
        .ok()
        .filter(Value::is_array)
}

/// One command-line string as the property's type; a string that does not parse stays a
/// string, so validation reports `expected integer, got string` as Cog does.
fn coerce(kind: &Kind, value: &str) -> Value {
    let fallback = || Value::String(value.to_string());
    match kind {
        Kind::Boolean => parse_bool(value).map_or_else(fallback, Value::Bool),
        Kind::Integer => value
            .trim()
            .parse::<i64>()
            .map_or_else(|_| fallback(), Value::from),
        Kind::Number => match value.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => {
                // Keep integers integral in the request: `3` stays `3`, not `3.0`.
                if let Ok(i) = value.trim().parse::<i64>() {
                    Value::from(i)
                } else {
                    Value::from(n)
                }
            }
            _ => fallback(),
        },
        Kind::Object => serde_json::from_str::<Value>(value)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(fallback),
        Kind::Array(_) => json_array(value).unwrap_or_else(fallback),
        Kind::String | Kind::Other => fallback(),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `~` expanded, then relative to `base_dir`.
fn input_path(path: &str, base_dir: &Path) -> PathBuf {
    let expanded = match path.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map(|home| Path::new(&home).join(rest)),
        None if path == "~" => std::env::var_os("HOME").map(PathBuf::from),
        None => None,
    };
    let path = expanded.unwrap_or_else(|| PathBuf::from(path));
    if path.is_absolute() {
        path
    } else {
        base_dir.join(path)
    }
}

/// A file as `data:<mime>;base64,…`, the mime type guessed from its extension.
pub(super) fn data_url(path: &str, base_dir: &Path) -> Result<Value, InputError> {
    let path = input_path(path, base_dir);
    let bytes = fs_err::read(&path).map_err(|source| InputError::Read {
        path: path.clone(),
        source,
    })?;
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(Value::String(format!("data:{mime};base64,{data}")))
}

/// `--json`: a JSON object given inline, as `@file`, or as `@-`/`-` for stdin.
pub(super) fn json_inputs(
    json: &str,
    base_dir: &Path,
    stdin: &mut dyn Read,
) -> Result<Map<String, Value>, InputError> {
    let (text, origin) = if json == "-" || json == "@-" {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|source| InputError::Read {
                path: PathBuf::from("<stdin>"),
                source,
            })?;
        (text, Some(PathBuf::from("<stdin>")))
    } else if let Some(file) = json.strip_prefix('@') {
        let path = input_path(file, base_dir);
        let text = fs_err::read_to_string(&path).map_err(|source| InputError::Read {
            path: path.clone(),
            source,
        })?;
        (text, Some(path))
    } else {
        (json.to_string(), None)
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(InputError::JsonNotObject(super::schema::json_type_name(
            &other,
        ))),
        Err(source) => Err(InputError::Json { origin, source }),
    }
}

/// `--json` string values (and array items) starting with `@` are files, sent as data URLs.
pub(super) fn json_files(
    map: Map<String, Value>,
    base_dir: &Path,
) -> Result<Map<String, Value>, InputError> {
    let file = |value: Value| match value {
        Value::String(s) => match s.strip_prefix('@') {
            Some(path) => data_url(path, base_dir),
            None => Ok(Value::String(s)),
        },
        other => Ok(other),
    };
    map.into_iter()
        .map(|(name, value)| {
            let value = match value {
                Value::Array(items) => {
                    Value::Array(items.into_iter().map(file).collect::<Result<_, _>>()?)
                }
                other => file(other)?,
            };
            Ok((name, value))
        })
        .collect()
}
