//! `cog weights import [NAME...]`: each weight's sources are read once, packed into layers (the
//! files going into the local store on the way), the artifact pushed to
//! `<model>/weights/<name>:<timestamp>`, and `weights.lock` rewritten (atomically, once, at the
//! end; an entry whose content and sources did not change keeps its import time).
use std::path::Path;

use report::Unit;

use super::lock::{LockEntry, LockSource, WantedSource, WeightsLock, set_digest};
use super::pack::{self, Input};
use super::source::{self, Filter, Source};
use super::store::FileStore;
use super::{WeightsError, artifact, format_size, lock_path, model_repository, weight_reference};
use crate::config::{Config, WeightFile};
use crate::session::Session;

/// What one import did.
#[derive(Debug)]
pub struct Imported {
    pub name: String,
    pub reference: String,
    pub entry: LockEntry,
}

/// The cog.yaml weights `names` picks (all when empty), in cog.yaml's order.
pub fn select<'a>(
    config: &'a Config,
    names: &[String],
    config_file: &str,
) -> Result<Vec<&'a WeightFile>, WeightsError> {
    if config.weights.is_empty() {
        return Err(WeightsError::Usage(format!(
            "no weights defined in {config_file}"
        )));
    }
    if names.is_empty() {
        return Ok(config.weights.iter().collect());
    }
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !config.weights.iter().any(|w| &w.name == *n))
        .map(|n| crate::go::quote(n))
        .collect();
    if !missing.is_empty() {
        return Err(WeightsError::Usage(format!(
            "weight(s) not found in {config_file}: {}",
            missing.join(", ")
        )));
    }
    Ok(config
        .weights
        .iter()
        .filter(|w| names.contains(&w.name))
        .collect())
}

pub fn import(
    session: &Session,
    project_dir: &Path,
    config: &Config,
    config_file: &str,
    names: &[String],
) -> Result<Vec<Imported>, WeightsError> {
    let repository = model_repository(config, config_file)?;
    let selected = select(config, names, config_file)?;
    let path = lock_path(project_dir);
    let mut lock =
        WeightsLock::load(&path)?.unwrap_or_else(|| WeightsLock::new(pack::envelope_format()));
    let files = FileStore::under(session.store.root());
    let reporter = session.reporter();
    reporter.message(&format!("Building {} weight(s)...", selected.len()));
    let tag = super::timestamp_tag(time::OffsetDateTime::now_utc());
    let mut imported = Vec::new();
    for weight in selected {
        let wanted = super::lock::wanted_sources(weight)?;
        let (inputs, sources) = inputs(session, project_dir, weight, &wanted, &files)?;
        let total: u64 = inputs.iter().map(|i| i.size).sum();
        let mut task = reporter.task(&weight.name, Some(total), Unit::Bytes);
        let packed = pack::pack(&inputs, &session.store, &files, &mut |n| task.inc(n))?;
        task.finish(&format_size(total));
        reporter.message(&format!("{}: Download complete", weight.name));
        let mut entry = LockEntry {
            name: weight.name.clone(),
            target: weight.target.clone(),
            sources: Vec::new(),
            imported_at: String::new(),
            digest: String::new(),
            set_digest: set_digest(
                packed
                    .files
                    .iter()
                    .map(|f| (f.path.as_str(), f.digest.as_str())),
            ),
            size: packed.layers.iter().map(|l| l.size_uncompressed).sum(),
            size_compressed: packed.layers.iter().map(|l| l.size).sum(),
            files: packed.files,
            layers: packed.layers,
        };
        let locked: Vec<LockSource> = sources
            .into_iter()
            .zip(&wanted)
            .map(|(fingerprint, want)| LockSource {
                uri: want.uri.clone(),
                fingerprint: fingerprint(&entry),
                include: want.include.clone(),
                exclude: want.exclude.clone(),
            })
            .collect();
        entry.sources = locked;
        let manifest = artifact::store(&entry, &session.store)?;
        entry.digest = manifest.digest.to_string();
        entry.imported_at = now_rfc3339();
        if let Some(old) = lock.find(&entry.name)
            && same_but_time(old, &entry)
        {
            entry.imported_at.clone_from(&old.imported_at);
        }
        imported.push((weight.name.clone(), manifest, entry));
    }
    reporter.message(&format!(
        "Pushing {} weight(s) to {repository}...",
        imported.len()
    ));
    let mut done = Vec::new();
    for (name, manifest, entry) in imported {
        let target = weight_reference(&repository, &name, &tag)?;
        session.block_on(
            session
                .registry
                .push(&session.store, &manifest, &target, reporter),
        )?;
        reporter.message(&format!("  {name}: {target}"));
        // The registry has the layers now and the files are in the file store: the layer
        // blobs leave the build cache (a push mounts them from the weight's repository).
        for layer in &entry.layers {
            session
                .store
                .remove(&super::lock::digest(&layer.digest).map_err(WeightsError::Digest)?)?;
        }
        lock.upsert(entry.clone());
        done.push(Imported {
            name,
            reference: target.to_string(),
            entry,
        });
    }
    let keep: Vec<&str> = config.weights.iter().map(|w| w.name.as_str()).collect();
    lock.retain(&keep);
    lock.envelope_format = pack::envelope_format();
    lock.save(&path)?;
    let total: u64 = done.iter().map(|d| d.entry.size).sum();
    reporter.message(&format!(
        "Imported {} weight artifact(s) to {repository}",
        done.len()
    ));
    reporter.message(&format!("Total: {}", format_size(total)));
    Ok(done)
}

type Fingerprint = Box<dyn Fn(&LockEntry) -> String>;

/// The files of a weight's sources, and how to fingerprint each source once packed.
fn inputs(
    session: &Session,
    project_dir: &Path,
    weight: &WeightFile,
    wanted: &[WantedSource],
    files: &FileStore,
) -> Result<(Vec<Input>, Vec<Fingerprint>), WeightsError> {
    let mut inputs: Vec<Input> = Vec::new();
    let mut fingerprints: Vec<Fingerprint> = Vec::new();
    for want in wanted {
        let error = |reason: String| WeightsError::Source {
            weight: weight.name.clone(),
            uri: want.uri.clone(),
            reason,
        };
        let filter = Filter::new(&want.include, &want.exclude).map_err(error)?;
        let first = inputs.len();
        match Source::resolve(&want.uri, project_dir).map_err(error)? {
            Source::Dir(dir) => {
                let all = source::walk(&dir, &want.uri).map_err(error)?;
                let total = all.len();
                for file in all.into_iter().filter(|f| filter.keeps(&f.path)) {
                    let absolute = file.absolute.clone();
                    inputs.push(Input {
                        path: file.path,
                        size: file.size,
                        open: Box::new(move || {
                            Ok(Box::new(std::fs::File::open(&absolute)?) as Box<dyn std::io::Read>)
                        }),
                        stored: None,
                    });
                }
                if inputs.len() == first {
                    return Err(error(source::zero_survivors(
                        total,
                        &want.include,
                        &want.exclude,
                    )));
                }
                // The set digest of this source's files, as packed.
                let paths: Vec<String> = inputs[first..].iter().map(|i| i.path.clone()).collect();
                fingerprints.push(Box::new(move |entry: &LockEntry| {
                    set_digest(
                        entry
                            .files
                            .iter()
                            .filter(|f| paths.contains(&f.path))
                            .map(|f| (f.path.as_str(), f.digest.as_str())),
                    )
                }));
            }
            Source::Http { url, file_name } => {
                if !filter.keeps(&file_name) {
                    return Err(error(source::zero_survivors(
                        1,
                        &want.include,
                        &want.exclude,
                    )));
                }
                let (digest, size, etag) =
                    download(session, &url, files).map_err(|e| error(format!("{e:#}")))?;
                let stored = files.path(&digest)?;
                inputs.push(Input {
                    path: file_name,
                    size,
                    open: Box::new(move || {
                        Ok(Box::new(std::fs::File::open(&stored)?) as Box<dyn std::io::Read>)
                    }),
                    stored: Some(digest.clone()),
                });
                let fingerprint = etag.map_or(digest, |e| format!("etag:{e}"));
                fingerprints.push(Box::new(move |_: &LockEntry| fingerprint.clone()));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for input in &inputs {
        if !seen.insert(input.path.as_str()) {
            return Err(WeightsError::Usage(format!(
                "weight {:?}: {} is in more than one of its sources",
                weight.name, input.path
            )));
        }
    }
    Ok((inputs, fingerprints))
}

/// Streams `url` into the file store (hashed as written); its digest, size and strong ETag.
fn download(
    session: &Session,
    url: &url::Url,
    files: &FileStore,
) -> anyhow::Result<(String, u64, Option<String>)> {
    use futures::StreamExt as _;
    use std::io::Write as _;
    let reporter = session.reporter();
    session.block_on(async {
        let client = reqwest::Client::builder().build()?;
        let response = client.get(url.clone()).send().await?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("GET {url} returned HTTP {}", status.as_u16());
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.starts_with("W/"))
            .map(str::to_string);
        let mut task = reporter.task(url.as_str(), response.content_length(), Unit::Bytes);
        let mut writer = files.writer()?;
        let mut size = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            // Small writes into a buffered file: fine on the async thread.
            writer.write_all(&chunk)?;
            size += chunk.len() as u64;
            task.inc(chunk.len() as u64);
        }
        task.finish(&format_size(size));
        let path = writer.commit(None)?;
        let hex = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        Ok((format!("sha256:{hex}"), size, etag))
    })
}

fn same_but_time(a: &LockEntry, b: &LockEntry) -> bool {
    let mut a = a.clone();
    a.imported_at.clone_from(&b.imported_at);
    &a == b
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What an import would do to one weight, from a walk of its sources (no file is read).
#[derive(Debug)]
pub struct Planned {
    pub name: String,
    pub sources: Vec<String>,
    pub target: String,
    /// `new`, `config-changed` (with what changed), `upstream-changed` (the files' paths or
    /// sizes differ from the lock's) or `unchanged` (same paths and sizes; contents are hashed
    /// by the import itself).
    pub status: String,
    /// Kept files (path, size), or `None` for a URL (known once fetched).
    pub files: Option<Vec<(String, u64)>>,
    pub excluded: Vec<(String, u64)>,
}

/// The plan `cog weights import` prints before it imports (and all `--dry-run` does).
pub fn plan(
    project_dir: &Path,
    config: &Config,
    config_file: &str,
    names: &[String],
) -> Result<Vec<Planned>, WeightsError> {
    let selected = select(config, names, config_file)?;
    let lock = WeightsLock::load(&lock_path(project_dir))?;
    let drift = super::lock::drift(&config.weights, lock.as_ref())?;
    let mut planned = Vec::new();
    for weight in selected {
        let wanted = super::lock::wanted_sources(weight)?;
        let mut files = Some(Vec::new());
        let mut excluded = Vec::new();
        for want in &wanted {
            let error = |reason: String| WeightsError::Source {
                weight: weight.name.clone(),
                uri: want.uri.clone(),
                reason,
            };
            let filter = Filter::new(&want.include, &want.exclude).map_err(error)?;
            match Source::resolve(&want.uri, project_dir).map_err(error)? {
                Source::Dir(dir) => {
                    for file in source::walk(&dir, &want.uri).map_err(error)? {
                        if filter.keeps(&file.path) {
                            if let Some(files) = &mut files {
                                files.push((file.path, file.size));
                            }
                        } else {
                            excluded.push((file.path, file.size));
                        }
                    }
                }
                Source::Http { .. } => files = None,
            }
        }
        let status = drift.iter().find_map(|d| match d {
            super::lock::Drift::Pending(n) if n == &weight.name => Some("new".to_string()),
            super::lock::Drift::ConfigChanged(n, what) if n == &weight.name => {
                Some(format!("config-changed ({what})"))
            }
            _ => None,
        });
        let status = status.unwrap_or_else(|| {
            let locked: Option<Vec<(String, u64)>> = lock
                .as_ref()
                .and_then(|l| l.find(&weight.name))
                .map(|e| e.files.iter().map(|f| (f.path.clone(), f.size)).collect());
            match (&files, locked) {
                (Some(files), Some(locked)) if *files == locked => "unchanged".to_string(),
                (None, _) => "re-fetch".to_string(),
                _ => "upstream-changed".to_string(),
            }
        });
        planned.push(Planned {
            name: weight.name.clone(),
            sources: wanted.iter().map(|w| w.uri.clone()).collect(),
            target: weight.target.clone(),
            status,
            files,
            excluded,
        });
    }
    Ok(planned)
}

/// Cog's lines for a plan (`+ name  uri → target`, `  status: …`, `  files: N  size: …`).
pub fn plan_lines(planned: &[Planned], verbose: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for p in planned {
        let icon = match p.status.as_str() {
            "new" => "+",
            "unchanged" => "=",
            _ => "~",
        };
        if p.sources.len() == 1 {
            lines.push(format!(
                "{icon} {}  {} → {}",
                p.name, p.sources[0], p.target
            ));
        } else {
            lines.push(format!("{icon} {}  → {}", p.name, p.target));
            for (i, uri) in p.sources.iter().enumerate() {
                lines.push(format!("  source[{i}]: {uri}"));
            }
        }
        lines.push(format!("  status: {}", p.status));
        match &p.files {
            Some(files) => {
                let size: u64 = files.iter().map(|f| f.1).sum();
                lines.push(format!(
                    "  files: {}  size: {}",
                    files.len(),
                    format_size(size)
                ));
                if verbose {
                    if !p.excluded.is_empty() {
                        lines.push(format!("  excluded ({} files):", p.excluded.len()));
                        for (path, size) in &p.excluded {
                            lines.push(format!("    - {path} ({})", format_size(*size)));
                        }
                    }
                    lines.push(format!("  included ({} files):", files.len()));
                    for (path, size) in files {
                        lines.push(format!("    + {path} ({})", format_size(*size)));
                    }
                }
            }
            None => lines.push("  files: fetched on import".to_string()),
        }
    }
    lines
}
