//! End to end: the real HTTP server with the Rust test worker (`examples/test_worker.rs`) as its
//! worker subprocess, driven over loopback.

#![allow(clippy::unwrap_used)] // tests

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use coglet::{ServeConfig, Server, ShutdownHandle};
use serde_json::{Value, json};

fn test_worker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("test_worker");
    assert!(path.exists(), "build the example first: {}", path.display());
    path
}

fn schema() -> Value {
    let any = json!({});
    json!({
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {"/predictions": {"post": {"x-cog-streaming": true}}},
        "components": {"schemas": {
            "Input": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "count": {"type": "integer", "minimum": 1},
                    "sleep": {"type": "number"}, "fail": {"type": "string"},
                    "invalid": {"type": "string"}, "stream": {"type": "integer"},
                    "delay": {"type": "number"}, "file": {"type": "string"},
                    "log": {"type": "string"}, "metric": {"type": "integer"},
                    "big": {"type": "integer"}, "crash": {"type": "boolean"},
                    "exit": {"type": "integer"}, "thread": {"type": "boolean"},
                    "anything": any
                }
            },
            "Output": {"type": "string"}
        }}
    })
}

struct TestServer {
    base: String,
    client: reqwest::Client,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<Result<(), coglet::ServeError>>,
    dir: tempfile::TempDir,
}

struct Options {
    env: Vec<(String, String)>,
    concurrency: u32,
    upload_url: Option<String>,
    schema: Option<Value>,
    setup_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            concurrency: 1,
            upload_url: None,
            schema: Some(schema()),
            setup_timeout: None,
        }
    }
}

async fn start(opts: Options) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let schema_path = dir.path().join("openapi_schema.json");
    if let Some(s) = &opts.schema {
        std::fs::write(&schema_path, s.to_string()).unwrap();
    }
    let config = ServeConfig {
        host: "127.0.0.1".into(),
        port: 0,
        predictor_ref: Some("predict.py:Runner".into()),
        worker_command: vec![test_worker().to_string_lossy().into_owned()],
        worker_env: opts.env,
        schema_path,
        max_concurrency: opts.concurrency,
        upload_url: opts.upload_url,
        setup_timeout: opts.setup_timeout,
        work_dir: dir.path().join("work"),
        webhook_log_interval: Duration::from_millis(50),
        webhook_auth_token: Some("secret-token".into()),
        sdk_version: Some("0.22.0".into()),
        ..ServeConfig::default()
    };
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    TestServer {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        shutdown,
        task,
        dir,
    }
}

impl TestServer {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn health(&self) -> Value {
        self.client
            .get(self.url("/health-check"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn wait_for_status(&self, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let h = self.health().await;
            if h["status"] == want {
                return h;
            }
            assert!(Instant::now() < deadline, "never reached {want}: {h}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn predict(&self, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url("/predictions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    /// `POST /predictions` in the background; the handle yields the response body.
    fn spawn_predict(&self, body: Value) -> tokio::task::JoinHandle<Value> {
        let client = self.client.clone();
        let url = self.url("/predictions");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    }

    async fn stop(self) {
        self.shutdown.shutdown();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

fn redact(mut v: Value) -> Value {
    if let Some(id) = v.get_mut("id")
        && id.as_str().is_some_and(|s| s.starts_with("pred_"))
    {
        let hex = &id.as_str().unwrap()[5..];
        assert!(u128::from_str_radix(hex, 16).is_ok(), "{id}");
        *id = json!("[generated id]");
    }
    if let Some(t) = v.pointer_mut("/metrics/predict_time") {
        assert!(t.as_f64().unwrap() >= 0.0);
        *t = json!("[predict_time]");
    }
    v
}

#[tokio::test]
async fn sync_prediction_discovery_and_health() {
    let s = start(Options::default()).await;
    let health = s.wait_for_status("READY").await;
    assert_eq!(health["version"]["python"], "3.test");
    assert_eq!(health["version"]["python_sdk"], "0.22.0");
    assert_eq!(health["setup"]["status"], "succeeded");
    assert!(
        health["setup"]["logs"]
            .as_str()
            .unwrap()
            .contains("setting up predict.py:Runner")
    );

    let (status, body) = s
        .predict(json!({"input": {"text": "there", "unknown": 1}, "context": {"token": "t"}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("sync_succeeded", redact(body));

    let (status, body) = s.predict(json!({"input": {"fail": "boom"}})).await;
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("sync_failed", redact(body));

    let (status, body) = s
        .predict(json!({"input": {"invalid": "cannot fetch image"}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "cannot fetch image");

    let discovery: Value = s
        .client
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    insta::assert_json_snapshot!("discovery", discovery);
    let openapi: Value = s
        .client
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi, schema());
    s.stop().await;
}

#[tokio::test]
async fn validation_errors_and_bad_requests_are_4xx_and_harmless() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let (status, body) = s.predict(json!({"input": {"count": 0, "text": 3}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    insta::assert_json_snapshot!("validation_422", body);

    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = s.client.post(s.url("/predictions")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    assert_eq!(
        post("{not json", Some("application/json"))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post(r#"{"input":{}}"#, Some("text/plain"))
            .await
            .unwrap()
            .status(),
        415
    );
    assert_eq!(
        post(r#"{"input": 5}"#, Some("application/json"))
            .await
            .unwrap()
            .status(),
        422
    );
    // No body and no content type: an empty input.
    assert_eq!(post("", None).await.unwrap().status(), 200);
    let huge = vec![b' '; 200 * 1024 * 1024];
    let resp = s
        .client
        .post(s.url("/predictions"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 413);
    }
    assert_eq!(
        s.client.get(s.url("/nope")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        s.client
            .get(s.url("/predictions/x/stream"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (status, body) = s.predict(json!({"input": {"text": "still alive"}})).await;
    assert_eq!(
        (status, body["output"].clone()),
        (StatusCode::OK, json!("hello still alive"))
    );
    s.stop().await;
}

/// `seed: int = Input(default=None)` (nullable, no default, not required): omitted, `null` and
/// set all reach the predictor (omitted as `null`), as with Cog <= 0.16; a wrong type is still
/// a 422.
#[tokio::test]
async fn none_default_inputs_accept_null_and_absence() {
    let mut document = schema();
    document["components"]["schemas"]["Input"]["properties"]["seed"] =
        json!({"type": "integer", "title": "Seed", "x-order": 0, "nullable": true});
    document["components"]["schemas"]["Input"]["properties"]["echo"] = json!({"type": "boolean"});
    let s = start(Options {
        schema: Some(document),
        ..Options::default()
    })
    .await;
    s.wait_for_status("READY").await;
    for (input, received) in [
        (json!({"echo": true}), json!({"echo": true, "seed": null})),
        (
            json!({"echo": true, "seed": null}),
            json!({"echo": true, "seed": null}),
        ),
        (
            json!({"echo": true, "seed": 42}),
            json!({"echo": true, "seed": 42}),
        ),
    ] {
        let (status, body) = s.predict(json!({ "input": input })).await;
        assert_eq!(status, StatusCode::OK, "{input}: {body}");
        assert_eq!(body["status"], "succeeded", "{input}: {body}");
        assert_eq!(body["output"], received, "{input}");
    }
    let (status, body) = s
        .predict(json!({"input": {"echo": true, "seed": "42"}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "input", "seed"]));
    s.stop().await;
}

#[tokio::test]
async fn not_ready_is_503_and_setup_timeout_fails_setup() {
    let s = start(Options {
        env: vec![("TEST_WORKER_SETUP_SLEEP".into(), "3".into())],
        setup_timeout: Some(Duration::from_millis(700)),
        ..Options::default()
    })
    .await;
    let (status, body) = s.predict(json!({"input": {}})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    insta::assert_json_snapshot!("not_ready_503", body);
    let h = s.wait_for_status("SETUP_FAILED").await;
    assert!(
        h["setup"]["logs"]
            .as_str()
            .unwrap()
            .contains("Setup timed out"),
        "{h}"
    );
    s.stop().await;
}

#[tokio::test]
async fn setup_failure_is_reported_with_logs() {
    let s = start(Options {
        env: vec![("TEST_WORKER_SETUP_FAIL".into(), "no weights found".into())],
        ..Options::default()
    })
    .await;
    let h = s.wait_for_status("SETUP_FAILED").await;
    let logs = h["setup"]["logs"].as_str().unwrap();
    assert!(
        logs.contains("about to fail") && logs.contains("no weights found"),
        "{logs}"
    );
    assert_eq!(h["setup"]["status"], "failed");
    s.stop().await;
}

#[tokio::test]
async fn capacity_409_busy_and_back_to_back_never_409() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    for i in 0..300 {
        let (status, _) = s.predict(json!({"input": {"text": format!("{i}")}})).await;
        assert_eq!(status, StatusCode::OK, "request {i}");
    }
    let resp = s
        .client
        .post(s.url("/predictions"))
        .header("prefer", "respond-async")
        .json(&json!({"input": {"sleep": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("pred_"));
    assert_eq!(s.health().await["status"], "BUSY");
    let (status, body) = s.predict(json!({"input": {}})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    insta::assert_json_snapshot!("at_capacity_409", body);
    let cancel = s
        .client
        .post(s.url(&format!("/predictions/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    s.wait_for_status("READY").await;
    let missing = s
        .client
        .post(s.url("/predictions/nope/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap(), json!({}));
    s.stop().await;
}

#[tokio::test]
async fn put_is_idempotent_and_checks_the_id() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let put = |body: Value| {
        s.client
            .put(s.url("/predictions/my-id"))
            .header("prefer", "respond-async")
            .json(&body)
            .send()
    };
    let first = put(json!({"input": {"sleep": 0.6}})).await.unwrap();
    assert_eq!(first.status(), 202);
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"id": "my-id", "status": "starting"})
    );
    let again = put(json!({"input": {"sleep": 0.6}})).await.unwrap();
    assert_eq!(again.status(), 202);
    let snapshot: Value = again.json().await.unwrap();
    assert_eq!(snapshot["status"], "processing");
    assert_eq!(snapshot["input"], json!({"sleep": 0.6}));
    let mismatch = put(json!({"id": "other", "input": {}})).await.unwrap();
    assert_eq!(mismatch.status(), 422);
    insta::assert_json_snapshot!("put_id_mismatch", mismatch.json::<Value>().await.unwrap());
    s.wait_for_status("READY").await;
    s.stop().await;
}

/// Prediction ids come from the client: `../` in one must never reach a path. The scratch
/// directory of a prediction is removed when it ends, so an id that became a path would let a
/// client delete any directory the server may write.
#[tokio::test]
async fn prediction_ids_never_become_paths() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let root = s.dir.path();
    // `work_dir` is `<root>/work`: `<work_dir>/predictions/../../victim` is `<root>/victim`.
    let victim = root.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "keep").unwrap();
    // Over 6 MiB: the input travels through a file in the prediction's scratch directory.
    let big = "x".repeat(7 * 1024 * 1024);
    let body = json!({"input": {"text": "hi", "anything": big}});
    // (Only ids that point into this test's own directory: were the check missing, they would
    // delete only the victim.)
    let absolute = victim.to_string_lossy().into_owned();
    for (method, path, id) in [
        (
            "PUT",
            "/predictions/..%2F..%2Fvictim".to_owned(),
            "../../victim",
        ),
        ("POST", "/predictions".to_owned(), "../../victim/"),
        ("POST", "/trainings".to_owned(), absolute.as_str()),
    ] {
        let mut body = body.clone();
        body["id"] = json!(id);
        let url = s.url(&path);
        let request = if method == "PUT" {
            s.client.put(url)
        } else {
            s.client.post(url)
        };
        let resp = request.json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{method} {path}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["id"], id);
        assert_eq!(answer["status"], "succeeded", "{answer}");
        assert_eq!(answer["output"], "hello hi");
    }
    // Scratch directories are removed in the background once a prediction ends.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
    // Nothing beside the work dir, the schema and the victim appeared.
    let mut entries: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["openapi_schema.json", "victim", "work"]);
    // And the scratch directories, named by the server, are gone.
    assert_eq!(
        std::fs::read_dir(root.join("work/predictions"))
            .unwrap()
            .count(),
        0
    );
    s.stop().await;
}

#[tokio::test]
async fn sync_cancel_is_fast_and_disconnect_cancels() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let started = Instant::now();
    let running = s.spawn_predict(json!({"id": "sync-1", "input": {"sleep": 3}}));
    // Running (not a fixed sleep: on a loaded machine the POST may not have arrived yet).
    s.wait_for_status("BUSY").await;
    let cancel_at = Instant::now();
    let cancel = s
        .client
        .post(s.url("/predictions/sync-1/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    let body = running.await.unwrap();
    assert!(
        cancel_at.elapsed() < Duration::from_millis(200),
        "{:?}",
        cancel_at.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    insta::assert_json_snapshot!("sync_canceled", redact(body));

    // A sync client that goes away cancels its prediction and frees the slot.
    let short = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = short
        .post(s.url("/predictions"))
        .json(&json!({"input": {"sleep": 30}}))
        .send()
        .await;
    assert!(err.is_err());
    let freed = Instant::now();
    s.wait_for_status("READY").await;
    assert!(freed.elapsed() < Duration::from_secs(2));
    s.stop().await;
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, Value)>>>);

async fn receiver(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn async_webhooks_with_auth_trace_and_retries() {
    let got = Received::default();
    let failures = Arc::new(Mutex::new(2));
    let app = axum::Router::new()
        .route(
            "/hook",
            post(
                |State((got, failures)): State<(Received, Arc<Mutex<i32>>)>,
                 headers: HeaderMap,
                 body: axum::Json<Value>| async move {
                    let terminal = body.0["status"] != "processing";
                    if terminal {
                        let mut f = failures.lock().unwrap();
                        if *f > 0 {
                            *f -= 1;
                            return StatusCode::SERVICE_UNAVAILABLE;
                        }
                    }
                    got.0.lock().unwrap().push((headers, body.0));
                    StatusCode::OK
                },
            ),
        )
        .with_state((got.clone(), Arc::clone(&failures)));
    let addr = receiver(app).await;
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let resp = s
        .client
        .post(s.url("/predictions"))
        .header("prefer", "respond-async")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .json(
            &json!({"input": {"stream": 3, "log": "hi"}, "webhook": format!("http://{addr}/hook")}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = got
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b["status"] == "succeeded");
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "no completed webhook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = got.0.lock().unwrap().clone();
    let (first_headers, first) = &events[0];
    assert_eq!(first["status"], "processing");
    assert!(first.get("input").is_none());
    assert_eq!(first_headers["authorization"], "Bearer secret-token");
    assert!(
        first_headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("coglet/")
    );
    assert_eq!(
        first_headers["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    let (_, last) = events.last().unwrap();
    assert_eq!(last["output"], json!(["chunk 0", "chunk 1", "chunk 2"]));
    assert_eq!(last["logs"], "hi\nto stderr\n");
    assert!(last["metrics"]["predict_time"].is_number());
    assert_eq!(*failures.lock().unwrap(), 0, "terminal webhook was retried");

    // Filter: only completed.
    got.0.lock().unwrap().clear();
    let (status, _) = s
        .predict(json!({"input": {"stream": 2}, "webhook": format!("http://{addr}/hook"), "webhook_events_filter": ["completed"]}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = got.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    s.stop().await;
}

#[tokio::test]
async fn sse_streams_events_and_trainings_refuse_it() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let text = s
        .client
        .post(s.url("/predictions"))
        .header("accept", "text/event-stream")
        .json(&json!({"id": "sse-1", "input": {"stream": 2}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events, ["start", "output", "output", "completed"], "{text}");
    assert!(
        text.contains(r#"data: {"chunk":"chunk 1","index":1}"#),
        "{text}"
    );
    let resp = s
        .client
        .post(s.url("/trainings"))
        .header("accept", "text/event-stream")
        .json(&json!({"input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "Training endpoints do not support streaming responses."})
    );
    s.stop().await;
}

#[tokio::test]
async fn files_logs_metrics_and_large_outputs() {
    let uploads = Received::default();
    let app = axum::Router::new()
        .route(
            "/up/{name}",
            put(|State(got): State<Received>, headers: HeaderMap, body: axum::body::Bytes| async move {
                got.0.lock().unwrap().push((headers, json!(String::from_utf8_lossy(&body))));
                (StatusCode::CREATED, [("location", "http://files.example/out.txt?sig=1")])
            }),
        )
        .with_state(uploads.clone());
    let addr = receiver(app).await;

    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let (_, body) = s.predict(json!({"input": {"file": "out.txt"}})).await;
    assert_eq!(
        body["output"],
        "data:text/plain;base64,ZmlsZSBjb250ZW50cw=="
    );
    let (_, body) = s
        .predict(json!({"input": {"log": "hello", "metric": 2}}))
        .await;
    assert_eq!(body["logs"], "hello\nto stderr\n");
    assert_eq!(body["metrics"]["tokens"], 4);
    assert_eq!(body["metrics"]["timing"]["pre"], 0.5);
    let big = 7 * 1024 * 1024;
    let (status, body) = s.predict(json!({"input": {"big": big}})).await;
    assert_eq!(status, 200);
    assert_eq!(body["output"].as_str().unwrap().len(), big);
    s.stop().await;

    let s = start(Options {
        upload_url: Some(format!("http://{addr}/up/")),
        ..Options::default()
    })
    .await;
    s.wait_for_status("READY").await;
    let (_, body) = s.predict(json!({"input": {"file": "out.txt"}})).await;
    assert_eq!(body["output"], "http://files.example/out.txt");
    let uploaded = uploads.0.lock().unwrap().clone();
    assert_eq!(uploaded[0].1, "file contents");
    assert_eq!(uploaded[0].0["content-type"], "text/plain");
    s.stop().await;
}

#[tokio::test]
async fn an_output_file_that_cannot_be_read_fails_the_prediction() {
    // No schema: the inputs below are not declared in the test schema (and would be stripped).
    let s = start(Options {
        schema: None,
        ..Options::default()
    })
    .await;
    s.wait_for_status("READY").await;
    for input in [
        json!({"missing_file": "gone.png"}),
        json!({"missing_file": "gone.png", "streamed": true}),
    ] {
        let (status, body) = s.predict(json!({ "input": input })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "failed", "{body}");
        assert!(body.get("output").is_none_or(Value::is_null), "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with("Failed to read output file ") && error.contains("gone.png: "),
            "{error}"
        );
    }
    // The slot is free and the next prediction is unaffected.
    let (_, body) = s.predict(json!({"input": {"file": "out.txt"}})).await;
    assert_eq!(body["status"], "succeeded", "{body}");
    s.stop().await;
}

#[tokio::test]
async fn worker_crash_fails_the_prediction_and_the_worker_comes_back() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let (status, body) = s.predict(json!({"input": {"crash": true}})).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "failed");
    assert!(
        body["error"].as_str().unwrap().contains("SIGABRT"),
        "{body}"
    );
    let h = s.health().await;
    assert_ne!(h["status"], "READY");
    let h = s.wait_for_status("READY").await;
    assert!(
        h["setup"]["logs"].as_str().unwrap().contains("SIGABRT"),
        "{h}"
    );
    let (status, body) = s.predict(json!({"input": {"text": "again"}})).await;
    assert_eq!(
        (status, body["output"].clone()),
        (StatusCode::OK, json!("hello again"))
    );
    s.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_running_predictions() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let resp = s
        .client
        .post(s.url("/predictions"))
        .header("prefer", "respond-async")
        .json(&json!({"input": {"sleep": 0.5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let started = Instant::now();
    let resp = s.client.post(s.url("/shutdown")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::timeout(Duration::from_secs(20), s.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn concurrent_slots_run_in_parallel() {
    let s = start(Options {
        concurrency: 3,
        ..Options::default()
    })
    .await;
    s.wait_for_status("READY").await;
    let started = Instant::now();
    let runs: Vec<_> = (0..3)
        .map(|i| s.spawn_predict(json!({"input": {"sleep": 0.5, "text": format!("{i}")}})))
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(s.health().await["status"], "BUSY");
    let (status, _) = s.predict(json!({"input": {}})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    for (i, run) in runs.into_iter().enumerate() {
        let body = run.await.unwrap();
        assert_eq!(body["status"], "succeeded");
        assert!(
            body["output"].as_str().unwrap().starts_with("hello "),
            "{i}: {body}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    s.stop().await;
}

/// A sync runner with `COG_MAX_CONCURRENCY > 1` (Cog): one prediction per slot is accepted and
/// 409 beyond, but they run one at a time, in order, on the worker's main thread; a queued one
/// can be canceled before it starts.
#[tokio::test]
async fn one_at_a_time_runner_queues_per_slot_and_cancels_queued_predictions() {
    let s = start(Options {
        concurrency: 3,
        env: vec![("TEST_WORKER_ONE_AT_A_TIME".into(), "1".into())],
        ..Options::default()
    })
    .await;
    s.wait_for_status("READY").await;
    let started = Instant::now();
    let mut runs = Vec::new();
    for i in 0..3 {
        let client = s.client.clone();
        let url = s.url("/predictions");
        runs.push(tokio::spawn(async move {
            let body = client
                .post(url)
                .json(&json!({"id": format!("q{i}"), "input": {"sleep": 0.4, "thread": true}}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            (body, Instant::now())
        }));
        // Fixes the arrival order.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.health().await["status"], "BUSY");
    let (status, body) = s.predict(json!({"input": {}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // q2 waits behind q0 and q1: canceling it answers it at once.
    let canceled_at = Instant::now();
    let resp = s
        .client
        .post(s.url("/predictions/q2/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let q2 = runs.pop().unwrap();
    let (body, ended) = q2.await.unwrap();
    assert_eq!(body["status"], "canceled", "{body}");
    let waited = ended.saturating_duration_since(canceled_at);
    assert!(waited < Duration::from_millis(300), "{waited:?}");

    let mut ends = Vec::new();
    for run in runs {
        let (body, ended) = run.await.unwrap();
        assert_eq!(body["status"], "succeeded", "{body}");
        // Every prediction of a one-at-a-time runner runs on the thread that called `run`.
        assert_eq!(body["output"], "main", "{body}");
        ends.push(ended.saturating_duration_since(started));
    }
    // One at a time: q1 starts when q0 ends.
    assert!(ends[0] >= Duration::from_millis(400), "{ends:?}");
    assert!(ends[1] >= Duration::from_millis(800), "{ends:?}");
    assert!(
        ends[1].saturating_sub(ends[0]) >= Duration::from_millis(350),
        "{ends:?}"
    );

    // The slots are free again, and the canceled one never ran.
    let (status, body) = s.predict(json!({"input": {"thread": true}})).await;
    assert_eq!(
        (status, body["output"].clone()),
        (StatusCode::OK, json!("main"))
    );
    s.stop().await;
}

/// A handler that serves on its own event loop (as an async Python runner does): the slot
/// readers queue every request in the dispatcher and the loop starts and finishes them.
#[tokio::test]
async fn event_loop_handler_runs_slots_in_parallel_and_cancels() {
    let s = start(Options {
        concurrency: 3,
        env: vec![("TEST_WORKER_EVENT_LOOP".into(), "1".into())],
        ..Options::default()
    })
    .await;
    s.wait_for_status("READY").await;
    let started = Instant::now();
    let runs: Vec<_> = (0..3)
        .map(|i| {
            s.spawn_predict(json!({"id": format!("e{i}"), "input": {"sleep": 0.5, "thread": true}}))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(s.health().await["status"], "BUSY");
    let (status, _) = s.predict(json!({"input": {}})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Canceling one of the three ends it at once; the other two finish.
    let cancel_at = Instant::now();
    let resp = s
        .client
        .post(s.url("/predictions/e1/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut bodies = Vec::new();
    for run in runs {
        bodies.push(run.await.unwrap());
    }
    assert_eq!(bodies[1]["status"], "canceled", "{}", bodies[1]);
    assert!(cancel_at.elapsed() < Duration::from_millis(600));
    for body in [&bodies[0], &bodies[2]] {
        assert_eq!(body["status"], "succeeded", "{body}");
        assert_eq!(body["output"], "event-loop-run", "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );

    // Streams, logs, failures and input errors take the same path.
    let (status, body) = s.predict(json!({"input": {"stream": 3}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["output"], json!(["chunk 0", "chunk 1", "chunk 2"]));
    let (_, body) = s.predict(json!({"input": {"log": "hi"}})).await;
    assert_eq!(body["logs"], "hi\nto stderr\n", "{body}");
    let (_, body) = s.predict(json!({"input": {"fail": "boom"}})).await;
    assert_eq!(
        (&body["status"], &body["error"]),
        (&json!("failed"), &json!("boom"))
    );
    let (status, _) = s.predict(json!({"input": {"invalid": "bad"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Many short predictions back to back on every slot: none is lost or answered twice.
    let mut many = Vec::new();
    for i in 0..60 {
        let client = s.client.clone();
        let url = s.url("/predictions");
        many.push(tokio::spawn(async move {
            loop {
                let resp = client
                    .post(&url)
                    .json(&json!({"input": {"text": format!("{i}")}}))
                    .send()
                    .await
                    .unwrap();
                if resp.status() == StatusCode::CONFLICT {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                return resp.json::<Value>().await.unwrap();
            }
        }));
    }
    for (i, run) in many.into_iter().enumerate() {
        assert_eq!(run.await.unwrap()["output"], format!("hello {i}"));
    }
    s.stop().await;
}

#[tokio::test]
async fn health_only_mode_and_user_healthcheck() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bind(ServeConfig {
        host: "127.0.0.1".into(),
        port: 0,
        schema_path: dir.path().join("missing.json"),
        ..ServeConfig::default()
    })
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let h: Value = client
        .get(format!("http://{addr}/health-check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "UNKNOWN");
    let resp = client
        .get(format!("http://{addr}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "OpenAPI schema not available"})
    );
    stop.shutdown();
    task.await.unwrap().unwrap();

    let flag = dir.path().join("unhealthy");
    let s = start(Options {
        env: vec![(
            "TEST_WORKER_UNHEALTHY".into(),
            flag.to_string_lossy().into_owned(),
        )],
        ..Options::default()
    })
    .await;
    s.wait_for_status("READY").await;
    std::fs::write(&flag, b"").unwrap();
    let h = s.wait_for_status("UNHEALTHY").await;
    assert_eq!(h["user_healthcheck_error"], "healthcheck returned False");
    std::fs::remove_file(&flag).unwrap();
    s.wait_for_status("READY").await;
    s.stop().await;
}

#[tokio::test]
async fn a_worker_that_crashes_in_setup_fails_setup() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(Options {
        env: vec![(
            "TEST_WORKER_CRASH_ONCE".into(),
            dir.path().join("marker").to_string_lossy().into_owned(),
        )],
        ..Options::default()
    })
    .await;
    let h = s.wait_for_status("SETUP_FAILED").await;
    let logs = h["setup"]["logs"].as_str().unwrap();
    assert!(logs.contains("SIGABRT"), "{logs}");
    s.stop().await;
}

/// Cancel is idempotent: once a cancel has ended a prediction, cancelling it again still
/// answers 200 (Cog's scripts cancel several times in a row, and our cancel is quick enough
/// to end the prediction before the second request). A prediction that succeeded, or an
/// unknown id, answers 404.
#[tokio::test]
async fn repeated_cancel_of_a_canceled_prediction_answers_200() {
    let s = start(Options::default()).await;
    s.wait_for_status("READY").await;
    let created = s
        .client
        .put(s.url("/predictions/twice"))
        .header("prefer", "respond-async")
        .json(&json!({"input": {"sleep": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let cancel = || s.client.post(s.url("/predictions/twice/cancel")).send();
    assert_eq!(cancel().await.unwrap().status(), 200);
    s.wait_for_status("READY").await;
    for _ in 0..3 {
        let again = cancel().await.unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.json::<Value>().await.unwrap(), json!({}));
    }
    let (status, done) = s
        .predict(json!({"id": "done", "input": {"text": "x"}}))
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );
    let finished = s
        .client
        .post(s.url("/predictions/done/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 404);
    s.stop().await;
}
