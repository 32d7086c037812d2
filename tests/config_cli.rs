//! cog.yaml errors and warnings as a user sees them through the CLI (`cog plan`, which loads the
//! config without building anything).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;
use predicates::str::contains;

fn cog_plan(dir: &Path) -> assert_cmd::assert::Assert {
    Command::cargo_bin("cog")
        .unwrap()
        .current_dir(dir)
        .args(["plan", "--json"])
        .env("NO_COLOR", "1")
        .assert()
}

#[test]
fn config_not_found_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let expected = format!(
        "cog.yaml not found in {} (or in any parent directories)",
        dir.path().display()
    );
    cog_plan(dir.path()).failure().stderr(contains(expected));
}

#[test]
fn config_errors_are_all_reported_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cog.yaml"),
        "build:\n  python_version: \"3.9\"\nenvironment: [PATH=/x]\n",
    )
    .unwrap();
    let path = dir.path().join("cog.yaml");
    cog_plan(dir.path())
        .failure()
        .stderr(contains(format!(
            "{}: invalid build.python_version \"3.9\": minimum supported Python version is 3.10",
            path.display()
        )))
        .stderr(contains("invalid environment: environment variable \"PATH\" is not allowed: reserved for internal use"));
}

#[test]
fn config_yaml_errors_use_go_yaml_wording() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cog.yaml"), "build:\n  gpu: \"maybe\"\n").unwrap();
    cog_plan(dir.path()).failure().stderr(contains(
        "invalid YAML: yaml: construct errors:\n  line 2: cannot construct !!str `maybe` into bool",
    ));
}

#[test]
fn config_deprecation_warnings_are_printed_and_the_command_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cog.yaml"),
        "build:\n  python_version: \"3.12\"\n  python_packages: [numpy==2.0.0]\nrun: run.py:Runner\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("run.py"),
        "class Runner:\n    def run(self) -> str:\n        return \"x\"\n",
    )
    .unwrap();
    cog_plan(dir.path()).success().stderr(contains(
        "deprecated field \"build.python_packages\": use \"build.python_requirements\" instead",
    ));
}

#[test]
fn config_is_found_from_a_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cog.yaml"),
        "build:\n  python_version: \"3.9\"\n",
    )
    .unwrap();
    let sub = dir.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    cog_plan(&sub).failure().stderr(contains(format!(
        "{}: invalid build.python_version",
        dir.path().join("cog.yaml").display()
    )));
}

#[test]
fn version_names_the_cog_it_is_compatible_with_and_the_wheels() {
    let out = Command::cargo_bin("cog")
        .unwrap()
        .arg("--version")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "cog version {} (cog-rs, compatible with Cog {})",
            env!("CARGO_PKG_VERSION"),
            cog::schema::COG_VERSION
        )
    );
    // The tests are built without COG_EMBED_WHEELS_DIR: a development build, using dist/.
    let wheels = lines.next().unwrap();
    assert!(
        wheels.starts_with("embedded wheels: none (a development build: images get the wheels of ")
            && wheels.contains("/dist, or COG_SDK_WHEEL/COGLET_WHEEL)"),
        "{wheels}"
    );
}
