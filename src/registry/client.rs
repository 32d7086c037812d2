//! The HTTP side of the distribution API: one `Client` per process, shared by every transfer.
//! It learns each registry's auth scheme from `GET /v2/`, caches bearer tokens per scope, and
//! retries transient failures with backoff.
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use super::auth::{CachedToken, Challenge, TokenReply, token_request};
use super::credentials::{CredentialLookup, DockerConfig};
use super::error::RegistryError;
use super::mirrors::RegistriesConf;
use crate::oci::reference::{Reference, is_loopback_host};

/// Settings of a [`Client`]; `Default` is what `cog` uses.
/// Blobs uploaded at once unless told otherwise ([`ClientOptions::push_concurrency`]).
pub const DEFAULT_PUSH_CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Plain HTTP for every registry (loopback registries always get it).
    pub insecure: bool,
    /// Blobs transferred at once (pulls).
    pub concurrency: usize,
    /// Blobs uploaded at once (pushes).
    pub push_concurrency: usize,
    /// Tries per request (and per blob transfer) before giving up on transient failures.
    pub max_attempts: u32,
    /// First retry delay; doubles on each try.
    pub backoff: Duration,
    /// The Docker config to read credentials from; `None`: `$DOCKER_CONFIG` or `~/.docker`.
    pub docker_config: Option<PathBuf>,
    /// Mirrors and locations for pulls; `None`: the `registries.conf` files podman reads
    /// ([`RegistriesConf::load`], read at the first pull).
    pub registries_conf: Option<Arc<RegistriesConf>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            insecure: false,
            concurrency: 4,
            push_concurrency: DEFAULT_PUSH_CONCURRENCY,
            max_attempts: 4,
            backoff: Duration::from_millis(250),
            docker_config: None,
            registries_conf: None,
        }
    }
}

/// What the client is allowed to do in a repository (the token scope's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "pull,push",
        }
    }
}

/// What we know about a registry's auth.
#[derive(Debug, Clone)]
enum RegistryAuth {
    Anonymous,
    Basic(CredentialLookup),
    Bearer {
        realm: String,
        service: Option<String>,
        lookup: CredentialLookup,
    },
}

/// An OCI distribution client. Cheap to clone; clones share tokens and connections.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) options: Arc<ClientOptions>,
    registries: Arc<Mutex<HashMap<String, RegistryAuth>>>,
    tokens: Arc<Mutex<HashMap<(String, String), CachedToken>>>,
    /// Hosts `registries.conf` marks `insecure` (plain HTTP), learnt as pulls choose them.
    insecure_hosts: Arc<Mutex<HashSet<String>>>,
    registries_conf: Arc<OnceLock<Result<Arc<RegistriesConf>, String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The reference and registry a request is for, carried into every error.
pub(crate) struct Target<'a> {
    pub reference: &'a Reference,
    pub access: Access,
    /// A repository of the same registry that blobs are mounted from: the token must also
    /// allow pulling from it.
    pub mount_from: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// Reading from `reference`'s repository.
    pub(crate) fn pull(reference: &'a Reference) -> Self {
        Self {
            reference,
            access: Access::Pull,
            mount_from: None,
        }
    }

    pub(crate) fn reference(&self) -> String {
        self.reference.to_string()
    }

    pub(crate) fn registry(&self) -> String {
        self.reference.registry().to_string()
    }

    /// The token scopes this target needs: its repository, and the one it mounts from.
    fn scopes(&self) -> Vec<String> {
        let mut scopes = vec![format!(
            "repository:{}:{}",
            self.reference.repository(),
            self.access.actions()
        )];
        if let Some(from) = self.mount_from {
            scopes.push(format!("repository:{from}:pull"));
        }
        scopes
    }

    /// The token cache key: the scopes, space-separated (as OAuth2 joins them).
    fn scope(&self) -> String {
        self.scopes().join(" ")
    }

    pub(crate) fn connect_error(&self, err: &reqwest::Error) -> RegistryError {
        RegistryError::Connect {
            reference: self.reference(),
            registry: self.registry(),
            message: describe(err),
        }
    }
}

/// reqwest's message plus its causes: "error sending request: … Connection refused (os error 111)".
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// `COG_REGISTRY_TIMEOUT`: seconds a registry may stay silent (no byte of an answer) before the
/// request is given up and retried.
pub const TIMEOUT_VAR: &str = "COG_REGISTRY_TIMEOUT";
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(120);

fn read_timeout() -> Result<Duration, RegistryError> {
    match std::env::var(TIMEOUT_VAR) {
        Err(_) => Ok(DEFAULT_READ_TIMEOUT),
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|secs| secs.is_finite() && *secs > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                RegistryError::Client(format!(
                    "{TIMEOUT_VAR} must be a number of seconds greater than 0, not {text:?}"
                ))
            }),
    }
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cog-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(read_timeout()?)
            // reqwest drops Authorization when a redirect leaves the host (blob storage).
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| RegistryError::Client(describe(&e)))?;
        Ok(Self {
            http,
            options: Arc::new(options),
            registries: Arc::default(),
            tokens: Arc::default(),
            insecure_hosts: Arc::default(),
            registries_conf: Arc::default(),
        })
    }

    /// `http(s)://host/v2/`: plain HTTP for loopback registries (as Docker does) or when insecure.
    pub fn base_url(&self, reference: &Reference) -> String {
        self.base_url_for_host(reference.api_host())
    }

    /// [`Client::base_url`] for an API host (`registry-1.docker.io`, `localhost:5000`).
    pub(crate) fn base_url_for_host(&self, host: &str) -> String {
        let insecure = self
            .insecure_hosts
            .lock()
            .is_ok_and(|hosts| hosts.contains(host));
        let scheme = if self.options.insecure || insecure || is_loopback_host(host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/")
    }

    /// The mirrors and locations pulls follow.
    pub fn registries_conf(&self) -> Result<Arc<RegistriesConf>, RegistryError> {
        if let Some(conf) = &self.options.registries_conf {
            return Ok(conf.clone());
        }
        self.registries_conf
            .get_or_init(|| {
                RegistriesConf::load()
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(RegistryError::RegistriesConf)
    }

    /// Speaks plain HTTP to `registry` from now on (`insecure = true` in `registries.conf`).
    pub(crate) fn mark_insecure(&self, registry: &str) {
        if let Ok(mut hosts) = self.insecure_hosts.lock() {
            hosts.insert(registry.to_owned());
        }
    }

    pub(crate) fn docker_config(&self) -> Result<DockerConfig, RegistryError> {
        match &self.options.docker_config {
            Some(path) => DockerConfig::load(path),
            None => DockerConfig::load_default(),
        }
    }

    /// Sends a request with auth and retries. 2xx and 404 come back to the caller; 401 becomes
    /// `Unauthorized`, other failures `Http` or `Connect`.
    pub(crate) async fn send(
        &self,
        target: &Target<'_>,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response, RegistryError> {
        self.send_with(target, method, url, &|request| match accept {
            Some(accept) => request.header(ACCEPT, accept),
            None => request,
        })
        .await
    }

    /// [`Client::send`] with `customize` applied to each try's request (headers, a body that can
    /// be rebuilt: what push needs).
    pub(crate) async fn send_with(
        &self,
        target: &Target<'_>,
        method: Method,
        url: &str,
        customize: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        let mut attempt = 1;
        let mut refreshed = false;
        loop {
            let result = self.send_once(target, method.clone(), url, customize).await;
            let response = match result {
                Ok(response) => response,
                Err(err) if err.is_transient() && attempt < self.options.max_attempts => {
                    self.backoff(attempt, None).await;
                    attempt += 1;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let status = response.status();
            if status.is_success() || status == StatusCode::NOT_FOUND {
                return Ok(response);
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // An expired token or a scope the registry wants differently: learn and retry once.
                refreshed = true;
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.remove(&(target.registry(), target.scope()));
                }
                if let Some(challenge) = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse)
                {
                    self.learn(target, challenge).await?;
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(self.unauthorized(target).await);
            }
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let err = http_error(target, &method, url, response).await;
            if err.is_transient() && attempt < self.options.max_attempts {
                self.backoff(attempt, retry_after).await;
                attempt += 1;
                continue;
            }
            return Err(err);
        }
    }

    pub(crate) async fn backoff(&self, attempt: u32, retry_after: Option<u64>) {
        let exponential = self.options.backoff * 2u32.saturating_pow(attempt - 1);
        let delay = retry_after.map_or(exponential, |s| Duration::from_secs(s.min(30)));
        tracing::debug!(?delay, attempt, "registry: retrying");
        tokio::time::sleep(delay).await;
    }

    async fn send_once(
        &self,
        target: &Target<'_>,
        method: Method,
        url: &str,
        customize: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        let authorization = self.authorization(target).await?;
        let mut request = customize(self.http.request(method, url));
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        request.send().await.map_err(|e| target.connect_error(&e))
    }

    /// The Authorization header for `target`, pinging the registry first if it is new to us.
    async fn authorization(
        &self,
        target: &Target<'_>,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let known = self
            .registries
            .lock()
            .ok()
            .and_then(|r| r.get(&target.registry()).cloned());
        let auth = match known {
            Some(auth) => auth,
            None => self.ping(target).await?,
        };
        let value = match auth {
            RegistryAuth::Anonymous => return Ok(None),
            RegistryAuth::Basic(lookup) => match lookup.credential {
                Some(c) => c.basic_header(),
                None => return Ok(None),
            },
            RegistryAuth::Bearer {
                realm,
                service,
                lookup,
            } => {
                let key = (target.registry(), target.scope());
                let cached = self
                    .tokens
                    .lock()
                    .ok()
                    .and_then(|t| t.get(&key).filter(|t| t.is_fresh()).cloned());
                let token = match cached {
                    Some(token) => token,
                    None => {
                        self.fetch_token(target, &realm, service.as_deref(), &lookup)
                            .await?
                    }
                };
                format!("Bearer {}", token.value)
            }
        };
        HeaderValue::from_str(&value)
            .map(Some)
            .map_err(|_| RegistryError::InvalidResponse {
                reference: target.reference(),
                registry: target.registry(),
                what: "a token",
                message: "not a valid HTTP header value".to_string(),
            })
    }

    /// `GET /v2/`: 200 means anonymous access; 401 carries the challenge.
    async fn ping(&self, target: &Target<'_>) -> Result<RegistryAuth, RegistryError> {
        let url = self.base_url(target.reference);
        let mut attempt = 1;
        let response = loop {
            match self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| target.connect_error(&e))
            {
                Ok(response) => break response,
                Err(err) if err.is_transient() && attempt < self.options.max_attempts => {
                    self.backoff(attempt, None).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        };
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        match challenge {
            Some(challenge) if response.status() == StatusCode::UNAUTHORIZED => {
                self.learn(target, challenge).await
            }
            _ => {
                let auth = RegistryAuth::Anonymous;
                self.remember(target, &auth);
                Ok(auth)
            }
        }
    }

    /// Records how a registry authenticates (looking its credentials up once).
    async fn learn(
        &self,
        target: &Target<'_>,
        challenge: Challenge,
    ) -> Result<RegistryAuth, RegistryError> {
        let lookup = match self
            .docker_config()?
            .lookup(target.reference.registry())
            .await
        {
            Ok(lookup) => lookup,
            // A broken helper (a stale `credsStore`) must not stop anonymous pulls of public
            // images; if the registry insists, its refusal names the helper's failure.
            Err(err @ RegistryError::CredentialHelper { .. }) => {
                tracing::warn!("{err}; trying without credentials");
                CredentialLookup {
                    credential: None,
                    source: err.to_string(),
                }
            }
            Err(err) => return Err(err),
        };
        let auth = match challenge {
            Challenge::Basic => RegistryAuth::Basic(lookup),
            Challenge::Bearer { realm, service, .. } => RegistryAuth::Bearer {
                realm,
                service,
                lookup,
            },
        };
        self.remember(target, &auth);
        Ok(auth)
    }

    fn remember(&self, target: &Target<'_>, auth: &RegistryAuth) {
        if let Ok(mut registries) = self.registries.lock() {
            registries.insert(target.registry(), auth.clone());
        }
    }

    async fn fetch_token(
        &self,
        target: &Target<'_>,
        realm: &str,
        service: Option<&str>,
        lookup: &CredentialLookup,
    ) -> Result<CachedToken, RegistryError> {
        let scope = target.scope();
        let request = token_request(
            &self.http,
            realm,
            service,
            &target.scopes(),
            lookup.credential.as_ref(),
        );
        let response = request.send().await.map_err(|e| target.connect_error(&e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                reference: target.reference(),
                registry: target.registry(),
                credentials: format!(
                    "token server {realm} refused {}; {}",
                    credential_summary(lookup),
                    lookup.source
                ),
            });
        }
        if !status.is_success() {
            return Err(http_error(target, &Method::GET, realm, response).await);
        }
        let reply: TokenReply =
            response
                .json()
                .await
                .map_err(|e| RegistryError::InvalidResponse {
                    reference: target.reference(),
                    registry: target.registry(),
                    what: "a token reply",
                    message: describe(&e),
                })?;
        let token = reply
            .into_token()
            .ok_or_else(|| RegistryError::InvalidResponse {
                reference: target.reference(),
                registry: target.registry(),
                what: "a token reply",
                message: "neither \"token\" nor \"access_token\" is set".to_string(),
            })?;
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert((target.registry(), scope), token.clone());
        }
        Ok(token)
    }

    async fn unauthorized(&self, target: &Target<'_>) -> RegistryError {
        let known = self
            .registries
            .lock()
            .ok()
            .and_then(|r| r.get(&target.registry()).cloned());
        let credentials = match known {
            Some(RegistryAuth::Basic(lookup) | RegistryAuth::Bearer { lookup, .. }) => {
                format!("{}; {}", credential_summary(&lookup), lookup.source)
            }
            _ => match self.docker_config() {
                Ok(config) => match config.lookup(target.reference.registry()).await {
                    Ok(lookup) => format!("{}; {}", credential_summary(&lookup), lookup.source),
                    Err(err) => err.to_string(),
                },
                Err(err) => err.to_string(),
            },
        };
        RegistryError::Unauthorized {
            reference: target.reference(),
            registry: target.registry(),
            credentials,
        }
    }
}

fn credential_summary(lookup: &CredentialLookup) -> String {
    match &lookup.credential {
        Some(c) if c.is_identity_token() => "sent an identity token".to_string(),
        Some(c) => format!("sent the credentials of user {:?}", c.username),
        None => "sent no credentials".to_string(),
    }
}

/// A failed response as an error, with the registry's own error codes when it sent them.
pub(crate) async fn http_error(
    target: &Target<'_>,
    method: &Method,
    url: &str,
    response: Response,
) -> RegistryError {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: serde_json::Value,
    }
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    let message = match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) if !errors.errors.is_empty() => errors
            .errors
            .iter()
            .map(|e| match &e.detail {
                serde_json::Value::Null => format!("{}: {}", e.code, e.message),
                serde_json::Value::String(detail) if detail.is_empty() => {
                    format!("{}: {}", e.code, e.message)
                }
                serde_json::Value::String(detail) => {
                    format!("{}: {} ({detail})", e.code, e.message)
                }
                detail => format!("{}: {} ({detail})", e.code, e.message),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body[..body.len().min(512)])
            .trim()
            .to_string(),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        message
    };
    if status == StatusCode::FORBIDDEN {
        return RegistryError::Denied {
            reference: target.reference(),
            registry: target.registry(),
            message,
        };
    }
    RegistryError::Http {
        reference: target.reference(),
        registry: target.registry(),
        method: method.to_string(),
        url: url.to_string(),
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_unless_insecure() {
        let client = Client::new(ClientOptions::default()).unwrap();
        let url = |c: &Client, r: &str| c.base_url(&Reference::parse(r).unwrap());
        assert_eq!(
            url(&client, "registry.example.com/a/b"),
            "https://registry.example.com/v2/"
        );
        assert_eq!(url(&client, "python"), "https://registry-1.docker.io/v2/");
        assert_eq!(
            url(&client, "localhost:5000/a"),
            "http://localhost:5000/v2/"
        );
        assert_eq!(url(&client, "127.0.0.1:9/a"), "http://127.0.0.1:9/v2/");
        let insecure = Client::new(ClientOptions {
            insecure: true,
            ..ClientOptions::default()
        })
        .unwrap();
        assert_eq!(
            url(&insecure, "registry.example.com/a/b"),
            "http://registry.example.com/v2/"
        );
    }
}
