//! Image references, parsed and normalized exactly as Docker does (`distribution/reference`):
//! `python:3.11-slim` is `docker.io/library/python:3.11-slim`, a bare name gets the tag `latest`,
//! and invalid input gets Docker's own error strings.
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// Docker's reference grammar, built from the same pieces as `distribution/reference/regexp.go`.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let alnum = "[a-z0-9]+";
    let separator = "(?:[._]|__|[-]+)";
    let path_component = format!("{alnum}(?:{separator}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let domain_name = format!("{domain_component}(?:\\.{domain_component})*");
    let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
    let domain = format!("(?:{domain_name}|{ipv6})(?::[0-9]+)?");
    let name = format!("(?:{domain}/)?{path_component}(?:/{path_component})*");
    let tag = r"[\w][\w.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
    #[allow(clippy::expect_used)] // a constant pattern: covered by every test below
    Regex::new(&format!("^({name})(?::({tag}))?(?:@({digest}))?$")).expect("valid reference regex")
});

#[allow(clippy::expect_used)]
static HEX64: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-f0-9]{64}$").expect("valid regex"));

/// Why a string is not an image reference; the messages are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NotLowercase(String),
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid checksum digest format")]
    DigestFormat,
    #[error("invalid checksum digest length")]
    DigestLength,
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

/// A normalized image reference: registry, repository, and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses as `docker pull` does; a reference with neither tag nor digest gets `latest`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if HEX64.is_match(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (registry, remainder) = split_registry(s);
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(name, _)| name);
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::NotLowercase(remote.to_string()));
        }
        let full = format!("{registry}/{remainder}");
        let Some(caps) = REFERENCE.captures(&full) else {
            return Err(if REFERENCE.is_match(&full.to_lowercase()) {
                ReferenceError::NameContainsUppercase
            } else {
                ReferenceError::InvalidFormat
            });
        };
        let name = caps.get(1).map_or("", |m| m.as_str());
        if name.len() > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong);
        }
        let repository = name[registry.len() + 1..].to_string();
        let digest = caps.get(3).map(|m| m.as_str().to_string());
        if let Some(d) = &digest {
            validate_digest(d)?;
        }
        let tag = caps.get(2).map(|m| m.as_str().to_string());
        let tag = if tag.is_none() && digest.is_none() {
            Some(DEFAULT_TAG.to_string())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `docker.io`, `localhost:5000`, `ghcr.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `library/python`, `a/b`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask the registry's manifest endpoint for: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The host (and port) that serves the registry API: Docker Hub answers elsewhere.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The same repository pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The short form Docker shows: `python:3.11` for `docker.io/library/python:3.11`,
    /// `user/x:tag` for `docker.io/user/x:tag`; other registries stay in full.
    pub fn familiar(&self) -> String {
        let full = self.to_string();
        match full.strip_prefix("docker.io/") {
            Some(rest) => rest
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(rest)
                .to_string(),
            None => full,
        }
    }

    /// `localhost`, `127.0.0.0/8` and `[::1]` registries are spoken to over plain HTTP, as Docker does.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

/// True for `localhost[:port]`, `127.x.y.z[:port]` and `[::1][:port]`.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Docker's `splitDockerDomain`: the first component is a registry only when it looks like a host.
fn split_registry(name: &str) -> (String, String) {
    let (mut registry, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if registry == LEGACY_DOCKER_HUB {
        registry = DOCKER_HUB.to_string();
    }
    if registry == DOCKER_HUB && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (registry, remainder)
}

/// go-digest's `Digest.Validate`.
fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, encoded)) = d.split_once(':') else {
        return Err(ReferenceError::DigestFormat);
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if encoded.len() != hex_len {
        return Err(ReferenceError::DigestLength);
    }
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            (
                "python:3.11-slim",
                "docker.io",
                "library/python",
                Some("3.11-slim"),
                None,
            ),
            (
                "python",
                "docker.io",
                "library/python",
                Some("latest"),
                None,
            ),
            (
                "ubuntu/nginx",
                "docker.io",
                "ubuntu/nginx",
                Some("latest"),
                None,
            ),
            (
                "docker.io/python",
                "docker.io",
                "library/python",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/library/python:3",
                "docker.io",
                "library/python",
                Some("3"),
                None,
            ),
            ("localhost/a", "localhost", "a", Some("latest"), None),
            (
                "localhost:5000/a/b:t",
                "localhost:5000",
                "a/b",
                Some("t"),
                None,
            ),
            (
                "127.0.0.1:5000/a/b-c__d.e",
                "127.0.0.1:5000",
                "a/b-c__d.e",
                Some("latest"),
                None,
            ),
            ("[::1]:5000/x", "[::1]:5000", "x", Some("latest"), None),
            (
                "ghcr.io/org/img:v1.2",
                "ghcr.io",
                "org/img",
                Some("v1.2"),
                None,
            ),
            (
                "r8.im/user/model",
                "r8.im",
                "user/model",
                Some("latest"),
                None,
            ),
            ("Registry/x", "Registry", "x", Some("latest"), None),
        ];
        for (input, registry, repo, tag, digest) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (r.registry(), r.repository(), r.tag(), r.digest()),
                (registry, repo, tag, digest),
                "{input}"
            );
        }
    }

    #[test]
    fn digests_and_tags_together() {
        let r = Reference::parse(&format!("localhost:5000/a/b@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(D)));
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("localhost:5000/a/b@{D}"));
        let r = Reference::parse(&format!("host.example/x:tag@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("tag"), Some(D)));
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("host.example/x:tag@{D}"));
    }

    #[test]
    fn invalid_references_get_dockers_messages() {
        let long = "a".repeat(256);
        let cases = [
            ("", "invalid reference format"),
            (
                "Python",
                "invalid reference format: repository name (library/Python) must be lowercase",
            ),
            (
                "a/B:tag",
                "invalid reference format: repository name (a/B) must be lowercase",
            ),
            ("a:b:c", "invalid reference format"),
            ("a/", "invalid reference format"),
            ("-a", "invalid reference format"),
            ("a:-tag", "invalid reference format"),
            ("a@sha256:abc", "invalid reference format"),
            (
                "a@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
                "invalid checksum digest length",
            ),
            (
                "a@md5:e3b0c44298fc1c149afbf4c8996fb924",
                "unsupported digest algorithm",
            ),
            (
                "a@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "invalid checksum digest format",
            ),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "invalid repository name (e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855), cannot specify 64-byte hexadecimal strings",
            ),
            (
                long.as_str(),
                "repository name must not be more than 255 characters",
            ),
        ];
        for (input, message) in cases {
            let err = Reference::parse(input).expect_err(input);
            assert_eq!(err.to_string(), message, "{input}");
        }
    }

    #[test]
    fn hub_api_host_and_loopback() {
        let hub = Reference::parse("python").unwrap();
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert!(!hub.is_loopback());
        for local in [
            "localhost:5000/a",
            "127.0.0.1:5000/a",
            "127.1.2.3/a",
            "[::1]:5000/a",
            "localhost/a",
        ] {
            assert!(Reference::parse(local).unwrap().is_loopback(), "{local}");
        }
        let remote = Reference::parse("ghcr.io/a/b").unwrap();
        assert_eq!(remote.api_host(), "ghcr.io");
        assert!(!remote.is_loopback());
    }

    #[test]
    fn familiar_names() {
        for (input, familiar) in [
            ("python:3.11", "python:3.11"),
            ("docker.io/library/python", "python:latest"),
            ("user/model:v1", "user/model:v1"),
            ("docker.io/library/a/b", "library/a/b:latest"),
            ("localhost:5000/a:b", "localhost:5000/a:b"),
        ] {
            assert_eq!(
                Reference::parse(input).unwrap().familiar(),
                familiar,
                "{input}"
            );
        }
    }

    #[test]
    fn round_trips_through_display() {
        for s in ["docker.io/library/python:3.11", "localhost:5000/a/b:latest"] {
            assert_eq!(Reference::parse(s).unwrap().to_string(), s);
        }
    }
}
