//! `cog plan`: print the build plan without building. It reads the project and writes nothing
//! into it: current lock files are used, and what they lack is resolved in memory (`--resolve`)
//! or left out.
use std::process::ExitCode;

use anyhow::Result;

use crate::blocks::PythonStack;
use crate::plan::Stack;
use crate::resolve::{self, LockMode, Project};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    file: String,
    /// Base image: a registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    #[arg(long)]
    base: Option<String>,
    #[command(flatten)]
    base_flags: super::args::BaseFlagArgs,
    /// Target platform
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Print the plan as JSON
    #[arg(long)]
    json: bool,
    /// Resolve packages into the plan (uses the network unless the locks are current)
    #[arg(long)]
    resolve: bool,
    /// Load OpenAPI schema from a file instead of generating it
    #[arg(long, value_name = "FILE")]
    openapi_schema: Option<std::path::PathBuf>,
}

pub fn run(session: &Session, args: &PlanArgs) -> Result<ExitCode> {
    let options = resolve::Options {
        config_file: Some(&args.file),
        base: args.base.as_deref(),
        platform: &args.platform,
        openapi_schema: args.openapi_schema.as_deref(),
        lock_mode: LockMode::ReadOnly,
        network: args.resolve,
        base_flags: args.base_flags.flags(),
    };
    let project = Project::open(session, &options)?;
    let inputs = project.resolve(session, &options)?;
    let plan = PythonStack.plan(&inputs)?;
    if args.json {
        println!("{}", plan.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "stack {} for {} on {}",
        plan.stack, plan.platform, plan.base
    );
    if let Some(reason) = &plan.base_reason {
        println!("  base {} ({reason})", plan.base);
    }
    for layer in &plan.layers {
        println!(
            "  [{:<10}] {:<16} {}",
            layer.phase.as_str(),
            layer.id,
            layer.created_by
        );
    }
    for (name, value) in &plan.image.env {
        println!("  env {name}={value}");
    }
    if let Some(cmd) = &plan.image.cmd {
        println!("  cmd {cmd:?}");
    }
    Ok(ExitCode::SUCCESS)
}
