//! `cog exec CMD...`: build the project, then run a command in its image in `/src`, with the
//! project mounted there (interactive, with a TTY, when this terminal is one).
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::runtime::RuntimeKind;

use super::run::{self, ProjectArgs};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The command to run, and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// Publish a container's port to the host (on 127.0.0.1), e.g. -p 8000
    #[arg(short = 'p', long)]
    publish: Option<u16>,
    /// Environment variables, in the form name=value
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    #[command(flatten)]
    project: ProjectArgs,
}

pub fn run(args: &ExecArgs) -> Result<ExitCode> {
    run::install_interrupt_handler();
    run::settle(run_attached(args))
}

fn run_attached(args: &ExecArgs) -> Result<ExitCode> {
    let env = run::parse_env(&args.env)?;
    let project = run::load_project_config(&args.project)?;
    let store = run::open_store()?;
    let runtime = run::detect_runtime(&args.project, &store)?;
    let image = run::build_project(&args.project, &project)?;
    runtime
        .prepare(&image)
        .with_context(|| format!("preparing {} for {}", image.name(), runtime.kind))?;
    let tty = runtime.kind != RuntimeKind::Runc
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    let spec = crate::runtime::RunSpec {
        args: args.command.clone(),
        env,
        mounts: vec![crate::runtime::Mount {
            source: project.dir.clone(),
            target: "/src".to_string(),
            read_only: false,
        }],
        publish: args.publish,
        host_port: args.publish,
        gpus: project.gpu || args.project.gpus.is_some(),
        workdir: Some("/src".to_string()),
        tty,
        ..crate::runtime::RunSpec::default()
    };
    let code = runtime
        .run_attached(&image, &spec)
        .with_context(|| format!("running {} with {}", image.name(), runtime.kind))?;
    Ok(super::serve::exit_code(code))
}
