//! The exported tarball is at once an OCI archive and a docker-archive: docker, podman and skopeo
//! (both transports) accept the same file; umoci unpacks our OCI layout; and we import what
//! `docker save` and skopeo write. Needs Docker, podman, skopeo, umoci and busybox-static.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use cog::oci::{self, BuiltImage, LocalSource, Platform};
use common::registry::{busybox_image, temp_store};
use common::{require_tool, run};
use layers::BlobStore;

/// A unique name, so parallel runs and leftovers do not collide.
fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("cog-rs-test/{prefix}:{}-{nanos}", std::process::id())
}

fn exported(dir: &Path, store: &BlobStore, name: &str) -> (BuiltImage, PathBuf) {
    let image = busybox_image(store, &Platform::linux_amd64());
    let tar = dir.join("image.tar");
    oci::export_tarball(store, &image.image_ref(), &tar, &[name.to_string()]).unwrap();
    (image, tar)
}

/// Removes an image from a container engine when the test ends, pass or fail.
struct Cleanup(&'static str, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new(self.0)
            .args(["rmi", "-f", &self.1])
            .output();
    }
}

#[test]
fn docker_loads_and_runs_the_tarball() {
    require_tool("docker", "docker.io");
    let (dir, store) = temp_store();
    let name = unique_name("docker");
    let (image, tar) = exported(dir.path(), &store, &name);
    let _cleanup = Cleanup("docker", name.clone());
    let loaded = run("docker", &["load", "-i", tar.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!("Loaded image: {name}")),
        "{loaded}"
    );
    let id = run(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", &name],
    );
    assert_eq!(
        id.trim(),
        image.config_digest.to_string(),
        "docker's image id is our config digest"
    );
    let out = run(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "sh",
            "-c",
            "echo hello from $(cat /etc/marker)",
        ],
    );
    assert_eq!(out.trim(), "hello from linux/amd64");

    // And what `docker save` writes (uncompressed layers, its own layout) imports as a base.
    let saved = dir.path().join("saved.tar");
    run("docker", &["save", "-o", saved.to_str().unwrap(), &name]);
    let (_d, store2) = temp_store();
    let source = LocalSource::parse(&format!("docker-archive:{}", saved.display()))
        .unwrap()
        .unwrap();
    let base = source.import(&store2, &Platform::linux_amd64()).unwrap();
    assert_eq!(base.config, image.config);
    assert_eq!(base.layers.len(), 1);
    let layer = &base.layers[0];
    assert_eq!(layer.media_type, "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(
        layer.digest, layer.diff_id,
        "an uncompressed layer's digest is its diff_id"
    );
    assert_eq!(layer.diff_id, image.config.rootfs.diff_ids[0]);
    assert!(store2.has(&layer.digest));
}

#[test]
fn podman_loads_the_tarball() {
    require_tool("podman", "podman");
    let (dir, store) = temp_store();
    let name = unique_name("podman");
    let (image, tar) = exported(dir.path(), &store, &name);
    let _cleanup = Cleanup("podman", name.clone());
    let loaded = run("podman", &["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains(&name), "{loaded}");
    let id = run(
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", &name],
    );
    assert_eq!(
        format!("sha256:{}", id.trim()),
        image.config_digest.to_string()
    );
    let out = run(
        "podman",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "sh",
            "-c",
            "cat /etc/marker",
        ],
    );
    assert_eq!(out.trim(), "linux/amd64");
}

#[test]
fn skopeo_reads_it_as_oci_archive_and_as_docker_archive() {
    require_tool("skopeo", "skopeo");
    let (dir, store) = temp_store();
    let (image, tar) = exported(dir.path(), &store, "model:v1");
    // skopeo shows the blob digest for an OCI archive, the diff_id for a docker-archive (whose
    // layers it treats as uncompressed tars, decompressing ours on the fly).
    let layer = &image.manifest.layers[0].digest;
    let diff_id = &image.config.rootfs.diff_ids[0];
    for (transport, shown) in [("oci-archive", layer), ("docker-archive", diff_id)] {
        let out = run(
            "skopeo",
            &["inspect", &format!("{transport}:{}", tar.display())],
        );
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["Architecture"], "amd64", "{transport}: {out}");
        assert_eq!(json["Layers"][0], shown.to_string(), "{transport}: {out}");
        assert_eq!(json["Env"][0], "PATH=/bin", "{transport}: {out}");
    }
    let out = run(
        "skopeo",
        &["inspect", &format!("oci-archive:{}:v1", tar.display())],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["Digest"],
        image.manifest_digest.to_string(),
        "the manifest is passed through unchanged"
    );

    // What skopeo writes as an OCI archive comes back into our store.
    let copied = dir.path().join("copied.tar");
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            &format!("docker-archive:{}", tar.display()),
            &format!("oci-archive:{}:copied", copied.display()),
        ],
    );
    let (_d, store2) = temp_store();
    let base =
        oci::read_oci_archive(&store2, &copied, Some("copied"), &Platform::linux_amd64()).unwrap();
    assert_eq!(base.config.rootfs.diff_ids, image.config.rootfs.diff_ids);
    assert!(base.layers.iter().all(|l| store2.has(&l.digest)));
}

#[test]
fn umoci_unpacks_our_layout() {
    require_tool("umoci", "umoci");
    let (dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = dir.path().join("layout");
    oci::write_layout(&store, &image.image_ref(), &layout, "v1").unwrap();
    let bundle = dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:v1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/marker")).unwrap(),
        "linux/amd64"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"][0], "sh");
}
