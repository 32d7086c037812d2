//! The prediction service: what the routes call. Holds the schema, the health, the
//! predictions in flight and the supervisor.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

use crate::config::ServeConfig;
use crate::health::{Health, HealthState};
use crate::prediction::{Prediction, Status, WebhookEvent, WebhookFilter};
use crate::schema::{ModelSchema, ValidationIssue};
use crate::supervisor::Supervisor;
use crate::sync::lock;
use crate::webhook::{self, TraceContext, WebhookSettings};

pub const NOT_READY: &str =
    "Setup has not finished yet. Wait until it has finished, or GET /health-check for status.";
pub const AT_CAPACITY: &str = "At capacity - all prediction slots busy";
/// How many ended-by-cancel prediction ids a repeated cancel still answers 200 for.
const CANCELED_MEMORY: usize = 256;

/// A validated create request.
pub struct NewPrediction {
    pub id: String,
    pub training: bool,
    pub input: Map<String, Value>,
    pub context: HashMap<String, String>,
    pub webhook: Option<String>,
    pub webhook_filter: WebhookFilter,
    pub trace: TraceContext,
    /// Created by an SSE request: keep an event log; cancel when its last subscriber leaves.
    pub sse: bool,
}

/// Why a prediction could not be created.
#[derive(Debug)]
pub enum CreateError {
    NotReady,
    AtCapacity,
    Invalid(Vec<ValidationIssue>),
    /// The id is already in flight (PUT semantics: answer with its state).
    Exists(Arc<Prediction>),
}

pub struct Service {
    pub config: Arc<ServeConfig>,
    pub schema: Option<ModelSchema>,
    pub health: Arc<Mutex<HealthState>>,
    pub supervisor: Option<Arc<Supervisor>>,
    predictions: Mutex<HashMap<String, Arc<Prediction>>>,
    /// The ids of the latest predictions that ended canceled, oldest first.
    canceled: Mutex<VecDeque<String>>,
    /// Signalled whenever a prediction leaves `predictions` (shutdown drains on it).
    drained: Notify,
    webhooks: WebhookSettings,
    pub shutdown: watch::Sender<bool>,
}

impl Service {
    pub fn new(config: Arc<ServeConfig>, schema: Option<ModelSchema>) -> Arc<Self> {
        let health = Arc::new(Mutex::new(HealthState::new(
            if config.predictor_ref.is_some() {
                Health::Starting
            } else {
                Health::Unknown
            },
        )));
        if let Some(sdk) = &config.sdk_version {
            lock(&health)
                .versions
                .insert("python_sdk".into(), Value::String(sdk.clone()));
        }
        let supervisor = config
            .predictor_ref
            .as_ref()
            .map(|_| Supervisor::new(Arc::clone(&config), Arc::clone(&health)));
        let webhooks = WebhookSettings::new(
            config.webhook_auth_token.clone(),
            config.webhook_log_interval,
        );
        Arc::new(Self {
            config,
            schema,
            health,
            supervisor,
            predictions: Mutex::new(HashMap::new()),
            canceled: Mutex::new(VecDeque::new()),
            drained: Notify::new(),
            webhooks,
            shutdown: watch::channel(false).0,
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Prediction>> {
        lock(&self.predictions).get(id).cloned()
    }

    pub fn in_flight(&self) -> usize {
        lock(&self.predictions).len()
    }

    fn is_ready(&self) -> bool {
        lock(&self.health).health == Health::Ready
    }

    /// The `/health-check` body.
    pub async fn health_body(&self) -> Value {
        let (ready, state) = {
            let h = lock(&self.health);
            (h.health == Health::Ready, h.clone())
        };
        let busy = self.supervisor.as_ref().is_some_and(|s| !s.pool.has_free());
        let mut user_error = None;
        if ready {
            write_readiness_file();
            if let Some(sup) = &self.supervisor {
                user_error = sup.healthcheck().await.err();
            }
        }
        state.body(busy, user_error)
    }

    /// Validates and starts a prediction (reference 3.2 "Input handling before dispatch").
    pub async fn create(
        self: &Arc<Self>,
        mut new: NewPrediction,
    ) -> Result<Arc<Prediction>, CreateError> {
        if let Some(existing) = self.get(&new.id) {
            return Err(CreateError::Exists(existing));
        }
        let Some(supervisor) = self.supervisor.as_ref().filter(|_| self.is_ready()) else {
            return Err(CreateError::NotReady);
        };
        if let Some(validator) = self.schema.as_ref().and_then(|s| s.validator(new.training)) {
            validator
                .prepare(&mut new.input)
                .map_err(CreateError::Invalid)?;
        }
        let Some(permit) = supervisor.pool.try_acquire() else {
            return Err(CreateError::AtCapacity);
        };
        let output_is_array = self.schema.as_ref().is_some_and(|s| {
            if new.training {
                s.training_output_is_array
            } else {
                s.output_is_array
            }
        });
        let input = Value::Object(new.input);
        // Keep an event log only when SSE is possible for this model.
        let streamable = !new.training && self.schema.as_ref().is_some_and(|s| s.streaming);
        let prediction = Prediction::new(
            new.id.clone(),
            new.training,
            input.clone(),
            output_is_array,
            streamable.then_some(self.config.stream_history_capacity),
        );
        if new.sse {
            prediction.mark_sse_owned();
        }
        {
            let mut map = lock(&self.predictions);
            if let Some(existing) = map.get(&new.id) {
                return Err(CreateError::Exists(Arc::clone(existing)));
            }
            map.insert(new.id.clone(), Arc::clone(&prediction));
        }
        if let Some(url) = new.webhook {
            webhook::attach(
                &prediction,
                url,
                new.webhook_filter,
                new.trace,
                &self.webhooks,
            );
        }
        supervisor
            .dispatch(permit, Arc::clone(&prediction), input, new.context)
            .await;
        Ok(prediction)
    }

    /// Forgets a finished prediction (remembering its id if it ended canceled).
    pub fn remove(&self, id: &str) {
        let removed = lock(&self.predictions).remove(id);
        if removed.is_some_and(|p| p.status() == Status::Canceled) {
            let mut canceled = lock(&self.canceled);
            if canceled.len() == CANCELED_MEMORY {
                canceled.pop_front();
            }
            canceled.push_back(id.to_owned());
        }
        self.drained.notify_waiters();
    }

    /// Removes the prediction once it finishes, in the background.
    pub fn remove_when_done(self: &Arc<Self>, prediction: Arc<Prediction>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            prediction.wait().await;
            this.remove(&prediction.id);
        });
    }

    /// `POST /predictions/{id}/cancel`. True (200) if it is in flight or already ended
    /// canceled, so that a repeated cancel stays idempotent even when the first one ended the
    /// prediction at once; false (404) for an unknown id or one that ended otherwise.
    pub fn cancel(&self, id: &str) -> bool {
        match self.get(id) {
            Some(p) => p.cancel() || p.status() == Status::Canceled,
            None => lock(&self.canceled).iter().any(|c| c == id),
        }
    }

    /// Waits for every prediction in flight to finish (graceful shutdown).
    pub async fn drain(&self) {
        loop {
            let notified = self.drained.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// `GET /` discovery document.
    pub fn discovery(&self) -> Value {
        let h = lock(&self.health);
        let cog_version = h
            .versions
            .get("python_sdk")
            .or_else(|| h.versions.get("coglet"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut doc = json!({
            "cog_version": cog_version,
            "docs_url": "/docs",
            "openapi_url": "/openapi.json",
            "shutdown_url": "/shutdown",
            "healthcheck_url": "/health-check",
            "predictions_url": "/predictions",
            "predictions_idempotent_url": "/predictions/{prediction_id}",
            "predictions_cancel_url": "/predictions/{prediction_id}/cancel",
        });
        if self.schema.as_ref().is_some_and(|s| s.has_training)
            && let Some(m) = doc.as_object_mut()
        {
            m.insert("trainings_url".into(), json!("/trainings"));
            m.insert(
                "trainings_idempotent_url".into(),
                json!("/trainings/{training_id}"),
            );
            m.insert(
                "trainings_cancel_url".into(),
                json!("/trainings/{training_id}/cancel"),
            );
        }
        doc
    }

    pub fn trigger_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

/// Under Kubernetes the first READY writes `/var/run/cog/ready`.
fn write_readiness_file() {
    static WRITTEN: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if WRITTEN.get().is_some() || std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return;
    }
    let dir = std::path::Path::new("/var/run/cog");
    if std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("ready"), b""))
        .is_ok()
    {
        let _ = WRITTEN.set(());
    }
}

/// Parses a `webhook_events_filter`.
pub fn webhook_filter(events: Option<&[WebhookEvent]>) -> WebhookFilter {
    events.map_or(WebhookFilter::ALL, WebhookFilter::from_events)
}

/// Counts SSE subscribers of one prediction; cancels an SSE-created prediction when the
/// last one leaves before it finished.
pub struct SubscriberGuard {
    pub prediction: Arc<Prediction>,
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        if self.prediction.unsubscribe() == 0
            && self.prediction.is_sse_owned()
            && !self.prediction.is_done()
        {
            tracing::info!(prediction_id = %self.prediction.id, "last stream subscriber left; canceling");
            self.prediction.cancel();
        }
    }
}

/// Cancels a sync prediction whose client went away before it finished.
pub struct SyncGuard {
    pub service: Arc<Service>,
    pub prediction: Arc<Prediction>,
    pub armed: bool,
}

impl Drop for SyncGuard {
    fn drop(&mut self) {
        if self.armed {
            if !self.prediction.is_done() {
                tracing::info!(prediction_id = %self.prediction.id, "client disconnected; canceling");
                self.prediction.cancel();
            }
            self.service.remove_when_done(Arc::clone(&self.prediction));
        }
    }
}
