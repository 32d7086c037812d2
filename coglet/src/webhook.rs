//! Webhook delivery (reference 3.5): one task per prediction with a webhook.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::prediction::{Prediction, WebhookFilter, WebhookNotice};

/// Terminal deliveries: attempts and backoff `100ms * 2^attempt` (exponent capped at 10).
pub const TERMINAL_RETRIES: u32 = 12;

/// `traceparent` / `tracestate` from the create request, forwarded on every delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// Shared by all deliveries.
#[derive(Clone)]
pub struct WebhookSettings {
    pub client: reqwest::Client,
    pub auth_token: Option<String>,
    pub log_interval: Duration,
    /// Backoff unit for terminal retries (100 ms; tests shorten it).
    pub retry_base: Duration,
}

impl WebhookSettings {
    pub fn new(auth_token: Option<String>, log_interval: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("coglet/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            client,
            auth_token,
            log_interval,
            retry_base: Duration::from_millis(100),
        }
    }
}

/// Starts delivering `prediction`'s events to `url`.
pub fn attach(
    prediction: &Arc<Prediction>,
    url: String,
    filter: WebhookFilter,
    trace: TraceContext,
    settings: &WebhookSettings,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    prediction.set_webhook(tx, filter);
    let sender = Sender {
        url,
        trace,
        settings: settings.clone(),
    };
    tokio::spawn(deliver(Arc::clone(prediction), sender, rx));
}

struct Sender {
    url: String,
    trace: TraceContext,
    settings: WebhookSettings,
}

enum Delivery {
    Done,
    Retry(String),
    GiveUp(String),
}

impl Sender {
    async fn post(&self, body: &Value) -> Delivery {
        let mut req = self.settings.client.post(&self.url).json(body);
        if let Some(token) = &self.settings.auth_token {
            req = req.bearer_auth(token);
        }
        if let Some(tp) = &self.trace.traceparent {
            req = req.header("traceparent", tp);
        }
        if let Some(ts) = &self.trace.tracestate {
            req = req.header("tracestate", ts);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Delivery::Done,
            Ok(resp) => {
                let status = resp.status();
                let retryable = matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS
                        | StatusCode::INTERNAL_SERVER_ERROR
                        | StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                );
                if retryable {
                    Delivery::Retry(format!("HTTP {status}"))
                } else {
                    Delivery::GiveUp(format!("HTTP {status}"))
                }
            }
            Err(e) => Delivery::Retry(e.to_string()),
        }
    }

    /// Sends a progress snapshot taken now, unless the prediction already finished (the
    /// completed event carries everything then).
    async fn send_progress(&self, prediction: &Prediction) {
        let snapshot = prediction.snapshot();
        if snapshot["status"] == "processing" {
            self.send_once(&snapshot).await;
        }
    }

    async fn send_once(&self, body: &Value) {
        match self.post(body).await {
            Delivery::Done => {}
            Delivery::Retry(e) | Delivery::GiveUp(e) => {
                tracing::warn!(url = %self.url, error = %e, "webhook delivery failed");
            }
        }
    }

    async fn send_terminal(&self, body: &Value) {
        for attempt in 0..TERMINAL_RETRIES {
            match self.post(body).await {
                Delivery::Done => return,
                Delivery::GiveUp(e) => {
                    tracing::error!(url = %self.url, error = %e, "terminal webhook rejected");
                    return;
                }
                Delivery::Retry(e) => {
                    tracing::warn!(url = %self.url, error = %e, attempt, "terminal webhook failed; retrying");
                    tokio::time::sleep(self.settings.retry_base * 2u32.pow(attempt.min(10))).await;
                }
            }
        }
        tracing::error!(url = %self.url, "terminal webhook failed after {TERMINAL_RETRIES} attempts");
    }
}

async fn deliver(
    prediction: Arc<Prediction>,
    sender: Sender,
    mut rx: mpsc::UnboundedReceiver<WebhookNotice>,
) {
    let interval = sender.settings.log_interval;
    let mut last_logs: Option<Instant> = None;
    let mut logs_pending = false;
    loop {
        let deadline = last_logs.map_or_else(Instant::now, |t| t + interval);
        tokio::select! {
            notice = rx.recv() => match notice {
                None => return,
                Some(WebhookNotice::Start(snapshot)) => sender.send_once(&snapshot).await,
                Some(WebhookNotice::Output) => sender.send_progress(&prediction).await,
                Some(WebhookNotice::Logs) => {
                    if Instant::now() >= deadline {
                        last_logs = Some(Instant::now());
                        logs_pending = false;
                        sender.send_progress(&prediction).await;
                    } else {
                        logs_pending = true;
                    }
                }
                Some(WebhookNotice::Completed(snapshot)) => {
                    // The completed payload carries every log line: pending logs are moot.
                    sender.send_terminal(&snapshot).await;
                    return;
                }
            },
            () = tokio::time::sleep_until(deadline), if logs_pending => {
                logs_pending = false;
                last_logs = Some(Instant::now());
                sender.send_progress(&prediction).await;
            }
        }
    }
}
