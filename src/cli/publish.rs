//! Pushing a built image to its registry: what `cog push` and `cog build --push` share.
use anyhow::{Context, Result};

use super::args::BuildFlags;
use crate::oci::ImageRef;
use crate::registry::{Reference, RegistryError};
use crate::session::Session;

/// Pushes `image` as `name`, mounting shared blobs from `--base` when it is an image on the same
/// registry; returns the digest the tag now points at.
pub fn push_built(
    session: &Session,
    image: &ImageRef,
    name: &str,
    flags: &BuildFlags,
) -> Result<layers::Digest> {
    let target = Reference::parse(name)
        .with_context(|| format!("cannot push {name}: not a valid image reference"))?;
    let mount_from = flags
        .base
        .as_deref()
        .filter(|b| !b.starts_with("oci:") && !b.contains("-archive:"))
        .and_then(|b| Reference::parse(b).ok());
    session
        .reporter
        .message(&format!("Pushing image '{name}'..."));
    let pushed = session.block_on(session.registry.push_with(
        &session.store,
        image,
        &target,
        mount_from.as_ref(),
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
