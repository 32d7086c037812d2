//! Mount points the OCI runtime needs (`/proc`, `/dev`, `/etc/hosts`, a secret's target...)
//! that the image lacks. Left to runc, they would be created in the step's upper directory and
//! end up in its layer (with their parent directories copied up). Instead they are made in a
//! small extra lower layer (Docker's "init layer" idea): present while the command runs, never
//! part of what it changed. Existing parent directories are mirrored into that layer with
//! their attributes (owner, mode, mtime), since in an overlay a directory's attributes come from
//! the topmost layer that has it.
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::FileType;

use super::error::{StepError, io_text};
use super::fsops::{self, Attrs};

/// What must exist at a mount point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PointKind {
    Dir,
    File,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountPoint {
    /// Absolute path inside the container.
    pub target: String,
    pub kind: PointKind,
}

/// Symlinks followed at most, as the kernel does.
const MAX_HOPS: usize = 40;

/// One thing to make in the stub layer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    /// A directory that exists below: made with the same attributes.
    Mirror(Attrs),
    NewDir,
    NewFile,
}

/// Fills the empty directory `stub` with what `view` (the merged layers below) lacks for
/// `points`.
pub(crate) fn build(view: &Path, stub: &Path, points: &[MountPoint]) -> Result<(), StepError> {
    let view_fd = fsops::open_dir(view).map_err(|e| StepError::system("the image's root", &e))?;
    let mut items: BTreeMap<Vec<String>, Item> = BTreeMap::new();
    for point in points {
        plan(view_fd.as_fd(), point, &mut items)?;
    }
    let stub_fd =
        fsops::open_dir(stub).map_err(|e| StepError::system("the mount-point layer", &e))?;
    let fail = |path: &[String], err: io::Error| StepError::MountTarget {
        target: format!("/{}", path.join("/")),
        reason: io_text(&err),
    };
    // Parents sort before their children.
    for (path, item) in &items {
        let (name, parents) = path.split_last().expect("mount points are never the root");
        let dir = fsops::walk(
            stub_fd.as_fd(),
            &parents.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .map_err(|e| fail(path, e))?
        .ok_or_else(|| fail(path, io::Error::other("its parent was not made")))?;
        match item {
            Item::Mirror(_) | Item::NewDir => {
                fsops::mkdir(dir.as_fd(), name).map_err(|e| fail(path, e))?;
            }
            Item::NewFile => {
                let file = fsops::create_file(dir.as_fd(), name).map_err(|e| fail(path, e))?;
                let attrs = Attrs {
                    mode: 0o644,
                    ..Attrs::DEFAULT_DIR
                };
                fsops::set_attrs(file.as_fd(), &attrs).map_err(|e| fail(path, e))?;
            }
        }
    }
    // Directories last, deepest first: making a child changes its parent's mtime.
    for (path, item) in items.iter().rev() {
        let attrs = match item {
            Item::Mirror(attrs) => *attrs,
            Item::NewDir => Attrs::DEFAULT_DIR,
            Item::NewFile => continue,
        };
        let dir: OwnedFd = fsops::walk(
            stub_fd.as_fd(),
            &path.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .map_err(|e| fail(path, e))?
        .ok_or_else(|| fail(path, io::Error::other("it was not made")))?;
        fsops::set_attrs(dir.as_fd(), &attrs).map_err(|e| fail(path, e))?;
    }
    Ok(())
}

/// Resolves `point` in the view as the runtime will (symlinks followed inside the root) and
/// records what is missing, with the directories above it.
fn plan(
    view: std::os::fd::BorrowedFd<'_>,
    point: &MountPoint,
    items: &mut BTreeMap<Vec<String>, Item>,
) -> Result<(), StepError> {
    let refuse = |reason: String| StepError::MountTarget {
        target: point.target.clone(),
        reason,
    };
    let mut queue: VecDeque<String> = components(&point.target);
    let mut resolved: Vec<(String, Attrs)> = Vec::new();
    let mut hops = 0;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let last = queue.is_empty();
        let parents: Vec<&str> = resolved.iter().map(|(n, _)| n.as_str()).collect();
        let dir = fsops::walk(view, &parents)
            .map_err(|e| refuse(io_text(&e)))?
            .ok_or_else(|| refuse("a directory above it vanished".into()))?;
        let stat = fsops::stat_at(dir.as_fd(), name.as_str()).map_err(|e| refuse(io_text(&e)))?;
        let Some(stat) = stat else {
            // Missing: mirror what exists above, make the rest.
            if queue.iter().any(|n| n == "..") {
                return Err(refuse(format!(
                    "{name:?} does not exist, and the path climbs out of it"
                )));
            }
            let mut path = Vec::new();
            for (existing, attrs) in &resolved {
                path.push(existing.clone());
                items.entry(path.clone()).or_insert(Item::Mirror(*attrs));
            }
            path.push(name);
            for part in queue {
                items.entry(path.clone()).or_insert(Item::NewDir);
                path.push(part);
            }
            let kind = match point.kind {
                PointKind::Dir => Item::NewDir,
                PointKind::File => Item::NewFile,
            };
            items.entry(path).or_insert(kind);
            return Ok(());
        };
        match fsops::file_type(&stat) {
            FileType::Symlink => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(refuse("too many levels of symlinks".into()));
                }
                let target = rustix::fs::readlinkat(dir.as_fd(), name.as_str(), Vec::new())
                    .map_err(|e| refuse(io_text(&e.into())))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for part in components(&target).into_iter().rev() {
                    queue.push_front(part);
                }
            }
            FileType::Directory if last => {
                return if point.kind == PointKind::Dir {
                    Ok(())
                } else {
                    Err(refuse(
                        "the image has a directory there, and a file is mounted on it".into(),
                    ))
                };
            }
            FileType::Directory => resolved.push((name, Attrs::of(&stat))),
            _ if last && point.kind == PointKind::File => return Ok(()),
            _ => {
                return Err(refuse(format!(
                    "{name:?} is not a directory in the image, and a directory is needed there"
                )));
            }
        }
    }
    Ok(())
}

fn components(path: &str) -> VecDeque<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    fn point(target: &str, kind: PointKind) -> MountPoint {
        MountPoint {
            target: target.into(),
            kind,
        }
    }

    #[test]
    fn missing_points_are_made_below_mirrored_parents() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (view, stub) = (tmp.path().join("view"), tmp.path().join("stub"));
        fs_err::create_dir_all(view.join("etc")).unwrap();
        fs_err::create_dir_all(view.join("proc")).unwrap();
        fs_err::create_dir_all(view.join("run/real")).unwrap();
        fs_err::write(view.join("etc/hosts"), "x").unwrap();
        symlink("../run/real/resolv.conf", view.join("etc/resolv.conf")).unwrap();
        fs_err::set_permissions(view.join("run"), std::fs::Permissions::from_mode(0o710)).unwrap();
        std::fs::File::open(view.join("run"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(77))
            .unwrap();
        fs_err::create_dir(&stub).unwrap();
        build(
            &view,
            &stub,
            &[
                point("/proc", PointKind::Dir),
                point("/sys", PointKind::Dir),
                point("/etc/hosts", PointKind::File),
                point("/etc/resolv.conf", PointKind::File),
                point("/run/secrets/token", PointKind::File),
            ],
        )
        .unwrap();
        let mut made: Vec<String> = walkdir::WalkDir::new(&stub)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(&stub)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        made.sort();
        assert_eq!(
            made,
            [
                "run",
                "run/real",
                "run/real/resolv.conf",
                "run/secrets",
                "run/secrets/token",
                "sys"
            ]
        );
        let run = fs_err::metadata(stub.join("run")).unwrap();
        assert_eq!((run.mode() & 0o7777, run.mtime()), (0o710, 77));
        assert!(stub.join("run/real/resolv.conf").is_file());
    }

    #[test]
    fn impossible_points_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let (view, stub) = (tmp.path().join("view"), tmp.path().join("stub"));
        fs_err::create_dir_all(view.join("etc/hosts")).unwrap();
        fs_err::write(view.join("file"), "").unwrap();
        symlink("loop", view.join("loop")).unwrap();
        fs_err::create_dir(&stub).unwrap();
        for (target, kind, expected) in [
            ("/etc/hosts", PointKind::File, "a directory there"),
            ("/file/x", PointKind::File, "not a directory"),
            ("/loop/x", PointKind::Dir, "too many levels"),
        ] {
            let err = build(&view, &stub, &[point(target, kind)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(target) && err.contains(expected), "{err}");
        }
    }
}
