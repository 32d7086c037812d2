//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/…`): writing one from
//! the store, and reading one (`oci:DIR[:TAG]`) into the store.
use std::io;
use std::path::Path;

use layers::BlobStore;

use super::descriptor::{Descriptor, Platform};
use super::error::OciError;
use super::image::{ImageRef, SourceImage, reachable_blobs, resolve};
use super::manifest::{Index, canonical_json};
use super::media_types::{ANNOTATION_REF_NAME, OCI_LAYOUT_VERSION};

/// The `oci-layout` file's content.
pub(crate) fn oci_layout_json() -> Vec<u8> {
    format!(r#"{{"imageLayoutVersion":"{OCI_LAYOUT_VERSION}"}}"#).into_bytes()
}

/// Writes `image` and every blob it reaches as an OCI layout at `dir`, named `tag` in
/// `index.json`. A new layout is built in a temp dir beside `dir` and renamed into place; an
/// existing layout gets the blobs added and its `index.json` replaced atomically (other tags kept,
/// `tag` moved to this image).
pub fn write_layout(
    store: &BlobStore,
    image: &ImageRef,
    dir: &Path,
    tag: &str,
) -> Result<(), OciError> {
    let location = dir.display().to_string();
    let blobs = reachable_blobs(store, &image.descriptor(), &location)?;
    let mut entry = image.descriptor();
    entry
        .annotations
        .insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());

    if dir.exists() {
        if !dir.join("oci-layout").is_file() && fs_err::read_dir(dir)?.next().is_some() {
            return Err(OciError::Invalid {
                location,
                message: "exists and is neither empty nor an OCI layout; refusing to write into it"
                    .to_string(),
            });
        }
        let mut index = if dir.join("index.json").is_file() {
            read_index(dir)?
        } else {
            Index::oci(Vec::new())
        };
        index
            .manifests
            .retain(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) != Some(tag));
        index.manifests.push(entry);
        link_blobs(store, &blobs, dir)?;
        write_atomically(&dir.join("oci-layout"), &oci_layout_json())?;
        write_atomically(&dir.join("index.json"), &canonical_json(&index))?;
        return Ok(());
    }

    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    let name = dir
        .file_name()
        .map_or_else(|| "layout".into(), |n| n.to_string_lossy().into_owned());
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp"))
        .tempdir_in(parent)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a temp dir in {}: {e}", parent.display()),
            )
        })?;
    link_blobs(store, &blobs, temp.path())?;
    fs_err::write(temp.path().join("oci-layout"), oci_layout_json())?;
    fs_err::write(
        temp.path().join("index.json"),
        canonical_json(&Index::oci(vec![entry])),
    )?;
    let temp_path = temp.keep();
    fs_err::rename(&temp_path, dir).inspect_err(|_| {
        let _ = fs_err::remove_dir_all(&temp_path);
    })?;
    Ok(())
}

/// Hard-links each blob from the store (same file system), else copies it (`copy_file_range`,
/// a reflink where the file system supports it).
fn link_blobs(store: &BlobStore, blobs: &[Descriptor], dir: &Path) -> Result<(), OciError> {
    let blob_dir = dir.join("blobs").join("sha256");
    fs_err::create_dir_all(&blob_dir)?;
    for blob in blobs {
        let target = blob_dir.join(blob.digest.hex());
        if target.exists() {
            continue;
        }
        let source = store.blob_path(&blob.digest);
        if std::fs::hard_link(&source, &target).is_err() {
            let partial = blob_dir.join(format!(".{}.tmp", blob.digest.hex()));
            fs_err::copy(&source, &partial)?;
            fs_err::rename(&partial, &target)?;
        }
    }
    Ok(())
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let partial = path.with_extension("tmp");
    fs_err::write(&partial, bytes)?;
    fs_err::rename(&partial, path)?;
    Ok(())
}

fn read_index(dir: &Path) -> Result<Index, OciError> {
    let path = dir.join("index.json");
    let bytes = fs_err::read(&path)?;
    serde_json::from_slice(&bytes).map_err(|source| OciError::Json {
        what: "OCI layout index",
        path,
        source,
    })
}

/// Picks the entry of a layout's `index.json` named `tag`, or its only entry when no tag is given.
pub(crate) fn select_tag(
    index: &Index,
    tag: Option<&str>,
    location: &str,
) -> Result<Descriptor, OciError> {
    let tags = || {
        let names: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(ANNOTATION_REF_NAME))
            .map(String::as_str)
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    match tag {
        Some(tag) => index
            .manifests
            .iter()
            .find(|d| d.annotations.get(ANNOTATION_REF_NAME).map(String::as_str) == Some(tag))
            .cloned()
            .ok_or_else(|| OciError::TagNotFound {
                location: location.to_string(),
                tag: tag.to_string(),
                available: tags(),
            }),
        None => match index.manifests.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(OciError::Invalid {
                location: location.to_string(),
                message: "index.json lists no image".to_string(),
            }),
            _ => Err(OciError::Invalid {
                location: location.to_string(),
                message: format!(
                    "index.json lists several images: name one with :TAG (tags: {})",
                    tags()
                ),
            }),
        },
    }
}

/// Reads `oci:DIR[:TAG]` into the store (each blob verified against its digest and size).
pub fn read_layout(
    store: &BlobStore,
    dir: &Path,
    tag: Option<&str>,
    platform: &Platform,
) -> Result<SourceImage, OciError> {
    let location = match tag {
        Some(tag) => format!("oci:{}:{tag}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    if !dir.join("oci-layout").is_file() {
        return Err(OciError::Invalid {
            location,
            message: "not an OCI image layout (no oci-layout file)".to_string(),
        });
    }
    let index = read_index(dir)?;
    let root = select_tag(&index, tag, &location)?;
    let blob_dir = dir.join("blobs").join("sha256");
    resolve(store, &root, platform, &location, &mut |descriptor| {
        if store.has(&descriptor.digest) {
            return Ok(());
        }
        let path = blob_dir.join(descriptor.digest.hex());
        if !path.is_file() {
            return Err(OciError::MissingBlob {
                what: "blob",
                digest: descriptor.digest,
                location: location.clone(),
            });
        }
        let mut file = fs_err::File::open(&path)?;
        let mut writer = store.writer()?;
        io::copy(&mut file, &mut writer)?;
        writer.commit(Some((&descriptor.digest, descriptor.size)))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use layers::{Digest, LayerInfo};

    use super::*;
    use crate::oci::{ImageConfig, assemble, media_types};

    fn image(store: &BlobStore, content: &[u8]) -> crate::oci::BuiltImage {
        let (digest, size) = store.put_bytes(content).unwrap();
        let layer = LayerInfo {
            digest,
            size,
            diff_id: Digest::of(content),
            media_type: media_types::OCI_LAYER.into(),
        };
        assemble(
            store,
            &ImageConfig::new_linux_amd64(),
            &[layer],
            BTreeMap::new(),
        )
        .unwrap()
    }

    #[test]
    fn writes_a_layout_and_reads_it_back_into_another_store() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let built = image(&store, b"layer");
        let dir = tmp.path().join("out");
        write_layout(&store, &built.image_ref(), &dir, "v1").unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs_err::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"][ANNOTATION_REF_NAME],
            "v1"
        );
        assert_eq!(
            fs_err::read_to_string(dir.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert_eq!(
            fs_err::read_dir(dir.join("blobs/sha256")).unwrap().count(),
            3
        );

        // A second tag goes into the same layout; the first stays.
        let other = image(&store, b"other");
        write_layout(&store, &other.image_ref(), &dir, "v2").unwrap();

        let store2 = BlobStore::open(tmp.path().join("store2")).unwrap();
        let read = read_layout(&store2, &dir, Some("v1"), &Platform::linux_amd64()).unwrap();
        assert_eq!(read.manifest_digest, built.manifest_digest);
        assert!(store2.has(&read.layers[0].digest));
        let read = read_layout(&store2, &dir, Some("v2"), &Platform::linux_amd64()).unwrap();
        assert_eq!(read.manifest_digest, other.manifest_digest);
        let err = read_layout(&store2, &dir, Some("v3"), &Platform::linux_amd64())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "oci:{}:v3: no image tagged \"v3\"; available: v1, v2",
                dir.display()
            )
        );
        let err = read_layout(&store2, &dir, None, &Platform::linux_amd64())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("several images: name one with :TAG (tags: v1, v2)"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_blob_in_a_layout_is_refused_and_not_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let built = image(&store, b"layer");
        let dir = tmp.path().join("out");
        write_layout(&store, &built.image_ref(), &dir, "latest").unwrap();
        let layer = &built.manifest.layers[0].digest;
        let blob = dir.join("blobs/sha256").join(layer.hex());
        fs_err::remove_file(&blob).unwrap(); // a hard link: do not write through it into the store
        fs_err::write(&blob, b"LAYER").unwrap();
        let store2 = BlobStore::open(tmp.path().join("store2")).unwrap();
        let err = read_layout(&store2, &dir, None, &Platform::linux_amd64())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&layer.to_string()), "{err}");
        assert!(!store2.has(layer));
    }

    #[test]
    fn refuses_to_write_into_a_non_layout_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let built = image(&store, b"layer");
        fs_err::write(tmp.path().join("file"), b"x").unwrap();
        let err = write_layout(&store, &built.image_ref(), tmp.path(), "latest")
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither empty nor an OCI layout"), "{err}");
    }
}
