//! The default base, assembled from distribution packages, and `build.system_packages`: both
//! resolved against the distribution's archive and pinned by locks next to cog.yaml
//! (`cog-base.lock`, `cog-apt.lock`), reused while their inputs are unchanged.
//!
//! With `--base IMAGE` the system packages are resolved against the image's own distribution:
//! the image is fetched into the store (the build reuses it), its `/etc/os-release` names the
//! archive and suite, and its `/var/lib/dpkg/status` says what is installed already.
use std::path::Path;

use super::lockfile::{self, LockMode};
use super::{Options, ResolveError};
use crate::base::BaseImage;
use crate::config::Config;
use crate::session::Session;

/// Lock of the assembled base's packages.
pub const BASE_LOCK_FILE: &str = "cog-base.lock";

/// What the default base and the system packages resolved to.
#[derive(Debug)]
pub struct Resolved {
    pub base: BaseImage,
    pub system_packages: Option<debian::Lock>,
}

fn debian_arch(platform: &str) -> Result<&'static str, ResolveError> {
    debian::archive::debian_arch(platform).ok_or_else(|| ResolveError::Platform {
        platform: platform.to_owned(),
        reason: "Debian and Ubuntu packages are installed for linux/amd64 and linux/arm64",
    })
}

/// A lock from disk; `None` when absent.
fn read_lock(path: &Path) -> Result<Option<debian::Lock>, debian::Error> {
    if path.is_file() {
        debian::Lock::read(path).map(Some)
    } else {
        Ok(None)
    }
}

fn settle_debian(
    path: &Path,
    mode: LockMode,
    current: impl Fn(&debian::Lock) -> bool,
    make: impl FnOnce() -> Result<debian::Lock, debian::Error>,
    what: &str,
) -> Result<debian::Lock, ResolveError> {
    lockfile::settle(path, mode, read_lock, current, make, |lock, path| {
        lock.write(path)
    })
    .map(|settled| settled.lock)
    .map_err(|source| ResolveError::DebianLock {
        what: what.to_owned(),
        source,
    })
}

/// Resolves the assembled base for `python_version` and the config's system packages on it.
/// The archive is fetched only when a lock has to be made. Without `options.network`, only
/// current locks are used (`None` when the base lock is not there).
pub fn resolve_assembled(
    session: &Session,
    dir: &Path,
    config: &Config,
    python_version: &str,
    options: &Options<'_>,
) -> Result<Option<Resolved>, ResolveError> {
    let release = debian::base::release_for_python(python_version).map_err(|source| {
        ResolveError::Debian {
            what: format!("build.python_version {python_version}"),
            source,
        }
    })?;
    let arch = debian_arch(options.platform)?;
    let base_path = dir.join(BASE_LOCK_FILE);
    let apt_path = dir.join(debian::LOCK_FILE_NAME);
    let wanted = &with_python_headers(&config.build.system_packages, python_version);
    let base_current = |l: &debian::Lock| l.arch == arch;
    // A lock made on another base (another suite, e.g. with --base) is made again.
    let apt_current = |l: &debian::Lock| {
        l.arch == arch
            && l.requested == *wanted
            && l.sources.first().is_some_and(|s| s.suite == release.suite)
    };
    if !options.network {
        let fresh = |path: &Path, current: &dyn Fn(&debian::Lock) -> bool| {
            read_lock(path)
                .map(|l| l.filter(|l| current(l)))
                .map_err(|source| ResolveError::Debian {
                    what: path.display().to_string(),
                    source,
                })
        };
        let Some(base_lock) = fresh(&base_path, &base_current)? else {
            return Ok(None);
        };
        let system_packages = if wanted.is_empty() {
            None
        } else {
            fresh(&apt_path, &apt_current)?
        };
        return Ok(Some(Resolved {
            base: assembled(release, base_lock),
            system_packages,
        }));
    }
    // The archive is read at most once, and only when a lock has to be made.
    let archive = std::cell::OnceCell::new();
    let fetch = || -> Result<&debian::Archive, debian::Error> {
        if let Some(a) = archive.get() {
            return Ok(a);
        }
        let fetched = session.block_on(debian::Archive::fetch(release.archive_config(arch)))?;
        Ok(archive.get_or_init(|| fetched))
    };
    let archive_name = format!("reading the {} {} archive", release.distro, release.suite);
    let base_lock = settle_debian(
        &base_path,
        options.lock_mode,
        base_current,
        || debian::base::base_lock(fetch()?, &[]),
        &archive_name,
    )?;
    let system_packages = if wanted.is_empty() {
        None
    } else {
        let what = format!(
            "resolving build.system_packages in {}",
            dir.join(options.config_file_name()).display()
        );
        Some(settle_debian(
            &apt_path,
            options.lock_mode,
            apt_current,
            || {
                let full = debian::resolve(fetch()?, wanted, b"", arch)?;
                // What the base already has is not installed again.
                let packages = full
                    .packages
                    .into_iter()
                    .filter(|p| !base_lock.packages.contains(p))
                    .collect();
                Ok(debian::Lock::new(
                    arch,
                    full.sources,
                    wanted.clone(),
                    packages,
                ))
            },
            &what,
        )?)
    };
    Ok(Some(Resolved {
        base: assembled(release, base_lock),
        system_packages,
    }))
}

/// Packages that bring a C compiler: with one of them, C extensions get built (by `pip` in
/// `build.run`, or from sdists), and those need Python's headers.
const COMPILERS: &[&str] = &["build-essential", "gcc", "g++", "clang", "cc", "c++"];

/// `system_packages`, plus `python3.X-dev` when they bring a compiler and name no Python
/// headers. Cog's images have the headers (python.org builds ship them); the assembled base's
/// Debian Python does not, so `build-essential` alone would compile no extension.
pub fn with_python_headers(system_packages: &[String], python_version: &str) -> Vec<String> {
    let mut wanted = system_packages.to_vec();
    let minor: String = python_version
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let compiler = wanted.iter().any(|p| {
        COMPILERS.contains(&p.as_str())
            || p.strip_prefix("gcc-")
                .or_else(|| p.strip_prefix("g++-"))
                .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit()))
    });
    let headers = wanted
        .iter()
        .any(|p| (p.starts_with("python3") && p.ends_with("-dev")) || p.starts_with("libpython3"));
    if compiler && !headers && minor.contains('.') {
        wanted.push(format!("python{minor}-dev"));
    }
    wanted
}

fn assembled(release: &debian::base::BaseRelease, lock: debian::Lock) -> BaseImage {
    BaseImage::Assembled {
        distro: release.distro.to_string(),
        suite: release.suite.to_string(),
        python_version: release.python.to_string(),
        lock,
    }
}

/// The Debian or Ubuntu suite a base's packages come from (`bookworm`, `jammy`), `None` when it
/// is not a Debian or Ubuntu image with a dpkg database.
pub fn archive_of(
    session: &Session,
    base: &BaseImage,
    options: &Options<'_>,
) -> Result<Option<String>, ResolveError> {
    let arch = debian_arch(options.platform)?;
    let system = inspect_base(
        session,
        base,
        options,
        arch,
        format!("reading the base image {base}"),
    )?;
    Ok(system.archive_config(arch).ok().and_then(|config| {
        let source = config.sources.first()?;
        Some(format!(
            "{} {}",
            system.os_release.as_ref()?.id,
            source.suite
        ))
    }))
}

/// The base fetched for `options.platform`, and what its layers say of its system (dpkg
/// database, os-release, apt sources); `what` names the read in errors.
fn inspect_base(
    session: &Session,
    base: &BaseImage,
    options: &Options<'_>,
    arch: &str,
    what: String,
) -> Result<debian::rootfs::BaseSystem, ResolveError> {
    let fetched = super::fetch_base_for(session, base, options.platform)?;
    debian::rootfs::inspect_cached(
        &session.store,
        &fetched.layers,
        arch,
        &debian::fetch::default_cache_dir(),
    )
    .map_err(|source| ResolveError::Debian { what, source })
}

/// `build.system_packages` on a base given with `--base` (registry or local image). Without
/// `options.network` (`cog plan` without `--resolve`) only a current lock is used.
///
/// `python`: packages the base needs for `build.python_version` (`python3.11` on a base without
/// Python), resolved and locked with the system packages.
pub fn resolve_on_base(
    session: &Session,
    dir: &Path,
    config: &Config,
    base: &BaseImage,
    python: &[String],
    options: &Options<'_>,
) -> Result<Option<debian::Lock>, ResolveError> {
    let mut wanted = config.build.system_packages.clone();
    for name in python {
        if !wanted.contains(name) {
            wanted.push(name.clone());
        }
    }
    let wanted = &wanted;
    if wanted.is_empty() {
        return Ok(None);
    }
    let config_file = dir.join(options.config_file_name());
    let field = match (config.build.system_packages.is_empty(), python.is_empty()) {
        (false, true) => format!("build.system_packages in {}", config_file.display()),
        (true, _) => format!(
            "build.python_version in {} ({} on the base)",
            config_file.display(),
            python.join(" ")
        ),
        (false, false) => format!(
            "build.system_packages and build.python_version in {} ({} on the base)",
            config_file.display(),
            python.join(" ")
        ),
    };
    let arch = debian_arch(options.platform)?;
    if matches!(base, BaseImage::Scratch) {
        return Err(ResolveError::NoDistribution {
            field,
            base: base.to_string(),
        });
    }
    let apt_path = dir.join(debian::LOCK_FILE_NAME);
    let matches_request = |l: &debian::Lock| l.arch == arch && l.requested == *wanted;
    let debian_error = |what: String| {
        move |source| ResolveError::Debian {
            what: what.clone(),
            source,
        }
    };
    if !options.network {
        return Ok(read_lock(&apt_path)
            .map_err(debian_error(field.clone()))?
            .filter(matches_request));
    }
    let system = inspect_base(
        session,
        base,
        options,
        arch,
        format!("{field}: reading the base image {base}"),
    )?;
    let archive_config = system
        .archive_config(arch)
        .map_err(debian_error(format!("{field}: base image {base}")))?;
    let suite = archive_config
        .sources
        .first()
        .map(|s| s.suite.clone())
        .unwrap_or_default();
    // A lock made for another suite (the base changed) is made again.
    let current = |l: &debian::Lock| {
        matches_request(l) && l.sources.first().is_some_and(|s| s.suite == suite)
    };
    let status = system.dpkg_status.clone().unwrap_or_default();
    let lock = settle_debian(
        &apt_path,
        options.lock_mode,
        current,
        || {
            let archive = session.block_on(debian::Archive::fetch(archive_config))?;
            if let Some(missing) = python
                .iter()
                .find(|name| archive.index.versions(name).is_empty())
            {
                return Err(debian::Error::Config(format!(
                    "the suite has no {missing} (cog-rs does not install Python from python-build-standalone yet: pass --base with an image that has Python, or pick the build.python_version the suite has)"
                )));
            }
            debian::resolve(&archive, wanted, &status, arch)
        },
        &format!("{field}: resolving them on base image {base} ({suite})"),
    )?;
    Ok(Some(lock))
}

#[cfg(test)]
mod tests {
    use super::with_python_headers;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn a_compiler_brings_python_headers_unless_named() {
        assert_eq!(
            with_python_headers(&names(&["build-essential", "ffmpeg"]), "3.11"),
            names(&["build-essential", "ffmpeg", "python3.11-dev"])
        );
        assert_eq!(
            with_python_headers(&names(&["gcc-12"]), "3.12.4"),
            names(&["gcc-12", "python3.12-dev"])
        );
        for given in [
            &["build-essential", "python3-dev"][..],
            &["gcc", "libpython3.11-dev"],
            &["ffmpeg"],
            &[],
        ] {
            assert_eq!(with_python_headers(&names(given), "3.11"), names(given));
        }
    }
}
