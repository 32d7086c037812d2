//! Image layers applied in order onto a directory, as a container engine's snapshotter does:
//! whiteouts (`.wh.NAME`) delete what lower layers put there, an opaque whiteout
//! (`.wh..wh..opq`) empties its directory, and an entry replaces whatever was at its path.
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::RuntimeError;
use crate::sandbox::limits::{self, UnpackLimits};

use layers::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

/// Applies one layer blob (gzip, zstd or plain tar: sniffed from its first bytes) onto `root`.
/// `what` names the layer in errors. The file content written counts against `budget`
/// (all layers of an image together), and the layer may not expand more than
/// `limits.max_ratio` times (see [`crate::sandbox::limits`]).
pub fn apply_layer(
    blob: impl Read,
    root: &Path,
    what: &str,
    budget: &mut UnpackBudget,
) -> Result<(), RuntimeError> {
    let max_ratio = budget.limits.max_ratio;
    let (decoded, counts) =
        limits::decompress(blob, max_ratio).map_err(|e| layer_error(what, e))?;
    let result = apply_tar(decoded, root, budget);
    if counts.tripped() {
        return Err(layer_error(
            what,
            io::Error::other(format!(
                "it expands more than {max_ratio} times ({} compressed bytes gave {}), the \
                 limit on a layer's decompression ratio (set {} to raise it)",
                counts.compressed(),
                counts.inflated(),
                limits::LAYER_RATIO_VAR
            )),
        ));
    }
    result.map_err(|e| layer_error(what, e))
}

/// What unpacking an image may still write.
#[derive(Debug, Clone)]
pub struct UnpackBudget {
    pub limits: UnpackLimits,
    /// File content written so far.
    pub used: u64,
}

impl UnpackBudget {
    pub fn new(limits: UnpackLimits) -> Self {
        UnpackBudget { limits, used: 0 }
    }

    fn spend(&mut self, bytes: u64) -> io::Result<()> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limits.max_bytes {
            return Err(io::Error::other(format!(
                "the image unpacks to more than {} bytes, the limit on what is unpacked (set {} \
                 to raise it)",
                self.limits.max_bytes,
                limits::UNPACKED_SIZE_VAR
            )));
        }
        Ok(())
    }
}

fn layer_error(what: &str, source: io::Error) -> RuntimeError {
    RuntimeError::Unpack {
        layer: what.to_string(),
        source,
    }
}

fn apply_tar(reader: impl Read, root: &Path, budget: &mut UnpackBudget) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(is_root());
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let real_root = fs_err::canonicalize(root)?;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let Some(relative) = clean_path(&entry.path()?)? else {
            continue; // the root itself ("./")
        };
        let name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = root.join(relative.parent().unwrap_or_else(|| Path::new("")));
        // Never delete through a symlink that points out of the root (`etc -> /etc`).
        match fs_err::canonicalize(&parent) {
            Ok(real) if !real.starts_with(&real_root) => {
                return Err(io::Error::other(format!(
                    "entry {} escapes the root filesystem through a symlink",
                    relative.display()
                )));
            }
            _ => {}
        }
        if name == OPAQUE_WHITEOUT {
            empty_dir(&parent)?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            remove_any(&parent.join(hidden))?;
            continue;
        }
        if matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            budget.spend(entry.size())?;
        }
        let target = root.join(&relative);
        let is_dir = entry.header().entry_type().is_dir();
        match fs_err::symlink_metadata(&target) {
            // A directory stays (and merges) only when the new entry is one too.
            Ok(meta) if meta.is_dir() && !is_dir => fs_err::remove_dir_all(&target)?,
            Ok(meta) if !meta.is_dir() => fs_err::remove_file(&target)?,
            _ => {}
        }
        if !entry.unpack_in(root)? {
            return Err(io::Error::other(format!(
                "entry {} escapes the root filesystem",
                relative.display()
            )));
        }
    }
    Ok(())
}

/// The entry's path relative to the root; `None` for the root itself; an error for a path that
/// would leave it (`..`).
fn clean_path(path: &Path) -> io::Result<Option<PathBuf>> {
    let text = path.to_string_lossy();
    if text.split('/').all(|c| c.is_empty() || c == ".") {
        return Ok(None);
    }
    safe_path::relative_path(&text)
        .map(|p| Some(PathBuf::from(p)))
        .map_err(io::Error::other)
}

fn empty_dir(dir: &Path) -> io::Result<()> {
    let entries = match fs_err::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        remove_any(&entry?.path())?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(path),
        Ok(_) => fs_err::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether this process runs as root (then file owners are kept as the layers say).
pub(crate) fn is_root() -> bool {
    fs_err::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    enum Item<'a> {
        Dir(&'a str),
        File(&'a str, &'a str, u32),
        Link(&'a str, &'a str),
    }

    fn tar_of(items: &[Item<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1);
            match item {
                Item::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
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
                Item::Link(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let lower = tar_of(&[
            Item::Dir("./"),
            Item::Dir("etc/"),
            Item::File("etc/keep", "keep", 0o644),
            Item::File("etc/gone", "gone", 0o644),
            Item::Dir("opt/"),
            Item::File("opt/old", "old", 0o644),
            Item::Dir("var/"),
            Item::Dir("var/lib/"),
            Item::File("var/lib/x", "x", 0o644),
            Item::File("bin/tool", "v1", 0o755),
        ]);
        apply_layer(&gzip(&lower)[..], root, "lower", &mut budget()).unwrap();
        let upper = tar_of(&[
            Item::File("etc/.wh.gone", "", 0o644),
            Item::File("opt/.wh..wh..opq", "", 0o644),
            Item::File("opt/new", "new", 0o644),
            // A directory replaced by a file, a file replaced by a symlink.
            Item::File("var/lib", "now a file", 0o600),
            Item::Link("bin/tool", "/etc/keep"),
        ]);
        let zstd = zstd::encode_all(&upper[..], 1).unwrap();
        apply_layer(&zstd[..], root, "upper", &mut budget()).unwrap();

        assert_eq!(
            fs_err::read_to_string(root.join("etc/keep")).unwrap(),
            "keep"
        );
        assert!(!root.join("etc/gone").exists());
        assert!(!root.join("etc/.wh.gone").exists());
        assert!(!root.join("opt/old").exists());
        assert_eq!(fs_err::read_to_string(root.join("opt/new")).unwrap(), "new");
        assert!(!root.join("opt/.wh..wh..opq").exists());
        let lib = root.join("var/lib");
        assert_eq!(fs_err::read_to_string(&lib).unwrap(), "now a file");
        assert_eq!(
            fs_err::metadata(&lib).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs_err::read_link(root.join("bin/tool")).unwrap(),
            Path::new("/etc/keep")
        );

        // An uncompressed layer whose whiteout names something absent is fine.
        let plain = tar_of(&[Item::File("nothing/.wh.here", "", 0o644)]);
        apply_layer(&plain[..], root, "plain", &mut budget()).unwrap();
    }

    #[test]
    fn a_corrupt_layer_names_the_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = gzip(&tar_of(&[Item::File("a", "aaaa", 0o644)]));
        let len = bytes.len();
        bytes.truncate(len / 2);
        let err = apply_layer(&bytes[..], tmp.path(), "sha256:abc", &mut budget())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sha256:abc"), "{err}");
    }

    fn chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }

    fn budget() -> UnpackBudget {
        UnpackBudget::new(UnpackLimits::default())
    }

    #[test]
    fn a_dot_dot_entry_is_refused_as_a_path_traversal() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs_err::create_dir(&root).unwrap();
        // The tar crate refuses to write `..`: set the raw name.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        let name = b"../escape";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_size(1);
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let err = apply_layer(&tar[..], &root, "sha256:dots", &mut budget()).unwrap_err();
        let text = chain(&err);
        assert!(
            text.contains("sha256:dots")
                && text.contains("\"../escape\"")
                && text.contains("path traversal"),
            "{text}"
        );
        assert!(!text.contains("symlink"), "{text}");
        assert!(!tmp.path().join("escape").exists());
    }

    #[test]
    fn unpacked_size_and_expansion_are_capped() {
        let tmp = tempfile::tempdir().unwrap();
        let big = "x".repeat(600);
        let tar = tar_of(&[Item::File("a", &big, 0o644), Item::File("b", &big, 0o644)]);
        let mut small = UnpackBudget::new(UnpackLimits {
            max_bytes: 1000,
            max_ratio: 200,
        });
        let err = apply_layer(&tar[..], tmp.path(), "sha256:big", &mut small).unwrap_err();
        let text = chain(&err);
        assert!(
            text.contains("sha256:big")
                && text.contains("more than 1000 bytes")
                && text.contains("COG_MAX_UNPACKED_SIZE"),
            "{text}"
        );

        // 300 MiB of zeros in one file: about 1,000 times its gzip.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut builder = tar::Builder::new(&mut gz);
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(300 << 20);
        builder
            .append_data(&mut header, "zeros", io::repeat(0).take(300 << 20))
            .unwrap();
        builder.finish().unwrap();
        drop(builder);
        let blob = gz.finish().unwrap();
        let dest = tmp.path().join("zeros");
        fs_err::create_dir(&dest).unwrap();
        let err = apply_layer(&blob[..], &dest, "sha256:bomb", &mut budget()).unwrap_err();
        let text = chain(&err);
        assert!(
            text.contains("sha256:bomb")
                && text.contains("expands more than 200 times")
                && text.contains("COG_MAX_LAYER_RATIO"),
            "{text}"
        );
        let written = fs_err::metadata(dest.join("zeros")).map_or(0, |m| m.len());
        assert!(written <= limits::RATIO_FREE_BYTES, "{written}");
    }
}
