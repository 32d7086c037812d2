//! `cog serve`: build the project, then run its prediction server in the foreground on
//! 127.0.0.1:PORT, with the project mounted at `/src`, until Ctrl-C.
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::run::{self, ProjectArgs};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on which to listen
    #[arg(short = 'p', long, default_value_t = 8393)]
    port: u16,
    /// An endpoint for uploading output files: each file is PUT to URL/NAME
    #[arg(long, value_name = "URL")]
    upload_url: Option<String>,
    /// Environment variables, in the form name=value
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    #[command(flatten)]
    project: ProjectArgs,
}

pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    run::install_interrupt_handler();
    run::settle(run_attached(args))
}

fn run_attached(args: &ServeArgs) -> Result<ExitCode> {
    let env = run::parse_env(&args.env)?;
    let project = run::load_project(&args.project)?;
    let store = run::open_store()?;
    let runtime = run::detect_runtime(&args.project, &store)?;
    let image = run::build_project(&args.project, &project)?;
    runtime
        .prepare(&image)
        .with_context(|| format!("preparing {} for {}", image.name(), runtime.kind))?;
    let mut extra = vec!["--await-explicit-shutdown".to_string(), "true".to_string()];
    if let Some(url) = &args.upload_url {
        extra.extend(["--upload-url".to_string(), url.clone()]);
    }
    let gpus = project.gpu || args.project.gpus.is_some();
    let mut spec = run::server_spec(&runtime, &image, env, Some(&project.dir), gpus, &extra);
    spec.host_port = Some(args.port);
    if args.upload_url.is_some() {
        spec.add_hosts
            .push("host.docker.internal:host-gateway".to_string());
    }
    eprintln!(
        "Running {} on {} at http://127.0.0.1:{} (Ctrl-C to stop)",
        image.name(),
        runtime.kind,
        args.port
    );
    let code = runtime
        .run_attached(&image, &spec)
        .with_context(|| format!("running {} with {}", image.name(), runtime.kind))?;
    Ok(exit_code(code))
}

pub(super) fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
