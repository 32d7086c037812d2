//! Packing a weight's files into layers (spec 1.2-1.5): files of 64 MiB or more each get a
//! layer of their own, a plain tar (weights are high-entropy: compressing them spends CPU for
//! nothing); smaller files (configs, tokenizers) are bundled, sorted by path, into gzip layers
//! of at most 256 MiB. Every file is in exactly one layer, with its parent directories; headers
//! are normalized (PAX, mtime 0, uid/gid 0, 0644/0755). One read of each source file feeds
//! three consumers at once: the layer (tar, hashed and written by the layer pipeline's threads),
//! the file's own sha256, and the local file store.
use std::collections::BTreeSet;
use std::io::{self, Read};

use layers::{BlobStore, Compression, LayerOptions, LayerWriter};

use super::WeightsError;
use super::lock::{LockFile, LockLayer};
use super::store::{FileStore, StoreWriter};

/// Files from this size on get a layer of their own.
pub const BUNDLE_FILE_MAX: u64 = 64 << 20;
/// A bundle layer holds at most this many bytes of files.
pub const BUNDLE_SIZE_MAX: u64 = 256 << 20;
const BUNDLE_GZIP_LEVEL: u32 = 6;

/// The packer's parameters, as `weights.lock`'s `envelopeFormat` records them.
pub fn envelope_format() -> String {
    use sha2::Digest as _;
    let text = format!(
        "cog-rs weights packer 1: standalone>={BUNDLE_FILE_MAX} tar; bundles<={BUNDLE_SIZE_MAX} tar+gzip level {BUNDLE_GZIP_LEVEL}; pax, mtime 0, uid/gid 0, 0644/0755, parent dirs"
    );
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(text)))
}

/// One file to pack.
pub struct Input {
    /// Path inside the weight (checked, relative).
    pub path: String,
    pub size: u64,
    /// Opens the file's content.
    pub open: Box<dyn Fn() -> io::Result<Box<dyn Read>> + Send + Sync>,
    /// Its digest when it is already in the file store (then it is not stored again).
    pub stored: Option<String>,
}

/// Groups of inputs (indexes), one per layer, in path order.
pub fn plan(inputs: &[Input]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by(|&a, &b| inputs[a].path.cmp(&inputs[b].path));
    let mut groups = Vec::new();
    let mut bundle: Vec<usize> = Vec::new();
    let mut bundled = 0;
    for i in order {
        let size = inputs[i].size;
        if size >= BUNDLE_FILE_MAX {
            groups.push(vec![i]);
            continue;
        }
        if !bundle.is_empty() && bundled + size > BUNDLE_SIZE_MAX {
            groups.push(std::mem::take(&mut bundle));
            bundled = 0;
        }
        bundled += size;
        bundle.push(i);
    }
    if !bundle.is_empty() {
        groups.push(bundle);
    }
    groups
}

/// The layers and the file index of a packed weight.
pub struct Packed {
    pub files: Vec<LockFile>,
    pub layers: Vec<LockLayer>,
}

/// Packs `inputs` into layers in `blobs`, storing each file in `files` on the way.
pub fn pack(
    inputs: &[Input],
    blobs: &BlobStore,
    files: &FileStore,
    progress: &mut dyn FnMut(u64),
) -> Result<Packed, WeightsError> {
    let mut packed = Packed {
        files: Vec::new(),
        layers: Vec::new(),
    };
    for group in plan(inputs) {
        let standalone = group.len() == 1 && inputs[group[0]].size >= BUNDLE_FILE_MAX;
        let compression = if standalone {
            Compression::None
        } else {
            Compression::Gzip {
                level: BUNDLE_GZIP_LEVEL,
            }
        };
        let options = LayerOptions {
            compression,
            mtime: Some(0),
            threads: None,
        };
        let mut writer = LayerWriter::new(blobs, &options)?;
        let mut dirs = BTreeSet::new();
        for &i in &group {
            let path = &inputs[i].path;
            for (at, _) in path.match_indices('/') {
                dirs.insert(&path[..at]);
            }
        }
        for dir in &dirs {
            writer.append_dir(dir, 0o755)?;
        }
        let mut entries = Vec::new();
        let mut uncompressed = 0;
        for &i in &group {
            let input = &inputs[i];
            let reader = (input.open)().map_err(|source| WeightsError::Read {
                path: input.path.clone(),
                source,
            })?;
            let digest = if let Some(digest) = &input.stored {
                let mut counted = Counting {
                    inner: reader,
                    progress: &mut *progress,
                };
                writer.append_file(&input.path, 0o644, input.size, &mut counted)?;
                digest.clone()
            } else {
                let mut tee = Tee {
                    inner: reader,
                    copy: files.writer()?,
                    progress: &mut *progress,
                };
                writer.append_file(&input.path, 0o644, input.size, &mut tee)?;
                let path = tee.copy.commit(None)?;
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                format!("sha256:{name}")
            };
            uncompressed += input.size;
            entries.push(LockFile {
                path: input.path.clone(),
                size: input.size,
                digest,
                layer: String::new(),
            });
        }
        let info = writer.finish()?;
        let layer = info.digest.to_string();
        for mut entry in entries {
            entry.layer.clone_from(&layer);
            packed.files.push(entry);
        }
        packed.layers.push(LockLayer {
            digest: layer,
            media_type: info.media_type,
            size: info.size,
            size_uncompressed: uncompressed,
        });
    }
    packed.files.sort_by(|a, b| a.path.cmp(&b.path));
    packed.layers.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(packed)
}

/// A reader that copies what it reads into the file store as it goes.
struct Tee<'a> {
    inner: Box<dyn Read>,
    copy: StoreWriter,
    progress: &'a mut dyn FnMut(u64),
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.copy, &buf[..n])?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

struct Counting<'a> {
    inner: Box<dyn Read>,
    progress: &'a mut dyn FnMut(u64),
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str, content: &'static [u8]) -> Input {
        Input {
            path: path.into(),
            size: content.len() as u64,
            open: Box::new(move || Ok(Box::new(content) as Box<dyn Read>)),
            stored: None,
        }
    }

    #[test]
    fn big_files_stand_alone_and_small_ones_are_bundled() {
        let sized = |path: &str, size: u64| Input {
            path: path.into(),
            size,
            open: Box::new(|| Ok(Box::new(io::empty()) as Box<dyn Read>)),
            stored: None,
        };
        let inputs = vec![
            sized("z.json", 10),
            sized("big.safetensors", BUNDLE_FILE_MAX),
            sized("a.json", 20),
            sized("m1", 63 << 20),
            sized("m2", 63 << 20),
            sized("m3", 63 << 20),
            sized("m4", 63 << 20),
            sized("m5", 63 << 20),
        ];
        let groups = plan(&inputs);
        let names: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|&i| inputs[i].path.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["big.safetensors"],
                vec!["a.json", "m1", "m2", "m3", "m4"],
                vec!["m5", "z.json"]
            ]
        );
    }

    #[test]
    fn packing_is_deterministic_and_stores_each_file() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path().join("c")).unwrap();
        let files = FileStore::under(dir.path());
        let inputs = vec![input("sub/b.json", b"bbb"), input("a.json", b"a")];
        let one = pack(&inputs, &blobs, &files, &mut |_| {}).unwrap();
        let two = pack(&inputs, &blobs, &files, &mut |_| {}).unwrap();
        assert_eq!(one.layers, two.layers);
        assert_eq!(one.files, two.files);
        assert_eq!(one.layers.len(), 1);
        assert_eq!(
            one.layers[0].media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(one.layers[0].size_uncompressed, 4);
        assert_eq!(one.files[0].path, "a.json");
        for file in &one.files {
            assert_eq!(file.layer, one.layers[0].digest);
            assert!(files.has(&file.digest));
        }
    }
}
