//! The `cog` command line: one module per command, parsing flags and calling the pipeline.
//! Each command makes one [`Session`] (store, async runtime, registry client, reporter).
//! Errors become `anyhow` here, at the edge, and are printed once, with their causes.
mod args;
mod build;
mod cache;
mod compat;
mod container;
mod debug;
mod doctor;
mod exec;
mod init;
mod login;
mod plan;
mod printer;
mod publish;
mod push;
mod run;
mod serve;
mod train;
mod version;
mod weights;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use report::SharedReporter;

pub use printer::{Printer, ProgressMode};

use crate::registry::ClientOptions;
use crate::session::Session;

#[derive(Debug, Parser)]
#[command(
    name = "cog",
    version = version::SHORT.as_str(),
    long_version = version::LONG.as_str(),
    about = "Containers for machine learning, built without a daemon",
    propagate_version = true
)]
struct Cli {
    /// Show debugging output
    #[arg(long, global = true)]
    debug: bool,
    /// Disable colored output
    #[arg(long, global = true, env = "COG_NO_COLOR")]
    no_color: bool,
    /// Cog: write a CPU profile. Not supported by cog-rs: refused
    #[arg(long, global = true, hide = true)]
    profile: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image from cog.yaml
    Build(build::BuildArgs),
    /// Configure your project for use with Cog
    Init(init::InitArgs),
    /// Log in to a container registry
    Login(login::LoginArgs),
    /// Print the build plan for cog.yaml without building
    Plan(plan::PlanArgs),
    /// Build and push model in current directory to a Docker registry
    Push(push::PushArgs),
    /// Run a prediction (builds the project, or runs IMAGE)
    Run(run::RunArgs),
    /// Run a prediction (deprecated: use `cog run`)
    #[command(hide = true)]
    Predict(run::RunArgs),
    /// Run the prediction HTTP server of the project's image
    Serve(serve::ServeArgs),
    /// Run a command inside the project's image, with the project at /src
    Exec(exec::ExecArgs),
    /// Show, prune or verify the build cache
    Cache(cache::CacheArgs),
    /// Run a training (deprecated)
    #[command(hide = true)]
    Train(train::TrainArgs),
    /// Generate a Dockerfile from cog
    #[command(hide = true)]
    Debug(debug::DebugArgs),
    /// Check your project for common issues and fix them (experimental)
    Doctor(doctor::DoctorArgs),
    /// Manage model weights (experimental)
    #[command(hide = true)]
    Weights(weights::WeightsArgs),
}

impl Command {
    /// The `--progress` of the command, else Cog's default from the environment.
    fn progress(&self) -> ProgressMode {
        let flag = match self {
            Self::Build(a) => a.flags.progress,
            Self::Push(a) => a.flags.progress,
            Self::Run(a) | Self::Predict(a) => a.project.progress,
            Self::Serve(a) => a.project.progress,
            Self::Exec(a) => a.project.progress,
            Self::Train(a) => a.project.progress,
            Self::Init(_)
            | Self::Login(_)
            | Self::Plan(_)
            | Self::Debug(_)
            | Self::Doctor(_)
            | Self::Weights(_)
            | Self::Cache(_) => None,
        };
        flag.unwrap_or_else(ProgressMode::from_env)
    }

    /// Registry settings for the session (`--insecure`, push concurrency).
    fn registry(&self) -> ClientOptions {
        match self {
            Self::Build(a) => a.flags.registry.client_options(),
            Self::Push(a) => a.flags.registry.client_options(),
            Self::Login(a) => a.client_options(),
            _ => ClientOptions::default(),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = cli.command.progress();
    let printer = Printer::new(mode);
    init_logging(
        cli.debug,
        cli.no_color,
        printer.mode() == ProgressMode::Json,
    );
    if cli.profile {
        printer.error(
            "--profile is not supported by cog-rs (remove the flag; COG_LOG=debug shows timings)",
        );
        return ExitCode::FAILURE;
    }
    let result = Session::new(SharedReporter::new(printer.clone()), cli.command.registry())
        .map_err(anyhow::Error::new)
        .and_then(|session| dispatch(&session, cli.command));
    match result {
        Ok(code) => code,
        Err(err) => {
            printer.error(&error_message(&err));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(session: &Session, command: Command) -> Result<ExitCode> {
    match command {
        Command::Build(args) => build::run(session, &args),
        Command::Init(args) => init::run(session, &args),
        Command::Login(args) => login::run(session, &args),
        Command::Plan(args) => plan::run(session, &args),
        Command::Push(args) => push::run(session, &args),
        Command::Run(args) => run::run(session, &args, false),
        Command::Predict(args) => run::run(session, &args, true),
        Command::Serve(args) => serve::run(session, &args),
        Command::Exec(args) => exec::run(session, &args),
        Command::Cache(args) => cache::run(session, &args),
        Command::Train(args) => train::run(session, &args),
        Command::Debug(args) => debug::run(session, &args),
        Command::Doctor(args) => doctor::run(session, &args),
        Command::Weights(args) => weights::run(session, &args),
    }
}

/// The error and its causes on one line, each said once: every error in the chain says only
/// what it adds, and its cause is the next link.
fn error_message(err: &anyhow::Error) -> String {
    let parts: Vec<String> = err.chain().map(ToString::to_string).collect();
    // Debug builds (the test suites) catch an error that repeats its cause's text.
    debug_assert!(
        parts
            .windows(2)
            .all(|pair| pair[1].len() < 20 || !pair[0].contains(&pair[1])),
        "an error message repeats its cause: {parts:#?}"
    );
    parts.join(": ")
}

fn init_logging(debug: bool, no_color: bool, json: bool) {
    let default = if debug {
        "cog=debug,layers=debug,wheels=debug,debian=debug"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("COG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = no_color || std::env::var_os("NO_COLOR").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // With `--progress json` every line on stderr is JSON, log lines included.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(!no_color).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("store at /x")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::other("Read-only file system");
        let err = anyhow::Error::new(Outer(io)).context("opening the cog cache");
        assert_eq!(
            error_message(&err),
            "opening the cog cache: store at /x: Read-only file system"
        );
    }
}
