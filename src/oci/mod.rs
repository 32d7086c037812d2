//! OCI images: config, manifest, index and descriptor types (Docker schema2 accepted on input),
//! canonical JSON, the OCI layout and a tarball that is both an OCI archive and a docker-archive,
//! and base images read from local files into the blob store.
mod archive;
mod config;
mod descriptor;
mod error;
mod image;
mod layout;
mod manifest;
pub mod media_types;
pub mod reference;
mod source;

pub use archive::{
    export_tarball, read_docker_archive, read_oci_archive, write_tarball, write_tarball_omitting,
};
pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use descriptor::{Descriptor, Platform, PlatformError};
pub use error::OciError;
pub use image::{
    BuiltImage, ImageRef, SourceImage, assemble, assemble_index, available_platforms,
    reachable_blobs, resolve_in_store, select_platform,
};
pub use layout::{read_layout, write_layout};
pub use manifest::{Index, Manifest, canonical_json, declared_media_type};
pub use reference::{Reference, ReferenceError};
pub use source::LocalSource;
