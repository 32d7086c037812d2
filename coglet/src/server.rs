//! The HTTP server: [`serve`], its entry point; binds, wires the service to the routes, and
//! shuts down gracefully.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServeConfig;
use crate::schema::ModelSchema;
use crate::service::Service;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("invalid OpenAPI schema {path}: {reason}")]
    Schema { path: PathBuf, reason: String },
}

/// Runs the server until shutdown (SIGTERM/SIGINT/`POST /shutdown`); call on a tokio runtime.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    Server::bind(config).await?.run().await
}

/// [`serve`] on a fresh multi-threaded runtime, blocking the calling thread.
pub fn serve_blocking(config: ServeConfig) -> Result<(), ServeError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?
        .block_on(serve(config))
}

pub struct Server {
    listener: TcpListener,
    service: Arc<Service>,
}

impl Server {
    /// Loads the schema and binds the listening socket (port 0 picks a free one).
    pub async fn bind(config: ServeConfig) -> Result<Self, ServeError> {
        let schema =
            ModelSchema::load(&config.schema_path).map_err(|reason| ServeError::Schema {
                path: config.schema_path.clone(),
                reason,
            })?;
        if schema.is_none() && config.predictor_ref.is_some() {
            tracing::warn!(path = %config.schema_path.display(), "no OpenAPI schema: inputs are not validated");
        }
        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Self {
            listener,
            service: Service::new(Arc::new(config), schema),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that triggers the same graceful shutdown as `POST /shutdown`.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.service.shutdown.clone())
    }

    /// Serves until SIGINT, SIGTERM (unless `await_explicit_shutdown`) or `POST /shutdown`;
    /// then stops accepting, waits for running predictions, and stops the worker.
    pub async fn run(self) -> Result<(), ServeError> {
        let service = self.service;
        let (stop_worker, worker_stop_rx) = watch::channel(false);
        let supervisor = service
            .supervisor
            .clone()
            .map(|sup| tokio::spawn(sup.run(worker_stop_rx)));
        let app = crate::routes::routes(Arc::clone(&service));
        let signal = shutdown_signal(
            service.shutdown.subscribe(),
            service.config.await_explicit_shutdown,
        );
        let limits = service.config.connections;
        let max_connections = limits.effective_max(service.config.max_concurrency);
        tracing::debug!(?limits, max_connections, "connection limits");
        crate::connections::serve(self.listener, app, limits, max_connections, signal).await;
        tracing::info!("HTTP server stopped; waiting for running predictions");
        service.drain().await;
        stop_worker.send_replace(true);
        if let Some(task) = supervisor {
            let _ = task.await;
        }
        Ok(())
    }
}

/// Triggers a graceful shutdown from outside (the PyO3 bridge, tests).
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

async fn shutdown_signal(mut requested: watch::Receiver<bool>, await_explicit: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    loop {
        tokio::select! {
            _ = requested.wait_for(|s| *s) => return,
            Some(()) = async { match &mut int { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                tracing::info!("SIGINT: shutting down");
                return;
            }
            Some(()) = async { match &mut term { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                if await_explicit {
                    tracing::info!("SIGTERM ignored (--await-explicit-shutdown): waiting for POST /shutdown");
                } else {
                    tracing::info!("SIGTERM: shutting down");
                    return;
                }
            }
        }
    }
}
