//! `cog login [REGISTRY]`: check a username and password (or a token) against a registry and
//! store them where `docker login` would: the configured credential helper, else `auths` in
//! `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`). Replicate's registry (r8.im) takes
//! a CLI token instead, verified with Replicate's API as Cog does.
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::registry::{Client, ClientOptions, Credential, DockerConfig, store_credential};
use crate::session::Session;

/// Cog's default registry (its hidden `--registry` flag, `$COG_REGISTRY_HOST`).
const DEFAULT_REGISTRY: &str = "r8.im";

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry to log in to, e.g. ghcr.io or localhost:5000 (default: $COG_REGISTRY_HOST, else r8.im)
    registry: Option<String>,
    /// Registry host (Cog's hidden flag; the argument wins)
    #[arg(long = "registry", hide = true, env = "COG_REGISTRY_HOST")]
    registry_flag: Option<String>,
    /// Username (asked for on the terminal when missing)
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Read the password from stdin
    #[arg(long, conflicts_with = "token_stdin")]
    password_stdin: bool,
    /// Read a token from stdin: an identity token, or a password-like token with --username
    #[arg(long)]
    token_stdin: bool,
    /// Speak plain HTTP to a registry that is not on loopback
    #[arg(long)]
    insecure: bool,
}

impl LoginArgs {
    /// The registry client's settings (`--insecure`).
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            insecure: self.insecure,
            ..ClientOptions::default()
        }
    }
}

pub fn run(session: &Session, args: &LoginArgs) -> Result<ExitCode> {
    let registry = normalize_registry(
        args.registry
            .as_deref()
            .or(args.registry_flag.as_deref())
            .unwrap_or(DEFAULT_REGISTRY),
    )?;
    let client = &session.registry;
    let credential = if registry == DEFAULT_REGISTRY && args.username.is_none() {
        let token = if args.token_stdin || args.password_stdin {
            read_stdin_secret("token")?
        } else {
            prompt_replicate_token(session)?
        };
        let username = session.block_on(verify_replicate_token(client, &registry, &token))?;
        Credential {
            username,
            secret: token,
        }
    } else {
        let credential = read_credential(args, &registry)?;
        session
            .block_on(client.login(&registry, &credential))
            .with_context(|| format!("logging in to {registry}"))?;
        credential
    };
    let path = DockerConfig::default_path();
    let stored = session
        .block_on(store_credential(&path, &registry, &credential))
        .with_context(|| format!("storing the credentials for {registry}"))?;
    session
        .reporter
        .message(&format!("Credentials for {registry} stored in {stored}"));
    if credential.is_identity_token() {
        println!("Login Succeeded");
    } else {
        println!(
            "You've successfully authenticated as {}! You can now use the '{registry}' registry.",
            credential.username
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `https://ghcr.io/` -> `ghcr.io`; Docker Hub's several names -> `docker.io`.
fn normalize_registry(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    let host = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let host = host.trim_end_matches('/');
    // `https://index.docker.io/v1/` is how Docker names Hub in its config.
    let host = host.strip_suffix("/v1").unwrap_or(host);
    if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
        bail!(
            "invalid registry {raw:?}: expected a host with an optional port, e.g. ghcr.io or localhost:5000"
        );
    }
    let host = host.to_ascii_lowercase();
    Ok(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    })
}

/// The username and password or token, from the flags, stdin or the terminal.
fn read_credential(args: &LoginArgs, registry: &str) -> Result<Credential> {
    if args.token_stdin {
        let token = read_stdin_secret("token")?;
        return Ok(Credential {
            // No username: an identity token (OAuth refresh token), as `docker login` stores it.
            username: args
                .username
                .clone()
                .unwrap_or_else(|| "<token>".to_string()),
            secret: token,
        });
    }
    if args.password_stdin {
        let Some(username) = args.username.clone() else {
            bail!(
                "--password-stdin needs --username: the password alone cannot log in to {registry}"
            );
        };
        let password = read_stdin_secret("password")?;
        return Ok(Credential {
            username,
            secret: password,
        });
    }
    let term = console::Term::stderr();
    if !std::io::stdin().is_terminal() || !term.is_term() {
        bail!(
            "cannot ask for the password of {registry}: no terminal; use --username with --password-stdin, or --token-stdin"
        );
    }
    let username = if let Some(username) = &args.username {
        username.clone()
    } else {
        term.write_str(&format!("Username for {registry}: "))?;
        term.read_line()
            .context("reading the username")?
            .trim()
            .to_string()
    };
    if username.is_empty() {
        bail!("no username given for {registry}");
    }
    term.write_str("Password: ")?;
    let password = term.read_secure_line().context("reading the password")?;
    if password.is_empty() {
        bail!("no password given for {registry}");
    }
    Ok(Credential {
        username,
        secret: password,
    })
}

/// All of stdin, less one trailing newline (as `docker login --password-stdin` reads it).
fn read_stdin_secret(what: &str) -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("reading the {what} from stdin"))?;
    let secret = text
        .strip_suffix('\n')
        .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
    if secret.is_empty() {
        bail!("no {what} on stdin");
    }
    Ok(secret.to_string())
}

/// Cog's r8.im flow on a terminal: show where to get a CLI token, then read it.
fn prompt_replicate_token(session: &Session) -> Result<String> {
    let client = &session.registry;
    let term = console::Term::stderr();
    if !std::io::stdin().is_terminal() || !term.is_term() {
        bail!(
            "cannot ask for a token for {DEFAULT_REGISTRY}: no terminal; pipe your CLI token into `cog login --token-stdin`"
        );
    }
    let url = session.block_on(async {
        #[derive(serde::Deserialize)]
        struct Reply {
            url: String,
        }
        let reply = client
            .http
            .get(format!(
                "https://{DEFAULT_REGISTRY}/cog/v1/display-token-url"
            ))
            .send()
            .await?
            .error_for_status()?;
        reply.json::<Reply>().await.map(|r| r.url)
    });
    match url {
        Ok(url) => session
            .reporter
            .message(&format!("Get your CLI token at {url}")),
        Err(err) => tracing::warn!("cannot ask {DEFAULT_REGISTRY} for the token page: {err}"),
    }
    term.write_str("CLI token: ")?;
    let token = term.read_secure_line().context("reading the token")?;
    Ok(token.trim().to_string())
}

/// `POST https://r8.im/cog/v1/verify-token` with the token; Replicate answers the username.
async fn verify_replicate_token(client: &Client, registry: &str, token: &str) -> Result<String> {
    check_replicate_token(token)?;
    #[derive(serde::Deserialize)]
    struct Reply {
        username: String,
    }
    let url = format!("https://{registry}/cog/v1/verify-token");
    let reply = client
        .http
        .post(&url)
        .form(&[("token", token)])
        .send()
        .await
        .with_context(|| format!("cannot reach {url} to verify the token"))?;
    let status = reply.status();
    if !status.is_success() {
        let body = reply.text().await.unwrap_or_default();
        bail!(
            "login to registry {registry} failed: {url} answered {status}: {}",
            body.trim()
        );
    }
    let reply: Reply = reply
        .json()
        .await
        .with_context(|| format!("{url} sent an answer without a username"))?;
    Ok(reply.username)
}

/// Cog refuses API tokens (`r8_…`) where a CLI token is wanted.
fn check_replicate_token(token: &str) -> Result<()> {
    if token.is_empty() {
        bail!("no token given for {DEFAULT_REGISTRY}");
    }
    if token.starts_with("r8_") {
        bail!(
            "that looks like a Replicate API token (r8_…), not a CLI token: get a CLI token at https://replicate.com/auth/token"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_normalized_as_docker_names_them() {
        let n = |s: &str| normalize_registry(s).map_err(|e| e.to_string());
        assert_eq!(n("localhost:5000").as_deref(), Ok("localhost:5000"));
        assert_eq!(n("https://GHCR.io/").as_deref(), Ok("ghcr.io"));
        assert_eq!(n("https://index.docker.io/v1/").as_deref(), Ok("docker.io"));
        assert_eq!(n("registry-1.docker.io").as_deref(), Ok("docker.io"));
        let err = n("ghcr.io/me/repo").unwrap_err();
        assert!(
            err.starts_with("invalid registry \"ghcr.io/me/repo\""),
            "{err}"
        );
        assert!(n("  ").is_err());
    }

    #[test]
    fn replicate_api_tokens_are_refused() {
        let err = check_replicate_token("r8_abc").unwrap_err().to_string();
        assert!(err.contains("Replicate API token"), "{err}");
        assert!(check_replicate_token("").is_err());
        assert!(check_replicate_token("cli-token").is_ok());
    }
}
