//! Cog's image labels and OCI annotations (reference section 5.5).
use crate::plan::{Block, Composer, PlanError, Project};

#[derive(Debug)]
pub struct LabelsBlock;

impl Block for LabelsBlock {
    fn name(&self) -> &'static str {
        "labels"
    }

    fn contribute(&self, project: &Project, composer: &mut Composer) -> Result<(), PlanError> {
        composer.set_label("run.cog.version", &project.cog_version);
        composer.set_label("run.cog.config", &project.config_label);
        if let Some(revision) = &project.git_revision {
            composer.set_label("org.opencontainers.image.revision", revision);
            composer.set_annotation("org.opencontainers.image.revision", revision);
        }
        if let Some(tag) = &project.git_tag {
            composer.set_label("org.opencontainers.image.version", tag);
            composer.set_annotation("org.opencontainers.image.version", tag);
        }
        Ok(())
    }
}
