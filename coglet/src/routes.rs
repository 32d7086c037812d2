//! HTTP routes (reference 3.1): thin handlers over [`Service`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::prediction::{Prediction, SseEvent, WebhookEvent};
use crate::schema::ValidationIssue;
use crate::service::{
    AT_CAPACITY, CreateError, NOT_READY, NewPrediction, Service, SubscriberGuard, SyncGuard,
    webhook_filter,
};
use crate::webhook::TraceContext;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 100 * 1024 * 1024;
pub const MAX_SUBSCRIBERS: usize = 1024;
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

pub const NO_STREAMING: &str = "This model does not support streaming responses. Add @cog.streaming to predict() to enable SSE.";
pub const NO_TRAINING_STREAMING: &str = "Training endpoints do not support streaming responses.";
pub const TRUNCATED: &str = "SSE stream replay truncated; events were dropped";

/// The create request envelope. Unknown fields (`created_at`, `output_file_prefix`) are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct PredictionRequest {
    pub id: Option<String>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub context: Option<HashMap<String, String>>,
    pub webhook: Option<String>,
    pub webhook_events_filter: Option<Vec<WebhookEvent>>,
}

pub fn routes(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(discovery))
        .route("/health-check", get(health_check))
        .route("/openapi.json", get(openapi))
        .route("/shutdown", post(shutdown))
        .route("/predictions", post(create_prediction))
        .route("/predictions/{id}", put(put_prediction))
        .route("/predictions/{id}/cancel", post(cancel))
        .route("/trainings", post(create_training))
        .route("/trainings/{id}", put(put_training))
        .route("/trainings/{id}/cancel", post(cancel))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(service)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, Json(body)).into_response()
}

async fn discovery(State(svc): State<Arc<Service>>) -> Response {
    json_response(StatusCode::OK, &svc.discovery())
}

async fn health_check(State(svc): State<Arc<Service>>) -> Response {
    json_response(StatusCode::OK, &svc.health_body().await)
}

async fn openapi(State(svc): State<Arc<Service>>) -> Response {
    match &svc.schema {
        Some(s) => json_response(StatusCode::OK, &s.document),
        None => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "OpenAPI schema not available"}),
        ),
    }
}

async fn shutdown(State(svc): State<Arc<Service>>) -> Response {
    tracing::info!("shutdown requested via HTTP");
    svc.trigger_shutdown();
    json_response(StatusCode::OK, &json!({}))
}

async fn cancel(State(svc): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    if svc.cancel(&id) {
        json_response(StatusCode::OK, &json!({}))
    } else {
        json_response(StatusCode::NOT_FOUND, &json!({}))
    }
}

async fn create_prediction(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: Option<Json<PredictionRequest>>,
) -> Response {
    create(svc, headers, None, false, body).await
}

async fn put_prediction(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<PredictionRequest>>,
) -> Response {
    create(svc, headers, Some(id), false, body).await
}

async fn create_training(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: Option<Json<PredictionRequest>>,
) -> Response {
    create(svc, headers, None, true, body).await
}

async fn put_training(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<PredictionRequest>>,
) -> Response {
    create(svc, headers, Some(id), true, body).await
}

/// `pred_<hex nanoseconds since the epoch>`, as Cog.
pub fn generate_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("pred_{nanos:x}")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn detail(issues: &[ValidationIssue]) -> Response {
    json_response(StatusCode::UNPROCESSABLE_ENTITY, &json!({"detail": issues}))
}

async fn create(
    svc: Arc<Service>,
    headers: HeaderMap,
    path_id: Option<String>,
    training: bool,
    body: Option<Json<PredictionRequest>>,
) -> Response {
    let request = body.map(|Json(r)| r).unwrap_or_default();
    if let (Some(url_id), Some(body_id)) = (&path_id, &request.id)
        && url_id != body_id
    {
        return detail(&[ValidationIssue {
            loc: vec!["body".into(), "id".into()],
            msg: "prediction ID must match the ID supplied in the URL".into(),
            kind: "value_error".into(),
        }]);
    }
    let sse = header_str(&headers, "accept").is_some_and(|a| a.contains("text/event-stream"));
    let respond_async = header_str(&headers, "prefer") == Some("respond-async");
    if sse {
        if training {
            return json_response(
                StatusCode::NOT_ACCEPTABLE,
                &json!({"error": NO_TRAINING_STREAMING}),
            );
        }
        if !svc.schema.as_ref().is_some_and(|s| s.streaming) {
            return json_response(StatusCode::NOT_ACCEPTABLE, &json!({"error": NO_STREAMING}));
        }
    }
    let input = match request.input {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        _ => {
            return detail(&[ValidationIssue {
                loc: vec!["body".into(), "input".into()],
                msg: "Input should be a valid dictionary".into(),
                kind: "type_error.dict".into(),
            }]);
        }
    };
    let id = path_id.or(request.id).unwrap_or_else(generate_id);
    let new = NewPrediction {
        id,
        training,
        input,
        context: request.context.unwrap_or_default(),
        webhook: request.webhook,
        webhook_filter: webhook_filter(request.webhook_events_filter.as_deref()),
        trace: TraceContext {
            traceparent: header_str(&headers, "traceparent").map(str::to_string),
            tracestate: header_str(&headers, "tracestate").map(str::to_string),
        },
        sse,
    };
    let prediction = match svc.create(new).await {
        Ok(p) => p,
        Err(CreateError::Exists(p)) => {
            return if sse {
                stream(p)
            } else {
                json_response(StatusCode::ACCEPTED, &p.snapshot_with_input())
            };
        }
        Err(CreateError::NotReady) => {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": NOT_READY, "status": "failed"}),
            );
        }
        Err(CreateError::AtCapacity) => {
            return json_response(
                StatusCode::CONFLICT,
                &json!({"error": AT_CAPACITY, "status": "failed"}),
            );
        }
        Err(CreateError::Invalid(issues)) => return detail(&issues),
    };
    if sse {
        svc.remove_when_done(Arc::clone(&prediction));
        return stream(prediction);
    }
    if respond_async {
        svc.remove_when_done(Arc::clone(&prediction));
        return json_response(
            StatusCode::ACCEPTED,
            &json!({"id": prediction.id, "status": "starting"}),
        );
    }
    let mut guard = SyncGuard {
        service: Arc::clone(&svc),
        prediction: Arc::clone(&prediction),
        armed: true,
    };
    prediction.wait().await;
    guard.armed = false;
    svc.remove(&prediction.id);
    let (invalid_input, body) = prediction.sync_response();
    let status = if invalid_input {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    json_response(status, &body)
}

fn sse_event(ev: &SseEvent) -> Event {
    Event::default().event(ev.event).data(&*ev.data)
}

fn error_event(skipped: usize) -> Event {
    Event::default()
        .event("error")
        .data(json!({"error": TRUNCATED, "skipped": skipped}).to_string())
}

/// Streams a prediction's events (replay, then live) until `completed`.
fn stream(prediction: Arc<Prediction>) -> Response {
    if prediction.subscriber_count() >= MAX_SUBSCRIBERS {
        return json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": "Too many stream subscribers"}),
        );
    }
    let Some(sub) = prediction.subscribe() else {
        return json_response(StatusCode::NOT_ACCEPTABLE, &json!({"error": NO_STREAMING}));
    };
    let guard = SubscriberGuard { prediction };
    let body = event_stream(sub, guard);
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(SSE_KEEPALIVE))
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

enum Phase {
    Replay(std::vec::IntoIter<SseEvent>),
    Live,
    Done,
}

fn event_stream(
    sub: crate::prediction::Subscription,
    guard: SubscriberGuard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = if sub.truncated > 0 {
        // Replay lost events: tell the client and stop rather than send a gapped stream.
        Phase::Done
    } else {
        Phase::Replay(sub.replay.into_iter())
    };
    let first_error = (sub.truncated > 0).then_some(sub.truncated);
    let state = (start, sub.live, guard, first_error);
    futures::stream::unfold(
        state,
        |(mut phase, mut live, guard, mut first_error)| async move {
            if let Some(skipped) = first_error.take() {
                return Some((Ok(error_event(skipped)), (Phase::Done, live, guard, None)));
            }
            loop {
                match &mut phase {
                    Phase::Done => return None,
                    Phase::Replay(items) => match items.next() {
                        Some(ev) => {
                            let next = if ev.event == "completed" {
                                Phase::Done
                            } else {
                                phase
                            };
                            return Some((Ok(sse_event(&ev)), (next, live, guard, None)));
                        }
                        None => phase = Phase::Live,
                    },
                    Phase::Live => match live.recv().await {
                        Ok(ev) => {
                            let next = if ev.event == "completed" {
                                Phase::Done
                            } else {
                                Phase::Live
                            };
                            return Some((Ok(sse_event(&ev)), (next, live, guard, None)));
                        }
                        Err(RecvError::Lagged(n)) => {
                            return Some((
                                Ok(error_event(n as usize)),
                                (Phase::Done, live, guard, None),
                            ));
                        }
                        Err(RecvError::Closed) => return None,
                    },
                }
            }
        },
    )
}
