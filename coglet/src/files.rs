//! Output values from the worker into response JSON: files become data URLs or uploads
//! (reference 3.3), spilled JSON is read back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::ipc::OutputValue;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("reading output file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spilled output {path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("uploading {path} to {url}: {reason}")]
    Upload {
        path: PathBuf,
        url: String,
        reason: String,
    },
}

impl OutputError {
    /// Whether this error fails the prediction. An output that cannot be read (or spilled JSON
    /// that cannot be parsed) does, as in Cog: reporting `succeeded` without that output would
    /// hide the loss. A failed upload is only logged and the output omitted (reference 3.3).
    pub fn fails_prediction(&self) -> bool {
        !matches!(self, Self::Upload { .. })
    }

    /// The prediction's `error` text.
    pub fn prediction_error(&self) -> String {
        match self {
            Self::Read { path, source } => {
                format!("Failed to read output file {}: {source}", path.display())
            }
            other => format!("Failed to process output: {other}"),
        }
    }
}

#[derive(Clone)]
pub struct OutputResolver {
    upload_url: Option<String>,
    client: reqwest::Client,
}

impl OutputResolver {
    pub fn new(upload_url: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(25))
            .build()
            .unwrap_or_default();
        Self { upload_url, client }
    }

    /// Turns one output value into JSON. Files under `output_dir` are deleted afterwards.
    pub async fn resolve(
        &self,
        value: OutputValue,
        output_dir: &Path,
    ) -> Result<Value, OutputError> {
        match value {
            OutputValue::Json { value } => Ok(value),
            OutputValue::Spilled { path } => {
                let bytes = read(&path).await?;
                let _ = tokio::fs::remove_file(&path).await;
                serde_json::from_slice(&bytes).map_err(|source| OutputError::Json { path, source })
            }
            OutputValue::File { path, mime_type } => {
                let mime = mime_type.unwrap_or_else(|| {
                    mime_guess::from_path(&path)
                        .first_or_octet_stream()
                        .essence_str()
                        .to_string()
                });
                let bytes = read(&path).await?;
                if path.starts_with(output_dir) {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                match &self.upload_url {
                    None => Ok(Value::String(data_url(&mime, &bytes))),
                    Some(base) => self
                        .upload(base, &path, &mime, bytes)
                        .await
                        .map(Value::String),
                }
            }
        }
    }

    async fn upload(
        &self,
        base: &str,
        path: &Path,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Result<String, OutputError> {
        let name = path.file_name().map_or_else(
            || "output".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut url = base.to_string();
        if !url.ends_with('/') {
            url.push('/');
        }
        url.push_str(&encode_segment(&name));
        let fail = |reason: String| OutputError::Upload {
            path: path.to_path_buf(),
            url: url.clone(),
            reason,
        };
        let resp = self
            .client
            .put(&url)
            .header(reqwest::header::CONTENT_TYPE, mime)
            .body(bytes)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut final_url = match location {
            Some(l) => resp.url().join(&l).map_err(|e| fail(e.to_string()))?,
            None => resp.url().clone(),
        };
        final_url.set_query(None);
        Ok(final_url.to_string())
    }
}

async fn read(path: &Path) -> Result<Vec<u8>, OutputError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| OutputError::Read {
            path: path.to_path_buf(),
            source,
        })
}

pub fn data_url(mime: &str, bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("data:{mime};base64,{b64}")
}

fn encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_become_data_urls_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, b"hi").unwrap();
        let r = OutputResolver::new(None);
        let v = r
            .resolve(
                OutputValue::File {
                    path: path.clone(),
                    mime_type: None,
                },
                dir.path(),
            )
            .await
            .unwrap();
        assert_eq!(v, Value::String("data:text/plain;base64,aGk=".into()));
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn spilled_json_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, br#"{"a":[1,2]}"#).unwrap();
        let v = OutputResolver::new(None)
            .resolve(OutputValue::Spilled { path }, dir.path())
            .await
            .unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, 2]}));
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_that_fails_the_prediction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.png");
        let err = OutputResolver::new(None)
            .resolve(
                OutputValue::File {
                    path: path.clone(),
                    mime_type: None,
                },
                dir.path(),
            )
            .await
            .unwrap_err();
        assert!(err.fails_prediction());
        let msg = err.prediction_error();
        assert!(
            msg.starts_with(&format!("Failed to read output file {}: ", path.display())),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn files_outside_output_dir_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("inputs").join("in.png");
        std::fs::create_dir_all(input.parent().unwrap()).unwrap();
        std::fs::write(&input, b"px").unwrap();
        let r = OutputResolver::new(None);
        for _ in 0..2 {
            let v = r
                .resolve(
                    OutputValue::File {
                        path: input.clone(),
                        mime_type: None,
                    },
                    &dir.path().join("outputs"),
                )
                .await
                .unwrap();
            assert_eq!(v, Value::String("data:image/png;base64,cHg=".into()));
        }
        assert!(input.exists());
    }

    #[tokio::test]
    async fn upload_failures_do_not_fail_the_prediction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, b"hi").unwrap();
        // Port 9 on loopback: nothing listens, the connection is refused.
        let err = OutputResolver::new(Some("http://127.0.0.1:9/up/".into()))
            .resolve(
                OutputValue::File {
                    path,
                    mime_type: None,
                },
                dir.path(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, OutputError::Upload { .. }), "{err}");
        assert!(!err.fails_prediction());
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode_segment("a b/c.png"), "a%20b%2Fc.png");
    }
}
