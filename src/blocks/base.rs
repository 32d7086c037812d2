//! The base image and the environment Cog's generated Dockerfile sets first.
use crate::plan::{BaseImage, Block, Composer, PlanError, PlanInputs};

/// Sets the base image the resolve stage chose (`crate::base::select`); without one (plans
/// made by hand): `--base` when given, else the base assembled from distribution packages (our
/// default), else Cog's default for a CPU model, `python:<python_version>-slim` (reference
/// section 5.2).
#[derive(Debug)]
pub struct BaseBlock;

/// Cog's labels of an image built on a cog-base image (`pkg/image/build.go`).
pub const COG_BASE_IMAGE_NAME_LABEL: &str = "run.cog.cog-base-image-name";
pub const COG_BASE_IMAGE_LAST_LAYER_SHA_LABEL: &str = "run.cog.cog-base-image-last-layer-sha";
pub const COG_BASE_IMAGE_LAST_LAYER_IDX_LABEL: &str = "run.cog.cog-base-image-last-layer-idx";

/// Cog's preamble (`GenerateInitialSteps`). `LD_LIBRARY_PATH` is appended to the base's value.
pub const PREAMBLE_ENV: &[(&str, &str)] = &[
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("PYTHONUNBUFFERED", "1"),
    (
        "LD_LIBRARY_PATH",
        "$LD_LIBRARY_PATH:/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin",
    ),
    ("NVIDIA_DRIVER_CAPABILITIES", "all"),
];

impl Block for BaseBlock {
    fn name(&self) -> &'static str {
        "base"
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let base = match (&inputs.base, &inputs.base_override, &inputs.assembled_base) {
            (Some(base), _, _) | (None, Some(base), _) | (None, None, Some(base)) => base.clone(),
            (None, None, None) => {
                let Some(version) = inputs.python_version.as_deref() else {
                    return Err(PlanError::Block {
                        block: "base",
                        message: "no base image: cog.yaml has no build.python_version and no --base was given".into(),
                    });
                };
                // Cog strips the patch version when it picks a base (with a warning).
                let minor: Vec<&str> = version.split('.').take(2).collect();
                BaseImage::Registry {
                    reference: format!("python:{}-slim", minor.join(".")),
                }
            }
        };
        if let BaseImage::Assembled { .. } = &base {
            // The assembled base runs tini as PID 1, as Cog's images do.
            composer.set_label("run.cog.has_init", "true");
        }
        if let Some(name) = &inputs.cog_base_image {
            // The last layer's DiffID and index are added by the builder, which has the layers.
            composer.set_label(COG_BASE_IMAGE_NAME_LABEL, name);
        }
        composer.set_base(base);
        if let Some(reason) = &inputs.base_reason {
            composer.set_base_reason(reason);
        }
        for (name, value) in PREAMBLE_ENV {
            composer.set_env(name, value);
        }
        for (name, value) in &inputs.environment {
            composer.set_env(name, value);
        }
        Ok(())
    }
}
