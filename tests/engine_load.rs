//! `cog build -t NAME` leaves NAME where users run images: streamed into the Docker daemon
//! through its image-load API when one answers, else into podman's storage; `--no-load` keeps it
//! in cog's store only. A second build of the same image loads nothing, and `cog run` of a
//! built project finds the image already there.
//!
//! Needs Docker (the daemon running) and podman (`scripts/install-deps.sh`), the wheels in
//! `dist/` for `cog run` (`python/build-wheels.sh`), and the network on a cold cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_dir, failed, ok, require_tool};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// The cache `run_e2e` uses too: the hello build is warm after either suite ran once.
fn cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run_e2e-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hello() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("hello");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &dir,
    );
    (root, dir)
}

fn cog(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(COG);
    command
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache())
        .env("BUILDKIT_PROGRESS", "plain")
        .env_remove("COG_RUNTIME")
        .env_remove("COG_NO_LOAD")
        .env_remove("DOCKER_HOST");
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `PROGRAM image inspect --format FORMAT NAME`, or `None` when it does not know NAME.
fn inspect(program: &str, name: &str, format: &str) -> Option<String> {
    let output = Command::new(program)
        .args(["image", "inspect", "--format", format, name])
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn remove(program: &str, name: &str) {
    let _ = Command::new(program).args(["rmi", "-f", name]).output();
}

/// A name no other test uses, removed from the engine when dropped.
struct Tag {
    program: &'static str,
    name: String,
}

impl Tag {
    fn new(program: &'static str, what: &str) -> Self {
        let name = format!("cog-engine-test-{what}-{}:v1", std::process::id());
        remove(program, &name);
        Self { program, name }
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        remove(self.program, &self.name);
    }
}

#[test]
fn a_built_image_runs_with_docker_run_and_is_not_loaded_twice() {
    require_tool("docker", "docker.io");
    let (_root, dir) = hello();
    let tag = Tag::new("docker", "docker");
    let built = cog(&dir, &["build", "-t", &tag.name], &[]);
    let digest = ok(&built);
    assert!(digest.starts_with("sha256:"), "{digest}");
    let log = stderr(&built);
    // Loaded, or only tagged when Docker has this image already (built by an earlier test).
    assert!(
        log.contains(&format!("Loaded {} into docker", tag.name))
            || log.contains(&format!("docker already has {}", tag.name)),
        "{log}"
    );

    // `docker inspect` and `docker run` of the name work, and the labels are the image's.
    let labels = inspect("docker", &tag.name, "{{json .Config.Labels}}").expect("docker has it");
    assert!(labels.contains("run.cog.config"), "{labels}");
    let out = common::run(
        "docker",
        &[
            "run",
            "--rm",
            &tag.name,
            "python",
            "-c",
            "print('ran in docker')",
        ],
    );
    assert_eq!(out.trim(), "ran in docker");

    // The daemon's image is ours, byte for byte: its id is our config digest.
    let id = inspect("docker", &tag.name, "{{.Id}}").unwrap();
    let again = cog(
        &dir,
        &["build", "-t", &tag.name],
        &[("COG_LOG", "cog=debug")],
    );
    assert_eq!(ok(&again), digest);
    let log = stderr(&again);
    assert!(!log.contains("Loaded "), "loaded again:\n{log}");
    assert!(log.contains("already has"), "{log}");
    assert_eq!(inspect("docker", &tag.name, "{{.Id}}").unwrap(), id);

    // The same image under a new name is tagged, not loaded.
    let other = Tag::new("docker", "docker-other");
    let tagged = cog(&dir, &["build", "-t", &other.name], &[]);
    ok(&tagged);
    assert!(!stderr(&tagged).contains("Loaded "), "{}", stderr(&tagged));
    assert_eq!(inspect("docker", &other.name, "{{.Id}}").unwrap(), id);
}

#[test]
fn a_code_only_rebuild_sends_docker_only_the_new_layer() {
    require_tool("docker", "docker.io");
    let (_root, dir) = hello();
    let tag = Tag::new("docker", "code-only");
    ok(&cog(&dir, &["build", "-t", &tag.name], &[]));
    let before = inspect("docker", &tag.name, "{{json .RootFS.Layers}}").unwrap();

    let predict = dir.join("predict.py");
    let code = std::fs::read_to_string(&predict).unwrap();
    std::fs::write(
        &predict,
        format!("{code}\n# changed {}\n", std::process::id()),
    )
    .unwrap();
    let rebuilt = cog(&dir, &["build", "-t", &tag.name], &[]);
    ok(&rebuilt);
    let log = stderr(&rebuilt);
    // Only the source layer and the schema layer above it are sent; the layers below, which
    // Docker has under the previous build, are not.
    let prefix = format!("Loaded {} into docker (", tag.name);
    let counts = log
        .lines()
        .find_map(|line| line.split_once(&prefix).map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("loaded in part:\n{log}"));
    let words: Vec<&str> = counts.split_whitespace().collect();
    let (sent, total): (usize, usize) = (words[0].parse().unwrap(), words[2].parse().unwrap());
    assert!(sent <= 2 && total > sent, "{log}");
    let after = inspect("docker", &tag.name, "{{json .RootFS.Layers}}").unwrap();
    let layers = |json: &str| serde_json::from_str::<Vec<String>>(json).unwrap();
    let (before, after) = (layers(&before), layers(&after));
    assert_eq!(before.len(), total);
    assert_eq!(after.len(), total);
    assert_eq!(before[..total - sent], after[..total - sent]);
    assert_ne!(before[total - sent..], after[total - sent..]);
    // What Docker assembled runs the new code.
    let out = common::run(
        "docker",
        &["run", "--rm", &tag.name, "tail", "-n1", "/src/predict.py"],
    );
    assert_eq!(out.trim(), format!("# changed {}", std::process::id()));
}

#[test]
fn no_load_keeps_the_image_in_cogs_store_only() {
    require_tool("docker", "docker.io");
    let (_root, dir) = hello();
    let tag = Tag::new("docker", "noload");
    let built = cog(&dir, &["build", "--no-load", "-t", &tag.name], &[]);
    ok(&built);
    assert!(!stderr(&built).contains("Loaded "), "{}", stderr(&built));
    assert_eq!(inspect("docker", &tag.name, "{{.Id}}"), None);
}

#[test]
fn without_a_docker_daemon_the_image_goes_to_podman() {
    require_tool("podman", "podman");
    let (_root, dir) = hello();
    let tag = Tag::new("podman", "podman");
    let missing = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/docker.sock", missing.path().display());
    let built = cog(
        &dir,
        &["build", "-t", &tag.name],
        &[("DOCKER_HOST", socket.as_str())],
    );
    ok(&built);
    // Loaded, or only tagged when podman has this image already (an earlier test built it):
    // either way podman runs it by name.
    let out = common::run(
        "podman",
        &[
            "run",
            "--rm",
            &tag.name,
            "python",
            "-c",
            "print('ran in podman')",
        ],
    );
    assert_eq!(out.trim(), "ran in podman");
}

#[test]
fn cog_flags_cog_rs_does_not_implement_are_refused_by_name() {
    let (_root, dir) = hello();
    for (args, flag) in [
        (vec!["build", "--precompile"], "--precompile"),
        (vec!["build", "--strip"], "--strip"),
        (vec!["build", "--dockerfile", "Dockerfile"], "--dockerfile"),
        (vec!["push", "--timestamp", "1", "r8.im/x/y"], "--timestamp"),
        (vec!["serve", "--playground"], "--playground"),
        (vec!["--profile", "build"], "--profile"),
    ] {
        let output = cog(&dir, &args, &[]);
        let err = failed(&output);
        assert!(
            err.contains(&format!("{flag} ")) || err.contains(&format!("{flag}=")),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("not supported") || err.contains("cannot"),
            "{args:?}: {err}"
        );
    }
}
