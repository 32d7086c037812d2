//! The default base, assembled from distribution packages, and `build.system_packages`:
//! both resolved against the distribution's archive before planning and pinned by locks next to
//! cog.yaml (`cog-base.lock`, `cog-apt.lock`), reused while their inputs are unchanged.
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::plan::BaseImage;

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
    let mut apt_lock = if wanted.is_empty() {
        None
    } else {
        read_lock(&apt_path, arch, Some(&wanted), upgrade)?
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
