//! The cog SDK and coglet wheels that go into every image, for the image's architecture.
//!
//! For each of the two, first hit wins:
//! 1. `COG_SDK_WHEEL` / `COGLET_WHEEL`, with Cog's values ([`source`]): `pypi[:VERSION]`
//!    (resolved from the package index for the image's Python and platform), an `http(s)://`
//!    URL, a wheel file or a directory of wheels (`dist`). With the SDK from PyPI and no
//!    `COGLET_WHEEL`, coglet is what the SDK depends on, as in Cog.
//! 2. The wheels built into this binary (a release build, [`embedded`]), written into the store
//!    and checked by hash.
//! 3. Only in a development build (nothing embedded): `dist/` of the source tree it was built
//!    from (`python/build-wheels.sh` writes them there).
//!
//! An image without the SDK, or without a coglet for its architecture (unless the SDK comes from
//! PyPI with its own dependencies), would have no prediction server: that is an error.
pub mod embedded;
pub mod source;

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use url::Url;
use wheels::filename::WheelFilename;
use wheels::{Arch, LockedPackage, Target};

use crate::session::Session;
use source::{Kind, WheelSource};

/// A runtime wheel could not be found or used; each names the variable or file involved.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeWheelError {
    #[error("{var}: path not found: {}", .path.display())]
    PathNotFound { var: &'static str, path: PathBuf },
    #[error("{var}: no wheel matching '{pattern}' found in {}", .dir.display())]
    NoWheelInDir {
        var: &'static str,
        pattern: &'static str,
        dir: PathBuf,
    },
    #[error("{var}: no wheel for platform {platform} found in {} (found {others} for other platforms)", .dir.display())]
    NoWheelForPlatform {
        var: &'static str,
        platform: &'static str,
        dir: PathBuf,
        others: usize,
    },
    #[error("{var}: multiple wheels matching '{pattern}' in {}: {} (specify the exact file path)", .dir.display(), .found.join(", "))]
    MultipleWheels {
        var: &'static str,
        pattern: &'static str,
        dir: PathBuf,
        found: Vec<String>,
    },
    #[error("{var}={}: not a wheel file name (name-version-tags.whl)", .path.display())]
    NotAWheel { var: &'static str, path: PathBuf },
    #[error("{var}={}: a wheel of `{found}`, not of `{expected}`", .path.display())]
    WrongPackage {
        var: &'static str,
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("{var}={}: a coglet wheel for another platform; the image is {platform}", .path.display())]
    WrongPlatform {
        var: &'static str,
        path: PathBuf,
        platform: &'static str,
    },
    #[error("{var}={url}: not a URL: {reason}")]
    BadUrl {
        var: &'static str,
        url: String,
        reason: String,
    },
    #[error("{var}={value}: not a version (pypi:X.Y.Z)")]
    BadVersion { var: &'static str, value: String },
    #[error("{var} version {version} is below the minimum required version {minimum}")]
    BelowMinimum {
        var: &'static str,
        version: String,
        minimum: &'static str,
    },
    #[error("{var}: not UTF-8")]
    NotUtf8 { var: &'static str },
    #[error("{}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Resolve {
        what: String,
        #[source]
        source: wheels::Error,
    },
    #[error("{what} for {platform}: the image would have no prediction server. {hint}")]
    Missing {
        what: &'static str,
        platform: &'static str,
        hint: String,
    },
}

/// The image platform of `arch`, as `--platform` writes it.
fn platform(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "linux/amd64",
        Arch::Aarch64 => "linux/arm64",
    }
}

/// The runtime wheels for `target` (the SDK first, then coglet, then what PyPI added).
pub fn find(session: &Session, target: &Target) -> Result<Vec<LockedPackage>, RuntimeWheelError> {
    let sdk = source::from_env(Kind::Sdk)?;
    let coglet = source::from_env(Kind::Coglet)?;
    choose(
        sdk,
        coglet,
        target.arch,
        &Defaults {
            store_root: session.store.root(),
            dist: (!embedded::any()).then(dev_dist),
        },
        |wanted| resolve_pypi(session, target, wanted),
    )
}

/// `dist/` of the source tree a development build was compiled in.
fn dev_dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

/// Where wheels come from when the environment names none.
struct Defaults<'a> {
    /// The store the embedded wheels are written into.
    store_root: &'a Path,
    /// `dist/` of the source tree (development builds only).
    dist: Option<PathBuf>,
}

fn choose(
    sdk: Option<WheelSource>,
    coglet: Option<WheelSource>,
    arch: Arch,
    defaults: &Defaults<'_>,
    resolve: impl FnOnce(&[(Kind, Option<String>)]) -> Result<Vec<LockedPackage>, RuntimeWheelError>,
) -> Result<Vec<LockedPackage>, RuntimeWheelError> {
    let sdk_from_pypi = matches!(sdk, Some(WheelSource::PyPi { .. }));
    let mut packages = Vec::new();
    let mut from_pypi = Vec::new();
    for (kind, source) in [(Kind::Sdk, sdk), (Kind::Coglet, coglet)] {
        match source {
            Some(WheelSource::PyPi { version }) => from_pypi.push((kind, version)),
            Some(WheelSource::Url(url)) => packages.push(url_wheel(kind, &url, arch)?),
            Some(WheelSource::Path(path)) => {
                let file = wheel_at(kind, &path, arch)?;
                packages.push(checked_wheel(kind, &file, arch)?);
            }
            // Cog: with the SDK from PyPI, coglet is resolved as its dependency.
            None if kind == Kind::Coglet && sdk_from_pypi => {}
            None => {
                if let Some(p) = default_wheel(kind, arch, defaults)? {
                    packages.push(p);
                }
            }
        }
    }
    if !from_pypi.is_empty() {
        // A coglet named by file or URL replaces the one the SDK depends on.
        let explicit_coglet = packages.iter().any(|p| p.name == "coglet");
        let resolved = resolve(&from_pypi)?;
        packages.extend(
            resolved
                .into_iter()
                .filter(|p| !(explicit_coglet && p.name == "coglet")),
        );
    }
    let hint = || missing_hint(defaults);
    if !packages.iter().any(|p| p.name == "cog") {
        return Err(RuntimeWheelError::Missing {
            what: "no cog SDK wheel",
            platform: platform(arch),
            hint: hint(),
        });
    }
    if !sdk_from_pypi && !packages.iter().any(|p| p.name == "coglet") {
        return Err(RuntimeWheelError::Missing {
            what: "no coglet wheel",
            platform: platform(arch),
            hint: hint(),
        });
    }
    for p in &packages {
        tracing::debug!(name = %p.name, version = %p.version, url = %p.url, "runtime wheel");
    }
    Ok(packages)
}

fn missing_hint(defaults: &Defaults<'_>) -> String {
    let set = "set COG_SDK_WHEEL / COGLET_WHEEL to a wheel file, a directory of wheels, a URL or pypi[:VERSION]";
    if let Some(dist) = &defaults.dist {
        return format!(
            "Build the wheels into {} with `bash python/build-wheels.sh` (with COGLET_TARGET=aarch64-unknown-linux-gnu for linux/arm64), or {set}.",
            dist.display()
        );
    }
    let carried: Vec<&str> = embedded::EMBEDDED_WHEELS
        .iter()
        .map(|w| w.filename)
        .collect();
    format!(
        "This cog carries {} (`cog --version`); {set}.",
        carried.join(", ")
    )
}

/// The embedded wheel, else (development builds) the one in `dist/` of this version.
fn default_wheel(
    kind: Kind,
    arch: Arch,
    defaults: &Defaults<'_>,
) -> Result<Option<LockedPackage>, RuntimeWheelError> {
    if let Some(wheel) = embedded::find(kind, arch) {
        let path = embedded::materialize(defaults.store_root, wheel)?;
        return locked_wheel(kind, &path).map(Some);
    }
    let Some(dist) = &defaults.dist else {
        return Ok(None);
    };
    let prefix = format!("{}-{}-", kind.package(), crate::VERSION);
    let suffix = match kind {
        Kind::Sdk => "py3-none-any.whl".to_owned(),
        Kind::Coglet => format!("{}.whl", arch.as_str()),
    };
    let Ok(entries) = std::fs::read_dir(dist) else {
        return Ok(None);
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|path| locked_wheel(kind, &path))
        .transpose()
}

/// The wheel a path names: the file itself, or the one wheel of `kind` (for `arch`) in a
/// directory; wheels of this version are preferred when a directory holds several.
fn wheel_at(kind: Kind, path: &Path, arch: Arch) -> Result<PathBuf, RuntimeWheelError> {
    let var = kind.var();
    let metadata = std::fs::metadata(path).map_err(|_| RuntimeWheelError::PathNotFound {
        var,
        path: path.to_path_buf(),
    })?;
    if !metadata.is_dir() {
        return Ok(path.to_path_buf());
    }
    let io = |source| RuntimeWheelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let prefix = format!("{}-", kind.package());
    let mut names: Vec<String> = fs_err::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && Path::new(n).extension().is_some_and(|e| e == "whl"))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(RuntimeWheelError::NoWheelInDir {
            var,
            pattern: kind.pattern(),
            dir: path.to_path_buf(),
        });
    }
    let all = names.len();
    if kind == Kind::Coglet {
        names.retain(|n| WheelFilename::parse(n).is_some_and(|w| fits(&w, arch)));
        if names.is_empty() {
            return Err(RuntimeWheelError::NoWheelForPlatform {
                var,
                platform: platform(arch),
                dir: path.to_path_buf(),
                others: all,
            });
        }
    }
    if names.len() > 1 {
        let ours = format!("{}{}-", prefix, crate::VERSION);
        let of_this_version: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(&ours))
            .cloned()
            .collect();
        if of_this_version.len() == 1 {
            names = of_this_version;
        }
    }
    match names.as_slice() {
        [one] => Ok(path.join(one)),
        _ => Err(RuntimeWheelError::MultipleWheels {
            var,
            pattern: kind.pattern(),
            dir: path.to_path_buf(),
            found: names,
        }),
    }
}

/// Whether a wheel's platform tags fit `arch` (`any`, or a tag for that machine).
fn fits(wheel: &WheelFilename, arch: Arch) -> bool {
    wheel
        .platform
        .iter()
        .any(|p| p == "any" || p.ends_with(&format!("_{}", arch.as_str())))
}

/// Checks that a wheel file is of `kind` (and, for coglet, of `arch`), then pins it.
fn checked_wheel(kind: Kind, path: &Path, arch: Arch) -> Result<LockedPackage, RuntimeWheelError> {
    let parsed = parse_filename(kind, path)?;
    check(kind, &parsed, path, arch)?;
    locked_wheel(kind, path)
}

fn parse_filename(kind: Kind, path: &Path) -> Result<WheelFilename, RuntimeWheelError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(WheelFilename::parse)
        .ok_or_else(|| RuntimeWheelError::NotAWheel {
            var: kind.var(),
            path: path.to_path_buf(),
        })
}

fn check(
    kind: Kind,
    parsed: &WheelFilename,
    shown: &Path,
    arch: Arch,
) -> Result<(), RuntimeWheelError> {
    if parsed.name.as_ref() != kind.package() {
        return Err(RuntimeWheelError::WrongPackage {
            var: kind.var(),
            path: shown.to_path_buf(),
            found: parsed.name.to_string(),
            expected: kind.package(),
        });
    }
    if kind == Kind::Coglet && !fits(parsed, arch) {
        return Err(RuntimeWheelError::WrongPlatform {
            var: kind.var(),
            path: shown.to_path_buf(),
            platform: platform(arch),
        });
    }
    Ok(())
}

/// A local wheel as a pinned package: name and version from its file name, hash computed.
fn locked_wheel(kind: Kind, path: &Path) -> Result<LockedPackage, RuntimeWheelError> {
    let io = |source| RuntimeWheelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let path = fs_err::canonicalize(path).map_err(io)?;
    let parsed = parse_filename(kind, &path)?;
    let filename = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let url = Url::from_file_path(&path).map_err(|()| RuntimeWheelError::NotAWheel {
        var: kind.var(),
        path: path.clone(),
    })?;
    let sha256 =
        wheels::index::sha256_file(&path).map_err(|source| RuntimeWheelError::Resolve {
            what: format!("hashing {}", path.display()),
            source,
        })?;
    let size = fs_err::metadata(&path).map_err(io)?.len();
    Ok(LockedPackage {
        name: parsed.name.to_string(),
        version: parsed.version.to_string(),
        filename,
        url: url.to_string(),
        sha256: Some(sha256),
        size: Some(size),
        ..LockedPackage::default()
    })
}

/// A wheel at a URL, pinned by name and version; its hash is taken when it is downloaded.
fn url_wheel(kind: Kind, url: &Url, arch: Arch) -> Result<LockedPackage, RuntimeWheelError> {
    let filename = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .map(percent_decode)
        .unwrap_or_default();
    let shown = PathBuf::from(url.as_str());
    let parsed = WheelFilename::parse(&filename).ok_or_else(|| RuntimeWheelError::NotAWheel {
        var: kind.var(),
        path: shown.clone(),
    })?;
    check(kind, &parsed, &shown, arch)?;
    Ok(LockedPackage {
        name: parsed.name.to_string(),
        version: parsed.version.to_string(),
        filename,
        url: url.to_string(),
        ..LockedPackage::default()
    })
}

/// `%XX` escapes of a URL path segment decoded (wheel names use `+` and `%2B` alike).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `cog[==VERSION]` and `coglet[==VERSION]` resolved from the package index (pip's
/// configuration, else PyPI) for the image's Python and platform, with their dependencies.
fn resolve_pypi(
    session: &Session,
    target: &Target,
    wanted: &[(Kind, Option<String>)],
) -> Result<Vec<LockedPackage>, RuntimeWheelError> {
    let mut requirements = wheels::Requirements::default();
    let mut names = Vec::new();
    for (kind, version) in wanted {
        let text = match version {
            Some(v) => format!("{}=={v}", kind.package()),
            None => kind.package().to_owned(),
        };
        let requirement = pep508_rs::Requirement::<Url>::from_str(&text).map_err(|_| {
            RuntimeWheelError::BadVersion {
                var: kind.var(),
                value: format!("pypi:{}", version.as_deref().unwrap_or_default()),
            }
        })?;
        if version
            .as_deref()
            .and_then(|v| v.parse::<pep508_rs::pep440_rs::Version>().ok())
            .is_some_and(|v| v.any_prerelease())
        {
            requirements.pre = true;
        }
        requirements.requirements.push(wheels::requirements::Entry {
            source: wheels::requirements::Source::Pep508(requirement),
            hashes: Vec::new(),
            origin: kind.var().to_owned(),
            text: text.clone(),
            editable: false,
        });
        names.push(format!("{text} ({})", kind.var()));
    }
    let options = wheels::ResolveOptions {
        reporter: session.reporter.clone(),
        ..wheels::ResolveOptions::default()
    };
    let lock = session
        .block_on(wheels::resolve_async(&requirements, target, &options))
        .map_err(|source| RuntimeWheelError::Resolve {
            what: format!("resolving {} from the package index", names.join(", ")),
            source,
        })?;
    Ok(lock.packages)
}

#[cfg(test)]
mod tests;
