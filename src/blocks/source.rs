//! The project source under `/src`: the last layer, so a code change rebuilds only it. Large
//! files are not in it: they have layers of their own, below it.
use crate::plan::{Block, Composer, InlineFile, LayerContent, Phase, PlanError, PlanInputs};

/// Copies the project directory to `/src`, honouring `.dockerignore` and excluding `.cog/`
/// (Cog passes the project as the build context with `.cog/` excluded).
#[derive(Debug)]
pub struct SourceBlock;

impl Block for SourceBlock {
    fn name(&self) -> &'static str {
        "source"
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let mut excludes = inputs.dockerignore.clone();
        excludes.push(".cog".to_string());
        // The large files have layers of their own (`large_files`).
        excludes.extend(super::large_files::source_excludes(inputs));
        composer.add_layer(
            Phase::AppSource,
            "source",
            "COPY . /src".to_string(),
            LayerContent::Tree {
                source: ".".into(),
                dest: "/src".into(),
                excludes,
            },
        );
        // `cog build -f other.yaml`: Cog copies it over /src/cog.yaml so the server finds it.
        if inputs.config_file_name != "cog.yaml" && !inputs.config_file_name.is_empty() {
            composer.add_layer(
                Phase::AppSource,
                "config-file",
                format!("RUN cp /src/{} /src/cog.yaml", inputs.config_file_name),
                LayerContent::Files {
                    files: vec![InlineFile {
                        path: "/src/cog.yaml".into(),
                        mode: 0o644,
                        contents: inputs.config_file_contents.clone(),
                        link: None,
                    }],
                },
            );
        }
        Ok(())
    }
}
