//! `cog plan`: print the build plan without building.
use std::process::ExitCode;

use anyhow::Result;

use crate::blocks::PythonStack;
use crate::plan::Stack;

use super::project::{self, ProjectOptions};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    file: String,
    /// Base image: a registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    #[arg(long)]
    base: Option<String>,
    /// Target platform
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// Print the plan as JSON
    #[arg(long)]
    json: bool,
    /// Resolve Python packages into the plan (uses the network unless the lock is current)
    #[arg(long)]
    resolve: bool,
    /// Load OpenAPI schema from a file instead of generating it
    #[arg(long, value_name = "FILE")]
    openapi_schema: Option<std::path::PathBuf>,
}

pub fn run(args: &PlanArgs) -> Result<ExitCode> {
    let loaded = project::load(&ProjectOptions {
        config_file: Some(&args.file),
        base: args.base.as_deref(),
        platform: &args.platform,
        openapi_schema: args.openapi_schema.as_deref(),
        upgrade: false,
        resolve: args.resolve,
        insecure_registry: false,
    })?;
    let plan = PythonStack.plan(&loaded.inputs)?;
    if args.json {
        println!("{}", plan.to_json());
    } else {
        println!(
            "stack {} for {} on {}",
            plan.stack, plan.platform, plan.base
        );
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
    }
    Ok(ExitCode::SUCCESS)
}
