//! Base images from local files: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`.
//!
//! [`LocalSource::parse`] is the one parser of these transports: `--base` (the plan's
//! `BaseImage`) goes through it too.
use std::fmt;
use std::path::PathBuf;

use layers::BlobStore;

use super::descriptor::Platform;
use super::error::OciError;
use super::image::SourceImage;
use super::{archive, layout};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSource {
    OciDir { dir: PathBuf, tag: Option<String> },
    OciArchive { file: PathBuf, tag: Option<String> },
    DockerArchive { file: PathBuf },
}

impl LocalSource {
    /// `None` when `s` names no local transport (it is then a registry reference); an error
    /// when it names one without a path (`oci:`).
    ///
    /// A tag follows the last `:` unless that part is empty or holds a `/` (then the `:`
    /// belongs to the path).
    pub fn parse(s: &str) -> Option<Result<Self, OciError>> {
        let invalid = || OciError::InvalidSource(s.to_string());
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = split_tag(rest);
            return Some(if path.is_empty() {
                Err(invalid())
            } else {
                Ok(Self::OciDir {
                    dir: path.into(),
                    tag,
                })
            });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = split_tag(rest);
            return Some(if path.is_empty() {
                Err(invalid())
            } else {
                Ok(Self::OciArchive {
                    file: path.into(),
                    tag,
                })
            });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Some(if rest.is_empty() {
                Err(invalid())
            } else {
                Ok(Self::DockerArchive { file: rest.into() })
            });
        }
        None
    }

    /// Imports the image into the store, each blob verified.
    pub fn import(&self, store: &BlobStore, platform: &Platform) -> Result<SourceImage, OciError> {
        match self {
            Self::OciDir { dir, tag } => layout::read_layout(store, dir, tag.as_deref(), platform),
            Self::OciArchive { file, tag } => {
                archive::read_oci_archive(store, file, tag.as_deref(), platform)
            }
            Self::DockerArchive { file } => archive::read_docker_archive(store, file),
        }
    }
}

impl fmt::Display for LocalSource {
    /// The transport form [`LocalSource::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (transport, path, tag) = match self {
            Self::OciDir { dir, tag } => ("oci", dir, tag.as_deref()),
            Self::OciArchive { file, tag } => ("oci-archive", file, tag.as_deref()),
            Self::DockerArchive { file } => ("docker-archive", file, None),
        };
        write!(f, "{transport}:{}", path.display())?;
        match tag {
            Some(tag) => write!(f, ":{tag}"),
            None => Ok(()),
        }
    }
}

/// `path:tag` -> (`path`, `tag`); a last `:` part that is empty or holds a `/` belongs to the
/// path.
fn split_tag(s: &str) -> (String, Option<String>) {
    match s.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') && !tag.is_empty() => {
            (path.to_string(), Some(tag.to_string()))
        }
        _ => (s.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_transports() {
        assert_eq!(
            LocalSource::parse("oci:/tmp/x:v1").unwrap().unwrap(),
            LocalSource::OciDir {
                dir: "/tmp/x".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            LocalSource::parse("oci:out").unwrap().unwrap(),
            LocalSource::OciDir {
                dir: "out".into(),
                tag: None
            }
        );
        assert_eq!(
            LocalSource::parse("oci-archive:a.tar:latest")
                .unwrap()
                .unwrap(),
            LocalSource::OciArchive {
                file: "a.tar".into(),
                tag: Some("latest".into())
            }
        );
        assert_eq!(
            LocalSource::parse("docker-archive:/x/a.tar")
                .unwrap()
                .unwrap(),
            LocalSource::DockerArchive {
                file: "/x/a.tar".into()
            }
        );
        assert_eq!(
            LocalSource::parse("oci:/a/b:c/d").unwrap().unwrap(),
            LocalSource::OciDir {
                dir: "/a/b:c/d".into(),
                tag: None
            }
        );
        assert!(LocalSource::parse("python:3.11").is_none());
        assert!(LocalSource::parse("scratch").is_none());
        for bad in ["oci:", "oci-archive:", "docker-archive:", "oci::v1"] {
            let err = LocalSource::parse(bad).unwrap().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid image source {bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn display_reads_back() {
        for arg in [
            "oci:/tmp/x:v1",
            "oci:out",
            "oci-archive:a.tar:latest",
            "oci-archive:a.tar",
            "docker-archive:/x/a.tar",
        ] {
            let source = LocalSource::parse(arg).unwrap().unwrap();
            assert_eq!(source.to_string(), arg);
            assert_eq!(
                LocalSource::parse(&source.to_string()).unwrap().unwrap(),
                source
            );
        }
    }
}
