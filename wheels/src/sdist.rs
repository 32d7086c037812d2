//! Source distributions: reading `PKG-INFO` and `pyproject.toml` without unpacking, unpacking
//! safely, and the metadata a source gives without a build (PEP 643 `PKG-INFO`, PEP 621
//! `[project]`).

use std::fmt::Write as _;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pep508_rs::pep440_rs::Version;
use pep508_rs::{MarkerTree, PackageName, Requirement};
use url::Url;

use crate::error::{Cause, Error, Result};

/// The archive formats of source distributions pip reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    TarGz,
    TarXz,
    Tar,
    Zip,
}

fn format(filename: &str) -> Result<Format> {
    let lower = filename.to_ascii_lowercase();
    let ends = |suffix: &str| lower.ends_with(suffix);
    if ends(".tar.gz") || ends(".tgz") {
        Ok(Format::TarGz)
    } else if ends(".tar.xz") {
        Ok(Format::TarXz)
    } else if ends(".tar") {
        Ok(Format::Tar)
    } else if ends(".zip") {
        Ok(Format::Zip)
    } else if ends(".tar.bz2") {
        Err(invalid(
            filename,
            "bzip2 source archives are not supported (.tar.gz, .tar.xz, .tar and .zip are)",
            None,
        ))
    } else {
        Err(invalid(filename, "not a source archive", None))
    }
}

fn invalid(file: &str, message: impl Into<String>, source: Option<Cause>) -> Error {
    Error::InvalidSdist {
        file: file.to_string(),
        message: message.into(),
        source,
    }
}

/// The files of an sdist's top directory that say what it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdistFiles {
    pub pkg_info: Option<String>,
    pub pyproject: Option<String>,
}

/// Reads `PKG-INFO` and `pyproject.toml` of the archive's top directory (`name-version/`).
pub fn read_files(path: &Path, filename: &str) -> Result<SdistFiles> {
    let mut out = SdistFiles::default();
    let mut take = |name: &str, read: &mut dyn Read| -> Result<()> {
        let Some((top, rest)) = name.trim_start_matches("./").split_once('/') else {
            return Ok(());
        };
        let slot = match rest {
            "PKG-INFO" => &mut out.pkg_info,
            "pyproject.toml" => &mut out.pyproject,
            _ => return Ok(()),
        };
        if top.is_empty() || slot.is_some() {
            return Ok(());
        }
        let mut text = String::new();
        read.take(16 << 20)
            .read_to_string(&mut text)
            .map_err(|e| invalid(filename, name.to_string(), Some(Arc::new(e))))?;
        *slot = Some(text);
        Ok(())
    };
    match format(filename)? {
        Format::Zip => {
            let f = fs_err::File::open(path)?;
            let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
                .map_err(|e| invalid(filename, "not a zip archive", Some(Arc::new(e))))?;
            for i in 0..zip.len() {
                let mut entry = zip
                    .by_index(i)
                    .map_err(|e| invalid(filename, "unreadable zip entry", Some(Arc::new(e))))?;
                let name = entry.name().to_string();
                take(&name, &mut entry)?;
            }
        }
        fmt => {
            let mut archive = tar::Archive::new(tar_reader(path, fmt)?);
            let entries = archive
                .entries()
                .map_err(|e| invalid(filename, "unreadable tar archive", Some(Arc::new(e))))?;
            for entry in entries {
                let mut entry = entry
                    .map_err(|e| invalid(filename, "unreadable tar entry", Some(Arc::new(e))))?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                take(&name, &mut entry)?;
            }
        }
    }
    Ok(out)
}

fn tar_reader(path: &Path, fmt: Format) -> Result<Box<dyn Read>> {
    let f = std::io::BufReader::new(fs_err::File::open(path)?);
    Ok(match fmt {
        Format::TarGz => Box::new(flate2::read::GzDecoder::new(f)),
        Format::TarXz => Box::new(xz2::read::XzDecoder::new(f)),
        Format::Tar | Format::Zip => Box::new(f),
    })
}

/// Unpacks a source archive into `dest` (created), refusing entries that would land outside
/// it, and returns the project's directory: the archive's single top directory, else `dest`.
pub fn unpack(path: &Path, filename: &str, dest: &Path) -> Result<PathBuf> {
    fs_err::create_dir_all(dest)?;
    let mut out = Unpacker {
        root: dest.to_path_buf(),
        file: filename.to_string(),
        links: Vec::new(),
    };
    match format(filename)? {
        Format::Zip => {
            let f = fs_err::File::open(path)?;
            unpack_zip(&mut out, std::io::BufReader::new(f))?;
        }
        fmt => unpack_tar(&mut out, tar_reader(path, fmt)?)?,
    }
    out.finish()?;
    project_dir(dest)
}

/// Unpacks a tar stream (`git archive`'s output) into `dest`, with the same checks.
pub(crate) fn unpack_tar_stream(read: impl Read, what: &str, dest: &Path) -> Result<()> {
    fs_err::create_dir_all(dest)?;
    let mut out = Unpacker {
        root: dest.to_path_buf(),
        file: what.to_string(),
        links: Vec::new(),
    };
    unpack_tar(&mut out, read)?;
    out.finish()
}

/// The single top directory of an unpacked archive, else the directory itself.
fn project_dir(dest: &Path) -> Result<PathBuf> {
    let entries: Vec<_> = fs_err::read_dir(dest)?
        .filter_map(std::result::Result::ok)
        .collect();
    if let [only] = entries.as_slice()
        && only.file_type()?.is_dir()
    {
        return Ok(only.path());
    }
    Ok(dest.to_path_buf())
}

enum Link {
    Sym(String),
    Hard(String),
}

struct Unpacker {
    root: PathBuf,
    file: String,
    /// Links are made after every file, so no file is written through one.
    links: Vec<(String, Link)>,
}

impl Unpacker {
    fn checked(&self, name: &str) -> Result<(String, PathBuf)> {
        let rel = safe_path::relative_path(name).map_err(|e| Error::UnsafeName {
            origin: self.file.clone(),
            source: e,
        })?;
        let full = self.root.join(&rel);
        Ok((rel, full))
    }

    fn dir(&self, name: &str) -> Result<()> {
        let (_, full) = self.checked(name)?;
        fs_err::create_dir_all(full)?;
        Ok(())
    }

    fn file(&self, name: &str, mode: u32, read: &mut dyn Read) -> Result<()> {
        let (_, full) = self.checked(name)?;
        if let Some(parent) = full.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let mut f = fs_err::File::create(&full)?;
        std::io::copy(read, &mut f)
            .map_err(|e| invalid(&self.file, name.to_string(), Some(Arc::new(e))))?;
        set_mode(&full, if mode & 0o111 != 0 { 0o755 } else { 0o644 })?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for (name, link) in std::mem::take(&mut self.links) {
            let (rel, full) = self.checked(&name)?;
            if let Some(parent) = full.parent() {
                fs_err::create_dir_all(parent)?;
                // No link is made through a directory that is itself a link.
                if fs_err::canonicalize(parent)?
                    != fs_err::canonicalize(&self.root)?
                        .join(Path::new(&rel).parent().unwrap_or(Path::new("")))
                {
                    return Err(invalid(
                        &self.file,
                        format!("{name}: a link inside a linked directory"),
                        None,
                    ));
                }
            }
            match link {
                Link::Sym(target) => {
                    if target.starts_with('/') {
                        return Err(invalid(
                            &self.file,
                            format!("{name}: symlink to an absolute path {target:?}"),
                            None,
                        ));
                    }
                    safe_path::symlink_target(&rel, &target).map_err(|e| Error::UnsafeName {
                        origin: self.file.clone(),
                        source: e,
                    })?;
                    std::os::unix::fs::symlink(&target, &full)?;
                }
                Link::Hard(target) => {
                    let (_, source) = self.checked(&target)?;
                    fs_err::copy(source, full)?;
                }
            }
        }
        Ok(())
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn unpack_tar(out: &mut Unpacker, read: impl Read) -> Result<()> {
    let mut archive = tar::Archive::new(read);
    let file = out.file.clone();
    let entries = archive
        .entries()
        .map_err(|e| invalid(&file, "unreadable tar archive", Some(Arc::new(e))))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| invalid(&file, "unreadable tar entry", Some(Arc::new(e))))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let link = || {
            entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        match kind {
            tar::EntryType::Directory => out.dir(&name)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = entry.header().mode().unwrap_or(0o644);
                out.file(&name, mode, &mut entry)?;
            }
            tar::EntryType::Symlink => {
                let target = link();
                out.links.push((name, Link::Sym(target)));
            }
            tar::EntryType::Link => {
                let target = link();
                out.links.push((name, Link::Hard(target)));
            }
            // Metadata entries of pax and GNU tar.
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            other => {
                return Err(invalid(
                    &file,
                    format!("{name}: unsupported entry type {other:?}"),
                    None,
                ));
            }
        }
    }
    Ok(())
}

fn unpack_zip(out: &mut Unpacker, read: impl Read + Seek) -> Result<()> {
    let file = out.file.clone();
    let mut zip = zip::ZipArchive::new(read)
        .map_err(|e| invalid(&file, "not a zip archive", Some(Arc::new(e))))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| invalid(&file, "unreadable zip entry", Some(Arc::new(e))))?;
        let name = entry.name().to_string();
        let mode = entry.unix_mode().unwrap_or(0o644);
        if entry.is_dir() {
            out.dir(&name)?;
        } else if mode & 0o170_000 == 0o120_000 {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| invalid(&file, name.clone(), Some(Arc::new(e))))?;
            out.links.push((name, Link::Sym(target)));
        } else {
            out.file(&name, mode, &mut entry)?;
        }
    }
    Ok(())
}

/// `Metadata-Version` >= 2.2 and neither `Requires-Dist` nor `Requires-Python` marked
/// `Dynamic` (PEP 643): the wheel built from this sdist will have the same dependencies.
pub fn pkg_info_is_static(pkg_info: &str) -> bool {
    let headers = crate::metadata::headers(pkg_info);
    let version = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("metadata-version"))
        .and_then(|(_, v)| v.parse::<Version>().ok());
    let new_enough = version.is_some_and(|v| v >= Version::new([2, 2]));
    let dynamic = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("dynamic")
            && ["requires-dist", "requires-python", "provides-extra"]
                .iter()
                .any(|f| v.trim().eq_ignore_ascii_case(f))
    });
    new_enough && !dynamic
}

/// The `METADATA` a PEP 621 `[project]` table gives, when name, version, dependencies,
/// optional dependencies and requires-python are all static; `None` otherwise.
pub fn pyproject_metadata(pyproject: &str, file: &str) -> Result<Option<String>> {
    let table: toml::Table = toml::from_str(pyproject).map_err(|e| Error::Pyproject {
        file: file.to_string(),
        message: "invalid TOML".into(),
        source: Some(Arc::new(e)),
    })?;
    let Some(project) = table.get("project").and_then(toml::Value::as_table) else {
        return Ok(None);
    };
    let bad = |message: String| Error::Pyproject {
        file: file.to_string(),
        message,
        source: None,
    };
    let dynamic: Vec<&str> = match project.get("dynamic") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
            .ok_or_else(|| bad("[project] dynamic must be a list of strings".into()))?,
    };
    if [
        "version",
        "dependencies",
        "optional-dependencies",
        "requires-python",
    ]
    .iter()
    .any(|f| dynamic.contains(f))
    {
        return Ok(None);
    }
    let string = |key: &str| -> Result<Option<&str>> {
        match project.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| bad(format!("[project] {key} must be a string"))),
        }
    };
    let (Some(name), Some(version)) = (string("name")?, string("version")?) else {
        return Ok(None);
    };
    let name = PackageName::new(name.to_string()).map_err(|e| Error::Pyproject {
        file: file.to_string(),
        message: format!("[project] name {name:?}"),
        source: Some(Arc::new(e)),
    })?;
    let version: Version = version.parse().map_err(|e| Error::Pyproject {
        file: file.to_string(),
        message: format!("[project] version {version:?}"),
        source: Some(Arc::new(e)),
    })?;
    let mut text = format!("Metadata-Version: 2.2\nName: {name}\nVersion: {version}\n");
    if let Some(rp) = string("requires-python")? {
        let _ = writeln!(text, "Requires-Python: {rp}");
    }
    let requirement = |value: &toml::Value, key: &str| -> Result<Requirement<Url>> {
        let s = value
            .as_str()
            .ok_or_else(|| bad(format!("[project] {key} must hold strings")))?;
        Requirement::<Url>::parse(s, Path::new(".")).map_err(|e| Error::Pyproject {
            file: file.to_string(),
            message: format!("[project] {key}: invalid requirement {s:?}"),
            source: Some(Arc::new(e)),
        })
    };
    if let Some(deps) = project.get("dependencies") {
        for d in deps
            .as_array()
            .ok_or_else(|| bad("[project] dependencies must be a list".into()))?
        {
            let _ = writeln!(text, "Requires-Dist: {}", requirement(d, "dependencies")?);
        }
    }
    if let Some(optional) = project.get("optional-dependencies") {
        let optional = optional
            .as_table()
            .ok_or_else(|| bad("[project] optional-dependencies must be a table".into()))?;
        for (extra, deps) in optional {
            let extra_name =
                pep508_rs::ExtraName::new(extra.clone()).map_err(|e| Error::Pyproject {
                    file: file.to_string(),
                    message: format!("[project] optional-dependencies: extra {extra:?}"),
                    source: Some(Arc::new(e)),
                })?;
            let _ = writeln!(text, "Provides-Extra: {extra_name}");
            for d in deps.as_array().ok_or_else(|| {
                bad(format!(
                    "[project] optional-dependencies.{extra} must be a list"
                ))
            })? {
                let mut r = requirement(d, "optional-dependencies")?;
                let marker = r.marker.try_to_string();
                r.marker = MarkerTree::TRUE;
                let condition = match marker {
                    Some(m) => format!("({m}) and extra == \"{extra_name}\""),
                    None => format!("extra == \"{extra_name}\""),
                };
                let _ = writeln!(text, "Requires-Dist: {r} ; {condition}");
            }
        }
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::CoreMetadata;

    fn targz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            for (name, data) in files {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_cksum();
                t.append_data(&mut h, name, *data).unwrap();
            }
            t.into_inner().unwrap().finish().unwrap();
        }
        out
    }

    #[test]
    fn reads_pkg_info_and_pyproject() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fire-0.6.0.tar.gz");
        std::fs::write(
            &p,
            targz(&[
                ("fire-0.6.0/setup.py", b"x"),
                (
                    "fire-0.6.0/PKG-INFO",
                    b"Metadata-Version: 2.1\nName: fire\nVersion: 0.6.0\n",
                ),
                ("fire-0.6.0/sub/PKG-INFO", b"not this"),
            ]),
        )
        .unwrap();
        let files = read_files(&p, "fire-0.6.0.tar.gz").unwrap();
        assert!(files.pkg_info.unwrap().contains("Name: fire"));
        assert_eq!(files.pyproject, None);
        let tree = unpack(&p, "fire-0.6.0.tar.gz", &dir.path().join("out")).unwrap();
        assert!(tree.ends_with("fire-0.6.0"));
        assert!(tree.join("sub/PKG-INFO").is_file());
    }

    #[test]
    fn static_metadata_rules() {
        assert!(pkg_info_is_static(
            "Metadata-Version: 2.2\nName: a\nVersion: 1\nDynamic: License\n"
        ));
        assert!(!pkg_info_is_static("Metadata-Version: 2.1\nName: a\n"));
        assert!(!pkg_info_is_static(
            "Metadata-Version: 2.4\nName: a\nDynamic: Requires-Dist\n"
        ));
        let text = pyproject_metadata(
            "[project]\nname = 'My_Pkg'\nversion = '1.0'\nrequires-python = '>=3.9'\n\
             dependencies = ['numpy>=1', \"pywin32; sys_platform == 'win32'\"]\n\
             [project.optional-dependencies]\nfast = [\"uvloop; sys_platform != 'win32'\", 'orjson']\n",
            "pyproject.toml",
        )
        .unwrap()
        .unwrap();
        let m = CoreMetadata::parse(&text, "pyproject.toml").unwrap();
        assert_eq!(m.name.as_ref(), "my-pkg");
        assert_eq!(m.requires_dist.len(), 4);
        assert!(
            text.contains("Requires-Dist: orjson ; extra == \"fast\""),
            "{text}"
        );
        assert!(
            text.contains("uvloop ; (sys_platform != 'win32') and extra == \"fast\""),
            "{text}"
        );
        assert_eq!(
            pyproject_metadata(
                "[project]\nname='a'\ndynamic=['version']\n",
                "pyproject.toml"
            )
            .unwrap(),
            None
        );
        assert_eq!(
            pyproject_metadata("[tool.poetry]\nname='a'\n", "pyproject.toml").unwrap(),
            None
        );
        assert!(pyproject_metadata("[project", "pyproject.toml").is_err());
    }

    #[test]
    fn unsafe_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, data) in [("../evil", &b"x"[..]), ("/abs/evil", b"x")] {
            // tar::Builder refuses to write such names: write the header by hand.
            let mut raw = Vec::new();
            {
                let mut t = tar::Builder::new(&mut raw);
                let mut h = tar::Header::new_old();
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                t.append(&h, data).unwrap();
                t.finish().unwrap();
            }
            let p = dir.path().join("x-1.0.tar");
            std::fs::write(&p, &raw).unwrap();
            let dest = dir.path().join("out");
            let result = unpack(&p, "x-1.0.tar", &dest);
            if name.starts_with('/') {
                // A leading `/` is taken as relative to the archive's root, as tar does.
                result.unwrap();
                assert!(dest.join("abs/evil").is_file());
            } else {
                let e = result.unwrap_err();
                assert!(matches!(e, Error::UnsafeName { .. }), "{name}: {e:?}");
            }
            assert!(!dir.path().join("evil").exists());
        }
        let e = unpack(
            Path::new("/nonexistent.tar.bz2"),
            "x-1.0.tar.bz2",
            dir.path(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("bzip2"), "{e}");
    }
}
