//! Managed weights (`weights:` in cog.yaml) end to end, through a real registry: `cog weights
//! import` -> `cog build` -> `cog push` (an OCI index of the image and the weight artifact) ->
//! the local weights store removed -> `cog weights pull` -> `cog run` reads the weights,
//! mounted read-only with the spec's ready marker. Also: lock drift fails the build with Cog's
//! message, and bad input (a missing source, overlapping targets, a lock that lies about a
//! digest) is refused with nothing stored.
//!
//! Needs `docker-registry`, runc, the wheels in `dist/` (`python/build-wheels.sh`), and the
//! network for Debian packages and PyPI on a cold cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::TestRegistry;
use common::{failed, ok, require_tool};
use serde_json::Value;

const COG: &str = env!("CARGO_BIN_EXE_cog");

const PREDICT: &str = r#"import json
import os

from cog import BasePredictor


class Predictor(BasePredictor):
    def predict(self, s: str) -> str:
        root = "/src/mounted-weights/greeting"
        size = os.path.getsize(f"{root}/greeting.txt")
        ready = os.path.exists(f"{root}/.cog/ready")
        try:
            open(f"{root}/greeting.txt", "a").close()
            writable = True
        except OSError:
            writable = False
        files = sorted(os.listdir(root))
        with open("/.cog/weights.json") as f:
            expected = [(w["name"], w["target"]) for w in json.load(f)["weights"]]
        return f"hello {s} (weight-size={size}, ready={ready}, writable={writable}, files={files}, expected={expected})"
"#;

struct Project {
    _root: tempfile::TempDir,
    dir: PathBuf,
    cache: PathBuf,
    registry: String,
}

/// A project whose weight `greeting` comes from `weights-src/` (1 KiB of `X`, a config in a
/// subdirectory, and a README the `exclude` leaves out); `model:` is the bare repository and
/// `COG_MODEL_REGISTRY` names the registry, as in Cog's own tests.
fn project(registry: &TestRegistry, weights: &str) -> Project {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir_all(dir.join("weights-src/sub")).unwrap();
    std::fs::write(dir.join("weights-src/greeting.txt"), [b'X'; 1024]).unwrap();
    std::fs::write(dir.join("weights-src/sub/config.json"), b"{\"a\": 1}\n").unwrap();
    std::fs::write(dir.join("weights-src/README.md"), b"not a weight\n").unwrap();
    std::fs::write(dir.join("predict.py"), PREDICT).unwrap();
    std::fs::write(
        dir.join("cog.yaml"),
        format!(
            "build:\n  python_version: \"3.12\"\nrun: \"predict.py:Predictor\"\nmodel: test/weights-model\n{weights}"
        ),
    )
    .unwrap();
    let cache = root.path().join("cache");
    Project {
        dir,
        cache,
        registry: registry.host.clone(),
        _root: root,
    }
}

const GREETING: &str = "weights:\n  - name: greeting\n    target: /src/mounted-weights/greeting\n    source:\n      uri: file://./weights-src\n      exclude: [\"README*\"]\n";

fn cog(project: &Project, args: &[&str]) -> Output {
    Command::new(COG)
        .args(args)
        .current_dir(&project.dir)
        .env("COG_CACHE_DIR", &project.cache)
        .env("COG_MODEL_REGISTRY", &project.registry)
        .env("DOCKER_CONFIG", project.cache.join("docker-config"))
        .env("NO_COLOR", "1")
        .env_remove("COG_MODEL")
        .env_remove("COG_MODEL_REPO")
        .env_remove("COG_RUNTIME")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The files of the local weights store.
fn stored_files(cache: &Path) -> Vec<PathBuf> {
    let root = cache.join("weights");
    if !root.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect()
}

fn lock(project: &Project) -> Value {
    serde_json::from_slice(&std::fs::read(project.dir.join("weights.lock")).unwrap()).unwrap()
}

fn manifest(registry: &str, repository: &str, reference: &str) -> Value {
    let url = format!("http://{registry}/v2/{repository}/manifests/{reference}");
    let response = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .header(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().unwrap()
}

#[test]
fn managed_weights_round_trip_through_the_registry() {
    require_tool("runc", "runc");
    let registry = TestRegistry::start();
    let project = project(&registry, GREETING);

    // A dry run says what an import would do, and does nothing.
    let dry = cog(&project, &["weights", "import", "--dry-run", "-v"]);
    ok(&dry);
    let log = stderr(&dry);
    for line in [
        "+ greeting  file://./weights-src → /src/mounted-weights/greeting",
        "  status: new",
        "  files: 2  size: 1.0KB",
        "    - README.md (13B)",
        "    + sub/config.json (9B)",
    ] {
        assert!(log.contains(line), "no {line:?} in {log}");
    }
    assert!(!project.dir.join("weights.lock").exists());
    assert!(stored_files(&project.cache).is_empty());

    // Import: the artifact goes to <model>/weights/<name>:<timestamp>, the lock is written,
    // the files are in the local store.
    let import = cog(&project, &["weights", "import"]);
    ok(&import);
    let log = stderr(&import);
    assert!(log.contains("Pushing 1 weight(s) to"), "{log}");
    let lock = lock(&project);
    let entry = &lock["weights"][0];
    assert_eq!(entry["name"], "greeting");
    assert_eq!(entry["sources"][0]["uri"], "file://./weights-src");
    let paths: Vec<&str> = entry["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["greeting.txt", "sub/config.json"]);
    assert_eq!(stored_files(&project.cache).len(), 2);
    // The files are on disk once: the layer blobs left the build cache once pushed.
    let layer_blobs = || -> Vec<PathBuf> {
        entry["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
                project.cache.join("blobs/sha256").join(hex)
            })
            .filter(|p| p.exists())
            .collect()
    };
    assert!(layer_blobs().is_empty(), "{:?}", layer_blobs());
    let digest = entry["digest"].as_str().unwrap();
    let weight = manifest(
        &registry.host,
        "test/weights-model/weights/greeting",
        digest,
    );
    assert_eq!(weight["artifactType"], "application/vnd.cog.weight.v1");
    assert_eq!(
        weight["config"]["mediaType"],
        "application/vnd.cog.weight.config.v1+json"
    );
    assert_eq!(weight["annotations"]["run.cog.weight.name"], "greeting");
    assert_eq!(
        weight["annotations"]["run.cog.weight.set-digest"],
        entry["setDigest"]
    );
    assert_eq!(
        weight["layers"][0]["annotations"]["run.cog.weight.size.uncompressed"],
        "1033"
    );
    let tags = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "http://{}/v2/test/weights-model/weights/greeting/tags/list",
            registry.host
        ))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let tag = tags["tags"][0].as_str().unwrap();
    assert!(
        tag.len() == 16 && tag.ends_with('Z') && tag.as_bytes()[8] == b'T',
        "{tag}"
    );

    // An import of the same files changes nothing in the lock.
    let before = std::fs::read(project.dir.join("weights.lock")).unwrap();
    let again = cog(&project, &["weights", "import"]);
    ok(&again);
    assert!(
        stderr(&again).contains("= greeting  file://"),
        "{}",
        stderr(&again)
    );
    assert!(
        stderr(&again).contains("  status: unchanged"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read(project.dir.join("weights.lock")).unwrap(),
        before
    );

    // Build and push: the model is an OCI index of the image and the weight manifest; the
    // weight's blobs are mounted from its repository.
    ok(&cog(&project, &["build", "--no-load"]));
    let pushed = cog(&project, &["push", "--progress", "plain"]);
    let out = ok(&pushed);
    let log = stderr(&pushed);
    assert!(log.contains(", 2 mounted, "), "{log}");
    assert!(out.starts_with("sha256:"), "{out}");
    let index = manifest(&registry.host, "test/weights-model", "latest");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    assert_eq!(manifests[0]["platform"]["os"], "linux");
    assert_eq!(manifests[1]["digest"], digest);
    assert_eq!(
        manifests[1]["artifactType"],
        "application/vnd.cog.weight.v1"
    );
    assert_eq!(manifests[1]["platform"]["os"], "unknown");
    assert_eq!(manifests[1]["platform"]["architecture"], "unknown");
    assert_eq!(
        manifests[1]["annotations"]["run.cog.weight.name"],
        "greeting"
    );

    // A clean weights cache: run refuses, naming `cog weights pull`.
    std::fs::remove_dir_all(project.cache.join("weights")).unwrap();
    let refused = cog(&project, &["run", "--runtime", "runc", "-i", "s=world"]);
    let err = failed(&refused);
    assert!(
        err.contains("weight \"greeting\" is not fully cached locally")
            && err.contains("run 'cog weights pull' first"),
        "{err}"
    );

    // Pull, from the registry, then from the cache.
    let pull = cog(&project, &["weights", "pull", "--verbose"]);
    ok(&pull);
    let log = stderr(&pull);
    assert!(log.contains("Pulling greeting"), "{log}");
    assert!(log.contains("Pulled 1 weight(s)"), "{log}");
    assert!(log.contains("  layer "), "{log}");
    assert_eq!(stored_files(&project.cache).len(), 2);
    assert!(layer_blobs().is_empty(), "{:?}", layer_blobs());
    let again = cog(&project, &["weights", "pull"]);
    ok(&again);
    assert!(
        stderr(&again).contains("All 1 weight(s) already cached"),
        "{}",
        stderr(&again)
    );
    let unknown = failed(&cog(
        &project,
        &["weights", "pull", "greeting", "nope", "typo"],
    ));
    assert!(unknown.contains("\"nope\", \"typo\""), "{unknown}");

    // Run: the weights are at their target, read-only, with the ready marker.
    let run = cog(&project, &["run", "--runtime", "runc", "-i", "s=world"]);
    let out = ok(&run);
    assert!(
        out.contains(
            "hello world (weight-size=1024, ready=True, writable=False, files=['.cog', 'greeting.txt', 'sub'], expected=[('greeting', '/src/mounted-weights/greeting')])"
        ),
        "{out}\n{}",
        stderr(&run)
    );
    // The per-run mount directory is gone.
    let mounts = project.dir.join(".cog/mounts");
    assert!(
        !mounts.exists() || std::fs::read_dir(&mounts).unwrap().next().is_none(),
        "{mounts:?} left behind"
    );

    let status = ok(&cog(&project, &["weights", "status"]));
    assert!(
        status.starts_with("greeting\t/src/mounted-weights/greeting\tready\t2/2 files cached"),
        "{status}"
    );
}

#[test]
fn lock_drift_fails_the_build_with_cogs_message() {
    let registry = TestRegistry::start();
    let project = project(&registry, GREETING);
    let build = failed(&cog(&project, &["build", "--no-load"]));
    assert!(
        build.contains(
            "weights.lock is out of sync with cog.yaml:\n  - \"greeting\": not imported yet\nRun 'cog weights import' to update."
        ),
        "{build}"
    );
    ok(&cog(&project, &["weights", "import"]));
    // The target changes and an include is added: the build stops before building anything.
    let yaml = std::fs::read_to_string(project.dir.join("cog.yaml")).unwrap();
    std::fs::write(
        project.dir.join("cog.yaml"),
        yaml.replace("/src/mounted-weights/greeting", "/src/w")
            .replace(
                "exclude: [\"README*\"]",
                "exclude: [\"README*\"]\n      include: [\"*.txt\"]",
            ),
    )
    .unwrap();
    let build = failed(&cog(&project, &["build", "--no-load"]));
    assert!(
        build.contains(
            "weights.lock is out of sync with cog.yaml:\n  - \"greeting\": config changed (target: /src/mounted-weights/greeting → /src/w; include: [] → [*.txt])\nRun 'cog weights import' to update."
        ),
        "{build}"
    );
    let status = ok(&cog(&project, &["weights", "status"]));
    assert!(
        status.contains("\tstale\tconfig changed (target:"),
        "{status}"
    );
    // Removed from cog.yaml, still in the lock.
    let yaml = std::fs::read_to_string(project.dir.join("cog.yaml")).unwrap();
    let without = yaml.split("weights:").next().unwrap().to_string();
    std::fs::write(
        project.dir.join("cog.yaml"),
        format!("{without}weights:\n  - name: other\n    target: /src/o\n    source:\n      uri: weights-src\n"),
    )
    .unwrap();
    let build = failed(&cog(&project, &["build", "--no-load"]));
    assert!(
        build.contains("  - \"other\": not imported yet\n  - \"greeting\": removed from cog.yaml but still in lockfile\n"),
        "{build}"
    );
}

#[test]
fn bad_weights_input_is_refused_and_nothing_is_stored() {
    let registry = TestRegistry::start();

    // A source that does not exist: no lock, nothing stored, nothing pushed.
    let missing = project(
        &registry,
        "weights:\n  - name: gone\n    target: /src/gone\n    source:\n      uri: ./nowhere\n",
    );
    let err = failed(&cog(&missing, &["weights", "import"]));
    assert!(
        err.contains(
            "weight \"gone\" source file://./nowhere: weight source not found: file://./nowhere"
        ),
        "{err}"
    );
    assert!(!missing.dir.join("weights.lock").exists());
    assert!(stored_files(&missing.cache).is_empty());

    // Patterns that leave nothing.
    let none = project(
        &registry,
        "weights:\n  - name: none\n    target: /src/none\n    source:\n      uri: weights-src\n      include: [\"*.gguf\"]\n",
    );
    let err = failed(&cog(&none, &["weights", "import"]));
    assert!(
        err.contains("include/exclude patterns matched zero files out of 3 in the source"),
        "{err}"
    );

    // A target inside another's: cog.yaml is refused (Cog's validation).
    let overlap = project(
        &registry,
        "weights:\n  - name: a\n    target: /src/w\n    source:\n      uri: weights-src\n  - name: b\n    target: /src/w/b\n    source:\n      uri: weights-src\n",
    );
    let err = failed(&cog(&overlap, &["weights", "import"]));
    assert!(
        err.contains("invalid weights[1].target \"/src/w/b\": target overlaps with weights[0] target \"/src/w\""),
        "{err}"
    );
    assert!(!overlap.dir.join("weights.lock").exists());
    assert!(stored_files(&overlap.cache).is_empty());

    // A lock that lies about a digest.
    let project = project(&registry, GREETING);
    ok(&cog(&project, &["weights", "import"]));
    std::fs::remove_dir_all(project.cache.join("weights")).unwrap();
    let honest = std::fs::read_to_string(project.dir.join("weights.lock")).unwrap();
    let lock: Value = serde_json::from_str(&honest).unwrap();
    let real = lock["weights"][0]["files"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let fake = format!("sha256:{}", "0".repeat(64));

    // A file's digest changed alone: the set digest no longer matches, the lock is refused.
    std::fs::write(
        project.dir.join("weights.lock"),
        honest.replace(&real, &fake),
    )
    .unwrap();
    let err = failed(&cog(&project, &["weights", "pull"]));
    assert!(err.contains("is not the digest of its files"), "{err}");
    assert!(stored_files(&project.cache).is_empty());

    // A lie told consistently (file and set digests): the registry's manifest is not the
    // lock's, so nothing is fetched.
    let mut lying: Value = serde_json::from_str(&honest.replace(&real, &fake)).unwrap();
    let lines: Vec<String> = {
        let mut lines: Vec<String> = lying["weights"][0]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}  {}",
                    f["digest"].as_str().unwrap().trim_start_matches("sha256:"),
                    f["path"].as_str().unwrap()
                )
            })
            .collect();
        lines.sort();
        lines
    };
    use sha2::Digest as _;
    let set = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(lines.join("\n")))
    );
    lying["weights"][0]["setDigest"] = Value::String(set);
    std::fs::write(
        project.dir.join("weights.lock"),
        serde_json::to_vec_pretty(&lying).unwrap(),
    )
    .unwrap();
    let err = failed(&cog(&project, &["weights", "pull"]));
    assert!(
        err.contains("weight \"greeting\" manifest: expected the manifest weights.lock describes, got another manifest"),
        "{err}"
    );
    assert!(stored_files(&project.cache).is_empty());

    // The lock's manifest digest changed: the registry has no such manifest.
    let other = format!("sha256:{}", "1".repeat(64));
    let lock_digest = lock["weights"][0]["digest"].as_str().unwrap();
    std::fs::write(
        project.dir.join("weights.lock"),
        honest.replace(lock_digest, &other),
    )
    .unwrap();
    let err = failed(&cog(&project, &["weights", "pull"]));
    assert!(err.contains("weights/greeting"), "{err}");
    assert!(stored_files(&project.cache).is_empty());

    // The honest lock pulls.
    std::fs::write(project.dir.join("weights.lock"), honest).unwrap();
    ok(&cog(&project, &["weights", "pull"]));
    assert_eq!(stored_files(&project.cache).len(), 2);
}

/// Kills `cog serve` when a test fails before stopping it.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// `cog serve` right after an import (no pull: the import filled the store): the prediction
/// reads the mounted weights, and Ctrl-C leaves no mount directory behind.
#[test]
fn serve_mounts_the_weights_an_import_stored() {
    require_tool("runc", "runc");
    let registry = TestRegistry::start();
    let project = project(&registry, GREETING);
    ok(&cog(&project, &["weights", "import"]));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(COG)
        .args(["serve", "--runtime", "runc", "-p", &port.to_string()])
        .current_dir(&project.dir)
        .env("COG_CACHE_DIR", &project.cache)
        .env("COG_MODEL_REGISTRY", &project.registry)
        .env("NO_COLOR", "1")
        .env_remove("COG_RUNTIME")
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut serving = Serving(child);
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = serving.0.try_wait().unwrap() {
            panic!(
                "cog serve exited ({status}): {}",
                std::fs::read_to_string(log.path()).unwrap()
            );
        }
        if let Ok(response) = client.get(format!("{base}/health-check")).send()
            && response.json::<Value>().unwrap()["status"] == "READY"
        {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(600),
            "not READY in time: {}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let body: Value = client
        .post(format!("{base}/predictions"))
        .json(&serde_json::json!({"input": {"s": "world"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    let output = body["output"].as_str().unwrap();
    assert!(
        output.starts_with("hello world (weight-size=1024, ready=True, writable=False"),
        "{output}"
    );
    let mounts = project.dir.join(".cog/mounts");
    assert!(mounts.exists(), "no mount directory while serving");
    Command::new("kill")
        .args(["-INT", &serving.0.id().to_string()])
        .status()
        .unwrap();
    let start = std::time::Instant::now();
    while serving.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "cog serve did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !mounts.exists() || std::fs::read_dir(&mounts).unwrap().next().is_none(),
        "{mounts:?} left behind after Ctrl-C"
    );
}

/// A tiny HTTP server on 127.0.0.1 answering every GET with `body` (and a strong ETag).
fn serve_file(body: &'static [u8]) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    host
}

/// An `https://`/`http://` source is one file, streamed into the store; its strong ETag is its
/// fingerprint. `hf://` is refused with a message naming it.
#[test]
fn a_url_source_is_one_file_and_hf_is_refused() {
    let registry = TestRegistry::start();
    let server = serve_file(b"weights over http");
    let project = project(
        &registry,
        &format!(
            "weights:\n  - name: remote\n    target: /src/remote\n    source:\n      uri: http://{server}/files/model.bin?download=1\n"
        ),
    );
    ok(&cog(&project, &["weights", "import"]));
    let lock = lock(&project);
    let entry = &lock["weights"][0];
    assert_eq!(entry["files"][0]["path"], "model.bin");
    assert_eq!(entry["files"][0]["size"], 17);
    assert_eq!(entry["sources"][0]["fingerprint"], "etag:\"v1\"");
    assert_eq!(stored_files(&project.cache).len(), 1);

    let hf = self::project(
        &registry,
        "weights:\n  - name: hub\n    target: /src/hub\n    source:\n      uri: hf://acme/model\n",
    );
    let err = failed(&cog(&hf, &["weights", "import"]));
    assert!(
        err.contains("weight \"hub\" source hf://acme/model: hf:// sources (the Hugging Face Hub) are not supported by cog-rs yet"),
        "{err}"
    );
    assert!(!hf.dir.join("weights.lock").exists());
}
