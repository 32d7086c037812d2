//! GPU models. The base Cog's rule picks, named by `cog plan` with the reason.
//!
//! A base named as Cog's CUDA image (`nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04`), made here
//! from Debian packages (Debian's `python3`, no `python` command) and a fake `/usr/local/cuda`,
//! served by a local registry and reached through a `registries.conf` mirror of
//! `docker.io/nvidia/cuda`: a `gpu: true` model builds on it, its base layers keep the
//! registry's digests, its packages import from `dist-packages`, and `python` runs (linked to
//! `python3`). A Debian CUDA stand-in without any Python gets `python3.11` from bookworm's
//! archive; a CUDA image that is not Debian or Ubuntu and has no Python is refused, naming the
//! way out. On Docker without an NVIDIA driver, the container runs again without GPUs.
//!
//! Python packages as Cog resolves them (reference 5.4): on an index laid out like
//! download.pytorch.org (`/whl/cu121/torch/`, `/whl/cpu/torch/`), a GPU model locks the
//! `+cu121` wheel for `build.cuda: "12.1"` and a CPU model the `+cpu` one; PyPI's plain
//! `torch-2.1.0` is never taken, and a newer numpy on the PyTorch index does not shadow PyPI's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

#[path = "../wheels/tests/common/server.rs"]
mod server;

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;

use cog::oci::{self, ImageConfig};
use common::registry::{TestRegistry, busybox_image, layout_of, temp_store};
use common::{failed, ok, require_tool};

use server::{Server, wheel};

const CP311: &str = "cp311-cp311-linux_x86_64";
const MANYLINUX: &str = "cp311-cp311-manylinux_2_17_x86_64";

/// A PEP 503 page at `/<index>/<name>/` linking `/<index>/<file>`.
fn publish(server: &Server, index: &str, name: &str, versions: &[(&str, &str)]) {
    let mut html = String::from("<!DOCTYPE html><html><body>\n");
    for (version, tag) in versions {
        let init = format!("__version__ = {version:?}\n");
        let (file, bytes) = wheel(
            name,
            version,
            tag,
            &[(&format!("{name}/__init__.py"), init.as_bytes(), 0o644)],
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
}

/// The mirror apt on this machine uses, else the default (deb.debian.org).
fn machine_mirror() -> Option<String> {
    let text = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok()?;
    debian::archive::mirror_from_deb822(&text)
}

/// A stand-in for Cog's CUDA image: Debian bookworm minbase, with `python3` (Debian's, without
/// `python-is-python3`) when `python`, then a layer with a fake `/usr/local/cuda`, pushed to
/// `registry` as `hub/nvidia/cuda:<tag>`. Returns its layers' digests.
fn push_cuda_base(registry: &TestRegistry, tag: &str, python: bool) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = debian::ArchiveConfig::debian("bookworm", "amd64");
    if let Some(mirror) = machine_mirror() {
        config = config.with_mirror(&mirror);
    }
    let archive = rt.block_on(debian::Archive::fetch(config)).unwrap();
    let mut names = debian::minbase_names(&archive.index);
    if python {
        names.push("python3".to_owned());
    }
    let lock = debian::resolve(&archive, &names, b"", "amd64").unwrap();
    let (dir, store) = temp_store();
    let opts = debian::InstallOptions {
        new_root: true,
        ..debian::InstallOptions::default()
    };
    let system = rt
        .block_on(debian::install(&lock, b"", &store, &opts))
        .unwrap();
    let mut writer = layers::LayerWriter::new(
        &store,
        &layers::LayerOptions::new(layers::Compression::gzip()),
    )
    .unwrap();
    for d in [
        "usr/local/cuda",
        "usr/local/cuda/lib64",
        "usr/local/cuda/bin",
    ] {
        writer.append_dir(d, 0o755).unwrap();
    }
    let version = br#"{"cuda": {"name": "CUDA SDK", "version": "11.8.0"}}"#;
    writer
        .append_file(
            "usr/local/cuda/version.json",
            0o644,
            version.len() as u64,
            &mut &version[..],
        )
        .unwrap();
    writer
        .append_file(
            "usr/local/cuda/lib64/libcudart.so.11.0",
            0o644,
            4,
            &mut &b"fake"[..],
        )
        .unwrap();
    let cuda = writer.finish().unwrap();
    let mut image_config = ImageConfig::new_linux_amd64();
    let container = image_config.container_config_mut();
    container.env = Some(vec![
        "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "CUDA_VERSION=11.8.0".to_string(),
        "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64".to_string(),
        "NVIDIA_VISIBLE_DEVICES=all".to_string(),
    ]);
    let layers = vec![system.layer, cuda];
    let digests = layers.iter().map(|l| l.digest.to_string()).collect();
    let image = oci::assemble(&store, &image_config, &layers, BTreeMap::new()).unwrap();
    let layout = layout_of(&store, &image.image_ref(), dir.path(), tag);
    registry.push_layout(&layout, tag, &format!("hub/nvidia/cuda:{tag}"), false);
    digests
}

/// A `registries.conf` sending `docker.io/nvidia/cuda` to a dead mirror, then to `registry`'s
/// `hub/nvidia/cuda`.
fn registries_conf(dir: &Path, registry: &TestRegistry) -> std::path::PathBuf {
    let path = dir.join("registries.conf");
    std::fs::write(
        &path,
        format!(
            "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nprefix = \"docker.io/nvidia/cuda\"\nlocation = \"docker.io/nvidia/cuda\"\n\n[[registry.mirror]]\nlocation = \"127.0.0.1:1/dead\"\n\n[[registry.mirror]]\nlocation = \"{}\"\n",
            registry.reference("hub/nvidia/cuda")
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_gpu_model_builds_on_a_cuda_base_from_a_registries_conf_mirror() {
    for (tool, package) in [
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("runc", "runc"),
    ] {
        require_tool(tool, package);
    }
    let registry = TestRegistry::start();
    let tag = "11.8.0-cudnn8-devel-ubuntu22.04";
    let base_layers = push_cuda_base(&registry, tag, true);
    // A CUDA image without Python, for CUDA 12.1.
    {
        let (dir, store) = temp_store();
        let image = busybox_image(&store, &oci::Platform::linux_amd64());
        let no_python = "12.1.1-cudnn8-devel-ubuntu22.04";
        let layout = layout_of(&store, &image.image_ref(), dir.path(), no_python);
        registry.push_layout(
            &layout,
            no_python,
            &format!("hub/nvidia/cuda:{no_python}"),
            false,
        );
    }
    let index = Server::start();
    publish(&index, "/simple", "numpy", &[("1.26.4", "py3-none-any")]);

    let work = tempfile::tempdir().unwrap();
    let conf = registries_conf(work.path(), &registry);
    let dir = work.path().join("model");
    std::fs::create_dir_all(&dir).unwrap();
    let cache = work.path().join("cache");
    let cog = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cog"))
            .current_dir(&dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env("COG_CACHE_DIR", &cache)
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .env("PIP_INDEX_URL", format!("{}/simple/", index.base))
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("COG_APT_MIRROR", machine_mirror().unwrap_or_default())
            .env_remove("COG_RUNTIME")
            .output()
            .unwrap()
    };

    // No Python on the CUDA 12.1 image: refused, naming the image and the way out.
    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  gpu: true\n  cuda: '12.1'\n  python_version: '3.11'\n  python_packages: ['numpy']\n",
    )
    .unwrap();
    let err = failed(&cog(&["build", "-t", "gpu-model", "--no-load"]));
    assert!(
        err.contains(
            "base image nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04 has no Python on its PATH"
        ) && err.contains("--base"),
        "{err}"
    );

    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  gpu: true\n  cuda: '11.8'\n  python_version: '3.11'\n  python_packages: ['numpy']\n",
    )
    .unwrap();
    let plan = ok(&cog(&["plan"]));
    assert!(
        plan.contains(&format!("base nvidia/cuda:{tag} (gpu: true")),
        "{plan}"
    );
    let out = work.path().join("image");
    let build = cog(&[
        "build",
        "-t",
        "gpu-model",
        "--no-load",
        "--output",
        out.to_str().unwrap(),
    ]);
    // The dead mirror is reported and the next one used.
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(
        stderr.contains(&format!(
            "docker.io/nvidia/cuda:{tag}: mirror 127.0.0.1:1/dead:{tag} failed, trying the next"
        )),
        "{stderr}"
    );
    let digest = ok(&build);
    let digest = digest.trim();
    // The base's layers are the registry's blobs, untouched.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            cache
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers[..2],
        [base_layers[0].as_str(), base_layers[1].as_str()]
    );
    // Debian's python3 imports the package from dist-packages; `python` runs it.
    let exec = ok(&cog(&[
        "exec",
        "--runtime",
        "runc",
        "python",
        "-c",
        "import numpy, sys; print(numpy.__file__); print(sys.executable)",
    ]));
    assert!(
        exec.contains("/usr/local/lib/python3.11/dist-packages/numpy/__init__.py"),
        "{exec}"
    );
    // A Debian CUDA base without any Python: python3.11 comes from its archive (bookworm),
    // locked with the system packages, and `python` is linked to it.
    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  gpu: true\n  cuda: '12.4'\n  python_version: '3.11'\n  python_packages: ['numpy']\n",
    )
    .unwrap();
    let plan: serde_json::Value = serde_json::from_str(&ok(&cog(&["plan", "--json"]))).unwrap();
    let reference = plan["base"]["reference"].as_str().unwrap().to_owned();
    let bare_tag = reference.strip_prefix("nvidia/cuda:").unwrap();
    push_cuda_base(&registry, bare_tag, false);
    let exec = ok(&cog(&[
        "exec",
        "--runtime",
        "runc",
        "python",
        "-c",
        "import numpy, sys; print(numpy.__file__); print(sys.version_info[:2])",
    ]));
    assert!(
        exec.contains("/usr/local/lib/python3.11/dist-packages/numpy/__init__.py")
            && exec.contains("(3, 11)"),
        "{exec}"
    );
    let lock = debian::Lock::read(&dir.join(debian::LOCK_FILE_NAME)).unwrap();
    assert!(
        lock.requested.contains(&"python3.11".to_owned()),
        "{:?}",
        lock.requested
    );
    std::fs::remove_file(dir.join(debian::LOCK_FILE_NAME)).unwrap();
    std::fs::write(
        dir.join("cog.yaml"),
        "build:\n  gpu: true\n  cuda: '11.8'\n  python_version: '3.11'\n  python_packages: ['numpy']\n",
    )
    .unwrap();

    // Docker: `gpu: true` asks for all GPUs; without an NVIDIA driver (as here) the container
    // runs again without them, with Cog's warning. Particular devices keep Docker's error.
    if docker_answers() {
        let output = cog(&[
            "exec",
            "--runtime",
            "docker",
            "python",
            "-c",
            "import numpy",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("Missing device driver") {
            eprintln!("docker has no NVIDIA driver: ran again without GPUs");
            assert!(output.status.success(), "{stderr}");
            let err = failed(&cog(&[
                "exec",
                "--runtime",
                "docker",
                "--gpus",
                "device=0",
                "python",
                "-c",
                "import numpy",
            ]));
            assert!(err.contains("could not select device driver"), "{err}");
        } else {
            // A host with NVIDIA's runtime: the GPUs were given.
            assert!(output.status.success(), "{stderr}");
        }
    }
}

fn docker_answers() -> bool {
    std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}
