//! `cog weights pull [NAME...]`: every file `weights.lock` lists that the local store lacks is
//! fetched from `<model>/weights/<name>@<digest>`. The manifest (fetched by the lock's digest)
//! and its config blob must be exactly what the lock describes before any layer is fetched;
//! each layer is verified against its digest, and each file against the lock's digest as it
//! is written: a lock or a registry that lies stores nothing.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::lock::{LockEntry, WeightsLock};
use super::store::FileStore;
use super::{WeightsError, artifact, format_size, lock_path, model_repository, weight_reference};
use crate::config::Config;
use crate::oci::{Descriptor, media_types};
use crate::session::Session;

/// The lock, required: pull and run need what import recorded.
pub fn required_lock(project_dir: &Path) -> Result<WeightsLock, WeightsError> {
    let path = lock_path(project_dir);
    WeightsLock::load(&path)?.ok_or_else(|| {
        WeightsError::Usage(format!(
            "{} not found: run 'cog weights import' first",
            path.display()
        ))
    })
}

/// The lock's entries `names` picks (all when empty); every unknown name is listed.
pub fn entries<'a>(
    lock: &'a WeightsLock,
    names: &[String],
) -> Result<Vec<&'a LockEntry>, WeightsError> {
    let missing: Vec<String> = names
        .iter()
        .filter(|n| lock.find(n).is_none())
        .map(|n| crate::go::quote(n))
        .collect();
    if !missing.is_empty() {
        return Err(WeightsError::Usage(format!(
            "weight(s) not found in weights.lock: {}",
            missing.join(", ")
        )));
    }
    Ok(lock
        .weights
        .iter()
        .filter(|e| names.is_empty() || names.contains(&e.name))
        .collect())
}

/// Files of `entry` missing from the store.
pub fn missing<'a>(entry: &'a LockEntry, files: &FileStore) -> Vec<&'a super::lock::LockFile> {
    entry
        .files
        .iter()
        .filter(|f| !files.has(&f.digest))
        .collect()
}

pub fn pull(
    session: &Session,
    project_dir: &Path,
    config: &Config,
    config_file: &str,
    names: &[String],
    verbose: bool,
) -> Result<(), WeightsError> {
    let lock = required_lock(project_dir)?;
    let selected = entries(&lock, names)?;
    let files = FileStore::under(session.store.root());
    let reporter = session.reporter();
    if verbose {
        reporter.message(&format!("Cache: {}", files.root().display()));
        reporter.message(&format!("Lockfile: {}", lock_path(project_dir).display()));
    }
    let mut pulled = 0;
    let mut repository = None;
    for entry in &selected {
        let lacking = missing(entry, &files);
        if lacking.is_empty() {
            reporter.message(&format!(
                "  {}: cached ({}/{} files)",
                entry.name,
                entry.files.len(),
                entry.files.len()
            ));
            continue;
        }
        if repository.is_none() {
            repository = Some(model_repository(config, config_file)?);
        }
        let repository = repository.as_deref().unwrap_or_default();
        reporter.message(&format!(
            "Pulling {} ({} missing / {} total files)...",
            entry.name,
            lacking.len(),
            entry.files.len()
        ));
        pull_entry(session, repository, entry, &files, verbose)?;
        reporter.message(&format!(
            "  {}: done ({})",
            entry.name,
            format_size(entry.size)
        ));
        pulled += 1;
    }
    if pulled == 0 {
        reporter.message(&format!("All {} weight(s) already cached", selected.len()));
    } else {
        reporter.message(&format!("Pulled {pulled} weight(s)"));
    }
    Ok(())
}

fn pull_entry(
    session: &Session,
    repository: &str,
    entry: &LockEntry,
    files: &FileStore,
    verbose: bool,
) -> Result<(), WeightsError> {
    let reference = weight_reference(repository, &entry.name, &entry.digest)?;
    let fetched = session.block_on(session.registry.fetch_manifest(&reference))?;
    let manifest = artifact::check_manifest(entry, &fetched.bytes, None)?;
    let config = fetch_blob(session, &reference, &manifest.config)?;
    artifact::check_manifest(entry, &fetched.bytes, Some(&config))?;
    // The manifest is the lock's: keep it where `cog push` finds it.
    session.store.put_bytes(&config)?;
    session.store.put_bytes(&fetched.bytes)?;
    let wanted: BTreeMap<&str, &super::lock::LockFile> =
        entry.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for layer in &manifest.layers {
        let digest = layer.digest.to_string();
        let needed = entry
            .files
            .iter()
            .any(|f| f.layer == digest && !files.has(&f.digest));
        if !needed {
            continue;
        }
        if verbose {
            session.reporter().message(&format!(
                "  layer {} ({})",
                &layer.digest.hex()[..12],
                format_size(layer.size)
            ));
        }
        if !session.store.has(&layer.digest) {
            session.block_on(session.registry.fetch_blob_into(
                &reference,
                layer,
                &session.store,
            ))?;
        }
        let blob = session.store.open_blob(&layer.digest)?;
        unpack(entry, layer, blob, &wanted, files)?;
        // Its files are in the file store: the layer need not stay in the build cache too.
        session.store.remove(&layer.digest)?;
    }
    let still = missing(entry, files);
    if let Some(file) = still.first() {
        return Err(WeightsError::Mismatch {
            what: format!("weight {:?}", entry.name),
            expected: format!("{} in its layers", file.path),
            actual: "no such file".to_string(),
        });
    }
    Ok(())
}

fn fetch_blob(
    session: &Session,
    reference: &crate::oci::Reference,
    descriptor: &Descriptor,
) -> Result<Vec<u8>, WeightsError> {
    if !session.store.has(&descriptor.digest) {
        session.block_on(session.registry.fetch_blob_into(
            reference,
            descriptor,
            &session.store,
        ))?;
    }
    Ok(fs_err::read(session.store.blob_path(&descriptor.digest))?)
}

/// Extracts the files of one layer into the store, each checked against the lock.
fn unpack(
    entry: &LockEntry,
    layer: &Descriptor,
    blob: impl Read,
    wanted: &BTreeMap<&str, &super::lock::LockFile>,
    files: &FileStore,
) -> Result<(), WeightsError> {
    let reader: Box<dyn Read> = match layer.media_type.as_str() {
        media_types::OCI_LAYER => Box::new(blob),
        media_types::OCI_LAYER_GZIP => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        media_types::OCI_LAYER_ZSTD => Box::new(zstd::stream::read::Decoder::new(blob)?),
        other => {
            return Err(WeightsError::Mismatch {
                what: format!("weight {:?} layer {}", entry.name, layer.digest),
                expected: "a tar, tar+gzip or tar+zstd layer".to_string(),
                actual: other.to_string(),
            });
        }
    };
    let digest = layer.digest.to_string();
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, reader));
    for item in archive.entries()? {
        let mut item = item?;
        let kind = item.header().entry_type();
        let path = String::from_utf8_lossy(&item.path_bytes()).into_owned();
        let path = path.trim_end_matches('/').to_string();
        if kind.is_dir() {
            continue;
        }
        let Some(file) = wanted.get(path.as_str()).filter(|f| f.layer == digest) else {
            return Err(WeightsError::Mismatch {
                what: format!("weight {:?} layer {}", entry.name, layer.digest),
                expected: "only the files weights.lock lists for it".to_string(),
                actual: format!("{path:?} ({kind:?})"),
            });
        };
        if !kind.is_file() {
            return Err(WeightsError::Mismatch {
                what: format!("weight {:?} {path}", entry.name),
                expected: "a regular file".to_string(),
                actual: format!("{kind:?}"),
            });
        }
        if files.has(&file.digest) {
            continue;
        }
        files.put(&mut item, &file.digest, file.size)?;
    }
    Ok(())
}
