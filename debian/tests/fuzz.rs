//! Fuzz targets for what the debian crate reads from archives and bases: Release files,
//! Packages indexes, dpkg status, relation fields, os-release, and `.deb` files (ar, tar, gzip,
//! xz). Each case is a mutated corpus entry (`fuzzing/corpus/`); no input may panic, and every
//! path a `.deb` yields stays inside the root it is installed under.
//! `COG_FUZZ_CASES=100000 cargo test -p debian --test fuzz` runs longer.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use debian::archive::Release;
use debian::deb::read_deb;
use debian::index::{Index, Installed};
use debian::relation::{parse_provides, parse_relations};
use debian::rootfs::OsRelease;
use proptest::prelude::*;

proptest! {
    #![proptest_config(fuzzing::config())]

    #[test]
    fn release_files(text in fuzzing::text_inputs("release")) {
        if let Ok(release) = Release::parse(&text, "fuzz/Release") {
            for name in release.files.keys() {
                // Index files are fetched by these names: they must stay relative.
                if let Ok(path) = safe_path::relative_path(name) {
                    prop_assert!(!path.split('/').any(|part| part == ".."), "{name}");
                }
            }
        }
    }

    #[test]
    fn packages_indexes(text in fuzzing::text_inputs("packages")) {
        let mut index = Index::new("amd64");
        let _ = index.add_packages_file(&text, &Arc::from("http://deb.example/debian"), "Packages");
    }

    #[test]
    fn dpkg_status(bytes in fuzzing::inputs("packages")) {
        let _ = Installed::parse(&bytes, "amd64");
    }

    #[test]
    fn relation_fields(text in fuzzing::text_inputs("relations")) {
        let _ = parse_relations(&text, "amd64");
        let _ = parse_provides(&text, "amd64");
    }

    #[test]
    fn os_release(text in fuzzing::text_inputs("os-release")) {
        let _ = OsRelease::parse(&text);
    }

    #[test]
    fn deb_files(bytes in fuzzing::inputs("deb")) {
        if let Ok(deb) = read_deb(bytes.as_slice(), "fuzz.deb") {
            for member in &deb.members {
                let path = &member.path;
                prop_assert!(path.starts_with('/'), "{path}");
                prop_assert!(path == "/" || safe_path::relative_path(&path[1..]).is_ok(), "{path}");
            }
        }
    }
}
