//! Debian/Ubuntu archive client, dependency resolver and .deb to layer, without apt

// Archive paths are case-sensitive by definition (`.xz`, `.crt`, `.so.`).
#![allow(clippy::case_sensitive_file_extension_comparisons)]

pub mod archive;
pub mod base;
pub mod control;
pub mod deb;
pub mod effects;
mod error;
pub mod fetch;
pub mod filter;
pub mod index;
pub mod install;
pub mod layer;
mod ldcache;
pub mod limits;
pub mod lock;
pub mod relation;
pub mod resolve;
pub mod rootfs;
pub mod signature;
pub mod version;

pub use error::Error;
pub use version::Version;

pub use archive::{Archive, ArchiveConfig, Source};
pub use base::{
    AssembleOptions, AssembledBase, assemble_base, assemble_base_from, assemble_base_from_lock,
};
pub use install::{InstallOptions, Installed, install, install_layer};
pub use lock::{LOCK_FILE_NAME, Lock, LockedPackage};
pub use resolve::{minbase_names, resolve};
pub use rootfs::{BaseSystem, OsRelease};
