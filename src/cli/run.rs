//! `cog run [IMAGE]` (and the deprecated `cog predict`): inputs checked against the model's
//! schema before anything is built, then build, start the container, wait for setup, run one
//! prediction and write its output. The container is always removed (also on Ctrl-C).
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use super::args::ProjectArgs;
use super::container::{self, Ready};
use crate::runtime::{self, Container, Image, RunSpec, Runtime, RuntimeKind};
use crate::session::Session;
use crate::weights::mount::Mounts;

/// The label holding the image's OpenAPI schema.
const SCHEMA_LABEL: &str = "run.cog.openapi_schema";
const CONFIG_LABEL: &str = "run.cog.config";

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run an existing image instead of building the project
    pub(super) image: Option<String>,
    /// Inputs, in the form name=value. if value is prefixed with @, then it is read from a file on disk. E.g. -i path=@image.jpg
    #[arg(short = 'i', long = "input")]
    pub(super) input: Vec<String>,
    /// Pass inputs as JSON object, read from file (@inputs.json) or via stdin (@-)
    #[arg(long)]
    pub(super) json: Option<String>,
    /// Output path
    #[arg(short = 'o', long)]
    pub(super) output: Option<PathBuf>,
    /// Environment variables, in the form name=value
    #[arg(short = 'e', long = "env")]
    pub(super) env: Vec<String>,
    /// The timeout for a container to setup (in seconds)
    #[arg(long, default_value_t = 300)]
    pub(super) setup_timeout: u64,
    /// Pass REPLICATE_API_TOKEN from the environment to the model as the context's replicate_api_token
    #[arg(long)]
    pub(super) use_replicate_token: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Predictions, or trainings (`cog train`).
    #[arg(skip)]
    pub(super) mode: Mode,
}

/// What the server is asked to run: the runner's prediction, or its `train` entry point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Predict,
    Train,
}

impl Mode {
    /// The server's flags for this mode.
    fn server_flags(self) -> Vec<String> {
        match self {
            Self::Predict => Vec::new(),
            Self::Train => vec!["--x-mode".into(), "train".into()],
        }
    }

    /// The schema as input validation and output writing read it: for trainings,
    /// `TrainingInput`/`TrainingOutput` in the places of `Input`/`Output`.
    fn schema_view(self, mut schema: Value) -> Result<Value> {
        if self == Self::Train {
            let schemas = &mut schema["components"]["schemas"];
            let Some(input) = schemas.get("TrainingInput").cloned() else {
                bail!(
                    "the model's schema has no TrainingInput: cog.yaml names no `train` entry point"
                );
            };
            schemas["Input"] = input;
            if let Some(output) = schemas.get("TrainingOutput").cloned() {
                schemas["Output"] = output;
            }
        }
        Ok(schema)
    }
}

pub fn run(session: &Session, args: &RunArgs, deprecated_name: bool) -> Result<ExitCode> {
    if deprecated_name {
        session
            .reporter
            .warning("\"cog predict\" is deprecated, use \"cog run\"");
    }
    container::install_interrupt_handler(session);
    container::settle(run_prediction(session, args))
}

fn run_prediction(session: &Session, args: &RunArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let env = container::parse_env(&args.env)?;
    let context = replicate_context(args.use_replicate_token)?;

    // The weights' mount directories outlive the container (dropped after it).
    let (container, schema, inputs, _weights) = if let Some(image) = &args.image {
        start_image(session, args, image, &cwd, env)?
    } else {
        start_project(session, args, &cwd, env)?
    };

    session.reporter.message(match args.mode {
        Mode::Predict => "Running prediction...",
        Mode::Train => "Running training...",
    });
    let response = predict(&container, &inputs, context, args.mode)?;
    drop(container);
    report(session, &response, &schema, args, &cwd)
}

/// `cog run IMAGE`: an image from the cache or the daemon, validated by its schema label (else
/// by the schema its server serves).
fn start_image(
    session: &Session,
    args: &RunArgs,
    image: &str,
    cwd: &Path,
    env: Vec<(String, String)>,
) -> Result<(Container, Value, Map<String, Value>, Mounts)> {
    if image.contains('=') {
        bail!("Invalid image name '{image}'. Did you forget `-i`?");
    }
    let runtime = container::detect_runtime(session, &args.project)?;
    let image = find_image(session, &runtime, image)?;
    let schema = image_schema(&image, runtime.kind)?
        .map(|s| args.mode.schema_view(s))
        .transpose()?;
    // Validate before starting anything when the image carries its schema.
    let inputs = if let Some(schema) = &schema {
        Some(request_inputs(schema, args, cwd)?)
    } else {
        None
    };
    let gpus = container::gpus(
        session,
        &runtime,
        args.project.gpus.as_ref(),
        image_wants_gpus(&image, runtime.kind)?,
    )?;
    container::prepare(&runtime, &image)?;
    let ready = Ready {
        runtime,
        image,
        schema: None,
        weights: Mounts::default(),
    };
    let spec = container::server_spec(
        &ready.runtime,
        &ready.image,
        env,
        None,
        gpus,
        &args.mode.server_flags(),
    );
    let container = start_and_wait(session, &ready, &spec, args.setup_timeout)?;
    let schema = match schema {
        Some(schema) => schema,
        None => args.mode.schema_view(fetch_schema(&container)?)?,
    };
    let inputs = match inputs {
        Some(inputs) => inputs,
        None => request_inputs(&schema, args, cwd)?,
    };
    Ok((container, schema, inputs, Mounts::default()))
}

/// `cog run` in a project: inputs validated by the static schema, then build and start. A
/// schema completed by the build (the runtime path) validates them after the build.
fn start_project(
    session: &Session,
    args: &RunArgs,
    cwd: &Path,
    env: Vec<(String, String)>,
) -> Result<(Container, Value, Map<String, Value>, Mounts)> {
    let project = container::open_project(session, &args.project, true)?;
    if args.mode == Mode::Train && project.config.train.is_none() {
        bail!(
            "{}: no `train` entry point: set it to e.g. \"train.py:train\" to run trainings",
            project.config_path.display()
        );
    }
    let before = match project.deferred {
        None => {
            let schema = args.mode.schema_view(project.schema_json()?)?;
            let inputs = request_inputs(&schema, args, cwd)?;
            Some((schema, inputs))
        }
        Some(_) => None,
    };
    let ready = container::build_for_runtime(session, &args.project, &project)?;
    let (schema, inputs) = if let Some(checked) = before {
        checked
    } else {
        let document = ready.schema.as_deref().unwrap_or("null");
        let schema =
            serde_json::from_str(document).context("the schema the build completed is not JSON")?;
        let schema = args.mode.schema_view(schema)?;
        let inputs = request_inputs(&schema, args, cwd)?;
        (schema, inputs)
    };
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
        &args.mode.server_flags(),
    );
    ready.mount_weights(&mut spec);
    let container = start_and_wait(session, &ready, &spec, args.setup_timeout)?;
    Ok((container, schema, inputs, ready.weights))
}

/// An image by name: one `cog build` recorded in the cache, else one the daemon has or pulls.
fn find_image(session: &Session, runtime: &Runtime, name: &str) -> Result<Image> {
    if let Some(image) = runtime::local_image(&session.store, name)? {
        return Ok(image);
    }
    match runtime.kind {
        RuntimeKind::Docker | RuntimeKind::Podman => Ok(Image::Daemon {
            name: name.to_string(),
        }),
        RuntimeKind::Runc => Err(runtime::RuntimeError::ImageNotFound(name.to_string()).into()),
    }
}

/// The image's `run.cog.openapi_schema` label, parsed; `None` without one.
fn image_schema(image: &Image, kind: RuntimeKind) -> Result<Option<Value>> {
    let labels = image.labels(kind)?;
    let Some(text) = labels.get(SCHEMA_LABEL) else {
        return Ok(None);
    };
    let schema = serde_json::from_str(text)
        .with_context(|| format!("{}: label {SCHEMA_LABEL} is not JSON", image.name()))?;
    Ok(Some(schema))
}

/// Whether the image's cog.yaml (its `run.cog.config` label) sets `build.gpu`, as Cog reads it
/// to give a model image GPUs by default.
fn image_wants_gpus(image: &Image, kind: RuntimeKind) -> Result<bool> {
    let labels = image.labels(kind)?;
    let Some(text) = labels.get(CONFIG_LABEL) else {
        return Ok(false);
    };
    let config: Value = serde_json::from_str(text)
        .with_context(|| format!("{}: label {CONFIG_LABEL} is not JSON", image.name()))?;
    Ok(config["build"]["gpu"].as_bool().unwrap_or(false))
}

fn request_inputs(schema: &Value, args: &RunArgs, cwd: &Path) -> Result<Map<String, Value>> {
    Ok(crate::inputs::request_inputs(
        schema,
        &args.input,
        args.json.as_deref(),
        cwd,
    )?)
}

fn replicate_context(use_token: bool) -> Result<Option<Value>> {
    if !use_token {
        return Ok(None);
    }
    let token = std::env::var("REPLICATE_API_TOKEN")
        .context("--use-replicate-token: REPLICATE_API_TOKEN is not set in the environment")?;
    Ok(Some(json!({ "replicate_api_token": token })))
}

/// Starts the server and waits until `/health-check` says READY; a setup failure or a container
/// that exits shows the setup logs.
fn start_and_wait(
    session: &Session,
    ready: &Ready,
    spec: &RunSpec,
    setup_timeout: u64,
) -> Result<Container> {
    let (runtime, image) = (&ready.runtime, &ready.image);
    session.reporter.message(&format!(
        "Starting {} image {} and running setup()...",
        runtime.kind,
        image.name()
    ));
    let mut container = runtime
        .start(image, spec)
        .with_context(|| format!("starting {} with {}", image.name(), runtime.kind))?;
    wait_for_setup(&mut container, Duration::from_secs(setup_timeout))?;
    Ok(container)
}

fn base_url(container: &Container) -> Result<String> {
    let port = container
        .host_port
        .context("the container publishes no port")?;
    Ok(format!("http://127.0.0.1:{port}"))
}

fn client(timeout: Option<Duration>) -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .context("creating the HTTP client")
}

/// Polls `/health-check` every 100 ms until READY (or BUSY), up to `timeout`.
fn wait_for_setup(container: &mut Container, timeout: Duration) -> Result<()> {
    let url = format!("{}/health-check", base_url(container)?);
    let client = client(Some(Duration::from_secs(5)))?;
    let start = Instant::now();
    loop {
        if let Ok(response) = client.get(&url).send()
            && let Ok(health) = response.json::<Value>()
        {
            match health["status"].as_str() {
                Some("READY" | "BUSY") => return Ok(()),
                Some("SETUP_FAILED" | "DEFUNCT") => {
                    let logs = health["setup"]["logs"].as_str().unwrap_or_default();
                    bail!(
                        "Model setup failed\n{}{}",
                        indent_logs(logs),
                        container_logs_note(container, logs)
                    );
                }
                _ => {}
            }
        }
        if !container.is_running() {
            bail!(
                "The container exited before setup finished. Its logs:\n{}",
                indent_logs(&container.logs())
            );
        }
        if start.elapsed() > timeout {
            bail!(
                "Timed out after {}s waiting for the model's setup to finish (--setup-timeout). Container logs:\n{}",
                timeout.as_secs(),
                indent_logs(&container.logs())
            );
        }
        // Each turn is a loopback request and a look at the container: cheap enough to ask
        // often, so that a fast setup is seen as soon as it is done.
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn indent_logs(logs: &str) -> String {
    use std::fmt::Write as _;
    logs.lines().fold(String::new(), |mut out, l| {
        let _ = writeln!(out, "  {l}");
        out
    })
}

/// The container's own output, when it says more than the setup logs did.
fn container_logs_note(container: &Container, setup_logs: &str) -> String {
    let logs = container.logs();
    if logs.trim().is_empty() || setup_logs.contains(logs.trim()) {
        String::new()
    } else {
        format!("Container logs:\n{}", indent_logs(&logs))
    }
}

/// The schema the running server serves at `/openapi.json`.
fn fetch_schema(container: &Container) -> Result<Value> {
    let url = format!("{}/openapi.json", base_url(container)?);
    let response = client(Some(Duration::from_secs(30)))?
        .get(&url)
        .send()
        .with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!(
            "the image has no {SCHEMA_LABEL} label and its server has no schema (GET /openapi.json: {})",
            response.status()
        );
    }
    response
        .json()
        .with_context(|| format!("GET {url}: not JSON"))
}

/// A prediction's response: the HTTP status and the body.
struct Response {
    status: reqwest::StatusCode,
    body: Value,
}

fn predict(
    container: &Container,
    inputs: &Map<String, Value>,
    context: Option<Value>,
    mode: Mode,
) -> Result<Response> {
    let path = match mode {
        Mode::Predict => "predictions",
        Mode::Train => "trainings",
    };
    let url = format!("{}/{path}", base_url(container)?);
    let mut request = json!({ "input": inputs });
    if let Some(context) = context {
        request["context"] = context;
    }
    let response = client(None)?
        .post(&url)
        .json(&request)
        .send()
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .with_context(|| format!("POST {url}: reading the response"))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Response { status, body })
}

/// Prints or writes the outcome the way Cog does; exit code 1 unless the prediction succeeded.
fn report(
    session: &Session,
    response: &Response,
    schema: &Value,
    args: &RunArgs,
    cwd: &Path,
) -> Result<ExitCode> {
    let body = &response.body;
    if response.status == reqwest::StatusCode::UNPROCESSABLE_ENTITY && body.get("detail").is_some()
    {
        bail!("{}", validation_failure(body));
    }
    if !response.status.is_success() {
        bail!(
            "the prediction server answered {}: {}",
            response.status,
            body
        );
    }
    let status = body["status"].as_str().unwrap_or("unknown");
    if let Some(logs) = body["logs"].as_str().filter(|l| !l.is_empty()) {
        for line in logs.lines() {
            session.reporter.output("", line);
        }
    }
    if args.json.is_some() {
        let mut whole = json!({
            "status": body["status"],
            "output": body["output"],
            "error": body["error"],
            "metrics": body["metrics"],
        });
        if status == "succeeded" {
            // File outputs are written next to the JSON and named in it.
            if let Some(output) = body.get("output").filter(|o| has_data_urls(o)) {
                let written: Vec<String> = crate::inputs::write_output(schema, output, None, cwd)?
                    .into_iter()
                    .map(|line| {
                        line.strip_prefix("Written output to ")
                            .map_or(line.clone(), str::to_string)
                    })
                    .collect();
                whole["output"] = match written.as_slice() {
                    [one] => json!(one),
                    many => json!(many),
                };
            }
        }
        let text = serde_json::to_string_pretty(&whole)?;
        match &args.output {
            Some(path) => {
                fs_err::write(path, format!("{text}\n"))?;
                session
                    .reporter
                    .message(&format!("Written output to {}", path.display()));
            }
            None => println!("{text}"),
        }
        return Ok(if status == "succeeded" {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if status != "succeeded" {
        let error = body["error"].as_str().unwrap_or_default();
        bail!("Prediction failed with status \"{status}\": {error}");
    }
    let output = body.get("output").unwrap_or(&Value::Null);
    for line in crate::inputs::write_output(schema, output, args.output.as_deref(), cwd)? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn has_data_urls(value: &Value) -> bool {
    match value {
        Value::String(s) => s.starts_with("data:"),
        Value::Array(items) => items.iter().any(has_data_urls),
        _ => false,
    }
}

/// Cog's rendering of a server-side 422.
fn validation_failure(body: &Value) -> String {
    use std::fmt::Write as _;
    let mut message = String::from("The inputs you passed could not be validated:\n\n");
    for detail in body["detail"].as_array().into_iter().flatten() {
        let field = detail["loc"]
            .as_array()
            .and_then(|loc| loc.last())
            .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_string))
            .unwrap_or_default();
        let msg = detail["msg"].as_str().unwrap_or_default();
        let _ = writeln!(message, "- {field}: {msg}");
    }
    message.push_str(
        "\nYou can provide an input with -i. For example:\n\n    cog predict -i blur=3.5\n\nIf your input is a local file, you need to prefix the path with @ to tell Cog to read the file contents. For example:\n\n    cog predict -i path=@image.jpg",
    );
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_422_is_rendered_like_cog() {
        let body = json!({"detail": [
            {"loc": ["body", "input", "text"], "msg": "Input should be a valid string", "type": "value_error"}
        ]});
        let text = validation_failure(&body);
        assert!(
            text.starts_with(
                "The inputs you passed could not be validated:\n\n- text: Input should be a valid string\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn data_urls_are_found_in_outputs() {
        assert!(has_data_urls(&json!("data:image/png;base64,AA==")));
        assert!(has_data_urls(&json!(["x", "data:text/plain;base64,AA=="])));
        assert!(!has_data_urls(&json!({"a": "data:x"})));
        assert!(!has_data_urls(&json!("hello")));
    }
}
