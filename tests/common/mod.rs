//! Test support shared by the integration tests: a real registry, a scriptable front proxy
//! (token auth, tampering) and a tiny busybox base image made with our own code.
#![allow(
    dead_code,
    clippy::missing_panics_doc,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod proxy;
pub mod registry;

/// Panics with a clear message when a tool the test needs is missing (CI installs them all).
pub fn require_tool(name: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    assert!(
        found,
        "this test needs `{name}` on PATH: install the Debian package `{package}` (apt-get install {package})"
    );
}

/// Runs a command and returns stdout; panics with stdout and stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {} failed ({}):\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The stdout of a command that must have succeeded; panics with its output otherwise.
pub fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "cog failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The stderr of a command that must have failed.
pub fn failed(output: &std::process::Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure, got success: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `build(extra_args)` runs `cog build --progress plain ...` on a cache that already holds the
/// image `digest`: built again, every layer comes from the store; with `--no-cache` every layer
/// is written again, to the same digest.
pub fn assert_warm_then_no_cache(build: impl Fn(&[&str]) -> std::process::Output, digest: &str) {
    let warm = build(&[]);
    let log = String::from_utf8_lossy(&warm.stderr).into_owned();
    assert_eq!(ok(&warm), digest);
    assert!(log.contains(", 0 built, "), "{log}");
    let rebuilt = build(&["--no-cache"]);
    let log = String::from_utf8_lossy(&rebuilt.stderr).into_owned();
    assert_eq!(ok(&rebuilt), digest);
    assert!(log.contains(" 0 cached)"), "{log}");
}

/// Copies a directory tree (a project fixture) into place.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
