//! The lock: the exact resolved set (versions, download URLs, SHA-256), serialized next to
//! cog.yaml so that a rebuild installs exactly the same bytes.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::archive::Source;
use crate::index::Package;
use crate::version::Version;

/// The lock file's name, next to cog.yaml.
pub const LOCK_FILE_NAME: &str = "cog-apt.lock";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub url: String,
    pub size: u64,
    pub sha256: String,
}

impl LockedPackage {
    pub(crate) fn from_package(p: &Package) -> LockedPackage {
        LockedPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.arch.clone(),
            url: format!("{}/{}", p.mirror, p.filename),
            size: p.size,
            sha256: p.sha256.to_ascii_lowercase(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub format: u32,
    pub arch: String,
    pub sources: Vec<Source>,
    /// What was asked for, as written in cog.yaml.
    pub requested: Vec<String>,
    /// Sorted by name.
    pub packages: Vec<LockedPackage>,
}

impl Lock {
    pub fn new(
        arch: &str,
        sources: Vec<Source>,
        requested: Vec<String>,
        mut packages: Vec<LockedPackage>,
    ) -> Lock {
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Lock {
            format: FORMAT,
            arch: arch.to_owned(),
            sources,
            requested,
            packages,
        }
    }

    /// A key for the installed result: the packages' identities and hashes (not the mirror).
    pub fn content_key(&self) -> String {
        let mut key = format!("debian-lock/v{FORMAT}/{}", self.arch);
        for p in &self.packages {
            let _ = write!(
                key,
                "
{} {} {} {}",
                p.name, p.version, p.architecture, p.sha256
            );
        }
        key
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes the lock atomically.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        crate::fetch::write_atomic(path, self.to_json().as_bytes())
    }

    pub fn read(path: &Path) -> Result<Lock, Error> {
        let text = fs_err::read_to_string(path)?;
        let lock: Lock = serde_json::from_str(&text).map_err(|e| Error::Lock {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if lock.format != FORMAT {
            return Err(Error::Lock {
                path: path.to_owned(),
                reason: format!(
                    "unsupported format {} (this cog reads format {FORMAT})",
                    lock.format
                ),
            });
        }
        for p in &lock.packages {
            if let Err(e) = safe_path::sha256_hex(&p.sha256) {
                return Err(Error::Lock {
                    path: path.to_owned(),
                    reason: format!("package {}: {e}", p.name),
                });
            }
        }
        Ok(lock)
    }

    /// Whether this lock was made for `requested` (same names, any order) and `arch`.
    pub fn matches_request(&self, requested: &[impl AsRef<str>], arch: &str) -> bool {
        let mut a: Vec<&str> = self.requested.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = requested.iter().map(AsRef::as_ref).collect();
        a.sort_unstable();
        b.sort_unstable();
        self.arch == arch && a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock() -> Lock {
        Lock::new(
            "amd64",
            vec![],
            vec!["hello".into()],
            vec![LockedPackage {
                name: "hello".into(),
                version: "2.10-3".parse().unwrap(),
                architecture: "amd64".into(),
                url: "http://m/pool/hello.deb".into(),
                size: 1,
                sha256: "a".repeat(64),
            }],
        )
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE_NAME);
        lock().write(&path).unwrap();
        assert_eq!(Lock::read(&path).unwrap(), lock());
        assert!(lock().matches_request(&["hello"], "amd64"));
        assert!(!lock().matches_request(&["hello", "jq"], "amd64"));
    }

    #[test]
    fn rejects_bad_hashes_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE_NAME);
        let mut l = lock();
        l.packages[0].sha256 = "xyz".into();
        l.write(&path).unwrap();
        let err = Lock::read(&path).unwrap_err().to_string();
        assert!(
            err.contains(LOCK_FILE_NAME) && err.contains("package hello"),
            "{err}"
        );
    }

    #[test]
    fn content_key_ignores_the_mirror() {
        let mut other = lock();
        other.packages[0].url = "http://elsewhere/pool/hello.deb".into();
        assert_eq!(other.content_key(), lock().content_key());
    }
}
