//! The project's large files (weights): each in a layer of its own, below the code layer, so
//! that a code-only change leaves them (and their upload) alone.
use crate::plan::{
    Block, Composer, FoundFile, LayerContent, Phase, PlanError, PlanInputs, ProjectFile,
};

/// One layer per file at or over the threshold, one for the smaller weight-format files.
#[derive(Debug)]
pub struct LargeFilesBlock;

impl Block for LargeFilesBlock {
    fn name(&self) -> &'static str {
        "large-files"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs.large_files.all().next().is_some()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let found = &inputs.large_files;
        for file in &found.alone {
            composer.add_layer(
                Phase::Weights,
                &format!("weights:{}", file.path),
                format!(
                    "COPY {} /src/{} # {} bytes >= {}",
                    file.path, file.path, file.size, found.threshold
                ),
                content(std::slice::from_ref(file)),
            );
        }
        if !found.grouped.is_empty() {
            let paths: Vec<&str> = found.grouped.iter().map(|f| f.path.as_str()).collect();
            composer.add_layer(
                Phase::Weights,
                "weights-grouped",
                format!("COPY {} /src/", paths.join(" ")),
                content(&found.grouped),
            );
        }
        Ok(())
    }
}

fn content(files: &[FoundFile]) -> LayerContent {
    LayerContent::ProjectFiles {
        files: files
            .iter()
            .map(|f| ProjectFile {
                path: f.path.clone(),
                size: f.size,
            })
            .collect(),
        compress: files.iter().any(|f| f.compressible),
    }
}

/// The `.dockerignore`-style rules that leave the split files out of the source layer: their
/// exact paths (the resolve stage splits out only paths with no pattern characters).
pub fn source_excludes(inputs: &PlanInputs) -> impl Iterator<Item = String> + '_ {
    inputs.large_files.all().map(|f| f.path.clone())
}
