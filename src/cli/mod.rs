//! The `cog` command line: one module per command. Errors become `anyhow` here, at the edge.
mod build;
mod plan;
mod project;

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
    /// Print the build plan for cog.yaml without building
    Plan(plan::PlanArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.debug, cli.no_color);
    let result = match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Plan(args) => plan::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ⅹ {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(debug: bool, no_color: bool) {
    let default = if debug { "cog=debug,layers=debug,wheels=debug,debian=debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("COG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = no_color || std::env::var_os("NO_COLOR").is_some();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!no_color)
        .try_init();
}
