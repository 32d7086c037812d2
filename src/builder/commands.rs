//! The plan's command steps (`build.run`, `pre_install`, `COG_CA_CERT`): run in order in the
//! sandbox over the layers below them, each captured as one layer (see `src/sandbox`).
use layers::LayerInfo;

use super::layer_steps::LayerOutcome;
use super::{BuildError, BuildOptions, image_config};
use crate::base::FetchedBase;
use crate::plan::{LayerContent, LayerStep};
use crate::sandbox::{self, Event, RunStep, SandboxOptions};
use crate::session::Session;

/// How the build's sandbox runs: the platform, `--no-cache`, the unpack limits.
pub(super) fn sandbox_options(
    platform: &crate::oci::Platform,
    options: &BuildOptions,
) -> Result<SandboxOptions, BuildError> {
    let mut sandbox_options = SandboxOptions::new(options.compression);
    let limits =
        sandbox::limits::UnpackLimits::from_env().map_err(|reason| BuildError::Command {
            source: Box::new(sandbox::SandboxError::Limits(reason)),
        })?;
    sandbox_options.max_unpacked_bytes = limits.max_bytes;
    sandbox_options.max_layer_ratio = limits.max_ratio;
    sandbox_options.no_cache = options.no_cache;
    sandbox_options.platform = platform.clone();
    Ok(sandbox_options)
}

/// Runs `steps` (all `LayerContent::Run`, in plan order) over `lower`.
pub(super) async fn run(
    session: &Session,
    steps: &[LayerStep],
    base: &FetchedBase,
    lower: Vec<LayerInfo>,
    platform: &crate::oci::Platform,
    options: &BuildOptions,
) -> Result<Vec<LayerOutcome>, BuildError> {
    let run_steps: Vec<RunStep> = steps
        .iter()
        .filter_map(|step| match &step.content {
            LayerContent::Run {
                command,
                env,
                mounts,
            } => Some(RunStep {
                command: command.clone(),
                env: image_config::env_over(base.config.as_ref(), env),
                workdir: "/".to_string(),
                mounts: mounts
                    .iter()
                    .map(|m| sandbox::SecretMount {
                        id: m.id.clone(),
                        target: m.target.clone(),
                    })
                    .collect(),
                network: true,
            }),
            _ => None,
        })
        .collect();
    let sandbox_options = sandbox_options(platform, options)?;
    let store = session.store.clone();
    let reporter = session.reporter.clone();
    let secrets = options.secrets.clone();
    let labels: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
    let commands: Vec<String> = run_steps.iter().map(|s| s.command.clone()).collect();
    let outcomes = tokio::task::spawn_blocking(move || {
        let total = run_steps.len();
        let mut on_event = |event: Event<'_>| match event {
            Event::Cached { step, .. } => reporter.message(&format!(
                "[{}/{total}] RUN {} (cached)",
                step + 1,
                commands[step]
            )),
            Event::Started { step, command } => {
                reporter.message(&format!("[{}/{total}] RUN {command}", step + 1));
            }
            Event::Output { step, line } => reporter.output(&labels[step], line),
            Event::Finished { step, elapsed, .. } => reporter.message(&format!(
                "[{}/{total}] done in {:.1}s",
                step + 1,
                elapsed.as_secs_f64()
            )),
        };
        sandbox::run_steps(
            &store,
            &lower,
            &run_steps,
            &secrets,
            &sandbox_options,
            &mut on_event,
        )
    })
    .await?
    .map_err(|source| BuildError::Command {
        source: Box::new(source),
    })?;
    Ok(steps
        .iter()
        .zip(outcomes)
        .map(|(step, outcome)| LayerOutcome {
            id: step.id.clone(),
            created_by: step.created_by.clone(),
            info: outcome.layer,
            cached: outcome.cached,
        })
        .collect())
}
