//! GPU models. The base Cog's rule picks, named by `cog plan` with the reason; a build on a
//! CUDA image without Python refused, naming the way out.
//!
//! Python packages as Cog resolves them (reference 5.4): on an index laid out like
//! download.pytorch.org (`/whl/cu121/torch/`, `/whl/cpu/torch/`), a GPU model locks the
//! `+cu121` wheel for `build.cuda: "12.1"` and a CPU model the `+cpu` one; PyPI's plain
//! `torch-2.1.0` is never taken, and a newer numpy on the PyTorch index does not shadow PyPI's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "../wheels/tests/common/server.rs"]
mod server;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;

use server::{Server, wheel};

const CP311: &str = "cp311-cp311-linux_x86_64";
const MANYLINUX: &str = "cp311-cp311-manylinux_2_17_x86_64";

/// A PEP 503 page at `/<index>/<name>/` linking `/<index>/<file>`.
fn publish(server: &Server, index: &str, name: &str, versions: &[(&str, &str)]) {
    let mut html = String::from("<!DOCTYPE html><html><body>\n");
    for (version, tag) in versions {
        let (file, bytes) = wheel(
            name,
            version,
            tag,
            &[(&format!("{name}/__init__.py"), version.as_bytes(), 0o644)],
            &[],
            None,
        );
        let href = file.replace('+', "%2B");
        let sha = server.put_file(&file, bytes.clone());
        server.put(
            &format!("{index}/{href}"),
            "application/octet-stream",
            bytes,
        );
        let _ = writeln!(
            html,
            "<a href=\"{index}/{href}#sha256={sha}\">{file}</a><br/>"
        );
    }
    html.push_str("</body></html>\n");
    server.put(&format!("{index}/{name}/"), "text/html", html.into_bytes());
}

fn indexes() -> Server {
    let server = Server::start();
    publish(&server, "/simple", "torch", &[("2.1.0", MANYLINUX)]);
    publish(&server, "/simple", "numpy", &[("1.26.4", MANYLINUX)]);
    publish(&server, "/whl/cu121", "torch", &[("2.1.0+cu121", CP311)]);
    publish(&server, "/whl/cu121", "numpy", &[("9.9.9", MANYLINUX)]);
    publish(&server, "/whl/cu118", "torch", &[("2.1.0+cu118", CP311)]);
    publish(&server, "/whl/cpu", "torch", &[("2.1.0+cpu", CP311)]);
    publish(&server, "/whl/cpu", "numpy", &[("9.9.9", MANYLINUX)]);
    server
}

fn plan(dir: &Path, server: &Server, yaml: &str) -> Output {
    std::fs::write(dir.join("cog.yaml"), yaml).unwrap();
    std::fs::write(dir.join("requirements.txt"), "torch==2.1.0\nnumpy\n").unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_cog"))
        .current_dir(dir)
        .args(["plan", "--json", "--resolve", "--base", "scratch"])
        .env("NO_COLOR", "1")
        .env("COG_CACHE_DIR", dir.join(".cache"))
        .env("PIP_INDEX_URL", format!("{}/simple/", server.base))
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("COG_PYTORCH_INDEX_URL", format!("{}/whl", server.base))
        .output()
        .unwrap()
}

/// `(name, version, url)` of every wheel in the plan.
fn locked(output: &Output) -> Vec<(String, String, String)> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut found = Vec::new();
    for layer in plan["layers"].as_array().unwrap() {
        if layer["content"]["kind"] == "wheels" {
            for p in layer["content"]["packages"].as_array().unwrap() {
                found.push((
                    p["name"].as_str().unwrap().to_owned(),
                    p["version"].as_str().unwrap().to_owned(),
                    p["url"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    found
}

fn version_of<'a>(
    packages: &'a [(String, String, String)],
    name: &str,
) -> &'a (String, String, String) {
    packages
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {packages:?}"))
}

#[test]
fn gpu_and_cpu_models_lock_the_pytorch_wheel_cog_would_install() {
    let server = indexes();
    let base = &server.base;
    let cases = [
        (
            "build:\n  gpu: true\n  cuda: '12.1'\n  python_version: '3.11'\n  python_requirements: requirements.txt\n",
            "2.1.0+cu121",
            "/whl/cu121/",
        ),
        // The highest CUDA not above build.cuda: 12.0 has no torch 2.1.0 row, 11.8 has.
        (
            "build:\n  gpu: true\n  cuda: '12.0'\n  python_version: '3.11'\n  python_requirements: requirements.txt\n",
            "2.1.0+cu118",
            "/whl/cu118/",
        ),
        (
            "build:\n  python_version: '3.11'\n  python_requirements: requirements.txt\n",
            "2.1.0+cpu",
            "/whl/cpu/",
        ),
    ];
    for (yaml, want, index) in cases {
        let dir = tempfile::tempdir().unwrap();
        let packages = locked(&plan(dir.path(), &server, yaml));
        let (_, version, url) = version_of(&packages, "torch");
        assert_eq!(version, want, "{yaml}");
        assert!(url.starts_with(&format!("{base}{index}")), "{url}");
        // PyTorch's index is only for the torch packages.
        let (_, numpy, url) = version_of(&packages, "numpy");
        assert_eq!(numpy, "1.26.4", "{url}");
        assert!(url.contains("/files/") || url.contains("/simple/"), "{url}");
    }
}

fn cog(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cog"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("COG_CACHE_DIR", dir.join(".cache"))
        .output()
        .unwrap()
}

#[test]
fn cog_plan_names_the_cuda_base_and_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cog.yaml"),
        "build:\n  gpu: true\n  python_version: '3.11'\n  python_packages: ['torch==2.0.1']\n",
    )
    .unwrap();
    let output = cog(dir.path(), &["plan", "--json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        plan["base"]["reference"],
        "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"
    );
    let reason = plan["base_reason"].as_str().unwrap();
    assert!(reason.contains("CUDA 11.8 and cuDNN 8"), "{reason}");
    let text = cog(dir.path(), &["plan"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("base nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04 (gpu: true"),
        "{stdout}"
    );
    // Cog's base image when asked, on COG_REGISTRY_HOST.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cog"))
        .current_dir(dir.path())
        .args(["plan", "--json", "--use-cog-base-image"])
        .env("COG_CACHE_DIR", dir.path().join(".cache"))
        .env("COG_REGISTRY_HOST", "127.0.0.1:1/mirror")
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        plan["base"]["reference"],
        "127.0.0.1:1/mirror/cog-base:cuda11.8-python3.11-torch2.0.1"
    );
    assert_eq!(
        plan["image"]["labels"]["run.cog.cog-base-image-name"],
        "127.0.0.1:1/mirror/cog-base:cuda11.8-python3.11-torch2.0.1"
    );
    // Two base flags: Cog's error.
    let output = cog(
        dir.path(),
        &[
            "plan",
            "--use-cog-base-image",
            "--use-cuda-base-image",
            "false",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "The flags --use-cog-base-image and --use-cuda-base-image are mutually exclusive"
        ),
        "{stderr}"
    );
    // Building: the CUDA image has no Python, and cog-rs does not install one yet.
    let output = cog(dir.path(), &["build", "-t", "gpu-model"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr
            .contains("base image nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04 has no Python 3.11")
            && stderr.contains("--base"),
        "{stderr}"
    );
}
