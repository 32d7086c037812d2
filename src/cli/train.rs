//! `cog train [IMAGE]` (hidden, deprecated as in Cog): `cog run` against the runner's `train`
//! entry point: the server started with `--x-mode train`, inputs checked against its
//! `TrainingInput`, one `POST /trainings`, the output written to `-o` (default `weights`).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::args::ProjectArgs;
use super::run::{self, Mode, RunArgs};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Run an existing image instead of building the project
    image: Option<String>,
    /// Inputs, in the form name=value. if value is prefixed with @, then it is read from a file on disk. E.g. -i path=@image.jpg
    #[arg(short = 'i', long = "input")]
    input: Vec<String>,
    /// Output path
    #[arg(short = 'o', long, default_value = "weights")]
    output: PathBuf,
    /// Environment variables, in the form name=value
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run(session: &Session, args: &TrainArgs) -> Result<ExitCode> {
    session
        .reporter
        .warning("Command \"train\" is deprecated, the train command will be removed in a future version of Cog");
    let run_args = RunArgs {
        image: args.image.clone(),
        input: args.input.clone(),
        json: None,
        output: Some(args.output.clone()),
        env: args.env.clone(),
        setup_timeout: 300,
        use_replicate_token: false,
        project: args.project.clone(),
        mode: Mode::Train,
    };
    run::run(session, &run_args, false)
}
