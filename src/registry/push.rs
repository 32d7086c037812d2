//! Push: upload every blob an image references that the repository lacks (mounted from another
//! repository on the same registry when possible), streamed from the store, several at once, each
//! with a progress bar counting its bytes and one for the total; then put the manifests (byte for
//! byte as stored, or rewritten as Docker schema2 when asked) and the tag.
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use layers::{BlobStore, Digest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::{Access, Client, Target, http_error};
use super::error::RegistryError;
use super::locations;
use crate::oci::reference::Reference;
use crate::oci::{Descriptor, ImageRef, Index, Manifest, media_types};
use report::{Reporter, Task, Unit};

/// Blobs up to this size go in one `PUT`; larger ones in `PATCH` chunks.
const MONOLITHIC_MAX: u64 = 32 << 20;
/// Chunk size when the registry states no preference.
const DEFAULT_CHUNK: u64 = 64 << 20;
/// Docker schema2's media type for an uncompressed layer.
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The manifest format written to the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ManifestFormat {
    /// OCI manifests and indexes, exactly as built (the default).
    #[default]
    Oci,
    /// Docker schema2 manifests and manifest lists (same blobs, other media types and digests).
    Docker,
}

/// A manifest document as it goes to the registry.
struct Document {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
}

impl Client {
    /// Pushes `image` (a manifest or an index, blobs in `store`) to `target` and returns the
    /// digest of the pushed manifest.
    pub async fn push(
        &self,
        store: &BlobStore,
        image: &ImageRef,
        target: &Reference,
        reporter: &dyn Reporter,
    ) -> Result<Digest, RegistryError> {
        self.push_with(store, image, target, None, ManifestFormat::Oci, reporter)
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
        reporter: &dyn Reporter,
    ) -> Result<Digest, RegistryError> {
        self.push_with(
            store,
            image,
            target,
            mount_from,
            ManifestFormat::Oci,
            reporter,
        )
        .await
    }

    /// [`Client::push_mounting`] writing manifests in `format`; returns the digest of the
    /// manifest (or index, or manifest list) the tag points at.
    pub async fn push_with(
        &self,
        store: &BlobStore,
        image: &ImageRef,
        target: &Reference,
        mount_from: Option<&Reference>,
        format: ManifestFormat,
        reporter: &dyn Reporter,
    ) -> Result<Digest, RegistryError> {
        let sources: Vec<Reference> = mount_from.into_iter().cloned().collect();
        self.push_from(store, image, target, &sources, format, reporter)
            .await
    }

    /// Pushes `image` to `target`, moving nothing twice: a blob the repository has is skipped
    /// (`HEAD`); else it is mounted from a repository of the same registry known to hold it
    /// (`sources`: the base image's, the build cache's; and every repository this store pushed
    /// it to before); else uploaded from the store, or, when the store lacks it (a layer only a
    /// remote build cache had), fetched from `sources` first.
    pub async fn push_from(
        &self,
        store: &BlobStore,
        image: &ImageRef,
        target: &Reference,
        sources: &[Reference],
        format: ManifestFormat,
        reporter: &dyn Reporter,
    ) -> Result<Digest, RegistryError> {
        let push_target = Target {
            reference: target,
            access: Access::Push,
            mount_from: None,
        };
        let target = &push_target;
        let bytes = read_stored(store, &image.digest)?;
        // The image manifests (one, or one per platform of an index) and the tagged document.
        let mut children = Vec::new();
        let top = if media_types::is_index(&image.media_type) {
            let mut index: Index = serde_json::from_slice(&bytes)
                .map_err(|e| invalid_local(target, &image.digest, &e))?;
            for entry in &mut index.manifests {
                let child_bytes = read_stored(store, &entry.digest)?;
                let child = Document {
                    bytes: child_bytes,
                    media_type: entry.media_type.clone(),
                    digest: entry.digest,
                };
                let child = match format {
                    ManifestFormat::Oci => child,
                    ManifestFormat::Docker => to_docker_manifest(target, child)?,
                };
                entry.media_type.clone_from(&child.media_type);
                entry.digest = child.digest;
                entry.size = child.bytes.len() as u64;
                children.push(child);
            }
            let document = Document {
                bytes,
                media_type: image.media_type.clone(),
                digest: image.digest,
            };
            match format {
                ManifestFormat::Oci => document,
                ManifestFormat::Docker => to_docker_list(target, &index)?,
            }
        } else {
            let document = Document {
                bytes,
                media_type: image.media_type.clone(),
                digest: image.digest,
            };
            let document = match format {
                ManifestFormat::Oci => document,
                ManifestFormat::Docker => to_docker_manifest(target, document)?,
            };
            children.push(Document {
                bytes: document.bytes.clone(),
                media_type: document.media_type.clone(),
                digest: document.digest,
            });
            document
        };
        let mut seen = HashSet::new();
        let mut blobs = Vec::new();
        for child in &children {
            let manifest: Manifest = serde_json::from_slice(&child.bytes)
                .map_err(|e| invalid_local(target, &child.digest, &e))?;
            blobs.extend(
                std::iter::once(manifest.config)
                    .chain(manifest.layers)
                    .filter(|d| seen.insert(d.digest)),
            );
        }
        self.push_blobs(target, store, &blobs, sources, reporter)
            .await?;
        if media_types::is_index(&top.media_type) {
            for child in &children {
                self.put_manifest(
                    target,
                    &child.digest.to_string(),
                    &child.bytes,
                    &child.media_type,
                )
                .await?;
            }
        }
        let tag = target.reference.manifest_ref().to_string();
        self.put_manifest(target, &tag, &top.bytes, &top.media_type)
            .await?;
        Ok(top.digest)
    }

    /// Uploads `blobs`, skipping those the repository has, several at once.
    pub(crate) async fn push_blobs(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        blobs: &[Descriptor],
        sources: &[Reference],
        reporter: &dyn Reporter,
    ) -> Result<(), RegistryError> {
        let total_bytes = blobs.iter().map(|d| d.size).sum();
        let total = Arc::new(Mutex::new(Some(reporter.task(
            "total",
            Some(total_bytes),
            Unit::Bytes,
        ))));
        let results: Vec<&'static str> = futures::stream::iter(blobs.iter().map(|d| {
            let meter = Meter::new(
                reporter.task(&d.digest.hex()[..12], Some(d.size), Unit::Bytes),
                total.clone(),
            );
            self.push_blob(target, store, d, sources, meter)
        }))
        .buffer_unordered(self.options.push_concurrency.max(1))
        .try_collect()
        .await?;
        let uploaded = results.iter().filter(|how| **how == "pushed").count();
        let summary = format!(
            "{} blobs: {uploaded} uploaded, {} mounted, {} already present",
            blobs.len(),
            results.iter().filter(|how| **how == "mounted").count(),
            results
                .iter()
                .filter(|how| **how == "already exists")
                .count(),
        );
        if let Some(task) = total.lock().ok().and_then(|mut t| t.take()) {
            task.finish(&summary);
        }
        Ok(())
    }

    /// One blob: skipped when present, else mounted, else uploaded (fetched from a source
    /// first when the store lacks it); a transient failure restarts the upload (a registry's
    /// upload session does not survive a broken request).
    async fn push_blob(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        descriptor: &Descriptor,
        sources: &[Reference],
        meter: Arc<Meter>,
    ) -> Result<&'static str, RegistryError> {
        let digest = descriptor.digest;
        let url = format!("{}blobs/{digest}", self.repository_url(target.reference));
        let head = self.send(target, Method::HEAD, &url, None).await?;
        if head.status().is_success() {
            meter.finish(descriptor.size, "already exists");
            return Ok("already exists");
        }
        let mut candidates: Vec<Reference> = sources.to_vec();
        candidates.extend(locations::known(store, &digest));
        let mut tried = HashSet::new();
        for from in &candidates {
            if from.registry() != target.reference.registry()
                || from.repository() == target.reference.repository()
                || !tried.insert(from.repository().to_string())
            {
                continue;
            }
            let mounting = Target {
                reference: target.reference,
                access: Access::Push,
                mount_from: Some(from.repository()),
            };
            match self
                .start_upload(&mounting, &digest, Some(from.repository()))
                .await
            {
                Ok((response, _)) if response.status() == StatusCode::CREATED => {
                    locations::remember(store, &digest, target.reference);
                    meter.finish(descriptor.size, "mounted");
                    return Ok("mounted");
                }
                // 202: the registry opened an upload instead (it could not mount); the session
                // is left to expire.
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(%digest, from = %from, "push: mount refused: {err}");
                }
            }
        }
        if !store.has(&digest) {
            self.fetch_from_sources(store, descriptor, &candidates)
                .await?;
        }
        let mut attempt = 1;
        loop {
            match self
                .upload_blob(target, store, descriptor, None, &meter)
                .await
            {
                Ok(how) => {
                    locations::remember(store, &digest, target.reference);
                    meter.finish(descriptor.size, how);
                    return Ok(how);
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

    /// Brings a blob the store lacks into it from the first of `sources` that has it.
    async fn fetch_from_sources(
        &self,
        store: &BlobStore,
        descriptor: &Descriptor,
        sources: &[Reference],
    ) -> Result<(), RegistryError> {
        let digest = descriptor.digest;
        let mut last = None;
        for source in sources {
            match self.fetch_blob_into(source, descriptor, store).await {
                Ok(()) => return Ok(()),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| {
            RegistryError::Store(layers::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "blob {digest} of the image is not in the store at {}",
                    store.blob_path(&digest).display()
                ),
            )))
        }))
    }

    /// Starts an upload session (a mount when `from` is set: `201` means done); uploads in one
    /// `PUT`, or in chunks within the registry's `OCI-Chunk-Min-Length`/`OCI-Chunk-Max-Length`
    /// when the blob is large, falling back to one `PUT` when the registry refuses chunks.
    async fn upload_blob(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        descriptor: &Descriptor,
        from: Option<&str>,
        meter: &Arc<Meter>,
    ) -> Result<&'static str, RegistryError> {
        let digest = descriptor.digest;
        let (response, start) = self.start_upload(target, &digest, from).await?;
        if response.status() == StatusCode::CREATED {
            return Ok("mounted");
        }
        let (min_chunk, max_chunk) = (
            header_u64(&response, "oci-chunk-min-length"),
            header_u64(&response, "oci-chunk-max-length"),
        );
        let location = Self::location(target, &start, &response)?;
        let size = descriptor.size;
        if size <= MONOLITHIC_MAX && max_chunk.is_none_or(|max| size <= max) {
            self.put_whole(target, store, descriptor, &location, meter)
                .await?;
            return Ok("pushed");
        }
        let chunk = chunk_size(min_chunk, max_chunk);
        match self
            .put_chunked(target, store, descriptor, location, chunk, meter)
            .await
        {
            Err(RegistryError::Http {
                status: status @ (400 | 404 | 405 | 416 | 501),
                message,
                ..
            }) => {
                tracing::debug!(%digest, status, "push: chunked upload refused ({message}); one PUT instead");
                let (response, start) = self.start_upload(target, &digest, None).await?;
                let location = Self::location(target, &start, &response)?;
                self.put_whole(target, store, descriptor, &location, meter)
                    .await?;
                Ok("pushed")
            }
            Err(err) => Err(err),
            Ok(()) => Ok("pushed"),
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/` (with `?mount=…&from=…` to mount).
    async fn start_upload(
        &self,
        target: &Target<'_>,
        digest: &Digest,
        from: Option<&str>,
    ) -> Result<(Response, String), RegistryError> {
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
        Ok((response, start))
    }

    /// The whole blob in one `PUT …?digest=`.
    async fn put_whole(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        descriptor: &Descriptor,
        location: &url::Url,
        meter: &Arc<Meter>,
    ) -> Result<(), RegistryError> {
        let url = with_digest(location, &descriptor.digest);
        let path = store.blob_path(&descriptor.digest);
        let size = descriptor.size;
        let response = self
            .send_with(target, Method::PUT, url.as_str(), &|r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(file_body(path.clone(), 0, size, meter.clone()))
            })
            .await?;
        expect_status(target, &Method::PUT, url.as_str(), response).await?;
        Ok(())
    }

    /// `PATCH` chunks of `chunk` bytes, following each reply's `Location`, then the closing `PUT`.
    async fn put_chunked(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        descriptor: &Descriptor,
        mut location: url::Url,
        chunk: u64,
        meter: &Arc<Meter>,
    ) -> Result<(), RegistryError> {
        let digest = descriptor.digest;
        let path = store.blob_path(&digest);
        let size = descriptor.size;
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let end = offset + len - 1;
            let response = self
                .send_with(target, Method::PATCH, location.as_str(), &|r| {
                    r.header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, len)
                        .header("content-range", format!("{offset}-{end}"))
                        .body(file_body(path.clone(), offset, len, meter.clone()))
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
        Ok(())
    }

    /// [`Client::push_blob`] without progress bars: for the build cache's blobs.
    pub(crate) async fn push_blob_quietly(
        &self,
        target: &Target<'_>,
        store: &BlobStore,
        descriptor: &Descriptor,
        sources: &[Reference],
    ) -> Result<&'static str, RegistryError> {
        let meter = Meter::new(Task::silent(), Arc::new(Mutex::new(None)));
        self.push_blob(target, store, descriptor, sources, meter)
            .await
    }

    /// `PUT /v2/<repo>/manifests/<tag or digest>` with the stored bytes and their media type.
    pub(crate) async fn put_manifest(
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

/// Counts a blob's bytes as they are read for sending: its own bar and the total. Positions,
/// not increments, so a retried request does not count its bytes twice.
struct Meter {
    task: Mutex<Option<Task>>,
    total: Arc<Mutex<Option<Task>>>,
    counted: AtomicU64,
}

impl Meter {
    fn new(task: Task, total: Arc<Mutex<Option<Task>>>) -> Arc<Self> {
        Arc::new(Self {
            task: Mutex::new(Some(task)),
            total,
            counted: AtomicU64::new(0),
        })
    }

    /// The blob has been read up to `position`.
    fn reached(&self, position: u64) {
        let before = self.counted.fetch_max(position, Ordering::Relaxed);
        if position > before {
            let n = position - before;
            if let Some(task) = self
                .task
                .lock()
                .ok()
                .as_deref_mut()
                .and_then(Option::as_mut)
            {
                task.inc(n);
            }
            if let Some(total) = self
                .total
                .lock()
                .ok()
                .as_deref_mut()
                .and_then(Option::as_mut)
            {
                total.inc(n);
            }
        }
    }

    /// Done (uploaded, mounted or found): the whole blob counts toward the total.
    fn finish(&self, size: u64, how: &str) {
        self.reached(size);
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.finish(how);
        }
    }
}

/// `len` bytes of the file at `path` from `offset`, streamed: opened when the request is sent,
/// so a retried request reads the file afresh.
fn file_body(path: std::path::PathBuf, offset: u64, len: u64, meter: Arc<Meter>) -> reqwest::Body {
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
    let mut position = offset;
    let stream = futures::stream::once(opened)
        .try_flatten()
        .inspect_ok(move |chunk| {
            position += chunk.len() as u64;
            meter.reached(position);
        });
    reqwest::Body::wrap_stream(stream)
}

/// The Docker schema2 form of an OCI image manifest: the same blobs under Docker's media types.
fn to_docker_manifest(target: &Target<'_>, document: Document) -> Result<Document, RegistryError> {
    if document.media_type == media_types::DOCKER_MANIFEST {
        return Ok(document);
    }
    let unsupported = |message: String| RegistryError::Unsupported {
        reference: target.reference(),
        registry: target.registry(),
        message: format!("manifest {}: {message}", document.digest),
    };
    if document.media_type != media_types::OCI_MANIFEST {
        return Err(unsupported(format!(
            "{} has no Docker schema2 form",
            document.media_type
        )));
    }
    let mut manifest: Manifest = serde_json::from_slice(&document.bytes)
        .map_err(|e| invalid_local(target, &document.digest, &e))?;
    if manifest.config.media_type != media_types::OCI_CONFIG {
        return Err(unsupported(format!(
            "config type {} has no Docker schema2 form",
            manifest.config.media_type
        )));
    }
    manifest.config.media_type = media_types::DOCKER_CONFIG.to_string();
    for layer in &mut manifest.layers {
        layer.media_type = match layer.media_type.as_str() {
            media_types::OCI_LAYER_GZIP | media_types::DOCKER_LAYER_GZIP => {
                media_types::DOCKER_LAYER_GZIP.to_string()
            }
            media_types::OCI_LAYER | DOCKER_LAYER_TAR => DOCKER_LAYER_TAR.to_string(),
            other => {
                return Err(unsupported(format!(
                    "layer {} is {other}, which Docker schema2 cannot carry (build with --compression gzip)",
                    layer.digest
                )));
            }
        };
    }
    manifest.media_type = Some(media_types::DOCKER_MANIFEST.to_string());
    manifest.artifact_type = None;
    manifest.subject = None;
    manifest.annotations.clear();
    let bytes = crate::oci::canonical_json(&manifest);
    Ok(Document {
        digest: Digest::of(&bytes),
        bytes,
        media_type: media_types::DOCKER_MANIFEST.to_string(),
    })
}

/// A Docker manifest list for `index`, whose entries already point at schema2 manifests.
fn to_docker_list(target: &Target<'_>, index: &Index) -> Result<Document, RegistryError> {
    let mut list = index.clone();
    if let Some(entry) = list.manifests.iter().find(|m| m.platform.is_none()) {
        return Err(RegistryError::Unsupported {
            reference: target.reference(),
            registry: target.registry(),
            message: format!(
                "index entry {} has no platform, which a Docker manifest list needs",
                entry.digest
            ),
        });
    }
    for entry in &mut list.manifests {
        entry.annotations.clear();
        entry.artifact_type = None;
    }
    list.media_type = Some(media_types::DOCKER_MANIFEST_LIST.to_string());
    list.artifact_type = None;
    list.subject = None;
    list.annotations.clear();
    let bytes = crate::oci::canonical_json(&list);
    Ok(Document {
        digest: Digest::of(&bytes),
        bytes,
        media_type: media_types::DOCKER_MANIFEST_LIST.to_string(),
    })
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
