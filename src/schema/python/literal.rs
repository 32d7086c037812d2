//! Python literals read from the syntax tree: strings, ints and floats.
//!
//! Strings keep their raw source text between the quotes (no escape processing), which is
//! what Cog's Go parser does; the documents stay byte-equal for the same source.

use tree_sitter::Node;

use super::syntax::{named_children, text};
use crate::schema::model::Value;

/// A string literal's content, or `None` for f-strings, byte strings and the like.
pub fn string(node: Node<'_>, src: &str) -> Option<String> {
    match node.kind() {
        "string" => string_content(text(node, src)),
        "concatenated_string" => {
            let mut out = String::new();
            for part in named_children(node) {
                if part.kind() == "string" {
                    out.push_str(&string_content(text(part, src))?);
                }
            }
            Some(out)
        }
        "parenthesized_expression" => named_children(node)
            .into_iter()
            .find(|c| c.kind() != "comment")
            .and_then(|c| string(c, src)),
        _ => None,
    }
}

fn string_content(raw: &str) -> Option<String> {
    let prefix_len = raw.find(['"', '\'']).unwrap_or(raw.len());
    let prefix = raw[..prefix_len].to_ascii_lowercase();
    if !matches!(prefix.as_str(), "" | "r" | "u") {
        return None;
    }
    let body = &raw[prefix_len..];
    for quote in ["\"\"\"", "'''", "\"", "'"] {
        if body.len() >= 2 * quote.len() && body.starts_with(quote) && body.ends_with(quote) {
            return Some(body[quote.len()..body.len() - quote.len()].to_owned());
        }
    }
    None
}

/// An integer as Go's `strconv.ParseInt(s, 0, 64)` reads Python source (see [`crate::go`]).
pub fn parse_int(s: &str) -> Option<i64> {
    crate::go::parse_int(s)
}

pub fn parse_float(s: &str) -> Option<f64> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || clean.ends_with(['j', 'J']) {
        return None;
    }
    let value: f64 = clean.parse().ok()?;
    value.is_finite().then_some(value)
}

/// A signed number: an int when it reads as one, else a float.
pub fn parse_number_text(s: &str) -> Option<Value> {
    parse_int(s)
        .map(Value::Int)
        .or_else(|| parse_float(s).map(Value::Float))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_go() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-7"), Some(-7));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("0x1F"), Some(31));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("0b101"), Some(5));
        assert_eq!(parse_int("99999999999999999999"), None);
        assert_eq!(parse_int("1.5"), None);
    }

    #[test]
    fn strings_keep_raw_content() {
        assert_eq!(string_content("\"a\\nb\""), Some("a\\nb".to_owned()));
        assert_eq!(string_content("'''x'''"), Some("x".to_owned()));
        assert_eq!(string_content("r'\\d+'"), Some("\\d+".to_owned()));
        assert_eq!(string_content("f'{x}'"), None);
        assert_eq!(string_content("b'x'"), None);
    }
}
