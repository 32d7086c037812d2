//! Errors of the wheels crate. Messages name the file, package, URL or tag involved.

use std::path::PathBuf;

/// Anything that can go wrong while parsing, resolving or installing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}:{line}: {message}")]
    Requirements {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid target: {0}")]
    Target(String),
    #[error("package `{name}` was not found in {indexes}")]
    PackageNotFound { name: String, indexes: String },
    #[error("{0}")]
    NoCompatibleWheel(String),
    #[error(
        "`{name}` {version} is only available as a source distribution ({file}); cog-rs does not build source distributions: pin a version that has a wheel for the target"
    )]
    SourceOnly {
        name: String,
        version: String,
        file: String,
    },
    #[error("no solution for these requirements:\n{0}")]
    Conflict(String),
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: gave up after {attempts} attempts: {message}")]
    Unreachable {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("hash mismatch for {file}: expected sha256 {expected}, got {actual}")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: invalid metadata: {message}")]
    Metadata { file: String, message: String },
    #[error("{file}: unsafe path in wheel: {path:?}")]
    UnsafePath { file: String, path: String },
    #[error("{origin} offers a file that cannot be stored safely")]
    UnsafeName {
        origin: String,
        #[source]
        source: safe_path::UnsafeName,
    },
    #[error("{file}: invalid wheel: {message}")]
    InvalidWheel { file: String, message: String },
    #[error("lock file {path}: {message}")]
    Lock { path: PathBuf, message: String },
    #[error("{0}")]
    Other(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Layer(#[from] layers::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A copy of a shared error (resolver futures share theirs); I/O and layer errors keep
    /// their message only.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Requirements {
                file,
                line,
                message,
            } => Error::Requirements {
                file: file.clone(),
                line: *line,
                message: message.clone(),
            },
            Error::Target(m) => Error::Target(m.clone()),
            Error::PackageNotFound { name, indexes } => Error::PackageNotFound {
                name: name.clone(),
                indexes: indexes.clone(),
            },
            Error::NoCompatibleWheel(m) => Error::NoCompatibleWheel(m.clone()),
            Error::SourceOnly {
                name,
                version,
                file,
            } => Error::SourceOnly {
                name: name.clone(),
                version: version.clone(),
                file: file.clone(),
            },
            Error::Conflict(m) => Error::Conflict(m.clone()),
            Error::Http { url, message } => Error::Http {
                url: url.clone(),
                message: message.clone(),
            },
            Error::Unreachable {
                url,
                attempts,
                message,
            } => Error::Unreachable {
                url: url.clone(),
                attempts: *attempts,
                message: message.clone(),
            },
            Error::HashMismatch {
                file,
                expected,
                actual,
            } => Error::HashMismatch {
                file: file.clone(),
                expected: expected.clone(),
                actual: actual.clone(),
            },
            Error::Metadata { file, message } => Error::Metadata {
                file: file.clone(),
                message: message.clone(),
            },
            Error::UnsafePath { file, path } => Error::UnsafePath {
                file: file.clone(),
                path: path.clone(),
            },
            Error::InvalidWheel { file, message } => Error::InvalidWheel {
                file: file.clone(),
                message: message.clone(),
            },
            Error::Lock { path, message } => Error::Lock {
                path: path.clone(),
                message: message.clone(),
            },
            Error::UnsafeName { origin, source } => Error::UnsafeName {
                origin: origin.clone(),
                source: source.clone(),
            },
            Error::Other(m) => Error::Other(m.clone()),
            Error::Io(e) => Error::Other(e.to_string()),
            Error::Layer(e) => Error::Other(e.to_string()),
        }
    }
}
