//! HTTP downloads into a content-addressed cache: every file is checked against the SHA-256 the
//! signed Release (or a Packages entry) gives, written to a temp file and renamed into place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::limits::Cap;

/// Where downloads are cached: `<cog cache>/debian`.
pub fn default_cache_dir() -> PathBuf {
    layers::BlobStore::default_root().join("debian")
}

pub(crate) fn client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(concat!("cog-rs-debian/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Config(format!("cannot create the HTTP client: {e}")))
}

pub(crate) fn fetch_error(url: &str, e: &reqwest::Error) -> Error {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    Error::Fetch {
        url: url.to_owned(),
        reason,
    }
}

/// GETs `url`, retrying transient failures (connection errors, 5xx) with backoff.
pub(crate) async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response, Error> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = client.get(url).send().await;
        let retry = match &result {
            Ok(r) if r.status().is_server_error() => true,
            Ok(_) => false,
            Err(e) => e.is_connect() || e.is_timeout(),
        };
        if !retry || attempt >= 3 {
            let resp = result.map_err(|e| fetch_error(url, &e))?;
            if !resp.status().is_success() {
                return Err(Error::Fetch {
                    url: url.to_owned(),
                    reason: format!("HTTP {}", resp.status()),
                });
            }
            return Ok(resp);
        }
        tracing::debug!(url, attempt, "retrying download");
        tokio::time::sleep(delay).await;
        delay *= 4;
    }
}

/// The body of `url` (a Release file, a signature), at most [`Cap::metadata`] bytes.
pub(crate) async fn get_bytes(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, Error> {
    let cap = Cap::metadata()?;
    let mut resp = get(client, url).await?;
    if let Some(length) = resp.content_length() {
        cap.check(length, || url.to_owned())?;
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_error(url, &e))? {
        body.extend_from_slice(&chunk);
        cap.check(body.len() as u64, || url.to_owned())?;
    }
    Ok(body)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Streams `url` into `dest` (atomically), verifying size and SHA-256 on the way.
/// Returns early when `dest` already exists (it was verified when written).
pub(crate) async fn download_verified(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    sha256: &str,
    size: Option<u64>,
) -> Result<(), Error> {
    if dest.exists() {
        return Ok(());
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut resp = get(client, url).await?;
    // In this process's temp directory, so a killed build leaves nothing behind for long.
    let scratch = layers::process_temp_dir(&dir.join("tmp"))?;
    let mut temp =
        tempfile::NamedTempFile::with_prefix_in(".part-", scratch.path()).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot create a temp file in {}: {e}",
                    scratch.path().display()
                ),
            )
        })?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fetch_error(url, &e))? {
        hasher.update(&chunk);
        written += chunk.len() as u64;
        temp.write_all(&chunk).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot write {}: {e}", dest.display()))
        })?;
    }
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(sha256) || size.is_some_and(|s| s != written) {
        return Err(Error::HashMismatch {
            what: url.to_owned(),
            expected: sha256.to_owned(),
            actual,
        });
    }
    temp.persist(dest).map_err(|e| {
        std::io::Error::new(
            e.error.kind(),
            format!("cannot write {}: {}", dest.display(), e.error),
        )
    })?;
    Ok(())
}

/// Writes `bytes` to `dest` atomically (temp file in the same directory, then rename).
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::with_prefix_in(".part-", dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot create a temp file in {}: {e}", dir.display()),
        )
    })?;
    temp.write_all(bytes).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot write {}: {e}", dest.display()))
    })?;
    temp.persist(dest).map_err(|e| {
        std::io::Error::new(
            e.error.kind(),
            format!("cannot write {}: {}", dest.display(), e.error),
        )
    })?;
    Ok(())
}
