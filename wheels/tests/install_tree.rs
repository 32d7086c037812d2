//! The files our layers put in site-packages equal what `uv pip install --target` installs for
//! the same pins (names and bytes; RECORD, INSTALLER, REQUESTED and .pyc aside).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use layers::BlobStore;
use wheels::install::{InstallOptions, layers};
use wheels::requirements::{ParseOptions, parse_file};
use wheels::resolve::{ResolveOptions, resolve};
use wheels::{Arch, Libc, Target};

const SITE: &str = "usr/local/lib/python3.11/site-packages/";

fn ignored(rel: &str) -> bool {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    (rel.contains(".dist-info/")
        && matches!(
            file,
            "RECORD" | "INSTALLER" | "REQUESTED" | "direct_url.json"
        ))
        || Path::new(file).extension().is_some_and(|e| e == "pyc")
        || rel.contains("__pycache__/")
        || rel == ".lock" // uv's lock file in the --target directory
}

/// site-packages files (relative path -> bytes) and the names in bin/ from our layers.
fn layer_tree(
    store: &BlobStore,
    layers: &[wheels::WheelLayer],
) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut bins = Vec::new();
    for l in layers {
        let blob = std::fs::File::open(store.blob_path(&l.info.digest)).unwrap();
        let reader: Box<dyn Read> = if l.info.media_type.ends_with("+gzip") {
            Box::new(flate2::read::GzDecoder::new(blob))
        } else {
            Box::new(blob)
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if entry.header().entry_type().is_dir() {
                continue;
            }
            if let Some(rel) = path.strip_prefix(SITE) {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                assert!(
                    files.insert(rel.to_string(), bytes).is_none(),
                    "{rel} twice"
                );
            } else if let Some(name) = path.strip_prefix("usr/local/bin/") {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                assert!(
                    bytes.starts_with(b"#!/usr/local/bin/python3.11\n"),
                    "{name}: bad shebang"
                );
                bins.push(name.to_string());
            }
        }
    }
    bins.sort();
    (files, bins)
}

fn dir_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn same_tree(set: &str, compression: layers::Compression) {
    let file = common::fixtures()
        .join("requirements")
        .join(format!("{set}.txt"));
    let reqs = parse_file(&file, &ParseOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let options = ResolveOptions {
        cache_dir: Some(tmp.path().join("cache")),
        ..ResolveOptions::default()
    };
    let index = options.client_options(&reqs).indexes[0].to_string();
    let target = Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 28)).unwrap();
    let lock = resolve(&reqs, &target, &options).unwrap();

    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let mut install = InstallOptions::python_slim("3.11");
    install.client.cache_dir = Some(tmp.path().join("cache"));
    install.layer.compression = compression;
    let built = layers(&lock, &install, &store).unwrap();
    let packages: usize = built.iter().map(|l| l.packages.len()).sum();
    assert_eq!(packages, lock.packages.len());
    let (ours, bins) = layer_tree(&store, &built);

    let pins = tmp.path().join("pins.txt");
    std::fs::write(&pins, lock.pins()).unwrap();
    let target_dir = tmp.path().join("uv-target");
    let out = Command::new(common::uv())
        .args([
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--python-version",
            "3.11",
        ])
        .args([
            "--python-platform",
            "x86_64-manylinux_2_28",
            "--index-url",
            &index,
            "--target",
        ])
        .arg(&target_dir)
        .arg("-r")
        .arg(&pins)
        .env("UV_COMPILE_BYTECODE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = dir_tree(&target_dir);
    let their_bins: Vec<String> = {
        let mut b: Vec<String> = theirs
            .keys()
            .filter_map(|k| k.strip_prefix("bin/"))
            .map(str::to_string)
            .collect();
        b.sort();
        b
    };
    let theirs: BTreeMap<String, Vec<u8>> = theirs
        .into_iter()
        .filter(|(k, _)| !k.starts_with("bin/") && !ignored(k))
        .collect();
    let ours: BTreeMap<String, Vec<u8>> = ours.into_iter().filter(|(k, _)| !ignored(k)).collect();
    let only_ours: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_theirs: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "{set}: only in our layers: {only_ours:?}; only in uv's tree: {only_theirs:?}"
    );
    for (k, v) in &ours {
        assert!(v == &theirs[k], "{set}: {k} differs");
    }
    assert_eq!(bins, their_bins, "{set}: console scripts differ");
    assert!(ours.len() > 20, "{set}: suspiciously few files");

    // Layers are cached by content: a second build reuses them, digests unchanged.
    let mut again = layers(&lock, &install, &store).unwrap();
    assert!(
        again.iter().all(|l| l.cached),
        "{set}: not all from the cache"
    );
    for layer in &mut again {
        layer.cached = false;
    }
    assert_eq!(again, built);

    // Gzip layers splice the wheels' deflate data; the tar inside is the very one a plain
    // (uncompressed, through layers::LayerWriter) build writes: same diff_ids.
    if install.splice && matches!(compression, layers::Compression::Gzip { .. }) {
        install.layer.compression = layers::Compression::None;
        let plain = layers(&lock, &install, &store).unwrap();
        let ids = |l: &[wheels::WheelLayer]| l.iter().map(|l| l.info.diff_id).collect::<Vec<_>>();
        assert_eq!(
            ids(&plain),
            ids(&built),
            "{set}: spliced and plain tars differ"
        );
        assert!(
            plain
                .iter()
                .all(|l| l.info.media_type == layers::MEDIA_TYPE_TAR)
        );
    }
}

#[test]
fn numpy_pillow_tree_matches_uv() {
    same_tree("numpy-pillow", layers::Compression::gzip());
}

#[test]
fn transformers_tree_matches_uv() {
    same_tree("transformers", layers::Compression::gzip());
}

#[test]
fn uncompressed_tree_matches_uv() {
    same_tree("small-cli", layers::Compression::None);
}

#[test]
fn small_cli_tree_matches_uv() {
    same_tree("small-cli", layers::Compression::gzip());
}
