//! A small HTTP front for a [`super::registry::TestRegistry`]: it can demand bearer tokens from its
//! own token endpoint (`/token`, Docker's token protocol), flip bytes of a blob on the way, and
//! records what it saw. Pushes go through it too (bodies forwarded, upload locations rewritten). It runs on its own thread and runtime, so sync and async tests can use it.
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use futures::StreamExt as _;

#[derive(Debug, Clone, Default)]
pub struct FrontOptions {
    /// Demand `Authorization: Bearer <token from /token>` on every `/v2/` request.
    pub bearer: bool,
    /// Basic credentials the token endpoint wants (`None`: anonymous tokens).
    pub token_credentials: Option<(String, String)>,
    /// Reply `{"access_token": …}` (OAuth2 style) instead of `{"token": …}`.
    pub access_token_field: bool,
    /// Flip a byte in the body of this blob (`sha256:…`).
    pub tamper_blob: Option<String>,
    /// Answer the first N blob requests with 503 (and `Retry-After: 0`).
    pub fail_blob_requests: usize,
    /// Cut the first N blob responses halfway (the connection drops mid-body).
    pub cut_blob_requests: usize,
    /// Redirect blob requests (307) to this host (`127.0.0.1:PORT`, e.g. another front), as
    /// registries do to their blob storage.
    pub redirect_blobs_to: Option<String>,
    /// Fail a share of all registry requests (see [`Chaos`]); off until [`FrontProxy::set_chaos`].
    pub chaos: Option<Chaos>,
}

/// A registry having a bad day: `percent` of the `/v2/` requests fail, in turn with a 500,
/// a reset connection (the request lost, or its answer cut off) and a stall of `stall` (before
/// the answer, or halfway through a blob). Which requests fail follows `seed`; one request
/// (method and path) fails at most `per_request` times, so that a client that retries gets
/// through.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub percent: u64,
    pub seed: u64,
    pub stall: std::time::Duration,
    pub per_request: usize,
}

/// A blob request as the front saw it.
#[derive(Debug, Clone)]
pub struct BlobRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
}

#[derive(Debug, Default)]
pub struct Seen {
    /// Query strings of token requests (`scope=…&service=…`).
    pub token_requests: Vec<String>,
    /// `METHOD path` of every request forwarded to the registry.
    pub forwarded: Vec<String>,
    /// Every request for a blob, whatever the answer.
    pub blob_requests: Vec<BlobRequest>,
    /// `METHOD path?query STATUS` of every forwarded upload request (`/blobs/uploads/`).
    pub uploads: Vec<String>,
    /// `KIND METHOD path` of every fault [`Chaos`] injected.
    pub faults: Vec<String>,
}

struct Shared {
    upstream: String,
    options: FrontOptions,
    chaos_on: std::sync::atomic::AtomicBool,
    requests: std::sync::atomic::AtomicU64,
    faults_per_request: Mutex<std::collections::HashMap<String, usize>>,
    issued: Mutex<Vec<String>>,
    seen: Mutex<Seen>,
    http: reqwest::Client,
}

pub struct FrontProxy {
    /// `127.0.0.1:PORT`
    pub host: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FrontProxy {
    /// Starts a front for the registry at `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, options: FrontOptions) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            options,
            chaos_on: std::sync::atomic::AtomicBool::new(false),
            requests: std::sync::atomic::AtomicU64::new(0),
            faults_per_request: Mutex::default(),
            issued: Mutex::default(),
            seen: Mutex::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = shutdown_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            host: addr.to_string(),
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// Turns the front's [`Chaos`] on or off.
    pub fn set_chaos(&self, on: bool) {
        assert!(self.shared.options.chaos.is_some(), "no chaos configured");
        self.shared
            .chaos_on
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The faults injected so far (`KIND METHOD path`).
    pub fn faults(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().faults.clone()
    }

    pub fn token_requests(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().token_requests.clone()
    }

    pub fn forwarded(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().forwarded.clone()
    }

    pub fn blob_requests(&self) -> Vec<BlobRequest> {
        self.shared.seen.lock().unwrap().blob_requests.clone()
    }

    /// `METHOD path?query STATUS` of the upload requests (push) forwarded to the registry.
    pub fn uploads(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().uploads.clone()
    }
}

impl Drop for FrontProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if path == "/token" {
        return token(&shared, request.headers(), &query);
    }
    if let Some(fault) = chaos_fault(&shared, request.method(), &path) {
        return inject(&shared, fault, request, &path, &query).await;
    }
    if shared.options.bearer && !has_issued_token(&shared, request.headers()) {
        let repo = path.strip_prefix("/v2/").and_then(|rest| {
            ["/manifests/", "/blobs/", "/tags/"]
                .iter()
                .find_map(|marker| rest.find(marker).map(|i| &rest[..i]))
        });
        let scope = repo
            .map(|r| format!(",scope=\"repository:{r}:pull\""))
            .unwrap_or_default();
        let challenge = format!("Bearer realm=\"http://{host}/token\",service=\"cog-test\"{scope}");
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, challenge)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            ))
            .unwrap();
    }
    let is_blob = path.starts_with("/v2/") && path.contains("/blobs/sha256:");
    if is_blob {
        let authorization = header_text(request.headers(), &header::AUTHORIZATION);
        let range = header_text(request.headers(), &header::RANGE);
        let seen_before = {
            let mut seen = shared.seen.lock().unwrap();
            seen.blob_requests.push(BlobRequest {
                path: path.clone(),
                authorization,
                range,
            });
            seen.blob_requests.len() - 1
        };
        if seen_before < shared.options.fail_blob_requests {
            return Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(header::RETRY_AFTER, "0")
                .body(Body::from("try again"))
                .unwrap();
        }
        if let Some(other) = &shared.options.redirect_blobs_to {
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, format!("http://{other}{path}"))
                .body(Body::empty())
                .unwrap();
        }
        if seen_before < shared.options.fail_blob_requests + shared.options.cut_blob_requests {
            let response = forward(&shared, request, &path, &query).await;
            return cut_halfway(response, None).await;
        }
    }
    forward(&shared, request, &path, &query).await
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    ServerError,
    Reset,
    Stall,
}

/// Whether [`Chaos`] fails this request, and how.
fn chaos_fault(shared: &Shared, method: &axum::http::Method, path: &str) -> Option<Fault> {
    let chaos = shared.options.chaos.as_ref()?;
    if !shared.chaos_on.load(std::sync::atomic::Ordering::SeqCst) || !path.starts_with("/v2/") {
        return None;
    }
    let n = shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // A multiplicative hash of the request number: a fixed, seed-dependent 20% of requests.
    let roll = (n
        .wrapping_add(chaos.seed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        >> 32)
        % 100;
    if roll >= chaos.percent {
        return None;
    }
    let key = format!("{method} {path}");
    let mut per_request = shared.faults_per_request.lock().unwrap();
    let count = per_request.entry(key).or_default();
    if *count >= chaos.per_request {
        return None;
    }
    *count += 1;
    drop(per_request);
    // Each method takes the kinds in turn, so that downloads meet all three soon.
    let prefix = format!(" {method} ");
    let injected = shared
        .seen
        .lock()
        .unwrap()
        .faults
        .iter()
        .filter(|f| f.contains(&prefix))
        .count();
    Some(match injected % 3 {
        0 => Fault::ServerError,
        1 => Fault::Reset,
        _ => Fault::Stall,
    })
}

async fn inject(
    shared: &Shared,
    fault: Fault,
    request: Request,
    path: &str,
    query: &str,
) -> Response {
    let method = request.method().clone();
    let is_get = method == axum::http::Method::GET;
    shared
        .seen
        .lock()
        .unwrap()
        .faults
        .push(format!("{fault:?} {method} {path}"));
    let stall = shared.options.chaos.as_ref().unwrap().stall;
    match fault {
        Fault::ServerError => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("injected failure"))
            .unwrap(),
        Fault::Reset => {
            // A GET is answered and its answer cut off; anything else is lost on the way in.
            if is_get {
                let response = forward(shared, request, path, query).await;
                return cut_halfway(response, None).await;
            }
            // Unwinding the connection's task drops the connection with no answer at all;
            // `resume_unwind` skips the panic hook, so nothing is printed.
            std::panic::resume_unwind(Box::new("injected connection reset"))
        }
        Fault::Stall => {
            if is_get {
                let response = forward(shared, request, path, query).await;
                return cut_halfway(response, Some(stall)).await;
            }
            tokio::time::sleep(stall).await;
            forward(shared, request, path, query).await
        }
    }
}

/// `response` with its body sent halfway, then (after `stall`, if any) the connection cut.
async fn cut_halfway(response: Response, stall: Option<std::time::Duration>) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other("cut by the test front")),
    ];
    let chunks = futures::stream::iter(chunks).then(move |chunk| async move {
        if chunk.is_err() {
            tokio::time::sleep(stall.unwrap_or(std::time::Duration::from_millis(200))).await;
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(chunks))
}

fn token(shared: &Shared, headers: &HeaderMap, query: &str) -> Response {
    shared
        .seen
        .lock()
        .unwrap()
        .token_requests
        .push(query.to_string());
    if let Some((user, password)) = &shared.options.token_credentials {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        if headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(expected.as_str())
        {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .body(Body::from("bad credentials"))
                .unwrap();
        }
    }
    let mut issued = shared.issued.lock().unwrap();
    let value = format!("tok-{}", issued.len() + 1);
    issued.push(value.clone());
    let field = if shared.options.access_token_field {
        "access_token"
    } else {
        "token"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!(
            r#"{{"{field}":"{value}","expires_in":300}}"#
        )))
        .unwrap()
}

fn has_issued_token(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    shared.issued.lock().unwrap().iter().any(|t| t == token)
}

/// Forwards a request (its body and the headers a pull or a push needs) to the registry, and
/// points upload `Location`s back at this front so that every request of a push comes here.
async fn forward(shared: &Shared, request: Request, path: &str, query: &str) -> Response {
    let method = request.method().clone();
    shared
        .seen
        .lock()
        .unwrap()
        .forwarded
        .push(format!("{method} {path}"));
    let front_host = header_text(request.headers(), &header::HOST);
    let url = if query.is_empty() {
        format!("http://{}{path}", shared.upstream)
    } else {
        format!("http://{}{path}?{query}", shared.upstream)
    };
    let mut upstream = shared.http.request(method.clone(), url);
    for name in [header::ACCEPT, header::RANGE, header::CONTENT_TYPE] {
        if let Some(value) = request.headers().get(&name) {
            upstream = upstream.header(name, value.clone());
        }
    }
    if let Some(value) = request.headers().get("content-range") {
        upstream = upstream.header("content-range", value.clone());
    }
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    if !body.is_empty() || method == axum::http::Method::PUT || method == axum::http::Method::POST {
        upstream = upstream.body(body);
    }
    let reply = match upstream.send().await {
        Ok(reply) => reply,
        Err(err) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(err.to_string()))
                .unwrap();
        }
    };
    let status = reply.status();
    if path.contains("/blobs/uploads/") {
        let line = if query.is_empty() {
            format!("{method} {path} {}", status.as_u16())
        } else {
            format!("{method} {path}?{query} {}", status.as_u16())
        };
        shared.seen.lock().unwrap().uploads.push(line);
    }
    let headers = reply.headers().clone();
    let mut body = reply.bytes().await.unwrap_or_default().to_vec();
    let tampered = shared
        .options
        .tamper_blob
        .as_ref()
        .is_some_and(|d| path.ends_with(&format!("/blobs/{d}")));
    if tampered && !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0xff;
    }
    let mut response = Response::builder().status(status);
    for name in [header::CONTENT_TYPE, header::WWW_AUTHENTICATE] {
        if let Some(value) = headers.get(&name) {
            response = response.header(name, value.clone());
        }
    }
    if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        let upstream_origin = format!("http://{}", shared.upstream);
        let location = match &front_host {
            Some(front) => location.replacen(&upstream_origin, &format!("http://{front}"), 1),
            None => location.to_string(),
        };
        response = response.header(header::LOCATION, location);
    }
    for name in [
        "docker-content-digest",
        "docker-upload-uuid",
        "range",
        "oci-chunk-min-length",
        "oci-chunk-max-length",
    ] {
        if let Some(value) = headers.get(name) {
            response = response.header(name, value.clone());
        }
    }
    response.body(Body::from(body)).unwrap()
}

fn header_text(headers: &HeaderMap, name: &header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
