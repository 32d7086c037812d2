//! Helpers for the integration tests: the machine's mirror, a blob store, and a minimal
//! docker-archive writer (manifest + config over our layers) to `docker load` / `podman load`.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use debian::{Archive, ArchiveConfig};
use layers::{BlobStore, LayerInfo};

/// The mirror apt on this machine uses (deb822 sources), else the default.
pub fn machine_mirror() -> Option<String> {
    let text = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok()?;
    debian::archive::mirror_from_deb822(&text)
}

pub fn config(suite: &str) -> ArchiveConfig {
    let cfg = ArchiveConfig::debian(suite, "amd64");
    match machine_mirror() {
        Some(m) => cfg.with_mirror(&m),
        None => cfg,
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn fetch(suite: &str) -> Archive {
    runtime().block_on(Archive::fetch(config(suite))).unwrap()
}

/// A store shared by the tests of one run (layers are cached by content key).
pub fn store() -> BlobStore {
    BlobStore::open(BlobStore::default_root()).unwrap()
}

/// Writes a docker-archive tarball (also what `podman load` reads) of `layers`.
pub fn docker_archive(
    store: &BlobStore,
    layers: &[LayerInfo],
    env: &[(String, String)],
    entrypoint: &[String],
    tag: &str,
    out: &Path,
) {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": env, "Entrypoint": entrypoint, "Cmd": ["/bin/bash"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", layers::Digest::of(&config).hex());
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}.tar", l.digest.hex()))
        .collect();
    let manifest =
        serde_json::json!([{ "Config": config_name, "RepoTags": [tag], "Layers": layer_names }]);
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut add = |name: &str, data: &mut dyn std::io::Read, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&config_name, &mut &config[..], config.len() as u64);
    for (l, name) in layers.iter().zip(&layer_names) {
        let mut f = std::fs::File::open(store.blob_path(&l.digest)).unwrap();
        add(name, &mut f, l.size);
    }
    let manifest = serde_json::to_vec(&manifest).unwrap();
    add("manifest.json", &mut &manifest[..], manifest.len() as u64);
    b.into_inner().unwrap();
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

pub fn temp_tar(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}
