//! The upper directory of a step's overlay, after its command ran, is exactly what the command
//! changed; written out as one OCI layer here. Overlayfs's whiteouts (0/0 character devices)
//! become `.wh.NAME` entries, an opaque directory a `.wh..wh..opq` entry after it. Entries are
//! written depth first with names in byte order, owners as the sandbox saw them (container
//! ids: in a user namespace the mapping is already undone), modes exact, `security.capability`
//! kept, and every mtime clamped to `SOURCE_DATE_EPOCH`, so a command that writes the same
//! files writes the same layer.
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use layers::{Entry, EntryKind, LayerWriter};

use super::error::{StepError, io_text};
use super::fsops;
use super::unpack::XattrSpace;

/// The extended attribute a layer keeps: file capabilities (`setcap`).
const CAPABILITY: &str = "security.capability";

/// What capturing skipped: sockets (a layer cannot hold one).
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub skipped_sockets: Vec<String>,
}

/// Writes every entry under `upper` to `writer`.
pub(crate) fn capture(
    upper: &Path,
    writer: &mut LayerWriter,
    epoch: u64,
    xattrs: XattrSpace,
) -> Result<Captured, StepError> {
    let mut walk = Walk {
        writer,
        epoch,
        opaque: xattrs.opaque(),
        links: HashMap::new(),
        captured: Captured::default(),
    };
    walk.dir(upper, "")?;
    Ok(walk.captured)
}

struct Walk<'a> {
    writer: &'a mut LayerWriter,
    epoch: u64,
    opaque: &'static str,
    /// Files with more than one link, by (device, inode): the path written first.
    links: HashMap<(u64, u64), String>,
    captured: Captured,
}

impl Walk<'_> {
    fn error(path: &str, reason: impl Into<String>) -> StepError {
        StepError::Capture {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    fn io(path: &str, err: &io::Error) -> StepError {
        Self::error(path, io_text(err))
    }

    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<(), StepError> {
        let fd = fsops::open_dir(dir).map_err(|e| Self::io(prefix, &e))?;
        let names =
            fsops::child_names(std::os::fd::AsFd::as_fd(&fd)).map_err(|e| Self::io(prefix, &e))?;
        for raw in names {
            let on_disk = dir.join(OsStr::from_bytes(&raw));
            let Ok(name) = String::from_utf8(raw) else {
                return Err(Self::error(
                    &on_disk.to_string_lossy(),
                    "the file name is not valid UTF-8, and a layer path must be",
                ));
            };
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            self.entry(&on_disk, &path, &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, on_disk: &Path, path: &str, name: &str) -> Result<(), StepError> {
        let meta = fs_err::symlink_metadata(on_disk).map_err(|e| Self::io(path, &e))?;
        let file_type = meta.file_type();
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0).min(self.epoch);
        let mut entry = Entry {
            path: path.to_string(),
            kind: EntryKind::Dir,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime,
            xattrs: Vec::new(),
        };
        if file_type.is_char_device() && meta.rdev() == 0 {
            let parent = path.strip_suffix(name).unwrap_or("");
            return self.marker(&format!("{parent}{}{name}", layers::WHITEOUT_PREFIX), mtime);
        }
        if file_type.is_dir() {
            self.append(&entry, None)?;
            let opaque = fsops::get_xattr(on_disk, self.opaque).map_err(|e| Self::io(path, &e))?;
            if opaque.as_deref() == Some(b"y") {
                self.marker(&format!("{path}/{}", layers::OPAQUE_WHITEOUT), mtime)?;
            }
            return self.dir(on_disk, path);
        }
        if file_type.is_symlink() {
            let target = fs_err::read_link(on_disk).map_err(|e| Self::io(path, &e))?;
            let Some(target) = target.to_str() else {
                return Err(Self::error(path, "the symlink target is not valid UTF-8"));
            };
            entry.kind = EntryKind::Symlink {
                target: target.to_string(),
            };
            return self.append(&entry, None);
        }
        if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    entry.kind = EntryKind::HardLink {
                        target: first.clone(),
                    };
                    return self.append(&entry, None);
                }
                self.links.insert(key, path.to_string());
            }
            if let Some(value) =
                fsops::get_xattr(on_disk, CAPABILITY).map_err(|e| Self::io(path, &e))?
            {
                entry.xattrs.push((CAPABILITY.to_string(), value));
            }
            entry.kind = EntryKind::File { size: meta.len() };
            let parent = on_disk.parent().unwrap_or(on_disk);
            let dir = fsops::open_dir(parent).map_err(|e| Self::io(path, &e))?;
            let mut file = fsops::open_file(std::os::fd::AsFd::as_fd(&dir), name)
                .map_err(|e| Self::io(path, &e))?;
            return self.append(&entry, Some(&mut file));
        }
        let device = (
            rustix::fs::major(meta.rdev()),
            rustix::fs::minor(meta.rdev()),
        );
        entry.kind = if file_type.is_char_device() {
            EntryKind::CharDevice {
                major: device.0,
                minor: device.1,
            }
        } else if file_type.is_block_device() {
            EntryKind::BlockDevice {
                major: device.0,
                minor: device.1,
            }
        } else if file_type.is_fifo() {
            EntryKind::Fifo
        } else {
            self.captured.skipped_sockets.push(path.to_string());
            return Ok(());
        };
        self.append(&entry, None)
    }

    /// A whiteout or opaque marker: an empty file, root's, mode 0 (as containerd writes them).
    fn marker(&mut self, path: &str, mtime: u64) -> Result<(), StepError> {
        let entry = Entry {
            path: path.to_string(),
            kind: EntryKind::File { size: 0 },
            mode: 0,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: Vec::new(),
        };
        self.append(&entry, Some(&mut io::empty()))
    }

    fn append(
        &mut self,
        entry: &Entry,
        content: Option<&mut dyn io::Read>,
    ) -> Result<(), StepError> {
        self.writer
            .append_entry(entry, content)
            .map_err(|e| Self::error(&entry.path, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Read;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use layers::{BlobStore, Compression, LayerOptions};

    use super::*;

    fn entries(store: &BlobStore, layer: &layers::LayerInfo) -> Vec<(String, char, u32, u64, u64)> {
        let blob = fs_err::read(store.blob_path(&layer.digest)).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.entry_type().as_byte() as char,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn an_upper_dir_becomes_a_layer_with_whiteouts_and_clamped_times() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: whiteouts (0/0 devices) need root here");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let upper = tmp.path().join("upper");
        fs_err::create_dir_all(upper.join("etc")).unwrap();
        fs_err::create_dir_all(upper.join("opt/dir")).unwrap();
        fs_err::write(upper.join("etc/new"), "new").unwrap();
        fs_err::set_permissions(
            upper.join("etc/new"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::chown(upper.join("etc/new"), Some(1000), Some(1000)).unwrap();
        fs_err::hard_link(upper.join("etc/new"), upper.join("etc/same")).unwrap();
        symlink("new", upper.join("etc/link")).unwrap();
        let etc = fsops::open_dir(&upper.join("etc")).unwrap();
        fsops::whiteout(std::os::fd::AsFd::as_fd(&etc), "gone").unwrap();
        let dir = fsops::open_dir(&upper.join("opt/dir")).unwrap();
        fsops::set_xattr(
            std::os::fd::AsFd::as_fd(&dir),
            "trusted.overlay.opaque",
            b"y",
        )
        .unwrap();
        // Older than the epoch: kept; newer: clamped.
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(50);
        std::fs::File::open(upper.join("etc/link").parent().unwrap().join("new"))
            .unwrap()
            .set_modified(old)
            .unwrap();

        let store = BlobStore::open(tmp.path().join("store")).unwrap();
        let mut writer = LayerWriter::new(&store, &LayerOptions::new(Compression::gzip())).unwrap();
        capture(&upper, &mut writer, 100, XattrSpace::Trusted).unwrap();
        let layer = writer.finish().unwrap();
        assert_eq!(
            entries(&store, &layer),
            vec![
                ("etc/".into(), '5', 0o755, 0, 100),
                ("etc/.wh.gone".into(), '0', 0, 0, 100),
                ("etc/link".into(), '2', 0o777, 0, 100),
                ("etc/new".into(), '0', 0o600, 1000, 50),
                ("etc/same".into(), '1', 0o600, 1000, 50),
                ("opt/".into(), '5', 0o755, 0, 100),
                ("opt/dir/".into(), '5', 0o755, 0, 100),
                ("opt/dir/.wh..wh..opq".into(), '0', 0, 0, 100),
            ]
        );
    }
}
