//! The blocks of the Python stack. Each adds layers and settings to the plan; none runs anything.
//!
//! Order matters only within a phase: the composer sorts layers by phase, so a block that adds
//! system packages may be listed after one that adds the source.

mod base;
mod commands;
mod labels;
mod large_files;
mod python;
mod runtime;
mod source;
mod system;

use crate::plan::{Block, Stack};

pub use base::{
    BaseBlock, COG_BASE_IMAGE_LAST_LAYER_IDX_LABEL, COG_BASE_IMAGE_LAST_LAYER_SHA_LABEL,
    COG_BASE_IMAGE_NAME_LABEL,
};
pub use commands::{BuildCommandsBlock, CA_BUNDLE, CA_CERT_PATH, CaCertBlock};
pub use labels::LabelsBlock;
pub use large_files::LargeFilesBlock;
pub use python::{CogRuntimeBlock, PythonLinkBlock, PythonPackagesBlock};
pub use runtime::{ManagedWeightsBlock, RuntimeSchemaBlock, RuntimeSettingsBlock, SchemaBlock};
pub use source::SourceBlock;
pub use system::SystemPackagesBlock;

/// The stack for Cog's Python projects.
#[derive(Debug, Default)]
pub struct PythonStack;

impl Stack for PythonStack {
    fn name(&self) -> &'static str {
        "python"
    }

    fn blocks(&self) -> Vec<Box<dyn Block>> {
        vec![
            Box::new(BaseBlock),
            Box::new(SystemPackagesBlock),
            Box::new(PythonLinkBlock),
            Box::new(CogRuntimeBlock),
            Box::new(PythonPackagesBlock),
            Box::new(CaCertBlock),
            Box::new(BuildCommandsBlock),
            Box::new(LargeFilesBlock),
            Box::new(ManagedWeightsBlock),
            // The schema below the source: an edit that keeps predict's signature changes the
            // source layer only, so an engine that has the previous build takes one new layer.
            Box::new(SchemaBlock),
            Box::new(SourceBlock),
            Box::new(RuntimeSchemaBlock),
            Box::new(RuntimeSettingsBlock),
            Box::new(LabelsBlock),
        ]
    }
}

#[cfg(test)]
mod tests;
