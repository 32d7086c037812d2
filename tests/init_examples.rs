//! `cog init` and the example models, end to end on the machine's Docker Engine: each project is
//! built by our `cog build` on the default base (assembled from Debian packages), the tarball is
//! `docker load`ed and run with its port published on 127.0.0.1, and predictions are made over
//! HTTP (`POST /predictions`) with the outputs asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::registry::free_port;
use common::{copy_dir, ok, require_tool, run};
use serde_json::{Value, json};

const COG: &str = env!("CARGO_BIN_EXE_cog");

fn cog(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(COG)
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

/// A copy of `examples/<name>` (without locks or tarballs left by local builds).
fn example(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
        &dir,
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let tarball = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tar"));
        if file.starts_with("cog-") && file.contains(".lock") || tarball {
            std::fs::remove_file(path).unwrap();
        }
    }
    (root, dir)
}

/// A running container of a loaded image; removed with its image when dropped.
struct Served {
    name: String,
    tag: String,
    url: String,
}

impl Served {
    /// Builds `project` with `cog build`, loads the tarball into Docker, runs it with the port
    /// published on 127.0.0.1 and waits until `/health-check` says READY.
    fn build_and_start(project: &Path, tag: &str) -> Served {
        require_tool("docker", "docker.io");
        let cache = tempfile::tempdir().unwrap();
        let tarball = project.parent().unwrap().join("image.tar");
        let digest = ok(&cog(
            project,
            cache.path(),
            &["build", "-t", tag, "--output", tarball.to_str().unwrap()],
        ));
        assert!(digest.contains("sha256:"), "{digest}");
        let loaded = run("docker", &["load", "-i", tarball.to_str().unwrap()]);
        assert!(loaded.contains(tag), "docker load: {loaded}");
        let port = free_port();
        let name = format!("cog-rs-test-{}-{port}", std::process::id());
        let served = Served {
            name: name.clone(),
            tag: tag.to_string(),
            url: format!("http://127.0.0.1:{port}"),
        };
        run(
            "docker",
            &[
                "run",
                "-d",
                "--name",
                &name,
                "-p",
                &format!("127.0.0.1:{port}:5000"),
                tag,
            ],
        );
        served.wait_ready();
        served
    }

    fn logs(&self) -> String {
        let out = Command::new("docker")
            .args(["logs", &self.name])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn wait_ready(&self) {
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(response) = client.get(format!("{}/health-check", self.url)).send()
                && let Ok(body) = response.json::<Value>()
            {
                match body["status"].as_str() {
                    Some("READY") => return,
                    Some("SETUP_FAILED") => {
                        panic!("setup failed: {body:#}\n{}", self.logs())
                    }
                    _ => {}
                }
            }
            assert!(
                Instant::now() < deadline,
                "the model did not become READY in 180 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn predict(&self, input: &Value) -> Value {
        let response = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap()
            .post(format!("{}/predictions", self.url))
            .json(&json!({ "input": input }))
            .send()
            .unwrap();
        let status = response.status();
        let body: Value = response.json().unwrap();
        assert!(
            status.is_success() && body["status"] == "succeeded",
            "prediction failed ({status}): {body:#}\n{}",
            self.logs()
        );
        body
    }

    fn openapi(&self) -> Value {
        reqwest::blocking::get(format!("{}/openapi.json", self.url))
            .unwrap()
            .json()
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// A binary PPM (`P6`) of `width`×`height` RGB pixels.
fn ppm(width: usize, height: usize, pixel: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
    let mut out = format!("P6\n{width} {height}\n255\n").into_bytes();
    for y in 0..height {
        for x in 0..width {
            out.extend_from_slice(&pixel(x, y));
        }
    }
    out
}

/// Parses a binary PPM (`P6`, maxval 255) into (width, height, RGB rows).
fn parse_ppm(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if bytes[pos] == b'#' {
            while bytes[pos] != b'\n' {
                pos += 1;
            }
            continue;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8(bytes[start..pos].to_vec()).unwrap());
    }
    assert_eq!(fields[0], "P6");
    assert_eq!(fields[3], "255");
    let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let data = &bytes[pos + 1..];
    assert_eq!(data.len(), width * height * 3);
    let pixels = data.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
    (width, height, pixels)
}

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

#[test]
fn image_example_mirrors_and_scales_with_pillow_and_cwebp() {
    let (root, project) = example("image");
    let tag = "cog-rs-test/example-image:latest";
    let served = Served::build_and_start(&project, tag);

    // 8x4, left half red, right half blue; mirrored and scaled to 16 wide it is 16x8 with the
    // left half blue.
    let input = ppm(8, 4, |x, _| if x < 4 { RED } else { BLUE });
    std::fs::write(root.path().join("in.ppm"), &input).unwrap();
    let schema = served.openapi();
    let request = cog::inputs::request_inputs(
        &schema,
        &["image=@in.ppm".to_string(), "width=16".to_string()],
        None,
        root.path(),
    )
    .unwrap();
    assert!(
        request["image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/x-portable-pixmap;base64,")
    );
    let body = served.predict(&Value::Object(request));

    // Written the way `cog run` writes it: output.webp next to the caller.
    let out_dir = root.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let lines = cog::inputs::write_output(&schema, &body["output"], None, &out_dir).unwrap();
    let webp = out_dir.join("output.webp");
    assert_eq!(lines, vec![format!("Written output to {}", webp.display())]);
    let bytes = std::fs::read(&webp).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");

    // Decoded by the image's own dwebp (same system package) into a PPM we can read.
    let mount = format!("{}:/data", out_dir.display());
    run(
        "docker",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "dwebp",
            "-v",
            &mount,
            tag,
            "-quiet",
            "-ppm",
            "/data/output.webp",
            "-o",
            "/data/output.ppm",
        ],
    );
    let (width, height, pixels) = parse_ppm(&std::fs::read(out_dir.join("output.ppm")).unwrap());
    assert_eq!((width, height), (16, 8));
    for y in 0..height {
        for x in 0..width {
            let want = if x < 8 { BLUE } else { RED };
            assert_eq!(pixels[y * width + x], want, "pixel ({x}, {y})");
        }
    }

    // Inputs the schema rejects fail before anything is sent.
    let err = cog::inputs::request_inputs(
        &schema,
        &["image=@in.ppm".to_string(), "width=0".to_string()],
        None,
        root.path(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid input "width": number must be at least 1"#
    );
}

#[test]
fn streaming_example_concatenates_and_runs_four_at_once() {
    let (_root, project) = example("streaming");
    let tag = "cog-rs-test/example-streaming:latest";
    let served = Served::build_and_start(&project, tag);

    let schema = served.openapi();
    let output = &schema["components"]["schemas"]["Output"];
    assert_eq!(output["x-cog-array-display"], "concatenate");
    assert_eq!(output["x-cog-array-type"], "iterator");

    // Five words with 0.4 s before each: 2 s per prediction, at least 8 s if the four ran one by
    // one.
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let url = served.url.clone();
            std::thread::spawn(move || {
                let prompt = format!("prediction {i} streams five words");
                let response = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap()
                    .post(format!("{url}/predictions"))
                    .json(&json!({"input": {"prompt": prompt, "delay": 0.4}}))
                    .send()
                    .unwrap();
                let status = response.status();
                (prompt, status, response.json::<Value>().unwrap())
            })
        })
        .collect();
    for thread in threads {
        let (prompt, status, body) = thread.join().unwrap();
        assert!(
            status.is_success() && body["status"] == "succeeded",
            "{status}: {body:#}\n{}",
            served.logs()
        );
        let tokens: Vec<&str> = body["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(tokens.len(), 5, "{tokens:?}");
        assert_eq!(tokens.concat(), prompt);
        // And `cog run` prints it concatenated.
        let lines =
            cog::inputs::write_output(&schema, &body["output"], None, Path::new(".")).unwrap();
        assert_eq!(lines, vec![prompt]);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(7),
        "4 concurrent predictions of 2 s took {elapsed:?}: they did not overlap"
    );
}

#[test]
fn a_cog_init_project_plans_builds_and_runs_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("fresh-model");
    std::fs::create_dir_all(&project).unwrap();
    let cache = tempfile::tempdir().unwrap();

    let out = cog(&project, cache.path(), &["init"]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for file in [
        ".dockerignore",
        ".github/workflows/push.yaml",
        "cog.yaml",
        "requirements.txt",
        "run.py",
    ] {
        assert!(project.join(file).is_file(), "{file} missing");
        assert!(
            stderr.contains(&format!("Created {}", project.join(file).display())),
            "{stderr}"
        );
    }
    // A second init leaves the (edited) files alone.
    std::fs::write(project.join("requirements.txt"), "# mine\n").unwrap();
    let again = cog(&project, cache.path(), &["init"]);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Skipped existing requirements.txt"));
    assert_eq!(
        std::fs::read_to_string(project.join("requirements.txt")).unwrap(),
        "# mine\n"
    );

    let plan = ok(&cog(&project, cache.path(), &["plan", "--json"]));
    let plan: Value = serde_json::from_str(&plan).unwrap();
    assert!(plan.is_object(), "{plan:#}");

    let tag = "cog-rs-test/init-project:latest";
    let served = Served::build_and_start(&project, tag);
    let schema = served.openapi();
    let png = b"\x89PNG\r\n\x1a\nnot really";
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    let body = served.predict(&json!({"image": data_url, "scale": 2}));
    // The template returns a copy of its input image.
    let out_dir = tempfile::tempdir().unwrap();
    let lines = cog::inputs::write_output(&schema, &body["output"], None, out_dir.path()).unwrap();
    let written = out_dir.path().join("output.png");
    assert_eq!(
        lines,
        vec![format!("Written output to {}", written.display())],
        "{body:#}"
    );
    assert_eq!(std::fs::read(written).unwrap(), png, "{body:#}");
}
