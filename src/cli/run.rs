//! `cog run [IMAGE]` (and the deprecated `cog predict`): inputs checked against the model's
//! schema before anything is built, then build, start the container, wait for setup, run one
//! prediction and write its output. The container is always removed (also on Ctrl-C).
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use layers::BlobStore;
use serde_json::{Map, Value, json};

use crate::config;
use crate::progress::ProgressMode;
use crate::runtime::{self, Container, Image, Mount, RunSpec, Runtime, RuntimeKind};

use super::build::{self, BuildArgs, CompressionArg};
use super::push::RegistryArgs;

/// The port the image's server listens on inside the container.
pub(super) const SERVER_PORT: u16 = 5000;
/// The label holding the image's OpenAPI schema.
const SCHEMA_LABEL: &str = "run.cog.openapi_schema";

/// Flags shared by `run`, `serve` and `exec`: which project, how to build it, where to run it.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    pub(super) file: String,
    /// Set type of build progress output: 'auto' (default), 'tty', 'plain', 'quiet' or 'json'
    #[arg(long, value_enum)]
    pub(super) progress: Option<ProgressMode>,
    /// Base image: a registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    #[arg(long)]
    pub(super) base: Option<String>,
    /// GPU devices to add to the container, in the same format as `docker run --gpus`
    #[arg(long)]
    pub(super) gpus: Option<String>,
    /// Where to run: docker, podman or runc (no daemon). Default: Docker when its daemon
    /// answers, else podman, else runc
    #[arg(long, value_enum, env = "COG_RUNTIME")]
    pub(super) runtime: Option<RuntimeKind>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run an existing image instead of building the project
    image: Option<String>,
    /// Inputs, in the form name=value. if value is prefixed with @, then it is read from a file on disk. E.g. -i path=@image.jpg
    #[arg(short = 'i', long = "input")]
    input: Vec<String>,
    /// Pass inputs as JSON object, read from file (@inputs.json) or via stdin (@-)
    #[arg(long)]
    json: Option<String>,
    /// Output path
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Environment variables, in the form name=value
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// The timeout for a container to setup (in seconds)
    #[arg(long, default_value_t = 300)]
    setup_timeout: u64,
    /// Pass REPLICATE_API_TOKEN from the environment to the model as the context's replicate_api_token
    #[arg(long)]
    use_replicate_token: bool,
    #[command(flatten)]
    project: ProjectArgs,
}

pub fn run(args: &RunArgs, deprecated_name: bool) -> Result<ExitCode> {
    if deprecated_name {
        eprintln!("⚠ \"cog predict\" is deprecated, use \"cog run\"");
    }
    install_interrupt_handler();
    settle(run_prediction(args))
}

fn run_prediction(args: &RunArgs) -> Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let env = parse_env(&args.env)?;
    let context = replicate_context(args.use_replicate_token)?;
    let store = open_store()?;

    let (container, schema, inputs) = if let Some(image) = &args.image {
        start_image(args, image, &store, &cwd, env)?
    } else {
        start_project(args, &store, &cwd, env)?
    };

    eprintln!("Running prediction...");
    let response = predict(&container, &inputs, context)?;
    drop(container);
    report(&response, &schema, args, &cwd)
}

/// `cog run IMAGE`: an image from the cache or the daemon, validated by its schema label (else
/// by the schema its server serves).
fn start_image(
    args: &RunArgs,
    image: &str,
    store: &BlobStore,
    cwd: &Path,
    env: Vec<(String, String)>,
) -> Result<(Container, Value, Map<String, Value>)> {
    if image.contains('=') {
        bail!("Invalid image name '{image}'. Did you forget `-i`?");
    }
    let runtime = detect_runtime(&args.project, store)?;
    let image = find_image(store, &runtime, image)?;
    let schema = image_schema(&image, runtime.kind)?;
    // Validate before starting anything when the image carries its schema.
    let inputs = if let Some(schema) = &schema {
        Some(request_inputs(schema, args, cwd)?)
    } else {
        None
    };
    runtime
        .prepare(&image)
        .with_context(|| format!("preparing {} for {}", image.name(), runtime.kind))?;
    let spec = server_spec(
        &runtime,
        &image,
        env,
        None,
        args.project.gpus.is_some(),
        &[],
    );
    let container = start_and_wait(&runtime, &image, &spec, args.setup_timeout)?;
    let schema = match schema {
        Some(schema) => schema,
        None => fetch_schema(&container)?,
    };
    let inputs = match inputs {
        Some(inputs) => inputs,
        None => request_inputs(&schema, args, cwd)?,
    };
    Ok((container, schema, inputs))
}

/// `cog run` in a project: inputs validated by the static schema, then build and start.
fn start_project(
    args: &RunArgs,
    store: &BlobStore,
    cwd: &Path,
    env: Vec<(String, String)>,
) -> Result<(Container, Value, Map<String, Value>)> {
    let project = load_project(&args.project)?;
    let schema = project.schema.clone();
    let inputs = request_inputs(&schema, args, cwd)?;
    let runtime = detect_runtime(&args.project, store)?;
    let image = build_project(&args.project, &project)?;
    runtime
        .prepare(&image)
        .with_context(|| format!("preparing {} for {}", image.name(), runtime.kind))?;
    let gpus = project.gpu || args.project.gpus.is_some();
    let spec = server_spec(&runtime, &image, env, Some(&project.dir), gpus, &[]);
    let container = start_and_wait(&runtime, &image, &spec, args.setup_timeout)?;
    Ok((container, schema, inputs))
}

/// What the project directory says before any build: its config and static schema.
pub(super) struct Project {
    pub dir: PathBuf,
    pub gpu: bool,
    pub schema: Value,
    /// The schema's exact bytes, as the image holds them at `/src/.cog/openapi_schema.json`.
    pub schema_document: Option<String>,
}

impl Project {
    /// Writes the schema into the project's `.cog/` as Cog does: the project is mounted over
    /// the image's `/src`, and the server reads `/src/.cog/openapi_schema.json`.
    pub fn write_schema(&self) -> Result<()> {
        let Some(document) = &self.schema_document else {
            return Ok(());
        };
        let path = self.dir.join(".cog").join("openapi_schema.json");
        if fs_err::read_to_string(&path).ok().as_deref() != Some(document.as_str()) {
            fs_err::create_dir_all(self.dir.join(".cog"))?;
            fs_err::write(&path, document)?;
        }
        Ok(())
    }
}

/// The project for `cog run` and `cog serve`: it must name a predictor.
pub(super) fn load_project(args: &ProjectArgs) -> Result<Project> {
    load(args, true)
}

/// The project for `cog exec`: any cog.yaml (the schema is `null` without a predictor).
pub(super) fn load_project_config(args: &ProjectArgs) -> Result<Project> {
    load(args, false)
}

fn load(args: &ProjectArgs, need_predictor: bool) -> Result<Project> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let (dir, config_path) = config::find_project(&cwd, Some(&args.file))?;
    let loaded = config::load(&dir, &config_path)?;
    let config = loaded.config;
    if config.predict.is_none() && config.train.is_none() {
        if !need_predictor {
            return Ok(Project {
                dir,
                gpu: config.build.gpu,
                schema: Value::Null,
                schema_document: None,
            });
        }
        bail!(
            "{}: no `predict` (or `run`) entry point: set it to e.g. \"predict.py:Predictor\" to run predictions",
            config_path.display()
        );
    }
    let schema = crate::schema::generate(&dir, config.predict.as_deref(), config.train.as_deref())?;
    let parsed: Value = serde_json::from_str(&schema.document)
        .context("the generated OpenAPI schema is not JSON")?;
    Ok(Project {
        dir,
        gpu: config.build.gpu,
        schema: parsed,
        schema_document: Some(schema.document),
    })
}

/// Builds the project as `cog build` does, recording it in the cache; the image to run.
pub(super) fn build_project(args: &ProjectArgs, project: &Project) -> Result<Image> {
    let build_args = BuildArgs {
        tag: None,
        push: false,
        file: args.file.clone(),
        no_cache: false,
        progress: args.progress,
        base: args.base.clone(),
        output: None,
        platform: "linux/amd64".to_string(),
        openapi_schema: None,
        upgrade: false,
        compression: CompressionArg::Gzip,
        registry: RegistryArgs::default(),
    };
    let loaded = build::load(&build_args)?;
    let name = build::image_name(None, &loaded.config, &project.dir);
    let built = build::build_and_save(&build_args, &loaded, &name)?;
    project.write_schema()?;
    Ok(runtime::built_image(
        &built.store,
        &name,
        &built.image.digest,
    )?)
}

pub(super) fn open_store() -> Result<BlobStore> {
    BlobStore::open(BlobStore::default_root()).context("opening the cog cache")
}

pub(super) fn detect_runtime(args: &ProjectArgs, store: &BlobStore) -> Result<Runtime> {
    let kind = runtime::detect(args.runtime)?;
    tracing::debug!("running containers with {kind}");
    Ok(Runtime::new(kind, store.clone()))
}

/// An image by name: one `cog build` recorded in the cache, else one the daemon has or pulls.
fn find_image(store: &BlobStore, runtime: &Runtime, name: &str) -> Result<Image> {
    if let Some(image) = runtime::local_image(store, name)? {
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

fn request_inputs(schema: &Value, args: &RunArgs, cwd: &Path) -> Result<Map<String, Value>> {
    Ok(crate::inputs::request_inputs(
        schema,
        &args.input,
        args.json.as_deref(),
        cwd,
    )?)
}

/// `-e KEY=VALUE` pairs.
pub(super) fn parse_env(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("-e {pair}: expected the form KEY=VALUE"),
        })
        .collect()
}

fn replicate_context(use_token: bool) -> Result<Option<Value>> {
    if !use_token {
        return Ok(None);
    }
    let token = std::env::var("REPLICATE_API_TOKEN")
        .context("--use-replicate-token: REPLICATE_API_TOKEN is not set in the environment")?;
    Ok(Some(json!({ "replicate_api_token": token })))
}

/// The command that starts the image's prediction server, with `extra` flags. On runc the
/// container shares the host's network, so the server itself binds 127.0.0.1.
fn server_command(runtime: &Runtime, image: &Image, extra: &[String]) -> Vec<String> {
    let mut args = match image {
        Image::Local { image, .. } => image
            .config
            .config
            .as_ref()
            .and_then(|c| c.cmd.clone())
            .unwrap_or_default(),
        Image::Daemon { .. } => Vec::new(),
    };
    if args.is_empty() {
        args = ["python", "-m", "cog.server.http"]
            .map(String::from)
            .to_vec();
    }
    if runtime.shares_host_network() {
        args.extend(["--host".to_string(), "127.0.0.1".to_string()]);
    }
    args.extend(extra.iter().cloned());
    args
}

/// How Cog runs the prediction server locally: the project at `/src`, port 5000 published on
/// 127.0.0.1, console logs at warning level (debug with `--debug`).
pub(super) fn server_spec(
    runtime: &Runtime,
    image: &Image,
    user_env: Vec<(String, String)>,
    project_dir: Option<&Path>,
    gpus: bool,
    extra: &[String],
) -> RunSpec {
    let level = if tracing::enabled!(tracing::Level::DEBUG) {
        "debug"
    } else {
        "warning"
    };
    let mut env = vec![
        ("LOG_FORMAT".to_string(), "console".to_string()),
        ("COG_LOG_LEVEL".to_string(), level.to_string()),
    ];
    if project_dir.is_some() {
        // The project is mounted read-write: Python must not leave root-owned __pycache__
        // directories in it (they would also change the next build's source layer).
        env.push(("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()));
    }
    env.extend(user_env);
    RunSpec {
        args: server_command(runtime, image, extra),
        env,
        mounts: project_dir
            .map(|dir| Mount {
                source: dir.to_path_buf(),
                target: "/src".to_string(),
                read_only: false,
            })
            .into_iter()
            .collect(),
        publish: Some(SERVER_PORT),
        gpus,
        ..RunSpec::default()
    }
}

/// Starts the server and waits until `/health-check` says READY; a setup failure or a container
/// that exits shows the setup logs.
fn start_and_wait(
    runtime: &Runtime,
    image: &Image,
    spec: &RunSpec,
    setup_timeout: u64,
) -> Result<Container> {
    eprintln!(
        "Starting {} image {} and running setup()...",
        runtime.kind,
        image.name()
    );
    let mut container = runtime
        .start(image, spec)
        .with_context(|| format!("starting {} with {}", image.name(), runtime.kind))?;
    wait_for_setup(&mut container, Duration::from_secs(setup_timeout))?;
    Ok(container)
}

pub(super) fn base_url(container: &Container) -> Result<String> {
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
        std::thread::sleep(Duration::from_millis(100));
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
) -> Result<Response> {
    let url = format!("{}/predictions", base_url(container)?);
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
fn report(response: &Response, schema: &Value, args: &RunArgs, cwd: &Path) -> Result<ExitCode> {
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
        eprint!("{logs}");
        if !logs.ends_with('\n') {
            eprintln!();
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
                eprintln!("Written output to {}", path.display());
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

/// After Ctrl-C the interrupt handler removes the containers and exits 130; whatever the main
/// thread sees meanwhile (a container gone, a refused connection) is not the outcome to report.
pub(super) fn settle<T>(result: Result<T>) -> Result<T> {
    if runtime::interrupted() {
        loop {
            std::thread::park();
        }
    }
    result
}

/// On Ctrl-C (or SIGTERM): remove the containers this process started, then exit 130.
pub(super) fn install_interrupt_handler() {
    let spawned = std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            eprintln!("Interrupted: removing the container...");
            runtime::remove_all();
            std::process::exit(130);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch for Ctrl-C: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_need_an_equals_sign() {
        assert_eq!(
            parse_env(&["A=1=2".into(), "B=".into()]).unwrap(),
            vec![("A".into(), "1=2".into()), ("B".into(), String::new())]
        );
        let err = parse_env(&["NOPE".into()]).unwrap_err().to_string();
        assert_eq!(err, "-e NOPE: expected the form KEY=VALUE");
    }

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
