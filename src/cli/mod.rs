//! The `cog` command line: one module per command. Errors become `anyhow` here, at the edge.
mod build;
mod exec;
mod init;
mod login;
mod plan;
mod project;
mod push;
mod python_packages;
mod run;
mod serve;
mod system_packages;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The version baked into images as `run.cog.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Parser)]
#[command(
    name = "cog",
    version = VERSION,
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
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.debug, cli.no_color);
    let result = match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Login(args) => login::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Push(args) => push::run(&args),
        Command::Run(args) => run::run(&args, false),
        Command::Predict(args) => run::run(&args, true),
        Command::Serve(args) => serve::run(&args),
        Command::Exec(args) => exec::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ⅹ {}", error_message(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text an outer message already
/// quotes (library errors often include their source in their own message).
fn error_message(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

fn init_logging(debug: bool, no_color: bool) {
    let default = if debug {
        "cog=debug,layers=debug,wheels=debug,debian=debug"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("COG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = no_color || std::env::var_os("NO_COLOR").is_some();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!no_color)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("store at /x: {0}")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_causes_are_not_repeated() {
        let io = std::io::Error::other("Read-only file system");
        let err = anyhow::Error::new(Outer(io)).context("opening the cog cache");
        assert_eq!(
            error_message(&err),
            "opening the cog cache: store at /x: Read-only file system"
        );
    }
}
