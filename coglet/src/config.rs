//! `ServeConfig`: everything the server needs, and [`serve`], its entry point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default worker command: the PyO3 bridge's worker entry point.
pub const DEFAULT_WORKER_COMMAND: [&str; 3] =
    ["python", "-c", "import coglet; coglet._run_worker()"];

/// Server configuration. [`ServeConfig::from_env`] fills it the way `python -m cog.server.http`
/// expects; the launcher then sets the flags it parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Address to listen on (`--host`, default `0.0.0.0`).
    pub host: String,
    /// `PORT` (default 5000). 0 picks a free port (see [`Server::local_addr`](crate::Server::local_addr)).
    pub port: u16,
    /// `path/to/file.py:Name`. `None`: health-only mode, status `UNKNOWN`, no worker.
    pub predictor_ref: Option<String>,
    /// `--x-mode train`: the runner's `train` entry point, `TrainingInput` schema.
    pub is_train: bool,
    /// Ignore SIGTERM; stop only on `POST /shutdown` or SIGINT.
    pub await_explicit_shutdown: bool,
    /// `--upload-url`: file outputs are `PUT` here instead of inlined as data URLs.
    pub upload_url: Option<String>,
    /// Program and arguments of the worker subprocess.
    pub worker_command: Vec<String>,
    /// Extra environment for the worker.
    pub worker_env: Vec<(String, String)>,
    /// OpenAPI schema used for validation and `/openapi.json` (relative to the cwd).
    pub schema_path: PathBuf,
    /// Concurrent predictions (`COG_MAX_CONCURRENCY`; invalid or 0 -> 1).
    pub max_concurrency: u32,
    /// `COG_SETUP_TIMEOUT` (unset or 0: none).
    pub setup_timeout: Option<Duration>,
    /// `COG_WEIGHTS`, passed to `setup(weights)`.
    pub weights: Option<String>,
    /// `cog_version` in `GET /` and `version.python_sdk` fallback (the SDK's version).
    pub sdk_version: Option<String>,
    /// `COG_THROTTLE_RESPONSE_INTERVAL` for webhook `logs` events (default 0.5 s).
    pub webhook_log_interval: Duration,
    /// `COG_STREAM_HISTORY_CAPACITY`: SSE events kept for late subscribers (0 disables).
    pub stream_history_capacity: usize,
    /// `WEBHOOK_AUTH_TOKEN`: sent as `Authorization: Bearer`.
    pub webhook_auth_token: Option<String>,
    /// Where per-prediction input spills and output directories live.
    pub work_dir: PathBuf,
    /// Respawn a crashed worker (with backoff) instead of staying broken.
    pub restart_worker: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 5000,
            predictor_ref: None,
            is_train: false,
            await_explicit_shutdown: false,
            upload_url: None,
            worker_command: DEFAULT_WORKER_COMMAND
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            worker_env: Vec::new(),
            schema_path: PathBuf::from(".cog/openapi_schema.json"),
            max_concurrency: 1,
            setup_timeout: None,
            weights: None,
            sdk_version: None,
            webhook_log_interval: Duration::from_millis(500),
            stream_history_capacity: 1024,
            webhook_auth_token: None,
            work_dir: PathBuf::from("/tmp/coglet"),
            restart_worker: true,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Parses `COG_MAX_CONCURRENCY` the way Cog does: invalid or 0 means 1.
pub fn parse_concurrency(value: Option<&str>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Parses a seconds value (`COG_SETUP_TIMEOUT`): unset, invalid or 0 means none.
pub fn parse_seconds(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
}

impl ServeConfig {
    /// Reads `PORT`, `COG_PREDICT_TYPE_STUB`/`COG_TRAIN_TYPE_STUB` (by `is_train`),
    /// `COG_MAX_CONCURRENCY`, `COG_SETUP_TIMEOUT`, `COG_WEIGHTS`, `WEBHOOK_AUTH_TOKEN`,
    /// `COG_THROTTLE_RESPONSE_INTERVAL`, `COG_STREAM_HISTORY_CAPACITY`, and
    /// `COGLET_WORKER_COMMAND` (a JSON array of strings; overrides the worker command).
    pub fn from_env(is_train: bool) -> Self {
        let mut c = Self {
            is_train,
            ..Self::default()
        };
        if let Some(port) = env("PORT").and_then(|p| p.parse().ok()) {
            c.port = port;
        }
        c.predictor_ref = env(if is_train {
            "COG_TRAIN_TYPE_STUB"
        } else {
            "COG_PREDICT_TYPE_STUB"
        });
        c.max_concurrency = parse_concurrency(env("COG_MAX_CONCURRENCY").as_deref());
        c.setup_timeout = parse_seconds(env("COG_SETUP_TIMEOUT").as_deref());
        c.weights = env("COG_WEIGHTS");
        c.webhook_auth_token = env("WEBHOOK_AUTH_TOKEN");
        if let Some(interval) = env("COG_THROTTLE_RESPONSE_INTERVAL")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            c.webhook_log_interval = Duration::from_secs_f64(interval);
        }
        if let Some(cap) = env("COG_STREAM_HISTORY_CAPACITY").and_then(|v| v.parse().ok()) {
            c.stream_history_capacity = cap;
        }
        if let Some(cmd) = env("COGLET_WORKER_COMMAND")
            .and_then(|v| serde_json::from_str::<Vec<String>>(&v).ok())
            .filter(|v| !v.is_empty())
        {
            c.worker_command = cmd;
        }
        c
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("invalid OpenAPI schema {path}: {reason}")]
    Schema { path: PathBuf, reason: String },
}

/// Runs the server until shutdown (SIGTERM/SIGINT/`POST /shutdown`); call on a tokio runtime.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    crate::server::Server::bind(config).await?.run().await
}

/// [`serve`] on a fresh multi-threaded runtime, blocking the calling thread.
pub fn serve_blocking(config: ServeConfig) -> Result<(), ServeError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?
        .block_on(serve(config))
}

/// The address a server is listening on.
pub type LocalAddr = SocketAddr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_and_timeouts_parse_like_cog() {
        assert_eq!(parse_concurrency(None), 1);
        assert_eq!(parse_concurrency(Some("0")), 1);
        assert_eq!(parse_concurrency(Some("x")), 1);
        assert_eq!(parse_concurrency(Some("4")), 4);
        assert_eq!(parse_seconds(Some("0")), None);
        assert_eq!(
            parse_seconds(Some("1.5")),
            Some(Duration::from_millis(1500))
        );
    }
}
