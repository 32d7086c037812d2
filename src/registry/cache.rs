//! The registry-backed build cache (`cog build --cache-to/--cache-from`): an OCI artifact
//! that maps layer content keys (by [`layers::key_id`], never their text) to the layers'
//! descriptors, carries the resolved locks, and references the layer blobs themselves, so
//! that the registry keeps them and dedups them with the images that use them.
//!
//! Concurrency: each writer puts its own tag, `<tag>--<writer>`, holding everything it read
//! plus what it built; readers merge `<tag>` and every `<tag>--*`. Two runners writing at once
//! therefore never lose each other's entries. A writer then deletes the writer tags it read
//! whose entries its own tag now holds (where the registry allows deletes), so the tags stay
//! about as many as the writers that ran at once.
//!
//! Trust: every entry read is checked against the registry (`HEAD` of its blob: present, with
//! the entry's size and digest); one that does not match is rejected, and its layer is built.
use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use layers::{BlobStore, Digest, KEY_META_MEDIA_TYPE, KeyEntry, LayerInfo};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::client::{Access, Client, Target};
use super::error::RegistryError;
use crate::oci::reference::Reference;
use crate::oci::{Descriptor, Manifest, canonical_json, media_types};

/// The cache manifest's `artifactType`.
pub const CACHE_ARTIFACT_TYPE: &str = "application/vnd.cog-rs.build-cache.v1";
/// The media type of the cache's config blob (a [`CacheConfig`]).
pub const CACHE_CONFIG_TYPE: &str = "application/vnd.cog-rs.build-cache.config.v1+json";
/// The format of [`CacheConfig`]; a cache of another version is a miss, never read.
pub const CACHE_FORMAT_VERSION: u32 = 1;
/// Annotation naming the writer (so that two writers' manifests never share a digest).
const WRITER_ANNOTATION: &str = "run.cog.cache.writer";
/// Config blobs larger than this are refused.
const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// The cache's config blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheConfig {
    pub version: u32,
    /// Key id (sha256 of the content key) -> the layer it produced (and its metadata blob).
    pub entries: BTreeMap<String, KeyEntry>,
    /// Lock file name -> contents, as the writers resolved them.
    #[serde(default)]
    pub locks: BTreeMap<String, String>,
}

/// An entry that failed verification.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub key_id: String,
    pub entry: KeyEntry,
    pub reason: String,
}

/// What `--cache-from` read from one reference.
#[derive(Debug, Clone)]
pub struct LoadedCache {
    pub reference: Reference,
    /// Verified entries (all entries when not verified).
    pub entries: BTreeMap<String, KeyEntry>,
    pub locks: BTreeMap<String, String>,
    pub rejected: Vec<Rejected>,
    /// The tags read: tag, manifest digest, its entries' ids.
    tags: Vec<(String, Digest, BTreeSet<String>)>,
}

impl LoadedCache {
    fn empty(reference: &Reference) -> Self {
        Self {
            reference: reference.clone(),
            entries: BTreeMap::new(),
            locks: BTreeMap::new(),
            rejected: Vec::new(),
            tags: Vec::new(),
        }
    }
}

fn base_tag(reference: &Reference) -> &str {
    reference.tag().unwrap_or("latest")
}

impl Client {
    /// Every tag of `reference`'s repository (`GET /v2/<name>/tags/list`, following `Link`);
    /// empty when the repository does not exist.
    pub async fn list_tags(&self, reference: &Reference) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let target = Target::pull(reference);
        let base = self.base_url(reference);
        let mut url = format!("{base}{}/tags/list?n=1000", reference.repository());
        let mut tags = Vec::new();
        loop {
            let response = self.send(&target, Method::GET, &url, None).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            let next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once('<'))
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(link, _)| link.to_string());
            let page: Tags = response
                .json()
                .await
                .map_err(|e| invalid(&target, &super::client::describe(&e)))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(link) => {
                    url = url::Url::parse(&url)
                        .and_then(|u| u.join(&link))
                        .map_err(|e| invalid(&target, &format!("Link {link:?}: {e}")))?
                        .to_string();
                }
                None => return Ok(tags),
            }
        }
    }

    /// Reads the cache at `reference` (its tag and every writer tag `<tag>--*`), merged; with
    /// `verify`, each entry's blob is checked in the registry and mismatches are rejected.
    pub async fn load_cache(
        &self,
        reference: &Reference,
        verify: bool,
    ) -> Result<LoadedCache, RegistryError> {
        let mut loaded = LoadedCache::empty(reference);
        let tags: Vec<String> = if reference.digest().is_some() {
            vec![reference.manifest_ref().to_string()]
        } else {
            let tag = base_tag(reference);
            let prefix = format!("{tag}--");
            let mut tags: Vec<String> = self
                .list_tags(reference)
                .await?
                .into_iter()
                .filter(|t| t == tag || t.starts_with(&prefix))
                .collect();
            tags.sort();
            tags
        };
        for tag in tags {
            let tagged = if reference.digest().is_some() {
                reference.clone()
            } else {
                reference.with_tag(&tag)
            };
            let Some((digest, config)) = self.read_cache_manifest(&tagged).await? else {
                continue;
            };
            let ids = config.entries.keys().cloned().collect();
            for (id, layer) in config.entries {
                loaded.entries.entry(id).or_insert(layer);
            }
            for (name, lock) in config.locks {
                loaded.locks.entry(name).or_insert(lock);
            }
            loaded.tags.push((tag, digest, ids));
        }
        if verify {
            self.verify_entries(&mut loaded).await?;
        }
        Ok(loaded)
    }

    /// One cache manifest and its config; `None` (with a note in the log) when the tag holds
    /// something else or another version of the format.
    async fn read_cache_manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<(Digest, CacheConfig)>, RegistryError> {
        let target = Target::pull(reference);
        let fetched = match self.fetch_manifest(reference).await {
            Ok(fetched) => fetched,
            // Deleted by another writer's compaction between the listing and now.
            Err(RegistryError::ManifestUnknown { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&fetched.bytes) else {
            tracing::warn!("build cache {reference}: not an image manifest; ignored");
            return Ok(None);
        };
        if manifest.config.media_type != CACHE_CONFIG_TYPE {
            tracing::warn!(
                "build cache {reference}: config type {} is not a cog-rs build cache ({CACHE_CONFIG_TYPE}); ignored",
                manifest.config.media_type
            );
            return Ok(None);
        }
        if manifest.config.size > MAX_CONFIG_BYTES {
            return Err(invalid(&target, "the cache config is larger than 64 MiB"));
        }
        let url = format!(
            "{}{}/blobs/{}",
            self.base_url(reference),
            reference.repository(),
            manifest.config.digest
        );
        let response = self.send(&target, Method::GET, &url, None).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::BlobUnknown {
                reference: reference.to_string(),
                registry: reference.registry().to_string(),
                digest: manifest.config.digest,
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| target.connect_error(&e))?;
        let actual = Digest::of(&bytes);
        if actual != manifest.config.digest {
            return Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                registry: reference.registry().to_string(),
                expected: manifest.config.digest,
                actual,
            });
        }
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let version = serde_json::from_slice::<Versioned>(&bytes)
            .map_err(|e| invalid(&target, &format!("cache config: {e}")))?
            .version;
        if version != CACHE_FORMAT_VERSION {
            tracing::info!(
                "build cache {reference}: format version {version}, not {CACHE_FORMAT_VERSION}; not read (a miss)"
            );
            return Ok(None);
        }
        let config: CacheConfig = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&target, &format!("cache config: {e}")))?;
        Ok(Some((fetched.digest, config)))
    }

    /// Checks every entry's blobs (`HEAD`, several at once): present, of the entry's size and
    /// digest. Mismatches move to `rejected`.
    async fn verify_entries(&self, loaded: &mut LoadedCache) -> Result<(), RegistryError> {
        let reference = loaded.reference.clone();
        let blobs: BTreeSet<Digest> = loaded
            .entries
            .values()
            .flat_map(|e| std::iter::once(e.layer.digest).chain(e.meta.map(|m| m.digest)))
            .collect();
        let stats: Vec<(Digest, Option<(Option<u64>, Option<Digest>)>)> =
            futures::stream::iter(blobs.into_iter().map(|digest| {
                let reference = &reference;
                async move { Ok((digest, self.stat_blob(reference, &digest).await?)) }
            }))
            .buffer_unordered(16)
            .collect::<Vec<Result<_, RegistryError>>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let stats: BTreeMap<Digest, Option<(Option<u64>, Option<Digest>)>> =
            stats.into_iter().collect();
        let repository = format!("{}/{}", reference.registry(), reference.repository());
        let check = |digest: Digest, expected: u64| match stats.get(&digest).copied().flatten() {
            None => Some(format!("blob {digest} is not in {repository}")),
            Some((Some(size), _)) if size != expected => Some(format!(
                "blob {digest} is {size} bytes in {repository}, the entry says {expected}"
            )),
            Some((_, Some(served))) if served != digest => {
                Some(format!("{repository} serves {served} for blob {digest}"))
            }
            Some(_) => None,
        };
        loaded.entries.retain(|id, entry| {
            let reason = check(entry.layer.digest, entry.layer.size)
                .or_else(|| entry.meta.and_then(|m| check(m.digest, m.size)));
            match reason {
                Some(reason) => {
                    loaded.rejected.push(Rejected {
                        key_id: id.clone(),
                        entry: entry.clone(),
                        reason,
                    });
                    false
                }
                None => true,
            }
        });
        Ok(())
    }

    /// Writes the cache at `reference`: what is there now, merged with `entries` and `locks`,
    /// under this writer's own tag; blobs are mounted from `sources` (or uploaded from the
    /// store). Entries whose blob can be neither mounted nor uploaded are left out (logged).
    /// Returns the manifest digest and the number of entries written.
    pub async fn save_cache(
        &self,
        store: &BlobStore,
        reference: &Reference,
        entries: &BTreeMap<String, KeyEntry>,
        locks: &BTreeMap<String, String>,
        sources: &[Reference],
    ) -> Result<(Digest, usize), RegistryError> {
        let target = Target {
            reference,
            access: Access::Push,
            mount_from: None,
        };
        if reference.digest().is_some() {
            return Err(RegistryError::Unsupported {
                reference: reference.to_string(),
                registry: reference.registry().to_string(),
                message: "--cache-to needs a tag, not a digest".to_string(),
            });
        }
        let existing = self.load_cache(reference, false).await?;
        let mut config = CacheConfig {
            version: CACHE_FORMAT_VERSION,
            entries: existing.entries.clone(),
            locks: existing.locks.clone(),
        };
        config.entries.extend(entries.clone());
        config.locks.extend(locks.clone());

        let blobs: BTreeMap<Digest, LayerInfo> = config
            .entries
            .values()
            .flat_map(|e| {
                let meta = e.meta.map(|m| LayerInfo {
                    digest: m.digest,
                    size: m.size,
                    diff_id: m.digest,
                    media_type: KEY_META_MEDIA_TYPE.to_string(),
                });
                std::iter::once(e.layer.clone()).chain(meta)
            })
            .map(|l| (l.digest, l))
            .collect();
        let results: Vec<(Digest, Result<&'static str, RegistryError>)> =
            futures::stream::iter(blobs.values().map(|layer| {
                let target = &target;
                async move {
                    let descriptor = Descriptor::new(&layer.media_type, layer.digest, layer.size);
                    let pushed = self
                        .push_blob_quietly(target, store, &descriptor, sources)
                        .await;
                    (layer.digest, pushed)
                }
            }))
            .buffer_unordered(self.options.push_concurrency.max(1))
            .collect()
            .await;
        let mut missing = BTreeSet::new();
        for (digest, result) in results {
            if let Err(err) = result {
                tracing::warn!("build cache {reference}: leaving out layer {digest}: {err}");
                missing.insert(digest);
            }
        }
        config.entries.retain(|_, entry| {
            !missing.contains(&entry.layer.digest)
                && entry.meta.is_none_or(|m| !missing.contains(&m.digest))
        });

        let config_bytes = canonical_json(&config);
        let (config_digest, config_size) = store.put_bytes(&config_bytes)?;
        let config_descriptor = Descriptor::new(CACHE_CONFIG_TYPE, config_digest, config_size);
        self.push_blob_quietly(&target, store, &config_descriptor, &[])
            .await?;
        let layers: Vec<Descriptor> = blobs
            .values()
            .filter(|l| !missing.contains(&l.digest))
            .map(|l| Descriptor::new(&l.media_type, l.digest, l.size))
            .collect();
        let writer = writer_id();
        let mut manifest = Manifest::oci(config_descriptor, layers);
        manifest.artifact_type = Some(CACHE_ARTIFACT_TYPE.to_string());
        manifest
            .annotations
            .insert(WRITER_ANNOTATION.to_string(), writer.clone());
        let bytes = canonical_json(&manifest);
        let digest = Digest::of(&bytes);
        let own_tag = format!("{}--{writer}", base_tag(reference));
        self.put_manifest(&target, &own_tag, &bytes, media_types::OCI_MANIFEST)
            .await?;

        // Compaction: writer tags this one now holds entirely.
        let written: BTreeSet<&String> = config.entries.keys().collect();
        for (tag, tag_digest, ids) in &existing.tags {
            if tag == base_tag(reference) || !ids.iter().all(|id| written.contains(id)) {
                continue;
            }
            let url = format!(
                "{}{}/manifests/{tag_digest}",
                self.base_url(reference),
                reference.repository()
            );
            match self.send(&target, Method::DELETE, &url, None).await {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!("build cache {reference}: merged and deleted tag {tag}");
                }
                Ok(response) => tracing::debug!(
                    "build cache {reference}: cannot delete tag {tag}: {}",
                    response.status()
                ),
                Err(err) => tracing::debug!("build cache {reference}: cannot delete {tag}: {err}"),
            }
        }
        Ok((digest, config.entries.len()))
    }
}

/// A writer id: unique per run (process id, time), 12 hex digits.
fn writer_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!(
        "{} {} {:?}",
        std::process::id(),
        now.as_nanos(),
        std::thread::current().id()
    );
    Digest::of(seed.as_bytes()).hex()[..12].to_string()
}

fn invalid(target: &Target<'_>, message: &str) -> RegistryError {
    RegistryError::InvalidResponse {
        reference: target.reference(),
        registry: target.registry(),
        what: "a build cache",
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writer_ids_differ_and_make_valid_tags() {
        let (a, b) = (writer_id(), writer_id());
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()) && a.len() == 12);
    }

    #[test]
    fn the_config_round_trips_and_is_versioned() {
        let layer = LayerInfo {
            digest: Digest::of(b"blob"),
            size: 4,
            diff_id: Digest::of(b"tar"),
            media_type: layers::MEDIA_TYPE_TAR_GZIP.to_string(),
        };
        let config = CacheConfig {
            version: CACHE_FORMAT_VERSION,
            entries: BTreeMap::from([(layers::key_id("k"), KeyEntry { layer, meta: None })]),
            locks: BTreeMap::from([("cog-requirements.lock.json".into(), "{}".into())]),
        };
        let bytes = canonical_json(&config);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"version\":1,"), "{text}");
        assert_eq!(
            serde_json::from_slice::<CacheConfig>(&bytes).unwrap(),
            config
        );
    }
}
