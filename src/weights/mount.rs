//! What `cog run` and `cog serve` mount: for each weight of `weights.lock`, a directory of hard
//! links into the local store (`<project>/.cog/mounts/<id>/<name>`), with the spec's readiness
//! marker `.cog/ready` written last, bind-mounted read-only at the weight's target. The
//! directory goes when the [`Mounts`] is dropped. Nothing is pulled here: a missing file names
//! `cog weights pull`.
use std::path::{Path, PathBuf};

use super::lock::WeightsLock;
use super::store::FileStore;
use super::{WeightsError, check_drift};
use crate::config::Config;
use crate::runtime::Mount;

/// The mounts of one run; the assembled directories are removed on drop.
#[derive(Debug, Default)]
pub struct Mounts {
    pub mounts: Vec<Mount>,
    root: Option<PathBuf>,
}

/// The directories assembled by this process and not removed yet: an interrupted `cog serve`
/// exits without running destructors, so its handler removes them ([`remove_assembled`]).
static ASSEMBLED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn remove(root: &Path) {
    let _ = std::fs::remove_dir_all(root);
    // `.cog/mounts` itself, once empty.
    if let Some(parent) = root.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        if let Some(root) = self.root.take() {
            remove(&root);
            if let Ok(mut assembled) = ASSEMBLED.lock() {
                assembled.retain(|r| r != &root);
            }
        }
    }
}

/// Removes every directory this process assembled (on Ctrl-C, after the containers are gone).
pub fn remove_assembled() {
    if let Ok(mut assembled) = ASSEMBLED.lock() {
        for root in assembled.drain(..) {
            remove(&root);
        }
    }
}

/// Assembles the weights of the project for a run (none without `weights:` in cog.yaml).
pub fn prepare(
    project_dir: &Path,
    config: &Config,
    files: &FileStore,
) -> Result<Mounts, WeightsError> {
    let Some(lock) = check_drift(project_dir, config)? else {
        return Ok(Mounts::default());
    };
    assemble(project_dir, &lock, files)
}

pub fn assemble(
    project_dir: &Path,
    lock: &WeightsLock,
    files: &FileStore,
) -> Result<Mounts, WeightsError> {
    let id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let root = project_dir.join(".cog").join("mounts").join(id);
    fs_err::create_dir_all(&root)?;
    if let Ok(mut assembled) = ASSEMBLED.lock() {
        assembled.push(root.clone());
    }
    let mut mounts = Mounts {
        mounts: Vec::new(),
        root: Some(root.clone()),
    };
    for entry in &lock.weights {
        let dir = safe_path::join_file(&root, &entry.name)
            .map_err(|e| WeightsError::Usage(format!("weight {:?}: {e}", entry.name)))?;
        fs_err::create_dir_all(&dir)?;
        for file in &entry.files {
            let source = files.path(&file.digest)?;
            if !source.is_file() {
                return Err(WeightsError::Usage(format!(
                    "weight {:?} is not fully cached locally (missing {}); run 'cog weights pull' first",
                    entry.name, file.path
                )));
            }
            let dest = safe_path::join(&dir, &file.path)
                .map_err(|e| WeightsError::Usage(format!("weight {:?}: {e}", entry.name)))?;
            if let Some(parent) = dest.parent() {
                fs_err::create_dir_all(parent)?;
            }
            match std::fs::hard_link(&source, &dest) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                    return Err(WeightsError::Usage(format!(
                        "cannot hard-link weight files from {} into {}: they are on different filesystems; set COG_CACHE_DIR to a directory on the project's filesystem",
                        files.root().display(),
                        project_dir.display()
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let state = dir.join(".cog");
        fs_err::create_dir_all(&state)?;
        let tmp = state.join(".ready.tmp");
        fs_err::write(&tmp, entry.set_digest.as_bytes())?;
        fs_err::rename(&tmp, state.join("ready"))?;
        mounts.mounts.push(Mount {
            source: dir,
            target: entry.target.clone(),
            read_only: true,
        });
    }
    Ok(mounts)
}
