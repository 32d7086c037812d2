//! Real sdist-only packages from PyPI (pure Python, setup.py + setuptools), resolved and built
//! by a PEP 517 frontend on the host's python3 (needs PyPI, as `agreement.rs` does).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::io::Read;
use std::sync::Arc;

use common::builder::HostBuilder;
use layers::BlobStore;
use wheels::install::{InstallOptions, layers};
use wheels::resolve::{ResolveOptions, resolve};
use wheels::{Arch, Libc, Requirements, Target};

#[test]
fn fire_and_docopt_build_from_their_sdists() {
    let cache = tempfile::tempdir().unwrap();
    let builder = Arc::new(HostBuilder::default());
    let options = ResolveOptions {
        cache_dir: Some(cache.path().join("cache")),
        builder: Some(builder.clone()),
        ..ResolveOptions::default()
    };
    let reqs: Requirements = "fire==0.6.0\ndocopt==0.6.2\n".parse().unwrap();
    let target = Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 36)).unwrap();
    let lock = resolve(&reqs, &target, &options).unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"fire") && names.contains(&"docopt") && names.contains(&"termcolor"),
        "{names:?}"
    );
    for name in ["fire", "docopt"] {
        let p = lock.packages.iter().find(|p| p.name == name).unwrap();
        let build = p
            .build
            .as_ref()
            .unwrap_or_else(|| panic!("{name} is built from source"));
        assert!(p.filename.ends_with(".tar.gz"), "{}", p.filename);
        assert!(p.sha256.is_some());
        assert!(build.requirements.iter().any(|r| r.name == "setuptools"));
    }
    let store = BlobStore::open(cache.path().join("store")).unwrap();
    let mut install = InstallOptions::python_slim("3.11");
    install.client = options.client_options(&reqs);
    install.builder = Some(builder.clone());
    let built = layers(&lock, &install, &store).unwrap_or_else(|e| panic!("{e:?}"));
    let mut paths = Vec::new();
    for l in &built {
        let blob = std::fs::File::open(store.blob_path(&l.info.digest)).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            paths.push(entry.path().unwrap().to_string_lossy().into_owned());
            std::io::copy(&mut entry.by_ref().take(0), &mut std::io::sink()).unwrap();
        }
    }
    let site = "usr/local/lib/python3.11/site-packages";
    assert!(
        paths.contains(&format!("{site}/fire/__init__.py")),
        "{paths:?}"
    );
    assert!(paths.contains(&format!("{site}/docopt.py")), "{paths:?}");
    assert_eq!(builder.wheels_built(), 2);
}
