//! Health states and the `/health-check` body (reference 3.4).

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    /// No runner configured (health-only mode).
    Unknown,
    Starting,
    Ready,
    SetupFailed,
    Defunct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetupStatus {
    Starting,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupRecord {
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub status: SetupStatus,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub logs: String,
}

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl SetupRecord {
    pub fn starting() -> Self {
        Self {
            started_at: now_rfc3339(),
            completed_at: None,
            status: SetupStatus::Starting,
            logs: String::new(),
        }
    }

    pub fn complete(&mut self, status: SetupStatus) {
        self.completed_at = Some(now_rfc3339());
        self.status = status;
    }
}

/// Everything `/health-check` reports, minus the live bits (busy, user healthcheck).
#[derive(Debug, Clone)]
pub struct HealthState {
    pub health: Health,
    pub setup: Option<SetupRecord>,
    /// Keys beyond `coglet`: `git_sha`, `build_time`, `python_sdk`, `python`.
    pub versions: Map<String, Value>,
    /// Worker restarts after crashes.
    pub restarts: u32,
}

impl HealthState {
    pub fn new(health: Health) -> Self {
        let mut versions = Map::new();
        versions.insert(
            "coglet".into(),
            Value::String(env!("CARGO_PKG_VERSION").into()),
        );
        if let Some(sha) = option_env!("COGLET_GIT_SHA") {
            versions.insert("git_sha".into(), Value::String(sha.into()));
        }
        if let Some(t) = option_env!("COGLET_BUILD_TIME") {
            versions.insert("build_time".into(), Value::String(t.into()));
        }
        Self {
            health,
            setup: None,
            versions,
            restarts: 0,
        }
    }

    /// The response body. `busy`: READY with no free slot; `user_error`: the user
    /// healthcheck failed (status `UNHEALTHY`).
    pub fn body(&self, busy: bool, user_error: Option<String>) -> Value {
        let status = if user_error.is_some() {
            "UNHEALTHY"
        } else if self.health == Health::Ready && busy {
            "BUSY"
        } else {
            match self.health {
                Health::Unknown => "UNKNOWN",
                Health::Starting => "STARTING",
                Health::Ready => "READY",
                Health::SetupFailed => "SETUP_FAILED",
                Health::Defunct => "DEFUNCT",
            }
        };
        let mut m = Map::new();
        m.insert("status".into(), Value::String(status.into()));
        if let Some(setup) = &self.setup {
            m.insert(
                "setup".into(),
                serde_json::to_value(setup).unwrap_or(Value::Null),
            );
        }
        m.insert("version".into(), Value::Object(self.versions.clone()));
        if let Some(e) = user_error {
            m.insert("user_healthcheck_error".into(), Value::String(e));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(mut s: HealthState) -> HealthState {
        s.versions
            .insert("coglet".into(), Value::String("0.0.0".into()));
        if let Some(setup) = &mut s.setup {
            setup.started_at = "2026-01-01T00:00:00Z".into();
            if setup.completed_at.is_some() {
                setup.completed_at = Some("2026-01-01T00:00:01Z".into());
            }
        }
        s
    }

    #[test]
    fn bodies() {
        let mut ready = HealthState::new(Health::Ready);
        let mut setup = SetupRecord::starting();
        setup.logs = "loading\n".into();
        setup.complete(SetupStatus::Succeeded);
        ready.setup = Some(setup);
        ready
            .versions
            .insert("python".into(), Value::String("3.12.1".into()));
        let ready = fixed(ready);
        let mut failed = ready.clone();
        failed.health = Health::SetupFailed;
        if let Some(s) = &mut failed.setup {
            s.status = SetupStatus::Failed;
            s.logs = "Traceback...\nValueError: no weights\n".into();
        }
        let bodies = serde_json::json!({
            "unknown": fixed(HealthState::new(Health::Unknown)).body(false, None),
            "ready": ready.body(false, None),
            "busy": ready.body(true, None),
            "unhealthy": ready.body(false, Some("healthcheck returned False".into())),
            "setup_failed": failed.body(false, None),
        });
        insta::assert_json_snapshot!(bodies);
    }
}
