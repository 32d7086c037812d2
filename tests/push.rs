//! `cog push` and `cog build --push` against the real registry (Debian's `docker-registry`): with
//! htpasswd auth and credentials from a temporary Docker config, checked with skopeo; a re-push
//! after a code-only change counted request by request through a recording proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use cog::oci::Platform;
use common::registry::{TestRegistry, busybox_image, free_port, layout_of, temp_store};
use common::{failed, ok, require_tool, run};

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
    std::fs::create_dir_all(&dir).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    for entry in std::fs::read_dir(example).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
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
    fn cog(&self, args: &[&str]) -> Output {
        Command::new(COG)
            .args(args)
            .current_dir(&self.dir)
            .env("COG_CACHE_DIR", &self.cache)
            .env("DOCKER_CONFIG", self.cache.join("docker-config"))
            .env("BUILDKIT_PROGRESS", "plain")
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap()
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
    let digest = ok(&project.cog(&["push", "--base", &project.base]));
    let inspect = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{target}:latest"),
        ],
    );
    assert!(inspect.contains(&digest), "{inspect}");
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
    let inspect = run(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/me/hello:v1", registry.host),
        ],
    );
    assert!(inspect.contains(&digest), "{inspect}");
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

/// Forwards everything (method, headers, body) to the registry and records `METHOD path`. The
/// registry builds upload locations from our `Host`, so every request of a push comes through here.
struct RecordingProxy {
    host: String,
    seen: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    seen: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl RecordingProxy {
    fn start(upstream: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.to_string(),
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
}

async fn relay(State(state): State<ProxyState>, request: Request) -> Response {
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    state
        .seen
        .lock()
        .unwrap()
        .push(format!("{method} {path_and_query}"));
    let mut upstream = state
        .http
        .request(method, format!("http://{}{path_and_query}", state.upstream));
    for (name, value) in request.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            upstream = upstream.header(name, value.clone());
        }
    }
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    let reply = match upstream.body(body).send().await {
        Ok(reply) => reply,
        Err(err) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(err.to_string()))
                .unwrap();
        }
    };
    let mut response = Response::builder().status(reply.status());
    for (name, value) in reply.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response = response.header(name, value.clone());
        }
    }
    response
        .body(Body::from(reply.bytes().await.unwrap_or_default()))
        .unwrap()
}
