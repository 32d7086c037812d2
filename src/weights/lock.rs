//! `weights.lock`: what `cog weights import` recorded for each weight of cog.yaml (its sources,
//! its files and layers, the manifest's digest), in Cog's format (version 1), and the drift
//! check `cog build` runs against cog.yaml.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::WeightsError;
use crate::config::WeightFile;

pub const LOCK_FILE: &str = "weights.lock";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightsLock {
    pub version: u32,
    /// Digest of the packer's parameters: another packer may lay the same files out otherwise.
    #[serde(default)]
    pub envelope_format: String,
    #[serde(default)]
    pub weights: Vec<LockEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockEntry {
    pub name: String,
    pub target: String,
    pub sources: Vec<LockSource>,
    /// Informational: never compared.
    pub imported_at: String,
    /// The weight manifest's digest.
    pub digest: String,
    pub set_digest: String,
    pub size: u64,
    pub size_compressed: u64,
    pub files: Vec<LockFile>,
    pub layers: Vec<LockLayer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockSource {
    pub uri: String,
    pub fingerprint: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    pub path: String,
    pub size: u64,
    pub digest: String,
    pub layer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockLayer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub size_uncompressed: u64,
}

impl WeightsLock {
    pub fn new(envelope_format: String) -> Self {
        WeightsLock {
            version: VERSION,
            envelope_format,
            weights: Vec::new(),
        }
    }

    /// Parses and checks a lock: its version, unique names and targets, and every digest and
    /// path in it (the lock is a checked-in file: a hand edit or a bad merge must not reach a
    /// path or the store unchecked).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, WeightsError> {
        let invalid = |reason: String| WeightsError::InvalidLock {
            path: path.to_path_buf(),
            reason,
        };
        let lock: WeightsLock =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if lock.version != VERSION {
            return Err(invalid(format!(
                "unsupported weights.lock version {} (want {VERSION})",
                lock.version
            )));
        }
        let mut names = BTreeSet::new();
        let mut targets = BTreeSet::new();
        for entry in &lock.weights {
            if !names.insert(entry.name.as_str()) {
                return Err(invalid(format!("duplicate weight name {:?}", entry.name)));
            }
            if !targets.insert(entry.target.trim_end_matches('/')) {
                return Err(invalid(format!(
                    "duplicate weight target {:?}",
                    entry.target
                )));
            }
            entry
                .check()
                .map_err(|reason| invalid(format!("weight {:?}: {reason}", entry.name)))?;
        }
        Ok(lock)
    }

    /// The lock at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, WeightsError> {
        match fs_err::read(path) {
            Ok(bytes) => Self::parse(&bytes, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(WeightsError::Io(e)),
        }
    }

    /// Canonical bytes: files sorted by path, layers by digest, two-space indent.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut lock = self.clone();
        for entry in &mut lock.weights {
            entry.canonicalize();
        }
        let mut bytes = serde_json::to_vec_pretty(&lock).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Writes the lock atomically (temp file beside it, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), WeightsError> {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".weights-")
            .suffix(".lock.tmp")
            .tempfile_in(dir)?;
        std::io::Write::write_all(&mut tmp, &self.to_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| WeightsError::Io(e.error))?;
        Ok(())
    }

    pub fn find(&self, name: &str) -> Option<&LockEntry> {
        self.weights.iter().find(|w| w.name == name)
    }

    /// Inserts or replaces the entry of the same name, keeping the others in place.
    pub fn upsert(&mut self, entry: LockEntry) {
        match self.weights.iter_mut().find(|w| w.name == entry.name) {
            Some(slot) => *slot = entry,
            None => self.weights.push(entry),
        }
    }

    /// Keeps only the entries named in `names`, in their order.
    pub fn retain(&mut self, names: &[&str]) {
        self.weights.retain(|w| names.contains(&w.name.as_str()));
    }
}

impl LockEntry {
    pub fn canonicalize(&mut self) {
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        self.layers.sort_by(|a, b| a.digest.cmp(&b.digest));
    }

    /// The entry is whole and its names are safe: digests are sha256, paths relative and
    /// clean, every file in a listed layer, and the set digest is that of the files.
    fn check(&self) -> Result<(), String> {
        safe_path::file_name(&self.name).map_err(|e| format!("name: {e}"))?;
        digest(&self.digest).map_err(|e| format!("digest: {e}"))?;
        let layers: BTreeSet<&str> = self.layers.iter().map(|l| l.digest.as_str()).collect();
        for layer in &self.layers {
            digest(&layer.digest).map_err(|e| format!("layer: {e}"))?;
        }
        for file in &self.files {
            super::source::check_file_path(&file.path)?;
            digest(&file.digest).map_err(|e| format!("file {:?}: {e}", file.path))?;
            if !layers.contains(file.layer.as_str()) {
                return Err(format!(
                    "file {:?} is in layer {}, which the entry does not list",
                    file.path, file.layer
                ));
            }
        }
        if self.files.is_empty() {
            return Err("no files".to_string());
        }
        let computed = set_digest(
            self.files
                .iter()
                .map(|f| (f.path.as_str(), f.digest.as_str())),
        );
        if computed != self.set_digest {
            return Err(format!(
                "setDigest {} is not the digest of its files ({computed})",
                self.set_digest
            ));
        }
        Ok(())
    }
}

/// A `sha256:<hex>` digest, checked.
pub fn digest(value: &str) -> Result<layers::Digest, String> {
    let hex = value
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("{value:?} is not a sha256 digest"))?;
    let hex = safe_path::sha256_hex(hex).map_err(|e| e.to_string())?;
    if hex != value["sha256:".len()..] {
        return Err(format!("{value:?} is not lower-case hex"));
    }
    value.parse().map_err(|e: layers::Error| e.to_string())
}

/// The weight set digest (spec 2.4): sha256 of the sorted `<hex>  <path>` lines joined by `\n`.
pub fn set_digest<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    use sha2::Digest as _;
    let mut lines: Vec<String> = files
        .into_iter()
        .map(|(path, digest)| {
            format!(
                "{}  {path}",
                digest.strip_prefix("sha256:").unwrap_or(digest)
            )
        })
        .collect();
    lines.sort();
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(lines.join("\n")))
    )
}

/// One way cog.yaml and the lock disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// In cog.yaml, not in the lock.
    Pending(String),
    /// In the lock, no longer in cog.yaml.
    Orphaned(String),
    /// Both, but the target, a source's URI, include or exclude differ.
    ConfigChanged(String, String),
}

/// The source of a cog.yaml weight as the lock records it: normalized URI, sorted patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedSource {
    pub uri: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// Compares cog.yaml's weights with the lock (a missing lock has no entries).
pub fn drift(
    weights: &[WeightFile],
    lock: Option<&WeightsLock>,
) -> Result<Vec<Drift>, WeightsError> {
    let locked: BTreeMap<&str, &LockEntry> = lock
        .map(|l| l.weights.iter().map(|e| (e.name.as_str(), e)).collect())
        .unwrap_or_default();
    let mut found = Vec::new();
    for weight in weights {
        let Some(entry) = locked.get(weight.name.as_str()) else {
            found.push(Drift::Pending(weight.name.clone()));
            continue;
        };
        let wanted = wanted_sources(weight)?;
        let details = changes(weight, &wanted, entry);
        if !details.is_empty() {
            found.push(Drift::ConfigChanged(weight.name.clone(), details));
        }
    }
    for entry in lock.map(|l| l.weights.as_slice()).unwrap_or_default() {
        if !weights.iter().any(|w| w.name == entry.name) {
            found.push(Drift::Orphaned(entry.name.clone()));
        }
    }
    Ok(found)
}

pub fn wanted_sources(weight: &WeightFile) -> Result<Vec<WantedSource>, WeightsError> {
    weight
        .source
        .iter()
        .map(|s| {
            let mut include: Vec<String> = s.include.iter().map(|p| p.trim().to_string()).collect();
            let mut exclude: Vec<String> = s.exclude.iter().map(|p| p.trim().to_string()).collect();
            include.sort();
            exclude.sort();
            Ok(WantedSource {
                uri: super::source::normalize_uri(&s.uri).map_err(|reason| {
                    WeightsError::Source {
                        weight: weight.name.clone(),
                        uri: s.uri.clone(),
                        reason,
                    }
                })?,
                include,
                exclude,
            })
        })
        .collect()
}

fn changes(weight: &WeightFile, wanted: &[WantedSource], entry: &LockEntry) -> String {
    let mut diffs = Vec::new();
    if weight.target != entry.target {
        diffs.push(format!("target: {} → {}", entry.target, weight.target));
    }
    if wanted.len() == entry.sources.len() {
        for (i, (want, have)) in wanted.iter().zip(&entry.sources).enumerate() {
            let prefix = if wanted.len() > 1 {
                format!("source[{i}].")
            } else {
                String::new()
            };
            if want.uri != have.uri {
                diffs.push(format!("{prefix}uri: {} → {}", have.uri, want.uri));
            }
            if want.include != have.include {
                diffs.push(format!(
                    "{prefix}include: {} → {}",
                    go_list(&have.include),
                    go_list(&want.include)
                ));
            }
            if want.exclude != have.exclude {
                diffs.push(format!(
                    "{prefix}exclude: {} → {}",
                    go_list(&have.exclude),
                    go_list(&want.exclude)
                ));
            }
        }
    } else {
        diffs.push(format!(
            "source count: {} → {}",
            entry.sources.len(),
            wanted.len()
        ));
    }
    diffs.join("; ")
}

/// A list as Go's `%v` prints it: `[a b]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Cog's message for a lock out of step with cog.yaml.
pub fn drift_message(found: &[Drift]) -> String {
    let mut message = String::from("weights.lock is out of sync with cog.yaml:\n");
    for drift in found {
        let _ = match drift {
            Drift::Pending(name) => {
                writeln!(message, "  - {}: not imported yet", crate::go::quote(name))
            }
            Drift::Orphaned(name) => writeln!(
                message,
                "  - {}: removed from cog.yaml but still in lockfile",
                crate::go::quote(name)
            ),
            Drift::ConfigChanged(name, details) => writeln!(
                message,
                "  - {}: config changed ({details})",
                crate::go::quote(name)
            ),
        };
    }
    message.push_str("Run 'cog weights import' to update.");
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WeightSource;

    fn weight(name: &str, target: &str, uri: &str) -> WeightFile {
        WeightFile {
            name: name.into(),
            target: target.into(),
            source: vec![WeightSource {
                uri: uri.into(),
                include: vec![],
                exclude: vec![],
            }],
            source_is_list: false,
        }
    }

    fn entry(name: &str, target: &str, uri: &str) -> LockEntry {
        let files = vec![LockFile {
            path: "a.bin".into(),
            size: 1,
            digest: format!("sha256:{}", "1".repeat(64)),
            layer: format!("sha256:{}", "2".repeat(64)),
        }];
        LockEntry {
            name: name.into(),
            target: target.into(),
            sources: vec![LockSource {
                uri: uri.into(),
                fingerprint: String::new(),
                include: vec![],
                exclude: vec![],
            }],
            imported_at: String::new(),
            digest: format!("sha256:{}", "3".repeat(64)),
            set_digest: set_digest(files.iter().map(|f| (f.path.as_str(), f.digest.as_str()))),
            size: 1,
            size_compressed: 1,
            layers: vec![LockLayer {
                digest: files[0].layer.clone(),
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                size: 1536,
                size_uncompressed: 1,
            }],
            files,
        }
    }

    #[test]
    fn drift_reports_each_kind_with_cogs_message() {
        let mut lock = WeightsLock::new(String::new());
        lock.weights.push(entry("a", "/src/a", "file://./a"));
        lock.weights.push(entry("gone", "/src/g", "file://./g"));
        let weights = vec![
            weight("a", "/src/b", "a"),
            weight("new", "/src/n", "file://./n"),
        ];
        let found = drift(&weights, Some(&lock)).unwrap();
        assert_eq!(
            drift_message(&found),
            "weights.lock is out of sync with cog.yaml:\n  - \"a\": config changed (target: /src/a → /src/b)\n  - \"new\": not imported yet\n  - \"gone\": removed from cog.yaml but still in lockfile\nRun 'cog weights import' to update."
        );
        assert!(
            drift(
                &[weight("a", "/src/a", "./a")],
                Some(&{
                    let mut l = lock.clone();
                    l.retain(&["a"]);
                    l
                })
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn a_lock_round_trips_and_lies_are_refused() {
        let mut lock = WeightsLock::new("sha256:x".into());
        lock.weights.push(entry("a", "/src/a", "file://./a"));
        let bytes = lock.to_bytes();
        let path = Path::new("weights.lock");
        assert_eq!(WeightsLock::parse(&bytes, path).unwrap(), lock);

        let mut lying = lock.clone();
        lying.weights[0].files[0].digest = format!("sha256:{}", "4".repeat(64));
        let err = WeightsLock::parse(&lying.to_bytes(), path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not the digest of its files"), "{err}");

        let mut escaping = lock.clone();
        escaping.weights[0].files[0].path = "../etc/passwd".into();
        let err = WeightsLock::parse(&escaping.to_bytes(), path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a clean relative path"), "{err}");

        let mut dup = lock.clone();
        dup.weights.push(entry("b", "/src/a/", "file://./b"));
        let err = WeightsLock::parse(&dup.to_bytes(), path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate weight target"), "{err}");
    }

    #[test]
    fn set_digest_is_sha256sum_of_sha256sum_lines() {
        // printf 'aaaa...  a\nbbbb...  b' | sha256sum, independent of order.
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let one = set_digest([("b", b.as_str()), ("a", a.as_str())]);
        let two = set_digest([("a", a.as_str()), ("b", b.as_str())]);
        assert_eq!(one, two);
        use sha2::Digest as _;
        let text = format!("{}  a\n{}  b", "a".repeat(64), "b".repeat(64));
        assert_eq!(
            one,
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(text)))
        );
    }
}
