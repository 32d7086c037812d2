//! How the image starts: the server command, its working directory and port, the runner refs,
//! and the OpenAPI schema bundled for the server.
use crate::plan::{Block, Composer, InlineFile, LayerContent, Phase, PlanError, PlanInputs};

/// `WORKDIR /src`, `EXPOSE 5000`, `CMD ["python","-m","cog.server.http"]` and the
/// `COG_*` environment Cog bakes into every image.
#[derive(Debug)]
pub struct RuntimeSettingsBlock;

impl Block for RuntimeSettingsBlock {
    fn name(&self) -> &'static str {
        "runtime-settings"
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        composer.set_workdir("/src");
        composer.expose("5000/tcp");
        if let Some(predict) = &inputs.predict_ref {
            composer.set_env("COG_PREDICT_TYPE_STUB", predict);
        }
        if let Some(train) = &inputs.train_ref {
            composer.set_env("COG_TRAIN_TYPE_STUB", train);
        }
        if let Some(max) = inputs.concurrency_max {
            composer.set_env("COG_MAX_CONCURRENCY", &max.to_string());
        }
        composer.set_cmd(vec!["python".into(), "-m".into(), "cog.server.http".into()]);
        Ok(())
    }
}

/// The OpenAPI schema generated statically: `/src/.cog/openapi_schema.json` (read by the
/// server) and the `run.cog.openapi_schema` label, in a layer of its own just below the source
/// (Cog's bundle step comes after its `COPY . /src`; the files are the same either way, and below
/// the source a code-only edit that keeps the signature leaves this layer's chain unchanged).
#[derive(Debug)]
pub struct SchemaBlock;

impl Block for SchemaBlock {
    fn name(&self) -> &'static str {
        "openapi-schema"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs.openapi_schema.is_some() && inputs.runtime_schema.is_none()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some((document, label)) = &inputs.openapi_schema else {
            return Ok(());
        };
        composer.add_layer(
            Phase::AppSource,
            "openapi-schema",
            "COPY --from=cog_build openapi_schema.json .cog/".into(),
            LayerContent::Files {
                files: vec![InlineFile {
                    path: "/src/.cog/openapi_schema.json".into(),
                    mode: 0o644,
                    contents: document.clone(),
                    link: None,
                }],
            },
        );
        composer.set_label("run.cog.openapi_schema", label);
        Ok(())
    }
}

/// The OpenAPI schema completed at build time by importing the runner (the runtime path): its
/// layer goes above the source, which the import needs; the builder sets the label.
#[derive(Debug)]
pub struct RuntimeSchemaBlock;

impl Block for RuntimeSchemaBlock {
    fn name(&self) -> &'static str {
        "openapi-schema-runtime"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs.runtime_schema.is_some()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some(reasons) = &inputs.runtime_schema else {
            return Ok(());
        };
        composer.add_layer(
            Phase::AppSource,
            "openapi-schema",
            "COPY --from=cog_build openapi_schema.json .cog/".into(),
            LayerContent::RuntimeSchema {
                predict_ref: inputs.predict_ref.clone(),
                train_ref: inputs.train_ref.clone(),
                reasons: reasons.clone(),
            },
        );
        Ok(())
    }
}

/// Managed weights: `/.cog/weights.json` (spec 3.3), which tells the runtime which weights the
/// model expects and where. The weights themselves are not in the image: `cog run`/`serve` mount
/// them, platforms deliver them.
#[derive(Debug)]
pub struct ManagedWeightsBlock;

impl Block for ManagedWeightsBlock {
    fn name(&self) -> &'static str {
        "managed-weights"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs.weights_manifest.is_some()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some(document) = &inputs.weights_manifest else {
            return Ok(());
        };
        composer.add_layer(
            Phase::Weights,
            "weights-manifest",
            "COPY .cog/weights.json /.cog/weights.json".into(),
            LayerContent::Files {
                files: vec![InlineFile {
                    path: "/.cog/weights.json".into(),
                    mode: 0o644,
                    contents: document.clone(),
                    link: None,
                }],
            },
        );
        Ok(())
    }
}
