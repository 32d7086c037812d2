//! Reproducible, content-addressed OCI tar layers: entries, gzip/zstd, digests, blob store.

mod compress;
mod digest;
mod dockerignore;
mod error;
mod header;
pub mod pgzip;
mod spec;
mod store;
mod writer;

pub use compress::{
    Compression, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, Encoder, MEDIA_TYPE_TAR,
    MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD,
};
pub use digest::{Digest, HashingWriter};
pub use dockerignore::{IgnoreMatcher, parse_dockerignore};
pub use error::{Error, Result};
pub use spec::{LayerSpec, build_all};
pub use store::{BlobStore, BlobWriter, LayerInfo};
pub use writer::{LayerOptions, LayerWriter, archive_path, normalize_mode};
