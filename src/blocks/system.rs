//! `build.system_packages`: one apt layer, without running apt.
use crate::plan::{Block, Composer, LayerContent, Phase, PlanError, PlanInputs};

#[derive(Debug)]
pub struct SystemPackagesBlock;

impl Block for SystemPackagesBlock {
    fn name(&self) -> &'static str {
        "system-packages"
    }

    fn applies(&self, inputs: &PlanInputs) -> bool {
        inputs
            .system_packages
            .as_ref()
            .is_some_and(|lock| !lock.packages.is_empty())
    }

    fn contribute(&self, inputs: &PlanInputs, composer: &mut Composer) -> Result<(), PlanError> {
        let Some(lock) = &inputs.system_packages else {
            return Ok(());
        };
        composer.add_layer(
            Phase::System,
            "system-packages",
            format!("apt-get install -qqy {}", lock.requested.join(" ")),
            LayerContent::Debs { lock: lock.clone() },
        );
        Ok(())
    }
}
