//! `--progress json`: every line the CLI writes to stderr is a JSON object (progress events,
//! warnings, log lines and the final error alike), and stdout carries only the result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

fn cog(dir: &Path, cache: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("cog")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .env("COG_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("BUILDKIT_PROGRESS")
        .output()
        .unwrap()
}

/// Every stderr line, parsed; fails on the first line that is not a JSON object.
fn events(output: &std::process::Output) -> Vec<serde_json::Value> {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    stderr
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{stderr}"));
            assert!(value.is_object(), "not a JSON object: {line}");
            value
        })
        .collect()
}

fn kinds(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["event"].as_str()).collect()
}

#[test]
fn a_build_writes_only_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // `predict:` is deprecated: the build warns, in JSON too.
    std::fs::write(
        dir.path().join("cog.yaml"),
        "predict: \"predict.py:Predictor\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("predict.py"),
        "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self, text: str) -> str:\n        return text\n",
    )
    .unwrap();
    let output = cog(
        dir.path(),
        cache.path(),
        &[
            "build",
            "--base",
            "scratch",
            "-t",
            "json-progress",
            "--progress",
            "json",
        ],
    );
    let events = events(&output);
    assert!(output.status.success(), "{events:#?}");
    let kinds = kinds(&events);
    for wanted in ["warning", "message", "start", "done"] {
        assert!(kinds.contains(&wanted), "no {wanted} event in {kinds:?}");
    }
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.trim().starts_with("sha256:") && stdout.lines().count() == 1,
        "{stdout:?}"
    );
}

#[test]
fn a_failure_is_a_json_error_event() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cog.yaml"),
        "build:\n  python_version: \"3.9\"\n",
    )
    .unwrap();
    let output = cog(dir.path(), cache.path(), &["build", "--progress", "json"]);
    assert!(!output.status.success());
    let events = events(&output);
    let last = events.last().expect("an error event");
    assert_eq!(last["event"], "error", "{events:#?}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("minimum supported Python version is 3.10"),
        "{last}"
    );
}
