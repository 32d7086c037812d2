//! Helpers shared by the integration tests: a uv install of its own, the requirement sets.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `tests/wheels/` at the repository root.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/wheels")
}

/// The uv binary: `$COG_TEST_UV`, else a venv under /tmp that this helper creates with pip
/// (`python3 -m venv /tmp/cog-test-uv && /tmp/cog-test-uv/bin/pip install uv`).
pub fn uv() -> PathBuf {
    static UV: OnceLock<PathBuf> = OnceLock::new();
    UV.get_or_init(|| {
        if let Some(p) = std::env::var_os("COG_TEST_UV") {
            return PathBuf::from(p);
        }
        let venv = Path::new("/tmp/cog-test-uv");
        let bin = venv.join("bin/uv");
        if !bin.exists() {
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(venv)
                .status()
                .is_ok_and(|s| s.success())
                && Command::new(venv.join("bin/pip"))
                    .args(["install", "-q", "uv"])
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(ok, "could not install uv into {}", venv.display());
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

pub mod server;
