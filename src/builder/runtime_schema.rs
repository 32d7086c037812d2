//! The schema's runtime path (`LayerContent::RuntimeSchema`): what static evaluation could not
//! compute is read from the runner imported with the image's Python, in the sandbox, over the
//! layers built below the schema (see `schema::runtime`). The answers are cached by what they
//! can depend on: the layers below except the project's own (source, weights), every `.py`
//! file of the project, the questions, the interpreter and environment, and the script. A
//! rebuild that changes no Python file reuses them without starting anything.
use std::path::{Path, PathBuf};
use std::time::Instant;

use layers::{LayerInfo, LayerOptions};
use sha2::{Digest as _, Sha256};

use super::layer_steps::LayerOutcome;
use super::{BuildError, BuildOptions};
use crate::plan::{InlineFile, LayerContent, LayerStep};
use crate::sandbox::{self, Bind, RunStep, SandboxOptions};
use crate::schema::runtime::{self, Generated, SCRIPT};

/// Where the script, the query and the answers are in the container.
const WORK: &str = "/cog-schema";
/// Bump when the answers' meaning changes: old cache entries are then not read.
const CACHE_VERSION: &str = "cog-rs runtime schema 1";

/// What the step needs of the session.
pub(super) struct Ctx {
    pub store: layers::BlobStore,
    pub reporter: report::SharedReporter,
}

/// The completed schema and its layer.
pub(super) struct RuntimeSchema {
    pub document: String,
    pub label: String,
    pub outcome: LayerOutcome,
}

/// What the step runs over.
pub(super) struct Inputs {
    /// Every layer below the schema (base included).
    pub lower: Vec<LayerInfo>,
    /// Those the answers can depend on (not the project's source or weights: its Python files
    /// are hashed instead).
    pub keyed: Vec<LayerInfo>,
    pub env: Vec<(String, String)>,
    pub python: String,
    pub sandbox: SandboxOptions,
}

fn failed(reason: String) -> BuildError {
    BuildError::RuntimeSchema { reason }
}

/// Completes the schema of `step` (a `RuntimeSchema`) for the project in `project_dir`.
pub(super) fn complete(
    session: &Ctx,
    step: &LayerStep,
    project_dir: &Path,
    inputs: &Inputs,
    options: &BuildOptions,
) -> Result<RuntimeSchema, BuildError> {
    let LayerContent::RuntimeSchema {
        predict_ref,
        train_ref,
        ..
    } = &step.content
    else {
        unreachable!("runtime_schema::complete takes RuntimeSchema steps only");
    };
    let reporter = &session.reporter;
    let generated =
        runtime::generate_or_defer(project_dir, predict_ref.as_deref(), train_ref.as_deref())
            .map_err(|e| failed(e.to_string()))?;
    let (output, warnings) = match generated {
        Generated::Static(output) => (*output, Vec::new()),
        Generated::Runtime(deferred) => {
            let query = deferred.query();
            let key = cache_key(project_dir, &query, inputs)?;
            let cache = session
                .store
                .root()
                .join("schema-runtime")
                .join(format!("{key}.json"));
            let cached = (!options.no_cache)
                .then(|| fs_err::read_to_string(&cache).ok())
                .flatten();
            let text = if let Some(text) = cached {
                reporter.message(&format!(
                    "schema: {} value(s) read from the predictor in the image (cached)",
                    deferred.questions().count()
                ));
                text
            } else {
                let started = Instant::now();
                let text = ask_python(session, &query, inputs)?;
                reporter.message(&format!(
                    "schema: the predictor imported in the image for {} value(s) in {:.2}s",
                    deferred.questions().count(),
                    started.elapsed().as_secs_f64()
                ));
                store_answers(&cache, &text)?;
                text
            };
            let answers = runtime::parse_answers(&text).map_err(|e| failed(e.to_string()))?;
            deferred.complete(&answers).map_err(|e| {
                // A cached answer that no longer completes is not kept.
                let _ = fs_err::remove_file(&cache);
                failed(e.to_string())
            })?
        }
    };
    for warning in &warnings {
        reporter.warning(warning);
    }
    let outcome = layer(session, step, &output.document, options)?;
    Ok(RuntimeSchema {
        document: output.document,
        label: output.label,
        outcome,
    })
}

/// Runs [`SCRIPT`] in the sandbox; the answers' text.
fn ask_python(
    session: &Ctx,
    query: &serde_json::Value,
    inputs: &Inputs,
) -> Result<String, BuildError> {
    let io = |what: &str, e: std::io::Error| failed(format!("{what}: {e}"));
    let scratch = session.store.root().join("schema-runtime");
    fs_err::create_dir_all(&scratch).map_err(|e| io("schema-runtime directory", e))?;
    let work = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&scratch)
        .map_err(|e| io("schema-runtime work directory", e))?;
    fs_err::write(work.path().join("schema.py"), SCRIPT).map_err(|e| io("schema.py", e))?;
    fs_err::write(work.path().join("query.json"), query.to_string())
        .map_err(|e| io("query.json", e))?;
    let step = RunStep {
        command: format!(
            "{} {WORK}/schema.py {WORK}/query.json {WORK}/answers.json",
            shell_word(&inputs.python)
        ),
        env: inputs.env.clone(),
        workdir: "/src".to_string(),
        mounts: Vec::new(),
        network: false,
    };
    let binds = [Bind {
        source: work.path().to_path_buf(),
        target: WORK.to_string(),
    }];
    let reporter = session.reporter.clone();
    sandbox::run_command(
        &session.store,
        &inputs.lower,
        &step,
        &binds,
        &inputs.sandbox,
        &mut |line| reporter.output("openapi-schema", line),
    )
    .map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        failed(format!(
            "importing the predictor in the image to read its schema: {text}"
        ))
    })?;
    fs_err::read_to_string(work.path().join("answers.json"))
        .map_err(|e| io("the schema script wrote no answers", e))
}

/// Temp file + rename: a cache entry is whole or absent.
fn store_answers(path: &Path, text: &str) -> Result<(), BuildError> {
    let write = || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| {
        failed(format!(
            "caching the schema answers in {}: {e}",
            path.display()
        ))
    })
}

/// The answers' cache key (see the module docs).
fn cache_key(
    project_dir: &Path,
    query: &serde_json::Value,
    inputs: &Inputs,
) -> Result<String, BuildError> {
    let mut hash = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hash.update(name.as_bytes());
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value);
    };
    field("version", CACHE_VERSION.as_bytes());
    field("script", SCRIPT.as_bytes());
    field("query", query.to_string().as_bytes());
    field("python", inputs.python.as_bytes());
    for (k, v) in &inputs.env {
        field("env", format!("{k}={v}").as_bytes());
    }
    field("platform", inputs.sandbox.platform.to_string().as_bytes());
    for layer in &inputs.keyed {
        field("layer", layer.diff_id.to_string().as_bytes());
    }
    let runners = runners(query);
    for (path, digest) in python_files(project_dir, &runners)? {
        field("file", path.as_bytes());
        field("sha256", &digest);
    }
    Ok(hex(&hash.finalize()))
}

/// The runners the query imports: (file relative to the project, class or function name).
fn runners(query: &serde_json::Value) -> Vec<(String, String)> {
    query["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["ref"].as_str())
        .filter_map(|r| r.rsplit_once(':'))
        .map(|(file, name)| (file.trim_start_matches("./").to_string(), name.to_string()))
        .collect()
}

/// Every `.py` file of the project (relative path, content hash), sorted; dot-directories and
/// `__pycache__` are skipped. A runner's file is hashed without its runner's method bodies
/// (`without_runner_bodies`): importing it never runs them, so editing them keeps the answers.
fn python_files(
    project_dir: &Path,
    runners: &[(String, String)],
) -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(project_dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir()
                    && e.file_name()
                        .to_str()
                        .is_none_or(|n| n.starts_with('.') || n == "__pycache__"))
        });
    for entry in walker {
        let entry =
            entry.map_err(|e| failed(format!("listing the project's Python files: {e}")))?;
        if !entry.file_type().is_file() || entry.path().extension().is_none_or(|e| e != "py") {
            continue;
        }
        let bytes = fs_err::read(entry.path())
            .map_err(|e| failed(format!("hashing the project's Python files: {e}")))?;
        let rel: PathBuf = entry
            .path()
            .strip_prefix(project_dir)
            .unwrap_or(entry.path())
            .to_path_buf();
        let rel = rel.to_string_lossy().replace('\\', "/");
        let import_text = std::str::from_utf8(&bytes).ok().and_then(|text| {
            runners
                .iter()
                .filter(|(file, _)| *file == rel)
                .try_fold(text.to_string(), |text, (_, name)| {
                    runtime::without_runner_bodies(&text, name)
                })
        });
        let digest = match import_text {
            Some(text) => Sha256::new()
                .chain_update(b"import text\n")
                .chain_update(text.as_bytes())
                .finalize(),
            None => Sha256::digest(&bytes),
        };
        files.push((rel, digest.to_vec()));
    }
    files.sort();
    Ok(files)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `text` as one word for `/bin/sh`.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The schema file's layer, cached by content like any file layer.
fn layer(
    session: &Ctx,
    step: &LayerStep,
    document: &str,
    options: &BuildOptions,
) -> Result<LayerOutcome, BuildError> {
    let files = LayerStep {
        content: LayerContent::Files {
            files: vec![InlineFile {
                path: "/src/.cog/openapi_schema.json".into(),
                mode: 0o644,
                contents: document.to_string(),
                link: None,
            }],
        },
        ..step.clone()
    };
    let mut built = super::layer_steps::build_step(
        &files,
        Path::new("."),
        &session.store,
        &LayerOptions::new(options.compression),
        options.no_cache,
        None,
        &session.reporter,
    )?;
    built
        .pop()
        .ok_or_else(|| failed("the schema layer was not built".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_python_files_outside_dot_directories_are_keyed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("pkg/__pycache__")).unwrap();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        std::fs::write(p.join("predict.py"), "a").unwrap();
        std::fs::write(p.join("pkg/helpers.py"), "b").unwrap();
        std::fs::write(p.join("pkg/__pycache__/helpers.py"), "c").unwrap();
        std::fs::write(p.join(".git/x.py"), "d").unwrap();
        std::fs::write(p.join("weights.bin"), "e").unwrap();
        let files: Vec<String> = python_files(p, &[])
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(files, ["pkg/helpers.py", "predict.py"]);
    }

    #[test]
    fn an_edit_inside_predict_keeps_the_key_and_one_outside_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let query = serde_json::json!({"entries": [{"ref": "predict.py:Predictor"}]});
        let key = |text: &str| {
            std::fs::write(p.join("predict.py"), text).unwrap();
            python_files(p, &runners(&query)).unwrap()
        };
        let src = "X = 1\nclass Predictor:\n    def predict(self, a: int = X) -> int:\n        return a\n";
        let before = key(src);
        assert_eq!(key(&src.replace("return a", "return a + 1")), before);
        assert_ne!(key(&src.replace("X = 1", "X = 2")), before);
        // Another file, or no runner in it: the whole text counts.
        let other = serde_json::json!({"entries": [{"ref": "other.py:Predictor"}]});
        std::fs::write(p.join("predict.py"), src).unwrap();
        let whole = python_files(p, &runners(&other)).unwrap();
        std::fs::write(
            p.join("predict.py"),
            src.replace("return a", "return a + 1"),
        )
        .unwrap();
        assert_ne!(python_files(p, &runners(&other)).unwrap(), whole);
    }

    #[test]
    fn interpreter_paths_are_quoted_when_needed() {
        assert_eq!(
            shell_word("/usr/local/bin/python3.11"),
            "/usr/local/bin/python3.11"
        );
        assert_eq!(shell_word("/opt/my python"), "'/opt/my python'");
    }
}
