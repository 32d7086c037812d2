//! Python packages: the cog runtime (SDK + coglet, built from this repository) and the
//! project's own requirements, split so that large, rarely changing frameworks sit in layers of
//! their own below the application's dependencies.
use crate::plan::{Block, Composer, InlineFile, LayerContent, Phase, PlanError, PlanInputs};

/// Where the `python` command goes on a base that has only `python3` (Cog's `ln -sf`).
pub const PYTHON_LINK: &str = "/usr/local/bin/python";

/// Packages that belong to the framework phase: big, shared between models, rarely bumped.
const FRAMEWORKS: &[&str] = &[
    "torch",
    "torchvision",
    "torchaudio",
    "tensorflow",
    "jax",
    "jaxlib",
    "triton",
];

fn is_framework(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('_', "-");
    FRAMEWORKS.contains(&name.as_str())
        || name.starts_with("nvidia-")
        || name.starts_with("tensorflow-")
}

/// `python` on a base that has only `python3`: a link to it (Cog's `ln -sf` for the Python it
/// installs), so that the server's `python -m cog.server.http` and `cog exec python` run.
#[derive(Debug)]
pub struct PythonLinkBlock;

impl Block for PythonLinkBlock {
    fn name(&self) -> &'static str {
        "python-link"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs
            .python
            .as_ref()
            .is_some_and(|p| p.python_link.is_some())
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some(target) = inputs.python.as_ref().and_then(|p| p.python_link.as_ref()) else {
            return Ok(());
        };
        composer.add_layer(
            Phase::Runtime,
            "python-link",
            format!("RUN ln -sf {target} {PYTHON_LINK}"),
            LayerContent::Files {
                files: vec![InlineFile {
                    path: PYTHON_LINK.into(),
                    mode: 0o777,
                    contents: String::new(),
                    link: Some(target.clone()),
                }],
            },
        );
        Ok(())
    }
}

/// The SDK and coglet wheels: every image gets them, installed like any other wheel.
#[derive(Debug)]
pub struct CogRuntimeBlock;

impl Block for CogRuntimeBlock {
    fn name(&self) -> &'static str {
        "cog-runtime"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs.python.is_some() && !inputs.runtime_wheels.is_empty()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some(python) = &inputs.python else {
            return Ok(());
        };
        let names: Vec<_> = inputs
            .runtime_wheels
            .iter()
            .map(|p| format!("{}=={}", p.name, p.version))
            .collect();
        composer.add_layer(
            Phase::Runtime,
            "cog-runtime",
            format!("pip install {}", names.join(" ")),
            LayerContent::Wheels {
                python: python.clone(),
                packages: inputs.runtime_wheels.clone(),
            },
        );
        Ok(())
    }
}

/// `build.python_requirements` / `build.python_packages`, resolved by our resolver.
#[derive(Debug)]
pub struct PythonPackagesBlock;

impl Block for PythonPackagesBlock {
    fn name(&self) -> &'static str {
        "python-packages"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs.python.is_some() && !inputs.python_packages.is_empty()
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some(python) = &inputs.python else {
            return Ok(());
        };
        let (framework, app): (Vec<_>, Vec<_>) = inputs
            .python_packages
            .iter()
            .cloned()
            .partition(|p| is_framework(&p.name));
        for (phase, id, packages) in [
            (Phase::Framework, "framework", framework),
            (Phase::AppDeps, "python-packages", app),
        ] {
            if packages.is_empty() {
                continue;
            }
            composer.add_layer(
                phase,
                id,
                format!(
                    "pip install -r requirements.txt ({} packages)",
                    packages.len()
                ),
                LayerContent::Wheels {
                    python: python.clone(),
                    packages,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frameworks_are_recognized_by_normalized_name() {
        for name in [
            "torch",
            "TorchVision",
            "nvidia-cudnn-cu12",
            "tensorflow-io-gcs-filesystem",
            "jax",
        ] {
            assert!(is_framework(name), "{name}");
        }
        for name in ["numpy", "transformers", "torchmetrics"] {
            assert!(!is_framework(name), "{name}");
        }
    }
}
