//! Resolving the project's Python packages before planning, and finding the cog runtime wheels
//! (SDK + coglet) this repository builds.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use wheels::{Arch, Libc, LockedPackage, Target};

use crate::config::Config;
use crate::plan::PythonLayout;

/// The glibc of the bases we know: Debian bookworm (python:3.1x-slim, our assembled 3.10/3.11
/// base) has 2.36. Wheels for older manylinux tags install on it; newer ones are not chosen.
pub const DEFAULT_GLIBC: (u16, u16) = (2, 36);

/// The wheel target for `platform` (`linux/amd64`, `linux/arm64`).
pub fn target(python_version: &str, platform: &str, glibc: (u16, u16)) -> Result<Target> {
    let arch = match platform.split('/').nth(1) {
        Some("amd64" | "x86_64") => Arch::X86_64,
        Some("arm64" | "aarch64") => Arch::Aarch64,
        other => bail!(
            "--platform {platform}: Python wheels are resolved for linux/amd64 and linux/arm64, not {other:?}"
        ),
    };
    Ok(Target::new(
        python_version,
        arch,
        Libc::Glibc(glibc.0, glibc.1),
    )?)
}

/// Resolves `build.python_requirements` (or the deprecated `build.python_packages`) for the
/// image, reusing the lock next to cog.yaml while the inputs are unchanged.
pub fn resolve(
    dir: &Path,
    config: &Config,
    target: &Target,
    upgrade: bool,
) -> Result<Vec<LockedPackage>> {
    let requirements = if let Some(file) = &config.build.python_requirements {
        let path = dir.join(file);
        wheels::requirements::parse_file(
            &path,
            &wheels::requirements::ParseOptions {
                project_dir: Some(dir.to_path_buf()),
            },
        )?
    } else if !config.build.python_packages.is_empty() {
        wheels::requirements::from_packages(&config.build.python_packages, dir)?
    } else {
        return Ok(Vec::new());
    };
    for warning in &requirements.warnings {
        eprintln!("⚠ {warning}");
    }
    let options = wheels::ResolveOptions {
        upgrade,
        ..wheels::ResolveOptions::default()
    };
    let lock_path = dir.join(wheels::lock::LOCK_FILE_NAME);
    let (lock, reused) = wheels::resolve_locked(&lock_path, &requirements, target, &options)
        .with_context(|| format!("resolving the Python requirements of {}", dir.display()))?;
    tracing::debug!(packages = lock.packages.len(), reused, "python packages");
    Ok(lock.packages)
}

/// The SDK and coglet wheels: `COG_SDK_WHEEL`/`COGLET_WHEEL`, else `dist/` of this repository
/// (`python/build-wheels.sh` writes them there). `None` when neither is there: the image then
/// has no server, and the CLI says so.
pub fn runtime_wheels(arch: Arch) -> Result<Option<Vec<LockedPackage>>> {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let version = env!("CARGO_PKG_VERSION");
    let arch_tag = match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    };
    let sdk = wheel_from_env("COG_SDK_WHEEL")?
        .or_else(|| find_wheel(&dist, &format!("cog-{version}-"), "py3-none-any.whl"));
    let coglet = wheel_from_env("COGLET_WHEEL")?.or_else(|| {
        find_wheel(
            &dist,
            &format!("coglet-{version}-"),
            &format!("{arch_tag}.whl"),
        )
    });
    match (sdk, coglet) {
        (Some(sdk), Some(coglet)) => Ok(Some(vec![locked_wheel(&sdk)?, locked_wheel(&coglet)?])),
        _ => Ok(None),
    }
}

fn wheel_from_env(var: &str) -> Result<Option<PathBuf>> {
    let Some(value) = std::env::var_os(var) else {
        return Ok(None);
    };
    let path = PathBuf::from(value);
    if !path.is_file() {
        bail!("{var}={}: no such wheel file", path.display());
    }
    Ok(Some(path))
}

fn find_wheel(dir: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    found.sort();
    found.pop()
}

/// A local wheel as a pinned package: name and version from its file name, hash computed.
fn locked_wheel(path: &Path) -> Result<LockedPackage> {
    let path = fs_err::canonicalize(path)?;
    let filename = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let Some(parsed) = wheels::filename::WheelFilename::parse(&filename) else {
        bail!(
            "{}: not a wheel file name (name-version-tags.whl)",
            path.display()
        );
    };
    let url = url::Url::from_file_path(&path)
        .map_err(|()| anyhow::anyhow!("{}: not an absolute path", path.display()))?;
    Ok(LockedPackage {
        name: parsed.name.to_string(),
        version: parsed.version.to_string(),
        filename,
        url: url.to_string(),
        sha256: Some(wheels::index::sha256_file(&path)?),
        hashes: Vec::new(),
        size: Some(fs_err::metadata(&path)?.len()),
        direct_url: None,
    })
}

/// Where Python is in a base: Debian's layout for our assembled bases, the official image's
/// layout otherwise.
pub fn layout_for(python_version: &str, assembled: bool) -> PythonLayout {
    if assembled {
        PythonLayout::debian(python_version)
    } else {
        PythonLayout::python_slim(python_version)
    }
}
