//! `cog exec CMD...`: build the project, then run a command in its image in `/src`, with the
//! project mounted there (interactive, with a TTY, when this terminal is one).
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;

use super::args::ProjectArgs;
use super::container;
use crate::runtime::{RunSpec, RuntimeKind};
use crate::session::Session;

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
    pub project: ProjectArgs,
}

pub fn run(session: &Session, args: &ExecArgs) -> Result<ExitCode> {
    container::install_interrupt_handler(session);
    container::settle(exec(session, args))
}

fn exec(session: &Session, args: &ExecArgs) -> Result<ExitCode> {
    let env = container::parse_env(&args.env)?;
    let project = container::open_project(session, &args.project, false)?;
    let ready = container::build_for_runtime(session, &args.project, &project)?;
    let tty = ready.runtime.kind != RuntimeKind::Runc
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    let gpus = container::gpus(
        session,
        &ready.runtime,
        args.project.gpus.as_ref(),
        project.config.build.gpu,
    )?;
    let mut spec = RunSpec {
        args: args.command.clone(),
        env,
        mounts: vec![container::project_mount(&project.dir)],
        publish: args.publish,
        host_port: args.publish,
        gpus,
        workdir: Some("/src".to_string()),
        tty,
        ..RunSpec::default()
    };
    ready.mount_weights(&mut spec);
    container::run_attached(&ready, &spec)
}
