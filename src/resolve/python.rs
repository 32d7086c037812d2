//! The project's Python packages: `build.python_requirements` (or the deprecated
//! `build.python_packages`) resolved for the image's Python and platform, pinned by
//! `cog-requirements.lock.json`.
use std::path::Path;
use std::sync::Arc;

use wheels::{Arch, Libc, LockedPackage, SdistBuilder, Target};

use super::lockfile;
use super::{Options, ResolveError};
use crate::base::{BaseImage, Fetcher};
use crate::config::Config;
use crate::plan::PythonLayout;
use crate::sandbox::SandboxOptions;
use crate::session::Session;
use crate::source_build::{BaseWithPackages, SandboxSdistBuilder};

/// The glibc of the bases we know: Debian bookworm (python:3.1x-slim, our assembled 3.10/3.11
/// base) has 2.36. Wheels for older manylinux tags install on it; newer ones are not chosen.
pub const DEFAULT_GLIBC: (u16, u16) = (2, 36);

/// The wheel target for `platform` (`linux/amd64`, `linux/arm64`).
pub fn target(python_version: &str, platform: &str) -> Result<Target, ResolveError> {
    let arch = match platform.split('/').nth(1) {
        Some("amd64" | "x86_64") => Arch::X86_64,
        Some("arm64" | "aarch64") => Arch::Aarch64,
        _ => {
            return Err(ResolveError::Platform {
                platform: platform.to_owned(),
                reason: "Python wheels are resolved for linux/amd64 and linux/arm64",
            });
        }
    };
    let (major, minor) = DEFAULT_GLIBC;
    Target::new(python_version, arch, Libc::Glibc(major, minor)).map_err(ResolveError::Target)
}

/// The project's requirements, or `None` when it declares none.
fn requirements(dir: &Path, config: &Config) -> Result<Option<wheels::Requirements>, ResolveError> {
    let requirements = if let Some(file) = &config.build.python_requirements {
        wheels::requirements::parse_file(
            &dir.join(file),
            &wheels::requirements::ParseOptions {
                project_dir: Some(dir.to_path_buf()),
            },
        )
    } else if config.build.python_packages.is_empty() {
        return Ok(None);
    } else {
        wheels::requirements::from_packages(&config.build.python_packages, dir)
    };
    requirements.map(Some).map_err(ResolveError::Requirements)
}

/// Resolves the project's Python packages, reusing the lock while its inputs are unchanged.
/// Without `options.network`, only a current lock is used (none: no packages in the plan).
pub fn resolve(
    session: &Session,
    dir: &Path,
    config: &Config,
    target: &Target,
    options: &Options<'_>,
    builder: Option<Arc<dyn SdistBuilder>>,
) -> Result<Vec<LockedPackage>, ResolveError> {
    let Some(mut requirements) = requirements(dir, config)? else {
        return Ok(Vec::new());
    };
    for warning in &requirements.warnings {
        session.reporter.warning(warning);
    }
    let explicit_indexes = for_arch(&mut requirements, config, target, dir, session)?;
    let resolve_options = wheels::ResolveOptions {
        reporter: session.reporter.clone(),
        builder,
        explicit_indexes,
        ..wheels::ResolveOptions::default()
    };
    let hash = wheels::resolve::input_hash(&requirements, target, &resolve_options);
    let path = dir.join(wheels::lock::LOCK_FILE_NAME);
    let current =
        |lock: &wheels::Lock| lock.input_hash == hash && lock.version == wheels::lock::LOCK_VERSION;
    if !options.network {
        let lock = wheels::Lock::read(&path).map_err(ResolveError::Requirements)?;
        return Ok(lock.filter(current).map(|l| l.packages).unwrap_or_default());
    }
    let settled = lockfile::settle(
        &path,
        options.lock_mode,
        wheels::Lock::read,
        current,
        || {
            session.block_on(wheels::resolve_async(
                &requirements,
                target,
                &resolve_options,
            ))
        },
        wheels::Lock::write,
    )
    .map_err(|source| ResolveError::Wheels {
        dir: dir.to_path_buf(),
        source,
    })?;
    tracing::debug!(
        packages = settled.lock.packages.len(),
        reused = settled.reused,
        "python packages"
    );
    Ok(settled.lock.packages)
}

/// Where PyTorch's wheel indexes are (`https://download.pytorch.org/whl/<variant>/` in Cog's
/// matrix); `COG_PYTORCH_INDEX_URL` names a mirror laid out the same way.
pub const PYTORCH_INDEX_PREFIX: &str = "https://download.pytorch.org/whl";

/// The packages that come from the PyTorch index Cog adds for torch (`torchaudio` too: Cog
/// leaves its line alone, and pip then finds it on the same index).
const PYTORCH_PACKAGES: &[&str] = &["torch", "torchvision", "torchaudio"];

/// Cog's `PythonRequirementsForArch` applied to the parsed requirements: pinned torch and
/// torchvision rewritten for the target (`+cuXYZ` stripped; GPU: the row with the highest CUDA
/// not above `build.cuda`; CPU: the `+cpu` row), TensorFlow's GPU package, and the PyTorch
/// index they need, as an explicit index of the torch packages: the first index that has a
/// name wins, and the PyTorch index never shadows PyPI's numpy or pillow.
fn for_arch(
    requirements: &mut wheels::Requirements,
    config: &Config,
    target: &Target,
    dir: &Path,
    session: &Session,
) -> Result<Vec<wheels::ExplicitIndex>, ResolveError> {
    let arch = match target.arch {
        Arch::X86_64 => "amd64",
        Arch::Aarch64 => "arm64",
    };
    let mirror = std::env::var("COG_PYTORCH_INDEX_URL")
        .ok()
        .filter(|m| !m.is_empty());
    let mut urls: Vec<String> = Vec::new();
    for entry in &mut requirements.requirements {
        let wheels::requirements::Source::Pep508(requirement) = &entry.source else {
            continue;
        };
        let name = requirement.name.to_string();
        if !matches!(name.as_str(), "torch" | "torchvision" | "tensorflow") {
            continue;
        }
        let (line, find_links, extra, warnings) = config.requirement_for_arch(&entry.text, arch);
        for warning in warnings {
            session.reporter.warning(&warning.to_string());
        }
        if line != entry.text {
            let parsed = wheels::requirements::parse_str(
                &line,
                Path::new(&entry.origin),
                dir,
                &wheels::requirements::ParseOptions::default(),
            )
            .map_err(ResolveError::Requirements)?;
            if let Some(rewritten) = parsed.requirements.into_iter().next() {
                tracing::debug!(from = %entry.text, to = %line, "requirement for the target");
                entry.source = rewritten.source;
                entry.text = line;
            }
        }
        for link in find_links {
            let link = wheels::index::config::find_links_entry(&link);
            if !requirements.find_links.contains(&link) {
                requirements.find_links.push(link);
            }
        }
        for url in extra {
            let url = match (&mirror, url.strip_prefix(PYTORCH_INDEX_PREFIX)) {
                (Some(mirror), Some(rest)) => format!("{}{rest}", mirror.trim_end_matches('/')),
                _ => url,
            };
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    let packages: Vec<pep508_rs::PackageName> = PYTORCH_PACKAGES
        .iter()
        .filter_map(|name| pep508_rs::PackageName::new((*name).to_owned()).ok())
        .collect();
    urls.iter()
        .map(|url| {
            let url = wheels::index::config::normalize_index_url(url)
                .map_err(|_| ResolveError::TorchIndex { url: url.clone() })?;
            Ok(wheels::ExplicitIndex {
                url,
                packages: packages.clone(),
            })
        })
        .collect()
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

/// The builder of the project's source distributions: the PEP 517 hooks run in the image's
/// environment (`base` plus the `system_packages` layer, made when a build first needs them).
pub fn sdist_builder(
    session: &Session,
    base: BaseImage,
    system_packages: Option<debian::Lock>,
    python: PythonLayout,
    platform: &str,
    env: Vec<(String, String)>,
    compression: layers::Compression,
) -> Result<Arc<dyn SdistBuilder>, ResolveError> {
    let platform = super::parse_platform(platform)?;
    let mut sandbox_options = SandboxOptions::new(compression);
    sandbox_options.platform = platform.clone();
    let environment = BaseWithPackages {
        fetcher: Fetcher::of(session),
        handle: session.handle().clone(),
        base,
        system_packages,
        platform,
        compression,
        env,
    };
    Ok(Arc::new(SandboxSdistBuilder::new(
        session.store.clone(),
        Arc::new(environment),
        python,
        sandbox_options,
        session.reporter.clone(),
    )))
}
