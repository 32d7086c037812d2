//! Resolution and installation against a local fixture index: bad input gives clear errors,
//! and the installed layer has what pip would write.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use common::server::{Server, wheel};
use layers::BlobStore;
use wheels::index::config::PipConfig;
use wheels::install::{InstallOptions, layers};
use wheels::resolve::{ResolveOptions, resolve, resolve_locked};
use wheels::{Arch, Error, Libc, Requirements, Target};

const ANY: &str = "py3-none-any";

fn target() -> Target {
    Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 36)).unwrap()
}

fn options(cache: &std::path::Path) -> ResolveOptions {
    ResolveOptions {
        cache_dir: Some(cache.to_path_buf()),
        pip_config: Some(PipConfig::default()),
        attempts: 3,
        backoff: Duration::from_millis(10),
        ..ResolveOptions::default()
    }
}

fn reqs(server: &Server, text: &str) -> Requirements {
    format!("--index-url {}\n{text}", server.index_url())
        .parse()
        .unwrap()
}

/// Publishes a pure wheel with its correct hash on a JSON page of its own.
fn publish(server: &Server, name: &str, versions: &[(&str, &[&str])]) {
    let mut files = Vec::new();
    for (v, requires) in versions {
        let (f, bytes) = wheel(
            name,
            v,
            ANY,
            &[(&format!("{name}/__init__.py"), v.as_bytes(), 0o644)],
            requires,
            None,
        );
        let sha = server.put_file(&f, bytes);
        files.push((f, sha));
    }
    let refs: Vec<(&str, &str, Option<&str>, bool)> = files
        .iter()
        .map(|(f, s)| (f.as_str(), s.as_str(), None, false))
        .collect();
    server.put_project_json(name, &refs);
}

/// The error and its causes, as the CLI prints them.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

fn resolve_err(server: &Server, text: &str) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    resolve(&reqs(server, text), &target(), &options(tmp.path())).unwrap_err()
}

fn pins(server: &Server, text: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    resolve(&reqs(server, text), &target(), &options(tmp.path()))
        .unwrap()
        .pins()
}

#[test]
fn unknown_package_names_the_index() {
    let server = Server::start();
    let e = resolve_err(&server, "no-such-package\n");
    assert!(
        matches!(e.innermost(), Error::PackageNotFound { .. }),
        "{e:?}"
    );
    assert_eq!(
        chain(&e),
        format!(
            "requirements.txt:2: `no-such-package`: package `no-such-package` was not found in {}",
            server.index_url()
        )
    );
}

#[test]
fn conflicts_are_explained() {
    let server = Server::start();
    publish(&server, "a", &[("1.0", &["b<2"])]);
    publish(&server, "b", &[("1.0", &[]), ("2.0", &[])]);
    let e = resolve_err(&server, "a\nb>=2\n");
    let text = chain(&e);
    assert!(matches!(e.innermost(), Error::Conflict(_)), "{e:?}");
    assert!(
        text.starts_with("no solution for these requirements:"),
        "{text}"
    );
    assert_eq!(
        text,
        "no solution for these requirements:\n\
         Because a depends on b <2 and your requirements depend on a, your requirements depend on b <2.\n\
         And because your requirements depend on b >=2, your requirements cannot be satisfied."
    );
    assert_eq!(pins(&server, "a\n"), "a==1.0\nb==1.0\n");
}

#[test]
fn no_wheel_for_the_target_names_tags() {
    let server = Server::start();
    let (f, bytes) = wheel(
        "macos-only",
        "1.0",
        "cp311-cp311-macosx_11_0_arm64",
        &[],
        &[],
        None,
    );
    let sha = server.put_file(&f, bytes);
    server.put_project_json("macos-only", &[(&f, &sha, None, false)]);
    let e = resolve_err(&server, "macos-only\n");
    let text = chain(&e);
    assert!(
        matches!(e.innermost(), Error::NoCompatibleWheel(_)),
        "{e:?}"
    );
    assert_eq!(
        text,
        "requirements.txt:2: `macos-only`: no wheel of `macos-only` 1.0 matches the target \
         (CPython 3.11 on linux/x86_64 (glibc 2.36)): its wheels cover Python cp311 on \
         macosx_11_0_arm64; the target takes cp311-cp311-manylinux_2_36_x86_64, \
         cp311-cp311-manylinux_2_35_x86_64, cp311-cp311-manylinux_2_34_x86_64, ...; and it has \
         no source distribution: pip would not find a matching distribution either"
    );

    server.put_file("sdist-only-1.0.tar.gz", b"not really".to_vec());
    server.put_project_json(
        "sdist-only",
        &[("sdist-only-1.0.tar.gz", "00", None, false)],
    );
    let e = resolve_err(&server, "sdist-only\n");
    assert_eq!(
        chain(&e),
        "requirements.txt:2: `sdist-only`: `sdist-only` 1.0 is only available as a source \
         distribution (sdist-only-1.0.tar.gz); pip would build it, but cog-rs was given no \
         source builder here: pin a version that has a wheel for the target"
    );
    // With wheels for other targets, the error says which.
    let (f, bytes) = wheel("mixed", "2.0", "cp39-cp39-win_amd64", &[], &[], None);
    let sha = server.put_file(&f, bytes);
    server.put_file("mixed-2.0.tar.gz", b"not really".to_vec());
    server.put_project_json(
        "mixed",
        &[
            (&f, &sha, None, false),
            ("mixed-2.0.tar.gz", "00", None, false),
        ],
    );
    let e = resolve_err(&server, "mixed==2.0\n");
    assert!(
        chain(&e).contains(
            "`mixed` 2.0 is only available as a source distribution (mixed-2.0.tar.gz) for \
             CPython 3.11 on linux/x86_64 (glibc 2.36) (its wheels cover Python cp39 on win_amd64)"
        ),
        "{}",
        chain(&e)
    );
}

#[test]
fn hash_mismatches_are_caught() {
    let server = Server::start();
    let (f, bytes) = wheel(
        "tampered",
        "1.0",
        ANY,
        &[("tampered.py", b"x", 0o644)],
        &[],
        None,
    );
    server.put_file(&f, bytes);
    let wrong = "0".repeat(64);
    server.put_project_json("tampered", &[(&f, &wrong, None, false)]);
    let tmp = tempfile::tempdir().unwrap();
    // Metadata comes from a range read of the zip (no .metadata file): resolution succeeds...
    let lock = resolve(
        &reqs(&server, "tampered\n"),
        &target(),
        &options(tmp.path()),
    )
    .unwrap();
    // ...the download is verified and refused.
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let mut install = InstallOptions::python_slim("3.11");
    install.client.cache_dir = Some(tmp.path().join("cache"));
    let e = layers(&lock, &install, &store).unwrap_err();
    assert!(matches!(e.innermost(), Error::HashMismatch { .. }), "{e:?}");
    assert!(
        chain(&e).starts_with(&format!(
            "hash mismatch for {f}: expected sha256 {wrong}, got "
        )),
        "{e}"
    );

    // `--hash` values that match no file.
    publish(&server, "fine", &[("1.0", &[])]);
    let e = resolve_err(
        &server,
        &format!("fine==1.0 --hash=sha256:{}\n", "a".repeat(64)),
    );
    assert!(
        chain(&e).contains("no file of `fine` 1.0 matches the --hash values"),
        "{e}"
    );
}

#[test]
fn index_down_fails_after_bounded_retries() {
    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/simple/", l.local_addr().unwrap());
    drop(l);
    let tmp = tempfile::tempdir().unwrap();
    let reqs: Requirements = format!("--index-url {url}\nnumpy\n").parse().unwrap();
    let start = std::time::Instant::now();
    let e = resolve(&reqs, &target(), &options(tmp.path())).unwrap_err();
    assert!(
        matches!(e.innermost(), Error::Unreachable { attempts: 3, .. }),
        "{e:?}"
    );
    assert!(
        chain(&e).starts_with(&format!(
            "requirements.txt:2: `numpy`: {url}numpy/: gave up after 3 attempts: "
        )),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));

    // Transient 503s are retried.
    let server = Server::start();
    publish(&server, "flaky", &[("1.0", &[])]);
    server.fail("/simple/flaky/", 2);
    assert_eq!(pins(&server, "flaky\n"), "flaky==1.0\n");
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|p| *p == "/simple/flaky/")
            .count(),
        3
    );
}

#[test]
fn unsafe_wheel_paths_are_rejected() {
    for evil in ["../../etc/cron.d/x", "/etc/passwd", "pkg/../../../x"] {
        let server = Server::start();
        let (f, bytes) = wheel(
            "evil",
            "1.0",
            ANY,
            &[("evil/__init__.py", b"", 0o644), (evil, b"boom", 0o644)],
            &[],
            None,
        );
        let sha = server.put_file(&f, bytes);
        server.put_project_json("evil", &[(&f, &sha, None, false)]);
        let tmp = tempfile::tempdir().unwrap();
        let lock = resolve(&reqs(&server, "evil\n"), &target(), &options(tmp.path())).unwrap();
        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let mut install = InstallOptions::python_slim("3.11");
        install.client.cache_dir = Some(tmp.path().join("cache"));
        let e = layers(&lock, &install, &store).unwrap_err();
        assert!(
            matches!(e.innermost(), Error::UnsafePath { .. }),
            "{evil}: {e:?}"
        );
        assert!(chain(&e).contains(&f), "{e}");
    }
}

#[test]
fn corrupt_wheel_members_are_rejected_by_name() {
    // The index's hash is of the corrupt file itself, so only the member's CRC-32 can tell.
    let content = b"print('hello')\n".repeat(200);
    let (f, mut bytes) = wheel(
        "corrupt",
        "1.0",
        ANY,
        &[("corrupt/__init__.py", &content, 0o644)],
        &[],
        None,
    );
    let crc = crc32fast::hash(&content).to_le_bytes();
    let mut flipped = 0;
    for i in 0..bytes.len() - 3 {
        if bytes[i..i + 4] == crc {
            bytes[i] ^= 0xff; // local header and central directory both
            flipped += 1;
        }
    }
    assert_eq!(
        flipped, 2,
        "the CRC is in the local header and the central directory"
    );
    let server = Server::start();
    let sha = server.put_file(&f, bytes);
    server.put_project_json("corrupt", &[(&f, &sha, None, false)]);
    let tmp = tempfile::tempdir().unwrap();
    let lock = resolve(&reqs(&server, "corrupt\n"), &target(), &options(tmp.path())).unwrap();
    let store = BlobStore::open(tmp.path().join("store")).unwrap();
    let mut install = InstallOptions::python_slim("3.11");
    install.client.cache_dir = Some(tmp.path().join("cache"));
    let e = layers(&lock, &install, &store).unwrap_err();
    assert!(matches!(e.innermost(), Error::InvalidWheel { .. }), "{e:?}");
    let text = chain(&e);
    assert!(
        text.starts_with(&format!("{f}: invalid wheel: corrupt/__init__.py: "))
            && text.contains("CRC-32"),
        "{text}"
    );
}

#[test]
fn versions_follow_pip_rules() {
    let server = Server::start();
    // Yanked: skipped unless pinned.
    let (f1, b1) = wheel("yanky", "1.0", ANY, &[], &[], None);
    let (f2, b2) = wheel("yanky", "2.0", ANY, &[], &[], None);
    let (s1, s2) = (server.put_file(&f1, b1), server.put_file(&f2, b2));
    server.put_project_json("yanky", &[(&f1, &s1, None, false), (&f2, &s2, None, true)]);
    assert_eq!(pins(&server, "yanky\n"), "yanky==1.0\n");
    assert_eq!(pins(&server, "yanky==2.0\n"), "yanky==2.0\n");
    // requires-python of the file.
    let (f1, b1) = wheel("newpy", "1.0", ANY, &[], &[], None);
    let (f2, b2) = wheel("newpy", "2.0", ANY, &[], &[], None);
    let (s1, s2) = (server.put_file(&f1, b1), server.put_file(&f2, b2));
    server.put_project_json(
        "newpy",
        &[
            (&f1, &s1, Some(">=3.8"), false),
            (&f2, &s2, Some(">=3.12"), false),
        ],
    );
    assert_eq!(pins(&server, "newpy\n"), "newpy==1.0\n");
    let e = resolve_err(&server, "newpy>=2\n");
    assert!(
        chain(&e).contains("requires Python >=3.12, but the target is Python 3.11.0"),
        "{e}"
    );
    // Pre-releases: only when asked for (--pre or a pre-release in the specifier).
    publish(&server, "prerel", &[("1.0", &[]), ("2.0rc1", &[])]);
    assert_eq!(pins(&server, "prerel\n"), "prerel==1.0\n");
    assert_eq!(pins(&server, "--pre\nprerel\n"), "prerel==2.0rc1\n");
    assert_eq!(pins(&server, "prerel>=2.0rc1\n"), "prerel==2.0rc1\n");
    // Extras and markers, and an HTML (PEP 503) page.
    publish(
        &server,
        "base",
        &[(
            "1.0",
            &[
                "extra-dep ; extra == 'fancy'",
                "win-only ; sys_platform == 'win32'",
                "linux-only ; sys_platform == 'linux'",
            ],
        )],
    );
    publish(&server, "extra-dep", &[("3.0", &[])]);
    let (f, b) = wheel("linux_only", "1.1", ANY, &[], &[], None);
    let s = server.put_file(&f, b);
    server.put_project_html("linux-only", &[(&f, &s)]);
    assert_eq!(pins(&server, "base\n"), "base==1.0\nlinux-only==1.1\n");
    assert_eq!(
        pins(&server, "base[fancy]\n"),
        "base==1.0\nextra-dep==3.0\nlinux-only==1.1\n"
    );
    assert_eq!(pins(&server, "base ; python_version < '3.10'\n"), "");
}

/// Files of all layers: path -> (mode, bytes).
fn layer_files(
    store: &BlobStore,
    built: &[wheels::WheelLayer],
) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for l in built {
        let blob = std::fs::File::open(store.blob_path(&l.info.digest)).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type().is_dir() {
                continue;
            }
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            out.insert(path, (mode, bytes));
        }
    }
    out
}

#[test]
fn installs_like_pip_and_reuses_the_lock() {
    let server = Server::start();
    let (f, bytes) = wheel(
        "tool",
        "1.0",
        ANY,
        &[
            ("tool/__init__.py", b"def main():\n    return 0\n", 0o644),
            ("tool/bin/helper", b"#!/bin/sh\n", 0o755),
            (
                "tool-1.0.data/scripts/run-tool",
                b"#!python\nprint('hi')\n",
                0o755,
            ),
            ("tool-1.0.data/headers/tool.h", b"int x;\n", 0o644),
            ("tool-1.0.data/data/share/tool/readme", b"docs\n", 0o644),
        ],
        &["dep>=1"],
        Some("[console_scripts]\ntool = tool:main\n[gui_scripts]\ntool-gui = tool.gui:App.run\n"),
    );
    let sha = server.put_file(&f, bytes);
    server.put_project_json("tool", &[(&f, &sha, None, false)]);
    publish(&server, "dep", &[("1.5", &[])]);

    let project = tempfile::tempdir().unwrap();
    let (lf, lbytes) = wheel(
        "local_pkg",
        "0.1",
        ANY,
        &[("local_pkg.py", b"X = 1\n", 0o644)],
        &[],
        None,
    );
    std::fs::create_dir(project.path().join("dist")).unwrap();
    std::fs::write(project.path().join("dist").join(&lf), &lbytes).unwrap();
    let req_file = project.path().join("requirements.txt");
    std::fs::write(
        &req_file,
        format!(
            "--index-url {}\ntool\ndist/{lf}\ncog==0.16.0\n",
            server.index_url()
        ),
    )
    .unwrap();
    let parse_options = wheels::requirements::ParseOptions {
        project_dir: Some(project.path().to_path_buf()),
    };
    let reqs = wheels::requirements::parse_file(&req_file, &parse_options).unwrap();
    assert_eq!(reqs.warnings.len(), 1, "cog line stripped with a warning");

    let cache = tempfile::tempdir().unwrap();
    let opts = options(cache.path());
    let lock_path = project.path().join(wheels::lock::LOCK_FILE_NAME);
    let (lock, reused) = resolve_locked(&lock_path, &reqs, &target(), &opts).unwrap();
    assert!(!reused);
    assert_eq!(lock.pins(), "dep==1.5\nlocal-pkg==0.1\ntool==1.0\n");
    let (again, reused) = resolve_locked(&lock_path, &reqs, &target(), &opts).unwrap();
    assert!(reused && again == lock);
    let upgrade = ResolveOptions {
        upgrade: true,
        ..opts.clone()
    };
    let requests_before = server.requests().len();
    let (_, reused) = resolve_locked(&lock_path, &reqs, &target(), &upgrade).unwrap();
    assert!(!reused && server.requests().len() > requests_before);
    let other = Target::new("3.12", Arch::X86_64, Libc::Glibc(2, 36)).unwrap();
    assert!(
        !resolve_locked(&lock_path, &reqs, &other, &opts).unwrap().1,
        "a new target re-resolves"
    );

    let store = BlobStore::open(cache.path().join("store")).unwrap();
    let mut install = InstallOptions::python_slim("3.11");
    install.client.cache_dir = Some(cache.path().to_path_buf());
    let built = layers(&lock, &install, &store).unwrap();
    let files = layer_files(&store, &built);
    let site = "usr/local/lib/python3.11/site-packages";
    let get = |p: &str| {
        files
            .get(p)
            .unwrap_or_else(|| panic!("{p} missing; have {:?}", files.keys().collect::<Vec<_>>()))
    };
    assert_eq!(get(&format!("{site}/tool/__init__.py")).0, 0o644);
    assert_eq!(get(&format!("{site}/tool/bin/helper")).0, 0o755);
    let (mode, script) = get("usr/local/bin/run-tool");
    assert_eq!(
        (*mode, script.as_slice()),
        (
            0o755,
            b"#!/usr/local/bin/python3.11\nprint('hi')\n".as_slice()
        )
    );
    let launcher = String::from_utf8(get("usr/local/bin/tool").1.clone()).unwrap();
    assert!(
        launcher.starts_with("#!/usr/local/bin/python3.11\n")
            && launcher.contains("from tool import main"),
        "{launcher}"
    );
    assert!(
        String::from_utf8_lossy(&get("usr/local/bin/tool-gui").1).contains("sys.exit(App.run())")
    );
    assert_eq!(
        get("usr/local/include/python3.11/tool/tool.h").1,
        b"int x;\n"
    );
    assert_eq!(get("usr/local/share/tool/readme").1, b"docs\n");
    assert_eq!(
        get(&format!("{site}/tool-1.0.dist-info/INSTALLER")).1,
        b"cog\n"
    );
    let record =
        String::from_utf8(get(&format!("{site}/tool-1.0.dist-info/RECORD")).1.clone()).unwrap();
    assert!(record.contains("tool/__init__.py,sha256="), "{record}");
    assert!(record.contains("../../../bin/run-tool,sha256="), "{record}");
    assert!(record.contains("../../../bin/tool,sha256="), "{record}");
    assert!(
        record.ends_with("tool-1.0.dist-info/RECORD,,\n"),
        "{record}"
    );
    assert!(!files.keys().any(|k| {
        std::path::Path::new(k)
            .extension()
            .is_some_and(|e| e == "pyc")
    }));
    // The local wheel gets a direct_url.json, as pip writes it; index packages do not.
    let direct: serde_json::Value =
        serde_json::from_slice(&get(&format!("{site}/local_pkg-0.1.dist-info/direct_url.json")).1)
            .unwrap();
    assert!(
        direct["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/dist/{lf}"))
    );
    assert!(direct["archive_info"]["hashes"]["sha256"].is_string());
    assert!(!files.contains_key(&format!("{site}/tool-1.0.dist-info/direct_url.json")));

    // Same lock, same layers (digests), from the key cache; and reproducible from scratch.
    let mut again = layers(&lock, &install, &store).unwrap();
    // Every file has its hash in the lock (the local wheel's too), so every layer is cached.
    assert_eq!(
        again.iter().map(|l| l.cached).collect::<Vec<_>>(),
        [true, true]
    );
    for layer in &mut again {
        layer.cached = false;
    }
    assert_eq!(again, built);
    let fresh = BlobStore::open(cache.path().join("store2")).unwrap();
    let rebuilt = layers(&lock, &install, &fresh).unwrap();
    assert_eq!(
        rebuilt.iter().map(|l| &l.info).collect::<Vec<_>>(),
        built.iter().map(|l| &l.info).collect::<Vec<_>>()
    );
}

/// A hostile index names a file `travpkg-1.0-py3-none-any./../../<outside>/evil.whl` (JSON) or
/// hides the `/` as `%2F` in the link (HTML). Before names were checked, resolution accepted
/// `any./..` as a platform tag and the download was written to `<outside>/evil.whl`.
#[test]
fn index_file_names_cannot_leave_the_cache() {
    let (good, bytes) = wheel(
        "travpkg",
        "1.0",
        ANY,
        &[("travpkg/__init__.py", b"", 0o644)],
        &[],
        None,
    );
    for html in [false, true] {
        let server = Server::start();
        let sha = server.put_file(&good, bytes.clone());
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let climb = "../".repeat(12);
        let evil = format!(
            "travpkg-1.0-py3-none-any./{climb}{}/evil.whl",
            outside.display()
        );
        if html {
            let link = format!("/files/{}", evil.replace('/', "%2F"));
            server.put(&link, "application/octet-stream", bytes.clone());
            let page = format!("<html><body><a href=\"{link}#sha256={sha}\">x</a></body></html>");
            server.put("/simple/travpkg/", "text/html", page.into_bytes());
        } else {
            let body = serde_json::json!({"meta": {"api-version": "1.1"}, "name": "travpkg",
                "files": [{"filename": evil, "url": format!("../../files/{good}"),
                           "hashes": {"sha256": sha}}]});
            server.put(
                "/simple/travpkg/",
                "application/vnd.pypi.simple.v1+json",
                body.to_string().into_bytes(),
            );
        }
        let cache = tmp.path().join("cache");
        let result = resolve(&reqs(&server, "travpkg\n"), &target(), &options(&cache));
        if let Ok(lock) = &result {
            // Whatever resolution says, installing must not write outside the cache.
            let store = BlobStore::open(tmp.path().join("store")).unwrap();
            let mut install = InstallOptions::python_slim("3.11");
            install.client.cache_dir = Some(cache.clone());
            let _ = layers(lock, &install, &store);
        }
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "html={html}: the index wrote outside the cache"
        );
        let e = result.expect_err("a hostile file name must fail resolution");
        assert!(
            matches!(e.innermost(), Error::UnsafeName { .. }),
            "html={html}: {e:?}"
        );
        let text = chain(&e);
        assert!(
            text.contains("evil.whl") && text.contains("path separator"),
            "{text}"
        );
    }
}

#[test]
fn a_lock_with_an_unsafe_file_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("lock.json");
    let lock = serde_json::json!({"version": wheels::lock::LOCK_VERSION, "input_hash": "x",
        "target": serde_json::to_value(target()).unwrap(),
        "packages": [{"name": "x", "version": "1.0", "url": "https://x/x.whl",
                      "filename": "x-1.0-py3-none-any./../../evil.whl"}]});
    std::fs::write(&path, lock.to_string()).unwrap();
    let e = wheels::Lock::read(&path).unwrap_err();
    assert!(chain(&e).contains("path separator"), "{e}");
}
