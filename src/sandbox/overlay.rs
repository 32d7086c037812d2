//! Overlay mounts and the working directory of one step, inside the sandbox process's own
//! mount namespace (so a mount can never outlive the process, whatever happens to it).
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use super::error::{StepError, io_text};
use super::fsops;

/// A mount, unmounted when dropped.
#[derive(Debug)]
pub(crate) struct Mounted {
    target: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = rustix::mount::unmount(&self.target, UnmountFlags::DETACH) {
            tracing::debug!("unmounting {}: {e}", self.target.display());
        }
    }
}

/// Mounts an overlay at `target`: `lowers` top first, and `upper` (upper and work directories)
/// for a writable one. Paths are relative to the working directory (the step's directory), so
/// that a long stack still fits in one page of mount options. `userxattr` for a mount in a
/// user namespace.
pub(crate) fn mount_overlay(
    lowers: &[String],
    upper: Option<(&str, &str)>,
    target: &Path,
    userxattr: bool,
) -> Result<Mounted, StepError> {
    let mut options = format!("lowerdir={}", lowers.join(":"));
    if let Some((upper, work)) = upper {
        options = format!("{options},upperdir={upper},workdir={work}");
    }
    // No redirects, no metacopy, no index: the upper directory then holds every change as
    // whole files, whiteouts and opaque directories, which is what a layer records.
    options.push_str(",index=off,metacopy=off,redirect_dir=nofollow");
    if userxattr {
        options.push_str(",userxattr");
    }
    let data = CString::new(options.clone()).map_err(|_| StepError::System {
        action: "overlay options".into(),
        reason: "a NUL byte".into(),
    })?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .map_err(|e| {
        let hint = if userxattr {
            " (an overlay mount inside a user namespace needs Linux 5.11 or later)"
        } else {
            ""
        };
        StepError::System {
            action: format!("mounting an overlay on {} ({options})", target.display()),
            reason: format!("{}{hint}", io_text(&e.into())),
        }
    })?;
    Ok(Mounted {
        target: target.to_path_buf(),
    })
}

/// The merged view of `lowers` (bottom first, relative names), read-only, for looking things
/// up: the directory itself for one layer, an overlay for more, an empty directory for none.
pub(crate) struct View {
    pub path: PathBuf,
    _mount: Option<Mounted>,
}

impl View {
    pub(crate) fn new(
        run: &Path,
        lowers: &[String],
        name: &str,
        userxattr: bool,
    ) -> Result<View, StepError> {
        let path = run.join(name);
        match lowers {
            [] => {
                fs_err::create_dir_all(&path)
                    .map_err(|e| StepError::system("an empty view", &e))?;
                Ok(View { path, _mount: None })
            }
            [only] => Ok(View {
                path: run.join(only),
                _mount: None,
            }),
            _ => {
                fs_err::create_dir_all(&path).map_err(|e| StepError::system("a view", &e))?;
                let top_first: Vec<String> = lowers.iter().rev().cloned().collect();
                let mount = mount_overlay(&top_first, None, Path::new(name), userxattr)?;
                Ok(View {
                    path,
                    _mount: Some(mount),
                })
            }
        }
    }
}

/// The directory one step works in, `<cache>/sandbox/runs/run-…`: locked while in use,
/// removed when dropped. A directory whose lock nobody holds was left by a killed process and
/// is removed by the next one ([`sweep`]).
#[derive(Debug)]
pub(crate) struct RunDir {
    pub path: PathBuf,
    _lock: std::os::fd::OwnedFd,
}

impl RunDir {
    pub(crate) fn create(runs: &Path) -> Result<RunDir, StepError> {
        let fail =
            |e: io::Error| StepError::system(format!("a work directory in {}", runs.display()), &e);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("run-{}-{nanos}", std::process::id());
        let fresh = runs.join(format!(".new-{name}"));
        fs_err::create_dir_all(&fresh).map_err(fail)?;
        let lock = fsops::try_lock(&fresh.join("lock"))
            .map_err(fail)?
            .ok_or_else(|| fail(io::Error::other("locked by another process")))?;
        let path = runs.join(name);
        fs_err::rename(&fresh, &path).map_err(fail)?;
        Ok(RunDir { path, _lock: lock })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = fs_err::remove_dir_all(&self.path) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// Removes the work directories of processes that are gone (their lock is free), and
/// half-made ones older than an hour. A killed process's container is deleted with `runc`
/// first, which removes the cgroups runc made for it.
pub(crate) fn sweep(runs: &Path, runc: Option<&Path>) {
    let Ok(entries) = fs_err::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name.starts_with("run-") {
            matches!(fsops::try_lock(&path.join("lock")), Ok(Some(_)))
        } else if name.starts_with(".new-") {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600)
        } else {
            false
        };
        if stale {
            tracing::debug!("removing the stale work directory {}", path.display());
            let state = path.join("state");
            if let (Some(runc), Ok(containers)) = (runc, fs_err::read_dir(&state)) {
                for container in containers.flatten() {
                    let _ = std::process::Command::new(runc)
                        .arg("--root")
                        .arg(&state)
                        .args(["delete", "--force"])
                        .arg(container.file_name())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
            let _ = fs_err::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn work_dirs_of_live_processes_are_kept_and_others_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let live = RunDir::create(tmp.path()).unwrap();
        let dead = tmp.path().join("run-1-2");
        fs_err::create_dir_all(dead.join("sub")).unwrap();
        fs_err::write(dead.join("lock"), "").unwrap();
        let fresh = tmp.path().join(".new-run-3-4");
        fs_err::create_dir_all(&fresh).unwrap();
        sweep(tmp.path(), None);
        assert!(live.path.is_dir(), "locked: in use");
        assert!(!dead.exists(), "unlocked: its process is gone");
        assert!(
            fresh.exists(),
            "a young half-made directory may be being set up"
        );
        let path = live.path.clone();
        drop(live);
        assert!(!path.exists());
    }
}
