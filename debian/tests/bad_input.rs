//! Failure cases against a local HTTP server (loopback only) and the real index.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

use common::{config, fetch, runtime};
use debian::{Archive, ArchiveConfig, Error, Lock, LockedPackage, resolve};

/// Serves `files` (path -> body) on 127.0.0.1; anything else is a 404.
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = Arc::clone(&files);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let (status, body) = match files.get(&path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    format!("http://{addr}")
}

fn real_in_release() -> Vec<u8> {
    let cfg = config("bookworm");
    let url = format!("{}/dists/bookworm/InRelease", cfg.sources[0].mirror);
    runtime().block_on(async {
        reqwest::get(&url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    })
}

/// The main suite alone: these tests break the local mirror's copy of it.
fn local_config(mirror: &str, cache: &std::path::Path) -> ArchiveConfig {
    ArchiveConfig::debian_main("bookworm", "amd64")
        .with_mirror(mirror)
        .with_cache_dir(cache)
}

#[test]
fn tampered_release_fails_the_signature_check() {
    let mut release = real_in_release();
    let text = String::from_utf8(release.clone()).unwrap().replacen(
        "Codename: bookworm",
        "Codename: bookwork",
        1,
    );
    release = text.into_bytes();
    let mirror = serve(HashMap::from([(
        "/dists/bookworm/InRelease".to_owned(),
        release,
    )]));
    let cache = tempfile::tempdir().unwrap();
    let err = runtime()
        .block_on(Archive::fetch(local_config(&mirror, cache.path())))
        .unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    assert!(
        err.to_string().contains("/dists/bookworm/InRelease"),
        "{err}"
    );
}

#[test]
fn corrupt_packages_index_fails_the_hash_check() {
    let mirror = serve(HashMap::from([
        ("/dists/bookworm/InRelease".to_owned(), real_in_release()),
        (
            "/dists/bookworm/main/binary-amd64/Packages.xz".to_owned(),
            b"garbage".to_vec(),
        ),
    ]));
    let cache = tempfile::tempdir().unwrap();
    let err = runtime()
        .block_on(Archive::fetch(local_config(&mirror, cache.path())))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::HashMismatch { .. }), "{msg}");
    assert!(msg.contains("main/binary-amd64/Packages.xz"), "{msg}");
}

#[test]
fn unreachable_mirror_names_the_url() {
    let cache = tempfile::tempdir().unwrap();
    let err = runtime()
        .block_on(Archive::fetch(local_config(
            "http://127.0.0.1:9",
            cache.path(),
        )))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot fetch http://127.0.0.1:9/dists/bookworm/InRelease"),
        "{err}"
    );
}

#[test]
fn deb_with_wrong_hash_is_rejected_and_nothing_cached() {
    let mirror = serve(HashMap::from([(
        "/pool/x.deb".to_owned(),
        b"not the deb you locked".to_vec(),
    )]));
    let lock = Lock::new(
        "amd64",
        vec![],
        vec!["x".into()],
        vec![LockedPackage {
            name: "x".into(),
            version: "1.0".parse().unwrap(),
            architecture: "amd64".into(),
            url: format!("{mirror}/pool/x.deb"),
            size: 0,
            sha256: "0".repeat(64),
        }],
    );
    let cache = tempfile::tempdir().unwrap();
    let store = layers::BlobStore::open(cache.path().join("store")).unwrap();
    let opts = debian::InstallOptions {
        cache_dir: cache.path().join("debian"),
        ..Default::default()
    };
    let err = runtime()
        .block_on(debian::install(&lock, b"", &store, &opts))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "hash mismatch for {mirror}/pool/x.deb: expected sha256 0000"
        )),
        "{err}"
    );
    assert!(
        !cache
            .path()
            .join("debian/debs")
            .join(format!("{}.deb", "0".repeat(64)))
            .exists()
    );
}

#[test]
fn unknown_and_unsatisfiable_against_the_real_index() {
    let archive = fetch("bookworm");
    let err = resolve(&archive, &["pyhton3"], b"", "amd64")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("unable to locate package pyhton3 (did you mean: "),
        "{err}"
    );
    assert!(err.contains("python3"), "{err}");
    let err = resolve(&archive, &["libc6=1.0-1"], b"", "amd64")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("version 1.0-1 of package libc6 is not in the archive"),
        "{err}"
    );
}
