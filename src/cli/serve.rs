//! `cog serve`: build the project, then run its prediction server in the foreground on
//! 127.0.0.1:PORT, with the project mounted at `/src`, until Ctrl-C.
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::args::ProjectArgs;
use super::container;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on which to listen
    #[arg(short = 'p', long, default_value_t = 8393)]
    port: u16,
    /// Host address to publish the port on (the server listens on all addresses inside)
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Cog: also serve the browser playground. Not supported by cog-rs yet: refused
    #[arg(long)]
    playground: bool,
    /// Cog: the playground's port. Not supported by cog-rs yet: refused
    #[arg(long, value_name = "PORT")]
    playground_port: Option<u16>,
    /// An endpoint for uploading output files: each file is PUT to URL/NAME
    #[arg(long, value_name = "URL")]
    upload_url: Option<String>,
    /// Environment variables, in the form name=value
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run(session: &Session, args: &ServeArgs) -> Result<ExitCode> {
    container::install_interrupt_handler(session);
    container::settle(serve(session, args))
}

fn serve(session: &Session, args: &ServeArgs) -> Result<ExitCode> {
    if args.playground || args.playground_port.is_some() {
        let flag = if args.playground {
            "--playground"
        } else {
            "--playground-port"
        };
        bail!("{flag} is not supported by cog-rs: there is no playground yet (remove the flag)");
    }
    if args.host.parse::<std::net::IpAddr>().is_err() {
        bail!("--host {}: not an IP address", args.host);
    }
    let env = container::parse_env(&args.env)?;
    let project = container::open_project(session, &args.project, true)?;
    let ready = container::build_for_runtime(session, &args.project, &project)?;
    let mut extra = vec!["--await-explicit-shutdown".to_string(), "true".to_string()];
    if let Some(url) = &args.upload_url {
        extra.extend(["--upload-url".to_string(), url.clone()]);
    }
    let gpus = container::gpus(
        session,
        &ready.runtime,
        args.project.gpus.as_ref(),
        project.config.build.gpu,
    )?;
    let mut spec = container::server_spec(
        &ready.runtime,
        &ready.image,
        env,
        Some(&project.dir),
        gpus,
        &extra,
    );
    ready.mount_weights(&mut spec);
    spec.host_port = Some(args.port);
    container::set_publish_ip(&ready.runtime, &mut spec, &args.host);
    if args.upload_url.is_some() {
        spec.add_hosts
            .push("host.docker.internal:host-gateway".to_string());
    }
    session.reporter.message(&format!(
        "Running {} on {} at http://{}:{} (Ctrl-C to stop)",
        ready.image.name(),
        ready.runtime.kind,
        args.host,
        args.port
    ));
    container::run_attached(&ready, &spec)
}
