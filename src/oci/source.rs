//! Base images from local files: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`.
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
    /// `None` when `s` names no local transport (it is then a registry reference).
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

/// `path:tag` -> (`path`, `tag`); a last `:` part that holds a `/` belongs to the path.
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
        assert!(LocalSource::parse("python:3.11").is_none());
        let err = LocalSource::parse("oci:").unwrap().unwrap_err().to_string();
        assert!(err.starts_with("invalid image source \"oci:\""), "{err}");
    }
}
