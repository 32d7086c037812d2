//! The local content store of weight files: `<cache>/weights/files/sha256/<2 hex>/<hex>`, one
//! file per content digest (Cog's layout). `cog run` and `cog serve` hard-link from it. A file
//! is written to a temp file beside its place, hashed while written, checked against the digest
//! it must have and only then renamed into place: nothing unverified is ever stored.
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::WeightsError;

#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// The store under the cache root (`$COG_CACHE_DIR`, else `~/.cache/cog`).
    pub fn under(cache_root: &Path) -> Self {
        FileStore {
            root: cache_root.join("weights"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn files(&self) -> PathBuf {
        self.root.join("files").join("sha256")
    }

    /// Where the file with `digest` (`sha256:<hex>`, checked) is or would be.
    pub fn path(&self, digest: &str) -> Result<PathBuf, WeightsError> {
        let digest = super::lock::digest(digest).map_err(WeightsError::Digest)?;
        let hex = digest.hex();
        Ok(self.files().join(&hex[..2]).join(hex))
    }

    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// A writer for a file that must hash to `expected` (when known).
    pub fn writer(&self) -> Result<StoreWriter, WeightsError> {
        let dir = self.files();
        fs_err::create_dir_all(&dir)?;
        let file = tempfile::Builder::new().prefix(".put-").tempfile_in(&dir)?;
        Ok(StoreWriter {
            store: self.clone(),
            file: io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Stores what `reader` gives, which must hash to `expected` and be `size` bytes.
    pub fn put(
        &self,
        reader: &mut impl Read,
        expected: &str,
        size: u64,
    ) -> Result<PathBuf, WeightsError> {
        let mut writer = self.writer()?;
        io::copy(reader, &mut writer)?;
        writer.commit(Some((expected, size)))
    }
}

/// A file being written into the store: hashed as written; `commit` checks and renames it.
pub struct StoreWriter {
    store: FileStore,
    file: io::BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    written: u64,
}

impl Write for StoreWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl StoreWriter {
    /// The digest of what was written, the file renamed into its place: refused (and the temp
    /// file removed) when it is not `expected`.
    pub fn commit(self, expected: Option<(&str, u64)>) -> Result<PathBuf, WeightsError> {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if let Some((want, size)) = expected
            && (want != digest || size != self.written)
        {
            return Err(WeightsError::Mismatch {
                what: "file".to_string(),
                expected: format!("{want} ({size} bytes)"),
                actual: format!("{digest} ({} bytes)", self.written),
            });
        }
        let path = self.store.path(&digest)?;
        let file = self
            .file
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        if path.is_file() {
            return Ok(path);
        }
        fs_err::create_dir_all(path.parent().unwrap_or(&self.store.root))?;
        // Read-only: the same inode is hard-linked into containers.
        let mut perms = file.as_file().metadata()?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
        file.as_file().set_permissions(perms)?;
        file.persist(&path).map_err(|e| WeightsError::Io(e.error))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_content_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::under(dir.path());
        let good = format!("sha256:{}", hex::encode(Sha256::digest(b"hello")));
        let path = store.put(&mut &b"hello"[..], &good, 5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert!(store.has(&good));

        let lie = format!("sha256:{}", "0".repeat(64));
        let err = store.put(&mut &b"other"[..], &lie, 5).unwrap_err();
        assert!(matches!(err, WeightsError::Mismatch { .. }), "{err}");
        assert!(!store.has(&lie));
        // Nothing left behind but the one good file.
        let count = walkdir::WalkDir::new(store.root())
            .into_iter()
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count();
        assert_eq!(count, 1);
    }
}
