//! The update suites: `-updates` and `-security` are read beside the release (their newer
//! versions win), and an update suite a mirror lacks is skipped, while a missing main suite is
//! an error.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;

use common::{config, runtime};
use debian::archive::DEBIAN_SECURITY_MIRROR;
use debian::{Archive, ArchiveConfig};

/// A mirror that answers 404 to everything.
fn empty_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn bookworm_reads_updates_and_security_and_their_versions_win() {
    let cfg = config("bookworm");
    let suites: Vec<&str> = cfg.sources.iter().map(|s| s.suite.as_str()).collect();
    assert_eq!(
        suites,
        ["bookworm", "bookworm-updates", "bookworm-security"]
    );
    let archive = runtime().block_on(Archive::fetch(cfg)).unwrap();
    // Some package's newest version comes from the security archive, and it is newer than
    // the release's version of the same package.
    let from_security: Vec<_> = archive
        .index
        .candidates()
        .filter(|p| &*p.mirror == DEBIAN_SECURITY_MIRROR)
        .collect();
    assert!(
        !from_security.is_empty(),
        "no package of bookworm-security is a candidate"
    );
    let upgraded = from_security.iter().find(|p| {
        archive
            .index
            .versions(&p.name)
            .iter()
            .any(|older| &*older.mirror != DEBIAN_SECURITY_MIRROR && older.version < p.version)
    });
    assert!(
        upgraded.is_some(),
        "no security update supersedes a release version"
    );
}

#[test]
fn a_missing_update_suite_is_skipped_but_a_missing_release_is_an_error() {
    let mirror = empty_mirror();
    let cache = tempfile::tempdir().unwrap();
    let only_updates = ArchiveConfig {
        sources: ArchiveConfig::debian("bookworm", "amd64")
            .with_mirror(&mirror)
            .with_security_mirror(&mirror)
            .sources
            .into_iter()
            .filter(|s| s.optional)
            .collect(),
        arch: "amd64".into(),
        cache_dir: cache.path().to_owned(),
    };
    assert_eq!(only_updates.sources.len(), 2);
    let archive = runtime().block_on(Archive::fetch(only_updates)).unwrap();
    assert!(archive.index.is_empty());

    let release = ArchiveConfig::debian_main("bookworm", "amd64")
        .with_mirror(&mirror)
        .with_cache_dir(cache.path());
    let err = runtime()
        .block_on(Archive::fetch(release))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/dists/bookworm/Release"), "{err}");
    assert!(err.contains("404"), "{err}");
}

#[test]
fn mirrors_and_suites_per_distribution() {
    let debian = ArchiveConfig::debian("trixie", "arm64").with_mirror("http://m.example/debian/");
    let got: HashMap<&str, (&str, bool)> = debian
        .sources
        .iter()
        .map(|s| (s.suite.as_str(), (s.mirror.as_str(), s.optional)))
        .collect();
    assert_eq!(got["trixie"], ("http://m.example/debian", false));
    assert_eq!(got["trixie-updates"], ("http://m.example/debian", true));
    // A Debian mirror does not carry the security suite: it keeps its own mirror.
    assert!(got["trixie-security"].1);
    assert_ne!(got["trixie-security"].0, "http://m.example/debian");

    assert_eq!(ArchiveConfig::debian("sid", "amd64").sources.len(), 1);

    let ubuntu = ArchiveConfig::ubuntu("noble", "amd64").with_mirror("http://u.example/ubuntu");
    let suites: Vec<(&str, &str)> = ubuntu
        .sources
        .iter()
        .map(|s| (s.suite.as_str(), s.mirror.as_str()))
        .collect();
    assert_eq!(
        suites,
        [
            ("noble", "http://u.example/ubuntu"),
            ("noble-updates", "http://u.example/ubuntu"),
            ("noble-security", "http://u.example/ubuntu"),
        ]
    );
}
