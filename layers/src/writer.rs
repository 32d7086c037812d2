//! `LayerWriter`: entries -> normalized tar -> compressor -> blob, in one streaming pass.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::header::{self, HeaderSpec, Kind};
use crate::pgzip::worker_count;
use crate::pipeline::TarPipeline;
use crate::store::{BlobStore, LayerInfo};

/// How layers are written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LayerOptions {
    pub compression: Compression,
    /// Entry mtime in seconds since the epoch; `None` reads `SOURCE_DATE_EPOCH`, else 0.
    pub mtime: Option<u64>,
    /// Compression workers; `None`: one per core. Never changes the bytes of a layer.
    pub threads: Option<usize>,
}

impl LayerOptions {
    pub fn new(compression: Compression) -> Self {
        LayerOptions {
            compression,
            mtime: None,
            threads: None,
        }
    }

    /// With `threads` compression workers (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads.max(1));
        self
    }

    /// The mtime every entry gets: the explicit option, else `SOURCE_DATE_EPOCH`, else 0.
    pub fn resolved_mtime(&self) -> Result<u64> {
        if let Some(mtime) = self.mtime {
            return Ok(mtime);
        }
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(value) if !value.trim().is_empty() => value
                .trim()
                .parse()
                .map_err(|_| Error::InvalidSourceDateEpoch(value)),
            _ => Ok(0),
        }
    }
}

/// File modes as stored: 0644 or 0755 (any exec bit), directories 0755, symlinks 0777.
/// Set-id and sticky bits are kept, and a sticky world-writable directory (`/tmp`) stays 1777.
pub fn normalize_mode(is_dir: bool, mode: u32) -> u32 {
    let special = mode & 0o7000;
    if is_dir {
        if special & 0o1000 != 0 && mode & 0o002 != 0 {
            0o1777
        } else {
            0o755 | special
        }
    } else if mode & 0o111 != 0 {
        0o755 | special
    } else {
        0o644 | (special & !0o1000)
    }
}

/// Normalizes an entry path to its archive form: relative, `/`-separated, no `.` or empty
/// components, no trailing slash. Rejects `..`, NUL, non-UTF-8 and the root itself.
pub fn archive_path(path: &Path) -> Result<String> {
    let invalid = |reason: &str| Error::InvalidEntry {
        path: path.to_string_lossy().into_owned(),
        reason: reason.to_owned(),
    };
    let text = path
        .to_str()
        .ok_or_else(|| invalid("the path is not valid UTF-8"))?;
    safe_path::relative_path(text).map_err(|e| invalid(e.reason))
}

/// Appends to `out` the tar header block(s) [`LayerWriter`] writes for a regular file (or, with
/// `dir`, a directory) at `path`: the same normalization of path, mode and mtime. For writers
/// that produce the compressed stream themselves (the wheels crate splices the wheels' deflate
/// data into its gzip layers) and must give the same tar, hence the same diff_id.
pub fn encode_header(
    path: &Path,
    dir: bool,
    mode: u32,
    size: u64,
    mtime: u64,
    out: &mut Vec<u8>,
) -> Result<()> {
    let name = archive_path(path)?;
    let (name, kind, size) = if dir {
        (format!("{name}/"), Kind::Dir, 0)
    } else {
        (name, Kind::File, size)
    };
    header::encode(
        &HeaderSpec::normalized(&name, "", kind, normalize_mode(dir, mode), size, mtime),
        out,
    );
    Ok(())
}

/// Zero bytes that follow `size` bytes of content in a tar (up to the next 512-byte block).
pub fn tar_padding(size: u64) -> usize {
    header::padding(size)
}

/// An entry recorded as a filesystem holds it, with no normalization: owner, exact mode,
/// mtime and extended attributes as given. For layers that capture what a command changed
/// (the sandbox's diffs), where `chown 1000:1000`, `chmod 0600` or `setcap` must survive.
/// [`LayerWriter::append_entry`] writes it; the layer's own mtime option does not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the layer (normalized by [`archive_path`]).
    pub path: String,
    pub kind: EntryKind,
    /// Permission, set-id and sticky bits (`& 0o7777`; the file type comes from `kind`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Extended attributes (`security.capability`, ...), written as PAX `SCHILY.xattr.NAME`
    /// records in this order.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// What an [`Entry`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of `size` bytes (the content is given to `append_entry`).
    File {
        size: u64,
    },
    Dir,
    /// A symlink, its target as stored on disk (it may be anything but empty).
    Symlink {
        target: String,
    },
    /// A hard link to a regular file written earlier in this layer.
    HardLink {
        target: String,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// A symlink target may be absolute (resolved inside the image) but a relative one must not
/// climb above the layer root.
fn check_symlink_target(path: &str, target: &str) -> Result<()> {
    safe_path::symlink_target(path, target).map_err(|e| Error::InvalidEntry {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Streams tar entries into a compressed blob in the store; `finish` gives the digest, size and
/// diff_id computed in the same pass. Entries are written in the order given. Reading happens
/// on the caller's thread, hashing and compressing on others, overlapped (see `pipeline.rs`).
pub struct LayerWriter {
    out: TarPipeline,
    media_type: &'static str,
    mtime: u64,
    scratch: Vec<u8>,
    files: HashSet<String>,
}

impl LayerWriter {
    pub fn new(store: &BlobStore, options: &LayerOptions) -> Result<Self> {
        let mtime = options.resolved_mtime()?;
        let blob = store.writer()?;
        let threads = options.threads.unwrap_or_else(worker_count);
        Ok(LayerWriter {
            out: TarPipeline::new(blob, options.compression, threads)?,
            media_type: options.compression.media_type(),
            mtime,
            scratch: Vec::with_capacity(1024),
            files: HashSet::new(),
        })
    }

    pub fn append_dir(&mut self, path: impl AsRef<Path>, mode: u32) -> Result<()> {
        let name = format!("{}/", archive_path(path.as_ref())?);
        self.header(&name, "", Kind::Dir, normalize_mode(true, mode), 0)
    }

    /// Appends a regular file of exactly `size` bytes read from `content`.
    pub fn append_file(
        &mut self,
        path: impl AsRef<Path>,
        mode: u32,
        size: u64,
        content: &mut impl Read,
    ) -> Result<()> {
        let name = archive_path(path.as_ref())?;
        self.header(&name, "", Kind::File, normalize_mode(false, mode), size)?;
        self.copy_content(&name, size, content)?;
        self.files.insert(name);
        Ok(())
    }

    pub fn append_symlink(
        &mut self,
        path: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<()> {
        let name = archive_path(path.as_ref())?;
        let target = target
            .as_ref()
            .to_str()
            .ok_or_else(|| Error::InvalidEntry {
                path: name.clone(),
                reason: "the symlink target is not valid UTF-8".to_owned(),
            })?;
        check_symlink_target(&name, target)?;
        self.header(&name, target, Kind::Symlink, 0o777, 0)
    }

    /// Appends a hard link to `target`, a regular file already written to this layer.
    pub fn append_hardlink(
        &mut self,
        path: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<()> {
        let name = archive_path(path.as_ref())?;
        let target = archive_path(target.as_ref()).map_err(|err| Error::InvalidEntry {
            path: name.clone(),
            reason: format!("bad hard link target: {err}"),
        })?;
        if !self.files.contains(&target) {
            return Err(Error::InvalidEntry {
                path: name,
                reason: format!(
                    "the hard link target {target:?} is not a regular file written earlier in \
                     this layer"
                ),
            });
        }
        self.header(&name, &target, Kind::HardLink, 0o644, 0)
    }

    /// Appends `entry` with its metadata as given (see [`Entry`]); `content` is read for a
    /// regular file (exactly its size) and ignored otherwise.
    pub fn append_entry(&mut self, entry: &Entry, content: Option<&mut dyn Read>) -> Result<()> {
        let path = archive_path(Path::new(&entry.path))?;
        let invalid = |reason: String| Error::InvalidEntry {
            path: path.clone(),
            reason,
        };
        let (name, link, kind, size, device) = match &entry.kind {
            EntryKind::File { size } => (path.clone(), String::new(), Kind::File, *size, (0, 0)),
            EntryKind::Dir => (format!("{path}/"), String::new(), Kind::Dir, 0, (0, 0)),
            EntryKind::Symlink { target } => {
                if target.is_empty() || target.contains('\0') {
                    return Err(invalid("the symlink target is empty or has a NUL".into()));
                }
                (path.clone(), target.clone(), Kind::Symlink, 0, (0, 0))
            }
            EntryKind::HardLink { target } => {
                let target = archive_path(Path::new(target))
                    .map_err(|err| invalid(format!("bad hard link target: {err}")))?;
                if !self.files.contains(&target) {
                    return Err(invalid(format!(
                        "the hard link target {target:?} is not a regular file written earlier \
                         in this layer"
                    )));
                }
                (path.clone(), target, Kind::HardLink, 0, (0, 0))
            }
            EntryKind::CharDevice { major, minor } => (
                path.clone(),
                String::new(),
                Kind::CharDevice,
                0,
                (*major, *minor),
            ),
            EntryKind::BlockDevice { major, minor } => (
                path.clone(),
                String::new(),
                Kind::BlockDevice,
                0,
                (*major, *minor),
            ),
            EntryKind::Fifo => (path.clone(), String::new(), Kind::Fifo, 0, (0, 0)),
        };
        if let Some((bad, _)) = entry
            .xattrs
            .iter()
            .find(|(name, _)| name.is_empty() || name.contains(['=', '\0', '\n']))
        {
            return Err(invalid(format!("bad extended attribute name {bad:?}")));
        }
        self.scratch.clear();
        header::encode(
            &HeaderSpec {
                name: &name,
                link: &link,
                kind,
                mode: entry.mode & 0o7777,
                size,
                mtime: entry.mtime,
                uid: entry.uid,
                gid: entry.gid,
                device,
                xattrs: &entry.xattrs,
            },
            &mut self.scratch,
        );
        self.out.write_all(&self.scratch).map_err(Error::Io)?;
        if kind == Kind::File {
            let Some(content) = content else {
                return Err(invalid("a regular file needs its content".into()));
            };
            self.copy_content(&path, size, content)?;
            self.files.insert(path);
        }
        Ok(())
    }

    /// Ends the archive, finishes compression and commits the blob.
    pub fn finish(mut self) -> Result<LayerInfo> {
        self.out.write_all(&[0u8; 1024]).map_err(Error::Io)?;
        let (diff_id, blob) = self.out.finish().map_err(Error::Io)?;
        let (digest, size) = blob.commit(None)?;
        Ok(LayerInfo {
            digest,
            size,
            diff_id: diff_id.unwrap_or(digest),
            media_type: self.media_type.to_owned(),
        })
    }

    fn header(&mut self, name: &str, link: &str, kind: Kind, mode: u32, size: u64) -> Result<()> {
        self.scratch.clear();
        header::encode(
            &HeaderSpec::normalized(name, link, kind, mode, size, self.mtime),
            &mut self.scratch,
        );
        self.out.write_all(&self.scratch).map_err(Error::Io)
    }

    /// Reads exactly `size` bytes of `content` straight into the pipeline's chunks.
    fn copy_content(
        &mut self,
        name: &str,
        size: u64,
        content: &mut (impl Read + ?Sized),
    ) -> Result<()> {
        let read_error = |source: io::Error| Error::Read {
            path: name.to_owned(),
            source,
        };
        let mut remaining = size;
        while remaining > 0 {
            let space = self.out.space().map_err(Error::Io)?;
            let want = remaining.min(space.len() as u64) as usize;
            let got = match content.read(&mut space[..want]) {
                Ok(0) => {
                    return Err(Error::FileSizeChanged {
                        path: name.to_owned(),
                        expected: size,
                        actual: size - remaining,
                    });
                }
                Ok(got) => got.min(want),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(read_error(err)),
            };
            self.out.commit(got);
            remaining -= got as u64;
        }
        // The content must end where announced: a longer file changed while being read.
        let mut probe = [0u8; 1];
        loop {
            match content.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(Error::FileSizeChanged {
                        path: name.to_owned(),
                        expected: size,
                        actual: size + 1,
                    });
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(read_error(err)),
            }
        }
        let zeros = [0u8; 512];
        self.out
            .write_all(&zeros[..header::padding(size)])
            .map_err(Error::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_are_normalized() {
        for (raw, want) in [
            ("/usr/bin/x", "usr/bin/x"),
            ("./a//b/./c/", "a/b/c"),
            ("a", "a"),
        ] {
            assert_eq!(archive_path(Path::new(raw)).unwrap(), want);
        }
    }

    #[test]
    fn escaping_paths_are_rejected_by_name() {
        for raw in ["../etc/passwd", "a/../../b", "a/..", "/", ".", ""] {
            let err = archive_path(Path::new(raw)).unwrap_err().to_string();
            assert!(err.contains(&format!("{raw:?}")), "{err}");
        }
    }

    #[test]
    fn symlink_targets_may_not_climb_out() {
        assert!(check_symlink_target("usr/lib/x", "../../bin/y").is_ok());
        assert!(check_symlink_target("usr/lib/x", "/etc/passwd").is_ok());
        assert!(check_symlink_target("usr/lib/x", "y").is_ok());
        let err = check_symlink_target("usr/lib/x", "../../../etc")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("usr/lib/x") && err.contains("escapes"),
            "{err}"
        );
        assert!(check_symlink_target("x", "").is_err());
    }

    #[test]
    fn modes_are_normalized() {
        assert_eq!(normalize_mode(false, 0o600), 0o644);
        assert_eq!(normalize_mode(false, 0o700), 0o755);
        assert_eq!(normalize_mode(false, 0o100_664), 0o644);
        assert_eq!(normalize_mode(false, 0o4755), 0o4755);
        assert_eq!(normalize_mode(true, 0o700), 0o755);
        assert_eq!(normalize_mode(true, 0o1777), 0o1777);
        assert_eq!(normalize_mode(true, 0o040_775), 0o755);
    }
}
