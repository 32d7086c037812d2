//! Python packaging for cog-rs: PEP 440/508/425/427, index client, resolver, wheel to layer.

pub mod error;
pub mod filename;
pub mod index;
pub mod lock;
pub mod metadata;
pub mod requirements;
pub mod resolve;
pub mod specifiers;
pub mod target;

pub use error::{Error, Result};
pub use requirements::Requirements;
pub use target::{Arch, Libc, Tag, Target};
