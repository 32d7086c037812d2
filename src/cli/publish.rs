//! Pushing a built image to its registry: what `cog push` and `cog build --push` share.
use anyhow::{Context, Result, bail};

use super::args::BuildFlags;
use crate::oci::{ImageRef, Index, Platform, canonical_json, media_types};
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
    push_from_sources(session, image, name, flags, Vec::new())
}

/// A model with managed weights is pushed as Cog pushes it (spec 2.6): one OCI index tagged
/// `name`, of the image and of each weight manifest of `weights.lock` (`artifactType
/// application/vnd.cog.weight.v1`, platform `unknown/unknown`). The weights' blobs are mounted
/// from their `<model>/weights/<name>` repositories, where `cog weights import` pushed them.
/// `None` when the project has no managed weights.
pub fn push_with_weights(
    session: &Session,
    project: &crate::resolve::Project,
    image: &ImageRef,
    name: &str,
    flags: &BuildFlags,
) -> Result<Option<layers::Digest>> {
    use crate::weights::{self, artifact};
    let Some(lock) = weights::check_drift(&project.dir, &project.config)? else {
        return Ok(None);
    };
    if lock.weights.is_empty() {
        return Ok(None);
    }
    if flags.registry.manifest_format() == crate::registry::ManifestFormat::Docker {
        bail!(
            "--manifest-format docker: a model with managed weights is pushed as an OCI index (weight artifacts have no Docker form)"
        );
    }
    let repository = weights::model_repository(&project.config, &flags.file)?;
    let platform: Platform = flags
        .platform
        .parse()
        .with_context(|| format!("--platform {}", flags.platform))?;
    let mut image_entry = image.descriptor();
    image_entry.platform = Some(platform);
    let mut manifests = vec![image_entry];
    let mut sources = Vec::new();
    for entry in &lock.weights {
        let stored = artifact::store(entry, &session.store)?;
        if stored.digest.to_string() != entry.digest {
            bail!(
                "weights.lock: weight {:?} records manifest {}, but its files and layers make {}; run 'cog weights import'",
                entry.name,
                entry.digest,
                stored.digest
            );
        }
        manifests.push(artifact::index_descriptor(entry, &stored));
        sources.push(weights::weight_reference(
            &repository,
            &entry.name,
            &entry.digest,
        )?);
    }
    let bytes = canonical_json(&Index::oci(manifests));
    let (digest, size) = session.store.put_bytes(&bytes)?;
    let index = ImageRef {
        media_type: media_types::OCI_INDEX.to_string(),
        digest,
        size,
    };
    session.reporter.message(&format!(
        "Pushing {name} as an OCI index of the image and {} weight(s)",
        lock.weights.len()
    ));
    push_from_sources(session, &index, name, flags, sources).map(Some)
}

fn push_from_sources(
    session: &Session,
    image: &ImageRef,
    name: &str,
    flags: &BuildFlags,
    mut sources: Vec<Reference>,
) -> Result<layers::Digest> {
    let target = target(name)?;
    // Where the image's blobs may already be: the base's repository, the build caches'.
    sources.extend(base_reference(flags));
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
