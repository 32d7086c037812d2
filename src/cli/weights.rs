//! `cog weights import|pull|status`: managed weights (experimental in Cog, hidden there too).
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::config::{self, Config};
use crate::session::Session;
use crate::weights::{self, FileStore};

#[derive(Debug, clap::Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    command: WeightsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WeightsCommand {
    /// Build and push weights to a registry, and record them in weights.lock
    Import(ImportArgs),
    /// Fetch the weights in weights.lock into the local store
    Pull(NamesArgs),
    /// Show each weight of cog.yaml against weights.lock and the local store
    Status(FileArgs),
}

#[derive(Debug, clap::Args)]
struct FileArgs {
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    file: String,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Show what would be imported without making changes
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    names: NamesArgs,
}

#[derive(Debug, clap::Args)]
struct NamesArgs {
    /// Weights to act on (default: all)
    names: Vec<String>,
    /// Show per-file and per-layer details
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    file: FileArgs,
}

/// The project directory and its config.
fn open(session: &Session, file: &str) -> Result<(std::path::PathBuf, Config)> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let (dir, path) = config::find_project(&cwd, Some(file))?;
    let loaded = config::load(&dir, &path)?;
    for warning in &loaded.warnings {
        session.reporter.warning(&warning.to_string());
    }
    Ok((dir, loaded.config))
}

pub fn run(session: &Session, args: &WeightsArgs) -> Result<ExitCode> {
    session
        .reporter
        .warning("NOTE: cog weights is experimental. Behavior may change in future versions.");
    match &args.command {
        WeightsCommand::Import(ImportArgs { dry_run, names: a }) => {
            let (dir, config) = open(session, &a.file.file)?;
            let planned = weights::import::plan(&dir, &config, &a.file.file, &a.names)?;
            for line in weights::import::plan_lines(&planned, a.verbose) {
                session.reporter.message(&line);
            }
            if !dry_run {
                weights::import::import(session, &dir, &config, &a.file.file, &a.names)?;
            }
        }
        WeightsCommand::Pull(a) => {
            let (dir, config) = open(session, &a.file.file)?;
            weights::pull::pull(session, &dir, &config, &a.file.file, &a.names, a.verbose)?;
        }
        WeightsCommand::Status(a) => {
            let (dir, config) = open(session, &a.file)?;
            let files = FileStore::under(session.store.root());
            let rows = weights::status::status(&dir, &config, &files)?;
            if rows.is_empty() {
                println!("no weights defined in {}", a.file);
            }
            for row in rows {
                println!(
                    "{}\t{}\t{}\t{}",
                    row.name, row.target, row.state, row.detail
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
