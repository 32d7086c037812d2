//! Lock files as a user and CI see them: `cog plan` writes nothing into the project (checked by
//! a checksum of the whole directory), `cog build` writes the lock, `--locked` fails when a
//! lock is missing or would change and `--frozen` uses the lock as it is, neither writing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use cog::oci::Platform;
use common::registry::{busybox_image, layout_of, temp_store};
use common::{failed, ok};

const COG: &str = env!("CARGO_BIN_EXE_cog");
const LOCK: &str = "cog-requirements.lock.json";

fn cog(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(COG)
        .args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Every file under `dir` (names, modes and contents): any write shows.
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .map(|e| {
            let meta = e.metadata().unwrap();
            let bytes = if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                (meta.permissions().mode(), bytes),
            )
        })
        .collect()
}

#[test]
fn plan_writes_nothing_and_locked_and_frozen_never_write() {
    let (base_dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), base_dir.path(), "latest");
    let base = format!("oci:{}:latest", layout.display());
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("locks");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("cog.yaml"),
        "build:\n  python_version: \"3.11\"\n  python_requirements: requirements.txt\npredict: \"predict.py:Predictor\"\n",
    )
    .unwrap();
    std::fs::write(project.join("requirements.txt"), "six==1.16.0\n").unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/predict.py"),
        project.join("predict.py"),
    )
    .unwrap();
    let cache = root.path().join("cache");
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--base", &base, "-t", "locks:1"];
        args.extend_from_slice(extra);
        cog(&project, &cache, &args)
    };
    let unchanged = |before: &BTreeMap<_, _>, what: &str| {
        assert!(snapshot(&project) == *before, "{what} changed the project");
    };

    // Looking writes nothing, with or without resolving.
    let start = snapshot(&project);
    ok(&cog(&project, &cache, &["plan", "--base", &base]));
    ok(&cog(
        &project,
        &cache,
        &["plan", "--json", "--resolve", "--base", &base],
    ));
    unchanged(&start, "cog plan");

    // No lock yet: --frozen and --locked refuse, naming the lock and the flag.
    let err = failed(&build(&["--frozen"]));
    assert!(err.contains(LOCK) && err.contains("--frozen"), "{err}");
    let err = failed(&build(&["--locked"]));
    assert!(err.contains(LOCK) && err.contains("--locked"), "{err}");
    unchanged(&start, "a refused build");

    // A plain build writes the lock; --locked then builds the same image without writing.
    let digest = ok(&build(&[]));
    let lock = std::fs::read_to_string(project.join(LOCK)).unwrap();
    assert!(
        lock.contains("\"six\"") && lock.contains("1.16.0"),
        "{lock}"
    );
    let locked = snapshot(&project);
    assert_eq!(ok(&build(&["--locked"])), digest);
    unchanged(&locked, "cog build --locked");
    ok(&cog(
        &project,
        &cache,
        &["plan", "--json", "--resolve", "--base", &base],
    ));
    unchanged(&locked, "cog plan with a lock");

    // Requirements change: --locked fails, --frozen builds from the old lock, both write nothing.
    std::fs::write(project.join("requirements.txt"), "six==1.17.0\n").unwrap();
    let edited = snapshot(&project);
    let err = failed(&build(&["--locked"]));
    assert!(err.contains("out of date"), "{err}");
    // (The digest differs: requirements.txt is in the source layer; the wheels are the lock's.)
    ok(&build(&["--frozen"]));
    unchanged(&edited, "--locked/--frozen after an edit");
    ok(&cog(&project, &cache, &["plan", "--base", &base]));
    unchanged(&edited, "cog plan after an edit");

    // A plain build updates the lock to the new inputs.
    let updated = ok(&build(&[]));
    assert_ne!(updated, digest);
    let lock = std::fs::read_to_string(project.join(LOCK)).unwrap();
    assert!(lock.contains("1.17.0"), "{lock}");
}
