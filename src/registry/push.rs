//! Push: upload every blob an image references that the repository lacks (mounted from another
//! repository on the same registry when possible), streamed from the store, several at once;
//! then put the manifest, byte for byte as stored, under the target tag.
use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use layers::{BlobStore, Digest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::{Access, Client, Target, http_error};
use super::error::RegistryError;
use super::reference::Reference;
use crate::oci::{Descriptor, ImageRef, Index, Manifest, media_types};
use crate::progress::{Progress, Unit};

/// Blobs up to this size go in one `PUT`; larger ones in `PATCH` chunks.
const MONOLITHIC_MAX: u64 = 32 << 20;
/// Chunk size when the registry states no preference.
const DEFAULT_CHUNK: u64 = 64 << 20;
/// Blobs uploaded at once unless `COG_PUSH_CONCURRENCY` says otherwise.
const DEFAULT_CONCURRENCY: usize = 8;

impl Client {
    /// Pushes `image` (a manifest or an index, blobs in `store`) to `target` and returns the
    /// digest of the pushed manifest.
    pub async fn push(
        &self,
        store: &BlobStore,
        image: &ImageRef,
        target: &Reference,
        progress: &Progress,
    ) -> Result<Digest, RegistryError> {
        self.push_mounting(store, image, target, None, progress)
            .await
    }

    /// [`Client::push`], trying to mount blobs from `mount_from` (a repository on the same
    /// registry that has them, e.g. the base image's) before uploading them.
    pub async fn push_mounting(
        &self,
        store: &BlobStore,
        image: &ImageRef,
        target: &Reference,
        mount_from: Option<&Reference>,
        progress: &Progress,
    ) -> Result<Digest, RegistryError> {
        let push_target = Target {
            reference: target,
            access: Access::Push,
        };
        let from = mount_from
            .filter(|from| {
                from.registry() == target.registry() && from.repository() != target.repository()
            })
            .map(|from| from.repository().to_string());
        let bytes = read_stored(store, &image.digest)?;
        if media_types::is_index(&image.media_type) {
            let index: Index = serde_json::from_slice(&bytes)
                .map_err(|e| invalid_local(&push_target, &image.digest, &e))?;
            for child in &index.manifests {
                let child_bytes = read_stored(store, &child.digest)?;
                self.push_blobs(
                    &push_target,
                    store,
                    &child_bytes,
                    &child.digest,
                    from.as_deref(),
                    progress,
                )
                .await?;
                self.put_manifest(
                    &push_target,
                    &child.digest.to_string(),
                    &child_bytes,
                    &child.media_type,
                )
                .await?;
            }
        } else {
            self.push_blobs(
                &push_target,
                store,
                &bytes,
                &image.digest,
                from.as_deref(),
                progress,
            )
            .await?;
        }
        let tag = target.manifest_ref().to_string();
        self.put_manifest(&push_target, &tag, &bytes, &image.media_type)
            .await?;
        Ok(image.digest)
    }

    /// Uploads the config and layers of one manifest, skipping those the repository has.
    async fn push_blobs(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        manifest_bytes: &[u8],
        manifest_digest: &Digest,
        from: Option<&str>,
        progress: &Progress,
    ) -> Result<(), RegistryError> {
        let manifest: Manifest = serde_json::from_slice(manifest_bytes)
            .map_err(|e| invalid_local(target, manifest_digest, &e))?;
        let mut seen = HashSet::new();
        let blobs: Vec<Descriptor> = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .filter(|d| seen.insert(d.digest))
            .cloned()
            .collect();
        futures::stream::iter(
            blobs
                .iter()
                .map(|d| self.push_blob(target, store, d, from, progress)),
        )
        .buffer_unordered(push_concurrency())
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    /// One blob: skipped when present, else mounted or uploaded; a transient failure restarts
    /// the upload (a registry's upload session does not survive a broken request).
    async fn push_blob(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        descriptor: &Descriptor,
        from: Option<&str>,
        progress: &Progress,
    ) -> Result<(), RegistryError> {
        let digest = descriptor.digest;
        let task = progress.task(&digest.hex()[..12], Some(descriptor.size), Unit::Bytes);
        let url = format!("{}blobs/{digest}", self.repository_url(target.reference));
        let head = self.send(target, Method::HEAD, &url, None).await?;
        if head.status().is_success() {
            task.finish("already exists");
            return Ok(());
        }
        if !store.has(&digest) {
            return Err(RegistryError::Store(layers::Error::Io(
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "blob {digest} of the image is not in the store at {}",
                        store.blob_path(&digest).display()
                    ),
                ),
            )));
        }
        let mut attempt = 1;
        loop {
            match self.upload_blob(target, store, descriptor, from).await {
                Ok(how) => {
                    task.finish(how);
                    return Ok(());
                }
                Err(err) if err.is_transient() && attempt < self.options.max_attempts => {
                    tracing::debug!(%digest, attempt, "push: retrying blob upload: {err}");
                    let delay = self.options.backoff * 2u32.saturating_pow(attempt - 1);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn upload_blob(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        descriptor: &Descriptor,
        from: Option<&str>,
    ) -> Result<&'static str, RegistryError> {
        let digest = descriptor.digest;
        let mut start = format!("{}blobs/uploads/", self.repository_url(target.reference));
        if let Some(from) = from {
            start = format!("{start}?mount={digest}&from={from}");
        }
        let response = self
            .send_with(target, Method::POST, &start, &|r| {
                r.header(CONTENT_LENGTH, "0")
            })
            .await?;
        let response = expect_status(target, &Method::POST, &start, response).await?;
        if response.status() == StatusCode::CREATED {
            return Ok("mounted");
        }
        let (min_chunk, max_chunk) = (
            header_u64(&response, "oci-chunk-min-length"),
            header_u64(&response, "oci-chunk-max-length"),
        );
        let mut location = Self::location(target, &start, &response)?;
        let path = store.blob_path(&digest);
        let size = descriptor.size;
        if size <= MONOLITHIC_MAX && max_chunk.is_none_or(|max| size <= max) {
            let url = with_digest(&location, &digest);
            let body_path = path.clone();
            let response = self
                .send_with(target, Method::PUT, url.as_str(), &|r| {
                    r.header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, size)
                        .body(file_body(body_path.clone(), 0, size))
                })
                .await?;
            expect_status(target, &Method::PUT, url.as_str(), response).await?;
            return Ok("pushed");
        }
        let chunk = chunk_size(min_chunk, max_chunk);
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let end = offset + len - 1;
            let body_path = path.clone();
            let response = self
                .send_with(target, Method::PATCH, location.as_str(), &|r| {
                    r.header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, len)
                        .header("content-range", format!("{offset}-{end}"))
                        .body(file_body(body_path.clone(), offset, len))
                })
                .await?;
            let response =
                expect_status(target, &Method::PATCH, location.as_str(), response).await?;
            location = Self::location(target, location.as_str(), &response)?;
            offset += len;
        }
        let url = with_digest(&location, &digest);
        let response = self
            .send_with(target, Method::PUT, url.as_str(), &|r| {
                r.header(CONTENT_LENGTH, "0")
            })
            .await?;
        expect_status(target, &Method::PUT, url.as_str(), response).await?;
        Ok("pushed")
    }

    /// `PUT /v2/<repo>/manifests/<tag or digest>` with the stored bytes and their media type.
    async fn put_manifest(
        &self,
        target: &Target<'_>,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let url = format!(
            "{}manifests/{reference}",
            self.repository_url(target.reference)
        );
        let body = bytes::Bytes::copy_from_slice(bytes);
        let response = self
            .send_with(target, Method::PUT, &url, &|r| {
                r.header(CONTENT_TYPE, media_type).body(body.clone())
            })
            .await?;
        expect_status(target, &Method::PUT, &url, response).await?;
        Ok(())
    }

    /// `http(s)://host/v2/<repo>/`
    fn repository_url(&self, reference: &Reference) -> String {
        format!("{}{}/", self.base_url(reference), reference.repository())
    }

    /// The upload session URL from `Location`, which may be relative to the request's URL.
    fn location(
        target: &Target<'_>,
        request_url: &str,
        response: &Response,
    ) -> Result<url::Url, RegistryError> {
        let invalid = |message: String| RegistryError::InvalidResponse {
            reference: target.reference(),
            registry: target.registry(),
            what: "an upload location",
            message,
        };
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| invalid(format!("no Location header in the reply to {request_url}")))?;
        url::Url::parse(request_url)
            .and_then(|base| base.join(location))
            .map_err(|e| invalid(format!("{location:?}: {e}")))
    }
}

/// Any 2xx passes; anything else (404 included, which `send` hands back) becomes an error with
/// the registry's own message.
async fn expect_status(
    target: &Target<'_>,
    method: &Method,
    url: &str,
    response: Response,
) -> Result<Response, RegistryError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(http_error(target, method, url, response).await)
    }
}

fn with_digest(location: &url::Url, digest: &Digest) -> url::Url {
    let mut url = location.clone();
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url
}

fn header_u64(response: &Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Our preferred chunk size, within the registry's stated bounds.
fn chunk_size(min: Option<u64>, max: Option<u64>) -> u64 {
    let mut chunk = DEFAULT_CHUNK;
    if let Some(max) = max.filter(|&m| m > 0) {
        chunk = chunk.min(max);
    }
    if let Some(min) = min {
        chunk = chunk.max(min);
    }
    chunk.max(1)
}

fn push_concurrency() -> usize {
    std::env::var("COG_PUSH_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_CONCURRENCY)
}

/// `len` bytes of the file at `path` from `offset`, streamed: opened when the request is sent,
/// so a retried request reads the file afresh.
fn file_body(path: std::path::PathBuf, offset: u64, len: u64) -> reqwest::Body {
    let opened = async move {
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            256 << 10,
        ))
    };
    reqwest::Body::wrap_stream(futures::stream::once(opened).try_flatten())
}

fn read_stored(store: &BlobStore, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
    let path = store.blob_path(digest);
    Ok(fs_err::read(path).map_err(layers::Error::Io)?)
}

fn invalid_local(target: &Target<'_>, digest: &Digest, err: &serde_json::Error) -> RegistryError {
    RegistryError::InvalidResponse {
        reference: target.reference(),
        registry: target.registry(),
        what: "a manifest",
        message: format!("stored manifest {digest} cannot be read: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_honours_registry_bounds() {
        assert_eq!(chunk_size(None, None), DEFAULT_CHUNK);
        assert_eq!(chunk_size(None, Some(1 << 20)), 1 << 20);
        assert_eq!(chunk_size(Some(128 << 20), None), 128 << 20);
        assert_eq!(chunk_size(Some(0), Some(0)), DEFAULT_CHUNK);
    }

    #[test]
    fn digest_is_added_to_an_existing_query() {
        let location = url::Url::parse("http://r/v2/x/blobs/uploads/abc?_state=s").unwrap();
        let digest = Digest::of(b"x");
        let url = with_digest(&location, &digest);
        assert_eq!(
            url.as_str(),
            format!(
                "http://r/v2/x/blobs/uploads/abc?_state=s&digest=sha256%3A{}",
                digest.hex()
            )
        );
    }
}
