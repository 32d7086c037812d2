//! Cog's image labels and OCI annotations (reference section 5.5).
use crate::plan::{Block, Composer, PlanError, PlanInputs};

#[derive(Debug)]
pub struct LabelsBlock;

impl Block for LabelsBlock {
    fn name(&self) -> &'static str {
        "labels"
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        composer.set_label("run.cog.version", &inputs.cog_version);
        composer.set_label("run.cog.config", &inputs.config_label);
        if let Some(revision) = &inputs.git_revision {
            composer.set_label("org.opencontainers.image.revision", revision);
            composer.set_annotation("org.opencontainers.image.revision", revision);
        }
        if let Some(tag) = &inputs.git_tag {
            composer.set_label("org.opencontainers.image.version", tag);
            composer.set_annotation("org.opencontainers.image.version", tag);
        }
        Ok(())
    }
}
