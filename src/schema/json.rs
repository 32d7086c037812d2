//! A JSON tree serialized exactly as Go's `encoding/json` does, so our documents are byte-equal
//! to Cog's: Go sorts plain map keys, keeps `orderedMap` keys in insertion order, escapes
//! `<`, `>`, `&`, U+2028 and U+2029, and formats floats with its own shortest form.

use std::fmt::Write as _;

/// A JSON value. Objects keep the order of their entries: [`Json::map`] sorts them (a Go
/// `map[string]any`), [`Json::ordered`] keeps them as given (Cog's `orderedMapAny`).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object with Go map semantics: a later duplicate key wins, keys sorted bytewise.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Json)>) -> Json {
        let mut out: Vec<(String, Json)> = Vec::new();
        for (key, value) in entries {
            set_entry(&mut out, key.into(), value);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Json::Object(out)
    }

    /// An object whose keys stay in insertion order (a later duplicate replaces in place).
    pub fn ordered<K: Into<String>>(entries: impl IntoIterator<Item = (K, Json)>) -> Json {
        let mut out: Vec<(String, Json)> = Vec::new();
        for (key, value) in entries {
            set_entry(&mut out, key.into(), value);
        }
        Json::Object(out)
    }

    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Looks a key up in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Compact encoding, as `json.Marshal`.
    pub fn to_compact(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.write_compact(&mut out);
        out
    }

    /// Indented encoding, as `json.MarshalIndent(v, "", "  ")`.
    pub fn to_indented(&self) -> String {
        let mut out = String::with_capacity(8192);
        self.write_indented(&mut out, "", "  ", 0);
        out
    }

    /// Indented with a line prefix, as a Go `json.Encoder` with `SetIndent(prefix, indent)`
    /// (used to reproduce kin-openapi's error details). Ends with a newline, as `Encode` does.
    pub fn to_encoder_indented(&self, prefix: &str, indent: &str) -> String {
        let mut out = String::new();
        self.write_indented(&mut out, prefix, indent, 0);
        out.push('\n');
        out
    }

    /// The same value as Go sees it after `json.Unmarshal` into `any`: every object sorted,
    /// every number a float64. Cog's combined predict+train document goes through this.
    pub fn normalized_like_go_any(&self) -> Json {
        match self {
            Json::Int(i) => Json::Float(*i as f64),
            Json::Array(items) => {
                Json::Array(items.iter().map(Json::normalized_like_go_any).collect())
            }
            Json::Object(entries) => {
                let mut out: Vec<(String, Json)> = entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.normalized_like_go_any()))
                    .collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                Json::Object(out)
            }
            other => other.clone(),
        }
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_compact(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_go_string(out, key);
                    out.push(':');
                    value.write_compact(out);
                }
                out.push('}');
            }
            scalar => scalar.write_scalar(out),
        }
    }

    fn write_indented(&self, out: &mut String, prefix: &str, indent: &str, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            out.push('\n');
            out.push_str(prefix);
            for _ in 0..depth {
                out.push_str(indent);
            }
        };
        match self {
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Object(entries) if entries.is_empty() => out.push_str("{}"),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    item.write_indented(out, prefix, indent, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    write_go_string(out, key);
                    out.push_str(": ");
                    value.write_indented(out, prefix, indent, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
            scalar => scalar.write_scalar(out),
        }
    }

    fn write_scalar(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Float(f) => write_go_float(out, *f),
            Json::Str(s) => write_go_string(out, s),
            Json::Array(_) | Json::Object(_) => self.write_compact(out),
        }
    }
}

fn set_entry(out: &mut Vec<(String, Json)>, key: String, value: Json) {
    if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else {
        out.push((key, value));
    }
}

/// Go's float64 encoding: shortest round-trip digits, plain notation for 1e-6 <= |f| < 1e21,
/// otherwise exponent notation with an explicit sign (`1e+21`, `1e-7`).
pub fn write_go_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        // encoding/json refuses these; Python literals cannot produce them.
        out.push_str("null");
        return;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => {
                let _ = write!(out, "{mantissa}e+{exp}");
            }
            _ => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Go's `%v` of a float64 (used for non-string dict keys): `strconv.FormatFloat(f, 'g', -1, 64)`.
pub fn go_format_float_g(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e6).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else {
        format!("{f}")
    }
}

/// Go's string encoding with HTML escaping (the `json.Marshal` default).
pub fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(f: f64) -> String {
        let mut s = String::new();
        write_go_float(&mut s, f);
        s
    }

    #[test]
    fn floats_format_like_go() {
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.5), "0.5");
        assert_eq!(float(-2.25), "-2.25");
        assert_eq!(float(1e20), "100000000000000000000");
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(1.5e-7), "1.5e-7");
        assert_eq!(float(1e-6), "0.000001");
        assert_eq!(float(0.0), "0");
        assert_eq!(float(1e-10), "1e-10");
    }

    #[test]
    fn g_format_like_go() {
        assert_eq!(go_format_float_g(1.5), "1.5");
        assert_eq!(go_format_float_g(1e21), "1e+21");
        assert_eq!(go_format_float_g(1_234_567.0), "1.234567e+06");
        assert_eq!(go_format_float_g(123_456.0), "123456");
        assert_eq!(go_format_float_g(1e-5), "1e-05");
    }

    #[test]
    fn strings_escape_like_go() {
        let mut s = String::new();
        write_go_string(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
    }

    #[test]
    fn maps_sort_and_ordered_keep_order() {
        let m = Json::map([
            ("b", Json::Int(1)),
            ("a", Json::Int(2)),
            ("b", Json::Int(3)),
        ]);
        assert_eq!(m.to_compact(), r#"{"a":2,"b":3}"#);
        let o = Json::ordered([("b", Json::Int(1)), ("a", Json::Int(2))]);
        assert_eq!(o.to_compact(), r#"{"b":1,"a":2}"#);
    }

    #[test]
    fn indents_like_go() {
        let v = Json::map([
            ("a", Json::Array(vec![])),
            ("b", Json::Array(vec![Json::Int(1), Json::map::<&str>([])])),
        ]);
        assert_eq!(
            v.to_indented(),
            "{\n  \"a\": [],\n  \"b\": [\n    1,\n    {}\n  ]\n}"
        );
    }
}
