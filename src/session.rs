//! One build session per command: the blob store, one async runtime, the registry client and
//! the reporter, made once by the CLI and passed down every stage.
use std::future::Future;

use layers::BlobStore;
use report::SharedReporter;

use crate::registry::{Client, ClientOptions, RegistryError};

/// What every stage of a command shares.
pub struct Session {
    pub store: BlobStore,
    pub reporter: SharedReporter,
    /// One client, so that tokens and connections are shared by pulls and pushes.
    pub registry: Client,
    runtime: tokio::runtime::Runtime,
}

/// A session could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("opening the cog cache at {}", .root.display())]
    Store {
        root: std::path::PathBuf,
        #[source]
        source: layers::Error,
    },
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("setting up the registry client")]
    Registry(#[source] Box<RegistryError>),
}

impl Session {
    /// A session on the default store (`$COG_CACHE_DIR`, else `~/.cache/cog`).
    pub fn new(reporter: SharedReporter, registry: ClientOptions) -> Result<Self, SessionError> {
        let root = BlobStore::default_root();
        let store = BlobStore::open(&root).map_err(|source| SessionError::Store {
            root: root.clone(),
            source,
        })?;
        Self::with_store(store, reporter, registry)
    }

    pub fn with_store(
        store: BlobStore,
        reporter: SharedReporter,
        registry: ClientOptions,
    ) -> Result<Self, SessionError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(SessionError::Runtime)?;
        // reqwest's client wants a runtime context for its connection pool.
        let registry = {
            let _guard = runtime.enter();
            Client::new(registry).map_err(|e| SessionError::Registry(Box::new(e)))?
        };
        Ok(Self {
            store,
            reporter,
            registry,
            runtime,
        })
    }

    /// Runs `future` to completion on the session's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The runtime, for work that outlives one call (signal handlers).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    pub fn reporter(&self) -> &dyn report::Reporter {
        self.reporter.as_ref()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("store", &self.store.root())
            .finish_non_exhaustive()
    }
}
