//! File operations relative to an open directory that never follow a symlink: every path is
//! walked one component at a time with `O_NOFOLLOW`, so an entry (or a command) that planted
//! `etc -> /etc` cannot make us write, chown or delete outside the tree we work on.
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Dev, FileType, Mode, OFlags, Timespec, Timestamps};

/// What an entry's metadata is set to: permission bits, owner, mtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attrs {
    /// Permission, set-id and sticky bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
}

impl Attrs {
    /// A directory nobody described: 0755, root's, at the epoch.
    pub(crate) const DEFAULT_DIR: Attrs = Attrs {
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: (0, 0),
    };

    pub(crate) fn of(stat: &rfs::Stat) -> Attrs {
        Attrs {
            mode: stat.st_mode & 0o7777,
            uid: stat.st_uid,
            gid: stat.st_gid,
            mtime: (stat.st_mtime, stat.st_mtime_nsec as u32),
        }
    }
}

fn timestamps(mtime: (i64, u32)) -> Timestamps {
    let spec = Timespec {
        tv_sec: mtime.0,
        tv_nsec: i64::from(mtime.1),
    };
    Timestamps {
        last_access: spec,
        last_modification: spec,
    }
}

/// Opens the directory at `path` itself (which may be anywhere; only what lies below is
/// walked safely).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Opens the directory `name` (one component) in `dir`, refusing a symlink.
pub(crate) fn open_child_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Walks `components` below `root` without following symlinks; `None` when one is missing,
/// an error when one is not a directory.
pub(crate) fn walk(root: BorrowedFd<'_>, components: &[&str]) -> io::Result<Option<OwnedFd>> {
    let mut current = rfs::openat(
        root,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for name in components {
        match open_child_dir(current.as_fd(), name) {
            Ok(next) => current = next,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(not_a_dir(name, e)),
        }
    }
    Ok(Some(current))
}

/// A symlink or file met where a directory was needed says so (ELOOP reads badly).
fn not_a_dir(name: &str, err: io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(code) if code == libc_eloop() || code == libc_enotdir() => io::Error::other(format!(
            "{name:?} is a symlink or a file, not a directory; refusing to go through it"
        )),
        _ => err,
    }
}

fn libc_eloop() -> i32 {
    rustix::io::Errno::LOOP.raw_os_error()
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}

/// `lstat` of `name` in `dir`; `None` when absent.
pub(crate) fn stat_at(
    dir: BorrowedFd<'_>,
    name: impl rustix::path::Arg,
) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn file_type(stat: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

/// Removes whatever is at `name` in `dir` (a whole tree for a directory); absent is fine.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let Some(stat) = stat_at(dir, name)? else {
        return Ok(());
    };
    if file_type(&stat) == FileType::Directory {
        let child = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        empty_dir(child.as_fd())?;
        rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// Removes everything inside `dir`.
pub(crate) fn empty_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    for name in child_names(dir)? {
        remove_at(dir, OsStr::from_bytes(&name))?;
    }
    Ok(())
}

/// The names in `dir` (without `.` and `..`), as raw bytes, sorted.
pub(crate) fn child_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let fd = rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Sets owner, mode and mtime of the open file or directory `fd`.
pub(crate) fn set_attrs(fd: BorrowedFd<'_>, attrs: &Attrs) -> io::Result<()> {
    set_owner_and_mode(fd, attrs)?;
    set_mtime(fd, attrs)
}

/// Owner, then mode: a chown clears set-id bits (and file capabilities: set those after).
pub(crate) fn set_owner_and_mode(fd: BorrowedFd<'_>, attrs: &Attrs) -> io::Result<()> {
    rfs::fchown(
        fd,
        Some(rfs::Uid::from_raw(attrs.uid)),
        Some(rfs::Gid::from_raw(attrs.gid)),
    )?;
    rfs::fchmod(fd, Mode::from_raw_mode(attrs.mode))?;
    Ok(())
}

pub(crate) fn set_mtime(fd: BorrowedFd<'_>, attrs: &Attrs) -> io::Result<()> {
    rfs::futimens(fd, &timestamps(attrs.mtime)).map_err(io::Error::from)
}

/// Owner and mtime of the symlink (or device, fifo) `name` in `dir`, not following it.
pub(crate) fn set_link_attrs(dir: BorrowedFd<'_>, name: &str, attrs: &Attrs) -> io::Result<()> {
    rfs::chownat(
        dir,
        name,
        Some(rfs::Uid::from_raw(attrs.uid)),
        Some(rfs::Gid::from_raw(attrs.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    rfs::utimensat(
        dir,
        name,
        &timestamps(attrs.mtime),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Owner, mode and mtime of a device node or fifo we just made (one cannot open those
/// safely); the mode after the owner.
pub(crate) fn set_special_attrs(dir: BorrowedFd<'_>, name: &str, attrs: &Attrs) -> io::Result<()> {
    set_link_attrs(dir, name, attrs)?;
    rfs::chmodat(dir, name, Mode::from_raw_mode(attrs.mode), AtFlags::empty())?;
    Ok(())
}

/// Creates a new, empty regular file `name` in `dir` (it must not exist), open for writing.
pub(crate) fn create_file(dir: BorrowedFd<'_>, name: &str) -> io::Result<std::fs::File> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(std::fs::File::from(fd))
}

/// Opens the regular file `name` in `dir` for reading, refusing a symlink.
pub(crate) fn open_file(dir: BorrowedFd<'_>, name: &str) -> io::Result<std::fs::File> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

pub(crate) fn mkdir(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(io::Error::from)
}

pub(crate) fn symlink(dir: BorrowedFd<'_>, name: &str, target: &[u8]) -> io::Result<()> {
    rfs::symlinkat(OsStr::from_bytes(target), dir, name).map_err(io::Error::from)
}

pub(crate) fn hard_link(
    from_dir: BorrowedFd<'_>,
    from: &str,
    dir: BorrowedFd<'_>,
    name: &str,
) -> io::Result<()> {
    rfs::linkat(from_dir, from, dir, name, AtFlags::empty()).map_err(io::Error::from)
}

/// A character device 0/0: overlayfs's whiteout.
pub(crate) fn whiteout(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    rfs::mknodat(
        dir,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        rfs::makedev(0, 0),
    )
    .map_err(io::Error::from)
}

pub(crate) fn mknod(dir: BorrowedFd<'_>, name: &str, kind: FileType, dev: Dev) -> io::Result<()> {
    rfs::mknodat(dir, name, kind, Mode::from_raw_mode(0o600), dev).map_err(io::Error::from)
}

pub(crate) fn set_xattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    rfs::fsetxattr(fd, name, value, rfs::XattrFlags::empty()).map_err(io::Error::from)
}

/// The value of the extended attribute `name` of `path` (not following a symlink); `None`
/// when it has none.
pub(crate) fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buffer = vec![0u8; 256];
    loop {
        match rfs::lgetxattr(path, name, &mut buffer[..]) {
            Ok(len) => {
                buffer.truncate(len);
                return Ok(Some(buffer));
            }
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => return Ok(None),
            Err(rustix::io::Errno::RANGE) if buffer.len() < 1 << 16 => {
                buffer.resize(buffer.len() * 4, 0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// An advisory lock held for as long as the returned descriptor lives; `None` when another
/// process holds it.
pub(crate) fn try_lock(path: &Path) -> io::Result<Option<OwnedFd>> {
    let fd = rfs::open(
        path,
        OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )?;
    match rfs::flock(&fd, rfs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::symlink as make_symlink;

    use super::*;

    #[test]
    fn walks_refuse_symlinks_and_report_missing_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(tmp.path().join("a/b")).unwrap();
        make_symlink(outside.path(), tmp.path().join("a/out")).unwrap();
        let root = open_dir(tmp.path()).unwrap();
        assert!(walk(root.as_fd(), &["a", "b"]).unwrap().is_some());
        assert!(walk(root.as_fd(), &["a", "nothing"]).unwrap().is_none());
        let err = walk(root.as_fd(), &["a", "out"]).unwrap_err().to_string();
        assert!(err.contains("\"out\"") && err.contains("symlink"), "{err}");

        // Removing through the parent never touches what a symlink points to.
        fs_err::write(outside.path().join("keep"), "x").unwrap();
        let a = walk(root.as_fd(), &["a"]).unwrap().unwrap();
        remove_at(a.as_fd(), OsStr::new("out")).unwrap();
        assert!(outside.path().join("keep").exists());
        remove_at(root.as_fd(), OsStr::new("a")).unwrap();
        assert!(!tmp.path().join("a").exists());
        remove_at(root.as_fd(), OsStr::new("a")).unwrap();
    }

    #[test]
    fn a_lock_is_exclusive_while_held() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let held = try_lock(&path).unwrap().unwrap();
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock(&path).unwrap().is_some());
    }
}
