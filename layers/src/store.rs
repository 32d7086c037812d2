//! The content-addressed blob store and the layer key cache.
//!
//! Layout under the root: `blobs/sha256/<hex>` (the blobs), `tmp/` (blobs being written, in one
//! locked directory per process, swept when their process is gone: see `scratch`; same file
//! system, so the final rename is atomic), `keys/<sha256 of key>.json` (key cache).

use std::collections::{BTreeMap, HashMap};
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
    /// Shared by every clone: keys known elsewhere, and the keys this process used.
    keys: Arc<KeyOverlay>,
}

/// Makes a blob that is not in the store local (e.g. downloads it from a remote cache);
/// `Err` says why it could not.
pub type BlobFetcher = Arc<dyn Fn(&LayerInfo) -> std::result::Result<(), String> + Send + Sync>;

/// The media type of a key's metadata blob (see [`BlobStore::record_key_with_meta`]).
pub const KEY_META_MEDIA_TYPE: &str = "application/vnd.cog-rs.key-meta.v1";

/// A blob by digest and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// What a key produced: its layer, and the metadata blob some builders keep beside it (the
/// dpkg database an apt layer leaves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    #[serde(flatten)]
    pub layer: LayerInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<BlobRef>,
}

/// Layers known by key outside the store (a registry-backed build cache), consulted after the
/// local key cache, and the journal of every key this process found or recorded (what a build
/// exports to such a cache). Keys are identified by [`key_id`]: nothing of the key's text
/// leaves the machine.
#[derive(Default)]
pub struct KeyOverlay {
    remote: Mutex<HashMap<String, KeyEntry>>,
    journal: Mutex<BTreeMap<String, KeyEntry>>,
    remote_hits: Mutex<BTreeMap<String, KeyEntry>>,
    fetcher: Mutex<Option<(BlobFetcher, bool)>>,
}

impl std::fmt::Debug for KeyOverlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOverlay").finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KeyOverlay {
    /// Adds remote entries (key id -> entry); their blobs need not be in the store.
    pub fn add_remote(&self, entries: impl IntoIterator<Item = (String, KeyEntry)>) {
        locked(&self.remote).extend(entries);
    }

    /// Drops a remote entry (one found untrustworthy).
    pub fn remove_remote(&self, id: &str) {
        locked(&self.remote).remove(id);
    }

    /// How many remote entries are known.
    pub fn remote_len(&self) -> usize {
        locked(&self.remote).len()
    }

    /// How remote blobs become local: metadata blobs are always fetched with `fetcher`; a
    /// remote hit's layer blob only when `fetch_layers` (a failed fetch is a miss). Otherwise
    /// the hit is returned as is and the layer stays remote (the caller mounts it when pushing).
    pub fn set_fetcher(&self, fetcher: Option<BlobFetcher>, fetch_layers: bool) {
        *locked(&self.fetcher) = fetcher.map(|f| (f, fetch_layers));
    }

    /// From now on, fetch remote layers when they are hit (if a fetcher is set).
    pub fn fetch_layers(&self) {
        if let Some((_, fetch_layers)) = locked(&self.fetcher).as_mut() {
            *fetch_layers = true;
        }
    }

    /// Every key found (locally or remotely) or recorded so far: key id -> entry.
    pub fn journal(&self) -> BTreeMap<String, KeyEntry> {
        locked(&self.journal).clone()
    }

    /// The keys that only the remote cache had: key id -> entry.
    pub fn remote_hits(&self) -> BTreeMap<String, KeyEntry> {
        locked(&self.remote_hits).clone()
    }

    fn note(&self, key: &str, entry: &KeyEntry) {
        locked(&self.journal).insert(key_id(key), entry.clone());
    }
}

/// The id under which a key is stored and shared: the hex sha256 of its text.
pub fn key_id(key: &str) -> String {
    Digest::of(key.as_bytes()).hex()
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    key: String,
    layer: LayerInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<BlobRef>,
}

/// The blobs a key record file's text names (its layer's, then its metadata's), if it parses.
pub(crate) fn key_record_blobs(text: &[u8]) -> Option<Vec<Digest>> {
    serde_json::from_slice::<KeyRecord>(text)
        .ok()
        .map(|record| {
            std::iter::once(record.layer.digest)
                .chain(record.meta.map(|m| m.digest))
                .collect()
        })
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
            keys: Arc::default(),
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

    /// Removes the blob `digest` (readers that have it open keep reading it); whether it was
    /// there. For blobs kept elsewhere, such as the layers of managed weights once pushed.
    pub fn remove(&self, digest: &Digest) -> Result<bool> {
        match std::fs::remove_file(self.blob_path(digest)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
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
        self.root.join("keys").join(format!("{}.json", key_id(key)))
    }

    /// Makes sure `layer`'s blob is in the store: a blob a remote build cache holds (a remote
    /// key hit left in the registry) is fetched with the overlay's fetcher. `Err` says why not.
    pub fn ensure_local(&self, layer: &LayerInfo) -> std::result::Result<(), String> {
        if self.has(&layer.digest) {
            return Ok(());
        }
        let fetcher = locked(&self.keys.fetcher).clone();
        match fetcher {
            Some((fetch, _)) => fetch(layer),
            None => Err(format!(
                "blob {} is not in the store at {}",
                layer.digest,
                self.root.display()
            )),
        }
    }

    /// The key overlay every clone of this store shares (remote cache entries, journal).
    pub fn key_overlay(&self) -> &KeyOverlay {
        &self.keys
    }

    /// The layer recorded for `key`: in the local key cache (if its blob is still in the
    /// store), else in the [`KeyOverlay`]'s remote entries (see [`KeyOverlay::set_fetcher`]).
    pub fn lookup_key(&self, key: &str) -> Option<LayerInfo> {
        self.lookup_entry(key).map(|(entry, _)| entry.layer)
    }

    /// [`Self::lookup_key`] with the metadata recorded by [`Self::record_key_with_meta`];
    /// a key recorded with metadata whose metadata is gone is a miss.
    pub fn lookup_key_with_meta(&self, key: &str) -> Option<(LayerInfo, Option<Vec<u8>>)> {
        let (entry, meta) = self.lookup_entry(key)?;
        Some((entry.layer, meta))
    }

    fn lookup_entry(&self, key: &str) -> Option<(KeyEntry, Option<Vec<u8>>)> {
        let found = self
            .lookup_local_key(key)
            .or_else(|| self.lookup_remote_key(key))?;
        let meta = match &found.meta {
            Some(meta) => Some(fs_err::read(self.blob_path(&meta.digest)).ok()?),
            None => None,
        };
        self.keys.note(key, &found);
        Some((found, meta))
    }

    fn lookup_remote_key(&self, key: &str) -> Option<KeyEntry> {
        let id = key_id(key);
        let entry = locked(&self.keys.remote).get(&id).cloned()?;
        let fetcher = locked(&self.keys.fetcher).clone();
        let layer = &entry.layer;
        let mut wanted = Vec::new();
        if let Some(meta) = entry.meta {
            wanted.push(LayerInfo {
                digest: meta.digest,
                size: meta.size,
                diff_id: meta.digest,
                media_type: KEY_META_MEDIA_TYPE.to_owned(),
            });
        }
        if fetcher.as_ref().is_some_and(|(_, layers)| *layers) {
            wanted.push(layer.clone());
        }
        for blob in wanted.iter().filter(|b| !self.has(&b.digest)) {
            let fetched = match &fetcher {
                Some((fetch, _)) => fetch(blob),
                None => Err("no way to fetch it".to_owned()),
            };
            if let Err(err) = fetched {
                tracing::warn!(
                    "remote cache: blob {}: {err}; building the layer",
                    blob.digest
                );
                return None;
            }
        }
        locked(&self.keys.remote_hits).insert(id, entry.clone());
        Some(entry)
    }

    fn lookup_local_key(&self, key: &str) -> Option<KeyEntry> {
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
            Ok(record)
                if record.key == key
                    && self.has(&record.layer.digest)
                    && record.meta.is_none_or(|m| self.has(&m.digest)) =>
            {
                Some(KeyEntry {
                    layer: record.layer,
                    meta: record.meta,
                })
            }
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
        self.keys.remove_remote(&key_id(key));
        match fs_err::remove_file(self.key_path(key)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(self.write_error(err)),
            _ => Ok(()),
        }
    }

    /// The value recorded for a local-only `alias` (e.g. a tree's metadata stamp, for the
    /// portable key computed from its contents), if any.
    pub fn lookup_alias(&self, alias: &str) -> Option<String> {
        fs_err::read_to_string(self.alias_path(alias)).ok()
    }

    /// Records `value` for `alias` (atomically); a failure only costs the next lookup.
    pub fn record_alias(&self, alias: &str, value: &str) {
        let path = self.alias_path(alias);
        let written = NamedTempFile::with_prefix_in("key-alias-", self.root.join("keys")).and_then(
            |mut temp| {
                temp.write_all(value.as_bytes())?;
                temp.persist(&path).map_err(|e| e.error)?;
                Ok(())
            },
        );
        if let Err(err) = written {
            tracing::debug!("key cache: cannot write {}: {err}", path.display());
        }
    }

    fn alias_path(&self, alias: &str) -> PathBuf {
        self.root
            .join("keys")
            .join(format!("alias-{}", key_id(alias)))
    }

    /// Records that `key` produced `layer` (atomically: temp file, then rename).
    pub fn record_key(&self, key: &str, layer: &LayerInfo) -> Result<()> {
        self.record_entry(key, layer, None)
    }

    /// [`Self::record_key`] with `meta` (stored as a blob) kept beside the layer: what a
    /// builder needs besides the layer to use it (an apt layer's dpkg database).
    pub fn record_key_with_meta(&self, key: &str, layer: &LayerInfo, meta: &[u8]) -> Result<()> {
        let (digest, size) = self.put_bytes(meta)?;
        self.record_entry(key, layer, Some(BlobRef { digest, size }))
    }

    fn record_entry(&self, key: &str, layer: &LayerInfo, meta: Option<BlobRef>) -> Result<()> {
        self.keys.note(
            key,
            &KeyEntry {
                layer: layer.clone(),
                meta,
            },
        );
        let keys_dir = self.root.join("keys");
        let record = KeyRecord {
            key: key.to_owned(),
            layer: layer.clone(),
            meta,
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
