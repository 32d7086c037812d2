//! `cog push` and `cog build --push` against the real registry (Debian's `docker-registry`): with
//! htpasswd auth and credentials from a temporary Docker config, checked with skopeo; a re-push
//! after a code-only change counted request by request through a recording proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use cog::oci::{self, ImageConfig, Platform, media_types};

use cog::registry::{Client, ClientOptions, ManifestFormat, Reference};
use common::proxy::{FrontOptions, FrontProxy};
use common::registry::{
    TestRegistry, busybox_image, busybox_index, free_port, layout_of, temp_store,
};
use common::{failed, noise, ok, require_tool, run};
use layers::{BlobStore, Compression, Digest, LayerInfo, LayerOptions, LayerWriter};

const COG: &str = env!("CARGO_BIN_EXE_cog");

struct Project {
    _root: tempfile::TempDir,
    dir: PathBuf,
    cache: PathBuf,
    base: String,
}

/// A copy of `examples/hello`, a cache and Docker config in temp dirs, and a busybox base as an
/// OCI layout.
fn project() -> Project {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("hello");
    // What git tracks of the example, never what a user's run left beside it (.cog/, hello.tar).
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello"),
        &dir,
    );
    let cache = root.path().join("cache");
    let (store_dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout_dir = root.path().join("base");
    std::fs::create_dir_all(&layout_dir).unwrap();
    let layout = layout_of(&store, &image.image_ref(), &layout_dir, "latest");
    drop(store_dir);
    let base = format!("oci:{}:latest", layout.display());
    Project {
        _root: root,
        dir,
        cache,
        base,
    }
}

impl Project {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(COG);
        command
            .args(args)
            .current_dir(&self.dir)
            .env("COG_CACHE_DIR", &self.cache)
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("BUILDKIT_PROGRESS", "plain")
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("COG_PUSH_CONCURRENCY");
        command
    }

    fn cog(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `cog ARGS` with `input` on stdin and extra environment variables.
    fn cog_with(&self, args: &[&str], input: &str, env: &[(&str, String)]) -> Output {
        let mut command = self.command(args);
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn docker_config_dir(&self) -> PathBuf {
        self.cache.join("docker-config")
    }

    fn login(&self, registry: &str, user: &str, password: &str) {
        let config = self.cache.join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        std::fs::write(
            config.join("config.json"),
            format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
    }
}

#[test]
fn build_push_to_an_htpasswd_registry_with_docker_config_credentials() {
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start_with_htpasswd("pusher", "s3cret");
    let project = project();
    project.login(&registry.host, "pusher", "s3cret");
    let target = registry.reference("me/hello:v1");
    let digest = ok(&project.cog(&["build", "--push", "-t", &target, "--base", &project.base]));
    let inspect = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "pusher:s3cret",
            &format!("docker://{target}"),
        ],
    );
    let inspected: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str(), "{inspect}");
    let labels = inspected["Labels"].as_object().unwrap();
    assert!(labels.contains_key("run.cog.version"), "{inspect}");
    assert!(labels.contains_key("run.cog.openapi_schema"), "{inspect}");

    // The pushed blobs are readable: skopeo copies the image back into a layout.
    let back = tempfile::tempdir().unwrap();
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-creds",
            "pusher:s3cret",
            &format!("docker://{target}"),
            &format!("oci:{}:v1", back.path().display()),
        ],
    );

    // `cog build` takes `cog push`'s registry flags: the same image as a Docker manifest.
    let docker_target = registry.reference("me/hello:docker");
    let args = [
        "build",
        "--push",
        "-t",
        &docker_target,
        "--base",
        &project.base,
        "--manifest-format",
        "docker",
        "--concurrency",
        "2",
        "--insecure",
    ];
    let docker_digest = ok(&project.cog(&args));
    assert_ne!(docker_digest, digest, "another manifest, another digest");
    let raw = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "pusher:s3cret",
            &format!("docker://{docker_target}"),
        ],
    );
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "{raw}"
    );
}

#[test]
fn cog_push_uses_the_image_from_cog_yaml_and_errors_without_one() {
    let registry = TestRegistry::start();
    let project = project();
    let stderr = failed(&project.cog(&["push", "--base", &project.base]));
    assert!(
        stderr.contains("To push images, you must either set the 'image' option in cog.yaml or pass an image name as an argument. For example, 'cog push r8.im/your-username/hotdog-detector'"),
        "{stderr}"
    );
    let config = project.dir.join("cog.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    let target = registry.reference("team/hello");
    std::fs::write(&config, format!("{yaml}image: \"{target}\"\n")).unwrap();
    let output = project.cog(&["push", "--base", &project.base, "--progress", "json"]);
    let digest = ok(&output);

    // Progress: a bar per blob counting its bytes, and one for the total.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let event = |kind: &str, task: &str| {
        events
            .iter()
            .find(|e| e["event"] == kind && e["task"] == task)
            .unwrap_or_else(|| panic!("no {kind} event for {task}: {events:#?}"))
    };
    let total = event("start", "total")["total"].as_u64().unwrap();
    let done = event("done", "total");
    assert_eq!(done["done"].as_u64(), Some(total), "{done}");
    assert_eq!(done["unit"], "bytes");
    let blobs: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "done" && e["summary"] == "pushed")
        .collect();
    assert!(blobs.len() >= 2, "{events:#?}");
    let mut sum = 0;
    for blob in blobs {
        let start = event("start", blob["task"].as_str().unwrap());
        assert_eq!(blob["done"], start["total"], "{blob} counted byte by byte");
        sum += blob["done"].as_u64().unwrap();
    }
    assert!(sum <= total && sum > 0, "{sum} of {total}");
    assert_pushed(&format!("{target}:latest"), None, &digest);
}

#[test]
fn repush_after_a_code_change_uploads_one_layer_and_the_config() {
    let registry = TestRegistry::start();
    let proxy = RecordingProxy::start(&registry.host);
    let project = project();
    let target = format!("{}/me/hello:v1", proxy.host);
    ok(&project.cog(&["build", "--push", "-t", &target, "--base", &project.base]));
    let first = proxy.take();
    assert!(
        first
            .iter()
            .any(|r| r.starts_with("PUT /v2/me/hello/manifests/v1")),
        "{first:#?}"
    );

    let predict = project.dir.join("predict.py");
    let code = std::fs::read_to_string(&predict).unwrap();
    std::fs::write(&predict, code.replace("\"hello\"", "\"hi\"")).unwrap();
    let digest = ok(&project.cog(&["build", "--push", "-t", &target, "--base", &project.base]));
    let second = proxy.take();
    let writes: Vec<&String> = second
        .iter()
        .filter(|r| r.starts_with("PUT ") || r.starts_with("PATCH ") || r.starts_with("POST "))
        .collect();
    let count = |prefix: &str| writes.iter().filter(|r| r.starts_with(prefix)).count();
    assert_eq!(count("POST /v2/me/hello/blobs/uploads/"), 2, "{writes:#?}");
    assert_eq!(count("PUT /v2/me/hello/blobs/uploads/"), 2, "{writes:#?}");
    assert_eq!(count("PATCH "), 0, "{writes:#?}");
    assert_eq!(count("PUT /v2/me/hello/manifests/v1"), 1, "{writes:#?}");
    assert_eq!(writes.len(), 5, "{writes:#?}");
    assert_pushed(&format!("{}/me/hello:v1", registry.host), None, &digest);
}

#[test]
fn wrong_password_names_registry_repository_and_401() {
    let registry = TestRegistry::start_with_htpasswd("pusher", "s3cret");
    let project = project();
    project.login(&registry.host, "pusher", "wrong");
    let target = registry.reference("me/hello:v1");
    let stderr = failed(&project.cog(&["build", "--push", "-t", &target, "--base", &project.base]));
    assert!(stderr.contains(&registry.host), "{stderr}");
    assert!(stderr.contains("me/hello"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("\"pusher\""), "{stderr}");
}

#[test]
fn registry_down_names_the_registry() {
    let project = project();
    let host = format!("127.0.0.1:{}", free_port());
    let target = format!("{host}/me/hello:v1");
    let stderr = failed(&project.cog(&["push", &target, "--base", &project.base]));
    assert!(
        stderr.contains(&format!("cannot reach registry {host}")),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn cog_login_stores_credentials_that_push_then_uses() {
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start_with_htpasswd("pusher", "s3cret");
    let project = project();
    let config_dir = project.docker_config_dir();
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"auths":{"other.example:5000":{"auth":"eDp5"}},"psFormat":"table {{.ID}}"}"#,
    )
    .unwrap();
    let login = |password: &str| {
        project.cog_with(
            &[
                "login",
                &registry.host,
                "--username",
                "pusher",
                "--password-stdin",
            ],
            &format!("{password}\n"),
            &[],
        )
    };

    // The registry refuses a wrong password, and nothing is stored.
    let stderr = failed(&login("wrong"));
    assert!(
        stderr.contains(&format!("login to registry {} failed", registry.host)),
        "{stderr}"
    );
    assert!(stderr.contains("401 Unauthorized"), "{stderr}");
    assert!(stderr.contains("\"pusher\""), "{stderr}");
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains(&registry.host)
    );

    let out = ok(&login("s3cret"));
    assert!(out.contains("authenticated as pusher"), "{out}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(written["psFormat"], "table {{.ID}}", "other keys kept");
    assert_eq!(written["auths"]["other.example:5000"]["auth"], "eDp5");
    assert_eq!(
        written["auths"][registry.host.as_str()]["auth"],
        base64("pusher:s3cret").as_str()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&config.metadata().unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let names: Vec<_> = std::fs::read_dir(&config_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.json"], "no temp file left behind");

    let target = registry.reference("me/hello:v1");
    let digest = ok(&project.cog(&["push", &target, "--base", &project.base]));
    assert_pushed(&target, Some("pusher:s3cret"), &digest);
}

#[test]
fn cog_login_hands_credentials_to_the_configured_helper() {
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start_with_htpasswd("helped", "pw-from-helper");
    let project = project();
    let bin = project.cache.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A credential helper that keeps what `store` receives and hands it back on `get`.
    let helper = bin.join("docker-credential-test");
    std::fs::write(
        &helper,
        r#"#!/bin/sh
dir="$(dirname "$0")"
case "$1" in
  store) cat > "$dir/stored.json"; echo store >> "$dir/calls" ;;
  get) read -r server; echo "get $server" >> "$dir/calls"
       if [ -f "$dir/stored.json" ]; then cat "$dir/stored.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unexpected: $1" >&2; exit 1 ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config_dir = project.docker_config_dir();
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("config.json");
    std::fs::write(&config, r#"{"credsStore":"test"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path)];

    let out = project.cog_with(
        &["login", &registry.host, "-u", "helped", "--password-stdin"],
        "pw-from-helper",
        &env,
    );
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("credential helper docker-credential-test"),
        "{out:?}"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bin.join("stored.json")).unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"ServerURL": registry.host, "Username": "helped", "Secret": "pw-from-helper"})
    );
    let file = std::fs::read_to_string(&config).unwrap();
    assert!(
        !file.contains("pw-from-helper"),
        "no secret in the file: {file}"
    );
    let written: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(written["credsStore"], "test");
    assert_eq!(
        written["auths"][registry.host.as_str()],
        serde_json::json!({})
    );

    // The push asks the helper for them.
    let target = registry.reference("me/helped:v1");
    let mut command = project.command(&["push", &target, "--base", &project.base]);
    let digest = ok(&command
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap());
    let calls = std::fs::read_to_string(bin.join("calls")).unwrap();
    assert!(calls.starts_with("store\n"), "{calls}");
    assert!(calls.contains(&format!("get {}", registry.host)), "{calls}");
    assert_pushed(&target, Some("helped:pw-from-helper"), &digest);
}

#[test]
fn token_flow_pushes_with_push_scope_and_mounts_from_the_base_repository() {
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start();
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            bearer: true,
            token_credentials: Some(("tok-user".into(), "tok-pw".into())),
            ..FrontOptions::default()
        },
    );
    // The base image lives in another repository of the same registry.
    let (store_dir, store) = temp_store();
    let base_image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &base_image.image_ref(), store_dir.path(), "latest");
    registry.push_layout(&layout, "latest", "base/busybox:latest", false);
    let base_layer = base_image.manifest.layers[0].digest;

    let project = project();
    let login = |password: &str| {
        project.cog_with(
            &["login", &front.host, "-u", "tok-user", "--password-stdin"],
            password,
            &[],
        )
    };
    let stderr = failed(&login("nope"));
    assert!(
        stderr.contains(&format!("login to registry {} failed", front.host)),
        "{stderr}"
    );
    assert!(stderr.contains("token server"), "{stderr}");
    ok(&login("tok-pw"));

    let base = format!("{}/base/busybox:latest", front.host);
    let target = format!("{}/me/hello:v1", front.host);
    let digest = ok(&project.cog(&["push", &target, "--base", &base]));

    let tokens = front.token_requests();
    assert!(
        tokens.iter().any(
            |q| q.contains("scope=repository%3Ame%2Fhello%3Apull%2Cpush")
                && q.contains("scope=repository%3Abase%2Fbusybox%3Apull")
                && q.contains("account=tok-user")
        ),
        "one token for pushing to me/hello and pulling from base/busybox: {tokens:#?}"
    );
    let uploads = front.uploads();
    assert!(
        uploads
            .iter()
            .any(|u| u.starts_with("POST /v2/me/hello/blobs/uploads/?")
                && u.contains(&format!("mount={base_layer}"))
                && u.contains("from=base/busybox")
                && u.ends_with(" 201")),
        "the base layer is mounted, not uploaded: {uploads:#?}"
    );
    assert!(
        !uploads
            .iter()
            .any(|u| u.starts_with("PUT ") && u.contains(&base_layer.hex())),
        "{uploads:#?}"
    );
    assert_pushed(&format!("{}/me/hello:v1", registry.host), None, &digest);
}

#[test]
fn login_with_a_token_on_stdin_stores_an_identity_token_that_push_exchanges() {
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start();
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            bearer: true,
            ..FrontOptions::default()
        },
    );
    let project = project();
    ok(&project.cog_with(
        &["login", &front.host, "--token-stdin"],
        "refresh-token-1\n",
        &[],
    ));
    let config = project.docker_config_dir().join("config.json");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(
        written["auths"][front.host.as_str()],
        serde_json::json!({"identitytoken": "refresh-token-1"})
    );
    let before = front.token_requests().len();
    let target = format!("{}/me/tokened:v1", front.host);
    let digest = ok(&project.cog(&["push", &target, "--base", &project.base]));
    // The identity token is exchanged with a POST (no query string) for a registry token.
    let tokens = front.token_requests();
    assert!(tokens[before..].iter().any(String::is_empty), "{tokens:#?}");
    assert_pushed(&format!("{}/me/tokened:v1", registry.host), None, &digest);
}

/// `sha256:<hex>` of a completed blob upload (`PUT …?…digest=sha256%3A<hex> 201 …`).
fn completed_upload(line: &str) -> Option<String> {
    if !line.starts_with("PUT ") || !line.contains("/blobs/uploads/") {
        return None;
    }
    let mut words = line.split(' ');
    let (_, url, status) = (words.next()?, words.next()?, words.next()?);
    if status != "201" {
        return None;
    }
    let hex = url.split("digest=sha256%3A").nth(1)?.get(..64)?;
    Some(format!("sha256:{hex}"))
}

#[test]
fn a_push_killed_halfway_completes_on_rerun_without_re_uploading_finished_blobs() {
    let registry = TestRegistry::start();
    let delay = Duration::from_millis(700);
    let proxy = RecordingProxy::with_rules(
        &registry.host,
        Rules {
            upload_delay: delay,
            ..Rules::default()
        },
    );
    let project = project();
    // 16 MiB of noise in the source layer: a big blob, in flight when the push is killed.
    std::fs::write(project.dir.join("weights.bin"), noise(16 << 20, 7)).unwrap();
    let target = format!("{}/me/big:v1", proxy.host);
    // Build first, so that the kill lands in the push.
    ok(&project.cog(&["build", "-t", &target, "--base", &project.base]));

    let mut child = project
        .command(&["push", &target, "--base", &project.base])
        .env("COG_PUSH_CONCURRENCY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !proxy.peek().iter().any(|r| completed_upload(r).is_some()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the push ended ({status}) before a blob was uploaded");
        }
        assert!(Instant::now() < deadline, "no blob uploaded in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Let a request already in the proxy settle.
    std::thread::sleep(delay + Duration::from_millis(500));
    let first = proxy.take();
    let finished: Vec<String> = first.iter().filter_map(|r| completed_upload(r)).collect();
    assert!(!finished.is_empty(), "{first:#?}");
    assert!(
        !first.iter().any(|r| r.contains("/manifests/")),
        "killed before the manifest: {first:#?}"
    );

    let digest = ok(&project.cog(&["push", &target, "--base", &project.base]));
    let second = proxy.take();
    let uploaded: Vec<String> = second.iter().filter_map(|r| completed_upload(r)).collect();
    assert!(
        !uploaded.is_empty(),
        "the first push was killed halfway, so the rerun has blobs left to upload: {first:#?}"
    );
    for blob in &finished {
        assert!(
            !uploaded.contains(blob),
            "{blob} was uploaded again: {second:#?}"
        );
        assert!(
            second
                .iter()
                .any(|r| r.starts_with(&format!("HEAD /v2/me/big/blobs/{blob} 200"))),
            "{blob} found by HEAD: {second:#?}"
        );
    }
    assert_pushed(&format!("{}/me/big:v1", registry.host), None, &digest);
}

#[test]
fn no_permission_names_registry_repository_and_403() {
    let registry = TestRegistry::start();
    let proxy = RecordingProxy::with_rules(
        &registry.host,
        Rules {
            deny_repository: Some("me/forbidden".into()),
            ..Rules::default()
        },
    );
    let project = project();
    let target = format!("{}/me/forbidden:v1", proxy.host);
    let stderr = failed(&project.cog(&["push", &target, "--base", &project.base]));
    assert!(
        stderr.contains(&format!("registry {}", proxy.host)),
        "{stderr}"
    );
    assert!(stderr.contains("me/forbidden"), "{stderr}");
    assert!(stderr.contains("denied (403 Forbidden)"), "{stderr}");
}

#[test]
fn a_rejected_manifest_shows_the_registry_error_body() {
    let registry = TestRegistry::start();
    let proxy = RecordingProxy::with_rules(
        &registry.host,
        Rules {
            reject_manifests: true,
            ..Rules::default()
        },
    );
    let project = project();
    let target = format!("{}/me/hello:v1", proxy.host);
    let stderr = failed(&project.cog(&["push", &target, "--base", &project.base]));
    assert!(
        stderr.contains(&format!("registry {} answered 400 to PUT", proxy.host)),
        "{stderr}"
    );
    assert!(stderr.contains("/v2/me/hello/manifests/v1"), "{stderr}");
    assert!(
        stderr
            .contains("MANIFEST_INVALID: manifest invalid (the test proxy refuses every manifest)"),
        "{stderr}"
    );
}

#[test]
fn podman_pulls_and_runs_the_pushed_image() {
    require_tool("podman", "podman");
    let registry = TestRegistry::start_with_htpasswd("pusher", "s3cret");
    let project = project();
    project.login(&registry.host, "pusher", "s3cret");
    let target = registry.reference("me/podman-hello:v1");
    let digest = ok(&project.cog(&["push", &target, "--base", &project.base]));
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
        }
    }
    let _cleanup = Cleanup(target.clone());
    run(
        "podman",
        &[
            "pull",
            "--quiet",
            "--tls-verify=false",
            "--creds",
            "pusher:s3cret",
            &target,
        ],
    );
    let pulled = run(
        "podman",
        &["image", "inspect", "--format", "{{.Digest}}", &target],
    );
    assert_eq!(pulled.trim(), digest);
    let printed = run(
        "podman",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &target,
            "cat",
            "/src/predict.py",
        ],
    );
    assert!(printed.contains("class Predictor"), "{printed}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `skopeo inspect` of `reference` (plain HTTP) shows the manifest digest `digest`.
fn assert_pushed(reference: &str, creds: Option<&str>, digest: &str) {
    let target = format!("docker://{reference}");
    let mut args = vec!["inspect", "--tls-verify=false"];
    if let Some(creds) = creds {
        args.extend(["--creds", creds]);
    }
    args.push(&target);
    let inspect = run("skopeo", &args);
    assert!(inspect.contains(digest), "{inspect}");
}

fn raw_manifest(reference: &str) -> (Vec<u8>, serde_json::Value) {
    let raw = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    let bytes = raw.trim_end().as_bytes().to_vec();
    let value = serde_json::from_slice(&bytes).unwrap();
    (bytes, value)
}

#[test]
fn an_index_is_pushed_as_oci_or_as_a_docker_manifest_list() {
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start();
    let (_dir, store) = temp_store();
    let (index, _, _) = busybox_index(&store);
    let client = Client::new(ClientOptions::default()).unwrap();
    let rt = runtime();

    let oci_target = registry.reference("multi/oci:v1");
    let pushed = rt
        .block_on(client.push(
            &store,
            &index,
            &Reference::parse(&oci_target).unwrap(),
            &report::Quiet,
        ))
        .unwrap();
    assert_eq!(pushed, index.digest);
    let (bytes, value) = raw_manifest(&oci_target);
    assert_eq!(Digest::of(&bytes), index.digest, "the index byte for byte");
    assert_eq!(value["mediaType"], media_types::OCI_INDEX);
    assert_eq!(value["manifests"].as_array().unwrap().len(), 2);

    let docker_target = registry.reference("multi/docker:v1");
    let pushed = rt
        .block_on(client.push_with(
            &store,
            &index,
            &Reference::parse(&docker_target).unwrap(),
            None,
            ManifestFormat::Docker,
            &report::Quiet,
        ))
        .unwrap();
    let (bytes, list) = raw_manifest(&docker_target);
    assert_eq!(Digest::of(&bytes), pushed);
    assert_eq!(list["mediaType"], media_types::DOCKER_MANIFEST_LIST);
    let entries = list["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["mediaType"], media_types::DOCKER_MANIFEST);
        assert!(entry["platform"]["architecture"].is_string(), "{entry}");
        let child = format!(
            "{}/multi/docker@{}",
            registry.host,
            entry["digest"].as_str().unwrap()
        );
        let (bytes, manifest) = raw_manifest(&child);
        assert_eq!(bytes.len() as u64, entry["size"].as_u64().unwrap());
        assert_eq!(manifest["mediaType"], media_types::DOCKER_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], media_types::DOCKER_CONFIG);
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            media_types::DOCKER_LAYER_GZIP
        );
    }
    // Every platform reads back whole.
    let back = tempfile::tempdir().unwrap();
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{docker_target}"),
            &format!("oci:{}:v1", back.path().display()),
        ],
    );
}

/// One layer holding `len` bytes of noise.
fn noise_layer(store: &BlobStore, len: usize) -> LayerInfo {
    let data = noise(len, 42);
    let mut writer = LayerWriter::new(store, &LayerOptions::new(Compression::gzip())).unwrap();
    writer
        .append_file("noise.bin", 0o644, data.len() as u64, &mut data.as_slice())
        .unwrap();
    writer.finish().unwrap()
}

#[test]
fn chunked_upload_keeps_within_the_registry_chunk_maximum() {
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start();
    let max = 1u64 << 20;
    let proxy = RecordingProxy::with_rules(
        &registry.host,
        Rules {
            chunk_max: Some(max),
            ..Rules::default()
        },
    );
    let (_dir, store) = temp_store();
    let layer = noise_layer(&store, (3 << 20) + 12_345);
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..ImageConfig::default()
    };
    let image = oci::assemble(
        &store,
        &config,
        std::slice::from_ref(&layer),
        std::collections::BTreeMap::new(),
    )
    .unwrap();
    let target = format!("{}/chunky/noise:v1", proxy.host);
    let client = Client::new(ClientOptions::default()).unwrap();
    runtime()
        .block_on(client.push(
            &store,
            &image.image_ref(),
            &Reference::parse(&target).unwrap(),
            &report::Quiet,
        ))
        .unwrap();
    let seen = proxy.take();
    let patches: Vec<u64> = seen
        .iter()
        .filter(|r| r.starts_with("PATCH "))
        .map(|r| r.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(patches.len() as u64, layer.size.div_ceil(max), "{seen:#?}");
    assert!(patches.iter().all(|&len| len <= max), "{patches:?}");
    assert_eq!(patches.iter().sum::<u64>(), layer.size);
    let back = tempfile::tempdir().unwrap();
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{}/chunky/noise:v1", registry.host),
            &format!("oci:{}:v1", back.path().display()),
        ],
    );
}

/// What the recording proxy does besides forwarding.
#[derive(Debug, Clone, Default)]
struct Rules {
    /// Wait this long before reading the body of each upload `PUT`/`PATCH` (a slow network).
    upload_delay: Duration,
    /// Answer 403 (Docker's `DENIED`) to every request for this repository.
    deny_repository: Option<String>,
    /// Answer 400 `MANIFEST_INVALID` to every manifest `PUT`.
    reject_manifests: bool,
    /// Add `OCI-Chunk-Max-Length` to the replies that open an upload session.
    chunk_max: Option<u64>,
}

/// Forwards everything (method, headers, body) to the registry and records
/// `METHOD path?query STATUS BODY-LENGTH`. The registry builds upload locations from our `Host`,
/// so every request of a push comes through here.
struct RecordingProxy {
    host: String,
    seen: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    rules: Rules,
    seen: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl RecordingProxy {
    fn start(upstream: &str) -> Self {
        Self::with_rules(upstream, Rules::default())
    }

    fn with_rules(upstream: &str, rules: Rules) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.to_string(),
            rules,
            seen: seen.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().fallback(relay).with_state(state);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            host,
            seen,
            _runtime: runtime,
        }
    }

    /// The requests seen since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// The requests seen since the last `take`, left in place.
    fn peek(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn registry_error(status: StatusCode, code: &str, message: &str, detail: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({"errors": [{"code": code, "message": message, "detail": detail}]})
                .to_string(),
        ))
        .unwrap()
}

async fn relay(State(state): State<ProxyState>, request: Request) -> Response {
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let path = request.uri().path().to_string();
    let record = |status: StatusCode, len: usize| {
        state.seen.lock().unwrap().push(format!(
            "{method} {path_and_query} {} {len}",
            status.as_u16()
        ));
    };
    if let Some(repository) = &state.rules.deny_repository
        && path.starts_with(&format!("/v2/{repository}/"))
    {
        record(StatusCode::FORBIDDEN, 0);
        return registry_error(
            StatusCode::FORBIDDEN,
            "DENIED",
            "requested access to the resource is denied",
            "",
        );
    }
    if state.rules.reject_manifests && method == Method::PUT && path.contains("/manifests/") {
        record(StatusCode::BAD_REQUEST, 0);
        return registry_error(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
            "the test proxy refuses every manifest",
        );
    }
    let is_upload = path.contains("/blobs/uploads/");
    if is_upload && (method == Method::PUT || method == Method::PATCH) {
        tokio::time::sleep(state.rules.upload_delay).await;
    }
    let mut upstream = state.http.request(
        method.clone(),
        format!("http://{}{path_and_query}", state.upstream),
    );
    for (name, value) in request.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            upstream = upstream.header(name, value.clone());
        }
    }
    // A client killed mid-body sends no request on: its upload never completes.
    let Ok(body) = axum::body::to_bytes(request.into_body(), usize::MAX).await else {
        record(StatusCode::BAD_REQUEST, 0);
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::from("incomplete body"))
            .unwrap();
    };
    let len = body.len();
    let reply = match upstream.body(body).send().await {
        Ok(reply) => reply,
        Err(err) => {
            record(StatusCode::BAD_GATEWAY, len);
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(err.to_string()))
                .unwrap();
        }
    };
    record(reply.status(), len);
    let mut response = Response::builder().status(reply.status());
    for (name, value) in reply.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response = response.header(name, value.clone());
        }
    }
    if let Some(max) = state.rules.chunk_max
        && is_upload
        && method == Method::POST
    {
        response = response.header("oci-chunk-max-length", max.to_string());
    }
    response
        .body(Body::from(reply.bytes().await.unwrap_or_default()))
        .unwrap()
}
