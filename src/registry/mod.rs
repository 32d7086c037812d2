//! OCI distribution client: references (Docker's normalization), auth (anonymous, bearer tokens,
//! basic, Docker's `config.json` and credential helpers) and pull into the blob store, and push
//! (`Client::push`) with the same token cache and `Access::Push`; `Client::login` checks
//! credentials and `store_credential` files them as `docker login` does. Pulls follow the
//! mirrors and locations of `containers-registries.conf(5)` ([`mirrors`]).
mod auth;
mod cache;
mod client;
mod credentials;
mod error;
mod locations;
mod login;
pub mod mirrors;
mod pull;
mod push;

pub use crate::oci::reference::{Reference, ReferenceError};
pub use auth::Challenge;
pub use cache::{
    CACHE_ARTIFACT_TYPE, CACHE_CONFIG_TYPE, CACHE_FORMAT_VERSION, CacheConfig, LoadedCache,
    Rejected,
};
pub use client::{Access, Client, ClientOptions, DEFAULT_PUSH_CONCURRENCY};
pub use credentials::{
    Credential, CredentialLookup, DockerConfig, StoredIn, server_key, store_credential,
};
pub use error::RegistryError;
pub use pull::FetchedManifest;
pub use push::ManifestFormat;
