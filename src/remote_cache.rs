//! `--cache-from` / `--cache-to`: the registry-backed build cache around a build (the format
//! and the registry side are in `registry::cache`). Before the build, the caches named by
//! `--cache-from` are read and verified, and their entries become the store's remote keys
//! (`layers::KeyOverlay`): a layer they hold is not built. Its blob is downloaded only when
//! something needs its bytes (a local image, `--output`, a build command above it, a push to
//! another registry); a push to the cache's registry mounts it instead. After the build (and
//! the push), `--cache-to` writes every key the build used.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use layers::{BlobStore, LayerInfo};

use crate::oci::Descriptor;
use crate::registry::{Client, Reference};
use crate::session::Session;

/// Lock files carried in the cache, keyed by the project's cog.yaml.
const LOCK_FILES: [&str; 3] = [
    wheels::lock::LOCK_FILE_NAME,
    debian::LOCK_FILE_NAME,
    crate::resolve::BASE_LOCK_FILE,
];

/// The caches a build reads and writes.
#[derive(Debug, Clone, Default)]
pub struct RemoteCache {
    pub from: Vec<Reference>,
    pub to: Vec<Reference>,
}

impl RemoteCache {
    /// Parses `--cache-from` and `--cache-to` references.
    pub fn parse(from: &[String], to: &[String]) -> Result<Self> {
        let parse = |flag: &str, refs: &[String]| -> Result<Vec<Reference>> {
            refs.iter()
                .filter(|r| !r.is_empty())
                .map(|r| {
                    if r.starts_with("type=") || r.contains(",ref=") || r.contains(",mode=") {
                        bail!(
                            "{flag} {r}: cog takes an image reference (REF, e.g. ghcr.io/me/cache:main), not BuildKit's type=...,ref=... options; only registry caches are supported"
                        );
                    }
                    Reference::parse(r)
                        .with_context(|| format!("{flag} {r}: not a valid image reference"))
                })
                .collect()
        };
        let cache = Self {
            from: parse("--cache-from", from)?,
            to: parse("--cache-to", to)?,
        };
        if let Some(pinned) = cache.to.iter().find(|r| r.digest().is_some()) {
            bail!(
                "--cache-to {pinned}: a cache is written under a tag, not a digest (name it REPOSITORY:TAG)"
            );
        }
        Ok(cache)
    }

    pub fn is_empty(&self) -> bool {
        self.from.is_empty() && self.to.is_empty()
    }

    /// Every repository the cache's blobs are in (mount sources for a push).
    pub fn repositories(&self) -> Vec<Reference> {
        self.from.iter().chain(&self.to).cloned().collect()
    }

    /// Whether a push to `target` can mount every remote layer instead of downloading it.
    pub fn mountable_into(&self, target: &Reference) -> bool {
        self.from.iter().all(|r| r.registry() == target.registry())
    }

    /// Reads and verifies the `--cache-from` caches into the store's remote keys; with
    /// `write_locks` (a build that may write lock files: not `--locked`, `--frozen` or
    /// `--upgrade`), writes lock files they carry for this project when the project has none.
    /// `fetch`: download a remote layer's blob when it is used (else it stays in the registry,
    /// to be mounted).
    pub fn load(
        &self,
        session: &Session,
        project_dir: &Path,
        config_file: &Path,
        fetch: bool,
        write_locks: bool,
    ) {
        let overlay = session.store.key_overlay();
        let project = project_key(config_file).filter(|_| write_locks);
        for reference in &self.from {
            match session.block_on(session.registry.load_cache(reference, true)) {
                Ok(loaded) => {
                    for rejected in &loaded.rejected {
                        session.reporter.warning(&format!(
                            "build cache {reference}: rejected the entry for layer {}: {}; it will be built",
                            rejected.entry.layer.digest, rejected.reason
                        ));
                    }
                    session.reporter.message(&format!(
                        "build cache {reference}: {} entries ({} rejected)",
                        loaded.entries.len(),
                        loaded.rejected.len()
                    ));
                    overlay.add_remote(loaded.entries);
                    if let Some(project) = &project {
                        restore_locks(session, project_dir, project, &loaded.locks);
                    }
                }
                // A cache that cannot be read is a miss, never a failed build.
                Err(err) => session.reporter.warning(&format!(
                    "build cache {reference} not read: {}",
                    error_chain(&err)
                )),
            }
        }
        // Metadata blobs (small) are always fetched when used; layers only when asked.
        overlay.set_fetcher(Some(fetcher(session, self.from.clone())), fetch);
    }

    /// Writes every key this build used to each `--cache-to` cache; `sources`: where its blobs
    /// can be mounted from (the pushed image's repository, the base's).
    pub fn save(
        &self,
        session: &Session,
        config_file: &Path,
        project_dir: &Path,
        sources: &[Reference],
    ) -> Result<()> {
        if self.to.is_empty() {
            return Ok(());
        }
        let entries = session.store.key_overlay().journal();
        let mut locks = BTreeMap::new();
        if let Some(project) = project_key(config_file) {
            for name in LOCK_FILES {
                if let Ok(text) = fs_err::read_to_string(project_dir.join(name)) {
                    locks.insert(format!("{project}/{name}"), text);
                }
            }
        }
        let mut all_sources: Vec<Reference> = sources.to_vec();
        all_sources.extend(self.repositories());
        for reference in &self.to {
            let (digest, count) = session
                .block_on(session.registry.save_cache(
                    &session.store,
                    reference,
                    &entries,
                    &locks,
                    &all_sources,
                ))
                .with_context(|| format!("writing the build cache {reference}"))?;
            session.reporter.message(&format!(
                "build cache {reference}: wrote {count} entries ({digest})"
            ));
        }
        Ok(())
    }
}

/// The cog.yaml's content hash: locks are shared only between checkouts of the same config.
fn project_key(config_file: &Path) -> Option<String> {
    let text = fs_err::read(config_file).ok()?;
    Some(layers::Digest::of(&text).hex()[..16].to_string())
}

/// Writes the cache's lock files for this project where the project has none (the resolve
/// stage then checks them against cog.yaml and the requirements as it checks any lock).
fn restore_locks(
    session: &Session,
    project_dir: &Path,
    project: &str,
    locks: &BTreeMap<String, String>,
) {
    for name in LOCK_FILES {
        let Some(text) = locks.get(&format!("{project}/{name}")) else {
            continue;
        };
        let path = project_dir.join(name);
        if path.exists() {
            continue;
        }
        let written = tempfile::NamedTempFile::new_in(project_dir).and_then(|mut temp| {
            std::io::Write::write_all(&mut temp, text.as_bytes())?;
            temp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        });
        match written {
            Ok(()) => session
                .reporter
                .message(&format!("{name}: taken from the build cache")),
            Err(err) => session
                .reporter
                .warning(&format!("{name}: cannot write the cached lock: {err}")),
        }
    }
}

/// Downloads a remote layer's blob (from the first cache that has it) when the store needs it.
/// Runs the download on a thread of its own: it is called from build threads and from inside
/// other runtimes (the wheel installer's).
fn fetcher(session: &Session, from: Vec<Reference>) -> layers::BlobFetcher {
    let client: Client = session.registry.clone();
    let handle = session.handle().clone();
    let store: BlobStore = session.store.clone();
    Arc::new(move |layer: &LayerInfo| {
        let (client, handle, store, from) =
            (client.clone(), handle.clone(), store.clone(), from.clone());
        let layer = layer.clone();
        std::thread::spawn(move || {
            let descriptor = Descriptor::new(&layer.media_type, layer.digest, layer.size);
            let mut last = String::from("no --cache-from");
            for reference in &from {
                match handle.block_on(client.fetch_blob_into(reference, &descriptor, &store)) {
                    Ok(()) => return Ok(()),
                    Err(err) => last = error_chain(&err),
                }
            }
            Err(last)
        })
        .join()
        .unwrap_or_else(|_| Err("the download thread panicked".to_string()))
    })
}

/// An error and its causes, joined by `: ` (as the CLI prints them).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn strings(refs: &[&str]) -> Vec<String> {
        refs.iter().map(|r| (*r).to_string()).collect()
    }

    #[test]
    fn references_parse_and_unsupported_forms_name_their_flag() {
        let cache = RemoteCache::parse(
            &strings(&["127.0.0.1:5000/cache:main", ""]),
            &strings(&["ghcr.io/me/cache:main"]),
        )
        .unwrap();
        assert_eq!(cache.from.len(), 1);
        assert_eq!(cache.repositories().len(), 2);
        let target = Reference::parse("127.0.0.1:5000/model:v1").unwrap();
        assert!(cache.mountable_into(&target));
        assert!(
            !RemoteCache::parse(&strings(&["ghcr.io/me/cache:main"]), &[])
                .unwrap()
                .mountable_into(&target)
        );

        let err = RemoteCache::parse(&strings(&["type=registry,ref=ghcr.io/me/c"]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--cache-from type=registry"), "{err}");
        let digest = format!("ghcr.io/me/cache@sha256:{}", "a".repeat(64));
        let err = RemoteCache::parse(&[], &[digest]).unwrap_err().to_string();
        assert!(
            err.starts_with("--cache-to ") && err.contains("tag"),
            "{err}"
        );
        let err = RemoteCache::parse(&[], &strings(&["Not A Ref"]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--cache-to Not A Ref"), "{err}");
    }
}
