//! Helpers shared by the integration tests: a uv install of its own, the requirement sets.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `tests/wheels/` at the repository root.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/wheels")
}

/// The uv binary: `$COG_TEST_UV`, else a venv at /tmp/cog-test-uv that this helper creates with
/// pip from PyPI (`python3 -m venv` + `pip install uv`). Tests run as separate processes, so the
/// venv is made under a name of this process's own and renamed into place: the first one
/// there wins and the others use it.
pub fn uv() -> PathBuf {
    static UV: OnceLock<PathBuf> = OnceLock::new();
    UV.get_or_init(|| {
        if let Some(p) = std::env::var_os("COG_TEST_UV") {
            return PathBuf::from(p);
        }
        let venv = Path::new("/tmp/cog-test-uv");
        let bin = venv.join("bin/uv");
        if !bin.exists() {
            let staging = PathBuf::from(format!("/tmp/cog-test-uv.{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&staging)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(staging.join("bin/pip"))
                    .args(["install", "-q", "uv"])
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(
                ok,
                "could not install uv from PyPI into {} (python3 -m venv, pip install uv)",
                staging.display()
            );
            // `bin/uv` is a native binary: it works from the renamed directory.
            if std::fs::rename(&staging, venv).is_err() {
                let _ = std::fs::remove_dir_all(&staging);
            }
            assert!(
                bin.exists(),
                "no uv at {} after installing it",
                bin.display()
            );
        }
        bin
    })
    .clone()
}

/// `name==version` pairs from pip-compile style output (comments, options and extras dropped;
/// names normalized).
pub fn parse_pins(text: &str) -> Vec<(String, String)> {
    let mut pins: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('-'))
        .filter_map(|l| {
            let (name, version) = l.split_once("==")?;
            let name = name
                .split('[')
                .next()?
                .trim()
                .to_ascii_lowercase()
                .replace(['_', '.'], "-");
            let version = version.split([' ', ';']).next()?.trim().to_string();
            Some((name, version))
        })
        .collect();
    pins.sort();
    pins
}

pub mod builder;
pub mod server;
