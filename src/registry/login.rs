//! `cog login`: check a username and password (or token) against a registry before storing
//! them, the way `docker login` does: ping `/v2/`, answer its challenge (basic, or a bearer token
//! from its realm with no scope), and expect the registry to let us in.
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use super::auth::{Challenge, TokenReply, token_request};
use super::client::{Client, describe};
use super::credentials::Credential;
use super::error::RegistryError;
use crate::oci::reference::{DOCKER_HUB, DOCKER_HUB_API};

impl Client {
    /// Checks `credential` against `registry` (`localhost:5000`, `docker.io`, `ghcr.io`).
    pub async fn login(
        &self,
        registry: &str,
        credential: &Credential,
    ) -> Result<(), RegistryError> {
        let failed = |message: String| RegistryError::Login {
            registry: registry.to_string(),
            message,
        };
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            registry
        };
        let url = self.base_url_for_host(host);
        let send = |request: reqwest::RequestBuilder| {
            let url = &url;
            async move {
                request.send().await.map_err(|e| RegistryError::Login {
                    registry: registry.to_string(),
                    message: format!("cannot reach {url}: {}", describe(&e)),
                })
            }
        };
        let ping = send(self.http.get(&url)).await?;
        if ping.status().is_success() {
            // The registry asks for nothing: docker logs in all the same.
            return Ok(());
        }
        if ping.status() != StatusCode::UNAUTHORIZED {
            return Err(failed(format!(
                "GET {url} answered {}",
                status_text(ping.status())
            )));
        }
        let challenge = ping
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
            .ok_or_else(|| {
                failed(format!(
                    "GET {url} answered 401 without a WWW-Authenticate challenge we understand"
                ))
            })?;
        let who = if credential.is_identity_token() {
            "the identity token".to_string()
        } else {
            format!("the credentials of user {:?}", credential.username)
        };
        let authorization = match challenge {
            Challenge::Basic => credential.basic_header(),
            Challenge::Bearer { realm, service, .. } => {
                let reply = send(token_request(
                    &self.http,
                    &realm,
                    service.as_deref(),
                    &[],
                    Some(credential),
                ))
                .await?;
                let status = reply.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(failed(format!(
                        "{}: token server {realm} refused {who}",
                        status_text(status)
                    )));
                }
                if !status.is_success() {
                    let body = reply.text().await.unwrap_or_default();
                    return Err(failed(format!(
                        "token server {realm} answered {}: {}",
                        status_text(status),
                        body.trim()
                    )));
                }
                let token = reply
                    .json::<TokenReply>()
                    .await
                    .ok()
                    .and_then(TokenReply::into_token)
                    .ok_or_else(|| failed(format!("token server {realm} sent no usable token")))?;
                format!("Bearer {}", token.value)
            }
        };
        let check = send(self.http.get(&url).header(AUTHORIZATION, authorization)).await?;
        let status = check.status();
        if status.is_success() {
            Ok(())
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            Err(failed(format!("{}: it refused {who}", status_text(status))))
        } else {
            Err(failed(format!(
                "GET {url} answered {}",
                status_text(status)
            )))
        }
    }
}

/// `401 Unauthorized`
fn status_text(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim()
    .to_string()
}
