//! Errors of the wheels crate. Messages name the file, package, URL or tag involved; a cause is
//! kept as the error's `source`, never copied into its message.
//!
//! [`Error`] is `Clone` (causes that are not are shared through an `Arc`), so one failure seen by
//! several resolver futures reaches the caller whole.

use std::path::PathBuf;
use std::sync::Arc;

/// A cause from outside this crate (a parser, the zip reader, a source builder).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Anything that can go wrong while parsing, resolving, building or installing.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line of a requirements file that cannot be used.
    #[error("{file}:{line}: {message}")]
    Requirements {
        file: PathBuf,
        line: usize,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A failure about one requirement of the input: where it is written and what it says.
    #[error("{origin}: `{requirement}`{via}")]
    Requirement {
        /// `file:line`.
        origin: String,
        requirement: String,
        /// `` (needed by a 1.0)``: the chain from the requirement to the failing package.
        via: String,
        #[source]
        source: Box<Error>,
    },
    #[error("invalid target: {0}")]
    Target(String),
    #[error("package `{name}` was not found in {indexes}")]
    PackageNotFound { name: String, indexes: String },
    #[error("{0}")]
    NoCompatibleWheel(String),
    #[error(
        "`{name}` {version} is only available as a source distribution ({file}){covers}; pip would build it, but cog-rs was given no source builder here: pin a version that has a wheel for the target"
    )]
    SourceOnly {
        name: String,
        version: String,
        file: String,
        /// ` (its wheels cover ...)` when it has wheels for other targets, else empty.
        covers: String,
    },
    #[error("no solution for these requirements:\n{0}")]
    Conflict(String),
    /// The hash policy of the requirements (`--require-hashes`, `--hash`) is not met.
    #[error("{0}")]
    Hashes(String),
    #[error("{url}: {what} failed")]
    Http {
        url: String,
        what: &'static str,
        #[source]
        source: Arc<reqwest::Error>,
    },
    #[error("{url}: {what}: HTTP {status}")]
    HttpStatus {
        url: String,
        what: &'static str,
        status: u16,
    },
    #[error("{url}: gave up after {attempts} attempts{}", last_status.map(|s| format!(" (last answer: HTTP {s})")).unwrap_or_default())]
    Unreachable {
        url: String,
        attempts: u32,
        last_status: Option<u16>,
        #[source]
        source: Option<Arc<reqwest::Error>>,
    },
    #[error("hash mismatch for {file}: expected sha256 {expected}, got {actual}")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: invalid metadata: {message}")]
    Metadata {
        file: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("{file}: unsafe path in wheel: {path:?}")]
    UnsafePath { file: String, path: String },
    #[error("{origin} offers a file that cannot be stored safely")]
    UnsafeName {
        origin: String,
        #[source]
        source: safe_path::UnsafeName,
    },
    #[error("{file}: invalid wheel: {message}")]
    InvalidWheel {
        file: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A source archive (sdist) that cannot be read or unpacked.
    #[error("{file}: invalid source archive: {message}")]
    InvalidSdist {
        file: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A `pyproject.toml` that pip would refuse too.
    #[error("{file}: {message}")]
    Pyproject {
        file: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A `git` command that failed; `stderr` is git's own report.
    #[error("git {action} {repository}: {stderr}")]
    Git {
        repository: String,
        action: &'static str,
        stderr: String,
    },
    /// A git revision that the repository does not have.
    #[error(
        "{repository} has no branch, tag or commit `{rev}` (pip would fail to check it out too)"
    )]
    GitRevNotFound { repository: String, rev: String },
    /// Running `git` itself failed (not installed, ...).
    #[error("cannot run git (needed for {repository})")]
    GitCommand {
        repository: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A source distribution or checkout that must be built, with no builder to build it.
    #[error(
        "{what} must be built from source; pip would build it, but cog-rs was given no source builder here"
    )]
    NoBuilder { what: String },
    /// The source builder failed (its error carries the build log).
    #[error("{step} for {what} failed")]
    Build {
        what: String,
        step: &'static str,
        #[source]
        source: Cause,
    },
    /// A wheel built from source that does not fit what was asked.
    #[error("{what}: the built wheel {wheel} {message}")]
    BuiltWheel {
        what: String,
        wheel: String,
        message: String,
    },
    #[error("lock file {path}: {message}")]
    Lock {
        path: PathBuf,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A background task of the resolver or installer stopped (a panic).
    #[error("{0} stopped unexpectedly")]
    Task(&'static str),
    #[error(transparent)]
    Io(Arc<std::io::Error>),
    #[error(transparent)]
    Layer(Arc<layers::Error>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl From<layers::Error> for Error {
    fn from(e: layers::Error) -> Self {
        Error::Layer(Arc::new(e))
    }
}

impl Error {
    /// The error under any [`Error::Requirement`] wrappers: what actually went wrong.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::Requirement { source, .. } => source.innermost(),
            other => other,
        }
    }
}
