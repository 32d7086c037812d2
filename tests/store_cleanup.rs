//! The store cleans up after builds that were killed: `kill -9` at random points of five
//! builds, then one build that finishes, leaves no temp bytes; `cog cache verify` finds every
//! blob intact, and `cog cache` shows, prunes and repairs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cog::oci::Platform;
use common::copy_dir;
use common::registry::{busybox_image, layout_of, temp_store};
use common::{failed, ok};
use layers::bytes_under;

const COG: &str = env!("CARGO_BIN_EXE_cog");

fn command(dir: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(COG);
    command
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH");
    command
}

fn cog(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    command(dir, cache, args).output().unwrap()
}

/// The hello example with 96 MiB of incompressible weights, so a build writes for a while.
fn heavy_project(root: &Path) -> PathBuf {
    let dir = root.join("heavy");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &dir,
    );
    let mut file = std::fs::File::create(dir.join("weights.bin")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..96 {
        for byte in &mut chunk {
            // xorshift: incompressible, deterministic.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        file.write_all(&chunk).unwrap();
    }
    dir
}

#[test]
fn killed_builds_leave_no_temp_bytes_after_the_next_build() {
    let (base_dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), base_dir.path(), "latest");
    let base = format!("oci:{}:latest", layout.display());
    let root = tempfile::tempdir().unwrap();
    let project = heavy_project(root.path());
    let cache = root.path().join("cache");
    let args = ["build", "--no-cache", "--base", &base, "-t", "heavy:1"];

    // Kill points spread over the write: when the build's temp files hold 1, 8, 24, 48 and 80
    // MiB (whatever the machine's load, each kill lands mid-write).
    let mut left_behind = 0;
    for mib in [1u64, 8, 24, 48, 80] {
        let mut child = command(&project, &cache, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while bytes_under(&cache.join("tmp")) < mib << 20
            && child.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SIGKILL: no destructor, no handler runs.
        let _ = child.kill();
        let _ = child.wait();
        left_behind = left_behind.max(bytes_under(&cache.join("tmp")));
    }
    assert!(
        left_behind > 0,
        "no kill landed mid-write: the test proves nothing (make the project heavier)"
    );

    let digest = ok(&cog(&project, &cache, &args));
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(bytes_under(&cache.join("tmp")), 0, "temp bytes survived");

    // Every blob is intact, and the same build gives the same digest.
    let verify = cog(&project, &cache, &["cache", "verify"]);
    let text = ok(&verify);
    assert!(text.contains("match their digests"), "{text}");
    assert_eq!(ok(&cog(&project, &cache, &args)), digest);
}

#[test]
fn cache_verify_finds_and_repairs_a_flipped_blob() {
    let (base_dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), base_dir.path(), "latest");
    let base = format!("oci:{}:latest", layout.display());
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("hello");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &project,
    );
    let cache = root.path().join("cache");
    let build = ["build", "--base", &base, "-t", "hello:1"];
    let digest = ok(&cog(&project, &cache, &build));

    // Flip one byte of the largest blob.
    let blobs = cache.join("blobs/sha256");
    let victim = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();

    let found = cog(&project, &cache, &["cache", "verify"]);
    assert!(!found.status.success());
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(
        text.contains(&format!("found corrupt blob: {}", victim.display())),
        "{text}"
    );
    let repaired = ok(&cog(&project, &cache, &["cache", "verify", "--repair"]));
    assert!(repaired.contains("removed corrupt blob"), "{repaired}");
    assert!(!victim.exists());
    ok(&cog(&project, &cache, &["cache", "verify"]));

    // The next build writes what was removed, to the same digest.
    assert_eq!(ok(&cog(&project, &cache, &build)), digest);

    let info = ok(&cog(&project, &cache, &["cache", "info"]));
    assert!(info.contains("blobs") && info.contains("total"), "{info}");
    ok(&cog(&project, &cache, &["cache", "prune", "--all"]));
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    let err = failed(&cog(&project, &cache, &["cache", "verify", "--bogus"]));
    assert!(err.contains("--bogus"), "{err}");
}
