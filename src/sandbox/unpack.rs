//! One image layer unpacked into a directory of its own, in overlayfs's format, so that a stack
//! of them is an overlay mount's lower directories (as containerd's overlay snapshotter keeps
//! them): a whiteout (`.wh.NAME`) becomes a 0/0 character device, an opaque whiteout
//! (`.wh..wh..opq`) the `overlay.opaque` extended attribute of its directory.
//!
//! Layers come from registries: every archive is treated as hostile. Entry paths go through
//! `safe_path::relative_path`; every directory is walked one component at a time without
//! following symlinks (see `fsops`), so a symlink an earlier entry planted leads nowhere; hard
//! links must name a file of this layer; device nodes need the privilege to make them; only
//! harmless extended attributes are applied; and the bytes written are counted against a cap.
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::FileType;

use super::error::{StepError, io_text};
use super::fsops::{self, Attrs};
use super::limits;

use layers::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

/// Bytes of file content the unpacking of one build may write, and how far one layer may
/// expand (see [`limits`](super::limits)).
#[derive(Debug)]
pub(crate) struct Budget {
    pub limit: u64,
    pub used: u64,
    pub max_ratio: u64,
}

/// Which extended attribute marks an opaque directory: `trusted.overlay.opaque` for an
/// overlay mounted by root, `user.overlay.opaque` for one mounted in a user namespace
/// (`userxattr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum XattrSpace {
    Trusted,
    User,
}

impl XattrSpace {
    pub(crate) fn opaque(self) -> &'static str {
        match self {
            XattrSpace::Trusted => "trusted.overlay.opaque",
            XattrSpace::User => "user.overlay.opaque",
        }
    }
}

/// Unpacks one layer blob (gzip, zstd or plain tar, sniffed) into `dest`, an empty directory.
/// `below` is the merged view of the layers under it: a directory this layer does not describe
/// but needs (its entries' parents) gets the attributes it has there, so that it does not hide
/// them in the overlay.
pub(crate) fn unpack_layer(
    blob: impl Read,
    dest: &Path,
    layer: &str,
    below: Option<&Path>,
    xattrs: XattrSpace,
    budget: &mut Budget,
) -> Result<(), StepError> {
    let layer_error = |err: io::Error| StepError::Layer {
        layer: layer.to_string(),
        reason: io_text(&err),
    };
    let (decoded, counts) = limits::decompress(blob, budget.max_ratio).map_err(layer_error)?;
    let max_ratio = budget.max_ratio;
    let result = unpack_tar(decoded, dest, layer, below, xattrs, budget);
    if counts.tripped() {
        return Err(StepError::Inflated {
            layer: layer.to_string(),
            compressed: counts.compressed(),
            inflated: counts.inflated(),
            max_ratio,
        });
    }
    result
}

fn unpack_tar(
    decoded: impl Read,
    dest: &Path,
    layer: &str,
    below: Option<&Path>,
    xattrs: XattrSpace,
    budget: &mut Budget,
) -> Result<(), StepError> {
    let layer_error = |err: io::Error| StepError::Layer {
        layer: layer.to_string(),
        reason: io_text(&err),
    };
    let root = fsops::open_dir(dest).map_err(layer_error)?;
    let below = match below {
        Some(path) => Some(fsops::open_dir(path).map_err(layer_error)?),
        None => None,
    };
    let mut unpacker = Unpacker {
        root,
        below,
        xattrs,
        layer,
        budget,
        dirs: HashMap::new(),
        parent: None,
    };
    let mut archive = tar::Archive::new(decoded);
    for entry in archive.entries().map_err(layer_error)? {
        let entry = entry.map_err(layer_error)?;
        unpacker.entry(entry)?;
    }
    unpacker.finish()
}

struct Unpacker<'a> {
    root: OwnedFd,
    below: Option<OwnedFd>,
    xattrs: XattrSpace,
    layer: &'a str,
    budget: &'a mut Budget,
    /// Directories to stamp at the end (their mtime changes while children are added).
    dirs: HashMap<String, Attrs>,
    /// The last parent directory opened, by path: entries come grouped by directory.
    parent: Option<(String, OwnedFd)>,
}

/// The parts of a tar header we apply, PAX records taken into account.
struct Meta {
    attrs: Attrs,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Unpacker<'_> {
    fn error(&self, entry: &str, reason: impl Into<String>) -> StepError {
        StepError::Entry {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn io(&self, entry: &str, err: &io::Error) -> StepError {
        self.error(entry, io_text(err))
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), StepError> {
        let raw = entry.path_bytes().into_owned();
        let Ok(text) = String::from_utf8(raw.clone()) else {
            return Err(self.error(
                &String::from_utf8_lossy(&raw),
                "the path is not valid UTF-8",
            ));
        };
        if text.split('/').all(|c| c.is_empty() || c == ".") {
            return Ok(()); // the root itself: the overlay's root comes from the upper dir
        }
        let path = safe_path::relative_path(&text).map_err(|e| self.error(&text, e.to_string()))?;
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (parent.to_string(), name.to_string()),
            None => (String::new(), path.clone()),
        };
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let meta = self.meta(&path, &mut entry)?;
        let dir = self.parent_dir(&path, &parent)?;
        let dir = dir.as_fd();

        if name == OPAQUE_WHITEOUT {
            return fsops::set_xattr(dir, self.xattrs.opaque(), b"y")
                .map_err(|e| self.io(&path, &e));
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            safe_path::file_name(hidden).map_err(|e| self.error(&path, e.to_string()))?;
            fsops::remove_at(dir, OsStr::new(hidden)).map_err(|e| self.io(&path, &e))?;
            return fsops::whiteout(dir, hidden).map_err(|e| self.io(&path, &e));
        }

        let existing = fsops::stat_at(dir, name.as_str()).map_err(|e| self.io(&path, &e))?;
        let existing_dir = existing
            .as_ref()
            .is_some_and(|s| fsops::file_type(s) == FileType::Directory);
        if kind.is_dir() && existing_dir {
            // A directory met again merges; its attributes are the last ones given.
        } else if existing.is_some() {
            fsops::remove_at(dir, OsStr::new(&name)).map_err(|e| self.io(&path, &e))?;
        }
        if matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
            self.budget.used = self.budget.used.saturating_add(entry.size());
            if self.budget.used > self.budget.limit {
                return Err(StepError::TooLarge {
                    layer: self.layer.to_string(),
                    limit: self.budget.limit,
                });
            }
        }
        let attrs = meta.attrs;
        let fail = |err: io::Error| self.io(&path, &err);
        match kind {
            tar::EntryType::Directory => {
                if !existing_dir {
                    fsops::mkdir(dir, &name).map_err(fail)?;
                }
                let child = fsops::open_child_dir(dir, &name).map_err(fail)?;
                fsops::set_owner_and_mode(child.as_fd(), &attrs).map_err(fail)?;
                self.set_xattrs(child.as_fd(), &path, &meta.xattrs)?;
                self.dirs.insert(path, attrs);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                let mut file = fsops::create_file(dir, &name).map_err(fail)?;
                let copied = io::copy(&mut entry, &mut file).map_err(fail)?;
                if copied != size {
                    return Err(self.error(
                        &path,
                        format!("the archive ends inside it ({copied} of {size} bytes)"),
                    ));
                }
                fsops::set_owner_and_mode(file.as_fd(), &attrs).map_err(fail)?;
                self.set_xattrs(file.as_fd(), &path, &meta.xattrs)?;
                fsops::set_mtime(file.as_fd(), &attrs).map_err(fail)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(std::borrow::Cow::into_owned)
                    .filter(|t| !t.is_empty() && !t.contains(&0))
                    .ok_or_else(|| self.error(&path, "a symlink without a target"))?;
                fsops::symlink(dir, &name, &target).map_err(fail)?;
                fsops::set_link_attrs(dir, &name, &attrs).map_err(fail)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                self.hard_link(&path, &target, dir, &name)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (file_type, device) = match kind {
                    tar::EntryType::Char => {
                        (FileType::CharacterDevice, self.device(&path, &entry)?)
                    }
                    tar::EntryType::Block => (FileType::BlockDevice, self.device(&path, &entry)?),
                    _ => (FileType::Fifo, 0),
                };
                fsops::mknod(dir, &name, file_type, device).map_err(|e| {
                    if e.kind() == io::ErrorKind::PermissionDenied {
                        self.error(
                            &path,
                            "a device node, and this sandbox has no privilege to make one \
                             (running without root)",
                        )
                    } else {
                        self.io(&path, &e)
                    }
                })?;
                fsops::set_special_attrs(dir, &name, &attrs).map_err(fail)?;
            }
            other => {
                return Err(self.error(
                    &path,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ));
            }
        }
        Ok(())
    }

    fn device<R: Read>(&self, path: &str, entry: &tar::Entry<'_, R>) -> Result<u64, StepError> {
        let header = entry.header();
        let major = header
            .device_major()
            .map_err(|e| self.io(path, &e))?
            .unwrap_or(0);
        let minor = header
            .device_minor()
            .map_err(|e| self.io(path, &e))?
            .unwrap_or(0);
        Ok(rustix::fs::makedev(major, minor))
    }

    /// Mode, owner, mtime (PAX records over the header's fields) and the extended attributes
    /// we apply: `security.capability` and `user.*` (not `user.overlay.*`). Others (`trusted.*`,
    /// SELinux labels, ACLs) describe the machine that made the layer, or would steer overlayfs.
    fn meta<R: Read>(&self, path: &str, entry: &mut tar::Entry<'_, R>) -> Result<Meta, StepError> {
        let header = entry.header();
        let field = |value: io::Result<u64>| value.map_err(|e| self.io(path, &e));
        let mode = field(header.mode().map(u64::from))? as u32 & 0o7777;
        let mut uid = field(header.uid())?;
        let mut gid = field(header.gid())?;
        let mut mtime = (field(header.mtime())? as i64, 0u32);
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().map_err(|e| self.io(path, &e))? {
            for extension in extensions {
                let extension = extension.map_err(|e| self.io(path, &e))?;
                let Ok(key) = extension.key() else { continue };
                let value = extension.value_bytes();
                let number = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or_else(|| self.error(path, format!("bad PAX record {key}")))
                };
                match key {
                    "uid" => uid = number()?,
                    "gid" => gid = number()?,
                    "mtime" => mtime = parse_pax_time(value).unwrap_or(mtime),
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.")
                            && applies(name)
                        {
                            xattrs.push((name.to_string(), value.to_vec()));
                        }
                    }
                }
            }
        }
        let id = |value: u64, what: &str| {
            u32::try_from(value)
                .map_err(|_| self.error(path, format!("{what} {value} is too large")))
        };
        Ok(Meta {
            attrs: Attrs {
                mode,
                uid: id(uid, "uid")?,
                gid: id(gid, "gid")?,
                mtime,
            },
            xattrs,
        })
    }

    fn set_xattrs(
        &self,
        fd: BorrowedFd<'_>,
        path: &str,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<(), StepError> {
        for (name, value) in xattrs {
            fsops::set_xattr(fd, name, value).map_err(|e| {
                self.error(path, format!("extended attribute {name}: {}", io_text(&e)))
            })?;
        }
        Ok(())
    }

    fn hard_link(
        &mut self,
        path: &str,
        target: &str,
        dir: BorrowedFd<'_>,
        name: &str,
    ) -> Result<(), StepError> {
        let target = safe_path::relative_path(target)
            .map_err(|e| self.error(path, format!("hard link target: {e}")))?;
        if target == path {
            return Err(self.error(path, "a hard link to itself"));
        }
        let (target_parent, target_name) = target.rsplit_once('/').unwrap_or(("", &target));
        let components: Vec<&str> = target_parent.split('/').filter(|c| !c.is_empty()).collect();
        let target_dir = fsops::walk(self.root.as_fd(), &components)
            .map_err(|e| self.io(path, &e))?
            .ok_or_else(|| self.not_in_layer(path, &target))?;
        let stat = fsops::stat_at(target_dir.as_fd(), target_name)
            .map_err(|e| self.io(path, &e))?
            .ok_or_else(|| self.not_in_layer(path, &target))?;
        if fsops::file_type(&stat) == FileType::Directory {
            return Err(self.error(path, format!("a hard link to the directory {target:?}")));
        }
        fsops::hard_link(target_dir.as_fd(), target_name, dir, name).map_err(|e| self.io(path, &e))
    }

    fn not_in_layer(&self, path: &str, target: &str) -> StepError {
        self.error(
            path,
            format!("a hard link to {target:?}, which is not a file of this layer"),
        )
    }

    /// The directory `parent` of `entry`, made (with the attributes it has below, or 0755
    /// root's) where the layer does not describe it.
    fn parent_dir(&mut self, entry: &str, parent: &str) -> Result<OwnedFd, StepError> {
        if let Some((cached, fd)) = &self.parent
            && cached == parent
        {
            return fd.try_clone().map_err(|e| self.io(entry, &e));
        }
        let mut current = self.root.try_clone().map_err(|e| self.io(entry, &e))?;
        let mut so_far = String::new();
        for name in parent.split('/').filter(|c| !c.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(name);
            match fsops::open_child_dir(current.as_fd(), name) {
                Ok(next) => current = next,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let attrs = self.attrs_below(&so_far);
                    fsops::mkdir(current.as_fd(), name).map_err(|e| self.io(entry, &e))?;
                    let next = fsops::open_child_dir(current.as_fd(), name)
                        .map_err(|e| self.io(entry, &e))?;
                    fsops::set_attrs(next.as_fd(), &attrs).map_err(|e| self.io(entry, &e))?;
                    self.dirs.entry(so_far.clone()).or_insert(attrs);
                    current = next;
                }
                Err(_) => {
                    return Err(self.error(
                        entry,
                        format!("its parent {so_far:?} is not a directory in this layer"),
                    ));
                }
            }
        }
        let fd = current.try_clone().map_err(|e| self.io(entry, &e))?;
        self.parent = Some((parent.to_string(), fd));
        Ok(current)
    }

    /// The attributes of the directory `path` in the layers below, if it is one there.
    fn attrs_below(&self, path: &str) -> Attrs {
        let Some(below) = &self.below else {
            return Attrs::DEFAULT_DIR;
        };
        let components: Vec<&str> = path.split('/').collect();
        let (name, parents) = components.split_last().unwrap_or((&"", &[]));
        match fsops::walk(below.as_fd(), parents) {
            Ok(Some(dir)) => match fsops::stat_at(dir.as_fd(), *name) {
                Ok(Some(stat)) if fsops::file_type(&stat) == FileType::Directory => {
                    Attrs::of(&stat)
                }
                _ => Attrs::DEFAULT_DIR,
            },
            _ => Attrs::DEFAULT_DIR,
        }
    }

    /// Stamps the directories' mtimes, deepest first (stamping one never changes another).
    fn finish(mut self) -> Result<(), StepError> {
        self.parent = None;
        let mut dirs: Vec<(String, Attrs)> = self.dirs.drain().collect();
        dirs.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, attrs) in dirs {
            let components: Vec<&str> = path.split('/').collect();
            // A directory an entry later replaced is gone or not a directory: nothing to stamp.
            if let Ok(Some(dir)) = fsops::walk(self.root.as_fd(), &components) {
                fsops::set_mtime(dir.as_fd(), &attrs).map_err(|e| self.io(&path, &e))?;
            }
        }
        Ok(())
    }
}

/// Whether an extended attribute from a layer is applied (see [`Unpacker::meta`]).
fn applies(name: &str) -> bool {
    name == "security.capability"
        || (name.starts_with("user.") && !name.starts_with("user.overlay."))
}

/// A PAX time: seconds, optionally with a fraction (`1700000000.123456789`).
fn parse_pax_time(value: &[u8]) -> Option<(i64, u32)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = seconds.parse().ok()?;
    let digits: String = fraction.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some((seconds, nanos))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    use super::*;

    enum Item<'a> {
        Dir(&'a str, u32),
        File(&'a str, &'a str, u32),
        Owned(&'a str, u64),
        Link(&'a str, &'a str),
        Hard(&'a str, &'a str),
        Cap(&'a str, &'a [u8]),
    }

    fn tar_of(items: &[Item<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_ustar();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_000);
            match item {
                Item::Dir(path, mode) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_data(&mut header, path, io::empty()).unwrap();
                }
                Item::File(path, content, mode) => {
                    header.set_mode(*mode);
                    header.set_size(content.len() as u64);
                    builder
                        .append_data(&mut header, path, content.as_bytes())
                        .unwrap();
                }
                Item::Owned(path, uid) => {
                    header.set_mode(0o640);
                    header.set_uid(*uid);
                    header.set_gid(*uid);
                    header.set_size(0);
                    builder.append_data(&mut header, path, io::empty()).unwrap();
                }
                Item::Link(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target).unwrap();
                }
                Item::Hard(path, target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_mode(0o644);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target).unwrap();
                }
                Item::Cap(path, value) => {
                    builder
                        .append_pax_extensions([
                            ("SCHILY.xattr.security.capability", *value),
                            ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
                        ])
                        .unwrap();
                    header.set_mode(0o755);
                    header.set_size(1);
                    builder.append_data(&mut header, path, &b"x"[..]).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn unpack(items: &[Item<'_>], dest: &Path, below: Option<&Path>) -> Result<(), StepError> {
        let mut budget = Budget {
            limit: 1 << 20,
            used: 0,
            max_ratio: limits::DEFAULT_MAX_LAYER_RATIO,
        };
        let tar = tar_of(items);
        unpack_layer(
            &tar[..],
            dest,
            "sha256:test",
            below,
            XattrSpace::Trusted,
            &mut budget,
        )
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts_and_entries_keep_their_metadata() {
        if !is_root() {
            eprintln!("skipped: whiteouts (0/0 devices) and chown need root here");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (below, dest) = (tmp.path().join("below"), tmp.path().join("dest"));
        fs_err::create_dir_all(below.join("srv/data")).unwrap();
        fs_err::set_permissions(below.join("srv"), std::fs::Permissions::from_mode(0o711)).unwrap();
        fs_err::create_dir(&dest).unwrap();
        let capability = [
            1u8, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        unpack(
            &[
                Item::Dir("etc/", 0o755),
                Item::File("etc/.wh.gone", "", 0o644),
                Item::Dir("opt/", 0o750),
                Item::File("opt/.wh..wh..opq", "", 0o644),
                Item::File("opt/new", "new", 0o4755),
                Item::Owned("srv/data/owned", 1000),
                Item::Link("bin/sh", "busybox"),
                Item::Hard("opt/again", "opt/new"),
                Item::Cap("usr/bin/ping", &capability),
            ],
            &dest,
            Some(&below),
        )
        .unwrap();

        let gone = fs_err::symlink_metadata(dest.join("etc/gone")).unwrap();
        assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
        assert_eq!(
            fsops::get_xattr(&dest.join("opt"), "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec())
        );
        let new = fs_err::metadata(dest.join("opt/new")).unwrap();
        assert_eq!(new.mode() & 0o7777, 0o4755);
        assert_eq!(new.mtime(), 1_000);
        assert_eq!(new.nlink(), 2, "opt/again is a hard link");
        assert_eq!(fs_err::metadata(dest.join("opt")).unwrap().mtime(), 1_000);
        // srv is not in the layer: made with the attributes it has below.
        assert_eq!(
            fs_err::metadata(dest.join("srv")).unwrap().mode() & 0o7777,
            0o711
        );
        let owned = fs_err::metadata(dest.join("srv/data/owned")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
        assert_eq!(
            fs_err::read_link(dest.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            fsops::get_xattr(&dest.join("usr/bin/ping"), "security.capability").unwrap(),
            Some(capability.to_vec())
        );
        assert_eq!(
            fsops::get_xattr(&dest.join("usr/bin/ping"), "trusted.overlay.opaque").unwrap(),
            None,
            "a layer cannot set overlayfs's own attributes"
        );
    }

    #[test]
    fn hostile_archives_cannot_write_outside() {
        if !is_root() {
            eprintln!("skipped: needs root (chown)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs_err::create_dir(&outside).unwrap();
        let escape = outside.to_string_lossy().into_owned();
        let cases: Vec<(Vec<Item<'_>>, &str)> = vec![
            (
                vec![
                    Item::Link("evil", &escape),
                    Item::File("evil/x", "pwned", 0o644),
                ],
                "not a directory",
            ),
            (
                vec![Item::Link("evil", "/"), Item::Dir("evil/tmp/", 0o755)],
                "not a directory",
            ),
            (vec![Item::Hard("h", "../../etc/passwd")], "`..`"),
            (
                vec![Item::Hard("h", "etc/passwd")],
                "not a file of this layer",
            ),
            (
                vec![Item::Link("l", &escape), Item::File("l/.wh.x", "", 0o644)],
                "not a directory",
            ),
        ];
        for (items, expected) in cases {
            let dest = tempfile::tempdir_in(tmp.path()).unwrap();
            let err = unpack(&items, dest.path(), None).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("sha256:test"), "{err}");
            assert_eq!(fs_err::read_dir(&outside).unwrap().count(), 0, "{err}");
        }
        // `..` in an entry path (the tar crate refuses to write one: set the raw name).
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        let name = b"../escape";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_size(1);
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let mut budget = Budget {
            limit: 1 << 20,
            used: 0,
            max_ratio: limits::DEFAULT_MAX_LAYER_RATIO,
        };
        let err = unpack_layer(
            &tar[..],
            tmp.path(),
            "sha256:dots",
            None,
            XattrSpace::Trusted,
            &mut budget,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`..`"), "{err}");
    }

    #[test]
    fn the_unpacked_size_is_capped() {
        let tmp = tempfile::tempdir().unwrap();
        let big = "x".repeat(600);
        let tar = tar_of(&[Item::File("a", &big, 0o644), Item::File("b", &big, 0o644)]);
        let mut budget = Budget {
            limit: 1000,
            used: 0,
            max_ratio: limits::DEFAULT_MAX_LAYER_RATIO,
        };
        let err = unpack_layer(
            &tar[..],
            tmp.path(),
            "sha256:big",
            None,
            XattrSpace::User,
            &mut budget,
        )
        .unwrap_err();
        assert_eq!(
            err,
            StepError::TooLarge {
                layer: "sha256:big".into(),
                limit: 1000
            }
        );
    }

    #[test]
    fn pax_times_parse_with_fractions() {
        assert_eq!(parse_pax_time(b"12"), Some((12, 0)));
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
