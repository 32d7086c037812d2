//! `cog push [IMAGE]`: build the image, then push it straight to its registry (no daemon).
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::args::BuildFlags;
use super::build::{self, Built};
use crate::registry::{Reference, RegistryError};
use crate::resolve::Project;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image to push, e.g. r8.im/your-username/hotdog-detector (default: cog.yaml's `image`)
    image: Option<String>,
    #[command(flatten)]
    pub flags: BuildFlags,
}

pub fn run(session: &Session, args: &PushArgs) -> Result<ExitCode> {
    let project = Project::open(session, &args.flags.resolve_options())?;
    // Cog's rule: push needs a name from the argument or cog.yaml, never the directory default.
    if args.image.is_none() && project.config.image.is_none() && project.config.model.is_none() {
        bail!(
            "To push images, you must either set the 'image' option in cog.yaml or pass an image name as an argument. For example, 'cog push r8.im/your-username/hotdog-detector'"
        );
    }
    let name = build::image_name(args.image.as_deref(), &project.config, &project.dir);
    let built = build::build_and_save(session, &project, &args.flags, &name, None)?;
    let digest = push_built(session, &built, &args.flags)?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}

/// Pushes a built image under its name, mounting shared blobs from `--base` when it is an image
/// on the same registry; returns the digest the tag now points at.
pub fn push_built(session: &Session, built: &Built, flags: &BuildFlags) -> Result<layers::Digest> {
    let target = Reference::parse(&built.name)
        .with_context(|| format!("cannot push {}: not a valid image reference", built.name))?;
    let mount_from = flags
        .base
        .as_deref()
        .filter(|b| !b.starts_with("oci:") && !b.contains("-archive:"))
        .and_then(|b| Reference::parse(b).ok());
    session
        .reporter
        .message(&format!("Pushing image '{}'...", built.name));
    let pushed = session.block_on(session.registry.push_with(
        &session.store,
        &built.image,
        &target,
        mount_from.as_ref(),
        flags.registry.manifest_format(),
        session.reporter(),
    ));
    match pushed {
        Ok(digest) => {
            session
                .reporter
                .message(&format!("Image '{}' pushed", built.name));
            Ok(digest)
        }
        Err(err @ RegistryError::Unauthorized { .. }) => Err(anyhow::Error::new(err).context(
            format!(
                "pushing {} failed with 401 Unauthorized: log in with `cog login` or `docker login {}`",
                built.name,
                target.registry()
            ),
        )),
        Err(err) => Err(anyhow::Error::new(err).context(format!("pushing {}", built.name))),
    }
}
