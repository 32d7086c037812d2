//! Registry authentication: `WWW-Authenticate` challenges, and bearer tokens from the realm the
//! registry names (anonymously, with basic credentials, or with an identity token).
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::credentials::Credential;

/// How a registry wants to be spoken to, learned from its `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        let params = parse_params(rest);
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Self::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            Some(Self::Basic)
        } else {
            None
        }
    }
}

/// `key="quoted, with \" escapes",key2=token` -> map (keys lowercased).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_lowercase();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.insert(key, value);
    }
    params
}

/// A token endpoint's answer: Docker's `token` or OAuth2's `access_token`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenReply {
    pub(crate) fn into_token(self) -> Option<CachedToken> {
        let value = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(self.expires_in.unwrap_or(60).max(60));
        Some(CachedToken {
            value,
            expires: Instant::now() + lifetime.saturating_sub(Duration::from_secs(10)),
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub value: String,
    pub expires: Instant,
}

impl CachedToken {
    pub(crate) fn is_fresh(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// Builds the token request for `scopes` (none: a login check) at the challenge's realm.
pub(crate) fn token_request(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credential: Option<&Credential>,
) -> reqwest::RequestBuilder {
    match credential {
        // An identity token (from `docker login` with OAuth) is exchanged with a POST.
        Some(c) if c.is_identity_token() => {
            let joined = scopes.join(" ");
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", c.secret.as_str()),
                ("client_id", "cog"),
            ];
            if !joined.is_empty() {
                form.push(("scope", joined.as_str()));
            }
            if let Some(service) = service {
                form.push(("service", service));
            }
            http.post(realm).form(&form)
        }
        credential => {
            let mut query: Vec<(&str, &str)> =
                scopes.iter().map(|s| ("scope", s.as_str())).collect();
            if let Some(service) = service {
                query.push(("service", service));
            }
            if let Some(c) = credential {
                query.push(("account", c.username.as_str()));
            }
            let request = http.get(realm).query(&query);
            match credential {
                Some(c) => request.header(reqwest::header::AUTHORIZATION, c.basic_header()),
                None => request,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull""#;
        assert_eq!(
            Challenge::parse(hub),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/python:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(
                r#"bearer Realm="http://x/t", scope="a:b:pull,push", error="insufficient_scope""#
            ),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: None,
                scope: Some("a:b:pull,push".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(r#"Bearer service="x""#),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(
            parse_params(r#"a="x\"y", b=plain , c="""#)
                .into_iter()
                .collect::<Vec<_>>(),
            vec![
                ("a".to_string(), "x\"y".to_string()),
                ("b".to_string(), "plain".to_string()),
                ("c".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn token_replies() {
        let t: TokenReply =
            serde_json::from_str(r#"{"token":"a","access_token":"b","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token().unwrap().value, "a");
        let t: TokenReply = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        let token = t.into_token().unwrap();
        assert_eq!(token.value, "b");
        assert!(token.is_fresh());
        let t: TokenReply = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(t.into_token().is_none());
    }
}
