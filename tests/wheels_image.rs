//! A built image imports what it installed: a model with numpy and pillow requirements is built
//! by our `cog build` on the default base (assembled from Debian packages, Python 3.11), loaded
//! into the machine's Docker Engine, and its Python imports both at the versions of the lock
//! `cog build` wrote next to cog.yaml.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_warm_then_no_cache, ok, require_tool, run};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// Removes the image from Docker when the test ends, passed or not.
struct RemoveImage(&'static str);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", self.0]).output();
    }
}

/// The locked version of `name` in `cog-requirements.lock.json`.
fn locked_version(lock: &serde_json::Value, name: &str) -> String {
    lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the lock: {lock:#}"))["version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_built_image_imports_numpy_and_pillow_at_the_locked_versions() {
    require_tool("docker", "docker.io");
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("numpy-pillow");
    std::fs::create_dir_all(&project).unwrap();
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    std::fs::copy(hello.join("predict.py"), project.join("predict.py")).unwrap();
    std::fs::write(
        project.join("cog.yaml"),
        "build:\n  python_version: \"3.11\"\n  python_requirements: requirements.txt\n\
         predict: \"predict.py:Predictor\"\n",
    )
    .unwrap();
    std::fs::write(project.join("requirements.txt"), "numpy\npillow\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let tarball = root.path().join("image.tar");
    let tag = "cog-rs-test/wheels-image:numpy-pillow";
    let _cleanup = RemoveImage(tag);

    let build = |extra: &[&str]| {
        Command::new(COG)
            .args(["build", "-t", tag, "--progress", "plain", "--output"])
            .arg(&tarball)
            .args(extra)
            .current_dir(&project)
            .env("COG_CACHE_DIR", cache.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap()
    };
    let cold = build(&[]);
    let digest = ok(&cold);
    assert!(digest.contains("sha256:"), "{digest}");
    // Each wheel download is a task of the progress reporter.
    let log = String::from_utf8_lossy(&cold.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("numpy-") && l.contains(".whl: downloaded")),
        "{log}"
    );
    // Wheel layers included.
    assert_warm_then_no_cache(build, &digest);

    let lock: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("cog-requirements.lock.json")).unwrap(),
    )
    .unwrap();
    let numpy = locked_version(&lock, "numpy");
    let pillow = locked_version(&lock, "pillow");

    let loaded = run("docker", &["load", "-i", tarball.to_str().unwrap()]);
    assert!(loaded.contains(tag), "docker load: {loaded}");
    let printed = run(
        "docker",
        &[
            "run",
            "--rm",
            tag,
            "python",
            "-c",
            "import numpy, PIL; from PIL import Image; \
             a = numpy.arange(12, dtype=numpy.uint8).reshape(3, 4); \
             assert Image.fromarray(a).size == (4, 3); \
             print(numpy.__version__, PIL.__version__)",
        ],
    );
    assert_eq!(printed.trim(), format!("{numpy} {pillow}"));
}
