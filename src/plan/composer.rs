//! The composer: the one place where blocks write into the plan.
use std::collections::BTreeSet;

use super::{
    BaseImage, ImageSettings, LayerContent, LayerStep, PLAN_VERSION, Phase, Plan, PlanError,
    PlanInputs,
};

/// Collects what blocks contribute and turns it into a [`Plan`].
#[derive(Debug)]
pub struct Composer {
    stack: &'static str,
    platform: String,
    base: BaseImage,
    base_reason: Option<String>,
    layers: Vec<LayerStep>,
    image: ImageSettings,
    current_block: &'static str,
}

impl Composer {
    pub fn new(stack: &'static str, inputs: &PlanInputs) -> Self {
        Self {
            stack,
            platform: inputs.platform.clone(),
            base: BaseImage::Scratch,
            base_reason: None,
            layers: Vec::new(),
            image: ImageSettings::default(),
            current_block: "",
        }
    }

    pub(super) fn enter_block(&mut self, name: &'static str) {
        self.current_block = name;
    }

    pub fn set_base(&mut self, base: BaseImage) {
        self.base = base;
    }

    /// Why the base was chosen (`cog plan` says it).
    pub fn set_base_reason(&mut self, reason: &str) {
        self.base_reason = Some(reason.to_string());
    }

    pub fn add_layer(&mut self, phase: Phase, id: &str, created_by: String, content: LayerContent) {
        self.layers.push(LayerStep {
            id: id.to_string(),
            phase,
            block: self.current_block.to_string(),
            created_by,
            content,
        });
    }

    /// The environment set so far, in order (a command's step sees what came before it).
    pub fn env(&self) -> &[(String, String)] {
        &self.image.env
    }

    /// Set an environment variable; setting it again replaces the value where it first appeared.
    pub fn set_env(&mut self, name: &str, value: &str) {
        match self.image.env.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.image.env.push((name.to_string(), value.to_string())),
        }
    }

    pub fn set_label(&mut self, name: &str, value: &str) {
        self.image
            .labels
            .insert(name.to_string(), value.to_string());
    }

    pub fn set_annotation(&mut self, name: &str, value: &str) {
        self.image
            .annotations
            .insert(name.to_string(), value.to_string());
    }

    pub fn set_workdir(&mut self, dir: &str) {
        self.image.workdir = Some(dir.to_string());
    }

    pub fn set_entrypoint(&mut self, entrypoint: Vec<String>) {
        self.image.entrypoint = Some(entrypoint);
    }

    pub fn set_cmd(&mut self, cmd: Vec<String>) {
        self.image.cmd = Some(cmd);
    }

    pub fn expose(&mut self, port: &str) {
        if !self.image.exposed_ports.iter().any(|p| p == port) {
            self.image.exposed_ports.push(port.to_string());
        }
    }

    /// Order layers by phase (stable within a phase) and check that ids are unique.
    pub fn finish(mut self) -> Result<Plan, PlanError> {
        let mut seen = BTreeSet::new();
        for layer in &self.layers {
            if !seen.insert(layer.id.clone()) {
                return Err(PlanError::DuplicateLayer(layer.id.clone()));
            }
        }
        self.layers.sort_by_key(|l| l.phase);
        Ok(Plan {
            version: PLAN_VERSION,
            stack: self.stack.to_string(),
            platform: self.platform,
            base: self.base,
            base_reason: self.base_reason,
            layers: self.layers,
            image: self.image,
        })
    }
}
