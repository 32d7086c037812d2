//! `cog push [IMAGE]`: build the image, then push it straight to its registry (no daemon).
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::args::BuildFlags;
use super::build;
use super::publish::push_built;
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
    // With managed weights, the model's repository is resolved as the weights' is
    // (`COG_MODEL_REGISTRY`, `COG_MODEL_REPO`, `COG_MODEL`).
    let name = if args.image.is_none()
        && project.config.image.is_none()
        && !project.config.weights.is_empty()
    {
        format!(
            "{}:latest",
            crate::weights::model_repository(&project.config, &args.flags.file)?
        )
    } else {
        build::image_name(args.image.as_deref(), &project.config, &project.dir)
    };
    let target = super::publish::target(&name)?;
    let destination = build::Destination {
        output: None,
        push: Some(&target),
        local: false,
    };
    let built = build::build_and_save_for(session, &project, &args.flags, &name, &destination)?;
    if let Some((weights, weights_name)) = &built.weights {
        push_built(session, weights, weights_name, &args.flags)?;
    }
    let digest = match super::publish::push_with_weights(
        session,
        &project,
        &built.image,
        &built.name,
        &args.flags,
    )? {
        Some(digest) => digest,
        None => push_built(session, &built.image, &built.name, &args.flags)?,
    };
    super::publish::save_cache(session, &project, &args.flags, Some(&target))?;
    println!("{digest}");
    Ok(ExitCode::SUCCESS)
}
