//! The default base is slim (no docs, man pages or translations; no `usrmerge`, perl or
//! `e2fsprogs`) and still a working Debian system: `build.run` steps on it run
//! `python -m pip --version` and `apt-get install` of a small package, and the package's docs
//! are left out by the dpkg rules the base keeps in `/etc/dpkg/dpkg.cfg.d/`. Needs runc and the
//! Debian archive (as the proxy serves it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{ok, require_tool};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// `COG_CA_CERT` for steps that download over HTTPS: this machine's extra certificates (the
/// HTTPS proxy's), when it has any.
fn ca_cert_dir() -> Option<&'static str> {
    let dir = "/usr/local/share/ca-certificates";
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "crt"))
        .then_some(dir)
}

/// The mirror apt on this machine uses, else the default (deb.debian.org).
fn machine_mirror() -> Option<String> {
    let text = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok()?;
    debian::archive::mirror_from_deb822(&text)
}

const STEPS: &[&str] = &[
    "python -m pip --version",
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends jq",
    "jq --version",
    // dpkg in the image applies the base's rules: jq's copyright is there, its docs and man
    // page are not.
    "test -f /etc/dpkg/dpkg.cfg.d/cog-slim && test -f /usr/share/doc/jq/copyright",
    "test ! -e /usr/share/man/man1/jq.1.gz && test ! -e /usr/share/doc/jq/README.md",
    // The base's own packages: docs left out, nothing of usrmerge, perl or e2fsprogs.
    "test ! -e /usr/share/man/man1/bash.1.gz && test -f /usr/share/doc/bash/copyright",
    "! dpkg -s usrmerge >/dev/null 2>&1 && ! dpkg -s perl >/dev/null 2>&1 && ! dpkg -s e2fsprogs >/dev/null 2>&1",
    "dpkg -s usr-is-merged python3-pip tini >/dev/null",
];

#[test]
fn pip_and_apt_get_install_work_on_the_slim_base() {
    require_tool("runc", "runc");
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let run: Vec<String> = STEPS.iter().map(|s| format!("    - {s:?}")).collect();
    std::fs::write(
        project.join("cog.yaml"),
        format!(
            "build:\n  python_version: \"3.11\"\n  run:\n{}\npredict: \"predict.py:Predictor\"\n",
            run.join("\n")
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("predict.py"),
        "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return 'ok'\n",
    )
    .unwrap();
    let output = build(&project, &work.path().join("cache"));
    let log = ok(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RUN python -m pip --version") && stderr.contains("RUN jq --version"),
        "{log}\n{stderr}"
    );
    assert!(stderr.contains("pip 23."), "{stderr}");
}

fn build(project: &Path, cache: &Path) -> std::process::Output {
    let mut cmd = Command::new(COG);
    cmd.current_dir(project)
        .args(["build", "--output", "image.tar"])
        .env("COG_CACHE_DIR", cache)
        .env("BUILDKIT_PROGRESS", "plain")
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(dir) = ca_cert_dir() {
        cmd.env("COG_CA_CERT", dir);
    }
    if let Some(mirror) = machine_mirror() {
        cmd.env("COG_APT_MIRROR", mirror);
    }
    cmd.output().unwrap()
}
