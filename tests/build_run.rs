//! `build.run` through the CLI, as a user sees it: commands change the image as Cog's `RUN`
//! steps do (apt, pip, deletions as whiteouts, seen by `cog run`, `docker run` and
//! `podman run`), the same deterministic commands give the same digest from clean caches and for
//! an unprivileged user, a secret is read and stored nowhere, and a failing command says why.
//! Needs runc, newuidmap (uidmap), Docker and podman, as CI installs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cog::oci::Platform;
use common::registry::{busybox_image, layout_of, temp_store};
use common::users::{TestUser, shared_dir};
use common::{failed, ok};

fn cog_exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("cog")
}

fn cog(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    cog_with(dir, cache, args, &[])
}

fn cog_with(dir: &Path, cache: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(cog_exe())
        .current_dir(dir)
        .args(args)
        .env("COG_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env("BUILDKIT_PROGRESS", "plain")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

/// A busybox base as an OCI layout under `dir`, and its `oci:` reference.
fn busybox_base(dir: &Path) -> String {
    let (_store_dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), dir, "latest");
    format!("oci:{}:latest", layout.display())
}

fn write_project(dir: &Path, cog_yaml: &str, predict: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cog.yaml"), cog_yaml).unwrap();
    std::fs::write(dir.join("predict.py"), predict).unwrap();
}

const ECHO_PREDICTOR: &str = "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return 'ok'\n";

/// Commands any machine runs the same way: files, a directory with a mode, a link, a deletion.
const DETERMINISTIC: &str = "build:\n  python_version: \"3.11\"\n  run:\n    - echo hi > /etc/hello\n    - mkdir -p /opt/app && echo x > /opt/app/f && chmod 600 /opt/app/f && ln -s /etc/hello /opt/app/link\n    - rm /etc/marker\npredict: \"predict.py:Predictor\"\n";

/// `COG_CA_CERT` for commands that download over HTTPS: this machine's extra certificates
/// (the HTTPS proxy's), when it has any.
fn ca_cert_dir() -> Option<&'static str> {
    let dir = "/usr/local/share/ca-certificates";
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "crt"))
        .then_some(dir)
}

#[test]
fn commands_change_the_image_as_cogs_run_steps_do() {
    common::require_tool("runc", "runc");
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let project = work.path().join("project");
    let yaml = "build:\n  python_version: \"3.11\"\n  run:\n    - apt-get update -qq && apt-get install -y -qq --no-install-recommends jq\n    - python -m pip install --no-cache-dir six==1.16.0\n    - rm /etc/issue\npredict: \"predict.py:Predictor\"\n";
    let predictor = "import os, shutil\nfrom cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        import six\n        return f\"{shutil.which('jq')} {six.__version__} {os.path.exists('/etc/issue')}\"\n";
    write_project(&project, yaml, predictor);
    let tarball = work.path().join("image.tar");
    let mut build = Command::new(cog_exe());
    build
        .current_dir(&project)
        .args(["build", "-t", "cog-build-run-test", "--output"])
        .arg(&tarball)
        .env("COG_CACHE_DIR", &cache)
        .env("BUILDKIT_PROGRESS", "plain");
    if let Some(dir) = ca_cert_dir() {
        build.env("COG_CA_CERT", dir);
    }
    let output = build.output().unwrap();
    ok(&output);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("[1/") && log.contains("RUN apt-get update"),
        "{log}"
    );

    let expected = "/usr/bin/jq 1.16.0 False";
    // `cog run` builds the project again: with the same CA, the same image.
    let ca: Vec<(&str, &str)> = ca_cert_dir()
        .map(|dir| vec![("COG_CA_CERT", dir)])
        .unwrap_or_default();
    let run = cog_with(&project, &cache, &["run", "--runtime", "runc"], &ca);
    assert_eq!(ok(&run), expected);

    // The exported image, in the engines: the deletion is a whiteout there too.
    let check = "import os, shutil, six; print(shutil.which('jq'), six.__version__, os.path.exists('/etc/issue'))";
    for engine in ["docker", "podman"] {
        let loaded = common::run(engine, &["load", "-i", tarball.to_str().unwrap()]);
        assert!(loaded.contains("cog-build-run-test"), "{loaded}");
        let printed = common::run(
            engine,
            &[
                "run",
                "--rm",
                "--entrypoint",
                "python",
                "cog-build-run-test:latest",
                "-c",
                check,
            ],
        );
        assert_eq!(printed.trim(), expected, "{engine}");
        let _ = Command::new(engine)
            .args(["rmi", "-f", "cog-build-run-test:latest"])
            .output();
    }
}

#[test]
fn deterministic_commands_give_one_digest_from_clean_caches_and_for_any_user() {
    common::require_tool("runc", "runc");
    common::require_tool("newuidmap", "uidmap");
    let work = shared_dir();
    let base = busybox_base(&work.path().join("base"));
    let build = |project: &Path, cache: &Path| {
        write_project(project, DETERMINISTIC, ECHO_PREDICTOR);
        ok(&cog(
            project,
            cache,
            &["build", "--base", &base, "-t", "det"],
        ))
    };
    let first = build(&work.path().join("p1"), &work.path().join("c1"));
    let second = build(&work.path().join("p2"), &work.path().join("c2"));
    assert_eq!(first, second, "two clean caches, one digest");

    // An unprivileged user, with no Docker access, in a project and cache of its own.
    let user = TestUser::new("run", true);
    let project = work.path().join("p3");
    write_project(&project, DETERMINISTIC, ECHO_PREDICTOR);
    common::run("chmod", &["-R", "a+rwX", work.path().to_str().unwrap()]);
    let output = Command::new("setpriv")
        .args([
            "--reuid",
            &user.name,
            "--regid",
            &user.name,
            "--init-groups",
            "--",
        ])
        .arg(cog_exe())
        .args(["build", "--base", &base, "-t", "det"])
        .current_dir(&project)
        .env("HOME", format!("/home/{}", user.name))
        .env("COG_CACHE_DIR", work.path().join("c3"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CACHE_HOME")
        .output()
        .unwrap();
    assert_eq!(
        ok(&output),
        first,
        "root and an unprivileged user, one digest"
    );
}

/// Every file under `dir`, and every blob decompressed, as bytes.
fn everything_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            if flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .is_ok()
            {
                out.push((entry.path().to_path_buf(), plain));
            }
        }
        out.push((entry.path().to_path_buf(), bytes));
    }
    out
}

#[test]
fn a_secret_is_read_by_its_command_and_stored_nowhere() {
    common::require_tool("runc", "runc");
    let work = tempfile::tempdir().unwrap();
    let base = busybox_base(&work.path().join("base"));
    let cache = work.path().join("cache");
    let project = work.path().join("project");
    let secret = "tok-7f3a9c1e-very-secret-bytes";
    let secret_file = work.path().join("tok.txt");
    std::fs::write(&secret_file, secret).unwrap();
    // The command compares the secret with a second copy mounted as another secret: the value
    // is never in the config, the command line or the output.
    let yaml = "build:\n  python_version: \"3.11\"\n  run:\n    - command: cmp /run/secrets/tok /run/secrets/same && echo the secret was read\n      mounts:\n        - {type: secret, id: tok, target: /run/secrets/tok}\n        - {type: secret, id: same, target: /run/secrets/same}\npredict: \"predict.py:Predictor\"\n";
    write_project(&project, yaml, ECHO_PREDICTOR);
    let src = format!("id=tok,src={}", secret_file.display());
    let same = format!("id=same,src={}", secret_file.display());
    let output = cog(
        &project,
        &cache,
        &[
            "build",
            "--base",
            &base,
            "--secret",
            &src,
            "--secret",
            &same,
            "--progress",
            "json",
        ],
    );
    ok(&output);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("the secret was read"), "{log}");
    assert!(!log.contains(secret), "the secret is in the build's output");
    for (path, bytes) in everything_under(&cache) {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is in {}",
            path.display()
        );
    }
    // Without the secret, a build whose command is cached still works; with --no-cache it must
    // have it, and says which.
    ok(&cog(&project, &cache, &["build", "--base", &base]));
    let stderr = failed(&cog(
        &project,
        &cache,
        &["build", "--base", &base, "--no-cache"],
    ));
    assert!(
        stderr.contains("\"tok\"") && stderr.contains("--secret"),
        "{stderr}"
    );
}

#[test]
fn a_failing_command_says_why_and_the_next_build_runs_it_again() {
    common::require_tool("runc", "runc");
    let work = tempfile::tempdir().unwrap();
    let base = busybox_base(&work.path().join("base"));
    let cache = work.path().join("cache");
    let project = work.path().join("project");
    let failing = "build:\n  python_version: \"3.11\"\n  run:\n    - echo first line; echo second line >&2; exit 3\npredict: \"predict.py:Predictor\"\n";
    write_project(&project, failing, ECHO_PREDICTOR);
    let blobs_before = blob_count(&cache);
    for _ in 0..2 {
        // Run twice: a failure is not cached.
        let stderr = failed(&cog(&project, &cache, &["build", "--base", &base]));
        assert!(stderr.contains("failed with exit code 3"), "{stderr}");
        assert!(stderr.contains("second line"), "{stderr}");
        assert!(stderr.contains("echo first line"), "{stderr}");
        assert!(!stderr.contains("(cached)"), "{stderr}");
    }
    // The store is consistent: every blob is what its name says.
    let blobs = cache.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs).unwrap() {
        let entry = entry.unwrap();
        let bytes = std::fs::read(entry.path()).unwrap();
        let digest = layers::Digest::of(&bytes);
        assert_eq!(
            digest.hex(),
            entry.file_name().to_str().unwrap(),
            "a blob that is not what its name says"
        );
    }
    assert!(blob_count(&cache) >= blobs_before);
    let fixed = failing.replace("exit 3", "exit 0");
    write_project(&project, &fixed, ECHO_PREDICTOR);
    ok(&cog(&project, &cache, &["build", "--base", &base]));
}

fn blob_count(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("blobs/sha256")).map_or(0, Iterator::count)
}
