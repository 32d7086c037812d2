//! Reproducible, content-addressed OCI tar layers: entries, gzip/zstd, digests, blob store.
//!
//! Every image-producing part of cog-rs (builder, wheels, debian) makes its layers here.
//!
//! - [`Digest`]: `sha256:<hex>` (Display/FromStr/serde as that string), [`Digest::of`].
//! - [`BlobStore`]: blobs at `<root>/blobs/sha256/<hex>`; [`BlobStore::default_root`] is
//!   `$COG_CACHE_DIR`, else `$XDG_CACHE_HOME/cog`, else `$HOME/.cache/cog`.
//!   [`BlobStore::writer`] gives a [`BlobWriter`] (`io::Write`, hashed while written into
//!   `<root>/tmp/`); [`BlobWriter::commit`] verifies the expected digest and size, fsyncs and
//!   renames into place (a mismatch deletes the temp file). Also [`BlobStore::put_bytes`],
//!   [`BlobStore::has`], [`BlobStore::blob_path`], [`BlobStore::open_blob`], and the key cache
//!   [`BlobStore::lookup_key`] / [`BlobStore::record_key`] (`<root>/keys/<sha256(key)>.json`;
//!   a key whose blob is gone is a miss).
//! - [`LayerInfo`] `{ digest, size, diff_id, media_type }`: what a manifest and config need.
//! - [`Compression`]: `Gzip { level }` (block-parallel, one gzip member, see [`pgzip`]),
//!   `Zstd { level }` (multithreaded) or `None`, each with its OCI media type. The compressed
//!   bytes never depend on the number of threads ([`LayerOptions::threads`], default one per
//!   core), the timing of the workers or the sizes of the writes (`tests/stability.rs`).
//! - [`LayerWriter`]: `new(&store, &LayerOptions)`, then `append_dir`, `append_file` (from a
//!   reader, exact size), `append_symlink`, `append_hardlink`, in the order given; `finish()`
//!   returns the [`LayerInfo`] computed in one streaming pass, pipelined: the caller's thread
//!   reads and hashes the tar (diff_id), a sink thread feeds the compressor's workers and
//!   hashes and writes the blob. [`LayerWriter::append_entry`] writes an [`Entry`] with its
//!   metadata as given instead (owner, exact mode, mtime, devices, `SCHILY.xattr.*` PAX
//!   records): the sandbox's captured changes. Otherwise headers are normalized: ustar
//!   with PAX records for long or non-ASCII names and large numbers, relative paths (dirs end
//!   with `/`), mtime from [`LayerOptions::mtime`], else `SOURCE_DATE_EPOCH`, else 0, uid/gid 0,
//!   empty user/group names, modes by [`normalize_mode`]. `..` components, relative symlinks
//!   climbing above the root and hard links to files not yet written are rejected, naming the
//!   entry.
//! - [`LayerSpec`]: a declarative layer: `tree(src, dest, dockerignore rules)`,
//!   `file_from_path`, `file` (in memory), `dir`, `symlink`; entries sorted by path, parents
//!   implied (0755), the last entry for a path wins; a tree's files are read ahead
//!   (`posix_fadvise(WILLNEED)` from a helper thread) so a cold page cache is read in parallel. [`LayerSpec::cache_key`] hashes metadata
//!   (never tree contents) and the options; [`LayerSpec::build`] consults and fills the key
//!   cache; [`build_all`] builds independent layers in parallel (rayon).
//! - [`IgnoreMatcher`]: `.dockerignore` rules with moby's semantics.
//!
//! ```no_run
//! use layers::{BlobStore, Compression, LayerOptions, LayerSpec};
//! # fn main() -> layers::Result<()> {
//! let store = BlobStore::open(BlobStore::default_root())?;
//! let layer = LayerSpec::new()
//!     .tree("/path/to/project", "/src", &[".git", "**/__pycache__"])?
//!     .file("/etc/cog/version", 0o644, b"0.1.0".to_vec())?
//!     .build(&store, &LayerOptions::new(Compression::gzip()))?;
//! println!("{} {} {}", layer.digest, layer.size, layer.diff_id);
//! # Ok(())
//! # }
//! ```

mod compress;
mod digest;
mod dockerignore;
mod error;
mod fsck;
mod header;
pub mod pgzip;
mod pipeline;
mod scratch;
mod spec;
mod store;
mod writer;

/// An OCI whiteout's file-name prefix: `.wh.NAME` in a layer says NAME below is gone.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// An OCI opaque whiteout: in a layer's directory, it says the directory's contents below are
/// gone.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

pub use compress::{
    Compression, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, Encoder, MEDIA_TYPE_TAR,
    MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD,
};
pub use digest::{Digest, HashingWriter, Sha256};
pub use dockerignore::{IgnoreMatcher, parse_dockerignore};
pub use error::{Error, Result};
pub use fsck::Verified;
pub use scratch::{
    ProcessDir, Swept, bytes_under, shared as process_temp_dir, sweep as sweep_temp_dir,
};
pub use spec::{LayerSpec, build_all};
pub use store::{
    BlobFetcher, BlobRef, BlobStore, BlobWriter, KEY_META_MEDIA_TYPE, KeyEntry, KeyOverlay,
    LayerInfo, key_id,
};
pub use writer::{
    Entry, EntryKind, LayerOptions, LayerWriter, archive_path, encode_header, normalize_mode,
    tar_padding,
};
