//! What an existing image (a registry or local base) is, read from its layers: its
//! distribution (`/etc/os-release`), dpkg's database (`/var/lib/dpkg/status`), whether `/usr`
//! is merged, and its shared libraries (for `/etc/ld.so.cache`). Layers are applied in order
//! with OCI whiteouts, as a container runtime would unpack them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use layers::{BlobStore, LayerInfo};

use crate::Error;
use crate::archive::ArchiveConfig;
use crate::fetch;
use crate::limits::{Cap, ReadError};

/// `/etc/os-release` fields that choose the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OsRelease {
    /// `debian`, `ubuntu`, ...
    pub id: String,
    pub id_like: Vec<String>,
    /// `bookworm`, `noble`; empty when the file has none.
    pub codename: String,
    pub pretty_name: String,
}

impl OsRelease {
    pub fn parse(text: &str) -> OsRelease {
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(v);
                fields.insert(k.trim(), v.to_owned());
            }
        }
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let mut codename = get("VERSION_CODENAME");
        if codename.is_empty() {
            codename = get("UBUNTU_CODENAME");
        }
        OsRelease {
            id: get("ID").to_ascii_lowercase(),
            id_like: get("ID_LIKE")
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect(),
            codename,
            pretty_name: get("PRETTY_NAME"),
        }
    }
}

/// A base image as seen by the package installer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BaseSystem {
    /// `None` when the image has no `/etc/os-release` (nor `/usr/lib/os-release`).
    pub os_release: Option<OsRelease>,
    /// `/var/lib/dpkg/status`, when the image has dpkg.
    pub dpkg_status: Option<Vec<u8>>,
    /// `/bin` is a link to `usr/bin`.
    pub merged_usr: bool,
    /// dpkg's configuration (`/etc/dpkg/dpkg.cfg.d/*` in name order, then
    /// `/etc/dpkg/dpkg.cfg`, as dpkg reads them): its `path-exclude` rules apply to packages
    /// installed on this base (see [`crate::filter`]).
    #[serde(default)]
    pub dpkg_config: String,
    /// Shared libraries in the directories `ldconfig` scans (the standard ones plus those in
    /// `/etc/ld.so.conf{,.d/*.conf}`), as absolute paths.
    pub libraries: Vec<String>,
}

impl BaseSystem {
    /// The archive this base's packages come from: Debian or Ubuntu, its suite, `arch`. The
    /// error says what the base is instead (for the caller to name the base and the field).
    pub fn archive_config(&self, arch: &str) -> Result<ArchiveConfig, Error> {
        let Some(os) = &self.os_release else {
            return Err(Error::Config(
                "it has no /etc/os-release: not a Debian or Ubuntu image".into(),
            ));
        };
        let what = if os.pretty_name.is_empty() {
            format!("ID={}", os.id)
        } else {
            format!("{} (ID={})", os.pretty_name, os.id)
        };
        let config = match os.id.as_str() {
            "debian" => ArchiveConfig::debian(&os.codename, arch),
            "ubuntu" => ArchiveConfig::ubuntu(&os.codename, arch),
            _ => {
                return Err(Error::Config(format!(
                    "it is {what}, not Debian or Ubuntu: system packages come from the Debian and Ubuntu archives"
                )));
            }
        };
        if os.codename.is_empty() {
            return Err(Error::Config(format!(
                "{what}: /etc/os-release has no VERSION_CODENAME, so the archive suite is unknown"
            )));
        }
        if self.dpkg_status.is_none() {
            return Err(Error::Config(format!(
                "{what} has no dpkg database (/var/lib/dpkg/status)"
            )));
        }
        Ok(config)
    }
}

/// What is at a path after the layers so far.
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File(Option<Vec<u8>>),
    Link(String),
    Other,
}

/// Files whose contents are kept (relative paths, as in layer tars).
fn wanted(path: &str) -> bool {
    matches!(
        path,
        "etc/os-release"
            | "usr/lib/os-release"
            | "var/lib/dpkg/status"
            | "etc/ld.so.conf"
            | "etc/dpkg/dpkg.cfg"
    ) || (path.starts_with("etc/ld.so.conf.d/") && path.ends_with(".conf"))
        || dpkg_config_part(path)
}

/// A file of `/etc/dpkg/dpkg.cfg.d/` that dpkg reads (names of letters, digits, `_` and `-`).
fn dpkg_config_part(path: &str) -> bool {
    path.strip_prefix("etc/dpkg/dpkg.cfg.d/")
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// An entry's path relative to `/` (`""` for the root itself); `None` when it is not UTF-8
/// (no file we read has such a name). A path that climbs out (`..`) is refused.
fn normalize(path: &Path) -> Result<Option<String>, safe_path::UnsafeName> {
    let Some(text) = path.to_str() else {
        return Ok(None);
    };
    if text.split('/').all(|c| c.is_empty() || c == ".") {
        return Ok(Some(String::new()));
    }
    safe_path::relative_path(text).map(Some)
}

/// The merged file system tree (paths relative to `/`).
#[derive(Debug)]
struct Tree {
    nodes: BTreeMap<String, Node>,
    /// The most a kept file may hold.
    cap: Cap,
}

impl Tree {
    fn new(cap: Cap) -> Tree {
        Tree {
            nodes: BTreeMap::new(),
            cap,
        }
    }

    fn remove_tree(&mut self, path: &str) {
        self.nodes.remove(path);
        self.remove_children(path);
    }

    fn remove_children(&mut self, dir: &str) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.nodes.remove(&k);
        }
    }

    /// Applies one layer tar.
    fn apply(&mut self, reader: impl Read, origin: &str) -> Result<(), Error> {
        let bad = |e: std::io::Error| Error::Index {
            origin: origin.to_owned(),
            reason: format!("cannot read the layer: {e}"),
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path().map_err(bad)?;
            let Some(path) = normalize(&raw).map_err(|source| Error::UnsafeName {
                origin: origin.to_owned(),
                source,
            })?
            else {
                continue;
            };
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if name == layers::OPAQUE_WHITEOUT {
                self.remove_children(dir);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(layers::WHITEOUT_PREFIX) {
                let target = if dir.is_empty() {
                    hidden.to_owned()
                } else {
                    format!("{dir}/{hidden}")
                };
                self.remove_tree(&target);
                continue;
            }
            let header = entry.header();
            let node = match header.entry_type() {
                tar::EntryType::Directory => Node::Dir,
                tar::EntryType::Symlink => Node::Link(
                    entry
                        .link_name()
                        .map_err(bad)?
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                tar::EntryType::Link => {
                    // A hard link: same contents as its target (already in the tree).
                    let target = entry
                        .link_name()
                        .map_err(bad)?
                        .and_then(|l| normalize(&l).ok().flatten())
                        .unwrap_or_default();
                    match self.nodes.get(&target) {
                        Some(Node::File(data)) => Node::File(data.clone()),
                        _ => Node::File(None),
                    }
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if wanted(&path) {
                        let file = || format!("/{path} in {origin}");
                        self.cap.check(entry.size(), file)?;
                        let data = self.cap.read_all(&mut entry, file).map_err(|e| match e {
                            ReadError::Io(e) => bad(e),
                            ReadError::TooLarge(e) => e,
                        })?;
                        Node::File(Some(data))
                    } else {
                        Node::File(None)
                    }
                }
                _ => Node::Other,
            };
            // A non-directory replaces whatever was there, children included.
            if !matches!(node, Node::Dir) {
                self.remove_children(&path);
            }
            self.nodes.insert(path, node);
        }
        Ok(())
    }

    /// Contents of the file at `path`, following symlinks (a few hops).
    fn read(&self, path: &str) -> Option<&[u8]> {
        let mut path = path.to_owned();
        for _ in 0..8 {
            match self.nodes.get(&path)? {
                Node::File(Some(data)) => return Some(data),
                Node::Link(target) => {
                    path = resolve_link(&path, target);
                }
                _ => return None,
            }
        }
        None
    }
}

/// The relative path a symlink at `path` pointing to `target` leads to.
fn resolve_link(path: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    if !target.starts_with('/') {
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Opens a layer blob, decompressing by its magic bytes (gzip, zstd, or a plain tar).
fn open_layer(path: &Path) -> Result<Box<dyn Read>, Error> {
    let file = fs_err::File::open(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    })
}

/// Directories named in `/etc/ld.so.conf` and `/etc/ld.so.conf.d/*.conf`.
fn ld_conf_dirs(tree: &Tree) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    let files = tree.nodes.keys().filter(|p| {
        p.as_str() == "etc/ld.so.conf"
            || (p.starts_with("etc/ld.so.conf.d/") && p.ends_with(".conf"))
    });
    for file in files {
        let Some(data) = tree.read(file) else {
            continue;
        };
        for line in String::from_utf8_lossy(data).lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.starts_with('/') && !line.starts_with("include") {
                dirs.insert(line.trim_end_matches('/').to_owned());
            }
        }
    }
    dirs
}

fn is_library(path: &str, arch: &str, extra_dirs: &BTreeSet<String>) -> bool {
    if crate::ldcache::is_library(path, arch) {
        return true;
    }
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    extra_dirs.contains(dir) && name.starts_with("lib") && name.contains(".so.")
}

/// Reads `layers` (blobs in `store`, bottom first).
pub fn inspect(store: &BlobStore, layers: &[LayerInfo], arch: &str) -> Result<BaseSystem, Error> {
    let paths: Vec<(PathBuf, String)> = layers
        .iter()
        .map(|l| (store.blob_path(&l.digest), l.digest.to_string()))
        .collect();
    inspect_files(&paths, arch)
}

/// [`inspect`], cached under `cache_dir/bases/<hash of the layer digests>.json` (a base's
/// layers never change under the same digests).
pub fn inspect_cached(
    store: &BlobStore,
    layers: &[LayerInfo],
    arch: &str,
    cache_dir: &Path,
) -> Result<BaseSystem, Error> {
    let key: String = layers
        .iter()
        .map(|l| format!("{}\n", l.digest))
        .chain([format!("format 2 {arch}")])
        .collect();
    let path = cache_dir
        .join("bases")
        .join(format!("{}.json", fetch::sha256_hex(key.as_bytes())));
    if let Ok(bytes) = fs_err::read(&path)
        && let Ok(base) = serde_json::from_slice::<BaseSystem>(&bytes)
    {
        return Ok(base);
    }
    let base = inspect(store, layers, arch)?;
    let json = serde_json::to_vec(&base).map_err(std::io::Error::other)?;
    fetch::write_atomic(&path, &json)?;
    Ok(base)
}

/// Reads layer blobs at `paths` (each with a name for errors), bottom first.
/// Each file kept (`/etc/os-release`, dpkg's status, `ld.so.conf` files) is capped by
/// [`Cap::metadata`].
pub fn inspect_files(paths: &[(PathBuf, String)], arch: &str) -> Result<BaseSystem, Error> {
    inspect_files_capped(paths, arch, Cap::metadata()?)
}

fn inspect_files_capped(
    paths: &[(PathBuf, String)],
    arch: &str,
    cap: Cap,
) -> Result<BaseSystem, Error> {
    let mut tree = Tree::new(cap);
    for (path, name) in paths {
        let reader = open_layer(path)?;
        tree.apply(reader, &format!("layer {name}"))?;
    }
    let os_release = tree
        .read("etc/os-release")
        .or_else(|| tree.read("usr/lib/os-release"))
        .map(|b| OsRelease::parse(&String::from_utf8_lossy(b)));
    let merged_usr = matches!(
        tree.nodes.get("bin"),
        Some(Node::Link(t)) if t.trim_end_matches('/') == "usr/bin" || t.trim_end_matches('/') == "/usr/bin"
    );
    let extra = ld_conf_dirs(&tree);
    let libraries: Vec<String> = tree
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n, Node::File(_) | Node::Link(_)))
        .map(|(p, _)| format!("/{p}"))
        .filter(|p| is_library(p, arch, &extra))
        .collect();
    let mut dpkg_config = String::new();
    let parts = tree
        .nodes
        .keys()
        .filter(|p| dpkg_config_part(p))
        .map(String::as_str)
        .chain(["etc/dpkg/dpkg.cfg"]);
    for file in parts {
        if let Some(data) = tree.read(file) {
            dpkg_config.push_str(&String::from_utf8_lossy(data));
            dpkg_config.push('\n');
        }
    }
    Ok(BaseSystem {
        dpkg_config,
        os_release,
        dpkg_status: tree.read("var/lib/dpkg/status").map(<[u8]>::to_vec),
        merged_usr,
        libraries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn parses_os_release() {
        let os = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.codename, "bookworm");
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let ubuntu = OsRelease::parse("ID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n");
        assert_eq!(ubuntu.codename, "noble");
        assert_eq!(ubuntu.id_like, ["debian"]);
    }

    #[test]
    fn applies_layers_with_whiteouts_and_links() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let dir = tempfile::tempdir().unwrap();
        let one = tar_of(&[
            ("bin", Symlink, b"", "usr/bin"),
            ("etc/", Directory, b"", ""),
            ("etc/os-release", Symlink, b"", "../usr/lib/os-release"),
            (
                "usr/lib/os-release",
                Regular,
                b"ID=debian\nVERSION_CODENAME=bookworm\n",
                "",
            ),
            ("var/lib/dpkg/status", Regular, b"Package: old\n", ""),
            ("usr/lib/x86_64-linux-gnu/libold.so.1", Regular, b"", ""),
            ("opt/cuda/lib64/libcudart.so.12", Regular, b"", ""),
            (
                "etc/ld.so.conf.d/cuda.conf",
                Regular,
                b"# cuda\n/opt/cuda/lib64\n",
                "",
            ),
            ("usr/lib/x86_64-linux-gnu/libkeep.so.2", Regular, b"", ""),
            ("etc/dpkg/dpkg.cfg", Regular, b"force-unsafe-io\n", ""),
            (
                "etc/dpkg/dpkg.cfg.d/excludes",
                Regular,
                b"path-exclude /usr/share/doc/*\n",
                "",
            ),
            (
                "etc/dpkg/dpkg.cfg.d/old.dpkg-old",
                Regular,
                b"path-exclude /x\n",
                "",
            ),
        ]);
        let two = tar_of(&[
            ("var/lib/dpkg/status", Regular, b"Package: new\n", ""),
            ("usr/lib/x86_64-linux-gnu/.wh.libold.so.1", Regular, b"", ""),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &two).unwrap();
        let two = gz.finish().unwrap();
        let p1 = dir.path().join("1");
        let p2 = dir.path().join("2");
        std::fs::write(&p1, one).unwrap();
        std::fs::write(&p2, two).unwrap();
        let base = inspect_files(&[(p1, "one".into()), (p2, "two".into())], "amd64").unwrap();
        assert_eq!(base.os_release.as_ref().unwrap().codename, "bookworm");
        assert_eq!(
            base.dpkg_config,
            "path-exclude /usr/share/doc/*\n\nforce-unsafe-io\n\n"
        );
        assert_eq!(base.dpkg_status.as_deref(), Some(&b"Package: new\n"[..]));
        assert!(base.merged_usr);
        assert_eq!(
            base.libraries,
            [
                "/opt/cuda/lib64/libcudart.so.12",
                "/usr/lib/x86_64-linux-gnu/libkeep.so.2"
            ]
        );
        assert_eq!(
            base.archive_config("amd64").unwrap().sources[0].suite,
            "bookworm"
        );
    }

    #[test]
    fn opaque_whiteout_hides_a_directory() {
        use tar::EntryType::{Directory, Regular};
        let dir = tempfile::tempdir().unwrap();
        let one = tar_of(&[("var/lib/dpkg/status", Regular, b"Package: a\n", "")]);
        let two = tar_of(&[
            ("var/lib/dpkg/", Directory, b"", ""),
            ("var/lib/dpkg/.wh..wh..opq", Regular, b"", ""),
        ]);
        let (p1, p2) = (dir.path().join("1"), dir.path().join("2"));
        std::fs::write(&p1, one).unwrap();
        std::fs::write(&p2, two).unwrap();
        let base = inspect_files(&[(p1, "1".into()), (p2, "2".into())], "amd64").unwrap();
        assert_eq!(base.dpkg_status, None);
    }

    #[test]
    fn non_debian_bases_are_explained() {
        let none = BaseSystem::default();
        let err = none.archive_config("amd64").unwrap_err().to_string();
        assert!(err.contains("no /etc/os-release"), "{err}");
        let alpine = BaseSystem {
            os_release: Some(OsRelease::parse(
                "ID=alpine\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
            )),
            ..BaseSystem::default()
        };
        let err = alpine.archive_config("amd64").unwrap_err().to_string();
        assert!(
            err.contains("Alpine Linux v3.20 (ID=alpine), not Debian or Ubuntu"),
            "{err}"
        );
        let no_dpkg = BaseSystem {
            os_release: Some(OsRelease::parse("ID=debian\nVERSION_CODENAME=bookworm\n")),
            ..BaseSystem::default()
        };
        let err = no_dpkg.archive_config("amd64").unwrap_err().to_string();
        assert!(err.contains("no dpkg database"), "{err}");
        let sid = BaseSystem {
            os_release: Some(OsRelease::parse("ID=debian\nPRETTY_NAME=\"Debian sid\"\n")),
            dpkg_status: Some(Vec::new()),
            ..BaseSystem::default()
        };
        let err = sid.archive_config("amd64").unwrap_err().to_string();
        assert!(
            err.contains("Debian sid (ID=debian): /etc/os-release has no VERSION_CODENAME"),
            "{err}"
        );
    }

    #[test]
    fn kept_files_are_capped_and_named() {
        use tar::EntryType::Regular;
        let dir = tempfile::tempdir().unwrap();
        let cap = Cap {
            bytes: 64,
            what: "metadata files",
            variable: crate::limits::METADATA_SIZE_VAR,
        };
        let big = [0u8; 65];
        let layer = tar_of(&[
            ("usr/bin/big", Regular, &big[..], ""),
            ("etc/os-release", Regular, &big[..], ""),
        ]);
        let path = dir.path().join("1");
        std::fs::write(&path, layer).unwrap();
        let err = inspect_files_capped(&[(path.clone(), "sha256:abc".into())], "amd64", cap)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "/etc/os-release in layer sha256:abc is larger than 64 bytes, the limit on metadata \
             files (set COG_MAX_METADATA_SIZE to raise it)"
        );
        // Files that are not kept may be any size; a kept one at the cap is fine.
        let layer = tar_of(&[
            ("usr/bin/big", Regular, &big[..], ""),
            ("var/lib/dpkg/status", Regular, &big[..64], ""),
        ]);
        std::fs::write(&path, layer).unwrap();
        let base = inspect_files_capped(&[(path, "sha256:abc".into())], "amd64", cap).unwrap();
        assert_eq!(base.dpkg_status.map(|s| s.len()), Some(64));
    }

    #[test]
    fn a_dot_dot_entry_is_a_path_traversal() {
        let dir = tempfile::tempdir().unwrap();
        // The tar crate refuses to write `..`: set the raw name.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        let name = b"../etc/os-release";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_size(1);
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let path = dir.path().join("1");
        std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
        let err = inspect_files(&[(path, "sha256:dots".into())], "amd64").unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            text.contains("layer sha256:dots")
                && text.contains("\"../etc/os-release\"")
                && text.contains("path traversal"),
            "{text}"
        );
    }

    #[test]
    fn resolves_relative_and_absolute_links() {
        assert_eq!(
            resolve_link("etc/os-release", "../usr/lib/os-release"),
            "usr/lib/os-release"
        );
        assert_eq!(resolve_link("a/b", "/c/d"), "c/d");
        assert_eq!(resolve_link("a/b", "c"), "a/c");
    }
}
