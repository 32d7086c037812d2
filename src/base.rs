//! The base image: what `--base` or the stack names ([`BaseImage`], plain data in the plan), and
//! fetching it into the store ([`fetch_base`]): a registry pull, a local import, or assembly
//! from distribution packages. Both the resolve stage (system packages are resolved on the
//! base's dpkg database) and the builder use it.
mod layout;
pub mod python;
pub mod select;
pub use layout::PythonLayout;

use layers::{BlobStore, Compression, LayerInfo};
use report::Unit;
use serde::{Deserialize, Serialize};

use crate::oci::{ContainerConfig, ImageConfig, LocalSource, OciError, Platform};
use crate::registry::{Reference, ReferenceError, RegistryError};
use crate::session::Session;

/// Where the image's first layers come from. Base layers pass through untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BaseImage {
    /// An image in a registry (`python:3.11-slim`, `127.0.0.1:5000/base@sha256:…`).
    Registry { reference: String },
    /// An OCI image layout directory, optionally a tag inside it (`oci:DIR[:TAG]`).
    OciLayout { path: String, tag: Option<String> },
    /// An OCI archive tarball (`oci-archive:FILE[:TAG]`).
    OciArchive { path: String, tag: Option<String> },
    /// A `docker save` tarball (`docker-archive:FILE`).
    DockerArchive { path: String },
    /// No base at all: the image holds only the plan's layers.
    Scratch,
    /// Our embedded default: a Python base assembled from Debian/Ubuntu packages (minbase,
    /// python3, ca-certificates, tzdata, tini), pinned by the lock. No registry needed.
    Assembled {
        distro: String,
        suite: String,
        python_version: String,
        lock: debian::Lock,
    },
}

impl BaseImage {
    /// Parses a `--base` argument: a transport-prefixed local image (parsed by
    /// [`LocalSource::parse`], the one parser of `oci:`, `oci-archive:` and `docker-archive:`),
    /// `scratch`, or else a registry reference (an optional `docker://` dropped).
    pub fn parse(arg: &str) -> Result<Self, OciError> {
        if let Some(local) = LocalSource::parse(arg) {
            return local.map(Self::from);
        }
        Ok(if arg == "scratch" {
            Self::Scratch
        } else {
            Self::Registry {
                reference: arg.strip_prefix("docker://").unwrap_or(arg).to_string(),
            }
        })
    }

    /// The local image this base names, for `oci:`, `oci-archive:` and `docker-archive:`.
    pub fn local_source(&self) -> Option<LocalSource> {
        match self {
            Self::OciLayout { path, tag } => Some(LocalSource::OciDir {
                dir: path.into(),
                tag: tag.clone(),
            }),
            Self::OciArchive { path, tag } => Some(LocalSource::OciArchive {
                file: path.into(),
                tag: tag.clone(),
            }),
            Self::DockerArchive { path } => Some(LocalSource::DockerArchive { file: path.into() }),
            Self::Registry { .. } | Self::Scratch | Self::Assembled { .. } => None,
        }
    }
}

impl From<LocalSource> for BaseImage {
    fn from(source: LocalSource) -> Self {
        // Paths come from `--base`, a string: the lossy conversion loses nothing.
        let text = |path: &std::path::Path| path.to_string_lossy().into_owned();
        match source {
            LocalSource::OciDir { dir, tag } => Self::OciLayout {
                path: text(&dir),
                tag,
            },
            LocalSource::OciArchive { file, tag } => Self::OciArchive {
                path: text(&file),
                tag,
            },
            LocalSource::DockerArchive { file } => Self::DockerArchive { path: text(&file) },
        }
    }
}

impl std::fmt::Display for BaseImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Registry { reference } => f.write_str(reference),
            Self::Scratch => f.write_str("scratch"),
            Self::Assembled {
                distro,
                suite,
                python_version,
                ..
            } => {
                write!(
                    f,
                    "{distro} {suite} with python {python_version} (assembled from packages)"
                )
            }
            // Written as LocalSource writes them, so that they parse back.
            Self::OciLayout { .. } | Self::OciArchive { .. } | Self::DockerArchive { .. } => {
                self.local_source().map_or(Ok(()), |local| local.fmt(f))
            }
        }
    }
}

/// A base image ready to build on: its config and layers (blobs in the store, as they came),
/// plus its dpkg database when we know it (for an apt layer on top).
#[derive(Debug, Clone, Default)]
pub struct FetchedBase {
    pub config: Option<ImageConfig>,
    pub layers: Vec<LayerInfo>,
    pub dpkg_status: Option<Vec<u8>>,
    /// Shared libraries of the base, so an apt layer's `/etc/ld.so.cache` covers both.
    pub libraries: Option<Vec<String>>,
    /// dpkg's path filters in the base (`/etc/dpkg/dpkg.cfg.d/`), when we know them: an apt
    /// layer leaves out what dpkg in the image would.
    pub path_filter: Option<debian::filter::PathFilter>,
}

/// The base image could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("base image {base}")]
    Reference {
        base: String,
        #[source]
        source: ReferenceError,
    },
    #[error("base image {base}")]
    Registry {
        base: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("base image {base}")]
    Local {
        base: String,
        #[source]
        source: OciError,
    },
    #[error("base image {base}")]
    Assemble {
        base: String,
        #[source]
        source: debian::Error,
    },
    #[error("base image {base}: the import was interrupted")]
    Join {
        base: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// What fetching a base needs of a session, owned (for work that runs later, on other
/// threads: a source build needs the base when it first runs).
#[derive(Clone, Debug)]
pub struct Fetcher {
    pub store: BlobStore,
    pub registry: crate::registry::Client,
    pub reporter: report::SharedReporter,
}

impl Fetcher {
    pub fn of(session: &Session) -> Self {
        Self {
            store: session.store.clone(),
            registry: session.registry.clone(),
            reporter: session.reporter.clone(),
        }
    }
}

/// Brings `base` into the session's store; empty for `scratch`.
pub async fn fetch_base(
    session: &Session,
    base: &BaseImage,
    platform: &Platform,
) -> Result<FetchedBase, BaseError> {
    fetch_base_with(&Fetcher::of(session), base, platform).await
}

/// [`fetch_base`] with a [`Fetcher`].
pub async fn fetch_base_with(
    session: &Fetcher,
    base: &BaseImage,
    platform: &Platform,
) -> Result<FetchedBase, BaseError> {
    let store = &session.store;
    let reporter = session.reporter.as_ref();
    if let Some(local) = base.local_source() {
        return import_local(session, base, local, platform).await;
    }
    match base {
        // Local kinds have a local source, handled above.
        BaseImage::Scratch
        | BaseImage::OciLayout { .. }
        | BaseImage::OciArchive { .. }
        | BaseImage::DockerArchive { .. } => Ok(FetchedBase::default()),
        BaseImage::Registry { reference } => {
            let registry = |source: RegistryError| BaseError::Registry {
                base: base.to_string(),
                source: Box::new(source),
            };
            let reference = Reference::parse(reference).map_err(|source| BaseError::Reference {
                base: base.to_string(),
                source,
            })?;
            let image = session
                .registry
                .pull(&reference, platform, store, reporter)
                .await
                .map_err(registry)?;
            Ok(FetchedBase {
                config: Some(image.config),
                layers: image.layers,
                ..FetchedBase::default()
            })
        }
        BaseImage::Assembled { lock, .. } => {
            let task = reporter.task(
                &format!("assemble {base}"),
                Some(lock.packages.len() as u64),
                Unit::Items,
            );
            let assembled =
                debian::assemble_base_from_lock(lock, &debian::AssembleOptions::default(), store)
                    .await
                    .map_err(|source| BaseError::Assemble {
                        base: base.to_string(),
                        source,
                    })?;
            task.finish(&format!("{} packages", lock.packages.len()));
            let config = ImageConfig {
                config: Some(ContainerConfig {
                    env: Some(
                        assembled
                            .env
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect(),
                    ),
                    entrypoint: Some(assembled.entrypoint.clone()),
                    ..ContainerConfig::default()
                }),
                ..ImageConfig::new_linux_amd64()
            };
            let mut config = config;
            config.architecture.clone_from(&platform.architecture);
            Ok(FetchedBase {
                config: Some(config),
                layers: assembled.layers,
                dpkg_status: Some(assembled.status),
                libraries: Some(assembled.libraries),
                path_filter: Some(assembled.path_filter),
            })
        }
    }
}

/// Imports an `oci:`, `oci-archive:` or `docker-archive:` base into the store.
async fn import_local(
    session: &Fetcher,
    base: &BaseImage,
    local: LocalSource,
    platform: &Platform,
) -> Result<FetchedBase, BaseError> {
    let store = session.store.clone();
    let platform = platform.clone();
    let task = session
        .reporter
        .task(&format!("import {base}"), None, Unit::Items);
    let image = tokio::task::spawn_blocking(move || local.import(&store, &platform))
        .await
        .map_err(|source| BaseError::Join {
            base: base.to_string(),
            source,
        })?
        .map_err(|source| BaseError::Local {
            base: base.to_string(),
            source,
        })?;
    task.finish(&format!("{} layers", image.layers.len()));
    Ok(FetchedBase {
        config: Some(image.config),
        layers: image.layers,
        ..FetchedBase::default()
    })
}

/// One `build.system_packages` layer (an apt lock installed over the base).
#[derive(Debug, Clone)]
pub struct SystemLayer {
    pub info: LayerInfo,
    pub cached: bool,
}

/// Why the system-package layers could not be made; `index` is the lock's in the list given.
#[derive(Debug, thiserror::Error)]
pub enum SystemLayerError {
    #[error("the base image has no dpkg database (/var/lib/dpkg/status)")]
    NoDpkg { index: usize },
    #[error("installing the packages")]
    Packages {
        index: usize,
        #[source]
        source: debian::Error,
    },
    #[error("reading the base image's system")]
    Join(#[from] tokio::task::JoinError),
}

/// The apt layers of `locks`, in order, each on the dpkg database the previous one left.
pub async fn system_package_layers(
    locks: &[&debian::Lock],
    base: &FetchedBase,
    store: &BlobStore,
    compression: Compression,
    rebuild: bool,
    reporter: &report::SharedReporter,
) -> Result<Vec<SystemLayer>, SystemLayerError> {
    let mut status = base.dpkg_status.clone();
    let mut libraries = base.libraries.clone();
    let mut path_filter = base.path_filter.clone().unwrap_or_default();
    let mut merged_usr = true;
    let mut outcomes = Vec::new();
    for (index, lock) in locks.iter().enumerate() {
        let failed = |source| SystemLayerError::Packages { index, source };
        if status.is_none() {
            // A registry or local base: read its dpkg database and libraries from its layers.
            let system = read_base_system(base, &lock.arch, store)
                .await?
                .map_err(failed)?;
            let Some(found) = system.dpkg_status else {
                return Err(SystemLayerError::NoDpkg { index });
            };
            status = Some(found);
            libraries = Some(system.libraries);
            merged_usr = system.merged_usr;
            path_filter = debian::filter::PathFilter::parse(&system.dpkg_config);
        }
        let Some(current) = &status else {
            continue;
        };
        let install_options = debian::InstallOptions {
            compression,
            base_libraries: libraries.clone(),
            merged_usr,
            rebuild,
            reporter: reporter.clone(),
            path_filter: path_filter.clone(),
            ..debian::InstallOptions::default()
        };
        let installed = debian::install(lock, current, store, &install_options)
            .await
            .map_err(failed)?;
        outcomes.push(SystemLayer {
            info: installed.layer,
            cached: installed.cached,
        });
        status = Some(installed.status);
        libraries = Some(installed.libraries);
    }
    Ok(outcomes)
}

/// What a registry or local base is (dpkg status, libraries, merged /usr), read from its layers.
async fn read_base_system(
    base: &FetchedBase,
    arch: &str,
    store: &BlobStore,
) -> Result<Result<debian::BaseSystem, debian::Error>, tokio::task::JoinError> {
    let layers = base.layers.clone();
    let arch = arch.to_owned();
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        debian::rootfs::inspect_cached(&store, &layers, &arch, &debian::fetch::default_cache_dir())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_arguments_parse_by_transport() {
        let parse = |arg: &str| BaseImage::parse(arg).unwrap();
        assert_eq!(
            parse("python:3.11-slim"),
            BaseImage::Registry {
                reference: "python:3.11-slim".into()
            }
        );
        assert_eq!(
            parse("docker://python:3.11-slim"),
            BaseImage::Registry {
                reference: "python:3.11-slim".into()
            }
        );
        assert_eq!(
            parse("oci:/tmp/base:v1"),
            BaseImage::OciLayout {
                path: "/tmp/base".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            parse("oci:./base"),
            BaseImage::OciLayout {
                path: "./base".into(),
                tag: None
            }
        );
        assert_eq!(
            parse("oci-archive:base.tar"),
            BaseImage::OciArchive {
                path: "base.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            parse("docker-archive:/x/base.tar"),
            BaseImage::DockerArchive {
                path: "/x/base.tar".into()
            }
        );
        assert_eq!(parse("scratch"), BaseImage::Scratch);
        for arg in [
            "oci:/tmp/base:v1",
            "oci-archive:base.tar",
            "oci-archive:base.tar:v2",
            "docker-archive:/x/base.tar",
            "python:3.11-slim",
            "scratch",
        ] {
            assert_eq!(parse(arg).to_string(), arg);
        }
    }

    #[test]
    fn local_bases_are_the_oci_sources() {
        // One parser: what `--base` accepts is exactly what LocalSource reads, both ways.
        for arg in [
            "oci:/tmp/base:v1",
            "oci:relative/dir",
            "oci-archive:/x/base.tar:latest",
            "docker-archive:saved.tar",
        ] {
            let source = LocalSource::parse(arg).unwrap().unwrap();
            let base = BaseImage::parse(arg).unwrap();
            assert_eq!(base.local_source(), Some(source.clone()));
            assert_eq!(BaseImage::from(source), base);
        }
        assert_eq!(
            BaseImage::parse("python:3.11").unwrap().local_source(),
            None
        );
        assert_eq!(BaseImage::Scratch.local_source(), None);
        for bad in ["oci:", "oci-archive:", "docker-archive:"] {
            let err = BaseImage::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("oci:DIR[:TAG]"),
                "{err}"
            );
        }
    }
}
