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
pub mod users;

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

/// Copies a project fixture into place: the files git tracks under `from`, never what a user
/// or an earlier run left beside them (`.cog/`, an exported `hello.tar`). Outside a git
/// checkout (a source tarball) it copies the tree without `.cog/` and `*.tar`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let tracked = std::process::Command::new("git")
        .args(["ls-files", "-z", "--cached", "--", "."])
        .current_dir(from)
        .output()
        .ok()
        .filter(|out| out.status.success() && !out.stdout.is_empty());
    let files: Vec<std::path::PathBuf> = match tracked {
        Some(out) => out
            .stdout
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| std::path::PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            .collect(),
        None => untracked_fixture_files(from, std::path::Path::new("")),
    };
    for relative in files {
        let target = to.join(&relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&relative), &target)
            .unwrap_or_else(|e| panic!("copying {}: {e}", from.join(&relative).display()));
    }
    std::fs::create_dir_all(to).unwrap();
}

fn untracked_fixture_files(
    root: &std::path::Path,
    relative: &std::path::Path,
) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join(relative)).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let path = relative.join(&name);
        let kind = entry.file_type().unwrap();
        if kind.is_dir() && name != ".cog" {
            files.extend(untracked_fixture_files(root, &path));
        } else if kind.is_file() && !name.to_string_lossy().ends_with(".tar") {
            files.push(path);
        }
    }
    files
}

/// Deterministic incompressible bytes (xorshift from `seed`), so that layers keep their size.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
