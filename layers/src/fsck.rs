//! `fsck` for the blob store: every blob's digest, every key record's blobs (its layer's and
//! its metadata's) present.

use std::io::Read;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::digest::Sha256;
use crate::store::BlobStore;

/// What [`BlobStore::verify`] found (and, when repairing, removed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Blobs whose content matches their name.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs whose content does not match their name, or that cannot be read.
    pub corrupt: Vec<PathBuf>,
    /// Files in `blobs/sha256/` that are not named by a digest.
    pub stray: Vec<PathBuf>,
    /// Key records that cannot be read, or whose layer's blob is missing or corrupt.
    pub bad_keys: Vec<PathBuf>,
}

impl Verified {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.stray.is_empty() && self.bad_keys.is_empty()
    }
}

enum Blob {
    Good(u64),
    Corrupt(PathBuf),
    Stray(PathBuf),
}

impl BlobStore {
    /// Hashes every blob and checks every key record; with `repair`, removes what is wrong, so
    /// the next build writes it again. Reading the store fails only if its directories do.
    pub fn verify(&self, repair: bool) -> crate::Result<Verified> {
        let blob_dir = self.root().join("blobs").join("sha256");
        let paths: Vec<PathBuf> = fs_err::read_dir(&blob_dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        let checked: Vec<Blob> = paths.into_par_iter().map(check_blob).collect();
        let mut found = Verified::default();
        for blob in checked {
            match blob {
                Blob::Good(size) => {
                    found.blobs += 1;
                    found.bytes += size;
                }
                Blob::Corrupt(path) => found.corrupt.push(path),
                Blob::Stray(path) => found.stray.push(path),
            }
        }
        let mut keys: Vec<PathBuf> = fs_err::read_dir(self.root().join("keys"))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        keys.sort();
        for key in keys {
            if key.extension().is_some_and(|e| e == "json")
                && !self.key_record_is_good(&key, &found)
            {
                found.bad_keys.push(key);
            }
        }
        found.corrupt.sort();
        found.stray.sort();
        if repair {
            for path in found
                .corrupt
                .iter()
                .chain(&found.stray)
                .chain(&found.bad_keys)
            {
                fs_err::remove_file(path)?;
            }
        }
        Ok(found)
    }

    fn key_record_is_good(&self, path: &std::path::Path, found: &Verified) -> bool {
        let Ok(text) = fs_err::read(path) else {
            return false;
        };
        let Some(blobs) = crate::store::key_record_blobs(&text) else {
            return false;
        };
        blobs.iter().all(|digest| {
            let blob = self.blob_path(digest);
            blob.is_file() && !found.corrupt.contains(&blob)
        })
    }
}

fn check_blob(path: PathBuf) -> Blob {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let valid_name = name.as_deref().is_some_and(|n| {
        n.len() == 64
            && n.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !valid_name || !path.is_file() {
        return Blob::Stray(path);
    }
    let hashed = (|| -> std::io::Result<(String, u64)> {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        Ok((hasher.finish().hex(), size))
    })();
    match hashed {
        Ok((hex, size)) if Some(hex.as_str()) == name.as_deref() => Blob::Good(size),
        _ => Blob::Corrupt(path),
    }
}

#[cfg(test)]
mod tests {
    use crate::{BlobStore, Digest, LayerInfo};

    #[test]
    fn finds_and_repairs_corrupt_blobs_strays_and_dangling_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (good, _) = store.put_bytes(b"good").unwrap();
        let (bad, _) = store.put_bytes(b"bad").unwrap();
        std::fs::write(store.blob_path(&bad), b"flipped").unwrap();
        std::fs::write(dir.path().join("blobs/sha256/junk"), b"x").unwrap();
        let layer = |digest| LayerInfo {
            digest,
            size: 4,
            diff_id: digest,
            media_type: "x".into(),
        };
        store.record_key("good", &layer(good)).unwrap();
        store.record_key("on-bad", &layer(bad)).unwrap();
        store
            .record_key("gone", &layer(Digest::of(b"gone")))
            .unwrap();
        // A record whose metadata blob (an apt layer's dpkg database) is gone is bad too.
        store
            .record_key_with_meta("meta-gone", &layer(good), b"status")
            .unwrap();
        std::fs::remove_file(store.blob_path(&Digest::of(b"status"))).unwrap();

        let found = store.verify(false).unwrap();
        assert_eq!((found.blobs, found.bytes), (1, 4));
        assert_eq!(found.corrupt, vec![store.blob_path(&bad)]);
        assert_eq!(found.stray.len(), 1);
        assert_eq!(found.bad_keys.len(), 3);
        assert!(!found.is_clean());
        assert!(store.blob_path(&bad).exists(), "looking changes nothing");

        store.verify(true).unwrap();
        let again = store.verify(false).unwrap();
        assert!(again.is_clean(), "{again:?}");
        assert_eq!(again.blobs, 1);
        assert!(store.lookup_key("good").is_some());
    }
}
