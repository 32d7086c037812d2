//! The crate's error type: every variant names the path, digest or entry it is about.

use std::io;
use std::path::PathBuf;

use crate::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure; the message names the path (errors come from `fs-err`), the OS error is
    /// its source.
    #[error(transparent)]
    Io(io::Error),

    /// The blob store root cannot be used (read-only, not a directory, full disk...).
    #[error("blob store at {}", .path.display())]
    Store { path: PathBuf, source: io::Error },

    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: &'static str },

    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    /// A layer entry that cannot go into a layer (escaping path, bad link target...).
    #[error("layer entry {path:?}: {reason}")]
    InvalidEntry { path: String, reason: String },

    /// `append_file` got fewer or more bytes than the size it announced.
    #[error("layer entry {path:?}: announced {expected} bytes, the reader gave {actual}")]
    FileSizeChanged {
        path: String,
        expected: u64,
        actual: u64,
    },

    #[error("layer entry {path:?}: cannot read its content")]
    Read { path: String, source: io::Error },

    #[error("SOURCE_DATE_EPOCH={0:?} is not a whole number of seconds since 1970")]
    InvalidSourceDateEpoch(String),

    #[error("ignore pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },

    #[error("layer compression failed: {0}")]
    Compression(String),
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}

/// `fs-err` keeps the OS error as the source and only the path in its own message: show both.
pub(crate) fn io_message(err: &io::Error) -> String {
    match err.get_ref().and_then(std::error::Error::source) {
        Some(inner) => format!("{err}: {inner}"),
        None => err.to_string(),
    }
}
