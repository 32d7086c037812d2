//! Docker credentials: `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`) with `auths`
//! (`auth` base64 or `username`/`password`, `identitytoken`), `credsStore` and `credHelpers`
//! (the `docker-credential-<name> get` protocol).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::error::RegistryError;
use crate::oci::reference::DOCKER_HUB;

/// The key Docker uses for Docker Hub in `auths` and with credential helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// A username and a secret; `<token>` as the username means the secret is an identity token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credential {
    pub fn is_identity_token(&self) -> bool {
        self.username == "<token>"
    }

    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What a lookup found, and where it looked (for error messages).
#[derive(Debug, Clone)]
pub struct CredentialLookup {
    pub credential: Option<Credential>,
    pub source: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// A Docker client config, read once.
#[derive(Debug, Default)]
pub struct DockerConfig {
    path: PathBuf,
    file: Option<ConfigFile>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => std::env::var_os("HOME")
                .map_or_else(
                    || PathBuf::from(".docker"),
                    |h| PathBuf::from(h).join(".docker"),
                )
                .join("config.json"),
        }
    }

    /// Reads the default config; a missing file means no credentials, a broken one is an error.
    pub fn load_default() -> Result<Self, RegistryError> {
        Self::load(&Self::default_path())
    }

    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let bytes = match fs_err::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: path.to_path_buf(),
                    file: None,
                });
            }
            Err(err) => {
                return Err(RegistryError::DockerConfig {
                    path: path.display().to_string(),
                    message: err.to_string(),
                });
            }
        };
        let file = serde_json::from_slice(&bytes).map_err(|e| RegistryError::DockerConfig {
            path: path.display().to_string(),
            message: format!("invalid JSON: {e}"),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
        })
    }

    /// Credentials for `registry` (`docker.io`, `localhost:5000`): a credential helper named for
    /// it in `credHelpers`, else `credsStore`, else `auths`.
    pub async fn lookup(&self, registry: &str) -> Result<CredentialLookup, RegistryError> {
        let path = self.path.display();
        let Some(file) = &self.file else {
            return Ok(CredentialLookup {
                credential: None,
                source: format!("no credentials: {path} does not exist"),
            });
        };
        let server = if registry == DOCKER_HUB {
            DOCKER_HUB_SERVER.to_string()
        } else {
            registry.to_string()
        };
        let helper = file
            .cred_helpers
            .iter()
            .find(|(key, _)| same_registry(key, registry))
            .map(|(_, helper)| (helper.clone(), "credHelpers"))
            .or_else(|| {
                file.creds_store
                    .clone()
                    .filter(|s| !s.is_empty())
                    .map(|s| (s, "credsStore"))
            });
        if let Some((helper, field)) = helper {
            let source =
                format!("credential helper docker-credential-{helper} from {field} in {path}");
            if let Some(credential) = run_helper(&helper, &server).await? {
                return Ok(CredentialLookup {
                    credential: Some(credential),
                    source,
                });
            }
            if field == "credHelpers" {
                return Ok(CredentialLookup {
                    credential: None,
                    source: format!("{source}: no credentials for {server}"),
                });
            }
        }
        let entry = file
            .auths
            .iter()
            .find(|(key, _)| same_registry(key, registry));
        let Some((key, entry)) = entry else {
            return Ok(CredentialLookup {
                credential: None,
                source: format!("no credentials for {registry} in {path}"),
            });
        };
        let source = format!("auths[{key:?}] in {path}");
        let credential = decode_entry(entry).map_err(|message| RegistryError::DockerConfig {
            path: path.to_string(),
            message: format!("auths[{key:?}]: {message}"),
        })?;
        Ok(CredentialLookup { credential, source })
    }
}

/// Where `cog login` stored a credential (for its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    /// `auths` of this config file.
    ConfigFile(PathBuf),
    /// This credential helper (`docker-credential-<name>`), named by `credHelpers`/`credsStore`.
    Helper(String),
}

impl std::fmt::Display for StoredIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ConfigFile(path) => write!(f, "{}", path.display()),
            Self::Helper(name) => write!(f, "credential helper docker-credential-{name}"),
        }
    }
}

/// The key Docker files a registry's credentials under (`https://index.docker.io/v1/` for Hub).
pub fn server_key(registry: &str) -> String {
    if same_registry(registry, DOCKER_HUB) {
        DOCKER_HUB_SERVER.to_string()
    } else {
        registry.to_string()
    }
}

/// Stores `credential` for `registry` where `docker login` would: the credential helper that
/// `credHelpers` names for it or the `credsStore`, else `auths` in the config file at `path`.
/// The file is rewritten atomically (temp file and rename, mode 0600) and every other key kept.
pub async fn store_credential(
    path: &Path,
    registry: &str,
    credential: &Credential,
) -> Result<StoredIn, RegistryError> {
    let config_error = |message: String| RegistryError::DockerConfig {
        path: path.display().to_string(),
        message,
    };
    // Docker follows a symlinked config.json and rewrites its target.
    let path = match fs_err::canonicalize(path) {
        Ok(real) => real,
        Err(_) => path.to_path_buf(),
    };
    let mut root = match fs_err::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => serde_json::Map::new(),
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => return Err(config_error("not a JSON object".to_string())),
            Err(e) => return Err(config_error(format!("invalid JSON: {e}"))),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(err) => return Err(config_error(err.to_string())),
    };
    let server = server_key(registry);
    let helper = root
        .get("credHelpers")
        .and_then(serde_json::Value::as_object)
        .and_then(|helpers| {
            helpers
                .iter()
                .find(|(key, _)| same_registry(key, registry))
                .and_then(|(_, v)| v.as_str())
        })
        .or_else(|| root.get("credsStore").and_then(serde_json::Value::as_str))
        .filter(|h| !h.is_empty())
        .map(str::to_string);
    let auths = root
        .entry("auths")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let serde_json::Value::Object(auths) = auths else {
        return Err(config_error("\"auths\" is not a JSON object".to_string()));
    };
    // One entry per registry: drop other spellings of it (`http://host/v1/`), as they could
    // shadow the new one.
    auths.retain(|key, _| key == &server || !same_registry(key, registry));
    let entry = match &helper {
        // Docker keeps an empty entry so the registry is listed, and no secret in the file.
        Some(_) => serde_json::json!({}),
        None if credential.is_identity_token() => {
            serde_json::json!({ "identitytoken": credential.secret })
        }
        None => {
            let raw = format!("{}:{}", credential.username, credential.secret);
            serde_json::json!({ "auth": base64::engine::general_purpose::STANDARD.encode(raw) })
        }
    };
    if let Some(helper) = &helper {
        run_helper_store(helper, &server, credential).await?;
    }
    auths.insert(server, entry);
    write_config_atomically(&path, &serde_json::Value::Object(root))
        .map_err(|e| config_error(format!("cannot write it: {e}")))?;
    Ok(match helper {
        Some(helper) => StoredIn::Helper(helper),
        None => StoredIn::ConfigFile(path),
    })
}

/// Tab-indented JSON (as Docker writes it) into a temp file beside `path`, then renamed over it.
fn write_config_atomically(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        fs_err::create_dir_all(dir)?;
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    serde::Serialize::serialize(value, &mut serializer).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let mut temp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(dir)?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    temp.write_all(&bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Runs a credential helper with `verb` (`get`, `store`) and `input` on stdin, as the
/// `docker-credential-*` protocol does; the error text names the program.
async fn helper_output(
    program: &str,
    verb: &str,
    input: &str,
) -> Result<std::process::Output, String> {
    let mut child = tokio::process::Command::new(program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|e| format!("cannot write to {program}: {e}"))?;
    }
    child
        .wait_with_output()
        .await
        .map_err(|e| format!("{program}: {e}"))
}

/// `docker-credential-<helper> store` with `{"ServerURL","Username","Secret"}` on stdin.
async fn run_helper_store(
    helper: &str,
    server: &str,
    credential: &Credential,
) -> Result<(), RegistryError> {
    let program = format!("docker-credential-{helper}");
    let failed = |message: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        server: server.to_string(),
        message,
    };
    let payload = serde_json::json!({
        "ServerURL": server,
        "Username": credential.username,
        "Secret": credential.secret,
    })
    .to_string();
    let output = helper_output(&program, "store", &payload)
        .await
        .map_err(failed)?;
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        return Err(failed(format!(
            "{program} store exited with {}: {}",
            output.status,
            text.trim()
        )));
    }
    Ok(())
}

fn decode_entry(entry: &AuthEntry) -> Result<Option<Credential>, String> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential {
            username: "<token>".to_string(),
            secret: token.clone(),
        }));
    }
    if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("\"auth\" is not valid base64: {e}"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
        let (username, secret) = decoded
            .split_once(':')
            .ok_or("\"auth\" must encode username:password")?;
        return Ok(Some(Credential {
            username: username.to_string(),
            secret: secret.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Ok(Some(Credential {
            username: username.clone(),
            secret: password.clone(),
        })),
        _ => Ok(None),
    }
}

/// Docker's `ConvertToHostname`: `https://host/v1/` and `host` name the same registry; the
/// several names of Docker Hub are one.
fn same_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    host == registry || (hub(host) && hub(registry))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    username: String,
    secret: String,
}

/// `docker-credential-<helper> get` with the server URL on stdin; "not found" means none.
async fn run_helper(helper: &str, server: &str) -> Result<Option<Credential>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let failed = |message: String| RegistryError::CredentialHelper {
        helper: helper.to_string(),
        server: server.to_string(),
        message,
    };
    let output = helper_output(&program, "get", server)
        .await
        .map_err(failed)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!(
            "{program} get exited with {}: {}",
            output.status,
            format!("{stdout}{stderr}").trim()
        )));
    }
    let reply: HelperReply = serde_json::from_str(&stdout)
        .map_err(|e| failed(format!("{program} get printed invalid JSON: {e}")))?;
    if reply.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: reply.username,
        secret: reply.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, json: &str) -> DockerConfig {
        let path = dir.join("config.json");
        fs_err::write(&path, json).unwrap();
        DockerConfig::load(&path).unwrap()
    }

    #[tokio::test]
    async fn auths_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with:colons");
        let c = config(
            dir.path(),
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                "localhost:5000":{{"username":"bob","password":"pw"}},
                "http://ghcr.io/v2":{{"identitytoken":"tok"}}}}}}"#
            ),
        );
        let hub = c.lookup("docker.io").await.unwrap();
        assert_eq!(
            hub.credential,
            Some(Credential {
                username: "alice".into(),
                secret: "s3cret:with:colons".into()
            })
        );
        assert!(
            hub.source
                .starts_with("auths[\"https://index.docker.io/v1/\"] in "),
            "{}",
            hub.source
        );
        let local = c
            .lookup("localhost:5000")
            .await
            .unwrap()
            .credential
            .unwrap();
        assert_eq!(
            (local.username.as_str(), local.secret.as_str()),
            ("bob", "pw")
        );
        assert_eq!(local.basic_header(), "Basic Ym9iOnB3");
        assert!(
            c.lookup("ghcr.io")
                .await
                .unwrap()
                .credential
                .unwrap()
                .is_identity_token()
        );
        let none = c.lookup("quay.io").await.unwrap();
        assert!(none.credential.is_none());
        assert!(
            none.source.starts_with("no credentials for quay.io in "),
            "{}",
            none.source
        );
    }

    #[tokio::test]
    async fn credential_helpers_speak_the_docker_protocol() {
        let dir = tempfile::tempdir().unwrap();
        // A helper that answers for one server and says "not found" for the others.
        let helper = dir.path().join("docker-credential-fake");
        fs_err::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = \"localhost:5000\" ]; then echo '{\"ServerURL\":\"localhost:5000\",\"Username\":\"h\",\"Secret\":\"hs\"}'; \
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let c = config(
            dir.path(),
            r#"{"credHelpers":{"localhost:5000":"fake","other:1":"fake"},"auths":{"other:1":{"username":"x","password":"y"}}}"#,
        );
        let path = std::env::var("PATH").unwrap_or_default();
        // Safety: set before the helper runs; tests in this binary do not read PATH concurrently.
        unsafe { std::env::set_var("PATH", format!("{}:{path}", dir.path().display())) };
        let found = c.lookup("localhost:5000").await.unwrap();
        assert_eq!(found.credential.unwrap().username, "h");
        assert!(
            found
                .source
                .contains("docker-credential-fake from credHelpers"),
            "{}",
            found.source
        );
        let missing = c.lookup("other:1").await.unwrap();
        assert!(
            missing.credential.is_none(),
            "credHelpers wins over auths, as in Docker"
        );
        let c = config(dir.path(), r#"{"credsStore":"absent-helper"}"#);
        let err = c.lookup("localhost:5000").await.unwrap_err().to_string();
        assert!(err.starts_with("credential helper docker-credential-absent-helper failed for localhost:5000: cannot run"), "{err}");
    }

    #[tokio::test]
    async fn missing_and_broken_configs() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load(&dir.path().join("nope.json")).unwrap();
        let found = c.lookup("docker.io").await.unwrap();
        assert!(found.credential.is_none() && found.source.contains("does not exist"));
        fs_err::write(dir.path().join("config.json"), "{").unwrap();
        let err = DockerConfig::load(&dir.path().join("config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json: invalid JSON"), "{err}");
    }

    #[tokio::test]
    async fn store_keeps_other_keys_and_replaces_other_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        let alice = Credential {
            username: "alice".into(),
            secret: "pw".into(),
        };
        // A missing file (and directory) is created, 0600.
        let stored = store_credential(&path, "docker.io", &alice).await.unwrap();
        assert_eq!(stored, StoredIn::ConfigFile(path.clone()));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs_err::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        fs_err::write(
            &path,
            r#"{"auths":{"http://localhost:5000/v1/":{"auth":"b2xkOm9sZA=="},"quay.io":{"auth":"eDp5"}},"detachKeys":"ctrl-x"}"#,
        )
        .unwrap();
        store_credential(&path, "localhost:5000", &alice)
            .await
            .unwrap();
        let token = Credential {
            username: "<token>".into(),
            secret: "refresh".into(),
        };
        store_credential(&path, "ghcr.io", &token).await.unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&fs_err::read(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({
                "auths": {
                    "quay.io": {"auth": "eDp5"},
                    "localhost:5000": {"auth": "YWxpY2U6cHc="},
                    "ghcr.io": {"identitytoken": "refresh"},
                },
                "detachKeys": "ctrl-x",
            })
        );
        let config = DockerConfig::load(&path).unwrap();
        let found = config.lookup("localhost:5000").await.unwrap();
        assert_eq!(found.credential, Some(alice));
        assert!(
            config
                .lookup("ghcr.io")
                .await
                .unwrap()
                .credential
                .unwrap()
                .is_identity_token()
        );
        assert_eq!(server_key("index.docker.io"), "https://index.docker.io/v1/");
    }

    #[tokio::test]
    async fn store_errors_name_the_file_or_the_helper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let c = Credential {
            username: "u".into(),
            secret: "s".into(),
        };
        fs_err::write(&path, "[1]").unwrap();
        let err = store_credential(&path, "r:1", &c)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json: not a JSON object"), "{err}");
        fs_err::write(&path, r#"{"credHelpers":{"r:1":"absent-helper"}}"#).unwrap();
        let err = store_credential(&path, "r:1", &c)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "credential helper docker-credential-absent-helper failed for r:1: cannot run"
            ),
            "{err}"
        );
        assert_eq!(
            fs_err::read_to_string(&path).unwrap(),
            r#"{"credHelpers":{"r:1":"absent-helper"}}"#,
            "unchanged when the helper fails"
        );
    }
}
