//! The cog SDK and coglet wheels that go into every image: `COG_SDK_WHEEL`/`COGLET_WHEEL`, else
//! `dist/` of this repository (`python/build-wheels.sh` writes them there).
use std::path::{Path, PathBuf};

use wheels::{Arch, LockedPackage};

use super::ResolveError;

/// The SDK and coglet wheels for `arch`; `None` when neither is there.
pub fn find(arch: Arch) -> Result<Option<Vec<LockedPackage>>, ResolveError> {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let version = env!("CARGO_PKG_VERSION");
    let arch_tag = match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    };
    let sdk = from_env("COG_SDK_WHEEL")?
        .or_else(|| find_wheel(&dist, &format!("cog-{version}-"), "py3-none-any.whl"));
    let coglet = from_env("COGLET_WHEEL")?.or_else(|| {
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

fn from_env(var: &'static str) -> Result<Option<PathBuf>, ResolveError> {
    let Some(value) = std::env::var_os(var) else {
        return Ok(None);
    };
    let path = PathBuf::from(value);
    if !path.is_file() {
        return Err(ResolveError::RuntimeWheel {
            var,
            path,
            reason: "no such wheel file",
        });
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
fn locked_wheel(path: &Path) -> Result<LockedPackage, ResolveError> {
    let io = |source| ResolveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let path = fs_err::canonicalize(path).map_err(io)?;
    let not_a_wheel = || ResolveError::RuntimeWheel {
        var: "COG_SDK_WHEEL/COGLET_WHEEL",
        path: path.clone(),
        reason: "not a wheel file name (name-version-tags.whl)",
    };
    let filename = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(not_a_wheel)?
        .to_string();
    let parsed = wheels::filename::WheelFilename::parse(&filename).ok_or_else(not_a_wheel)?;
    let url = url::Url::from_file_path(&path).map_err(|()| not_a_wheel())?;
    let sha256 = wheels::index::sha256_file(&path).map_err(ResolveError::Requirements)?;
    let size = fs_err::metadata(&path).map_err(io)?.len();
    Ok(LockedPackage {
        name: parsed.name.to_string(),
        version: parsed.version.to_string(),
        filename,
        url: url.to_string(),
        sha256: Some(sha256),
        hashes: Vec::new(),
        size: Some(size),
        direct_url: None,
        build: None,
    })
}
