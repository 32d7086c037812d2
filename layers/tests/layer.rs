//! Layers end to end: reproducibility, normalized headers, digests, the store, the cache.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use layers::{
    BlobStore, Compression, Digest, Error, LayerInfo, LayerOptions, LayerSpec, LayerWriter,
    build_all,
};

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("cache")).unwrap();
    (dir, store)
}

fn options(compression: Compression) -> LayerOptions {
    LayerOptions {
        mtime: Some(0),
        ..LayerOptions::new(compression)
    }
}

fn decompress(store: &BlobStore, layer: &LayerInfo) -> Vec<u8> {
    let blob = std::fs::read(store.blob_path(&layer.digest)).unwrap();
    assert_eq!(Digest::of(&blob), layer.digest, "blob digest");
    assert_eq!(blob.len() as u64, layer.size, "blob size");
    let mut tar = Vec::new();
    match layer.media_type.as_str() {
        layers::MEDIA_TYPE_TAR_GZIP => {
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut tar)
                .unwrap();
        }
        layers::MEDIA_TYPE_TAR_ZSTD => tar = zstd::decode_all(&blob[..]).unwrap(),
        layers::MEDIA_TYPE_TAR => tar = blob,
        other => panic!("unexpected media type {other}"),
    }
    assert_eq!(
        Digest::of(&tar),
        layer.diff_id,
        "diff_id is the uncompressed digest"
    );
    tar
}

#[derive(Debug, PartialEq)]
struct Entry {
    path: String,
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
    content: Vec<u8>,
}

fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            assert!(header.as_ustar().is_some(), "ustar headers");
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let link = entry
                .link_name_bytes()
                .map(|link| String::from_utf8(link.into_owned()).unwrap());
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            Entry {
                path,
                kind: header.entry_type().as_byte() as char,
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
                mtime: header.mtime().unwrap(),
                link,
                content,
            }
        })
        .collect()
}

/// A small project tree; `order` flips the creation order, `stamp` sets the mtimes.
fn make_tree(root: &Path, reverse: bool, stamp: SystemTime) {
    let mut steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| std::fs::create_dir_all(root.join("pkg/sub")).unwrap()),
        Box::new(|| std::fs::create_dir_all(root.join("empty")).unwrap()),
        Box::new(|| std::fs::write(root.join("predict.py"), "print('hi')\n").unwrap()),
        Box::new(|| std::fs::write(root.join("pkg/a.txt"), "a".repeat(3000)).unwrap()),
        Box::new(|| std::fs::write(root.join("pkg/sub/b.bin"), [7u8; 70_000]).unwrap()),
        Box::new(|| {
            std::fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(root.join("run.sh"), PermissionsExt::from_mode(0o700))
                .unwrap();
        }),
        Box::new(|| symlink("pkg/a.txt", root.join("link")).unwrap()),
    ];
    std::fs::create_dir_all(root).unwrap();
    if reverse {
        // Parents first still: directories are created by their own step or create_dir_all.
        std::fs::create_dir_all(root.join("pkg/sub")).unwrap();
        steps.reverse();
    }
    for step in steps {
        step();
    }
    for path in [
        "predict.py",
        "pkg/a.txt",
        "pkg/sub/b.bin",
        "run.sh",
        "pkg",
        "empty",
        "",
    ] {
        let file = std::fs::File::open(root.join(path)).unwrap();
        file.set_modified(stamp).unwrap();
    }
}

#[test]
fn same_tree_gives_the_same_digest_whatever_mtimes_names_and_order() {
    let (dir, store) = store();
    let first = dir.path().join("first");
    let second = dir.path().join("another-name");
    make_tree(
        &first,
        false,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    make_tree(&second, true, SystemTime::now());
    for compression in [Compression::gzip(), Compression::zstd(), Compression::None] {
        let opts = options(compression);
        let a = LayerSpec::new()
            .tree(&first, "/src", &[] as &[&str])
            .unwrap()
            .build(&store, &opts)
            .unwrap();
        let b = LayerSpec::new()
            .tree(&second, "src", &[] as &[&str])
            .unwrap()
            .build(&store, &opts)
            .unwrap();
        assert_eq!(a, b, "{compression:?}");
        assert_eq!(a.media_type, compression.media_type());
        decompress(&store, &a);
    }
}

#[test]
fn headers_are_normalized_and_entries_sorted() {
    let (dir, store) = store();
    let tree = dir.path().join("tree");
    make_tree(&tree, false, SystemTime::now());
    let layer = LayerSpec::new()
        .tree(&tree, "/src", &[] as &[&str])
        .unwrap()
        .file("/etc/motd", 0o600, b"hello".to_vec())
        .unwrap()
        .build(&store, &LayerOptions::new(Compression::gzip()))
        .unwrap();
    let listed = entries(&decompress(&store, &layer));
    let summary: Vec<(&str, char, u32)> = listed
        .iter()
        .map(|entry| (entry.path.as_str(), entry.kind, entry.mode))
        .collect();
    assert_eq!(
        summary,
        [
            ("etc/", '5', 0o755),
            ("etc/motd", '0', 0o644),
            ("src/", '5', 0o755),
            ("src/empty/", '5', 0o755),
            ("src/link", '2', 0o777),
            ("src/pkg/", '5', 0o755),
            ("src/pkg/a.txt", '0', 0o644),
            ("src/pkg/sub/", '5', 0o755),
            ("src/pkg/sub/b.bin", '0', 0o644),
            ("src/predict.py", '0', 0o644),
            ("src/run.sh", '0', 0o755),
        ]
    );
    for entry in &listed {
        assert_eq!(
            (entry.uid, entry.gid, entry.mtime),
            (0, 0, 0),
            "{}",
            entry.path
        );
    }
    let link = listed
        .iter()
        .find(|entry| entry.path == "src/link")
        .unwrap();
    assert_eq!(link.link.as_deref(), Some("pkg/a.txt"));
    let motd = listed
        .iter()
        .find(|entry| entry.path == "etc/motd")
        .unwrap();
    assert_eq!(motd.content, b"hello");
}

#[test]
fn mtime_comes_from_the_option_then_source_date_epoch() {
    let (_dir, store) = store();
    let build = |mtime| {
        let opts = LayerOptions {
            mtime,
            ..LayerOptions::new(Compression::None)
        };
        let layer = LayerSpec::new()
            .file("f", 0o644, b"x".to_vec())
            .unwrap()
            .build(&store, &opts)
            .unwrap();
        entries(&decompress(&store, &layer))[0].mtime
    };
    // SAFETY: nextest runs each test in its own process; nothing else reads the env here.
    unsafe { std::env::set_var("SOURCE_DATE_EPOCH", "1700000000") };
    assert_eq!(build(None), 1_700_000_000);
    assert_eq!(build(Some(42)), 42);
    unsafe { std::env::set_var("SOURCE_DATE_EPOCH", "yesterday") };
    let err = LayerSpec::new()
        .file("f", 0o644, b"x".to_vec())
        .unwrap()
        .build(&store, &LayerOptions::default())
        .unwrap_err();
    assert!(
        err.to_string().contains("SOURCE_DATE_EPOCH=\"yesterday\""),
        "{err}"
    );
    unsafe { std::env::remove_var("SOURCE_DATE_EPOCH") };
    assert_eq!(build(None), 0);
}

#[test]
fn long_names_and_links_round_trip_through_pax() {
    let (_dir, store) = store();
    let long_dir = format!("opt/{}", "d".repeat(150));
    let long_file = format!("{long_dir}/{}", "f".repeat(120));
    let unicode = "usr/share/caf\u{e9}.txt";
    let mut writer = LayerWriter::new(&store, &options(Compression::gzip())).unwrap();
    writer.append_dir(&long_dir, 0o700).unwrap();
    writer
        .append_file(&long_file, 0o644, 3, &mut &b"abc"[..])
        .unwrap();
    writer
        .append_file(unicode, 0o644, 0, &mut &b""[..])
        .unwrap();
    writer
        .append_symlink("opt/link", format!("/{long_file}"))
        .unwrap();
    writer.append_hardlink("opt/hard", &long_file).unwrap();
    let layer = writer.finish().unwrap();
    let listed = entries(&decompress(&store, &layer));
    let paths: Vec<&str> = listed.iter().map(|entry| entry.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("{long_dir}/").as_str(),
            &long_file,
            unicode,
            "opt/link",
            "opt/hard"
        ]
    );
    assert_eq!(listed[1].content, b"abc");
    assert_eq!(
        listed[3].link.as_deref(),
        Some(format!("/{long_file}").as_str())
    );
    assert_eq!(listed[4].link.as_deref(), Some(long_file.as_str()));
}

#[test]
fn escaping_paths_and_bad_links_are_rejected() {
    let (_dir, store) = store();
    let mut writer = LayerWriter::new(&store, &LayerOptions::default()).unwrap();
    let err = writer
        .append_file("../../etc/passwd", 0o644, 1, &mut &b"x"[..])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidEntry { .. }));
    assert!(err.to_string().contains("../../etc/passwd"), "{err}");
    let err = writer.append_symlink("a/b", "../../..").unwrap_err();
    assert!(err.to_string().contains("escapes"), "{err}");
    let err = writer.append_hardlink("a/c", "../x").unwrap_err();
    assert!(err.to_string().contains("a/c"), "{err}");
    let err = writer.append_hardlink("a/c", "not/written").unwrap_err();
    assert!(err.to_string().contains("not/written"), "{err}");
    let err = writer
        .append_file("short", 0o644, 10, &mut &b"abc"[..])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::FileSizeChanged {
                expected: 10,
                actual: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn longer_content_than_announced_is_an_error() {
    let (_dir, store) = store();
    let mut writer = LayerWriter::new(&store, &LayerOptions::default()).unwrap();
    let err = writer
        .append_file("grew", 0o644, 2, &mut &b"abc"[..])
        .unwrap_err();
    assert!(err.to_string().contains("\"grew\""), "{err}");
}

#[test]
fn dockerignore_rules_filter_trees_and_exceptions_reinclude() {
    let (dir, store) = store();
    let tree = dir.path().join("project");
    for file in [
        "predict.py",
        "weights/big.bin",
        "weights/keep.json",
        ".git/HEAD",
        "cache/x.pyc",
        "pkg/mod.pyc",
        "pkg/mod.py",
    ] {
        let path = tree.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, file).unwrap();
    }
    let rules = [
        "/.git",
        "weights",
        "!weights/keep.json",
        "**/*.pyc",
        "cache",
    ];
    let layer = LayerSpec::new()
        .tree(&tree, "/src", &rules)
        .unwrap()
        .build(&store, &options(Compression::None))
        .unwrap();
    let paths: Vec<String> = entries(&decompress(&store, &layer))
        .into_iter()
        .map(|entry| entry.path)
        .collect();
    assert_eq!(
        paths,
        [
            "src/",
            "src/pkg/",
            "src/pkg/mod.py",
            "src/predict.py",
            "src/weights/",
            "src/weights/keep.json"
        ]
    );
}

#[test]
fn cache_keys_are_cheap_stable_and_track_changes() {
    let (dir, store) = store();
    let tree = dir.path().join("tree");
    make_tree(&tree, false, SystemTime::UNIX_EPOCH);
    let spec = || {
        LayerSpec::new()
            .tree(&tree, "/src", &[] as &[&str])
            .unwrap()
            .file("/etc/x", 0o644, b"x".to_vec())
            .unwrap()
    };
    let opts = options(Compression::gzip());
    let key = spec().cache_key(&store, &opts).unwrap();
    assert_eq!(spec().cache_key(&store, &opts).unwrap(), key);
    assert_ne!(
        spec()
            .cache_key(&store, &options(Compression::zstd()))
            .unwrap(),
        key
    );
    let other_content = LayerSpec::new()
        .tree(&tree, "/src", &[] as &[&str])
        .unwrap()
        .file("/etc/x", 0o644, b"y".to_vec())
        .unwrap();
    assert_ne!(other_content.cache_key(&store, &opts).unwrap(), key);

    assert_eq!(store.lookup_key(&key), None);
    let built = spec().build(&store, &opts).unwrap();
    assert_eq!(store.lookup_key(&key), Some(built.clone()));
    assert_eq!(spec().build(&store, &opts).unwrap(), built);

    // Keys travel: touching a file keeps the key (contents decide), the same tree elsewhere
    // (another path, other inodes and times) has the same key, a changed content changes it.
    let file = std::fs::File::options()
        .append(true)
        .open(tree.join("predict.py"))
        .unwrap();
    file.set_modified(SystemTime::now()).unwrap();
    assert_eq!(spec().cache_key(&store, &opts).unwrap(), key);
    let elsewhere = dir.path().join("elsewhere/checkout");
    make_tree(&elsewhere, false, SystemTime::now());
    let (_other_dir, other_store) = self::store();
    let moved = LayerSpec::new()
        .tree(&elsewhere, "/src", &[] as &[&str])
        .unwrap()
        .file("/etc/x", 0o644, b"x".to_vec())
        .unwrap();
    assert_eq!(moved.cache_key(&other_store, &opts).unwrap(), key);
    assert!(!key.contains(dir.path().to_str().unwrap()));
    std::fs::write(tree.join("predict.py"), b"changed").unwrap();
    assert_ne!(spec().cache_key(&store, &opts).unwrap(), key);
    std::fs::remove_file(store.blob_path(&built.digest)).unwrap();
    assert_eq!(store.lookup_key(&key), None);
}

#[test]
fn build_all_builds_in_parallel_in_order() {
    let (_dir, store) = store();
    let specs: Vec<LayerSpec> = (0..8)
        .map(|index| {
            LayerSpec::new()
                .file(
                    &format!("/data/{index}"),
                    0o644,
                    vec![index as u8; 400_000 + index * 1000],
                )
                .unwrap()
        })
        .collect();
    let opts = options(Compression::gzip());
    let parallel = build_all(&store, specs.clone(), &opts).unwrap();
    assert_eq!(parallel.len(), 8);
    for (spec, layer) in specs.iter().zip(&parallel) {
        let (_other_dir, other_store) = self::store();
        assert_eq!(&spec.build(&other_store, &opts).unwrap(), layer);
        let listed = entries(&decompress(&store, layer));
        assert_eq!(
            listed.last().unwrap().content.len(),
            layer_len(layer, &parallel)
        );
    }
}

fn layer_len(layer: &LayerInfo, all: &[LayerInfo]) -> usize {
    let index = all.iter().position(|other| other == layer).unwrap();
    400_000 + index * 1000
}

#[test]
fn conflicting_entries_are_rejected() {
    let (_dir, store) = store();
    let err = LayerSpec::new()
        .file("/a", 0o644, b"x".to_vec())
        .unwrap()
        .file("/a/b", 0o644, b"y".to_vec())
        .unwrap()
        .build(&store, &LayerOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("\"a/b\""), "{err}");
    // The same path twice: the last one wins.
    let layer = LayerSpec::new()
        .file("/a", 0o644, b"old".to_vec())
        .unwrap()
        .file("/a", 0o755, b"new".to_vec())
        .unwrap()
        .build(&store, &options(Compression::None))
        .unwrap();
    let listed = entries(&decompress(&store, &layer));
    assert_eq!(
        (listed[0].mode, listed[0].content.as_slice()),
        (0o755, &b"new"[..])
    );
}

#[test]
fn failed_verification_leaves_nothing_behind() {
    let (_dir, store) = store();
    let wrong = Digest::of(b"something else");
    let mut writer = store.writer().unwrap();
    writer.write_all(b"payload").unwrap();
    let err = writer.commit(Some((&wrong, 7))).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&wrong.to_string())
            && message.contains(&Digest::of(b"payload").to_string()),
        "{message}"
    );
    let mut writer = store.writer().unwrap();
    writer.write_all(b"payload").unwrap();
    let err = writer
        .commit(Some((&Digest::of(b"payload"), 8)))
        .unwrap_err();
    assert!(err.to_string().contains("expected 8 bytes, got 7"), "{err}");
    assert!(!store.has(&Digest::of(b"payload")));
    let leftovers = store.temp_files();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let blobs: Vec<_> = std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .collect();
    assert!(blobs.is_empty(), "{blobs:?}");

    // And a dropped writer (e.g. a failed layer build) leaves no temp file either.
    let mut writer = LayerWriter::new(&store, &LayerOptions::default()).unwrap();
    writer.append_dir("x", 0o755).unwrap();
    drop(writer);
    assert_eq!(store.temp_files(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn put_bytes_and_open_blob() {
    let (_dir, store) = store();
    let (digest, size) = store.put_bytes(b"{\"config\":1}").unwrap();
    assert_eq!((digest, size), (Digest::of(b"{\"config\":1}"), 12));
    assert!(store.has(&digest));
    let mut text = String::new();
    store
        .open_blob(&digest)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "{\"config\":1}");
    assert_eq!(store.put_bytes(b"{\"config\":1}").unwrap(), (digest, size));
    assert!(store.remove(&digest).unwrap());
    assert!(!store.has(&digest));
    assert!(!store.remove(&digest).unwrap());
    let err = store.open_blob(&Digest::of(b"missing")).unwrap_err();
    assert!(
        err.to_string().contains(&Digest::of(b"missing").hex()),
        "{err}"
    );
}

#[test]
fn an_unusable_store_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let root = file.join("cache");
    let err = chain(&BlobStore::open(&root).unwrap_err());
    assert!(err.contains(&root.display().to_string()), "{err}");
    assert!(err.contains("Not a directory"), "{err}");

    // A store whose tmp dir disappeared (e.g. read-only or wiped) fails with the path too.
    let (_dir, store) = self::store();
    std::fs::remove_dir_all(store.root().join("tmp")).unwrap();
    std::fs::write(store.root().join("tmp"), "x").unwrap();
    let err = chain(&store.writer().err().unwrap());
    assert!(
        err.contains(&store.root().join("tmp").display().to_string()),
        "{err}"
    );
    let err = chain(&store.put_bytes(b"x").unwrap_err());
    assert!(err.contains("tmp"), "{err}");
}

#[test]
fn default_root_follows_the_environment() {
    // SAFETY: nextest runs each test in its own process.
    unsafe {
        std::env::set_var("COG_CACHE_DIR", "/x/cog-cache");
        std::env::set_var("XDG_CACHE_HOME", "/y/xdg");
        std::env::set_var("HOME", "/z/home");
    }
    assert_eq!(BlobStore::default_root(), Path::new("/x/cog-cache"));
    unsafe { std::env::remove_var("COG_CACHE_DIR") };
    assert_eq!(BlobStore::default_root(), Path::new("/y/xdg/cog"));
    unsafe { std::env::remove_var("XDG_CACHE_HOME") };
    assert_eq!(BlobStore::default_root(), Path::new("/z/home/.cache/cog"));
}

#[test]
fn layer_info_serializes_for_manifests() {
    let info = LayerInfo {
        digest: Digest::of(b"blob"),
        size: 4,
        diff_id: Digest::of(b"tar"),
        media_type: layers::MEDIA_TYPE_TAR_GZIP.to_owned(),
    };
    let json = serde_json::to_string(&info).unwrap();
    let back: LayerInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(back, info);
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(map["digest"], info.digest.to_string());
}

#[test]
fn a_tree_can_go_to_the_root() {
    let (dir, store) = store();
    let tree = dir.path().join("rootfs");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(tree.join("usr/bin/tool"), "x").unwrap();
    let layer = LayerSpec::new()
        .tree(&tree, "/", &[] as &[&str])
        .unwrap()
        .build(&store, &options(Compression::None))
        .unwrap();
    let paths: Vec<String> = entries(&decompress(&store, &layer))
        .into_iter()
        .map(|entry| entry.path)
        .collect();
    assert_eq!(paths, ["usr/", "usr/bin/", "usr/bin/tool"]);
    let err = LayerSpec::new()
        .tree(tree.join("usr/bin/tool"), "/", &[] as &[&str])
        .unwrap()
        .build(&store, &LayerOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("usr/bin/tool"), "{err}");
}

#[test]
fn raw_entries_keep_owner_mode_devices_and_xattrs() {
    use layers::{Entry as Raw, EntryKind};
    let (_dir, store) = store();
    let capability = vec![
        1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let raw = |path: &str, kind: EntryKind, mode: u32, owner: u64| Raw {
        path: path.into(),
        kind,
        mode,
        uid: owner,
        gid: owner,
        mtime: 7,
        xattrs: Vec::new(),
    };
    let mut writer = LayerWriter::new(&store, &options(Compression::gzip())).unwrap();
    writer
        .append_entry(&raw("srv", EntryKind::Dir, 0o2750, 1000), None)
        .unwrap();
    let mut file = raw("srv/ping", EntryKind::File { size: 3 }, 0o4711, 3_000_000);
    file.xattrs = vec![("security.capability".into(), capability.clone())];
    writer.append_entry(&file, Some(&mut &b"abc"[..])).unwrap();
    for entry in [
        raw(
            "srv/again",
            EntryKind::HardLink {
                target: "srv/ping".into(),
            },
            0o4711,
            3_000_000,
        ),
        raw(
            "srv/up",
            EntryKind::Symlink {
                target: "../../../x".into(),
            },
            0o777,
            0,
        ),
        raw(
            "srv/null",
            EntryKind::CharDevice { major: 1, minor: 3 },
            0o666,
            0,
        ),
        raw(
            "srv/disk",
            EntryKind::BlockDevice { major: 8, minor: 1 },
            0o660,
            0,
        ),
        raw("srv/pipe", EntryKind::Fifo, 0o600, 0),
    ] {
        writer.append_entry(&entry, None).unwrap();
    }
    let missing = raw(
        "srv/bad",
        EntryKind::HardLink {
            target: "srv/none".into(),
        },
        0o644,
        0,
    );
    let err = writer.append_entry(&missing, None).unwrap_err().to_string();
    assert!(err.contains("srv/none"), "{err}");
    let layer = writer.finish().unwrap();
    let tar = decompress(&store, &layer);

    let mut archive = tar::Archive::new(&tar[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let xattrs: Vec<(String, Vec<u8>)> = entry
            .pax_extensions()
            .unwrap()
            .into_iter()
            .flatten()
            .map(|ext| {
                let ext = ext.unwrap();
                (ext.key().unwrap().to_string(), ext.value_bytes().to_vec())
            })
            .filter(|(key, _)| key.starts_with("SCHILY.xattr."))
            .collect();
        let uid = entry
            .pax_extensions()
            .unwrap()
            .into_iter()
            .flatten()
            .map(Result::unwrap)
            .find(|ext| ext.key() == Ok("uid"))
            .map_or_else(
                || header.uid().unwrap(),
                |ext| ext.value().unwrap().parse().unwrap(),
            );
        seen.push((
            entry.path().unwrap().to_string_lossy().into_owned(),
            header.entry_type().as_byte() as char,
            header.mode().unwrap(),
            uid,
            header.mtime().unwrap(),
            header.device_major().unwrap(),
            header.device_minor().unwrap(),
            xattrs,
        ));
    }
    let cap = vec![("SCHILY.xattr.security.capability".to_string(), capability)];
    assert_eq!(
        seen,
        vec![
            (
                "srv/".into(),
                '5',
                0o2750,
                1000,
                7,
                Some(0),
                Some(0),
                vec![]
            ),
            (
                "srv/ping".into(),
                '0',
                0o4711,
                3_000_000,
                7,
                Some(0),
                Some(0),
                cap
            ),
            (
                "srv/again".into(),
                '1',
                0o4711,
                3_000_000,
                7,
                Some(0),
                Some(0),
                vec![]
            ),
            ("srv/up".into(), '2', 0o777, 0, 7, Some(0), Some(0), vec![]),
            (
                "srv/null".into(),
                '3',
                0o666,
                0,
                7,
                Some(1),
                Some(3),
                vec![]
            ),
            (
                "srv/disk".into(),
                '4',
                0o660,
                0,
                7,
                Some(8),
                Some(1),
                vec![]
            ),
            (
                "srv/pipe".into(),
                '6',
                0o600,
                0,
                7,
                Some(0),
                Some(0),
                vec![]
            ),
        ]
    );

    // The same entries give the same bytes.
    let mut again = LayerWriter::new(&store, &options(Compression::gzip())).unwrap();
    again
        .append_entry(&raw("srv", EntryKind::Dir, 0o2750, 1000), None)
        .unwrap();
    again.append_entry(&file, Some(&mut &b"abc"[..])).unwrap();
    let first = again.finish().unwrap();
    let mut third = LayerWriter::new(&store, &options(Compression::gzip())).unwrap();
    third
        .append_entry(&raw("srv", EntryKind::Dir, 0o2750, 1000), None)
        .unwrap();
    third.append_entry(&file, Some(&mut &b"abc"[..])).unwrap();
    assert_eq!(third.finish().unwrap(), first);
}

/// The error with its sources, as the CLI prints it.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[test]
fn remote_keys_hit_after_local_ones_and_every_key_used_is_journaled() {
    let (_dir, store) = store();
    let remote = LayerInfo {
        digest: Digest::of(b"remote"),
        size: 6,
        diff_id: Digest::of(b"tar"),
        media_type: layers::MEDIA_TYPE_TAR_GZIP.to_string(),
    };
    let id = layers::key_id("k");
    assert_eq!(store.lookup_key("k"), None);
    store.key_overlay().add_remote([(
        id.clone(),
        layers::KeyEntry {
            layer: remote.clone(),
            meta: None,
        },
    )]);
    // Without a fetcher a remote hit leaves its blob where it is.
    assert_eq!(store.lookup_key("k"), Some(remote.clone()));
    assert!(!store.has(&remote.digest));
    // A fetch that fails is a miss; one that works stores the blob first.
    store
        .key_overlay()
        .set_fetcher(Some(std::sync::Arc::new(|_| Err("offline".into()))), true);
    assert_eq!(store.lookup_key("k"), None);
    let fetching = store.clone();
    store.key_overlay().set_fetcher(
        Some(std::sync::Arc::new(move |_| {
            fetching
                .put_bytes(b"remote")
                .map(|_| ())
                .map_err(|e| e.to_string())
        })),
        true,
    );
    assert_eq!(store.lookup_key("k"), Some(remote.clone()));
    assert!(store.has(&remote.digest));
    assert_eq!(
        store.key_overlay().journal().get(&id).map(|e| &e.layer),
        Some(&remote)
    );
    assert_eq!(store.key_overlay().remote_hits().len(), 1);

    // Metadata is kept with its key; --no-cache forgets the key, remote entry included.
    let (digest, size) = store.put_bytes(b"layer").unwrap();
    let local = LayerInfo {
        digest,
        size,
        diff_id: digest,
        media_type: layers::MEDIA_TYPE_TAR.to_string(),
    };
    store.record_key_with_meta("m", &local, b"status").unwrap();
    assert_eq!(
        store.lookup_key_with_meta("m"),
        Some((local.clone(), Some(b"status".to_vec())))
    );
    assert_eq!(store.key_overlay().journal().len(), 2);
    store.forget_key("k").unwrap();
    assert_eq!(store.lookup_key("k"), None);
}
