//! A guard in front of `pep508_rs`, whose parser (0.9) panics on some malformed text (found by
//! `tests/fuzz.rs`): it slices inside a character on non-ASCII text after a marker's quoted
//! string, and unwraps a name it accepted that `PackageName` rejects (`f..`). Requirements come
//! from users' files and from indexes' METADATA, so a panic there would be a crash any index
//! could cause. Text is checked first (PEP 508 is ASCII; a leading name must start and end with
//! a letter or digit); a panic that still happens is caught and becomes an error.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::error::Cause;

/// Why text was not handed to the parser, or what became of it there.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refused {
    #[error(
        "non-ASCII character {character:?} at byte {at} (requirements and markers are ASCII, PEP 508)"
    )]
    NonAscii { character: char, at: usize },
    #[error("package name {0:?} must start and end with a letter or digit (PEP 508)")]
    Name(String),
    #[error("the PEP 508 parser failed on this text")]
    ParserPanicked,
}

/// `text` itself when it is ASCII.
pub fn ascii_only(text: &str) -> Result<&str, Refused> {
    match text.char_indices().find(|(_, c)| !c.is_ascii()) {
        None => Ok(text),
        Some((at, character)) => Err(Refused::NonAscii { character, at }),
    }
}

/// The leading name of a requirement (`name[extras] ...`), checked as PEP 508 wants it.
fn leading_name(text: &str) -> Result<(), Refused> {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .unwrap_or(text.len());
    let name = &text[..end];
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || (edge(name.chars().next()) && edge(name.chars().last())) {
        Ok(())
    } else {
        Err(Refused::Name(name.to_string()))
    }
}

/// Runs `parse` on `text` (a requirement when `requirement`, else a marker) once `text` passed
/// the checks; its error or a panic comes back as a [`Cause`].
pub fn parse<T, E>(
    text: &str,
    requirement: bool,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, Cause>
where
    E: std::error::Error + Send + Sync + 'static,
{
    ascii_only(text).map_err(|e| Arc::new(e) as Cause)?;
    if requirement {
        leading_name(text).map_err(|e| Arc::new(e) as Cause)?;
    }
    match catch_unwind(AssertUnwindSafe(|| parse(text))) {
        Ok(result) => result.map_err(|e| Arc::new(e) as Cause),
        Err(_) => Err(Arc::new(Refused::ParserPanicked)),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use pep508_rs::{MarkerTree, Requirement};
    use url::Url;

    use super::*;

    fn requirement(text: &str) -> Result<Requirement<Url>, Cause> {
        parse(text, true, Requirement::<Url>::from_str)
    }

    #[test]
    fn texts_that_crashed_the_parser_are_errors() {
        let err = requirement("torch; extra == \"torch\"\u{202e}").unwrap_err();
        assert!(err.to_string().contains("at byte 23"), "{err}");
        let err = requirement("f..; extra == 'x'").unwrap_err();
        assert!(err.to_string().contains("\"f..\""), "{err}");
        let err = parse(
            "python_version >= \"3.9\"\u{fffd}",
            false,
            MarkerTree::from_str,
        )
        .unwrap_err();
        assert!(err.to_string().contains("non-ASCII"), "{err}");
    }

    #[test]
    fn good_requirements_parse() {
        let r = requirement("numpy[extra]>=1.17; python_version >= '3.9'").unwrap();
        assert_eq!(r.name.as_ref(), "numpy");
        assert!(requirement("a.b-c_d==1").is_ok());
        assert!(requirement("x @ https://example.com/x-1.0-py3-none-any.whl").is_ok());
    }
}
