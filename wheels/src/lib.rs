//! Python packaging for cog-rs: PEP 440/508/425/427, requirements.txt, index client, resolver,
//! wheel to layer.
//!
//! The target environment is always the image's (Python version, linux, arch, glibc), never the
//! host's. The flow, for the build block:
//!
//! ```no_run
//! # fn main() -> wheels::Result<()> {
//! use std::path::Path;
//! use wheels::{Arch, Libc, Target};
//! use wheels::install::{InstallOptions, layers};
//! use wheels::requirements::{ParseOptions, parse_file};
//! use wheels::resolve::{ResolveOptions, resolve_locked};
//!
//! // cog.yaml: build.python_version "3.11", python:3.11-slim (bookworm, glibc 2.36), amd64.
//! let target = Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 36))?;
//! let reqs = parse_file(
//!     Path::new("requirements.txt"),
//!     &ParseOptions { project_dir: Some(".".into()) },
//! )?;
//! for warning in &reqs.warnings {
//!     eprintln!("warning: {warning}"); // e.g. `cog` lines stripped
//! }
//! // Reuses the lock while the inputs are unchanged; `upgrade: true` re-resolves.
//! let (lock, _reused) = resolve_locked(
//!     Path::new(wheels::lock::LOCK_FILE_NAME),
//!     &reqs,
//!     &target,
//!     &ResolveOptions::default(),
//! )?;
//! let store = layers::BlobStore::open(layers::BlobStore::default_root())?;
//! for layer in layers(&lock, &InstallOptions::python_slim("3.11"), &store)? {
//!     println!("{} {:?}", layer.info.digest, layer.packages);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! - [`requirements`]: [`requirements::parse_file`] (pip syntax, Cog's local artifacts and
//!   `cog`/`coglet` stripping), [`requirements::from_packages`] (deprecated
//!   `build.python_packages`).
//! - [`Target`]: Python version, [`Arch`], [`Libc`]; its PEP 425 tags ranked as pip ranks them
//!   and its PEP 508 marker environment.
//! - [`resolve`]: [`resolve::resolve`] / [`resolve::resolve_async`] give a [`Lock`];
//!   [`resolve::resolve_locked`] reads/writes the lock file. The default index comes from pip's
//!   configuration (`PIP_INDEX_URL`, pip.conf), else PyPI; find-links directories that do not
//!   exist are ignored, as pip does.
//! - [`install`]: [`install::layers`] turns a lock into layers in the [`layers::BlobStore`]
//!   (large wheels alone, small ones in name-hash buckets, each cached by content key). Gzip
//!   layers reuse the wheels' own deflate data ([`splice`], decoded once by [`inflate`] for
//!   the hashes), so nothing is compressed twice.
//! - [`index`]: the index client (PEP 691/503, PEP 658 metadata, range reads, HTTP cache under
//!   `<cog cache>/wheels/`), with several indexes taken first-index (default) or merged
//!   ([`index::IndexStrategy`]).
//!
//! Source distributions and `git+…` requirements are built through a [`build::SdistBuilder`]
//! the caller gives ([`ResolveOptions::builder`], [`InstallOptions::builder`]): the crate reads
//! their metadata without a build where it can ([`sdist`]), resolves their build environments,
//! pins git revisions to commits ([`git`]), and caches what the builder prepares and builds.
//! Without a builder, a package that has only a source is an error that names it.

pub mod build;
pub mod build_system;
pub mod error;
pub mod filename;
pub mod git;
pub mod index;
pub mod inflate;
pub mod install;
pub mod lock;
pub mod metadata;
pub mod pep508_guard;
pub mod requirements;
pub mod resolve;
pub mod sdist;
pub mod specifiers;
pub mod splice;
pub mod target;

pub use build::{BuildFailure, BuildRequest, BuildSystem, RequiresThenWheel, SdistBuilder};
pub use error::{Error, Result};
pub use index::{ExplicitIndex, IndexStrategy};
pub use install::{InstallOptions, WheelLayer};
pub use lock::{Lock, LockedBuild, LockedGit, LockedPackage};
pub use requirements::Requirements;
pub use resolve::{
    ResolveOptions, resolve, resolve_async, resolve_build_requirements, resolve_locked,
};
pub use target::{Arch, Libc, Tag, Target};
