//! Pushing a built image to its registry: what `cog push` and `cog build --push` share.
use anyhow::{Context, Result};

use super::args::BuildFlags;
use crate::oci::ImageRef;
use crate::registry::{Reference, RegistryError};
use crate::session::Session;

/// The reference an image named `name` is pushed to.
pub fn target(name: &str) -> Result<Reference> {
    Reference::parse(name)
        .with_context(|| format!("cannot push {name}: not a valid image reference"))
}

/// `--base` when it is a registry image.
fn base_reference(flags: &BuildFlags) -> Option<Reference> {
    flags
        .base
        .as_deref()
        .filter(|b| !b.starts_with("oci:") && !b.contains("-archive:"))
        .and_then(|b| Reference::parse(b.strip_prefix("docker://").unwrap_or(b)).ok())
}

/// Writes `--cache-to` after the build (and the push to `pushed`, whose repository then holds
/// the layers: the cache mounts them from it).
pub fn save_cache(
    session: &Session,
    project: &crate::resolve::Project,
    flags: &BuildFlags,
    pushed: Option<&Reference>,
) -> Result<()> {
    let cache = flags.remote_cache()?;
    let mut sources: Vec<Reference> = pushed.into_iter().cloned().collect();
    sources.extend(base_reference(flags));
    cache.save(
        session,
        &project.dir.join(&flags.file),
        &project.dir,
        &sources,
    )
}

/// Pushes `image` as `name`, mounting shared blobs from `--base` when it is an image on the same
/// registry; returns the digest the tag now points at.
pub fn push_built(
    session: &Session,
    image: &ImageRef,
    name: &str,
    flags: &BuildFlags,
) -> Result<layers::Digest> {
    let target = target(name)?;
    // Where the image's blobs may already be: the base's repository, the build caches'.
    let mut sources: Vec<Reference> = base_reference(flags).into_iter().collect();
    sources.extend(flags.remote_cache()?.repositories());
    session
        .reporter
        .message(&format!("Pushing image '{name}'..."));
    let pushed = session.block_on(session.registry.push_from(
        &session.store,
        image,
        &target,
        &sources,
        flags.registry.manifest_format(),
        session.reporter(),
    ));
    match pushed {
        Ok(digest) => {
            session.reporter.message(&format!("Image '{name}' pushed"));
            Ok(digest)
        }
        Err(err @ RegistryError::Unauthorized { .. }) => Err(anyhow::Error::new(err).context(
            format!(
                "pushing {name} failed with 401 Unauthorized: log in with `cog login` or `docker login {}`",
                target.registry()
            ),
        )),
        Err(err) => Err(anyhow::Error::new(err).context(format!("pushing {name}"))),
    }
}
