//! When a lock file next to cog.yaml is read, made again or written: one policy for the three
//! locks (wheels, base packages, system packages).
use std::path::{Path, PathBuf};

/// What a command may do with the project's lock files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// `cog build`: reuse a lock whose inputs are unchanged, else resolve and write it.
    #[default]
    Update,
    /// `--upgrade`: resolve again whatever the lock says, and write it.
    Upgrade,
    /// `--locked`: reuse a lock whose inputs are unchanged; a lock that is missing or would
    /// change is an error (CI: the committed locks are current).
    Locked,
    /// `--frozen`: use the locks as they are, without checking them against their inputs; a
    /// missing lock is an error.
    Frozen,
    /// `cog plan`, `cog run IMAGE`: reuse current locks, resolve in memory what they lack, write
    /// nothing into the project.
    ReadOnly,
}

/// A lock file could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum LockError<E: std::error::Error + 'static> {
    #[error("{}: the lock is out of date with its inputs (--locked); run `cog build` without --locked to update it", .path.display())]
    Stale { path: PathBuf },
    #[error("{}: no lock file (--frozen); run `cog build` once to write it", .path.display())]
    Missing { path: PathBuf },
    #[error(transparent)]
    Inner(E),
}

/// A lock and whether it came from disk unchanged.
#[derive(Debug)]
pub struct Settled<L> {
    pub lock: L,
    pub reused: bool,
}

/// Settles the lock at `path`: `read` it (`None` when absent), keep it when `current` says its
/// inputs are unchanged, else `make` a new one and, when `mode` allows, `write` it.
pub fn settle<L, E: std::error::Error + 'static>(
    path: &Path,
    mode: LockMode,
    read: impl FnOnce(&Path) -> Result<Option<L>, E>,
    current: impl Fn(&L) -> bool,
    make: impl FnOnce() -> Result<L, E>,
    write: impl FnOnce(&L, &Path) -> Result<(), E>,
) -> Result<Settled<L>, LockError<E>> {
    let existing = if mode == LockMode::Upgrade {
        None
    } else {
        read(path).map_err(LockError::Inner)?
    };
    match (mode, existing) {
        (LockMode::Frozen, Some(lock)) => Ok(Settled { lock, reused: true }),
        (LockMode::Frozen, None) => Err(LockError::Missing {
            path: path.to_path_buf(),
        }),
        (_, Some(lock)) if current(&lock) => Ok(Settled { lock, reused: true }),
        (LockMode::Locked, _) => Err(LockError::Stale {
            path: path.to_path_buf(),
        }),
        (mode, _) => {
            let lock = make().map_err(LockError::Inner)?;
            if mode != LockMode::ReadOnly {
                write(&lock, path).map_err(LockError::Inner)?;
            }
            Ok(Settled {
                lock,
                reused: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Result<Settled<u32>, LockError<std::io::Error>>;

    fn run(mode: LockMode, on_disk: Option<u32>, wanted: u32) -> (R, Option<u32>) {
        let mut written = None;
        let result = settle(
            Path::new("x.lock"),
            mode,
            |_| Ok(on_disk),
            |l| *l == wanted,
            || Ok(wanted),
            |l, _| {
                written = Some(*l);
                Ok(())
            },
        );
        (result, written)
    }

    #[test]
    fn each_mode_reads_makes_and_writes_as_documented() {
        let (r, w) = run(LockMode::Update, Some(1), 1);
        assert!(r.unwrap().reused && w.is_none());
        let (r, w) = run(LockMode::Update, Some(1), 2);
        assert_eq!((r.unwrap().lock, w), (2, Some(2)));
        let (r, w) = run(LockMode::Upgrade, Some(2), 2);
        assert_eq!((r.unwrap().reused, w), (false, Some(2)));
        let (r, w) = run(LockMode::Locked, Some(1), 2);
        assert!(matches!(r, Err(LockError::Stale { .. })) && w.is_none());
        let (r, w) = run(LockMode::Locked, None, 2);
        assert!(matches!(r, Err(LockError::Stale { .. })) && w.is_none());
        let (r, _) = run(LockMode::Locked, Some(2), 2);
        assert!(r.unwrap().reused);
        let (r, w) = run(LockMode::Frozen, Some(1), 2);
        assert_eq!((r.unwrap().lock, w), (1, None));
        let (r, _) = run(LockMode::Frozen, None, 2);
        assert!(matches!(r, Err(LockError::Missing { .. })));
        let (r, w) = run(LockMode::ReadOnly, Some(1), 2);
        assert_eq!((r.unwrap().lock, w), (2, None));
    }
}
