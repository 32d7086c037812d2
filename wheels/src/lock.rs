//! The lock: what a resolution chose, and a hash of what it was chosen from.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::target::Target;

/// Bumped when the lock format or resolution semantics change, so old locks re-resolve.
/// 2: source builds (`build`), first-index strategy, hashes of every file.
pub const LOCK_VERSION: u32 = 2;

/// A suggested file name for the lock, next to `cog.yaml`.
pub const LOCK_FILE_NAME: &str = "cog-requirements.lock.json";

/// A resolution: every package with its exact file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub version: u32,
    /// sha256 of the inputs (requirements text and options, indexes, target).
    pub input_hash: String,
    pub target: Target,
    /// Sorted by name.
    pub packages: Vec<LockedPackage>,
}

/// One installed distribution: a wheel, or a source (sdist or git commit) built into one at
/// install time (`build`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPackage {
    /// Normalized name (PEP 503).
    pub name: String,
    pub version: String,
    pub filename: String,
    pub url: String,
    /// Lowercase hex sha256 from the index (or computed for direct files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `--hash` values from the requirements; the download must match one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// For `name @ URL` and local files: the URL as requested (pip writes `direct_url.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_url: Option<String>,
    /// Set when the package is built from source: `filename`, `url` and `sha256` are then the
    /// sdist's (or, for git, the repository and no hash), and this says how to build it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<LockedBuild>,
}

/// How a package is built from source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedBuild {
    /// For a `git+…` requirement: the commit; `None` for an sdist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<LockedGit>,
    /// The source's `[build-system]` (pip's defaults when it declares none).
    pub build_system: crate::build_system::BuildSystem,
    /// The wheels of its isolated build environment, resolved for the target.
    pub requirements: Vec<LockedPackage>,
}

/// A git source, pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedGit {
    /// The repository URL (without `git+`).
    pub repository: String,
    /// The full commit id.
    pub commit: String,
    /// The revision as requested (branch, tag, commit), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdirectory: Option<String>,
}

impl LockedPackage {
    /// What identifies this package's content: the file's sha256, or for a git source its
    /// commit and subdirectory; `None` when not known yet (a direct file without a hash).
    pub fn content_id(&self) -> Option<String> {
        match self.build.as_ref().and_then(|b| b.git.as_ref()) {
            Some(g) => Some(format!(
                "git:{}@{}#{}",
                g.repository,
                g.commit,
                g.subdirectory.as_deref().unwrap_or("")
            )),
            None => self.sha256.clone(),
        }
    }
}

impl Lock {
    /// The input hash for a set of requirements, indexes and target.
    pub fn input_hash(requirements_hash: &str, indexes: &[String], target: &Target) -> String {
        let mut h = Sha256::new();
        h.update(format!("cog-rs wheels lock v{LOCK_VERSION}\n").as_bytes());
        h.update(requirements_hash.as_bytes());
        for i in indexes {
            h.update(b"\nindex ");
            h.update(i.as_bytes());
        }
        h.update(b"\n");
        h.update(serde_json::to_string(target).unwrap_or_default().as_bytes());
        hex::encode(h.finalize())
    }

    /// Reads a lock; `Ok(None)` when the file does not exist.
    pub fn read(path: &Path) -> Result<Option<Lock>> {
        let text = match fs_err::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // An older format is not an error: it is resolved again.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && v.get("version").and_then(serde_json::Value::as_u64) != Some(u64::from(LOCK_VERSION))
        {
            return Ok(None);
        }
        let lock: Lock = serde_json::from_str(&text).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: "invalid lock file".into(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        // A lock is input too (edited by hand, or written from a hostile index before this
        // check existed): its file names and digests become cache paths.
        let build_requirements = lock
            .packages
            .iter()
            .filter_map(|p| p.build.as_ref())
            .flat_map(|b| &b.requirements);
        for p in lock.packages.iter().chain(build_requirements) {
            let checked = safe_path::file_name(&p.filename).map(drop).and_then(|()| {
                p.sha256
                    .as_deref()
                    .map_or(Ok(()), |h| safe_path::sha256_hex(h).map(drop))
            });
            if let Err(e) = checked {
                return Err(Error::Lock {
                    path: path.to_path_buf(),
                    message: format!("package `{}`", p.name),
                    source: Some(std::sync::Arc::new(e)),
                });
            }
        }
        Ok(Some(lock))
    }

    /// Writes the lock atomically (temp file in the same directory, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: "cannot serialize".into(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        text.push('\n');
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(path).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: "cannot write".into(),
            source: Some(std::sync::Arc::new(e.error)),
        })?;
        Ok(())
    }

    /// `name==version` lines, the lock as a pip requirements file.
    pub fn pins(&self) -> String {
        let mut out = String::new();
        for p in &self.packages {
            let _ = writeln!(out, "{}=={}", p.name, p.version);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Arch, Libc};

    #[test]
    fn round_trips_and_hashes_inputs() {
        let target = Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 36)).unwrap();
        let lock = Lock {
            version: LOCK_VERSION,
            input_hash: Lock::input_hash("abc", &["https://pypi.org/simple/".into()], &target),
            target: target.clone(),
            packages: vec![LockedPackage {
                name: "six".into(),
                version: "1.16.0".into(),
                filename: "six-1.16.0-py2.py3-none-any.whl".into(),
                url: "https://files/six.whl".into(),
                sha256: Some("00".repeat(32)),
                hashes: vec![],
                size: Some(1),
                ..LockedPackage::default()
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(LOCK_FILE_NAME);
        assert!(Lock::read(&p).unwrap().is_none());
        lock.write(&p).unwrap();
        assert_eq!(Lock::read(&p).unwrap().unwrap(), lock);
        assert_eq!(lock.pins(), "six==1.16.0\n");
        let other = Target::new("3.12", Arch::X86_64, Libc::Glibc(2, 36)).unwrap();
        assert_ne!(
            lock.input_hash,
            Lock::input_hash("abc", &["https://pypi.org/simple/".into()], &other)
        );
        std::fs::write(&p, "{").unwrap();
        assert!(
            Lock::read(&p)
                .unwrap_err()
                .to_string()
                .contains("invalid lock file")
        );
        // A lock of an older format is resolved again, not an error.
        std::fs::write(&p, r#"{"version": 1, "packages": "whatever"}"#).unwrap();
        assert!(Lock::read(&p).unwrap().is_none());
    }
}
