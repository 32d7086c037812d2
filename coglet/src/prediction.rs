//! One prediction's state machine: `starting -> processing -> succeeded | failed | canceled`.
//! Every change can feed the webhook task and the SSE event log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::ipc::{LogSource, MetricMode};
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// Webhook event kinds (`webhook_events_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    Start,
    Output,
    Logs,
    Completed,
}

/// What the webhook task is told. Start and Completed carry the snapshot of that moment;
/// Output and Logs are taken when sent (logs are throttled and coalesced).
#[derive(Debug)]
pub enum WebhookNotice {
    Start(Value),
    Output,
    Logs,
    Completed(Value),
}

/// One server-sent event: name and JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: &'static str,
    pub data: Arc<str>,
}

struct EventLog {
    history: VecDeque<SseEvent>,
    capacity: usize,
    dropped: usize,
    tx: broadcast::Sender<SseEvent>,
}

/// A subscription: the replayed history, how many events were lost from it, and the live feed.
pub struct Subscription {
    pub replay: Vec<SseEvent>,
    pub truncated: usize,
    pub live: broadcast::Receiver<SseEvent>,
    pub finished: bool,
}

/// How the prediction was finished by the worker (beyond success).
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Succeeded,
    Failed(String),
    /// The worker could not coerce the input: HTTP 422 for a sync request.
    InvalidInput(String),
    Canceled,
}

type Canceller = Arc<dyn Fn() + Send + Sync>;

struct State {
    status: Status,
    input: Value,
    chunks: Vec<Value>,
    output: Option<Value>,
    is_stream: bool,
    output_is_array: bool,
    logs: String,
    error: Option<String>,
    invalid_input: bool,
    metrics: Metrics,
    predict_time: Option<f64>,
    started: Option<std::time::Instant>,
    cancel_requested: bool,
    canceller: Option<Canceller>,
    webhook: Option<(mpsc::UnboundedSender<WebhookNotice>, WebhookFilter)>,
    events: Option<EventLog>,
}

/// Which webhook events are wanted (a small bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookFilter(u8);

impl WebhookFilter {
    pub const ALL: Self = Self(0b1111);
    pub fn from_events(events: &[WebhookEvent]) -> Self {
        Self(events.iter().fold(0, |acc, e| acc | Self::bit(*e)))
    }
    fn bit(e: WebhookEvent) -> u8 {
        match e {
            WebhookEvent::Start => 1,
            WebhookEvent::Output => 2,
            WebhookEvent::Logs => 4,
            WebhookEvent::Completed => 8,
        }
    }
    pub fn wants(self, e: WebhookEvent) -> bool {
        self.0 & Self::bit(e) != 0
    }
}

pub struct Prediction {
    pub id: String,
    pub training: bool,
    subscribers: std::sync::atomic::AtomicUsize,
    sse_owned: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
    done: watch::Sender<bool>,
}

impl std::fmt::Debug for Prediction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prediction")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Prediction {
    /// A new prediction in `starting`. `stream_capacity`: keep an SSE event log of this size
    /// (None: no SSE possible).
    pub fn new(
        id: String,
        training: bool,
        input: Value,
        output_is_array: bool,
        stream_capacity: Option<usize>,
    ) -> Arc<Self> {
        let events = stream_capacity.map(|capacity| EventLog {
            history: VecDeque::new(),
            capacity,
            dropped: 0,
            tx: broadcast::channel(1024).0,
        });
        Arc::new(Self {
            id,
            training,
            subscribers: std::sync::atomic::AtomicUsize::new(0),
            sse_owned: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State {
                status: Status::Starting,
                input,
                chunks: Vec::new(),
                output: None,
                is_stream: false,
                output_is_array,
                logs: String::new(),
                error: None,
                invalid_input: false,
                metrics: Metrics::new(),
                predict_time: None,
                started: None,
                cancel_requested: false,
                canceller: None,
                webhook: None,
                events,
            }),
            done: watch::channel(false).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    pub fn set_webhook(&self, tx: mpsc::UnboundedSender<WebhookNotice>, filter: WebhookFilter) {
        self.lock().webhook = Some((tx, filter));
    }

    pub fn status(&self) -> Status {
        self.lock().status
    }

    pub fn is_streamable(&self) -> bool {
        self.lock().events.is_some()
    }

    /// Takes the input out (it is only kept for snapshots after dispatch).
    pub fn input(&self) -> Value {
        self.lock().input.clone()
    }

    /// Records how to cancel it once dispatched. Returns false if a cancel already came.
    pub fn set_canceller(&self, canceller: Canceller) -> bool {
        let mut s = self.lock();
        s.canceller = Some(canceller);
        !s.cancel_requested
    }

    /// Requests cancellation. Returns false if it had already finished.
    pub fn cancel(&self) -> bool {
        let canceller = {
            let mut s = self.lock();
            if s.status.is_terminal() {
                return false;
            }
            s.cancel_requested = true;
            s.canceller.clone()
        };
        if let Some(c) = canceller {
            c();
        }
        true
    }

    fn emit(s: &mut State, event: &'static str, data: &Value) {
        if let Some(log) = &mut s.events {
            let ev = SseEvent {
                event,
                data: Arc::from(data.to_string()),
            };
            if log.capacity > 0 {
                if log.history.len() == log.capacity {
                    log.history.pop_front();
                    log.dropped += 1;
                }
                log.history.push_back(ev.clone());
            }
            let _ = log.tx.send(ev);
        }
    }

    fn notify(s: &State, event: WebhookEvent, notice: impl FnOnce(&State) -> WebhookNotice) {
        if let Some((tx, filter)) = &s.webhook
            && filter.wants(event)
        {
            let _ = tx.send(notice(s));
        }
    }

    /// `starting -> processing` (dispatched to the worker).
    pub fn start(&self) {
        let mut s = self.lock();
        if s.status != Status::Starting {
            return;
        }
        s.status = Status::Processing;
        s.started = Some(std::time::Instant::now());
        Self::emit(
            &mut s,
            "start",
            &json!({"id": self.id, "status": "processing"}),
        );
        Self::notify(&s, WebhookEvent::Start, |s| {
            WebhookNotice::Start(self.snapshot_locked(s, false))
        });
    }

    /// Seconds since it started processing (0 if it never did).
    pub fn elapsed_secs(&self) -> f64 {
        self.lock()
            .started
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    pub fn append_log(&self, source: LogSource, data: &str) {
        let mut s = self.lock();
        if s.status.is_terminal() {
            return;
        }
        s.logs.push_str(data);
        Self::emit(
            &mut s,
            "log",
            &json!({"source": source.as_str(), "data": data}),
        );
        Self::notify(&s, WebhookEvent::Logs, |_| WebhookNotice::Logs);
    }

    pub fn push_output(&self, chunk: Value) {
        let mut s = self.lock();
        if s.status.is_terminal() {
            return;
        }
        let index = s.chunks.len();
        if s.events.is_some() {
            Self::emit(&mut s, "output", &json!({"chunk": chunk, "index": index}));
        }
        s.chunks.push(chunk);
        Self::notify(&s, WebhookEvent::Output, |_| WebhookNotice::Output);
    }

    pub fn record_metric(&self, name: &str, value: Value, mode: MetricMode) {
        let mut s = self.lock();
        if s.status.is_terminal() {
            return;
        }
        if s.events.is_some() {
            Self::emit(
                &mut s,
                "metric",
                &json!({"name": name, "value": value, "mode": mode.as_str()}),
            );
        }
        if let Err(e) = s.metrics.apply(name, value, mode) {
            tracing::warn!(prediction_id = %self.id, error = %e, "metric rejected");
        }
    }

    /// Finishes the prediction (once); wakes waiters, sends `completed`.
    pub fn finish(
        &self,
        ending: Ending,
        output: Option<Value>,
        is_stream: bool,
        predict_time: f64,
    ) {
        let mut s = self.lock();
        if s.status.is_terminal() {
            return;
        }
        s.predict_time = Some(predict_time);
        s.is_stream = is_stream;
        s.output = output;
        s.status = match ending {
            Ending::Succeeded => Status::Succeeded,
            Ending::Canceled => Status::Canceled,
            Ending::Failed(error) => {
                s.error = Some(error);
                Status::Failed
            }
            Ending::InvalidInput(error) => {
                s.error = Some(error);
                s.invalid_input = true;
                Status::Failed
            }
        };
        s.canceller = None;
        if s.events.is_some() || s.webhook.is_some() {
            let snapshot = self.snapshot_locked(&s, false);
            if s.events.is_some() {
                Self::emit(&mut s, "completed", &snapshot);
            }
            Self::notify(&s, WebhookEvent::Completed, |_| {
                WebhookNotice::Completed(snapshot)
            });
        }
        s.webhook = None;
        drop(s);
        self.done.send_replace(true);
    }

    /// Waits until the prediction is terminal.
    pub async fn wait(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    fn final_output(s: &State) -> Value {
        if !s.chunks.is_empty() || s.is_stream {
            return Value::Array(s.chunks.clone());
        }
        match &s.output {
            Some(Value::Array(items)) => Value::Array(items.clone()),
            Some(v) if s.output_is_array => Value::Array(vec![v.clone()]),
            Some(v) => v.clone(),
            None if s.output_is_array => Value::Array(Vec::new()),
            None => Value::Null,
        }
    }

    fn metrics_locked(s: &State) -> Value {
        let mut m: Map<String, Value> = s.metrics.as_map().clone();
        if let Some(t) = s.predict_time {
            m.insert("predict_time".into(), json!(t));
        }
        Value::Object(m)
    }

    fn snapshot_locked(&self, s: &State, with_input: bool) -> Value {
        let mut m = Map::with_capacity(7);
        m.insert("id".into(), Value::String(self.id.clone()));
        if with_input {
            m.insert("input".into(), s.input.clone());
        }
        m.insert("status".into(), Value::String(s.status.as_str().into()));
        m.insert("logs".into(), Value::String(s.logs.clone()));
        if s.status == Status::Succeeded {
            m.insert("output".into(), Self::final_output(s));
        } else if !s.chunks.is_empty() {
            m.insert("output".into(), Value::Array(s.chunks.clone()));
        }
        if let Some(e) = &s.error {
            m.insert("error".into(), Value::String(e.clone()));
        }
        m.insert("metrics".into(), Self::metrics_locked(s));
        Value::Object(m)
    }

    /// The state as webhooks and SSE `completed` see it (no input).
    pub fn snapshot(&self) -> Value {
        self.snapshot_locked(&self.lock(), false)
    }

    /// The state plus `input` (a PUT for an id already in flight).
    pub fn snapshot_with_input(&self) -> Value {
        self.snapshot_locked(&self.lock(), true)
    }

    /// The body of a finished sync request, and whether it is a 422.
    pub fn sync_response(&self) -> (bool, Value) {
        let s = self.lock();
        let mut m = Map::with_capacity(6);
        m.insert("id".into(), Value::String(self.id.clone()));
        match s.status {
            Status::Succeeded => {
                m.insert("output".into(), Self::final_output(&s));
            }
            Status::Failed => {
                m.insert(
                    "error".into(),
                    Value::String(s.error.clone().unwrap_or_default()),
                );
            }
            _ => {}
        }
        m.insert("logs".into(), Value::String(s.logs.clone()));
        m.insert("status".into(), Value::String(s.status.as_str().into()));
        m.insert("metrics".into(), Self::metrics_locked(&s));
        (s.invalid_input, Value::Object(m))
    }

    pub fn mark_sse_owned(&self) {
        self.sse_owned
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_sse_owned(&self) -> bool {
        self.sse_owned.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops one subscriber; returns how many remain.
    pub fn unsubscribe(&self) -> usize {
        self.subscribers
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            .saturating_sub(1)
    }

    /// Subscribes to the SSE feed with replay. None if this prediction keeps no event log.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn subscribe(&self) -> Option<Subscription> {
        let s = self.lock();
        let log = s.events.as_ref()?;
        self.subscribers
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Some(Subscription {
            replay: log.history.iter().cloned().collect(),
            truncated: log.dropped,
            live: log.tx.subscribe(),
            finished: s.status.is_terminal(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_bodies() {
        let p = Prediction::new("p1".into(), false, json!({"a": 1}), false, None);
        p.start();
        p.append_log(LogSource::Stdout, "hello\n");
        p.record_metric("tokens", json!(2), MetricMode::Increment);
        p.finish(Ending::Succeeded, Some(json!("out")), false, 0.5);
        insta::assert_json_snapshot!("sync_succeeded", p.sync_response());

        let p = Prediction::new("p2".into(), false, json!({}), false, None);
        p.start();
        p.finish(Ending::Failed("boom".into()), None, false, 0.25);
        insta::assert_json_snapshot!("sync_failed", p.sync_response());

        let p = Prediction::new("p3".into(), false, json!({}), false, None);
        p.start();
        p.finish(Ending::Canceled, None, false, 0.125);
        insta::assert_json_snapshot!("sync_canceled", p.sync_response());

        let p = Prediction::new("p4".into(), false, json!({}), false, None);
        p.finish(Ending::InvalidInput("bad image".into()), None, false, 0.0);
        let (invalid, _) = p.sync_response();
        assert!(invalid);
    }

    #[test]
    fn outputs_become_arrays_when_streamed_or_declared() {
        let p = Prediction::new("p".into(), false, json!({}), false, None);
        p.start();
        p.push_output(json!("a"));
        p.push_output(json!("b"));
        p.finish(Ending::Succeeded, None, true, 1.0);
        assert_eq!(p.snapshot()["output"], json!(["a", "b"]));

        let p = Prediction::new("p".into(), false, json!({}), true, None);
        p.finish(Ending::Succeeded, Some(json!("x")), false, 1.0);
        assert_eq!(p.snapshot()["output"], json!(["x"]));

        let p = Prediction::new("p".into(), false, json!({}), false, None);
        p.finish(Ending::Succeeded, None, true, 1.0);
        assert_eq!(p.snapshot()["output"], json!([]));
    }

    #[test]
    fn sse_history_replays_and_reports_truncation() {
        let p = Prediction::new("p".into(), false, json!({}), false, Some(2));
        p.start();
        p.push_output(json!(1));
        p.push_output(json!(2));
        let sub = p.subscribe().unwrap();
        assert_eq!(sub.truncated, 1);
        assert_eq!(sub.replay.len(), 2);
        assert_eq!(&*sub.replay[1].data, r#"{"chunk":2,"index":1}"#);
    }

    #[tokio::test]
    async fn cancel_calls_the_canceller_once_dispatched() {
        let p = Prediction::new("p".into(), false, json!({}), false, None);
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        assert!(p.set_canceller(Arc::new(move || {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })));
        assert!(p.cancel());
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        p.finish(Ending::Canceled, None, false, 0.1);
        p.wait().await;
        assert!(!p.cancel());
    }
}
