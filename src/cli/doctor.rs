//! `cog doctor [--fix]`: Cog's project checks (config, Python sources, environment), each
//! reported with its findings; `--fix` applies the fixes that are safe to make. Exits 1 when an
//! error remains.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Result;
use regex::Regex;

use crate::config::{self, ConfigError, Warning};
use crate::runtime;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    file: String,
    /// Automatically apply fixes
    #[arg(long)]
    fix: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Config,
    Python,
    Environment,
}

impl Group {
    fn title(self) -> &'static str {
        match self {
            Self::Config => "Config",
            Self::Python => "Python",
            Self::Environment => "Environment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
    pub remediation: String,
    pub file: Option<String>,
    pub line: usize,
}

impl Finding {
    fn new(severity: Severity, message: impl Into<String>, remediation: impl Into<String>) -> Self {
        Self {
            severity,
            message: message.into(),
            remediation: remediation.into(),
            file: None,
            line: 0,
        }
    }

    fn at(mut self, file: &str, line: usize) -> Self {
        self.file = Some(file.to_string());
        self.line = line;
        self
    }
}

/// A check's auto-fix: `Err` says why it could not be applied.
type Fix = fn(&Context) -> Result<(), String>;

/// One check: its name (as Cog names it), group, description, and what it does.
#[allow(clippy::struct_field_names)] // `check` is what a check does: the clearest name.
struct Check {
    name: &'static str,
    group: Group,
    description: &'static str,
    check: fn(&Context) -> Vec<Finding>,
    /// `None`: no auto-fix.
    fix: Option<Fix>,
}

/// Cog's checks, in Cog's order.
fn all_checks() -> Vec<Check> {
    vec![
        Check {
            name: "config-parse",
            group: Group::Config,
            description: "Config parsing",
            check: check_config_parse,
            fix: None,
        },
        Check {
            name: "config-schema",
            group: Group::Config,
            description: "Config schema",
            check: check_config_schema,
            fix: None,
        },
        Check {
            name: "predict-to-run-migration",
            group: Group::Config,
            description: "Deprecated predict interface names",
            check: check_predict_to_run,
            fix: Some(fix_predict_to_run),
        },
        Check {
            name: "config-deprecated-fields",
            group: Group::Config,
            description: "Deprecated fields",
            check: check_deprecated_fields,
            fix: None,
        },
        Check {
            name: "config-predict-ref",
            group: Group::Config,
            description: "Predict reference",
            check: check_predict_ref,
            fix: None,
        },
        Check {
            name: "python-pydantic-basemodel",
            group: Group::Python,
            description: "Pydantic BaseModel workaround",
            check: check_pydantic_basemodel,
            fix: Some(fix_pydantic_basemodel),
        },
        Check {
            name: "python-deprecated-imports",
            group: Group::Python,
            description: "Deprecated imports",
            check: check_deprecated_imports,
            fix: Some(fix_deprecated_imports),
        },
        Check {
            name: "python-missing-type-annotations",
            group: Group::Python,
            description: "Type annotations",
            check: check_type_annotations,
            fix: None,
        },
        Check {
            name: "env-docker",
            group: Group::Environment,
            description: "Container runtime",
            check: check_runtime,
            fix: None,
        },
        Check {
            name: "env-python-version",
            group: Group::Environment,
            description: "Python version",
            check: check_python_version,
            fix: None,
        },
        Check {
            name: "env-gpu-compat",
            group: Group::Environment,
            description: "GPU compatibility",
            check: check_gpu_compat,
            fix: None,
        },
    ]
}

/// What the checks look at, read once.
pub struct Context {
    dir: PathBuf,
    config_name: String,
    /// `None` when the file does not exist.
    config_text: Option<String>,
    loaded: Option<Result<config::Loaded, ConfigError>>,
    /// Probes of the machine, replaceable in tests.
    env: Environment,
}

/// What the environment checks learn from the machine.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `Err(reason)` when no runtime can run containers; `None`: check skipped.
    pub runtime: Option<Result<String, String>>,
    /// `python3 --version`'s output; `None` when there is no Python on PATH.
    pub python: Option<Result<String, String>>,
    /// Compute capabilities of the GPUs (`nvidia-smi`); empty without one.
    pub gpus: Vec<(u32, u32)>,
}

impl Environment {
    /// Probes this machine (honouring `COG_SKIP_DOCKER_CHECK` and `COG_SKIP_GPU_CHECK`).
    pub fn probe() -> Self {
        let runtime = std::env::var_os("COG_SKIP_DOCKER_CHECK")
            .is_none()
            .then(|| {
                runtime::detect(None)
                    .map(|k| k.to_string())
                    .map_err(|e| e.to_string())
            });
        let python = runtime::find_program("python3")
            .or_else(|| runtime::find_program("python"))
            .map(|python| {
                Command::new(python)
                    .arg("--version")
                    .output()
                    .map_err(|e| e.to_string())
                    .and_then(|out| {
                        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
                        if out.status.success() && !text.is_empty() {
                            Ok(text)
                        } else {
                            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
                        }
                    })
            });
        let gpus = if std::env::var_os("COG_SKIP_GPU_CHECK").is_some() {
            Vec::new()
        } else {
            Command::new("nvidia-smi")
                .args(["--query-gpu=compute_cap", "--format=csv,noheader"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| parse_compute_caps(&String::from_utf8_lossy(&o.stdout)))
                .unwrap_or_default()
        };
        Self {
            runtime,
            python,
            gpus,
        }
    }
}

fn parse_compute_caps(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let (major, minor) = line.trim().split_once('.')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
        .collect()
}

impl Context {
    pub fn read(dir: &Path, config_name: &str, env: Environment) -> Self {
        let path = dir.join(config_name);
        let config_text = fs_err::read_to_string(&path).ok();
        let loaded = config_text
            .as_ref()
            .map(|text| config::load_str(dir, &path, text));
        Self {
            dir: dir.to_path_buf(),
            config_name: config_name.to_string(),
            config_text,
            loaded,
            env,
        }
    }

    fn config(&self) -> Option<&config::Config> {
        match &self.loaded {
            Some(Ok(loaded)) => Some(&loaded.config),
            _ => None,
        }
    }

    fn read_source(&self, file: &str) -> Option<String> {
        fs_err::read_to_string(self.dir.join(file)).ok()
    }

    /// The Python files the checks read: the predictor's and trainer's modules.
    fn python_files(&self) -> Vec<(String, String)> {
        let Some(config) = self.config() else {
            return Vec::new();
        };
        let mut files: Vec<String> = [config.predict.as_deref(), config.train.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|r| r.split_once(':').map(|(f, _)| f.to_string()))
            .collect();
        files.dedup();
        files
            .into_iter()
            .filter_map(|f| self.read_source(&f).map(|text| (f, text)))
            .collect()
    }
}

fn check_config_parse(ctx: &Context) -> Vec<Finding> {
    let name = &ctx.config_name;
    match &ctx.loaded {
        None => vec![Finding::new(
            Severity::Error,
            format!("{name} not found"),
            "Run \"cog init\" to create a cog.yaml",
        )],
        Some(Err(ConfigError::Parse { message, .. })) => vec![Finding::new(
            Severity::Error,
            format!("{name} has invalid YAML: {message}"),
            format!("Fix the YAML syntax in {name}"),
        )],
        Some(_) => Vec::new(),
    }
}

fn check_config_schema(ctx: &Context) -> Vec<Finding> {
    let name = &ctx.config_name;
    match &ctx.loaded {
        Some(Err(ConfigError::Invalid { issues, .. })) => vec![Finding::new(
            Severity::Error,
            format!(
                "{name} validation failed: {}",
                issues
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            format!("Fix the configuration errors in {name}"),
        )],
        Some(Err(err @ (ConfigError::Io { .. } | ConfigError::NotFound { .. }))) => {
            vec![Finding::new(
                Severity::Error,
                format!("{name}: {err}"),
                format!("Fix the configuration errors in {name}"),
            )]
        }
        _ => Vec::new(),
    }
}

fn top_level_predict() -> Regex {
    Regex::new(r"(?m)^predict\s*:").expect("a valid pattern")
}

fn legacy_python_names() -> Regex {
    Regex::new(r"\bBasePredictor\b|(?m)^class\s+Predictor\b|\bdef\s+predict\s*\(")
        .expect("a valid pattern")
}

fn check_predict_to_run(ctx: &Context) -> Vec<Finding> {
    let Some(text) = &ctx.config_text else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    if top_level_predict().is_match(text) {
        findings.push(
            Finding::new(
                Severity::Warning,
                "predict in cog.yaml is deprecated; use run with run.py:Runner",
                "Run cog doctor --fix to migrate predict: to run:",
            )
            .at(&ctx.config_name, 0),
        );
        if let Some(source) = ctx.read_source("predict.py")
            && legacy_python_names().is_match(&source)
        {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    "predict.py uses deprecated Predictor/BasePredictor/predict() names",
                    "Run cog doctor --fix to migrate to Runner/BaseRunner/run()",
                )
                .at("predict.py", 0),
            );
        }
    }
    findings
}

/// `predict: "predict.py:Predictor"` becomes `run: "run.py:Runner"`, and predict.py becomes
/// run.py with `Runner(BaseRunner)` and `run()`. Anything less regular is left to the user.
fn fix_predict_to_run(ctx: &Context) -> Result<(), String> {
    let text = ctx.config_text.as_deref().unwrap_or_default();
    let line = Regex::new(r#"(?m)^predict\s*:\s*["']?([^"'\s#]+)["']?\s*(#.*)?$"#)
        .expect("a valid pattern");
    let Some(found) = line.captures(text) else {
        return Err("Manual migration required: predict: is not a single quoted reference".into());
    };
    if Regex::new(r"(?m)^run\s*:")
        .expect("a valid pattern")
        .is_match(text)
    {
        return Err("automatic migration cannot run when run is already set".into());
    }
    let reference = &found[1];
    let config_path = ctx.dir.join(&ctx.config_name);
    if reference != "predict.py:Predictor" {
        return Err(
            "Manual migration required: automatic migration only supports predict.py:Predictor"
                .into(),
        );
    }
    let predict_py = ctx.dir.join("predict.py");
    let run_py = ctx.dir.join("run.py");
    let Some(source) = ctx.read_source("predict.py") else {
        return Err("cannot migrate predict.py to run.py because predict.py was not found".into());
    };
    if run_py.exists() {
        return Err("cannot migrate predict.py to run.py because run.py already exists".into());
    }
    let classes = Regex::new(r"(?m)^class\s+Predictor\b").expect("a valid pattern");
    let methods = Regex::new(r"\bdef\s+predict\s*\(").expect("a valid pattern");
    if classes.find_iter(&source).count() != 1 || methods.find_iter(&source).count() != 1 {
        return Err("Manual migration required: automatic migration only supports a single Predictor class with a single predict method".into());
    }
    let migrated = Regex::new(r"\bBasePredictor\b")
        .expect("a valid pattern")
        .replace_all(&source, "BaseRunner");
    let migrated = classes.replace(&migrated, "class Runner");
    let migrated = methods.replace(&migrated, "def run(");
    let new_config = line.replace(text, |c: &regex::Captures| match c.get(2) {
        Some(comment) => format!("run: \"run.py:Runner\" {}", comment.as_str()),
        None => "run: \"run.py:Runner\"".to_string(),
    });
    write_file(&run_py, &migrated)?;
    write_file(&config_path, &new_config)?;
    fs_err::remove_file(&predict_py).map_err(|e| e.to_string())?;
    Ok(())
}

fn check_deprecated_fields(ctx: &Context) -> Vec<Finding> {
    let Some(Ok(loaded)) = &ctx.loaded else {
        return Vec::new();
    };
    loaded
        .warnings
        .iter()
        .filter_map(|warning| match warning {
            // `predict:` has its own check and fix.
            Warning::Deprecated { field, .. } if field == "predict" => None,
            Warning::Deprecated {
                field,
                replacement,
                message,
            } => Some(Finding::new(
                Severity::Warning,
                format!("{field:?} is deprecated: {message}"),
                if replacement.is_empty() {
                    String::new()
                } else {
                    format!("Use {replacement:?} instead")
                },
            )),
            Warning::Other(_) => None,
        })
        .collect()
}

fn check_predict_ref(ctx: &Context) -> Vec<Finding> {
    let Some(config) = ctx.config() else {
        return Vec::new();
    };
    let Some(reference) = config.predict.as_deref() else {
        return Vec::new();
    };
    let name = &ctx.config_name;
    let Some((file, class)) = reference
        .split_once(':')
        .filter(|(f, c)| !f.is_empty() && !c.is_empty())
    else {
        return vec![Finding::new(
            Severity::Error,
            format!("predict reference {reference:?} must be in the form 'file.py:ClassName'"),
            format!("Set predict to \"predict.py:Predictor\" in {name}"),
        )];
    };
    let Some(source) = ctx.read_source(file) else {
        return vec![Finding::new(
            Severity::Error,
            format!("{file} not found"),
            format!("Create {file} or update the predict field in {name}"),
        )];
    };
    let defined = definitions(&source);
    if defined.iter().any(|d| d == class) {
        return Vec::new();
    }
    let classes = top_level_classes(&source);
    let mut message = format!("class {class:?} not found in {file}");
    if !classes.is_empty() {
        let _ = write!(message, "; found: {}", classes.join(", "));
    }
    vec![Finding::new(
        Severity::Error,
        message,
        format!("Add class {class} to {file} or update the predict field in cog.yaml"),
    )]
}

/// Top-level classes of a module.
fn top_level_classes(source: &str) -> Vec<String> {
    Regex::new(r"(?m)^class\s+([A-Za-z_][A-Za-z0-9_]*)")
        .expect("a valid pattern")
        .captures_iter(source)
        .map(|c| c[1].to_string())
        .collect()
}

/// Top-level names a runner reference may name: classes, functions, assignments.
fn definitions(source: &str) -> Vec<String> {
    Regex::new(r"(?m)^(?:class\s+|(?:async\s+)?def\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*[(:=]")
        .expect("a valid pattern")
        .captures_iter(source)
        .map(|c| c[1].to_string())
        .collect()
}

fn pydantic_model() -> Regex {
    Regex::new(r"(?m)^class\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*(?:pydantic\.)?BaseModel\s*\)")
        .expect("a valid pattern")
}

/// Classes built on pydantic's BaseModel with `arbitrary_types_allowed`, the workaround for
/// cog types that cog.BaseModel makes unnecessary.
fn pydantic_workarounds(source: &str) -> Vec<(String, usize)> {
    let imports_pydantic =
        Regex::new(r"(?m)^\s*(from\s+pydantic\s+import\b[^\n]*\bBaseModel\b|import\s+pydantic\b)")
            .expect("a valid pattern")
            .is_match(source);
    if !imports_pydantic || !source.contains("arbitrary_types_allowed") {
        return Vec::new();
    }
    pydantic_model()
        .captures_iter(source)
        .map(|c| {
            let line = source[..c.get(0).map_or(0, |m| m.start())].lines().count() + 1;
            (c[1].to_string(), line)
        })
        .collect()
}

fn check_pydantic_basemodel(ctx: &Context) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (file, source) in ctx.python_files() {
        for (class, line) in pydantic_workarounds(&source) {
            findings.push(
                Finding::new(
                    Severity::Error,
                    format!("{class} inherits from pydantic.BaseModel with arbitrary_types_allowed; use cog.BaseModel instead"),
                    "Replace pydantic.BaseModel with cog.BaseModel and remove ConfigDict(arbitrary_types_allowed=True)",
                )
                .at(&file, line),
            );
        }
    }
    findings
}

/// `class X(BaseModel)` with `model_config = ConfigDict(arbitrary_types_allowed=True)` becomes
/// `class X(cog.BaseModel)` without that line; the pydantic import goes when nothing else uses it.
#[allow(clippy::regex_creation_in_loops)] // a fix runs once, on a few files
fn fix_pydantic_basemodel(ctx: &Context) -> Result<(), String> {
    for (file, source) in ctx.python_files() {
        if pydantic_workarounds(&source).is_empty() {
            continue;
        }
        let fixed = pydantic_model().replace_all(&source, "class $1(BaseModel)");
        let config_line = Regex::new(
            r"(?m)^[ \t]+model_config\s*=\s*(?:pydantic\.)?ConfigDict\(\s*arbitrary_types_allowed\s*=\s*True\s*\)[ \t]*\n",
        )
        .expect("a valid pattern");
        let fixed = config_line.replace_all(&fixed, "");
        let old_class_config = Regex::new(
            r"(?m)^[ \t]+class\s+Config\s*:\s*\n[ \t]+arbitrary_types_allowed\s*=\s*True[ \t]*\n",
        )
        .expect("a valid pattern");
        let fixed = old_class_config.replace_all(&fixed, "");
        let import =
            Regex::new(r"(?m)^from\s+pydantic\s+import\s+[^\n]*\n").expect("a valid pattern");
        let fixed = import.replace_all(&fixed, "");
        let fixed = if Regex::new(r"(?m)^from\s+cog\s+import\b[^\n]*\bBaseModel\b")
            .expect("a valid pattern")
            .is_match(&fixed)
        {
            fixed.into_owned()
        } else {
            format!("from cog import BaseModel\n{fixed}")
        };
        write_file(&ctx.dir.join(&file), &fixed)?;
    }
    Ok(())
}

/// Names removed from the SDK: (module, name, message).
const DEPRECATED_IMPORTS: &[(&str, &str, &str)] = &[(
    "cog.types",
    "ExperimentalFeatureWarning",
    "ExperimentalFeatureWarning was removed in cog 0.17; current_scope().record_metric() is no longer experimental",
)];

fn deprecated_import_pattern(module: &str, name: &str) -> Regex {
    Regex::new(&format!(
        r"(?m)^from\s+{}\s+import\s+[^\n]*\b{}\b",
        regex::escape(module),
        regex::escape(name)
    ))
    .expect("a valid pattern")
}

fn check_deprecated_imports(ctx: &Context) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (file, source) in ctx.python_files() {
        for (module, name, message) in DEPRECATED_IMPORTS {
            for found in deprecated_import_pattern(module, name).find_iter(&source) {
                let line = source[..found.start()].lines().count() + 1;
                findings.push(
                    Finding::new(
                        Severity::Error,
                        *message,
                        format!("Remove the import of {name} from {module}"),
                    )
                    .at(&file, line),
                );
            }
        }
    }
    findings
}

/// Removes the deprecated names from their imports (the whole import when nothing else is
/// imported) and the statements that use them (`warnings.filterwarnings(..., category=X)`).
fn fix_deprecated_imports(ctx: &Context) -> Result<(), String> {
    for (file, source) in ctx.python_files() {
        let mut fixed = source.clone();
        for (module, name, _) in DEPRECATED_IMPORTS {
            let word =
                Regex::new(&format!(r"\b{}\b", regex::escape(name))).expect("a valid pattern");
            let mut lines = Vec::new();
            for line in fixed.lines() {
                if deprecated_import_pattern(module, name).is_match(line) {
                    let (head, names) = line.split_once(" import ").unwrap_or((line, ""));
                    let rest: Vec<&str> = names
                        .trim_matches(|c| c == '(' || c == ')' || c == ' ')
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty() && !word.is_match(n))
                        .collect();
                    if !rest.is_empty() {
                        lines.push(format!("{head} import {}", rest.join(", ")));
                    }
                } else if word.is_match(line) && !line.trim_start().starts_with('#') {
                    // A statement that uses the removed name cannot stay.
                } else {
                    lines.push(line.to_string());
                }
            }
            let mut joined = lines.join("\n");
            if fixed.ends_with('\n') {
                joined.push('\n');
            }
            fixed = joined;
        }
        if fixed != source {
            write_file(&ctx.dir.join(&file), &fixed)?;
        }
    }
    Ok(())
}

fn check_type_annotations(ctx: &Context) -> Vec<Finding> {
    let Some(config) = ctx.config() else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    let refs = [
        (config.predict.as_deref(), None),
        (config.train.as_deref(), Some("train")),
    ];
    for (reference, method) in refs {
        let Some((file, class)) = reference.and_then(|r| r.split_once(':')) else {
            continue;
        };
        let Some(source) = ctx.read_source(file) else {
            continue;
        };
        let methods = class_methods(&source, class);
        let method = method.unwrap_or(if methods.iter().any(|m| m.name == "run") {
            "run"
        } else {
            "predict"
        });
        if let Some(found) = methods.iter().find(|m| m.name == method)
            && !found.annotated
        {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("{class}.{method}() is missing a return type annotation"),
                    format!("Add a return type annotation: def {method}(self, ...) -> YourType:"),
                )
                .at(file, found.line),
            );
        }
    }
    findings
}

struct Method {
    name: String,
    line: usize,
    annotated: bool,
}

/// The methods of top-level class `class`, with whether each declares its return type.
fn class_methods(source: &str, class: &str) -> Vec<Method> {
    let mut parser = tree_sitter::Parser::new();
    if parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .is_err()
    {
        return Vec::new();
    }
    let Some(tree) = parser.parse(source, None) else {
        return Vec::new();
    };
    let root = tree.root_node();
    let text = |node: tree_sitter::Node| node.utf8_text(source.as_bytes()).unwrap_or_default();
    let mut cursor = root.walk();
    let mut methods = Vec::new();
    for node in root.children(&mut cursor) {
        let node = if node.kind() == "decorated_definition" {
            match node.child_by_field_name("definition") {
                Some(inner) => inner,
                None => continue,
            }
        } else {
            node
        };
        if node.kind() != "class_definition"
            || node.child_by_field_name("name").map(text) != Some(class)
        {
            continue;
        }
        let Some(body) = node.child_by_field_name("body") else {
            continue;
        };
        let mut inner = body.walk();
        for item in body.children(&mut inner) {
            let item = if item.kind() == "decorated_definition" {
                match item.child_by_field_name("definition") {
                    Some(def) => def,
                    None => continue,
                }
            } else {
                item
            };
            if item.kind() == "function_definition"
                && let Some(name) = item.child_by_field_name("name")
            {
                methods.push(Method {
                    name: text(name).to_string(),
                    line: item.start_position().row + 1,
                    annotated: item.child_by_field_name("return_type").is_some(),
                });
            }
        }
    }
    methods
}

fn check_runtime(ctx: &Context) -> Vec<Finding> {
    match &ctx.env.runtime {
        Some(Err(reason)) => vec![Finding::new(
            Severity::Error,
            format!("no container runtime can run models: {reason}"),
            "Install Docker (https://docs.docker.com/get-docker/) and start its daemon, or podman, or runc",
        )],
        _ => Vec::new(),
    }
}

fn major_minor(version: &str) -> Option<String> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    Some(format!("{major}.{minor}"))
}

fn check_python_version(ctx: &Context) -> Vec<Finding> {
    match &ctx.env.python {
        None => vec![Finding::new(
            Severity::Warning,
            "Python not found in PATH",
            "Install Python 3.10+ or ensure it is on your PATH",
        )],
        Some(Err(reason)) => vec![Finding::new(
            Severity::Warning,
            format!("could not determine Python version: {reason}"),
            "Ensure your Python installation is working correctly",
        )],
        Some(Ok(output)) => {
            let local = major_minor(output.trim().trim_start_matches("Python"));
            let wanted = ctx
                .config()
                .filter(|c| !c.build.python_version.is_empty())
                .and_then(|c| major_minor(&c.build.python_version));
            match (local, wanted) {
                (Some(local), Some(wanted)) if local != wanted => vec![Finding::new(
                    Severity::Warning,
                    format!("local Python is {local} but cog.yaml specifies {wanted}"),
                    "This is usually fine -- images are built with the configured version. Update cog.yaml or your local Python if needed.",
                )],
                _ => Vec::new(),
            }
        }
    }
}

/// The oldest torch and CUDA with kernels for a GPU generation (compute capability major).
fn gpu_floor(capability: (u32, u32)) -> Option<(&'static str, &'static str)> {
    match capability {
        (12 | 10, 0) => Some(("2.7.0", "12.8")),
        (9, 0) => Some(("2.0.1", "11.8")),
        _ => None,
    }
}

fn check_gpu_compat(ctx: &Context) -> Vec<Finding> {
    let Some(config) = ctx.config().filter(|c| c.build.gpu) else {
        return Vec::new();
    };
    let Some(torch) = config.package_version("torch") else {
        return Vec::new();
    };
    let torch = torch.split('+').next().unwrap_or(&torch).to_string();
    let cuda = config.build.cuda.clone().unwrap_or_default();
    let mut seen = Vec::new();
    let mut findings = Vec::new();
    for capability in &ctx.env.gpus {
        if seen.contains(capability) {
            continue;
        }
        seen.push(*capability);
        let Some((min_torch, min_cuda)) = gpu_floor(*capability) else {
            continue;
        };
        let torch_ok = !config::compat::version_greater(min_torch, &torch);
        let cuda_ok = cuda.is_empty() || !config::compat::version_greater(min_cuda, &cuda);
        if torch_ok && cuda_ok {
            continue;
        }
        let sm = format!("sm_{}{}", capability.0, capability.1);
        let cuda_shown = if cuda.is_empty() { "unset" } else { &cuda };
        findings.push(Finding::new(
            Severity::Warning,
            format!("torch=={torch} (CUDA {cuda_shown}) ships no kernels for {sm}, the compute capability of this machine's GPU. The image will build, but every CUDA operation in it will fail at runtime with \"no kernel image is available for execution on the device\"."),
            format!("{sm} requires torch>={min_torch} built against CUDA>={min_cuda}. Pin a newer torch, or set COG_SKIP_GPU_CHECK=1 if you are building for a different GPU than the one in this machine."),
        ));
    }
    findings
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::io::Write::write_all(&mut temp, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(meta) = fs_err::metadata(path) {
        let _ = fs_err::set_permissions(temp.path(), meta.permissions());
    }
    temp.persist(path)
        .map_err(|e| format!("{}: {}", path.display(), e.error))?;
    Ok(())
}

/// One check's outcome.
pub struct Outcome {
    name: &'static str,
    group: Group,
    description: &'static str,
    findings: Vec<Finding>,
    fixed: bool,
    /// Why a fix failed (the findings stand).
    fix_error: Option<String>,
    fixable: bool,
}

/// Runs every check; with `fix`, applies the fixes of the checks with findings and checks again.
pub fn run_checks(dir: &Path, config_name: &str, env: &Environment, fix: bool) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut ctx = Context::read(dir, config_name, env.clone());
    for check in all_checks() {
        let findings = (check.check)(&ctx);
        let mut outcome = Outcome {
            name: check.name,
            group: check.group,
            description: check.description,
            fixed: false,
            fix_error: None,
            fixable: check.fix.is_some() && !findings.is_empty(),
            findings,
        };
        if fix
            && !outcome.findings.is_empty()
            && let Some(apply) = check.fix
        {
            match apply(&ctx) {
                Ok(()) => {
                    outcome.fixed = true;
                    // Later checks see the fixed project.
                    ctx = Context::read(dir, config_name, env.clone());
                }
                Err(reason) => outcome.fix_error = Some(reason),
            }
        }
        tracing::debug!(
            "doctor check {}: {} findings",
            outcome.name,
            outcome.findings.len()
        );
        outcomes.push(outcome);
    }
    outcomes
}

/// What `cog doctor` prints, as Cog prints it (one line per check, findings indented, a summary).
pub fn render(outcomes: &[Outcome], fix: bool) -> (String, bool) {
    let mut out = String::new();
    let (mut errors, mut warnings, mut fixed) = (0, 0, 0);
    let mut group = None;
    for outcome in outcomes {
        if group != Some(outcome.group) {
            group = Some(outcome.group);
            let _ = writeln!(out, "{}", outcome.group.title());
        }
        if outcome.findings.is_empty() {
            let _ = writeln!(out, "✓ {}", outcome.description);
            continue;
        }
        if outcome.fixed {
            let _ = writeln!(out, "✓ Fixed: {}", outcome.description);
            fixed += outcome.findings.len();
        } else {
            let worst = outcome
                .findings
                .iter()
                .map(|f| f.severity)
                .min()
                .unwrap_or(Severity::Info);
            let mark = match worst {
                Severity::Error => "✗",
                Severity::Warning => "⚠",
                Severity::Info => "ⓘ",
            };
            let _ = writeln!(out, "{mark} {}", outcome.description);
            for finding in &outcome.findings {
                match finding.severity {
                    Severity::Error => errors += 1,
                    Severity::Warning => warnings += 1,
                    Severity::Info => {}
                }
            }
        }
        for finding in &outcome.findings {
            let location = match (&finding.file, finding.line) {
                (Some(file), 0) => format!("{file} — "),
                (Some(file), line) => format!("{file}:{line} — "),
                (None, _) => String::new(),
            };
            let _ = writeln!(out, "  {location}{}", finding.message);
            if fix && !outcome.fixed {
                match (&outcome.fix_error, finding.remediation.is_empty()) {
                    (Some(reason), _) => {
                        let _ = writeln!(out, "  Fix not applied: {reason}");
                    }
                    (None, false) => {
                        let _ = writeln!(out, "  Remediation: {}", finding.remediation);
                    }
                    (None, true) => {
                        let _ = writeln!(out, "  (no auto-fix available)");
                    }
                }
            }
        }
    }
    out.push('\n');
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    if fix && fixed > 0 {
        let mut line = format!("Fixed {}", plural(fixed, "issue"));
        if warnings > 0 {
            let _ = write!(line, ". {} remaining", plural(warnings, "warning"));
        }
        if errors > 0 {
            let _ = write!(line, ". {}", plural(errors, "unfixed error"));
        }
        let _ = writeln!(out, "{line}.");
    } else if errors > 0 || warnings > 0 {
        let mut parts = Vec::new();
        if errors > 0 {
            parts.push(plural(errors, "error"));
        }
        if warnings > 0 {
            parts.push(plural(warnings, "warning"));
        }
        let mut line = format!("Found {}.", parts.join(", "));
        let fixable_errors = outcomes.iter().any(|o| {
            o.fixable && !o.fixed && o.findings.iter().any(|f| f.severity == Severity::Error)
        });
        if !fix && fixable_errors {
            line.push_str(" Run \"cog doctor --fix\" to auto-fix.");
        }
        let _ = writeln!(out, "{line}");
    } else {
        let _ = writeln!(out, "✓ no issues found");
    }
    (out, errors > 0)
}

pub fn run(session: &Session, args: &DoctorArgs) -> Result<ExitCode> {
    session.reporter.warning(
        "NOTE: cog doctor is experimental. Behavior and checks may change in future versions.",
    );
    let cwd = std::env::current_dir()?;
    // The project: the nearest directory up holding the config file; else here (the
    // config-parse check then says it is missing).
    let (dir, file) = match config::find_project(&cwd, Some(&args.file)) {
        Ok((dir, path)) => {
            let name = path
                .file_name()
                .map_or_else(|| args.file.clone(), |n| n.to_string_lossy().into_owned());
            (dir, name)
        }
        Err(_) => (cwd, args.file.clone()),
    };
    session.reporter.message(if args.fix {
        "Running cog doctor --fix..."
    } else {
        "Running cog doctor..."
    });
    let outcomes = run_checks(&dir, &file, &Environment::probe(), args.fix);
    let (text, failed) = render(&outcomes, args.fix);
    print!("{text}");
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn healthy_env() -> Environment {
        Environment {
            runtime: Some(Ok("docker".into())),
            python: Some(Ok("Python 3.12.3".into())),
            gpus: Vec::new(),
        }
    }

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs_err::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn doctor(dir: &Path, env: &Environment, fix: bool) -> String {
        let (text, failed) = render(&run_checks(dir, "cog.yaml", env, fix), fix);
        format!("{text}exit: {}\n", u8::from(failed))
    }

    #[test]
    fn a_healthy_project_has_no_issues() {
        let dir = project(&[
            (
                "cog.yaml",
                "build:\n  python_version: \"3.12\"\nrun: \"run.py:Runner\"\n",
            ),
            (
                "run.py",
                "from cog import BaseRunner\n\nclass Runner(BaseRunner):\n    def run(self, x: int) -> int:\n        return x\n",
            ),
        ]);
        insta::assert_snapshot!(doctor(dir.path(), &healthy_env(), false));
    }

    #[test]
    fn a_missing_config_is_an_error() {
        let dir = project(&[]);
        insta::assert_snapshot!(doctor(dir.path(), &healthy_env(), false));
    }

    #[test]
    fn legacy_projects_get_every_finding_then_fixes() {
        let predict = "import warnings\nfrom cog import BasePredictor, Input\nfrom cog.types import ExperimentalFeatureWarning\nfrom pydantic import BaseModel, ConfigDict\n\nwarnings.filterwarnings(\"ignore\", category=ExperimentalFeatureWarning)\n\n\nclass Output(BaseModel):\n    model_config = ConfigDict(arbitrary_types_allowed=True)\n    text: str\n\n\nclass Predictor(BasePredictor):\n    def predict(self, text: str = Input(default=\"x\")):\n        return Output(text=text)\n";
        let dir = project(&[
            (
                "cog.yaml",
                "build:\n  python_version: \"3.11\"\n  gpu: true\n  python_packages:\n    - torch==2.0.0\npredict: \"predict.py:Predictor\"\n",
            ),
            ("predict.py", predict),
        ]);
        let env = Environment {
            runtime: Some(Err("`docker` is not installed (not found on PATH)".into())),
            python: Some(Ok("Python 3.12.3".into())),
            gpus: vec![(12, 0)],
        };
        insta::assert_snapshot!("legacy_report", doctor(dir.path(), &env, false));
        insta::assert_snapshot!("legacy_fix", doctor(dir.path(), &env, true));
        assert!(!dir.path().join("predict.py").exists());
        insta::assert_snapshot!(
            "legacy_fixed_run_py",
            fs_err::read_to_string(dir.path().join("run.py")).unwrap()
        );
        let config = fs_err::read_to_string(dir.path().join("cog.yaml")).unwrap();
        assert!(config.contains("run: \"run.py:Runner\""), "{config}");
    }

    #[test]
    fn a_reference_to_a_missing_class_lists_the_classes() {
        let dir = project(&[
            (
                "cog.yaml",
                "build:\n  python_version: \"3.12\"\nrun: \"run.py:Nope\"\n",
            ),
            (
                "run.py",
                "class Runner:\n    def run(self) -> str:\n        return ''\n",
            ),
        ]);
        insta::assert_snapshot!(doctor(dir.path(), &healthy_env(), false));
    }

    #[test]
    fn compute_capabilities_parse() {
        assert_eq!(parse_compute_caps("9.0\n12.0\n"), vec![(9, 0), (12, 0)]);
        assert!(parse_compute_caps("N/A\n").is_empty());
    }
}
