//! Pull: resolve the manifest (an index picks the platform), then fetch the config and every
//! missing layer into the blob store, streamed and verified, several at once.
use std::collections::HashSet;
use std::io::Write;

use bytes::Bytes;
use futures::StreamExt;
use layers::{BlobStore, Digest};
use reqwest::{Method, StatusCode};
use tokio_util::sync::CancellationToken;

use super::client::{Client, Target};
use super::error::RegistryError;
use crate::oci::reference::Reference;
use crate::oci::{self, Descriptor, Index, Manifest, Platform, SourceImage, media_types};
use report::{Reporter, Unit};

/// Manifests larger than this are refused (containerd's limit too).
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// What a registry states about a blob it has (`HEAD`): its size and digest, when it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobStat {
    pub size: Option<u64>,
    pub digest: Option<Digest>,
}

impl Client {
    /// Pulls `reference` for `platform` into `store` and returns the image. Blobs already in the
    /// store are not fetched again; layers are stored exactly as served. A reference pinned by
    /// digest whose blobs are all in the store needs no registry at all. The mirrors
    /// `registries.conf` gives for it are tried first, in order, then its location
    /// ([`super::mirrors`]); a mirror that fails is reported and the next one tried.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        store: &BlobStore,
        reporter: &dyn Reporter,
    ) -> Result<SourceImage, RegistryError> {
        if let Some(image) = pinned_in_store(reference, platform, store) {
            tracing::debug!(%reference, "registry: pinned image already in the store");
            return Ok(image);
        }
        let endpoints = self.registries_conf()?.endpoints(reference)?;
        let last = endpoints.len().saturating_sub(1);
        for (i, endpoint) in endpoints.iter().enumerate() {
            if endpoint.insecure {
                self.mark_insecure(endpoint.reference.api_host());
            }
            if endpoint.reference != *reference {
                tracing::debug!(%reference, from = %endpoint.reference, "registry: pulling through registries.conf");
            }
            match self
                .pull_from(&endpoint.reference, platform, store, reporter)
                .await
            {
                Ok(image) => return Ok(image),
                Err(err) if i < last => {
                    reporter.warning(&format!(
                        "{reference}: {} {} failed, trying the next: {err}",
                        if endpoint.mirror {
                            "mirror"
                        } else {
                            "location"
                        },
                        endpoint.reference
                    ));
                }
                Err(err) => return Err(err),
            }
        }
        Err(RegistryError::RegistriesConf(format!(
            "{reference}: no location to pull from"
        )))
    }

    /// [`Client::pull`] from one location.
    async fn pull_from(
        &self,
        reference: &Reference,
        platform: &Platform,
        store: &BlobStore,
        reporter: &dyn Reporter,
    ) -> Result<SourceImage, RegistryError> {
        let target = Target::pull(reference);
        let mut fetched = self.fetch_manifest(reference).await?;
        let from_index = media_types::is_index(&fetched.media_type);
        if from_index {
            let index: Index = serde_json::from_slice(&fetched.bytes)
                .map_err(|e| invalid(&target, "an index", &e.to_string()))?;
            store.put_bytes(&fetched.bytes)?;
            let chosen =
                oci::select_platform(&index, platform, &reference.to_string()).map_err(|_| {
                    RegistryError::PlatformNotFound {
                        reference: reference.to_string(),
                        registry: reference.registry().to_string(),
                        wanted: platform.to_string(),
                        available: oci::available_platforms(&index),
                    }
                })?;
            fetched = self
                .fetch_manifest(&reference.with_digest(&chosen.digest.to_string()))
                .await?;
        }
        if !media_types::is_manifest(&fetched.media_type) {
            return Err(invalid(
                &target,
                "a manifest",
                &format!("unsupported media type {:?}", fetched.media_type),
            ));
        }
        let manifest: Manifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| invalid(&target, "a manifest", &e.to_string()))?;
        store.put_bytes(&fetched.bytes)?;

        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !seen.insert(descriptor.digest) {
                continue;
            }
            if store.has(&descriptor.digest) {
                reporter.message(&format!(
                    "{}: already exists",
                    &descriptor.digest.hex()[..12]
                ));
            } else {
                missing.push(descriptor.clone());
            }
        }
        // On the first failure the other transfers stop, and `pull` returns only once every blob
        // writer has removed its partial file: nothing half-written outlives the error.
        let stop = CancellationToken::new();
        let mut fetches = futures::stream::iter(
            missing
                .iter()
                .map(|d| self.fetch_blob(&target, d, store, reporter, &stop)),
        )
        .buffer_unordered(self.options.concurrency.max(1));
        let mut first_error = None;
        while let Some(result) = fetches.next().await {
            if let Err(err) = result {
                stop.cancel();
                first_error.get_or_insert(err);
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        let image = SourceImage::from_store(store, &fetched.digest, &reference.to_string())?;
        if !from_index {
            warn_on_platform_mismatch(reference, &image, platform);
        }
        Ok(image)
    }

    /// The digest and media type of what `reference` names (an index or a manifest), from a
    /// `HEAD` request; `None` when the registry does not have it. Cheap: nothing is downloaded
    /// unless the registry leaves out `Docker-Content-Digest`.
    pub async fn resolve(
        &self,
        reference: &Reference,
    ) -> Result<Option<(Digest, String)>, RegistryError> {
        let response = self.request_manifest(reference, Method::HEAD).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let digest = header("docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        let media_type =
            header("content-type").map(|v| v.split(';').next().unwrap_or(&v).trim().to_string());
        match (digest, media_type) {
            (Some(digest), Some(media_type))
                if media_types::is_index(&media_type) || media_types::is_manifest(&media_type) =>
            {
                Ok(Some((digest, media_type)))
            }
            _ => match self.fetch_manifest(reference).await {
                Ok(fetched) => Ok(Some((fetched.digest, fetched.media_type))),
                Err(RegistryError::ManifestUnknown { .. }) => Ok(None),
                Err(err) => Err(err),
            },
        }
    }

    /// Fetches one blob of `reference`'s repository into `store` (streamed, verified).
    pub async fn fetch_blob_into(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        store: &BlobStore,
    ) -> Result<(), RegistryError> {
        let target = Target::pull(reference);
        let reporter = report::Quiet;
        self.fetch_blob(
            &target,
            descriptor,
            store,
            &reporter,
            &CancellationToken::new(),
        )
        .await
    }

    /// The size and digest the repository of `reference` states for the blob `digest`
    /// (`HEAD`), or `None` when it does not have it.
    pub async fn stat_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<BlobStat>, RegistryError> {
        let target = Target::pull(reference);
        let url = format!(
            "{}{}/blobs/{digest}",
            self.base_url(reference),
            reference.repository()
        );
        let response = self.send(&target, Method::HEAD, &url, None).await?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Some(BlobStat {
            size: header("content-length").and_then(|v| v.parse().ok()),
            digest: header("docker-content-digest").and_then(|v| v.parse().ok()),
        }))
    }

    /// Whether the repository of `reference` has the blob `digest` (`HEAD`; push skips those).
    pub async fn has_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let target = Target::pull(reference);
        let url = format!(
            "{}{}/blobs/{digest}",
            self.base_url(reference),
            reference.repository()
        );
        let response = self.send(&target, Method::HEAD, &url, None).await?;
        Ok(response.status().is_success())
    }

    /// `GET /v2/<repo>/manifests/<tag or digest>`, with every manifest type we read accepted.
    /// A manifest asked for by digest is verified against it. An answer cut off or stalled
    /// halfway is asked for again, as a failed request is.
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let mut attempt = 1;
        loop {
            match self.fetch_manifest_once(reference).await {
                Err(err) if err.is_transient() && attempt < self.options.max_attempts => {
                    tracing::debug!(%reference, attempt, "manifest: retrying: {err}");
                    self.backoff(attempt, None).await;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn fetch_manifest_once(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let target = Target::pull(reference);
        let response = self.request_manifest(reference, Method::GET).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::ManifestUnknown {
                reference: reference.to_string(),
                registry: reference.registry().to_string(),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        if response
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(invalid(&target, "a manifest", "larger than 4 MiB"));
        }
        let mut bytes = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| target.connect_error(&e))?);
            if bytes.len() > MAX_MANIFEST_BYTES {
                return Err(invalid(&target, "a manifest", "larger than 4 MiB"));
            }
        }
        let digest = Digest::of(&bytes);
        if let Some(pinned) = reference.digest()
            && pinned != digest.to_string()
        {
            let expected = pinned
                .parse::<Digest>()
                .map_err(|e| invalid(&target, "a manifest", &e.to_string()))?;
            return Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                registry: reference.registry().to_string(),
                expected,
                actual: digest,
            });
        }
        // The document's own mediaType wins over a generic Content-Type (some servers send
        // application/json or application/octet-stream).
        let media_type = oci::declared_media_type(&bytes)
            .or(content_type)
            .ok_or_else(|| invalid(&target, "a manifest", "no media type"))?;
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` or `GET /v2/<repo>/manifests/<tag or digest>`, every manifest type we read
    /// accepted.
    async fn request_manifest(
        &self,
        reference: &Reference,
        method: Method,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!(
            "{}{}/manifests/{}",
            self.base_url(reference),
            reference.repository(),
            reference.manifest_ref()
        );
        let target = Target::pull(reference);
        self.send(&target, method, &url, Some(media_types::MANIFEST_ACCEPT))
            .await
    }

    /// Fetches one blob into the store. Disk writes (and the final fsync) run on a blocking
    /// thread fed through a channel, so a multi-GB layer is never held in memory and never blocks
    /// the runtime. A transfer cut short resumes where it stopped (`Range`) when the registry
    /// allows it, else starts over.
    async fn fetch_blob(
        &self,
        target: &Target<'_>,
        descriptor: &Descriptor,
        store: &BlobStore,
        reporter: &dyn Reporter,
        stop: &CancellationToken,
    ) -> Result<(), RegistryError> {
        let digest = descriptor.digest;
        let expected_size = descriptor.size;
        let stopped =
            || RegistryError::Client(format!("blob {digest}: stopped after another blob failed"));
        if stop.is_cancelled() {
            return Err(stopped());
        }
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Chunk>(16);
        let writer_store = store.clone();
        let writer =
            tokio::task::spawn_blocking(move || -> Result<Option<(Digest, u64)>, layers::Error> {
                let mut blob = writer_store.writer()?;
                while let Some(chunk) = receiver.blocking_recv() {
                    match chunk {
                        Chunk::Data(bytes) => blob.write_all(&bytes)?,
                        Chunk::Restart => blob = writer_store.writer()?,
                        Chunk::Done => {
                            return blob.commit(Some((&digest, expected_size))).map(Some);
                        }
                    }
                }
                // The sender gave up: dropping the writer deletes the partial blob.
                Ok(None)
            });
        let mut task = reporter.task(&digest.hex()[..12], Some(expected_size), Unit::Bytes);
        let transferred = tokio::select! {
            result = self.transfer_blob(target, descriptor, &sender, &mut task) => result,
            () = stop.cancelled() => Err(stopped()),
        };
        if transferred.is_ok() {
            let _ = sender.send(Chunk::Done).await;
        }
        drop(sender);
        let written = writer
            .await
            .map_err(|e| RegistryError::Client(format!("blob writer for {digest}: {e}")))?;
        transferred?;
        match written {
            Ok(Some(_)) => {
                task.finish("pulled");
                Ok(())
            }
            Ok(None) => Err(RegistryError::Client(format!(
                "blob writer for {digest} stopped early"
            ))),
            Err(layers::Error::DigestMismatch { expected, actual }) => {
                Err(RegistryError::DigestMismatch {
                    reference: target.reference(),
                    registry: target.registry(),
                    expected,
                    actual,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Streams the blob's bytes into `sender`, exactly `descriptor.size` of them, retrying (and
    /// resuming) transient failures.
    async fn transfer_blob(
        &self,
        target: &Target<'_>,
        descriptor: &Descriptor,
        sender: &tokio::sync::mpsc::Sender<Chunk>,
        task: &mut report::Task,
    ) -> Result<(), RegistryError> {
        let reference = target.reference;
        let digest = descriptor.digest;
        let expected_size = descriptor.size;
        let url = format!(
            "{}{}/blobs/{digest}",
            self.base_url(reference),
            reference.repository()
        );
        let size_mismatch = |actual| RegistryError::SizeMismatch {
            reference: target.reference(),
            registry: target.registry(),
            digest,
            expected: expected_size,
            actual,
        };
        // The writer only fails on a local error (disk): it reports it itself.
        let writer_gone = || RegistryError::Client(format!("blob writer for {digest} stopped"));
        let mut received = 0u64;
        let mut attempt = 1;
        loop {
            let resume_from = received;
            let response = self
                .send_with(target, Method::GET, &url, &|request| {
                    if resume_from > 0 {
                        request.header(reqwest::header::RANGE, format!("bytes={resume_from}-"))
                    } else {
                        request
                    }
                })
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(RegistryError::BlobUnknown {
                    reference: target.reference(),
                    registry: target.registry(),
                    digest,
                });
            }
            if resume_from > 0 && response.status() != StatusCode::PARTIAL_CONTENT {
                // The registry ignored the range: start over.
                sender
                    .send(Chunk::Restart)
                    .await
                    .map_err(|_| writer_gone())?;
                received = 0;
            }
            let mut body = response.bytes_stream();
            let mut failure = None;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(chunk) => {
                        received += chunk.len() as u64;
                        if received > expected_size {
                            return Err(size_mismatch(received));
                        }
                        task.inc(chunk.len() as u64);
                        sender
                            .send(Chunk::Data(chunk))
                            .await
                            .map_err(|_| writer_gone())?;
                    }
                    Err(err) => {
                        failure = Some(target.connect_error(&err));
                        break;
                    }
                }
            }
            match failure {
                None if received == expected_size => return Ok(()),
                None => return Err(size_mismatch(received)),
                Some(err) if err.is_transient() && attempt < self.options.max_attempts => {
                    tracing::debug!(%digest, received, %err, "registry: blob transfer cut, resuming");
                    tokio::time::sleep(self.options.backoff * 2u32.saturating_pow(attempt - 1))
                        .await;
                    attempt += 1;
                }
                Some(err) => return Err(err),
            }
        }
    }
}

/// The image, read from the store alone, when `reference` is pinned by digest and every blob it
/// needs is there.
fn pinned_in_store(
    reference: &Reference,
    platform: &Platform,
    store: &BlobStore,
) -> Option<SourceImage> {
    let digest: Digest = reference.digest()?.parse().ok()?;
    if !store.has(&digest) {
        return None;
    }
    let root = Descriptor::new(media_types::OCI_MANIFEST, digest, 0);
    let image = oci::resolve_in_store(store, &root, platform, &reference.to_string()).ok()?;
    image
        .layers
        .iter()
        .all(|l| store.has(&l.digest))
        .then_some(image)
}

/// Docker warns when a single-platform image is not for the platform asked for; so do we.
fn warn_on_platform_mismatch(reference: &Reference, image: &SourceImage, platform: &Platform) {
    let actual = image.config.platform();
    if !actual.matches(platform) {
        tracing::warn!(
            "the image {reference} is for {actual}, which does not match the requested platform {platform}"
        );
    }
}

enum Chunk {
    Data(Bytes),
    /// Discard what was written: the transfer starts over.
    Restart,
    Done,
}

fn invalid(target: &Target<'_>, what: &'static str, message: &str) -> RegistryError {
    RegistryError::InvalidResponse {
        reference: target.reference(),
        registry: target.registry(),
        what,
        message: message.to_string(),
    }
}
