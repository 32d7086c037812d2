//! The content-addressed blob store and the layer key cache.
//!
//! Layout under the root: `blobs/sha256/<hex>` (the blobs), `tmp/` (blobs being written, in one
//! locked directory per process, swept when their process is gone: see `scratch`; same file
//! system, so the final rename is atomic), `keys/<sha256 of key>.json` (key cache).

use std::env;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::scratch::{self, ProcessDir, Swept};

/// What an OCI manifest (digest, size, media type) and image config (diff_id) need of a layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    pub media_type: String,
}

/// A content-addressed store of blobs, safe to share between threads and processes.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    fsync: bool,
    /// This process's temp directory, created on the first write, shared by the clones.
    scratch: Arc<Mutex<Option<Arc<ProcessDir>>>>,
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    key: String,
    layer: LayerInfo,
}

/// The layer of a key record file's text, if it parses.
pub(crate) fn key_record_layer(text: &[u8]) -> Option<LayerInfo> {
    serde_json::from_slice::<KeyRecord>(text)
        .ok()
        .map(|record| record.layer)
}

impl BlobStore {
    /// `$COG_CACHE_DIR`, else `$XDG_CACHE_HOME/cog`, else `$HOME/.cache/cog` (else `.cog-cache`).
    pub fn default_root() -> PathBuf {
        let non_empty = |name| env::var_os(name).filter(|value| !value.is_empty());
        if let Some(dir) = non_empty("COG_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = non_empty("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("cog");
        }
        match non_empty("HOME") {
            Some(home) => PathBuf::from(home).join(".cache").join("cog"),
            None => PathBuf::from(".cog-cache"),
        }
    }

    /// Opens (creating if needed) the store at `root`, removing what killed processes left in
    /// its temp space.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in [
            root.join("blobs").join("sha256"),
            root.join("tmp"),
            root.join("keys"),
        ] {
            fs_err::create_dir_all(&dir).map_err(|source| Error::Store {
                path: root.clone(),
                source,
            })?;
        }
        let store = BlobStore {
            root,
            fsync: true,
            scratch: Arc::default(),
        };
        store.sweep_temp();
        Ok(store)
    }

    /// Removes the temp files of processes that are gone (see `scratch`); never fails.
    pub fn sweep_temp(&self) -> Swept {
        let tmp = scratch::sweep(&self.root.join("tmp"));
        let keys = scratch::sweep_loose(&self.root.join("keys"), "key-");
        Swept {
            entries: tmp.entries + keys.entries,
            bytes: tmp.bytes + keys.bytes,
        }
    }

    /// The temp files under `tmp/` (blobs being written, or left by killed processes until the
    /// next sweep), without the per-process lock files.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(self.root.join("tmp"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file() && e.depth() > 0)
            .filter(|e| !(e.depth() == 2 && e.file_name() == "lock"))
            .map(walkdir::DirEntry::into_path)
            .collect()
    }

    /// This process's temp directory in the store.
    fn scratch_dir(&self) -> io::Result<Arc<ProcessDir>> {
        let mut slot = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(dir) = slot.as_ref() {
            return Ok(dir.clone());
        }
        let dir = Arc::new(ProcessDir::create(&self.root.join("tmp"))?);
        *slot = Some(dir.clone());
        Ok(dir)
    }

    /// Whether to fsync blobs before renaming them into place (default: yes). Turning it off
    /// trades crash safety for speed, e.g. in throwaway CI caches.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether blobs are fsynced before they are renamed into place (see [`Self::with_fsync`]).
    pub fn fsyncs(&self) -> bool {
        self.fsync
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<fs_err::File> {
        Ok(fs_err::File::open(self.blob_path(digest))?)
    }

    /// A writer for a new blob: hashed as written, into a temp file in the store.
    pub fn writer(&self) -> Result<BlobWriter> {
        let scratch = self
            .scratch_dir()
            .map_err(|source| self.write_error(source))?;
        let temp = NamedTempFile::with_prefix_in("blob-", scratch.path()).map_err(|source| {
            self.write_error(io::Error::new(
                source.kind(),
                format!(
                    "cannot create a temp file in {}: {source}",
                    scratch.path().display()
                ),
            ))
        })?;
        let file = BufWriter::with_capacity(256 * 1024, temp);
        Ok(BlobWriter {
            out: HashingWriter::new(file),
            store: self.clone(),
            _scratch: scratch,
        })
    }

    /// Stores `bytes` (a no-op when already there) and returns its digest and size.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        let size = bytes.len() as u64;
        if !self.has(&digest) {
            let mut writer = self.writer()?;
            writer
                .write_all(bytes)
                .map_err(|err| self.write_error(err))?;
            writer.commit(Some((&digest, size)))?;
        }
        Ok((digest, size))
    }

    fn key_path(&self, key: &str) -> PathBuf {
        self.root
            .join("keys")
            .join(format!("{}.json", Digest::of(key.as_bytes()).hex()))
    }

    /// The layer recorded for `key`, if any and if its blob is still in the store.
    pub fn lookup_key(&self, key: &str) -> Option<LayerInfo> {
        let path = self.key_path(key);
        let text = match fs_err::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => {
                tracing::warn!("layer cache: {}", crate::error::io_message(&err));
                return None;
            }
        };
        match serde_json::from_slice::<KeyRecord>(&text) {
            Ok(record) if record.key == key && self.has(&record.layer.digest) => Some(record.layer),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!("layer cache: ignoring corrupt {}: {err}", path.display());
                None
            }
        }
    }

    /// Drops what is recorded for `key`, so the next build of it writes the layer again
    /// (`cog build --no-cache`). Blobs are left in place: other keys may share them.
    pub fn forget_key(&self, key: &str) -> Result<()> {
        match fs_err::remove_file(self.key_path(key)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(self.write_error(err)),
            _ => Ok(()),
        }
    }

    /// Records that `key` produced `layer` (atomically: temp file, then rename).
    pub fn record_key(&self, key: &str, layer: &LayerInfo) -> Result<()> {
        let keys_dir = self.root.join("keys");
        let record = KeyRecord {
            key: key.to_owned(),
            layer: layer.clone(),
        };
        let json =
            serde_json::to_vec_pretty(&record).map_err(|err| Error::Io(io::Error::other(err)))?;
        let store_error = |source: io::Error| Error::Store {
            path: self.root.clone(),
            source,
        };
        let mut temp = NamedTempFile::with_prefix_in("key-", &keys_dir).map_err(|source| {
            store_error(io::Error::new(
                source.kind(),
                format!(
                    "cannot create a temp file in {}: {source}",
                    keys_dir.display()
                ),
            ))
        })?;
        temp.write_all(&json).map_err(store_error)?;
        let path = self.key_path(key);
        temp.persist(&path).map_err(|err| {
            store_error(io::Error::new(
                err.error.kind(),
                format!("cannot write {}: {}", path.display(), err.error),
            ))
        })?;
        Ok(())
    }

    fn write_error(&self, source: io::Error) -> Error {
        Error::Store {
            path: self.root.clone(),
            source,
        }
    }
}

/// A blob being written. Dropping it without `commit` discards it.
pub struct BlobWriter {
    out: HashingWriter<BufWriter<NamedTempFile>>,
    store: BlobStore,
    // Keeps the directory of the temp file alive until the blob is committed or dropped.
    _scratch: Arc<ProcessDir>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.count()
    }

    /// Verifies the digest and size (when `expected` is given), syncs and moves the blob into
    /// place. On a mismatch the temp file is deleted and nothing is stored.
    pub fn commit(self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let store = self.store;
        let (digest, size, buffered) = self.out.finish();
        let temp = buffered
            .into_inner()
            .map_err(|err| store.write_error(err.into_error()))?;
        if let Some((expected_digest, expected_size)) = expected {
            if *expected_digest != digest {
                return Err(Error::DigestMismatch {
                    expected: *expected_digest,
                    actual: digest,
                });
            }
            if expected_size != size {
                return Err(Error::SizeMismatch {
                    digest,
                    expected: expected_size,
                    actual: size,
                });
            }
        }
        if store.fsync {
            temp.as_file()
                .sync_data()
                .map_err(|err| store.write_error(err))?;
        }
        let path = store.blob_path(&digest);
        temp.persist(&path).map_err(|err| {
            store.write_error(io::Error::new(
                err.error.kind(),
                format!("cannot move blob into {}: {}", path.display(), err.error),
            ))
        })?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf).map_err(|err| self.named(&err))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf).map_err(|err| self.named(&err))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|err| self.named(&err))
    }
}

impl BlobWriter {
    /// Tempfile's errors carry no path: name the store so that "disk full" says where.
    fn named(&self, err: &io::Error) -> io::Error {
        io::Error::new(
            err.kind(),
            format!(
                "cannot write a blob in {}: {err}",
                self.store.root.join("tmp").display()
            ),
        )
    }
}
