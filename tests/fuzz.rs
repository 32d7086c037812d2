//! Fuzz targets for what `cog` reads from users and registries: cog.yaml, image references,
//! registries' `WWW-Authenticate` challenges, `weights.lock`, `.dockerignore`, image archives (`oci-archive:`,
//! `docker-archive:`) and layer tars applied onto a directory for runc. Each case is a mutated
//! corpus entry (`fuzzing/corpus/`, or seeds built here for binary formats); no input may
//! panic, and a layer may write nothing outside the directory it is applied onto.
//! `COG_FUZZ_CASES=100000 cargo test --test fuzz` runs longer.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use cog::config;
use cog::oci::{self, ImageConfig, Platform};
use cog::registry::{Challenge, Reference};
use cog::runtime::{UnpackBudget, apply_layer};
use cog::sandbox::limits::UnpackLimits;
use layers::{BlobStore, Compression, IgnoreMatcher, LayerOptions, LayerWriter};
use proptest::prelude::*;

proptest! {
    #![proptest_config(fuzzing::config())]

    #[test]
    fn cog_yaml(text in fuzzing::text_inputs("cog-yaml")) {
        let dir = tempfile::tempdir().unwrap();
        let _ = config::load_str(dir.path(), &dir.path().join("cog.yaml"), &text);
    }

    #[test]
    fn image_references(text in fuzzing::text_inputs("reference")) {
        if let Ok(reference) = Reference::parse(&text) {
            // What we print parses back to the same reference.
            prop_assert_eq!(Reference::parse(&reference.to_string()).ok(), Some(reference));
        }
    }

    #[test]
    fn weights_locks(text in fuzzing::text_inputs("weights-lock")) {
        if let Ok(lock) = cog::weights::WeightsLock::parse(text.as_bytes(), Path::new("weights.lock")) {
            // A lock that parses is whole: what it writes parses back, to the same bytes.
            let bytes = lock.to_bytes();
            let again = cog::weights::WeightsLock::parse(&bytes, Path::new("weights.lock"));
            prop_assert_eq!(again.ok().map(|l| l.to_bytes()), Some(bytes));
        }
    }

    #[test]
    fn registry_challenges(text in fuzzing::text_inputs("www-authenticate")) {
        let _ = Challenge::parse(&text);
    }

    #[test]
    fn dockerignore_files(text in fuzzing::text_inputs("dockerignore")) {
        if let Ok(matcher) = IgnoreMatcher::from_dockerignore(&text) {
            let _ = matcher.matches("src/predict.py");
            let _ = matcher.may_reinclude_under("weights");
        }
    }

    #[test]
    fn layers_applied_onto_a_directory(bytes in fuzzing::inputs_from(layer_tars())) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"keep").unwrap();
        let mut budget = UnpackBudget::new(UnpackLimits {
            max_bytes: 64 << 20,
            ..UnpackLimits::default()
        });
        let _ = apply_layer(bytes.as_slice(), &root, "fuzz layer", &mut budget);
        prop_assert_eq!(entries(dir.path()), vec!["outside".to_string(), "root".to_string()]);
        prop_assert_eq!(entries(&outside), vec!["keep".to_string()]);
        prop_assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"keep".to_vec());
    }

    #[test]
    fn image_archives(bytes in fuzzing::inputs_from(archives())) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("image.tar");
        std::fs::write(&file, &bytes).unwrap();
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        let _ = oci::read_oci_archive(&store, &file, None, &Platform::linux_amd64());
        let _ = oci::read_docker_archive(&store, &file);
        // Whatever the archive holds, every blob the store kept is what its name says.
        prop_assert!(store.verify(false).unwrap().corrupt.is_empty());
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A tar of `(path, kind)` entries: `Ok(content)` a file, `Err(target)` a symlink.
fn tar(entries: &[(&str, Result<&[u8], &str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(0);
        match kind {
            Ok(content) => {
                header.set_size(content.len() as u64);
                header.set_entry_type(tar::EntryType::Regular);
                // `append_data` refuses `..`: write the name into the header ourselves.
                header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                builder.append(&header, *content).unwrap();
            }
            Err(target) => {
                header.set_size(0);
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_link_name(target).unwrap();
                header.set_cksum();
                builder.append(&header, std::io::empty()).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// Layers as images have them (files, whiteouts, an opaque directory, symlinks), and hostile
/// ones: a `../` entry, a symlink out of the root followed by a file through it.
fn layer_tars() -> Vec<Vec<u8>> {
    let plain = tar(&[
        ("etc/os-release", Ok(b"ID=debian\n")),
        ("usr/bin/tool", Ok(b"#!/bin/sh\n")),
        ("usr/lib/.wh.gone", Ok(b"")),
        ("var/cache/.wh..wh..opq", Ok(b"")),
        ("usr/bin/link", Err("tool")),
    ]);
    let hostile = tar(&[
        ("../outside/pwned", Ok(b"x")),
        ("escape", Err("../outside")),
        ("escape/pwned", Ok(b"x")),
        ("abs", Err("/")),
        (".wh...", Ok(b"")),
        ("root/.wh.keep", Ok(b"")),
    ]);
    let mut gzipped = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzipped, &plain).unwrap();
    vec![plain, hostile, gzipped.finish().unwrap()]
}

/// A busybox-like image exported as the tarball `cog build --output` writes (OCI archive and
/// docker-archive in one).
fn archives() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let mut writer = LayerWriter::new(&store, &LayerOptions::new(Compression::gzip())).unwrap();
    writer.append_dir("bin", 0o755).unwrap();
    writer
        .append_file("bin/sh", 0o755, 10, &mut b"#!/bin/sh\n".as_slice())
        .unwrap();
    writer.append_symlink("bin/ls", "sh").unwrap();
    let layer = writer.finish().unwrap();
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    let image = oci::assemble(&store, &config, &[layer], BTreeMap::new()).unwrap();
    let file = dir.path().join("image.tar");
    oci::export_tarball(
        &store,
        &image.image_ref(),
        &file,
        &["fuzz:latest".to_string()],
    )
    .unwrap();
    vec![std::fs::read(&file).unwrap()]
}
