//! Reading a `.deb`: an `ar` archive of `debian-binary`, `control.tar.*` and `data.tar.*`.

use std::collections::BTreeMap;
use std::io::{self, Read};

use crate::Error;
use crate::limits::{Cap, ReadError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
}

/// One entry of `data.tar`, with the archive's own metadata (modes incl. setuid, owners).
#[derive(Debug, Clone)]
pub struct Member {
    /// Absolute path as dpkg records it (`/usr/bin/hello`, `/bin/sh`), no trailing slash.
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Symlink target as written, or hard link target as an absolute path.
    pub link: Option<String>,
    pub data: Vec<u8>,
}

/// A `.deb` read into memory.
#[derive(Debug, Clone)]
pub struct Deb {
    /// The `control` file's text.
    pub control: String,
    /// Every other member of control.tar (`md5sums`, `conffiles`, `postinst`, ...) by name.
    pub control_files: BTreeMap<String, Vec<u8>>,
    pub members: Vec<Member>,
}

fn bad(name: &str, reason: impl Into<String>) -> Error {
    Error::Deb {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn decoder<'a>(member: &str, inner: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match member.rsplit('.').next() {
        Some("xz") => Box::new(xz2::read::XzDecoder::new(inner)),
        Some("zst") => Box::new(zstd::stream::read::Decoder::new(inner)?),
        Some("gz") => Box::new(flate2::read::GzDecoder::new(inner)),
        Some("tar") => Box::new(inner),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("unsupported compression of {member}"),
            ));
        }
    })
}

/// Reads `reader` (a `.deb` called `name` in errors).
/// Every `control.tar` member is capped by [`Cap::metadata`].
pub fn read_deb(reader: impl Read, name: &str) -> Result<Deb, Error> {
    read_deb_capped(reader, name, Cap::metadata()?)
}

fn read_deb_capped(reader: impl Read, name: &str, cap: Cap) -> Result<Deb, Error> {
    let mut ar = ar::Archive::new(reader);
    let mut control = None;
    let mut control_files = BTreeMap::new();
    let mut members = None;
    let mut saw_magic = false;
    while let Some(entry) = ar.next_entry() {
        let mut entry = entry.map_err(|e| bad(name, format!("not an ar archive: {e}")))?;
        let id = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        if id == "debian-binary" {
            let mut v = String::new();
            // "2.0\n"; anything long is not a .deb.
            (&mut entry)
                .take(64)
                .read_to_string(&mut v)
                .map_err(|e| bad(name, e.to_string()))?;
            if !v.starts_with("2.") {
                return Err(bad(
                    name,
                    format!("unsupported format version {:?}", v.trim()),
                ));
            }
            saw_magic = true;
        } else if id.starts_with("control.tar") {
            let dec = decoder(&id, &mut entry).map_err(|e| bad(name, e.to_string()))?;
            let mut tar = tar::Archive::new(dec);
            for file in tar.entries().map_err(|e| bad(name, format!("{id}: {e}")))? {
                let mut file = file.map_err(|e| bad(name, format!("{id}: {e}")))?;
                if !file.header().entry_type().is_file() {
                    continue;
                }
                let path = file
                    .path()
                    .map_err(|e| bad(name, e.to_string()))?
                    .to_string_lossy()
                    .trim_start_matches("./")
                    .to_owned();
                let member = || format!("{name}: {id}/{path}");
                cap.check(file.header().size().unwrap_or(0), member)?;
                let data = cap.read_all(&mut file, member).map_err(|e| match e {
                    ReadError::Io(e) => bad(name, format!("{id}/{path}: {e}")),
                    ReadError::TooLarge(e) => e,
                })?;
                if path == "control" {
                    control = Some(
                        String::from_utf8(data).map_err(|_| bad(name, "control is not UTF-8"))?,
                    );
                } else {
                    control_files.insert(path, data);
                }
            }
        } else if id.starts_with("data.tar") {
            let dec = decoder(&id, &mut entry).map_err(|e| bad(name, e.to_string()))?;
            members = Some(read_data(dec, name, &id)?);
        }
    }
    if !saw_magic {
        return Err(bad(name, "no debian-binary member (not a .deb)"));
    }
    Ok(Deb {
        control: control.ok_or_else(|| bad(name, "no control file in control.tar"))?,
        control_files,
        members: members.ok_or_else(|| bad(name, "no data.tar member"))?,
    })
}

fn read_data(dec: impl Read, name: &str, id: &str) -> Result<Vec<Member>, Error> {
    let mut tar = tar::Archive::new(dec);
    let mut out = Vec::new();
    for file in tar.entries().map_err(|e| bad(name, format!("{id}: {e}")))? {
        let mut file = file.map_err(|e| bad(name, format!("{id}: {e}")))?;
        let header = file.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            other => {
                tracing::warn!(package = name, "skipping tar entry of type {other:?}");
                continue;
            }
        };
        let raw_path = file
            .path()
            .map_err(|e| bad(name, e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let path = absolute(&raw_path).map_err(|e| bad(name, format!("{id}: {e}")))?;
        let mode = header.mode().map_err(|e| bad(name, e.to_string()))?;
        let uid = header.uid().map_err(|e| bad(name, e.to_string()))?;
        let gid = header.gid().map_err(|e| bad(name, e.to_string()))?;
        let mtime = header.mtime().map_err(|e| bad(name, e.to_string()))?;
        let link = match kind {
            Kind::Symlink => file
                .link_name()
                .map_err(|e| bad(name, e.to_string()))?
                .map(|l| l.to_string_lossy().into_owned()),
            Kind::Hardlink => file
                .link_name()
                .map_err(|e| bad(name, e.to_string()))?
                .map(|l| absolute(&l.to_string_lossy()))
                .transpose()
                .map_err(|e| bad(name, format!("{id}: hard link of {raw_path}: {e}")))?,
            _ => None,
        };
        let mut data = Vec::new();
        if kind == Kind::File {
            file.read_to_end(&mut data)
                .map_err(|e| bad(name, format!("{id}: {raw_path}: {e}")))?;
        }
        out.push(Member {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            link,
            data,
        });
    }
    Ok(out)
}

/// `./usr/bin/` -> `/usr/bin`; `.` / `./` -> `/`.
/// `./usr/bin/x` -> `/usr/bin/x`, `./` -> `/`; a path that would leave the root is refused.
fn absolute(raw: &str) -> Result<String, safe_path::UnsafeName> {
    if raw.split('/').all(|c| c.is_empty() || c == ".") {
        return Ok("/".to_owned());
    }
    safe_path::relative_path(raw).map(|p| format!("/{p}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a small `.deb` in memory (used by other modules' tests too).
    pub(crate) fn build_deb(
        control: &str,
        control_files: &[(&str, &[u8])],
        files: &[(&str, &[u8], u32)],
    ) -> Vec<u8> {
        fn tar_gz(entries: &[(&str, &[u8], u32)], dirs: &[&str]) -> Vec<u8> {
            let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            ));
            for d in dirs {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(0);
                b.append_data(&mut h, d, io::empty()).unwrap();
            }
            for (path, data, mode) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(0);
                b.append_data(&mut h, path, *data).unwrap();
            }
            b.into_inner().unwrap().finish().unwrap()
        }
        let mut ctl: Vec<(&str, &[u8], u32)> = vec![("./control", control.as_bytes(), 0o644)];
        ctl.extend(control_files.iter().map(|(n, d)| (*n, *d, 0o644)));
        let control_tar = tar_gz(&ctl, &["./"]);
        let data_tar = tar_gz(files, &["./", "./usr/", "./usr/bin/"]);
        let mut ar = ar::Builder::new(Vec::new());
        for (name, data) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.gz", control_tar),
            ("data.tar.gz", data_tar),
        ] {
            ar.append(
                &ar::Header::new(name.as_bytes().to_vec(), data.len() as u64),
                &data[..],
            )
            .unwrap();
        }
        ar.into_inner().unwrap()
    }

    #[test]
    fn reads_control_and_data_with_modes() {
        let deb = build_deb(
            "Package: t\nVersion: 1\nArchitecture: all\n",
            &[("./md5sums", b"abc  usr/bin/t\n")],
            &[("./usr/bin/t", b"#!/bin/sh\n", 0o4755)],
        );
        let d = read_deb(&deb[..], "t.deb").unwrap();
        assert!(d.control.starts_with("Package: t"));
        assert_eq!(d.control_files["md5sums"], b"abc  usr/bin/t\n");
        let paths: Vec<&str> = d.members.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["/", "/usr", "/usr/bin", "/usr/bin/t"]);
        assert_eq!(d.members[3].mode, 0o4755);
        assert_eq!(d.members[3].data, b"#!/bin/sh\n");
    }

    #[test]
    fn control_members_are_capped() {
        let postinst = vec![b'#'; 200];
        let deb = build_deb(
            "Package: t\nVersion: 1\nArchitecture: all\n",
            &[("./postinst", &postinst)],
            &[],
        );
        let cap = Cap {
            bytes: 100,
            what: "metadata files",
            variable: crate::limits::METADATA_SIZE_VAR,
        };
        let err = read_deb_capped(&deb[..], "t_1_all.deb", cap)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "t_1_all.deb: control.tar.gz/postinst is larger than 100 bytes, the limit on \
             metadata files (set COG_MAX_METADATA_SIZE to raise it)"
        );
    }

    #[test]
    fn rejects_non_debs() {
        let err = read_deb(&b"not an archive"[..], "x.deb")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.deb"), "{err}");
    }
}
