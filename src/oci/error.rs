//! Errors of the `oci` module: each names the file, blob or reference it is about.
use std::path::PathBuf;

use layers::Digest;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(transparent)]
    Store(#[from] layers::Error),

    /// An I/O failure; `fs-err` puts the path in the message, the OS error is its source.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error("{what} {}: invalid JSON", .path.display())]
    Json {
        what: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("blob {digest} ({what}) is not valid JSON")]
    BlobJson {
        what: &'static str,
        digest: Digest,
        source: serde_json::Error,
    },

    #[error("blob {digest} ({what}) is missing from {}", .location)]
    MissingBlob {
        what: &'static str,
        digest: Digest,
        location: String,
    },

    #[error("{location}: unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        location: String,
        what: &'static str,
        media_type: String,
    },

    #[error("{location}: {message}")]
    Invalid { location: String, message: String },

    #[error("{location}: no image tagged {tag:?}; available: {available}")]
    TagNotFound {
        location: String,
        tag: String,
        available: String,
    },

    #[error("{location}: no image for platform {wanted}; available: {available}")]
    PlatformNotFound {
        location: String,
        wanted: String,
        available: String,
    },

    #[error(
        "invalid image source {0:?}: expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE"
    )]
    InvalidSource(String),
}
