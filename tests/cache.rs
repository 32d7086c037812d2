//! The registry-backed build cache against the real registry (Debian's `docker-registry`),
//! with two cog caches (`COG_CACHE_DIR`) as two CI runners: what runner A built and pushed with
//! `--cache-to`, runner B, starting empty, builds with `--cache-from` without building or
//! uploading it again; a tampered entry is rejected and rebuilt; two writers at once both keep
//! their entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cog::oci::Platform;
use common::registry::{TestRegistry, busybox_image, layout_of, temp_store};
use common::{copy_dir, ok};

const COG: &str = env!("CARGO_BIN_EXE_cog");

fn hello_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &dir,
    );
    (root, dir)
}

fn cog_command(dir: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(COG);
    command
        .args(args)
        .args(["--progress", "plain"])
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("docker-config"))
        .env("COG_NO_LOAD", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("COG_CACHE_FROM")
        .env_remove("COG_CACHE_TO");
    command
}

/// Runs cog; returns (stdout, stderr) of a run that must succeed.
fn cog(dir: &Path, cache: &Path, args: &[&str]) -> (String, String) {
    let output: Output = cog_command(dir, cache, args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (ok(&output), stderr)
}

/// A registry serving a busybox base at `<host>/base:latest`.
fn registry_with_base() -> (TestRegistry, String) {
    let registry = TestRegistry::start();
    let (dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), dir.path(), "latest");
    registry.push_layout(&layout, "latest", "base:latest", false);
    let base = registry.reference("base:latest");
    (registry, base)
}

/// The blob file names in a cog cache.
fn store_blobs(cache: &Path) -> BTreeSet<String> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn get_json(url: &str) -> serde_json::Value {
    reqwest::blocking::Client::new()
        .get(url)
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap()
}

/// The layer digests (hex) of `<host>/<repo>:<tag>`.
fn layer_hexes(registry: &TestRegistry, repo: &str, tag: &str) -> Vec<String> {
    let manifest = get_json(&format!(
        "http://{}/v2/{repo}/manifests/{tag}",
        registry.host
    ));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap()[7..].to_string())
        .collect()
}

/// Blob uploads the registry logged since `from` (its access log): the `PUT`s that close one,
/// with the digest they name.
fn uploads_since(registry: &TestRegistry, from: usize) -> Vec<String> {
    let log = registry.log();
    log[from..]
        .lines()
        .filter(|l| l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/"))
        .map(str::to_string)
        .collect()
}

fn cache_tags(registry: &TestRegistry, repo: &str) -> Vec<String> {
    let tags = get_json(&format!("http://{}/v2/{repo}/tags/list", registry.host));
    tags["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A checkout of a model with one Python package from PyPI (`six`, a small wheel) at
/// `<root>/<path>`: two runners check it out at different paths, with files of other times.
fn six_checkout(root: &Path, path: &str) -> PathBuf {
    let dir = root.join(path);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  python_version: \"3.11\"\n  python_requirements: requirements.txt\n\
         run: \"predict.py:Predictor\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("requirements.txt"), "six==1.16.0\n").unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/predict.py"),
        dir.join("predict.py"),
    )
    .unwrap();
    dir
}

/// A count of the push's summary line (`N blobs: U uploaded, M mounted, P already present`):
/// the number right before `what` (`" uploaded"`, `" mounted"`).
fn count_before(log: &str, what: &str) -> Option<usize> {
    let line = log.lines().find(|l| l.contains(" blobs: "))?;
    let at = line.find(what)?;
    line[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The wheel downloads a run reported (a task per wheel: `<file>.whl: downloaded`).
fn wheel_downloads(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(".whl") && l.contains("downloaded"))
        .collect()
}

#[test]
fn a_second_runner_builds_nothing_and_uploads_no_layer_again() {
    let (registry, base) = registry_with_base();
    let root = tempfile::tempdir().unwrap();
    // Two CI runners: their own checkout (another path, other file times) and an empty store.
    let checkout_a = six_checkout(root.path(), "runner-a/work/model");
    let (runner_a, runner_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cache_ref = registry.reference("cache:main");

    // Runner A: resolves, downloads, builds everything, pushes, writes the cache.
    let image_a = registry.reference("model:a");
    let (digest_a, log) = cog(
        &checkout_a,
        runner_a.path(),
        &[
            "build",
            "--base",
            &base,
            "-t",
            &image_a,
            "--push",
            "--cache-to",
            &cache_ref,
        ],
    );
    assert!(log.contains(" 0 cached)"), "{log}");
    assert!(!wheel_downloads(&log).is_empty(), "six downloaded: {log}");
    assert!(log.contains("build cache"), "{log}");
    assert!(
        cache_tags(&registry, "cache")
            .iter()
            .any(|t| t.starts_with("main--")),
        "a writer tag: {:?}",
        cache_tags(&registry, "cache")
    );
    let layers = layer_hexes(&registry, "model", "a");
    let base_layers = layer_hexes(&registry, "base", "latest");
    assert!(layers.len() >= base_layers.len() + 2, "{layers:?}");

    // Runner B, empty store, a checkout without the lock: the lock comes from the cache,
    // nothing is built or downloaded, every layer is mounted; only the image config (a blob
    // of no repository yet) is uploaded.
    let checkout_b = six_checkout(root.path(), "runner-b/checkout/x/model");
    let image_b = registry.reference("model-b:latest");
    let before = registry.log().len();
    let (digest_b, log) = cog(
        &checkout_b,
        runner_b.path(),
        &[
            "build",
            "--base",
            &base,
            "-t",
            &image_b,
            "--push",
            "--cache-from",
            &cache_ref,
        ],
    );
    assert_eq!(digest_b, digest_a, "the same manifest digest as runner A's");
    assert!(
        log.contains("cog-requirements.lock.json: taken from the build cache"),
        "{log}"
    );
    assert!(log.contains(", 0 built, "), "no layer built: {log}");
    assert_eq!(
        wheel_downloads(&log),
        Vec::<&str>::new(),
        "no wheel downloaded"
    );
    assert_eq!(count_before(&log, " uploaded"), Some(1), "{log}");
    assert_eq!(count_before(&log, " mounted"), Some(layers.len()), "{log}");
    assert_eq!(layer_hexes(&registry, "model-b", "latest"), layers);
    let uploads = uploads_since(&registry, before);
    assert!(
        uploads
            .iter()
            .all(|u| layers.iter().all(|l| !u.contains(l.as_str()))),
        "no layer uploaded again: {uploads:#?}"
    );
    assert_eq!(uploads.len(), 1, "the config alone: {uploads:#?}");
    let downloaded = store_blobs(runner_b.path());
    assert!(
        layers
            .iter()
            .filter(|l| !base_layers.contains(l))
            .all(|l| !downloaded.contains(l)),
        "the cached layers stay in the registry"
    );

    // Runner B after a code-only change: one layer built, one layer blob uploaded (and the
    // new image config).
    let predict = checkout_b.join("predict.py");
    let code = std::fs::read_to_string(&predict).unwrap() + "\n# a comment\n";
    std::fs::write(&predict, code).unwrap();
    let image_b2 = registry.reference("model-b:v2");
    let before = registry.log().len();
    let (digest_b2, log) = cog(
        &checkout_b,
        runner_b.path(),
        &[
            "build",
            "--base",
            &base,
            "-t",
            &image_b2,
            "--push",
            "--cache-from",
            &cache_ref,
        ],
    );
    assert_ne!(digest_b2, digest_a);
    assert!(log.contains(", 1 built, "), "one layer built: {log}");
    assert_eq!(
        wheel_downloads(&log),
        Vec::<&str>::new(),
        "no wheel downloaded"
    );
    let new_layers: Vec<String> = layer_hexes(&registry, "model-b", "v2")
        .into_iter()
        .filter(|l| !layers.contains(l))
        .collect();
    assert_eq!(new_layers.len(), 1);
    let uploads = uploads_since(&registry, before);
    assert_eq!(
        uploads.len(),
        2,
        "the new layer and the config: {uploads:#?}"
    );
    assert!(
        uploads.iter().any(|u| u.contains(&new_layers[0])),
        "{uploads:#?}"
    );
    assert_eq!(count_before(&log, " uploaded"), Some(2), "{log}");
    assert_eq!(count_before(&log, " mounted"), Some(0), "{log}");
}

#[test]
fn a_tampered_entry_is_rejected_rebuilt_and_reported() {
    let (registry, base) = registry_with_base();
    let (_root, project) = hello_project("hello");
    let (runner_a, runner_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cache_ref = registry.reference("cache:main");
    let (digest_a, _) = cog(
        &project,
        runner_a.path(),
        &["build", "--base", &base, "--cache-to", &cache_ref],
    );

    // Rewrite the writer's manifest with one entry's size changed.
    let tag = cache_tags(&registry, "cache")
        .into_iter()
        .find(|t| t.starts_with("main--"))
        .unwrap();
    let host = &registry.host;
    let mut manifest = get_json(&format!("http://{host}/v2/cache/manifests/{tag}"));
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config = get_json(&format!("http://{host}/v2/cache/blobs/{config_digest}"));
    let entries = config["entries"].as_object_mut().unwrap();
    assert!(entries.len() >= 2, "{entries:?}");
    let (_, tampered) = entries.iter_mut().next().unwrap();
    let size = tampered["size"].as_u64().unwrap();
    tampered["size"] = serde_json::json!(size + 1);
    let tampered_digest = tampered["digest"].as_str().unwrap().to_string();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let new_config = format!("sha256:{}", layers::Digest::of(&config_bytes).hex());
    let client = reqwest::blocking::Client::new();
    let start = client
        .post(format!("http://{host}/v2/cache/blobs/uploads/"))
        .send()
        .unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("http://{host}{location}")
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    client
        .put(format!("{location}{separator}digest={new_config}"))
        .body(config_bytes.clone())
        .send()
        .unwrap()
        .error_for_status()
        .unwrap();
    manifest["config"]["digest"] = serde_json::json!(new_config);
    manifest["config"]["size"] = serde_json::json!(config_bytes.len());
    client
        .put(format!("http://{host}/v2/cache/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .unwrap()
        .error_for_status()
        .unwrap();

    let (digest_b, log) = cog(
        &project,
        runner_b.path(),
        &["build", "--base", &base, "--cache-from", &cache_ref],
    );
    assert!(
        log.contains(&format!("rejected the entry for layer {tampered_digest}")),
        "{log}"
    );
    assert!(log.contains("1 rejected"), "{log}");
    assert!(
        log.contains(", 1 built, "),
        "the rejected layer is built: {log}"
    );
    assert_eq!(digest_b, digest_a, "and the image is the same");
}

#[test]
fn two_runners_writing_one_cache_at_once_keep_both_entries() {
    let (registry, base) = registry_with_base();
    let cache_ref = registry.reference("cache:shared");
    let (_root_x, project_x) = hello_project("x");
    let (_root_y, project_y) = hello_project("y");
    let predict = project_y.join("predict.py");
    let code = std::fs::read_to_string(&predict).unwrap() + "\n# model y\n";
    std::fs::write(&predict, code).unwrap();
    let (runner_x, runner_y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let args = [
        "build",
        "--base",
        base.as_str(),
        "--cache-to",
        cache_ref.as_str(),
    ];
    let spawn = |project: &Path, runner: &Path| {
        cog_command(project, runner, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let x = spawn(&project_x, runner_x.path());
    let y = spawn(&project_y, runner_y.path());
    for child in [x, y] {
        ok(&child.wait_with_output().unwrap());
    }
    let writers = cache_tags(&registry, "cache");
    assert!(!writers.is_empty(), "{writers:?}");

    // Fresh runners find every layer of both models in the cache.
    for project in [&project_x, &project_y] {
        let runner = tempfile::tempdir().unwrap();
        let (_, log) = cog(
            project,
            runner.path(),
            &["build", "--base", &base, "--cache-from", &cache_ref],
        );
        assert!(log.contains(", 0 built, "), "{}: {log}", project.display());
    }
}

#[test]
fn a_tag_that_holds_no_build_cache_is_a_miss() {
    let (registry, base) = registry_with_base();
    let (_root, project) = hello_project("hello");
    let cache_ref = registry.reference("cache:main");
    // Not a cog-rs cache at all: an image under the cache's tag.
    let (_, _) = cog(
        &project,
        tempfile::tempdir().unwrap().path(),
        &["build", "--base", &base, "-t", &cache_ref, "--push"],
    );
    let runner = tempfile::tempdir().unwrap();
    let (_, log) = cog(
        &project,
        runner.path(),
        &["build", "--base", &base, "--cache-from", &cache_ref],
    );
    assert!(log.contains("build cache"), "{log}");
    assert!(log.contains(" 0 cached)"), "everything built: {log}");
}
