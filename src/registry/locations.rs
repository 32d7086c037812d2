//! Where blobs are known to be: every repository this store pushed a blob to (or mounted it
//! into), so that a later push to another repository of the same registry mounts it instead of
//! uploading it again. One small file per blob under `<store>/locations/<hex>`, a repository
//! (`registry/name`) per line; appends are atomic for lines this short.
use std::collections::BTreeSet;
use std::io::Write;

use layers::{BlobStore, Digest};

use crate::oci::reference::Reference;

fn path(store: &BlobStore, digest: &Digest) -> std::path::PathBuf {
    store.root().join("locations").join(digest.hex())
}

/// The repositories `digest` was pushed to from this store, newest last.
pub fn known(store: &BlobStore, digest: &Digest) -> Vec<Reference> {
    let Ok(text) = fs_err::read_to_string(path(store, digest)) else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    text.lines()
        .filter(|line| seen.insert(*line))
        .filter_map(|line| Reference::parse(line).ok())
        .collect()
}

/// Notes that `repository`'s registry now has `digest` there. Best effort: a failure only
/// costs a later mount.
pub fn remember(store: &BlobStore, digest: &Digest, repository: &Reference) {
    let line = format!("{}/{}", repository.registry(), repository.repository());
    if known(store, digest)
        .iter()
        .any(|r| format!("{}/{}", r.registry(), r.repository()) == line)
    {
        return;
    }
    let file = path(store, digest);
    let written = file
        .parent()
        .map_or(Ok(()), fs_err::create_dir_all)
        .and_then(|()| {
            fs_err::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
        })
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(err) = written {
        tracing::debug!("cannot note where {digest} is: {err}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn locations_are_remembered_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"x");
        assert!(known(&store, &digest).is_empty());
        let a = Reference::parse("127.0.0.1:5000/a:latest").unwrap();
        let b = Reference::parse("ghcr.io/me/b").unwrap();
        remember(&store, &digest, &a);
        remember(&store, &digest, &b);
        remember(&store, &digest, &a);
        let found: Vec<String> = known(&store, &digest)
            .iter()
            .map(|r| format!("{}/{}", r.registry(), r.repository()))
            .collect();
        assert_eq!(found, ["127.0.0.1:5000/a", "ghcr.io/me/b"]);
    }
}
