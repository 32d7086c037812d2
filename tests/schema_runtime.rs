//! The schema's runtime path without an image (issue 17): the fixtures of
//! `tests/schema_fixtures/runtime/` (computed choices and defaults, an unannotated `predict`)
//! are refused by the static generator, become questions, and are answered by the schema
//! script run with this machine's Python and this repository's `cog` SDK (`python/`), as the
//! build runs it in the image; the completed documents are insta snapshots
//! (`tests/schema_fixtures/snapshots/runtime__*`). `tests/schema_runtime_e2e.rs` builds the
//! same fixtures into images and runs predictions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::{Path, PathBuf};
use std::process::Command;

use cog::schema::runtime::{Generated, SCRIPT, generate_or_defer, parse_answers};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(Path::new(ROOT).join("tests/schema_fixtures").join(kind))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
    dirs.sort();
    dirs
}

fn predict_ref(dir: &Path) -> String {
    let yaml = std::fs::read_to_string(dir.join("cog.yaml")).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    doc.get("run")
        .or_else(|| doc.get("predict"))
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned()
}

fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// Runs the schema script as the build does, with the host's Python and `python/` on the path.
fn ask_host_python(dir: &Path, query: &serde_json::Value) -> serde_json::Value {
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("schema.py");
    let query_path = work.path().join("query.json");
    let answers = work.path().join("answers.json");
    std::fs::write(&script, SCRIPT).unwrap();
    std::fs::write(&query_path, query.to_string()).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&query_path)
        .arg(&answers)
        .arg(dir)
        .current_dir(dir)
        .env("PYTHONPATH", Path::new(ROOT).join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_answers(&std::fs::read_to_string(&answers).unwrap()).unwrap()
}

#[test]
fn runtime_fixtures_are_refused_statically_and_completed_by_python() {
    let dirs = fixtures("runtime");
    assert_eq!(dirs.len(), 4, "the four failure shapes of issue 17");
    for dir in dirs {
        let reference = predict_ref(&dir);
        let strict = cog::schema::generate(&dir, Some(&reference), None);
        assert!(
            strict.is_err(),
            "{}: the static path answers it",
            dir.display()
        );
        let Generated::Runtime(deferred) = generate_or_defer(&dir, Some(&reference), None)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        else {
            panic!("{}: no question for Python", dir.display());
        };
        let answers = ask_host_python(&dir, &deferred.query());
        let (out, warnings) = deferred
            .complete(&answers)
            .unwrap_or_else(|e| panic!("{}: {e}\nanswers: {answers}", dir.display()));
        assert_eq!(out.label, out.document);
        assert_eq!(
            warnings.len(),
            usize::from(name(&dir) == "unannotated_predict"),
            "{warnings:?}"
        );
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(Path::new(ROOT).join("tests/schema_fixtures/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!(format!("runtime__{}", name(&dir)), out.document));
    }
}

/// The error fixtures whose only problem is a value static evaluation cannot compute go to
/// the runtime path; the others (syntax, types, constraints) stay errors.
#[test]
fn only_uncomputable_values_are_deferred() {
    let deferred: Vec<String> = fixtures("errors")
        .into_iter()
        .filter(|dir| {
            let Ok(text) = std::fs::read_to_string(dir.join("cog.yaml")) else {
                return false;
            };
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
            let get = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let (predict, train) = (get("run").or_else(|| get("predict")), get("train"));
            match generate_or_defer(dir, predict.as_deref(), train.as_deref()) {
                Ok(Generated::Runtime(_)) => true,
                Ok(Generated::Static(_)) => panic!("{}: no error", dir.display()),
                Err(e) => {
                    // The same error as the static generator's.
                    let strict = cog::schema::generate(dir, predict.as_deref(), train.as_deref());
                    assert_eq!(Err(e), strict.map(|_| ()), "{}", dir.display());
                    false
                }
            }
        })
        .map(|d| name(&d))
        .collect();
    assert_eq!(
        deferred,
        [
            "choices_not_resolvable",
            "constant_assigned_in_block",
            "default_not_resolvable",
            "description_not_resolvable",
            "helper_outside_project",
            "missing_return_type",
            "unresolvable_input_default",
        ]
    );
}

/// Where the static pass answers everything, the build's entry (`generate_or_defer`) gives
/// the very document `generate` gives (the snapshots of `tests/schema.rs`).
#[test]
fn static_fixtures_give_the_same_document_through_the_build_path() {
    for dir in fixtures("ok") {
        let yaml = std::fs::read_to_string(dir.join("cog.yaml")).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let get = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let (predict, train) = (get("run").or_else(|| get("predict")), get("train"));
        let expected = cog::schema::generate(&dir, predict.as_deref(), train.as_deref()).unwrap();
        match generate_or_defer(&dir, predict.as_deref(), train.as_deref()) {
            Ok(Generated::Static(out)) => {
                assert_eq!(out.document, expected.document, "{}", dir.display());
                assert_eq!(out.label, expected.label, "{}", dir.display());
                assert_eq!(out.concurrency_max, expected.concurrency_max);
                assert_eq!(out.run_is_async, expected.run_is_async);
            }
            Ok(Generated::Runtime(_)) => panic!("{}: deferred", dir.display()),
            Err(e) => panic!("{}: {e}", dir.display()),
        }
    }
}
