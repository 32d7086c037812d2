//! Fault injection (issue 22): a registry that fails a fifth of all requests (500s, reset
//! connections, stalls longer than the client waits) for pulls and pushes, and `kill -9` at
//! random points of build-and-push with a rerun. Both must end at the digests a clean run
//! gives, with a store that verifies and no temp bytes left.
//!
//! The kill points and the failing requests follow a seed: `COG_FAULT_SEED=N` reproduces a
//! run (the seed is printed on failure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cog::oci::{self, ImageConfig};
use common::proxy::{Chaos, FrontOptions, FrontProxy};
use common::registry::{TestRegistry, busybox_layer, layout_of, temp_store};
use common::{copy_dir, noise, ok, require_tool, run};
use layers::{Compression, LayerOptions, LayerWriter, bytes_under};

const COG: &str = env!("CARGO_BIN_EXE_cog");

fn seed() -> u64 {
    std::env::var("COG_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed)
}

/// A busybox base with a second, 8 MiB layer (so that blob downloads can be cut halfway),
/// pushed to `registry` as `base/chaos:latest`.
fn push_base(registry: &TestRegistry) {
    let (dir, store) = temp_store();
    let busybox = busybox_layer(&store, "faults");
    let mut writer = LayerWriter::new(&store, &LayerOptions::new(Compression::gzip())).unwrap();
    let data = noise(8 << 20, 42);
    writer.append_dir("data", 0o755).unwrap();
    writer
        .append_file(
            "data/blob.bin",
            0o644,
            data.len() as u64,
            &mut data.as_slice(),
        )
        .unwrap();
    let extra = writer.finish().unwrap();
    let mut config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    config.container_config_mut().env = Some(vec!["PATH=/bin".into()]);
    let image = oci::assemble(&store, &config, &[busybox, extra], BTreeMap::new()).unwrap();
    let layout = layout_of(&store, &image.image_ref(), dir.path(), "latest");
    registry.push_layout(&layout, "latest", "base/chaos:latest", false);
}

/// The hello example with 4 MiB of weights, copied from what git tracks.
fn project(root: &Path) -> PathBuf {
    let dir = root.join("hello");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &dir,
    );
    std::fs::File::create(dir.join("weights.bin"))
        .unwrap()
        .write_all(&noise(4 << 20, 7))
        .unwrap();
    dir
}

fn command(dir: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(COG);
    command
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("docker-config"))
        .env("COG_NO_LOAD", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("COG_PUSH_CONCURRENCY");
    command
}

fn cog(dir: &Path, cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(dir, cache, args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn verified(dir: &Path, cache: &Path) {
    let text = ok(&cog(dir, cache, &["cache", "verify"], &[]));
    assert!(text.contains("match their digests"), "{text}");
    assert_eq!(bytes_under(&cache.join("tmp")), 0, "temp bytes left");
}

#[test]
fn a_registry_failing_a_fifth_of_requests_gives_the_clean_digests() {
    require_tool("skopeo", "skopeo");
    let seed = seed();
    let registry = TestRegistry::start();
    push_base(&registry);
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            chaos: Some(Chaos {
                percent: 20,
                seed,
                stall: Duration::from_secs(8),
                per_request: 2,
            }),
            ..FrontOptions::default()
        },
    );
    let root = tempfile::tempdir().unwrap();
    let dir = project(root.path());
    let base = format!("{}/base/chaos:latest", front.host);

    // A clean pull, build and push through the front.
    let clean_cache = root.path().join("clean");
    let clean_target = format!("{}/me/clean:v1", front.host);
    let clean = ok(&cog(
        &dir,
        &clean_cache,
        &["push", &clean_target, "--base", &base],
        &[],
    ));

    // The same from an empty cache while the registry fails a fifth of the requests. The
    // client waits 2 s for an answer, so every stall (8 s) is a timeout and a retry.
    front.set_chaos(true);
    let chaos_cache = root.path().join("chaos");
    let chaos_target = format!("{}/me/chaos:v1", front.host);
    let started = Instant::now();
    let out = cog(
        &dir,
        &chaos_cache,
        &["push", &chaos_target, "--base", &base],
        &[("COG_REGISTRY_TIMEOUT", "2")],
    );
    // More pulls (and builds) from empty caches, until blob downloads have met a cut and a
    // stall halfway (a fifth of a few requests may take a few runs).
    let cut = |faults: &[String], kind: &str, blobs: bool| {
        faults
            .iter()
            .any(|f| f.starts_with(&format!("{kind} GET")) && (!blobs || f.contains("/blobs/")))
    };
    let covered = |faults: &[String]| {
        (cut(faults, "Reset", true) || cut(faults, "Stall", true)) && cut(faults, "Stall", false)
    };
    let mut pulled = Vec::new();
    for n in 0..8 {
        if covered(&front.faults()) {
            break;
        }
        let cache = root.path().join(format!("pull-{n}"));
        pulled.push(cog(
            &dir,
            &cache,
            &["build", "--base", &base],
            &[("COG_REGISTRY_TIMEOUT", "2")],
        ));
    }
    front.set_chaos(false);
    let faults = front.faults();
    for build in &pulled {
        assert!(
            build.status.success(),
            "seed {seed}: a build failed with faults {faults:#?}:\n{}",
            String::from_utf8_lossy(&build.stderr)
        );
    }
    assert!(
        out.status.success(),
        "seed {seed}: the push failed after {:?} with faults {faults:#?}:\n{}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(digest, clean, "seed {seed}: faults {faults:#?}");
    for build in &pulled {
        assert_eq!(String::from_utf8_lossy(&build.stdout).trim(), clean);
    }
    for kind in ["ServerError", "Reset", "Stall"] {
        assert!(
            faults.iter().any(|f| f.starts_with(kind)),
            "seed {seed}: no {kind} injected: {faults:#?}"
        );
    }
    assert!(
        covered(&faults),
        "seed {seed}: no blob download was cut and stalled halfway: {faults:#?}"
    );
    assert!(
        faults
            .iter()
            .any(|f| !f.contains(" GET ") && !f.contains(" HEAD ")),
        "seed {seed}: no upload was failed: {faults:#?}"
    );
    let inspect = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/me/chaos:v1", registry.host),
        ],
    );
    assert!(inspect.contains(&digest), "{inspect}");
    eprintln!("seed {seed}: {} faults: {faults:#?}", faults.len());
    verified(&dir, &chaos_cache);
}

#[test]
fn build_and_push_killed_at_random_points_complete_on_rerun_with_the_clean_digest() {
    require_tool("skopeo", "skopeo");
    let seed = seed();
    let registry = TestRegistry::start();
    push_base(&registry);
    let root = tempfile::tempdir().unwrap();
    let dir = project(root.path());
    let base = format!("{}/base/chaos:latest", registry.host);
    let target = format!("{}/me/killed:v1", registry.host);
    let args = ["push", &target, "--base", &base];

    // The clean run, timed: kill points fall inside it.
    let clean_cache = root.path().join("clean");
    let clean_target = format!("{}/me/clean:v1", registry.host);
    let started = Instant::now();
    let clean = ok(&cog(
        &dir,
        &clean_cache,
        &["push", &clean_target, "--base", &base],
        &[],
    ));
    let span = started.elapsed().as_millis().max(50) as u64;

    let cache = root.path().join("killed");
    let mut state = seed | 1;
    let mut delays = Vec::new();
    for _ in 0..5 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = state % span;
        delays.push(delay);
        let mut child = command(&dir, &cache, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL: no destructor, no handler runs.
        let _ = child.wait();
    }
    let out = cog(&dir, &cache, &args, &[]);
    assert!(
        out.status.success(),
        "seed {seed}, kills at {delays:?} ms of {span} ms:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(digest, clean, "seed {seed}, kills at {delays:?} ms");
    eprintln!("seed {seed}: kills at {delays:?} ms of {span} ms");
    let inspect = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ],
    );
    assert!(inspect.contains(&digest), "{inspect}");
    verified(&dir, &cache);
}
