//! Schema errors: Cog's message, plus where in the project it comes from.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, coarsely (Cog's `SchemaErrorKind`), so callers can branch without
/// matching on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaErrorKind {
    Io,
    Parse,
    InvalidPredictRef,
    PredictorNotFound,
    MethodNotFound,
    MissingReturnType,
    MissingTypeAnnotation,
    UnsupportedType,
    DefaultFactoryNotSupported,
    DefaultNotResolvable,
    ChoicesNotResolvable,
    /// Another `Input()` argument (description, constraint, ...) that cannot be computed.
    ArgumentNotResolvable,
    InvalidConstraint,
    OptionalOutput,
    ConcatIteratorNotStr,
    UnresolvableType,
    InvalidDecorator,
    /// The generated document failed OpenAPI validation (defaults outside bounds, ...).
    InvalidSchema,
}

/// A file and 1-based line in the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

/// A schema generation failure. Displays as `file:line: message` when the place is known;
/// `message` is Cog's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct SchemaError {
    pub kind: SchemaErrorKind,
    pub message: String,
    pub location: Option<Location>,
}

impl SchemaError {
    pub fn new(kind: SchemaErrorKind, message: impl Into<String>) -> SchemaError {
        SchemaError {
            kind,
            message: message.into(),
            location: None,
        }
    }

    /// Attaches a location unless one is already set (the innermost place wins).
    #[must_use]
    pub fn at(mut self, file: &std::path::Path, line: usize) -> SchemaError {
        if self.location.is_none() {
            self.location = Some(Location {
                file: file.to_path_buf(),
                line,
            });
        }
        self
    }

    fn render(&self) -> String {
        match &self.location {
            Some(loc) => format!("{}:{}: {}", loc.file.display(), loc.line, self.message),
            None => self.message.clone(),
        }
    }

    pub(crate) fn unsupported(msg: impl fmt::Display) -> SchemaError {
        SchemaError::new(
            SchemaErrorKind::UnsupportedType,
            format!("unsupported type: {msg}"),
        )
    }

    pub(crate) fn unresolvable_imported(name: &str, module: &str) -> SchemaError {
        SchemaError::new(
            SchemaErrorKind::UnresolvableType,
            format!(
                "cannot resolve output type '{name}' (imported from '{module}') \u{2014} external types cannot be \
                 statically analyzed. Define it as a BaseModel subclass in your predict file, or provide a .pyi stub"
            ),
        )
    }

    pub(crate) fn unresolvable(name: &str) -> SchemaError {
        SchemaError::new(
            SchemaErrorKind::UnresolvableType,
            format!(
                "cannot resolve output type '{name}' \u{2014} it is not a primitive type (str, int, float, bool, Path) \
                 and no BaseModel definition was found in the predict file"
            ),
        )
    }

    pub(crate) fn optional_output() -> SchemaError {
        SchemaError::new(
            SchemaErrorKind::OptionalOutput,
            "unsupported output type: Optional is not allowed as a return type",
        )
    }
}
