//! `ServeConfig`: everything the server needs, read from the environment Cog sets.

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
    /// How long connections may take and stay (see `docs/server.md`, "Connections").
    pub connections: ConnectionLimits,
}

/// Timeouts and the connection cap that keep slow or idle clients from crowding out others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `COGLET_HEADER_READ_TIMEOUT`: a new connection must deliver its first request's headers,
    /// and a kept-alive one the rest of a request's headers once it sent their first byte,
    /// within this; else it is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// `COGLET_IDLE_TIMEOUT`: a kept-alive connection with no request for this long is closed.
    /// Default 120 s (longer than common load balancers' 60 s, so they close first).
    pub idle_timeout: Duration,
    /// `COGLET_MAX_CONNECTIONS`: open connections at most. `None`: what the open-files limit
    /// allows (see [`ConnectionLimits::effective_max`]). When it is reached, the connection that
    /// has been idle longest is closed to make room, so health checks still get in.
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: None,
        }
    }
}

/// File descriptors kept free for everything but client connections (the worker's pipes and
/// slot sockets, output files, webhook and upload connections), plus this many per slot.
const RESERVED_FDS: usize = 64;
const RESERVED_FDS_PER_SLOT: usize = 4;
/// The cap when the open-files limit is unlimited or unknown.
const MAX_CONNECTIONS_CEILING: usize = 16_384;

impl ConnectionLimits {
    /// The cap in force: `max_connections`, but never more than the open-files limit (`ulimit
    /// -n`) leaves after the reserve, and at least 16.
    pub fn effective_max(&self, slots: u32) -> usize {
        let reserve = RESERVED_FDS + RESERVED_FDS_PER_SLOT * slots as usize;
        let by_fds = open_files_limit()
            .map_or(MAX_CONNECTIONS_CEILING, |n| n.saturating_sub(reserve))
            .min(MAX_CONNECTIONS_CEILING);
        self.max_connections.unwrap_or(by_fds).min(by_fds).max(16)
    }
}

/// The soft `RLIMIT_NOFILE`, or `None` when unlimited.
fn open_files_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as usize)
}

/// An environment variable whose value we cannot use.
#[derive(Debug, thiserror::Error)]
#[error("{name}={value:?} is not {expected}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
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
            connections: ConnectionLimits::default(),
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
    /// `COGLET_WORKER_COMMAND` (a JSON array of strings; overrides the worker command), and
    /// the connection limits `COGLET_HEADER_READ_TIMEOUT`, `COGLET_IDLE_TIMEOUT` (seconds) and
    /// `COGLET_MAX_CONNECTIONS`.
    ///
    /// Cog's variables are read as Cog reads them (an invalid value means the default); an
    /// invalid `COGLET_*` connection limit is an error naming the variable.
    pub fn from_env(is_train: bool) -> Result<Self, ConfigError> {
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
        if let Some(t) = seconds_var("COGLET_HEADER_READ_TIMEOUT")? {
            c.connections.header_read_timeout = t;
        }
        if let Some(t) = seconds_var("COGLET_IDLE_TIMEOUT")? {
            c.connections.idle_timeout = t;
        }
        if let Some(v) = env("COGLET_MAX_CONNECTIONS") {
            let n = v.trim().parse::<usize>().ok().filter(|n| *n > 0);
            c.connections.max_connections = Some(n.ok_or(ConfigError {
                name: "COGLET_MAX_CONNECTIONS",
                value: v,
                expected: "a whole number above 0",
            })?);
        }
        Ok(c)
    }
}

/// A positive number of seconds from `name`, if set.
fn seconds_var(name: &'static str) -> Result<Option<Duration>, ConfigError> {
    let Some(v) = env(name) else {
        return Ok(None);
    };
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(|s| Some(Duration::from_secs_f64(s)))
        .ok_or(ConfigError {
            name,
            value: v,
            expected: "a number of seconds above 0",
        })
}

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
