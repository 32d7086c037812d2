//! Fuzz targets for what the wheels crate reads from outside: requirements files, index pages
//! (JSON and HTML), wheel and sdist file names, core metadata, and wheels themselves (our zip
//! member reader and the installer). Each case is a mutated corpus entry (`fuzzing/corpus/`);
//! no input may panic, and no name from an input may lead outside the directory it is joined to.
//! `COG_FUZZ_CASES=100000 cargo test -p wheels --test fuzz` runs longer.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::Path;

use proptest::prelude::*;
use url::Url;
use wheels::LockedPackage;
use wheels::filename::{WheelFilename, parse_sdist};
use wheels::index::simple::{DistFile, parse_html, parse_json};
use wheels::index::zip_range::{central_directory, find_member, read_member};
use wheels::install::{InstallOptions, install_to_dir};
use wheels::metadata::CoreMetadata;
use wheels::requirements::{ParseOptions, parse_str};

/// A name the downloader joins to its cache directory stays a single entry inside it.
fn assert_stays_inside(file: &DistFile) {
    let root = Path::new("/cache/files");
    if let Ok(path) = safe_path::join_file(root, &file.filename) {
        assert_eq!(path.parent(), Some(root), "{:?} escapes", file.filename);
    }
    if let Some(wheel) = WheelFilename::parse(&file.filename) {
        assert!(!wheel.platform.iter().any(|p| p.contains('/')), "{wheel:?}");
    }
}

proptest! {
    #![proptest_config(fuzzing::config())]

    #[test]
    fn requirements_files(text in fuzzing::text_inputs("requirements")) {
        let dir = tempfile::tempdir().unwrap();
        let _ = parse_str(
            &text,
            Path::new("requirements.txt"),
            dir.path(),
            &ParseOptions::default(),
        );
    }

    #[test]
    fn json_index_pages(body in fuzzing::inputs("index-json")) {
        let base = Url::parse("https://index.example/simple/six/").unwrap();
        if let Ok(files) = parse_json(&body, &base) {
            files.iter().for_each(assert_stays_inside);
        }
    }

    #[test]
    fn html_index_pages(body in fuzzing::text_inputs("index-html")) {
        let base = Url::parse("https://index.example/simple/six/").unwrap();
        parse_html(&body, &base).iter().for_each(assert_stays_inside);
    }

    #[test]
    fn wheel_and_sdist_file_names(name in fuzzing::text_inputs("wheel-filename")) {
        if WheelFilename::parse(&name).is_some() || parse_sdist(&name).is_some() {
            prop_assert!(safe_path::file_name(&name).is_ok(), "{name:?} accepted");
        }
    }

    #[test]
    fn core_metadata(text in fuzzing::text_inputs("metadata")) {
        let _ = CoreMetadata::parse(&text, "METADATA");
    }

    #[test]
    fn zip_members_read_by_range(bytes in fuzzing::inputs_from(wheels())) {
        let tail_start = bytes.len().saturating_sub(64 << 10);
        let found = central_directory(&bytes[tail_start..], bytes.len() as u64)
            .and_then(|(offset, size)| {
                let (offset, size) = (offset as usize, size as usize);
                bytes.get(offset..offset.saturating_add(size))
            })
            .and_then(|cd| find_member(cd, |name| name.ends_with("METADATA")));
        if let Some(member) = found {
            let start = usize::try_from(member.local_header_offset).unwrap_or(usize::MAX);
            if let Some(local) = bytes.get(start..) {
                let _ = read_member(local, &member);
            }
        }
    }

    #[test]
    fn wheels_installed_into_a_directory(bytes in fuzzing::inputs_from(wheels())) {
        let dir = tempfile::tempdir().unwrap();
        let filename = "pkg-1.0-py3-none-any.whl";
        let wheel = dir.path().join(filename);
        std::fs::write(&wheel, &bytes).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let package = LockedPackage {
            name: "pkg".into(),
            version: "1.0".into(),
            filename: filename.into(),
            url: Url::from_file_path(&wheel).unwrap().to_string(),
            sha256: None,
            hashes: Vec::new(),
            size: None,
            direct_url: None,
            build: None,
        };
        let _ = install_to_dir(&[package], &InstallOptions::python_slim("3.11"), &root);
        // Whatever the wheel says, nothing appears beside the install root.
        let mut beside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        beside.sort();
        prop_assert_eq!(beside, vec![filename.to_string(), "root".to_string()]);
    }
}

/// Seeds for the zip targets: small wheels as pip and setuptools write them, one with a member
/// outside its package, one with a stored (uncompressed) member.
fn wheels() -> Vec<Vec<u8>> {
    let wheel = |members: &[(&str, &[u8], zip::CompressionMethod)]| {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (name, bytes, method) in members {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(*method)
                .unix_permissions(0o644);
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        buf.into_inner()
    };
    let deflated = zip::CompressionMethod::Deflated;
    let stored = zip::CompressionMethod::Stored;
    let metadata = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n".as_slice();
    let wheel_file = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n".as_slice();
    vec![
        wheel(&[
            ("pkg/__init__.py", b"VALUE = 1\n", deflated),
            ("pkg-1.0.dist-info/METADATA", metadata, deflated),
            ("pkg-1.0.dist-info/WHEEL", wheel_file, deflated),
            (
                "pkg-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\npkg = pkg:main\n",
                deflated,
            ),
            ("pkg-1.0.dist-info/RECORD", b"", deflated),
        ]),
        wheel(&[
            ("pkg/data.bin", &[0u8; 300], stored),
            (
                "pkg-1.0.data/scripts/tool",
                b"#!python\nprint(1)\n",
                deflated,
            ),
            ("pkg-1.0.data/../../escape.txt", b"x", deflated),
            ("pkg-1.0.dist-info/METADATA", metadata, stored),
            ("pkg-1.0.dist-info/WHEEL", wheel_file, stored),
            ("pkg-1.0.dist-info/RECORD", b"", stored),
        ]),
    ]
}
