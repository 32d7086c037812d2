//! The schema's runtime path end to end (issue 17): each fixture of
//! `tests/schema_fixtures/runtime/` (computed choices and defaults, an unannotated `predict`),
//! which the static generator refuses, is built by `cog build` (its schema read from the
//! predictor imported in the image, in the sandbox), carries the expected schema
//! (`tests/schema_fixtures/snapshots/runtime__*`) as its file and label, and answers
//! predictions with `cog run --runtime runc` (inputs validated against that schema after the
//! build). Also: a rebuild that changes no Python file does not run Python again, and
//! `--openapi-schema FILE` still wins. `seed: int = Input(default=None)` is omitted and set.
//!
//! Needs runc, the wheels in `dist/` (`python/build-wheels.sh`, or `COG_SDK_WHEEL` and
//! `COGLET_WHEEL`), and the network for Debian packages on a cold cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_dir, failed, ok, require_tool};

const COG: &str = env!("CARGO_BIN_EXE_cog");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schema_runtime_e2e-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cog(dir: &Path, args: &[&str]) -> Output {
    Command::new(COG)
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache())
        .env("COG_NO_LOAD", "1")
        .env_remove("COG_RUNTIME")
        .env_remove("COG_OPENAPI_SCHEMA")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(name);
    copy_dir(
        &Path::new(ROOT)
            .join("tests/schema_fixtures/runtime")
            .join(name),
        &dir,
    );
    (root, dir)
}

/// The expected document: the snapshot `tests/schema_runtime.rs` checks.
fn expected(name: &str) -> String {
    let text = std::fs::read_to_string(Path::new(ROOT).join(format!(
        "tests/schema_fixtures/snapshots/runtime__{name}.snap"
    )))
    .unwrap();
    // The snapshot's header ends with the second `---` line.
    text.splitn(3, "---\n")
        .nth(2)
        .unwrap()
        .trim_end()
        .to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `cog run` arguments and the output they must print.
type Runs = Vec<(Vec<&'static str>, &'static str)>;

#[test]
fn fixtures_build_with_the_schema_read_at_runtime_and_answer_predictions() {
    require_tool("runc", "runc");
    let cases: [(&str, Runs); 4] = [
        (
            "schedulers_dict",
            vec![
                (
                    vec!["-i", "prompt=a cat"],
                    "a cat with DDIMScheduler in 50 steps, seed None",
                ),
                (
                    vec![
                        "-i",
                        "prompt=a dog",
                        "-i",
                        "scheduler=EulerAncestralDiscreteScheduler",
                        "-i",
                        "seed=7",
                    ],
                    "a dog with EulerAncestralDiscreteScheduler in 30 steps, seed 7",
                ),
            ],
        ),
        (
            "sorted_languages_file",
            vec![(vec!["-i", "text=hi", "-i", "language=ja"], "Japanese: hi")],
        ),
        (
            "helper_default",
            vec![
                (vec!["-i", "quality=80"], "512px as webp at 80"),
                (
                    vec!["-i", "output_format=png", "-i", "quality=5"],
                    "512px as png at 5",
                ),
            ],
        ),
        ("unannotated_predict", vec![(vec![], "hello world")]),
    ];
    for (name, runs) in cases {
        let (_root, dir) = project(name);
        let built = cog(&dir, &["build", "-t", &format!("schema-runtime-{name}")]);
        let log = stderr(&built);
        ok(&built);
        assert!(
            log.contains("cannot be computed statically")
                && (log.contains("the predictor imported in the image for")
                    || log.contains("read from the predictor in the image (cached)")),
            "{name}: the build says which path it took and why:\n{log}"
        );
        for (inputs, want) in runs {
            let mut args = vec!["run", "--runtime", "runc"];
            args.extend(inputs.iter().copied());
            let output = cog(&dir, &args);
            assert_eq!(ok(&output), want, "{name} {inputs:?}");
        }
        // `cog run` writes the image's schema where the server reads it.
        let written = std::fs::read_to_string(dir.join(".cog/openapi_schema.json")).unwrap();
        assert_eq!(written, expected(name), "{name}: the schema in the image");
    }
}

#[test]
fn inputs_are_checked_against_the_runtime_schema_and_answers_are_cached() {
    require_tool("runc", "runc");
    let (_root, dir) = project("schedulers_dict");
    ok(&cog(&dir, &["build"]));
    // A choice the runtime schema does not list is refused before any prediction.
    let refused = cog(
        &dir,
        &[
            "run",
            "--runtime",
            "runc",
            "-i",
            "prompt=x",
            "-i",
            "scheduler=PNDM",
        ],
    );
    assert!(
        failed(&refused).contains("must be one of: DDIMScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler"),
        "{}",
        stderr(&refused)
    );
    // A rebuild that changes no Python file reuses the answers.
    std::fs::write(dir.join("README.md"), "notes\n").unwrap();
    let rebuilt = cog(&dir, &["build"]);
    ok(&rebuilt);
    assert!(
        stderr(&rebuilt).contains("read from the predictor in the image (cached)"),
        "{}",
        stderr(&rebuilt)
    );
    // An edit inside `predict`'s body (a code-only change) reuses them too: importing the
    // module never runs it.
    let src = std::fs::read_to_string(dir.join("predict.py")).unwrap();
    std::fs::write(
        dir.join("predict.py"),
        src.replace("return f\"{prompt}", "return f\"{prompt}!"),
    )
    .unwrap();
    let edited = cog(&dir, &["build"]);
    ok(&edited);
    assert!(
        stderr(&edited).contains("read from the predictor in the image (cached)"),
        "{}",
        stderr(&edited)
    );
    // A change outside the runner's method bodies asks again.
    // Unique to this run: the answers cache outlives test runs.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(
        dir.join("predict.py"),
        format!("{src}\n# changed {nanos}\n"),
    )
    .unwrap();
    let asked = cog(&dir, &["build"]);
    ok(&asked);
    assert!(
        stderr(&asked).contains("the predictor imported in the image for 1 value(s) in"),
        "{}",
        stderr(&asked)
    );
    // `--openapi-schema FILE` still overrides both paths.
    let given = dir.join("given.json");
    std::fs::write(&given, expected("unannotated_predict")).unwrap();
    let overridden = cog(
        &dir,
        &["build", "--openapi-schema", given.to_str().unwrap()],
    );
    ok(&overridden);
    assert!(
        !stderr(&overridden).contains("cannot be computed statically"),
        "{}",
        stderr(&overridden)
    );
}

#[test]
fn an_import_that_fails_in_the_image_fails_the_build_naming_it() {
    require_tool("runc", "runc");
    let (_root, dir) = project("schedulers_dict");
    std::fs::write(
        dir.join("schedulers/__init__.py"),
        "import not_installed_anywhere\n\nALL = not_installed_anywhere.SCHEDULERS\n",
    )
    .unwrap();
    let output = cog(&dir, &["build"]);
    let text = failed(&output);
    assert!(
        text.contains("ModuleNotFoundError") && text.contains("not_installed_anywhere"),
        "{text}"
    );
    assert!(text.contains("--openapi-schema"), "{text}");
}
