//! Temp space in a shared cache: each process that writes gets its own directory under the
//! cache's temp directory (the store's `tmp/`, the wheel and `.deb` download caches), holding an exclusive `flock` on `tmp/<dir>/lock` for as long as it lives. A process
//! killed mid-write (even with `kill -9`) leaves its directory behind unlocked, since the kernel
//! drops the lock with the process; [`sweep`] (run whenever a store is opened) removes every
//! directory whose lock it can take. No pids are trusted, so pid reuse cannot keep garbage or
//! delete live files.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{FlockOperation, flock};

/// Prefix of per-process directories under `tmp/`.
const DIR_PREFIX: &str = "proc-";
/// The lock file inside each one.
const LOCK: &str = "lock";
/// A directory without its lock file yet (its creator between `mkdir` and `open`) is left alone
/// this long; so are loose temp files written by older versions, and key temp files.
const GRACE: Duration = Duration::from_secs(10 * 60);

/// This process's temp directory in one store; removed (with whatever is left in it) on drop.
#[derive(Debug)]
pub struct ProcessDir {
    path: PathBuf,
    // Held open for the lock; closing it releases the lock.
    _lock: std::fs::File,
}

impl ProcessDir {
    /// Creates (with `tmp` itself if needed) and locks a new directory under `tmp`.
    pub fn create(tmp: &Path) -> io::Result<Self> {
        fs_err::create_dir_all(tmp)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir_in(tmp)
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot create a temp directory in {}: {err}", tmp.display()),
                )
            })?;
        let lock_path = dir.path().join(LOCK);
        let lock = fs_err::File::create(&lock_path)?.into_parts().0;
        flock(&lock, FlockOperation::NonBlockingLockExclusive).map_err(|errno| {
            io::Error::new(
                io::Error::from(errno).kind(),
                format!("cannot lock {}: {errno}", lock_path.display()),
            )
        })?;
        Ok(Self {
            path: dir.keep(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProcessDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// This process's directory under `tmp` for the life of the process (made on first use, after
/// sweeping `tmp`), for caches outside the blob store: download temp files go in it and are
/// renamed into place from it. Left unlocked at exit, it is swept by the next process.
pub fn shared(tmp: &Path) -> io::Result<std::sync::Arc<ProcessDir>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, PoisonError};
    static DIRS: Mutex<Option<HashMap<PathBuf, Arc<ProcessDir>>>> = Mutex::new(None);
    let mut dirs = DIRS.lock().unwrap_or_else(PoisonError::into_inner);
    let dirs = dirs.get_or_insert_with(HashMap::new);
    if let Some(dir) = dirs.get(tmp) {
        return Ok(dir.clone());
    }
    sweep(tmp);
    let dir = Arc::new(ProcessDir::create(tmp)?);
    dirs.insert(tmp.to_path_buf(), dir.clone());
    Ok(dir)
}

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Files and directories removed.
    pub entries: u64,
    /// Bytes they held.
    pub bytes: u64,
}

fn old(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|age| age > GRACE)
        })
}

/// Removes, under `tmp`, the directories of processes that are gone, and loose temp files
/// (`blob-*`, `.tmp*`: written by older versions) older than [`GRACE`]. Errors are skipped: a
/// sweep never fails a build.
pub fn sweep(tmp: &Path) -> Swept {
    let mut swept = Swept::default();
    for entry in read_dir(tmp) {
        let (name, path) = (entry.file_name(), entry.path());
        let name = name.to_string_lossy();
        let stale = if name.starts_with(DIR_PREFIX) {
            match std::fs::OpenOptions::new().read(true).open(path.join(LOCK)) {
                // Taken: its process is gone. Removed while held, so no new owner can race.
                Ok(lock) => flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok(),
                Err(err) if err.kind() == io::ErrorKind::NotFound => old(&path),
                Err(_) => false,
            }
        } else {
            (name.starts_with("blob-") || name.starts_with(".tmp")) && old(&path)
        };
        if stale {
            remove(&path, &mut swept);
        }
    }
    swept
}

/// Removes files under `dir` whose names start with `prefix` and that are older than
/// [`GRACE`]: temp files written beside their destination (key records).
pub(crate) fn sweep_loose(dir: &Path, prefix: &str) -> Swept {
    let mut swept = Swept::default();
    for entry in read_dir(dir) {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) && old(&path) {
            remove(&path, &mut swept);
        }
    }
    swept
}

fn read_dir(dir: &Path) -> impl Iterator<Item = std::fs::DirEntry> {
    std::fs::read_dir(dir).into_iter().flatten().flatten()
}

/// Bytes of the regular files under `path` (itself, if a file), not following links.
pub fn bytes_under(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .sum()
}

fn remove(path: &Path, swept: &mut Swept) {
    let bytes = bytes_under(path);
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if removed.is_ok() {
        swept.entries += 1;
        swept.bytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_directory_is_kept_and_a_dead_one_swept() {
        let root = tempfile::tempdir().unwrap();
        let (tmp, keys) = (root.path().join("tmp"), root.path().join("keys"));
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join("key-young"), b"").unwrap();
        let live = ProcessDir::create(&tmp).unwrap();
        std::fs::write(live.path().join("blob-1"), b"live").unwrap();
        // A dead process's directory: its lock file exists but nobody holds it.
        let dead = tmp.join("proc-1-dead");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("blob-2"), vec![0u8; 1000]).unwrap();
        // One being created right now (no lock file yet) is left alone.
        let young = tmp.join("proc-2-young");
        std::fs::create_dir_all(&young).unwrap();

        let swept = sweep(&tmp);
        assert_eq!(sweep_loose(&keys, "key-"), Swept::default());
        assert_eq!(
            swept,
            Swept {
                entries: 1,
                bytes: 1000
            }
        );
        assert!(live.path().join("blob-1").exists());
        assert!(!dead.exists());
        assert!(young.exists());

        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists(), "a process's directory goes with it");
    }
}
