//! `cog run`, `cog serve` and `cog exec` end to end: every model in `examples/` is built by
//! `cog build` and run with `cog run -i ...`, its output asserted, on the machine's Docker
//! Engine, on podman, and with no daemon at all (`--runtime runc`). Also: `cog serve` over
//! HTTP, `cog run IMAGE`, `cog exec`, and the errors (inputs refused before any build, no
//! runtime installed, a failing setup shows its logs).
//!
//! Needs Docker, podman and runc (`scripts/install-deps.sh`), the wheels in `dist/`
//! (`python/build-wheels.sh`), and the network for Debian packages and PyPI on a cold cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{copy_dir, failed, ok, require_tool, run};
use serde_json::{Value, json};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// One cache for every test here (and every run of them): builds after the first are warm.
fn cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run_e2e-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A copy of a project in a fresh temp dir (lock files the build writes stay out of the repo).
fn copy_project(from: &Path, name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    copy_dir(from, &dir);
    (root, dir)
}

fn cog_command(dir: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(COG);
    command
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env("BUILDKIT_PROGRESS", "plain")
        .env_remove("COG_RUNTIME")
        .env_remove("SOURCE_DATE_EPOCH");
    command
}

fn cog(dir: &Path, args: &[&str]) -> Output {
    cog_command(dir, &cache(), args).output().unwrap()
}

/// A tiny 4x2 RGB image in the PPM format (Pillow reads it; no encoder needed here).
fn ppm() -> Vec<u8> {
    let mut bytes = b"P6\n4 2\n255\n".to_vec();
    for i in 0..8u8 {
        bytes.extend([i * 30, 255 - i * 30, 128]);
    }
    bytes
}

/// Runs one example with `cog run` on `runtime` and checks its output.
fn run_example(name: &str, runtime: &str) {
    let (_root, dir) = copy_project(&examples_dir().join(name), name);
    match name {
        "hello" => {
            let output = cog(&dir, &["run", "--runtime", runtime, "-i", "text=runner"]);
            assert_eq!(ok(&output), "hello runner", "{name} on {runtime}");
        }
        "image" => {
            std::fs::write(dir.join("in.ppm"), ppm()).unwrap();
            let output = cog(
                &dir,
                &[
                    "run",
                    "--runtime",
                    runtime,
                    "-i",
                    "image=@in.ppm",
                    "-i",
                    "width=8",
                    "-o",
                    "out.webp",
                ],
            );
            ok(&output);
            let webp = std::fs::read(dir.join("out.webp")).expect("out.webp written");
            assert_eq!(&webp[..4], b"RIFF", "{name} on {runtime}");
            assert_eq!(&webp[8..12], b"WEBP", "{name} on {runtime}");
            // Lossless WebP header: the width is 8 (14 bits, minus one) after the signature.
            assert_eq!(&webp[12..16], b"VP8L", "{name} on {runtime}");
            let bits = u32::from_le_bytes(webp[21..25].try_into().unwrap());
            assert_eq!((bits & 0x3fff) + 1, 8, "scaled to width 8");
            assert_eq!(((bits >> 14) & 0x3fff) + 1, 4, "height scaled to 4");
        }
        "streaming" => {
            let output = cog(
                &dir,
                &[
                    "run",
                    "--runtime",
                    runtime,
                    "-i",
                    "prompt=one two three",
                    "-i",
                    "delay=0",
                ],
            );
            assert_eq!(ok(&output), "one two three", "{name} on {runtime}");
        }
        other => panic!(
            "examples/{other} has no case in tests/run_e2e.rs: add one so every example is run"
        ),
    }
}

/// The examples, by directory name (every directory with a cog.yaml).
fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("cog.yaml").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"hello".to_string()), "{names:?}");
    names
}

#[test]
fn every_example_runs_on_docker() {
    require_tool("docker", "docker.io");
    for name in examples() {
        run_example(&name, "docker");
    }
}

#[test]
fn every_example_runs_on_podman() {
    require_tool("podman", "podman");
    for name in examples() {
        run_example(&name, "podman");
    }
}

#[test]
fn every_example_runs_with_no_daemon() {
    require_tool("runc", "runc");
    for name in examples() {
        run_example(&name, "runc");
    }
}

/// The id of the container a `cog --debug` run logged as started.
/// The runtime no longer knows container `id`, and its bundle left the cache.
fn assert_container_gone(runtime: &str, id: &str, when: &str) {
    let state = Command::new(runtime)
        .args(if runtime == "runc" {
            vec!["state", id]
        } else {
            vec!["container", "inspect", id]
        })
        .output()
        .unwrap();
    assert!(
        !state.status.success(),
        "{runtime} container {id} still exists {when}: {}",
        String::from_utf8_lossy(&state.stdout)
    );
    assert!(!cache().join("runtime/containers").join(id).exists());
}

fn started_container(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.split("started container ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no container id logged: {stderr}"))
        .to_string()
}

#[test]
fn the_container_is_removed_after_a_run() {
    let (_root, dir) = copy_project(&examples_dir().join("hello"), "hello");
    for runtime in ["docker", "podman", "runc"] {
        require_tool(
            runtime,
            if runtime == "docker" {
                "docker.io"
            } else {
                runtime
            },
        );
        let output = cog_command(
            &dir,
            &cache(),
            &["run", "--runtime", runtime, "-i", "text=x"],
        )
        .env("COG_LOG", "cog::runtime=debug")
        .output()
        .unwrap();
        assert_eq!(ok(&output), "hello x");
        let id = started_container(&String::from_utf8_lossy(&output.stderr));
        assert_container_gone(runtime, &id, "after the run");

        // The daemon has this image id now: the next run does not load it again.
        if runtime != "runc" {
            let output = cog_command(
                &dir,
                &cache(),
                &["run", "--runtime", runtime, "-i", "text=y"],
            )
            .env("COG_LOG", "cog::runtime=debug")
            .output()
            .unwrap();
            assert_eq!(ok(&output), "hello y");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("{runtime} already has")),
                "{stderr}"
            );
        }

        // `cog exec` gives the command's exit code, in /src with the project there.
        let output = cog(
            &dir,
            &[
                "exec",
                "--runtime",
                runtime,
                "sh",
                "-c",
                "test \"$(pwd)\" = /src && test -f cog.yaml && exit 3",
            ],
        );
        assert_eq!(output.status.code(), Some(3), "{runtime}: {output:?}");
    }
}

#[test]
fn run_an_existing_image_and_exec_in_it_with_no_daemon() {
    require_tool("runc", "runc");
    let (_root, dir) = copy_project(&examples_dir().join("hello"), "hello");
    ok(&cog(&dir, &["build", "-t", "run-e2e-hello:v1"]));
    // From another directory: the image's schema label validates the inputs.
    let elsewhere = tempfile::tempdir().unwrap();
    let output = cog(
        elsewhere.path(),
        &[
            "run",
            "run-e2e-hello:v1",
            "--runtime",
            "runc",
            "-i",
            "text=image",
        ],
    );
    assert_eq!(ok(&output), "hello image");
    let stderr = failed(&cog(
        elsewhere.path(),
        &[
            "run",
            "run-e2e-hello:v1",
            "--runtime",
            "runc",
            "-i",
            "nope=1",
        ],
    ));
    assert!(stderr.contains("unknown input \"nope\""), "{stderr}");
    let stderr = failed(&cog(
        elsewhere.path(),
        &["run", "text=hi", "--runtime", "runc"],
    ));
    assert!(stderr.contains("Did you forget `-i`?"), "{stderr}");
    let stderr = failed(&cog(
        elsewhere.path(),
        &["run", "no-such-image-here", "--runtime", "runc"],
    ));
    assert!(
        stderr.contains("image no-such-image-here not found"),
        "{stderr}"
    );

    // `--json`: the inputs as one object, and the whole response printed as JSON.
    let output = cog(
        &dir,
        &["run", "--runtime", "runc", "--json", r#"{"text": "json"}"#],
    );
    let response: Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!(response["status"], "succeeded", "{response}");
    assert_eq!(response["output"], "hello json");
    assert!(
        response["metrics"]["predict_time"].is_number(),
        "{response}"
    );

    // `cog exec`: in /src, with the project mounted (a file made on the host is seen), and
    // the command's exit code is cog's.
    std::fs::write(dir.join("made-on-host.txt"), "from the host").unwrap();
    let output = cog(
        &dir,
        &[
            "exec",
            "--runtime",
            "runc",
            "sh",
            "-c",
            "pwd && cat made-on-host.txt && echo written > made-in-container.txt",
        ],
    );
    assert_eq!(ok(&output), "/src\nfrom the host");
    assert_eq!(
        std::fs::read_to_string(dir.join("made-in-container.txt")).unwrap(),
        "written\n"
    );
    let output = cog(&dir, &["exec", "--runtime", "runc", "sh", "-c", "exit 3"]);
    assert_eq!(output.status.code(), Some(3));
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Kills `cog` when a test fails before stopping it.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn serve_and_query(runtime: &str) {
    let (_root, dir) = copy_project(&examples_dir().join("hello"), "hello");
    let port = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = cog_command(
        &dir,
        &cache(),
        &["serve", "--runtime", runtime, "-p", &port.to_string()],
    )
    .stdout(Stdio::null())
    .stderr(log.reopen().unwrap())
    .spawn()
    .unwrap();
    let mut serving = Serving(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = http();
    let start = Instant::now();
    let health = loop {
        if let Some(status) = serving.0.try_wait().unwrap() {
            panic!(
                "cog serve exited ({status}): {}",
                std::fs::read_to_string(log.path()).unwrap()
            );
        }
        if let Ok(response) = client.get(format!("{base}/health-check")).send() {
            let body: Value = response.json().unwrap();
            if body["status"] == "READY" {
                break body;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "not READY in time: {}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(health["setup"]["status"], "succeeded", "{health}");

    let schema: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        schema["components"]["schemas"]["Input"]["properties"]["text"]["default"],
        "world"
    );
    let response = client
        .post(format!("{base}/predictions"))
        .json(&json!({"input": {"text": "server"}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(body["output"], "hello server");

    // Only on loopback: the port is not published on another address.
    if let Some(other) = non_loopback_address() {
        assert!(
            std::net::TcpStream::connect_timeout(
                &format!("{other}:{port}").parse().unwrap(),
                Duration::from_secs(2)
            )
            .is_err(),
            "port {port} is reachable on {other}"
        );
    }

    // Ctrl-C stops the server and removes the container.
    let pid = serving.0.id().to_string();
    run("kill", &["-INT", &pid]);
    let start = Instant::now();
    while serving.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "cog serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        client.get(format!("{base}/health-check")).send().is_err(),
        "still serving after Ctrl-C"
    );
    if runtime != "runc" {
        let left = run(
            runtime,
            &["ps", "-a", "-q", "--filter", &format!("publish={port}")],
        );
        assert!(left.trim().is_empty(), "containers left: {left}");
    }
}

/// An address of this machine other than loopback, if it has one.
fn non_loopback_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

#[test]
fn serve_answers_http_on_docker() {
    require_tool("docker", "docker.io");
    serve_and_query("docker");
}

#[test]
fn serve_answers_http_with_no_daemon() {
    require_tool("runc", "runc");
    serve_and_query("runc");
}

#[test]
fn inputs_the_schema_rejects_fail_before_any_build() {
    let (_root, dir) = copy_project(&examples_dir().join("hello"), "hello");
    let empty_cache = tempfile::tempdir().unwrap();
    let output = cog_command(&dir, empty_cache.path(), &["run", "-i", "nope=1"])
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("unknown input \"nope\"; valid inputs are: text"),
        "{stderr}"
    );
    let output = cog_command(&dir, empty_cache.path(), &["predict", "-i", "text"])
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("\"cog predict\" is deprecated, use \"cog run\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("Failed to parse input 'text', expected format is 'name=value'"),
        "{stderr}"
    );
    // Nothing was built or pulled.
    assert!(
        !empty_cache.path().join("images").exists(),
        "an image was built"
    );
}

#[test]
fn no_runtime_says_what_to_install() {
    let (_root, dir) = copy_project(&examples_dir().join("hello"), "hello");
    let empty_path = tempfile::tempdir().unwrap();
    let output = cog_command(&dir, &cache(), &["run", "-i", "text=x"])
        .env("PATH", empty_path.path())
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("no container runtime found: install Docker"),
        "{stderr}"
    );
    assert!(
        stderr.contains("podman (apt-get install podman) or runc (apt-get install runc)"),
        "{stderr}"
    );
    let output = cog_command(&dir, &cache(), &["serve", "--runtime", "podman"])
        .env("PATH", empty_path.path())
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("--runtime podman: `podman` is not installed"),
        "{stderr}"
    );
}

#[test]
fn a_failing_setup_shows_its_logs() {
    require_tool("docker", "docker.io");
    let (_root, dir) = copy_project(&examples_dir().join("hello"), "broken");
    let mut predict = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("predict.py"))
        .unwrap();
    // A subclass whose setup prints, then fails.
    writeln!(
        predict,
        "\n\nclass Broken(Predictor):\n    def setup(self) -> None:\n        print(\"loading weights from /nowhere\")\n        raise RuntimeError(\"weights are missing\")\n"
    )
    .unwrap();
    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  python_version: \"3.11\"\nrun: \"predict.py:Broken\"\n",
    )
    .unwrap();
    for runtime in ["docker", "runc"] {
        let output = cog(
            &dir,
            &[
                "run",
                "--runtime",
                runtime,
                "-i",
                "text=x",
                "--setup-timeout",
                "240",
            ],
        );
        let stderr = failed(&output);
        assert!(stderr.contains("Model setup failed"), "{runtime}: {stderr}");
        assert!(
            stderr.contains("weights are missing"),
            "{runtime}: {stderr}"
        );
        assert!(
            stderr.contains("loading weights from /nowhere"),
            "{runtime}: {stderr}"
        );
    }
}

#[test]
fn ctrl_c_during_setup_removes_the_container() {
    let (_root, dir) = copy_project(&examples_dir().join("hello"), "slow");
    let mut predict = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("predict.py"))
        .unwrap();
    writeln!(
        predict,
        "\n\nclass Slow(Predictor):\n    def setup(self) -> None:\n        import time\n        time.sleep(600)\n"
    )
    .unwrap();
    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  python_version: \"3.11\"\nrun: \"predict.py:Slow\"\n",
    )
    .unwrap();
    for runtime in ["docker", "runc"] {
        require_tool(
            runtime,
            if runtime == "docker" {
                "docker.io"
            } else {
                runtime
            },
        );
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = cog_command(
            &dir,
            &cache(),
            &["run", "--runtime", runtime, "-i", "text=x"],
        )
        .env("COG_LOG", "cog::runtime=debug")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
        let start = Instant::now();
        let id = loop {
            let text = std::fs::read_to_string(log.path()).unwrap();
            if text.contains("started container ") {
                break started_container(&text);
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "{runtime}: cog run exited: {text}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "{runtime}: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        std::thread::sleep(Duration::from_secs(1));
        run("kill", &["-INT", &child.id().to_string()]);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{runtime}");
        assert_container_gone(runtime, &id, "after Ctrl-C");
    }
}

#[test]
fn run_an_image_only_the_daemon_has() {
    require_tool("docker", "docker.io");
    let (root, dir) = copy_project(&examples_dir().join("hello"), "hello");
    let tar = root.path().join("hello.tar");
    ok(&cog(
        &dir,
        &[
            "build",
            "-t",
            "run-e2e-daemon:v1",
            "--output",
            tar.to_str().unwrap(),
        ],
    ));
    run("docker", &["load", "-i", tar.to_str().unwrap()]);
    run(
        "docker",
        &["tag", "run-e2e-daemon:v1", "run-e2e-daemon-only:v1"],
    );
    // A cache that has never seen it: the schema comes from the daemon's copy of the labels.
    let empty_cache = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let output = cog_command(
        elsewhere.path(),
        empty_cache.path(),
        &[
            "run",
            "run-e2e-daemon-only:v1",
            "--runtime",
            "docker",
            "-i",
            "text=daemon",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(ok(&output), "hello daemon");
    let output = cog_command(
        elsewhere.path(),
        empty_cache.path(),
        &[
            "run",
            "run-e2e-daemon-only:v1",
            "--runtime",
            "docker",
            "-i",
            "text=1",
            "-i",
            "extra=2",
        ],
    )
    .output()
    .unwrap();
    let stderr = failed(&output);
    assert!(stderr.contains("unknown input \"extra\""), "{stderr}");
}
