//! Image tarballs: export as ONE tar that is at once an OCI archive (`oci-layout`, `index.json`,
//! `blobs/sha256/*`) and a docker-archive (`manifest.json` pointing at the same blobs), and
//! import of `oci-archive:FILE[:TAG]` and `docker-archive:FILE` bases into the store.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use layers::{BlobStore, Digest};
use serde::{Deserialize, Serialize};

use super::config::ImageConfig;
use super::descriptor::{Descriptor, Platform};
use super::error::OciError;
use super::image::{ImageRef, SourceImage, reachable_blobs, read_blob, resolve};
use super::layout::{oci_layout_json, select_tag};
use super::manifest::{Index, Manifest, canonical_json};
use super::media_types::{self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};

/// One image in a docker-archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Writes `image` (a single-platform manifest) to `path` as a tar that `docker load`,
/// `podman load`, and skopeo's `oci-archive:` and `docker-archive:` transports all accept.
/// `repo_tags` are the names it loads as (`my-model:latest`). Written to `path.tmp`, then renamed.
pub fn export_tarball(
    store: &BlobStore,
    image: &ImageRef,
    path: &Path,
    repo_tags: &[String],
) -> Result<(), OciError> {
    let partial = PathBuf::from(format!("{}.tmp", path.display()));
    let written = (|| -> Result<(), OciError> {
        let file = fs_err::File::create(&partial)?;
        let out = write_tarball(
            store,
            image,
            BufWriter::with_capacity(1 << 20, file),
            repo_tags,
        )
        .map_err(|e| match e {
            OciError::Io(e) => OciError::Io(io::Error::new(
                e.kind(),
                format!("cannot write {}: {e}", partial.display()),
            )),
            other => other,
        })?;
        let file = out.into_inner().map_err(|e| {
            io::Error::new(
                e.error().kind(),
                format!("cannot write {}: {}", partial.display(), e.error()),
            )
        })?;
        file.sync_all()?;
        Ok(())
    })();
    if let Err(err) = written {
        let _ = fs_err::remove_file(&partial);
        return Err(err);
    }
    fs_err::rename(&partial, path)?;
    Ok(())
}

/// Streams `image` as the tarball [`export_tarball`] writes into `out` (a pipe, a socket: it
/// is written front to back, never sought), and hands `out` back, flushed.
pub fn write_tarball<W: Write>(
    store: &BlobStore,
    image: &ImageRef,
    out: W,
    repo_tags: &[String],
) -> Result<W, OciError> {
    write_tarball_omitting(store, image, out, repo_tags, &HashSet::<Digest>::new())
}

/// [`write_tarball`] without the blobs in `omit`: for an engine that already holds those
/// layers (Docker's loader reads a layer file only when it lacks that layer's chain), so a
/// code-only rebuild sends only what changed. The result is not a complete archive: never
/// write it to a file.
pub fn write_tarball_omitting<W: Write, S: std::hash::BuildHasher>(
    store: &BlobStore,
    image: &ImageRef,
    out: W,
    repo_tags: &[String],
    omit: &HashSet<Digest, S>,
) -> Result<W, OciError> {
    let location = format!("image {}", image.digest);
    if !media_types::is_manifest(&image.media_type) {
        return Err(OciError::UnsupportedMediaType {
            location,
            what: "a tarball (a docker-archive holds single-platform images; pick a platform first)",
            media_type: image.media_type.clone(),
        });
    }
    let manifest_bytes = read_blob(store, &image.digest, "manifest", &location)?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|source| OciError::BlobJson {
            what: "manifest",
            digest: image.digest,
            source,
        })?;
    let blobs = reachable_blobs(store, &image.descriptor(), &location)?;

    let mut entry = image.descriptor();
    if let Some(first) = repo_tags.first() {
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.to_string(), tag_of(first).to_string());
        let full = super::Reference::parse(first).map_or_else(|_| first.clone(), |r| r.to_string());
        entry
            .annotations
            .insert(ANNOTATION_CONTAINERD_NAME.to_string(), full);
    }
    let index = Index::oci(vec![entry]);
    let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let docker_manifest = vec![DockerArchiveEntry {
        config: blob_path(&manifest.config.digest),
        repo_tags: Some(repo_tags.to_vec()),
        layers: manifest
            .layers
            .iter()
            .map(|l| blob_path(&l.digest))
            .collect(),
    }];

    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    append_bytes(&mut tar, "oci-layout", &oci_layout_json())?;
    append_bytes(&mut tar, "index.json", &canonical_json(&index))?;
    append_bytes(&mut tar, "manifest.json", &canonical_json(&docker_manifest))?;
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    for blob in blobs.iter().filter(|b| !omit.contains(&b.digest)) {
        let source = store.blob_path(&blob.digest);
        let file = fs_err::File::open(&source)?;
        let size = file.metadata()?.len();
        let mut header = file_header(size);
        tar.append_data(
            &mut header,
            blob_path(&blob.digest),
            BufReader::with_capacity(1 << 20, file),
        )?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(out)
}

/// `name:tag` -> `tag`; a name without a tag is `latest`.
fn tag_of(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag,
        _ => "latest",
    }
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut header = file_header(bytes.len() as u64);
    tar.append_data(&mut header, name, bytes)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut header = file_header(0);
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    tar.append_data(&mut header, name, io::empty())
}

/// `./a/b` and `a//b` -> `a/b`; `..` resolved within the archive.
fn clean(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

fn open_archive(file: &Path) -> Result<tar::Archive<BufReader<fs_err::File>>, OciError> {
    Ok(tar::Archive::new(BufReader::with_capacity(
        1 << 20,
        fs_err::File::open(file)?,
    )))
}

fn tar_error(file: &Path, err: &io::Error) -> OciError {
    OciError::Io(io::Error::new(
        err.kind(),
        format!("cannot read tar archive {}: {err}", file.display()),
    ))
}

/// Reads `oci-archive:FILE[:TAG]` into the store: every blob verified against its name.
pub fn read_oci_archive(
    store: &BlobStore,
    file: &Path,
    tag: Option<&str>,
    platform: &Platform,
) -> Result<SourceImage, OciError> {
    let location = match tag {
        Some(tag) => format!("oci-archive:{}:{tag}", file.display()),
        None => format!("oci-archive:{}", file.display()),
    };
    let mut index_bytes = None;
    let mut archive = open_archive(file)?;
    for entry in archive.entries().map_err(|e| tar_error(file, &e))? {
        let mut entry = entry.map_err(|e| tar_error(file, &e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = clean(&entry.path().map_err(|e| tar_error(file, &e))?);
        if name == "index.json" {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| tar_error(file, &e))?;
            index_bytes = Some(bytes);
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let digest: Digest = format!("sha256:{hex}").parse()?;
            if !store.has(&digest) {
                let size = entry.header().size().map_err(|e| tar_error(file, &e))?;
                let mut writer = store.writer()?;
                io::copy(&mut entry, &mut writer).map_err(|e| tar_error(file, &e))?;
                writer.commit(Some((&digest, size)))?;
            }
        }
    }
    let index_bytes = index_bytes.ok_or_else(|| OciError::Invalid {
        location: location.clone(),
        message: "not an OCI archive (no index.json)".to_string(),
    })?;
    let index: Index = serde_json::from_slice(&index_bytes).map_err(|source| OciError::Json {
        what: "OCI archive index.json in",
        path: file.to_path_buf(),
        source,
    })?;
    let root = select_tag(&index, tag, &location)?;
    resolve(store, &root, platform, &location, &mut |d| {
        if store.has(&d.digest) {
            Ok(())
        } else {
            Err(OciError::MissingBlob {
                what: "blob",
                digest: d.digest,
                location: location.clone(),
            })
        }
    })
}

/// Reads `docker-archive:FILE` (what `docker save` writes) into the store. Layers are imported as
/// they are (compressed or not) and their digests computed; the OCI manifest is made from
/// `manifest.json`.
pub fn read_docker_archive(store: &BlobStore, file: &Path) -> Result<SourceImage, OciError> {
    let location = format!("docker-archive:{}", file.display());
    let invalid = |message: String| OciError::Invalid {
        location: location.clone(),
        message,
    };

    // Pass 1: manifest.json and links (`docker save` links duplicate layers).
    let mut manifest_json = None;
    let mut links: HashMap<String, String> = HashMap::new();
    let mut archive = open_archive(file)?;
    for entry in archive.entries().map_err(|e| tar_error(file, &e))? {
        let mut entry = entry.map_err(|e| tar_error(file, &e))?;
        let path = entry.path().map_err(|e| tar_error(file, &e))?.into_owned();
        let name = clean(&path);
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name().map_err(|e| tar_error(file, &e))? {
                let target = if kind.is_symlink() {
                    path.parent().unwrap_or(Path::new("")).join(target)
                } else {
                    target.into_owned()
                };
                links.insert(name, clean(&target));
            }
        } else if name == "manifest.json" {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| tar_error(file, &e))?;
            manifest_json = Some(bytes);
        }
    }
    let bytes = manifest_json
        .ok_or_else(|| invalid("not a docker-archive (no manifest.json)".to_string()))?;
    let entries: Vec<DockerArchiveEntry> =
        serde_json::from_slice(&bytes).map_err(|source| OciError::Json {
            what: "docker-archive manifest.json in",
            path: file.to_path_buf(),
            source,
        })?;
    let image = match entries.as_slice() {
        [only] => only,
        [] => return Err(invalid("manifest.json lists no image".to_string())),
        _ => {
            return Err(invalid(format!(
                "manifest.json lists {} images; only single-image archives are supported",
                entries.len()
            )));
        }
    };
    let resolve_link = |name: &str| {
        let mut name = clean(Path::new(name));
        for _ in 0..16 {
            match links.get(&name) {
                Some(target) => name.clone_from(target),
                None => break,
            }
        }
        name
    };
    let config_path = resolve_link(&image.config);
    let layer_paths: Vec<String> = image.layers.iter().map(|l| resolve_link(l)).collect();

    // Pass 2: import the config and layers, hashing as they stream.
    let mut imported: BTreeMap<String, (Digest, u64, &'static str)> = BTreeMap::new();
    let mut archive = open_archive(file)?;
    for entry in archive.entries().map_err(|e| tar_error(file, &e))? {
        let mut entry = entry.map_err(|e| tar_error(file, &e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = clean(&entry.path().map_err(|e| tar_error(file, &e))?);
        let is_config = name == config_path;
        if !is_config && !layer_paths.contains(&name) || imported.contains_key(&name) {
            continue;
        }
        let mut head = [0u8; 4];
        let head_len = read_head(&mut entry, &mut head).map_err(|e| tar_error(file, &e))?;
        let mut writer = store.writer()?;
        writer.write_all(&head[..head_len])?;
        io::copy(&mut entry, &mut writer).map_err(|e| tar_error(file, &e))?;
        let (digest, size) = writer.commit(None)?;
        let media_type = if is_config {
            media_types::OCI_CONFIG
        } else {
            layer_media_type(&head[..head_len])
        };
        imported.insert(name, (digest, size, media_type));
    }

    let found = |path: &String| {
        imported.get(path).copied().ok_or_else(|| {
            invalid(format!(
                "manifest.json names {path}, which the archive does not contain"
            ))
        })
    };
    let (config_digest, config_size, _) = found(&config_path)?;
    let config_bytes = read_blob(store, &config_digest, "image config", &location)?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| OciError::BlobJson {
            what: "image config",
            digest: config_digest,
            source,
        })?;
    let mut layers = Vec::new();
    for (i, path) in layer_paths.iter().enumerate() {
        let (digest, size, media_type) = found(path)?;
        // An uncompressed layer's digest is its diff_id: check what we can check cheaply.
        if media_type == media_types::OCI_LAYER
            && config.rootfs.diff_ids.get(i).is_some_and(|d| *d != digest)
        {
            return Err(invalid(format!(
                "layer {path} has digest {digest} but the image config says its diff_id is {}",
                config.rootfs.diff_ids[i]
            )));
        }
        layers.push(Descriptor::new(media_type, digest, size));
    }
    let manifest = Manifest::oci(
        Descriptor::new(media_types::OCI_CONFIG, config_digest, config_size),
        layers,
    );
    let (manifest_digest, _) = store.put_bytes(&canonical_json(&manifest))?;
    SourceImage::from_store(store, &manifest_digest, &location)
}

fn read_head(reader: &mut impl Read, head: &mut [u8; 4]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// By magic number: gzip, zstd, else a plain tar.
fn layer_media_type(head: &[u8]) -> &'static str {
    match head {
        [0x1f, 0x8b, ..] => media_types::OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => media_types::OCI_LAYER_ZSTD,
        _ => media_types::OCI_LAYER,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use layers::LayerInfo;

    use super::*;
    use crate::oci::assemble;

    #[test]
    fn tags_of_names() {
        assert_eq!(tag_of("model:v1"), "v1");
        assert_eq!(tag_of("localhost:5000/model"), "latest");
        assert_eq!(tag_of("localhost:5000/model:x"), "x");
        assert_eq!(tag_of("model"), "latest");
    }

    #[test]
    fn exported_tarball_reads_back_both_ways() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let content = b"not really a tar, but a blob all the same";
        let (digest, size) = store.put_bytes(content).unwrap();
        let layer = LayerInfo {
            digest,
            size,
            diff_id: digest,
            media_type: media_types::OCI_LAYER.into(),
        };
        let built = assemble(
            &store,
            &ImageConfig::new_linux_amd64(),
            &[layer],
            BTreeMap::new(),
        )
        .unwrap();
        let path = tmp.path().join("image.tar");
        export_tarball(&store, &built.image_ref(), &path, &["model:v1".to_string()]).unwrap();
        assert!(!tmp.path().join("image.tar.tmp").exists());

        let store2 = BlobStore::open(tmp.path().join("store2")).unwrap();
        let oci = read_oci_archive(&store2, &path, Some("v1"), &Platform::linux_amd64()).unwrap();
        assert_eq!(oci.manifest_digest, built.manifest_digest);
        let store3 = BlobStore::open(tmp.path().join("store3")).unwrap();
        let docker = read_docker_archive(&store3, &path).unwrap();
        assert_eq!(
            docker.manifest_digest, built.manifest_digest,
            "the same manifest rebuilt from manifest.json"
        );
        assert_eq!(docker.layers, oci.layers);

        // Same image, same bytes.
        let again = tmp.path().join("again.tar");
        export_tarball(
            &store,
            &built.image_ref(),
            &again,
            &["model:v1".to_string()],
        )
        .unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), fs_err::read(&again).unwrap());
    }
}
