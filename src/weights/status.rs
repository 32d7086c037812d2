//! `cog weights status`: each weight of cog.yaml against `weights.lock` and the local store.
use std::path::Path;

use super::lock::{self, Drift, WeightsLock};
use super::store::FileStore;
use super::{WeightsError, format_size, lock_path};
use crate::config::Config;

/// One weight's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub target: String,
    /// `ready`, `incomplete`, `pending`, `stale` or `orphaned`.
    pub state: &'static str,
    pub detail: String,
}

pub fn status(
    project_dir: &Path,
    config: &Config,
    files: &FileStore,
) -> Result<Vec<Status>, WeightsError> {
    let lock = WeightsLock::load(&lock_path(project_dir))?;
    let found = lock::drift(&config.weights, lock.as_ref())?;
    let mut out = Vec::new();
    for weight in &config.weights {
        let drift = found.iter().find(|d| match d {
            Drift::Pending(n) | Drift::ConfigChanged(n, _) => n == &weight.name,
            Drift::Orphaned(_) => false,
        });
        let (state, detail) = match drift {
            Some(Drift::Pending(_)) => ("pending", "not imported yet".to_string()),
            Some(Drift::ConfigChanged(_, d)) => ("stale", format!("config changed ({d})")),
            _ => {
                let entry = lock
                    .as_ref()
                    .and_then(|l| l.find(&weight.name))
                    .ok_or_else(|| WeightsError::Usage("lock entry vanished".to_string()))?;
                let cached = entry.files.iter().filter(|f| files.has(&f.digest)).count();
                let state = if cached == entry.files.len() {
                    "ready"
                } else {
                    "incomplete"
                };
                (
                    state,
                    format!(
                        "{cached}/{} files cached, {}, {}",
                        entry.files.len(),
                        format_size(entry.size),
                        entry.digest
                    ),
                )
            }
        };
        out.push(Status {
            name: weight.name.clone(),
            target: weight.target.clone(),
            state,
            detail,
        });
    }
    for drift in &found {
        if let Drift::Orphaned(name) = drift {
            let target = lock
                .as_ref()
                .and_then(|l| l.find(name))
                .map(|e| e.target.clone())
                .unwrap_or_default();
            out.push(Status {
                name: name.clone(),
                target,
                state: "orphaned",
                detail: "removed from cog.yaml but still in lockfile".to_string(),
            });
        }
    }
    Ok(out)
}
