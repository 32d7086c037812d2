//! Registry errors: each names the image reference and the registry it was talking to.
use layers::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("manifest for {reference} not found: manifest unknown (registry {registry})")]
    ManifestUnknown { reference: String, registry: String },

    #[error("blob {digest} of {reference} not found: blob unknown (registry {registry})")]
    BlobUnknown {
        reference: String,
        registry: String,
        digest: Digest,
    },

    #[error("unauthorized: registry {registry} refused access to {reference} ({credentials})")]
    Unauthorized {
        reference: String,
        registry: String,
        credentials: String,
    },

    #[error("denied (403 Forbidden): registry {registry} refused access to {reference}: {message}")]
    Denied {
        reference: String,
        registry: String,
        message: String,
    },

    #[error("cannot reach registry {registry} for {reference}: {message}")]
    Connect {
        reference: String,
        registry: String,
        message: String,
    },

    #[error(
        "blob {expected} of {reference} from registry {registry}: digest mismatch, the registry sent content with digest {actual}; nothing was stored"
    )]
    DigestMismatch {
        reference: String,
        registry: String,
        expected: Digest,
        actual: Digest,
    },

    #[error(
        "blob {digest} of {reference} from registry {registry}: expected {expected} bytes, got {actual}; nothing was stored"
    )]
    SizeMismatch {
        reference: String,
        registry: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    #[error("registry {registry} answered {status} to {method} {url} for {reference}: {message}")]
    Http {
        reference: String,
        registry: String,
        method: String,
        url: String,
        status: u16,
        message: String,
    },

    #[error(
        "{reference}: no image for platform {wanted} on registry {registry}; available: {available}"
    )]
    PlatformNotFound {
        reference: String,
        registry: String,
        wanted: String,
        available: String,
    },

    #[error("{reference}: registry {registry} sent {what} that cannot be used: {message}")]
    InvalidResponse {
        reference: String,
        registry: String,
        what: &'static str,
        message: String,
    },

    #[error("cannot push {reference} to registry {registry}: {message}")]
    Unsupported {
        reference: String,
        registry: String,
        message: String,
    },

    #[error("credential helper docker-credential-{helper} failed for {server}: {message}")]
    CredentialHelper {
        helper: String,
        server: String,
        message: String,
    },

    #[error("login to registry {registry} failed: {message}")]
    Login { registry: String, message: String },

    #[error("Docker config {path}: {message}")]
    DockerConfig { path: String, message: String },

    #[error(transparent)]
    Blocked(#[from] super::mirrors::Blocked),

    #[error("registries.conf: {0}")]
    RegistriesConf(String),

    #[error("HTTP client: {0}")]
    Client(String),

    #[error(transparent)]
    Store(#[from] layers::Error),

    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
}

impl RegistryError {
    /// Worth retrying: the connection dropped mid-transfer, or the registry was briefly unwell.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            Self::Connect { message, .. } => !message.contains("refused"),
            _ => false,
        }
    }
}
