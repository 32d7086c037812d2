//! Errors and warnings, each rendered exactly as Cog prints it (`pkg/config/errors.go`).

use std::fmt;
use std::path::PathBuf;

use crate::go::quote;

/// One problem found while validating cog.yaml. Several are joined one per line, like Go's
/// `errors.Join`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// `schema error in "<field>": <message>`
    Schema { field: String, message: String },
    /// `invalid <field> "<value>": <message>`, or `invalid <field>: <message>` without a value.
    Invalid {
        field: String,
        value: String,
        message: String,
    },
    /// `<A> <va> is incompatible with <B> <vb>: <message>`
    Incompatible {
        component1: String,
        version1: String,
        component2: String,
        version2: String,
        message: String,
    },
    /// A message Cog prints as is (CUDA resolution, requirements reading).
    Other(String),
}

impl Issue {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Issue::Invalid {
            field: field.into(),
            value: value.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::Schema { field, message } => {
                write!(f, "schema error in {}: {message}", quote(field))
            }
            Issue::Invalid {
                field,
                value,
                message,
            } if value.is_empty() => write!(f, "invalid {field}: {message}"),
            Issue::Invalid {
                field,
                value,
                message,
            } => write!(f, "invalid {field} {}: {message}", quote(value)),
            Issue::Incompatible {
                component1,
                version1,
                component2,
                version2,
                message,
            } => {
                write!(
                    f,
                    "{component1} {version1} is incompatible with {component2} {version2}: {message}"
                )
            }
            Issue::Other(message) => f.write_str(message),
        }
    }
}

/// Something Cog accepts but warns about. The CLI prints these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// `deprecated field "<f>": use "<repl>" instead`
    Deprecated {
        field: String,
        replacement: String,
        message: String,
    },
    /// Free-form warnings (CUDA compatibility guesses, stripped managed packages).
    Other(String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Deprecated {
                field, replacement, ..
            } if !replacement.is_empty() => {
                write!(
                    f,
                    "deprecated field {}: use {} instead",
                    quote(field),
                    quote(replacement)
                )
            }
            Warning::Deprecated { field, message, .. } => {
                write!(f, "deprecated field {}: {message}", quote(field))
            }
            Warning::Other(message) => f.write_str(message),
        }
    }
}

/// Joins issues one per line (Go's `errors.Join`).
pub struct Joined<'a>(pub &'a [Issue]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Cog's `findProjectRootDir` error.
    #[error("{file} not found in {} (or in any parent directories)", dir.display())]
    NotFound { file: String, dir: PathBuf },
    #[error("failed to read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Cog's `ParseError`: the message already names the file.
    #[error("failed to parse {}: invalid YAML: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Every validation error, one per line, after the file's path.
    #[error("{}: {}", path.display(), Joined(issues))]
    Invalid { path: PathBuf, issues: Vec<Issue> },
}

impl ConfigError {
    /// The issues behind an `Invalid` error (empty for other kinds).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_formats_match_cog() {
        assert_eq!(
            Issue::Schema {
                field: "build".into(),
                message: "must be a mapping".into()
            }
            .to_string(),
            "schema error in \"build\": must be a mapping"
        );
        assert_eq!(
            Issue::invalid("train", "", "x").to_string(),
            "invalid train: x"
        );
        assert_eq!(
            Issue::invalid("train", "a\"b", "x").to_string(),
            "invalid train \"a\\\"b\": x"
        );
        assert_eq!(
            Warning::Deprecated {
                field: "predict".into(),
                replacement: "run".into(),
                message: String::new()
            }
            .to_string(),
            "deprecated field \"predict\": use \"run\" instead"
        );
    }
}
