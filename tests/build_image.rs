//! `cog build` end to end, with no daemon: a base image the suite makes itself is served by the
//! real registry (Debian's `docker-registry`), the hello example is built against it, and the
//! result is checked with skopeo, umoci, podman and the machine's Docker Engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cog::oci::Platform;
use common::proxy::{FrontOptions, FrontProxy};
use common::registry::{TestRegistry, busybox_image, layout_of, temp_store};
use common::{copy_dir, failed, ok, require_tool, run};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// A copy of `examples/hello` in a fresh temp dir, under the directory name `name`.
fn hello_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &dir,
    );
    (root, dir)
}

fn cog(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(COG)
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("docker-config"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

/// A registry serving a busybox base at `<host>/base:latest`.
fn registry_with_base() -> (TestRegistry, String) {
    let registry = TestRegistry::start();
    push_base(&registry);
    let base = registry.reference("base:latest");
    (registry, base)
}

fn push_base(registry: &TestRegistry) {
    let (dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), dir.path(), "latest");
    registry.push_layout(&layout, "latest", "base:latest", false);
}

/// A busybox base as an OCI layout in a temp dir, and its `oci:DIR:TAG` reference.
fn local_base() -> (tempfile::TempDir, String) {
    let (dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), dir.path(), "latest");
    let base = format!("oci:{}:latest", layout.display());
    (dir, base)
}

/// The blob file names in a cog cache.
fn store_blobs(cache: &Path) -> BTreeSet<std::ffi::OsString> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

/// Digests of the blobs a manifest references (config and layers), read from an OCI layout.
fn manifest_blobs(layout: &Path) -> (String, BTreeSet<String>) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (digest, layers)
}

#[test]
fn build_against_the_real_registry_and_check_with_every_tool() {
    for (tool, package) in [
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("umoci", "umoci"),
        ("podman", "podman"),
        ("docker", "docker.io"),
    ] {
        require_tool(tool, package);
    }
    let (_registry, base) = registry_with_base();
    let (_root, project) = hello_project("hello");
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tarball = out.path().join("hello.tar");
    let layout = out.path().join("layout");
    let tag = "cog-rs-test/hello:build-image";

    let digest = ok(&cog(
        &project,
        cache.path(),
        &[
            "build",
            "--base",
            &base,
            "-t",
            tag,
            "--output",
            tarball.to_str().unwrap(),
        ],
    ));
    assert!(digest.starts_with("sha256:"), "{digest}");
    ok(&cog(
        &project,
        cache.path(),
        &[
            "build",
            "--base",
            &base,
            "-t",
            tag,
            "--output",
            layout.to_str().unwrap(),
        ],
    ));

    // skopeo reads the one tarball both as an OCI archive and as a docker-archive.
    for transport in ["oci-archive", "docker-archive"] {
        let inspect = run(
            "skopeo",
            &["inspect", &format!("{transport}:{}", tarball.display())],
        );
        let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        assert_eq!(
            inspect["Labels"]["run.cog.version"],
            env!("CARGO_PKG_VERSION"),
            "{transport}"
        );
        assert!(
            inspect["Labels"]["run.cog.config"]
                .as_str()
                .unwrap()
                .contains("predict.py:Predictor")
        );
        assert!(
            inspect["Labels"]["run.cog.openapi_schema"]
                .as_str()
                .unwrap()
                .contains("\"openapi\"")
        );
        // busybox base (1), the cog SDK and coglet wheels (one layer each), source, schema.
        assert_eq!(
            inspect["Layers"].as_array().unwrap().len(),
            5,
            "base + runtime wheels + source + schema ({transport})"
        );
        let env: Vec<&str> = inspect["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            env.contains(&"COG_PREDICT_TYPE_STUB=predict.py:Predictor"),
            "{env:?}"
        );
        assert!(
            env.contains(&"PATH=/bin"),
            "the base's env is kept: {env:?}"
        );
    }
    let config = run(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci-archive:{}", tarball.display()),
        ],
    );
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["WorkingDir"], "/src");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["python", "-m", "cog.server.http"])
    );
    assert!(config["config"]["ExposedPorts"]["5000/tcp"].is_object());
    let built: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["comment"].as_str())
        .filter_map(|c| c.strip_prefix("cog-rs: "))
        .collect();
    assert_eq!(
        built,
        ["cog-runtime", "cog-runtime", "openapi-schema", "source"],
        "the layers cog built, in order"
    );

    // umoci unpacks the OCI layout: the source is under /src, .cog/ holds only the schema.
    let bundle = out.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:{tag}", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("src/predict.py")).unwrap(),
        std::fs::read_to_string(project.join("predict.py")).unwrap()
    );
    assert!(rootfs.join("src/.cog/openapi_schema.json").is_file());
    assert!(rootfs.join("bin/busybox").is_file(), "base layer unpacked");

    // podman and Docker load the same tarball and run it.
    for engine in ["podman", "docker"] {
        let loaded = run(engine, &["load", "-i", tarball.to_str().unwrap()]);
        assert!(loaded.contains("hello"), "{engine} load: {loaded}");
        let image = if engine == "podman" {
            format!("localhost/{tag}")
        } else {
            tag.to_string()
        };
        let image =
            if engine == "podman" && !run("podman", &["images", "-q", &image]).trim().is_empty() {
                image
            } else {
                tag.to_string()
            };
        let printed = run(engine, &["run", "--rm", &image, "cat", "/src/predict.py"]);
        assert!(
            printed.contains("class Predictor"),
            "{engine} run: {printed}"
        );
        let pwd = run(engine, &["run", "--rm", &image, "sh", "-c", "pwd"]);
        assert_eq!(pwd.trim(), "/src", "{engine}");
        let _ = Command::new(engine).args(["rmi", "-f", &image]).output();
    }
}

#[test]
fn two_checkouts_give_the_same_digest() {
    let (_base_dir, base) = local_base();

    let (_a_root, a) = hello_project("checkout-one");
    let (_b_root, b) = hello_project("another-name");
    // Different mtimes in the second checkout.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for entry in std::fs::read_dir(&b).unwrap() {
        std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let cache_a = tempfile::tempdir().unwrap();
    let cache_b = tempfile::tempdir().unwrap();
    let digest_a = ok(&cog(
        &a,
        cache_a.path(),
        &["build", "--base", &base, "-t", "same:1"],
    ));
    let digest_b = ok(&cog(
        &b,
        cache_b.path(),
        &["build", "--base", &base, "-t", "same:1"],
    ));
    assert_eq!(digest_a, digest_b);
    // And the plan is the same data.
    assert_eq!(
        ok(&cog(
            &a,
            cache_a.path(),
            &["plan", "--json", "--base", &base]
        )),
        ok(&cog(
            &b,
            cache_b.path(),
            &["plan", "--json", "--base", &base]
        ))
    );
}

#[test]
fn a_code_only_change_makes_exactly_one_new_layer() {
    let (_base_dir, base) = local_base();
    let (_root, project) = hello_project("hello");
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let first = out.path().join("first");
    let second = out.path().join("second");

    ok(&cog(
        &project,
        cache.path(),
        &[
            "build",
            "--base",
            &base,
            "--output",
            first.to_str().unwrap(),
        ],
    ));
    let blobs_before: BTreeSet<_> = store_blobs(cache.path());
    let predict = project.join("predict.py");
    let code = std::fs::read_to_string(&predict)
        .unwrap()
        .replace("self.prefix = \"hello\"", "self.prefix = \"hi\"");
    std::fs::write(&predict, code).unwrap();
    ok(&cog(
        &project,
        cache.path(),
        &[
            "build",
            "--base",
            &base,
            "--output",
            second.to_str().unwrap(),
        ],
    ));
    let blobs_after: BTreeSet<_> = store_blobs(cache.path());

    let (manifest_1, layers_1) = manifest_blobs(&first);
    let (manifest_2, layers_2) = manifest_blobs(&second);
    assert_ne!(manifest_1, manifest_2);
    let new_layers: Vec<_> = layers_2.difference(&layers_1).collect();
    assert_eq!(new_layers.len(), 1, "exactly one new layer: {new_layers:?}");
    // New blobs in the store: that layer, the config and the manifest; nothing else.
    assert_eq!(blobs_after.difference(&blobs_before).count(), 3);
}

#[test]
fn bad_config_errors_name_the_file_and_leave_no_output() {
    let (_root, project) = hello_project("hello");
    let cache = tempfile::tempdir().unwrap();
    let output = project.join("out.tar");
    let cog_yaml = project.join("cog.yaml");

    std::fs::write(&cog_yaml, "build:\n  python_version: [\n").unwrap();
    let err = failed(&cog(
        &project,
        cache.path(),
        &["build", "--base", "scratch", "--output", "out.tar"],
    ));
    assert!(
        err.contains("cog.yaml") && err.contains("failed to parse"),
        "{err}"
    );

    std::fs::write(
        &cog_yaml,
        "build:\n  python_version: \"3.9\"\nrun: predict.py\n",
    )
    .unwrap();
    let err = failed(&cog(
        &project,
        cache.path(),
        &["build", "--base", "scratch", "--output", "out.tar"],
    ));
    assert!(
        err.contains(
            "invalid build.python_version \"3.9\": minimum supported Python version is 3.10"
        ),
        "{err}"
    );
    assert!(
        err.contains("invalid run \"predict.py\": must be in the form 'run.py:Runner'"),
        "{err}"
    );
    assert!(!output.exists());

    std::fs::remove_file(&cog_yaml).unwrap();
    let err = failed(&cog(&project, cache.path(), &["build"]));
    assert!(err.contains("cog.yaml not found in"), "{err}");
}

#[test]
fn registry_errors_name_the_reference() {
    let (registry, _base) = registry_with_base();
    let (_root, project) = hello_project("hello");
    let cache = tempfile::tempdir().unwrap();

    let unknown = registry.reference("no-such-image:1");
    let err = failed(&cog(
        &project,
        cache.path(),
        &["build", "--base", &unknown, "--output", "out.tar"],
    ));
    assert!(err.contains(&unknown), "names the reference: {err}");
    assert!(!project.join("out.tar").exists());

    let locked = TestRegistry::start_with_htpasswd("user", "secret");
    let reference = locked.reference("base:latest");
    let err = failed(&cog(
        &project,
        cache.path(),
        &["build", "--base", &reference],
    ));
    assert!(
        err.contains(&reference)
            && (err.contains("401") || err.to_lowercase().contains("unauthorized")),
        "{err}"
    );

    let down = format!("127.0.0.1:{}/base:latest", common::registry::free_port());
    let err = failed(&cog(&project, cache.path(), &["build", "--base", &down]));
    assert!(err.contains(&down), "{err}");
}

#[test]
fn a_tampered_blob_is_rejected_and_not_stored() {
    let (registry, base) = registry_with_base();
    // Find the base layer's digest, then serve the base through a proxy that flips a byte of it.
    let inspect: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{base}")],
    ))
    .unwrap();
    let layer = inspect["Layers"][0].as_str().unwrap().to_string();
    let proxy = FrontProxy::start(
        &registry.host,
        FrontOptions {
            tamper_blob: Some(layer.clone()),
            ..FrontOptions::default()
        },
    );
    let (_root, project) = hello_project("hello");
    let cache = tempfile::tempdir().unwrap();
    let err = failed(&cog(
        &project,
        cache.path(),
        &[
            "build",
            "--base",
            &format!("{}/base:latest", proxy.host),
            "--output",
            "out.tar",
        ],
    ));
    assert!(
        err.contains(&layer[7..19]) || err.contains(&layer),
        "names the digest: {err}"
    );
    assert!(
        !cache.path().join("blobs/sha256").join(&layer[7..]).exists(),
        "no tampered blob kept"
    );
    assert!(!project.join("out.tar").exists());
}

/// A tmpfs mounted for the life of the value (the tests run as root in CI).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, options: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_or_read_only_cache_fails_cleanly() {
    let (_root, project) = hello_project("hello");
    // Big enough for nothing but a few small files: the source layer does not fit.
    std::fs::write(project.join("weights.bin"), noise(512 * 1024)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let full = scratch.path().join("full");
    let Some(_full_mount) = Mount::tmpfs(&full, "size=64k") else {
        panic!("mounting a tmpfs needs root (CI runs as root)");
    };
    let err = failed(&cog(
        &project,
        &full,
        &[
            "build",
            "--base",
            "scratch",
            "--output",
            "out.tar",
            "--compression",
            "zstd",
        ],
    ));
    assert!(
        err.contains(full.to_str().unwrap()) || err.contains("No space left"),
        "names the cache or the cause: {err}"
    );
    assert!(!project.join("out.tar").exists());
    // Only complete, verified blobs and the cache records of layers that were finished remain.
    for file in walk(&full).into_iter().filter(|p| p.is_file()) {
        if file.starts_with(full.join("blobs/sha256")) {
            use sha2::Digest as _;
            let hex = hex::encode(sha2::Sha256::digest(std::fs::read(&file).unwrap()));
            assert_eq!(
                file.file_name().unwrap().to_str().unwrap(),
                hex,
                "blob content matches its name"
            );
        } else {
            assert!(
                file.starts_with(full.join("keys")),
                "no temp or partial file left: {}",
                file.display()
            );
        }
    }

    let read_only = scratch.path().join("ro");
    let Some(_ro_mount) = Mount::tmpfs(&read_only, "ro") else {
        panic!("mount failed")
    };
    let err = failed(&cog(&project, &read_only, &["build", "--base", "scratch"]));
    assert!(
        err.contains(read_only.to_str().unwrap()),
        "names the cache dir: {err}"
    );
    assert!(err.to_lowercase().contains("read-only"), "{err}");
}

/// Incompressible bytes (xorshift), so the layer cannot shrink below the disk's size.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
