//! A tar layer that keeps the archive's metadata (modes incl. setuid/setgid, numeric owners,
//! mtimes), unlike application layers which normalize them. Written straight into the blob
//! store: tar -> diff_id hash -> compressor -> blob (hashed, committed atomically).

use std::collections::HashSet;
use std::io::{self, Write};

use layers::{BlobStore, BlobWriter, Compression, Encoder, HashingWriter, LayerInfo};

use crate::Error;
use crate::deb::{Kind, Member};

/// Top-level directories that are symlinks into /usr on a merged-/usr system.
pub const MERGED_USR_DIRS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

pub struct LayerTar {
    tar: tar::Builder<HashingWriter<Encoder<BlobWriter>>>,
    media_type: &'static str,
    /// Directories (and merged-/usr links) already written: written once, first mode wins.
    dirs: HashSet<String>,
    /// Every other path written: a path appears once per layer (containers/storage rejects
    /// duplicates); the first writer wins, as packages come before generated files.
    paths: HashSet<String>,
    merged_usr: bool,
}

impl LayerTar {
    pub fn new(
        store: &BlobStore,
        compression: Compression,
        merged_usr: bool,
    ) -> Result<LayerTar, Error> {
        let blob = store.writer()?;
        let encoder = compression.encoder(blob)?;
        let mut tar = tar::Builder::new(HashingWriter::new(encoder));
        tar.mode(tar::HeaderMode::Complete);
        Ok(LayerTar {
            tar,
            media_type: compression.media_type(),
            dirs: HashSet::new(),
            paths: HashSet::new(),
            merged_usr,
        })
    }

    /// Where an absolute package path lives in the layer: relative, and on a merged-/usr
    /// system `/bin/x` is stored as `usr/bin/x` (the `bin -> usr/bin` link is in the base).
    pub fn layer_path(&self, path: &str) -> String {
        let rel = path.trim_start_matches('/');
        if self.merged_usr {
            let first = rel.split('/').next().unwrap_or_default();
            if MERGED_USR_DIRS.contains(&first) && rel.len() > first.len() {
                return format!("usr/{rel}");
            }
        }
        rel.to_owned()
    }

    fn header(
        kind: tar::EntryType,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        size: u64,
    ) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h.set_size(size);
        h
    }

    /// Appends a package member, translating its path for merged /usr.
    pub fn append_member(&mut self, m: &Member) -> Result<(), Error> {
        let rel = m.path.trim_start_matches('/');
        if rel.is_empty() {
            return Ok(());
        }
        if self.merged_usr && MERGED_USR_DIRS.contains(&rel) {
            // `./bin/` as a directory (bookworm) or `./bin -> usr/bin` (trixie): the base's link
            // stands; write the link once when it is this package's own.
            if m.kind == Kind::Symlink && self.dirs.insert(rel.to_owned()) {
                self.symlink(rel, m.link.as_deref().unwrap_or_default(), m.mtime)?;
            }
            return Ok(());
        }
        let path = self.layer_path(&m.path);
        if m.kind != Kind::Dir && !self.claim(&path) {
            return Ok(());
        }
        match m.kind {
            Kind::Dir => {
                if !self.paths.contains(&path) && self.dirs.insert(path.clone()) {
                    let mut h =
                        Self::header(tar::EntryType::Directory, m.mode, m.uid, m.gid, m.mtime, 0);
                    self.tar
                        .append_data(&mut h, format!("{path}/"), io::empty())?;
                }
            }
            Kind::File => {
                let mut h = Self::header(
                    tar::EntryType::Regular,
                    m.mode,
                    m.uid,
                    m.gid,
                    m.mtime,
                    m.data.len() as u64,
                );
                self.tar.append_data(&mut h, &path, &m.data[..])?;
            }
            Kind::Symlink => {
                let mut h = Self::header(tar::EntryType::Symlink, m.mode, m.uid, m.gid, m.mtime, 0);
                self.tar
                    .append_link(&mut h, &path, m.link.as_deref().unwrap_or_default())?;
            }
            Kind::Hardlink => {
                let target = self.layer_path(m.link.as_deref().unwrap_or_default());
                let mut h = Self::header(tar::EntryType::Link, m.mode, m.uid, m.gid, m.mtime, 0);
                self.tar.append_link(&mut h, &path, target)?;
            }
        }
        Ok(())
    }

    /// Appends a root-owned file at an absolute path.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), Error> {
        self.file_owned(path, mode, 0, data)
    }

    pub fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        gid: u64,
        data: &[u8],
    ) -> Result<(), Error> {
        let path = self.layer_path(path);
        if !self.claim(&path) {
            return Ok(());
        }
        let mut h = Self::header(tar::EntryType::Regular, mode, 0, gid, 0, data.len() as u64);
        self.tar.append_data(&mut h, path, data)?;
        Ok(())
    }

    /// Appends a directory with a mode and group (once).
    pub fn dir_with(&mut self, path: &str, mode: u32, gid: u64) -> Result<(), Error> {
        let path = self.layer_path(path);
        if !self.paths.contains(&path) && self.dirs.insert(path.clone()) {
            let mut h = Self::header(tar::EntryType::Directory, mode, 0, gid, 0, 0);
            self.tar
                .append_data(&mut h, format!("{path}/"), io::empty())?;
        }
        Ok(())
    }

    /// Appends a root-owned directory (once).
    pub fn dir(&mut self, path: &str) -> Result<(), Error> {
        let path = self.layer_path(path);
        if !self.paths.contains(&path) && self.dirs.insert(path.clone()) {
            let mut h = Self::header(tar::EntryType::Directory, 0o755, 0, 0, 0, 0);
            self.tar
                .append_data(&mut h, format!("{path}/"), io::empty())?;
        }
        Ok(())
    }

    /// Appends a symlink at an absolute path (`path` is translated for merged /usr).
    pub fn link(&mut self, path: &str, target: &str) -> Result<(), Error> {
        let path = self.layer_path(path);
        if !self.claim(&path) {
            return Ok(());
        }
        self.symlink(&path, target, 0)
    }

    /// Reserves `path` (relative) for one entry; false if something already took it.
    fn claim(&mut self, path: &str) -> bool {
        if self.dirs.contains(path) || !self.paths.insert(path.to_owned()) {
            tracing::debug!(path, "already in the layer; keeping the first entry");
            return false;
        }
        true
    }

    /// The merged-/usr links (`bin -> usr/bin`, ...), for a base layer.
    pub fn merged_usr_links(&mut self, arch: &str) -> Result<(), Error> {
        for dir in ["bin", "sbin", "lib"] {
            self.dir(&format!("usr/{dir}"))?;
            if self.dirs.insert(dir.to_owned()) {
                self.symlink(dir, &format!("usr/{dir}"), 0)?;
            }
        }
        if arch == "amd64" {
            self.dir("usr/lib64")?;
            if self.dirs.insert("lib64".to_owned()) {
                self.symlink("lib64", "usr/lib64", 0)?;
            }
        }
        Ok(())
    }

    fn symlink(&mut self, rel: &str, target: &str, mtime: u64) -> Result<(), Error> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0, 0, mtime, 0);
        self.tar.append_link(&mut h, rel, target)?;
        Ok(())
    }

    /// Ends the tar stream, the compression and the blob; returns what a manifest needs and
    /// the uncompressed tar's size.
    pub fn finish(self) -> Result<(LayerInfo, u64), Error> {
        let hashing = self.tar.into_inner()?;
        let (diff_id, tar_size, encoder) = hashing.finish();
        let mut blob = encoder.finish()?;
        blob.flush()?;
        let (digest, size) = blob.commit(None)?;
        let info = LayerInfo {
            digest,
            size,
            diff_id,
            media_type: self.media_type.to_owned(),
        };
        Ok((info, tar_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(path: &str, kind: Kind, mode: u32, link: Option<&str>) -> Member {
        Member {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 42,
            mtime: 7,
            link: link.map(Into::into),
            data: b"x".to_vec(),
        }
    }

    #[test]
    fn keeps_modes_merges_usr_and_writes_each_path_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut layer = LayerTar::new(&store, Compression::None, true).unwrap();
        layer.merged_usr_links("amd64").unwrap();
        layer
            .append_member(&member("/bin", Kind::Dir, 0o755, None))
            .unwrap();
        layer
            .append_member(&member("/bin/su", Kind::File, 0o4755, None))
            .unwrap();
        layer
            .append_member(&member("/bin/su", Kind::File, 0o644, None))
            .unwrap();
        layer
            .append_member(&member("/var/run", Kind::Symlink, 0o777, Some("/run")))
            .unwrap();
        layer.link("/var/run", "/elsewhere").unwrap();
        layer.dir("/var/run").unwrap();
        let (info, _) = layer.finish().unwrap();
        let bytes = std::fs::read(store.blob_path(&info.digest)).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect();
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "usr/bin/",
                "bin",
                "usr/sbin/",
                "sbin",
                "usr/lib/",
                "lib",
                "usr/lib64/",
                "lib64",
                "usr/bin/su",
                "var/run"
            ]
        );
        let su = entries.iter().find(|e| e.0 == "usr/bin/su").unwrap();
        assert_eq!(
            (su.1, su.2),
            (0o4755, 42),
            "setuid and group kept, first copy wins"
        );
    }
}
