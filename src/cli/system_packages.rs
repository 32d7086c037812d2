//! The default base, assembled from distribution packages, and `build.system_packages`:
//! both resolved against the distribution's archive before planning and pinned by locks next to
//! cog.yaml (`cog-base.lock`, `cog-apt.lock`), reused while their inputs are unchanged.
//!
//! With `--base IMAGE` the system packages are resolved against the image's own distribution:
//! the image is fetched into the store (the build reuses it), its `/etc/os-release` names the
//! archive and suite, and its `/var/lib/dpkg/status` says what is installed already.
use std::path::Path;

use anyhow::{Context, Result, bail};

use layers::BlobStore;

use crate::config::Config;
use crate::plan::BaseImage;
use crate::progress::{Progress, ProgressMode};

/// Lock of the assembled base's packages.
pub const BASE_LOCK_FILE: &str = "cog-base.lock";

/// What the default base and the system packages resolved to.
#[derive(Debug)]
pub struct Resolved {
    pub base: BaseImage,
    pub system_packages: Option<debian::Lock>,
}

/// Resolves the assembled base for `python_version` and the config's system packages on it.
/// The archive is fetched only when a lock has to be made.
pub fn resolve(
    dir: &Path,
    config: &Config,
    python_version: &str,
    platform: &str,
    upgrade: bool,
) -> Result<Resolved> {
    let release = debian::base::release_for_python(python_version)?;
    let Some(arch) = debian::archive::debian_arch(platform) else {
        bail!("--platform {platform}: the assembled base is built for linux/amd64 and linux/arm64");
    };
    let base_path = dir.join(BASE_LOCK_FILE);
    let apt_path = dir.join(debian::LOCK_FILE_NAME);
    let wanted: Vec<String> = config.build.system_packages.clone();

    let mut base_lock = read_lock(&base_path, arch, None, upgrade)?;
    // A lock made on another base (another suite, e.g. with --base) is made again.
    let mut apt_lock = if wanted.is_empty() {
        None
    } else {
        read_lock(&apt_path, arch, Some(&wanted), upgrade)?
            .filter(|l| l.sources.first().is_some_and(|s| s.suite == release.suite))
    };
    if base_lock.is_none() || (!wanted.is_empty() && apt_lock.is_none()) {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        let archive = runtime
            .block_on(debian::Archive::fetch(release.archive_config(arch)))
            .with_context(|| format!("reading the {} {} archive", release.distro, release.suite))?;
        if base_lock.is_none() {
            let lock = debian::base::base_lock(&archive, &[])?;
            lock.write(&base_path)?;
            base_lock = Some(lock);
        }
        if !wanted.is_empty() && apt_lock.is_none() {
            let base = base_lock
                .as_ref()
                .map(|l| l.packages.as_slice())
                .unwrap_or_default();
            let full = debian::resolve(&archive, &wanted, b"", arch).with_context(|| {
                format!(
                    "resolving build.system_packages in {}",
                    dir.join("cog.yaml").display()
                )
            })?;
            // What the base already has is not installed again.
            let packages = full
                .packages
                .into_iter()
                .filter(|p| !base.contains(p))
                .collect();
            let lock = debian::Lock::new(arch, full.sources, wanted.clone(), packages);
            lock.write(&apt_path)?;
            apt_lock = Some(lock);
        }
    }
    let Some(lock) = base_lock else {
        bail!("no base lock")
    };
    Ok(Resolved {
        base: BaseImage::Assembled {
            distro: release.distro.to_string(),
            suite: release.suite.to_string(),
            python_version: release.python.to_string(),
            lock,
        },
        system_packages: apt_lock,
    })
}

/// A lock from disk when it is for this architecture (and these requested packages).
fn read_lock(
    path: &Path,
    arch: &str,
    requested: Option<&[String]>,
    upgrade: bool,
) -> Result<Option<debian::Lock>> {
    if upgrade || !path.is_file() {
        return Ok(None);
    }
    let lock = debian::Lock::read(path)?;
    let matches = lock.arch == arch && requested.is_none_or(|r| lock.requested == r);
    Ok(matches.then_some(lock))
}

/// `build.system_packages` on a base given with `--base` (registry or local image). With
/// `resolve` off (`cog plan` without `--resolve`) only a matching lock is used, with no network.
pub fn resolve_on_base(
    dir: &Path,
    config: &Config,
    base: &BaseImage,
    platform: &str,
    upgrade: bool,
    resolve: bool,
    insecure_registry: bool,
) -> Result<Option<debian::Lock>> {
    let wanted: Vec<String> = config.build.system_packages.clone();
    if wanted.is_empty() {
        return Ok(None);
    }
    let field = format!(
        "build.system_packages in {}",
        dir.join("cog.yaml").display()
    );
    let Some(arch) = debian::archive::debian_arch(platform) else {
        bail!(
            "{field}: --platform {platform} is not a Debian architecture (linux/amd64, linux/arm64)"
        );
    };
    if matches!(base, BaseImage::Scratch) {
        bail!("{field}: base image scratch has no Debian or Ubuntu system to install them on");
    }
    let apt_path = dir.join(debian::LOCK_FILE_NAME);
    let existing = read_lock(&apt_path, arch, Some(&wanted), upgrade)?;
    if !resolve {
        return Ok(existing);
    }
    let platform_value: crate::oci::Platform = platform
        .parse()
        .map_err(|e| anyhow::anyhow!("--platform {platform}: {e}"))?;
    let store = BlobStore::open(BlobStore::default_root()).context("opening the cog cache")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let progress = Progress::new(ProgressMode::from_env());
    let pulled = runtime
        .block_on(crate::builder::resolve_base(
            base,
            &platform_value,
            &store,
            &progress,
            insecure_registry,
        ))
        .with_context(|| format!("{field}: reading the base image {base}"))?;
    let cache_dir = debian::fetch::default_cache_dir();
    let system = debian::rootfs::inspect_cached(&store, &pulled.layers, arch, &cache_dir)
        .with_context(|| format!("{field}: reading the base image {base}"))?;
    let archive_config = system
        .archive_config(arch)
        .map_err(|e| anyhow::anyhow!("{field}: base image {base}: {e}"))?;
    let suite = archive_config
        .sources
        .first()
        .map(|s| s.suite.clone())
        .unwrap_or_default();
    // A lock made for another suite (the base changed) is made again.
    if let Some(lock) = existing
        && lock.sources.first().is_some_and(|s| s.suite == suite)
    {
        return Ok(Some(lock));
    }
    let status = system.dpkg_status.clone().unwrap_or_default();
    let archive = runtime
        .block_on(debian::Archive::fetch(archive_config))
        .with_context(|| format!("{field}: reading the archive of base image {base} ({suite})"))?;
    let lock = debian::resolve(&archive, &wanted, &status, arch)
        .with_context(|| format!("{field}: resolving them on base image {base} ({suite})"))?;
    lock.write(&apt_path)?;
    Ok(Some(lock))
}
