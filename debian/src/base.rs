//! The embedded default base: a Python image assembled from distribution packages alone
//! (the Essential set + apt + python3 with pip + ca-certificates + tzdata + tini, without docs,
//! man pages or translations), no registry needed.

use layers::{BlobStore, LayerInfo};

use crate::Error;
use crate::archive::{Archive, ArchiveConfig, Source};
use crate::filter::{PathFilter, SLIM_EXCLUDES, SLIM_EXCLUDES_PATH};
use crate::install::{InstallOptions, install};
use crate::lock::Lock;
use crate::resolve::{essential_names, resolve};
use crate::signature::Keyring;

/// The distribution release that ships a given Python as its `python3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRelease {
    pub python: &'static str,
    pub distro: &'static str,
    pub suite: &'static str,
}

pub const RELEASES: &[BaseRelease] = &[
    BaseRelease {
        python: "3.10",
        distro: "ubuntu",
        suite: "jammy",
    },
    BaseRelease {
        python: "3.11",
        distro: "debian",
        suite: "bookworm",
    },
    BaseRelease {
        python: "3.12",
        distro: "ubuntu",
        suite: "noble",
    },
    BaseRelease {
        python: "3.13",
        distro: "debian",
        suite: "trixie",
    },
];

/// The release for `python` (`3.11`, `3.11.4`).
pub fn release_for_python(python: &str) -> Result<&'static BaseRelease, Error> {
    let minor: String = python.split('.').take(2).collect::<Vec<_>>().join(".");
    RELEASES.iter().find(|r| r.python == minor).ok_or_else(|| {
        let known: Vec<&str> = RELEASES.iter().map(|r| r.python).collect();
        Error::Config(format!(
            "no embedded base for python_version {python:?} (available: {})",
            known.join(", ")
        ))
    })
}

impl BaseRelease {
    pub fn archive_config(&self, arch: &str) -> ArchiveConfig {
        if self.distro == "ubuntu" {
            ArchiveConfig::ubuntu(self.suite, arch)
        } else {
            ArchiveConfig::debian(self.suite, arch)
        }
    }
}

/// Packages on top of the Essential set and apt: Python with pip, the CA bundle, time zones,
/// tini as PID 1.
pub const BASE_EXTRAS: &[&str] = &[
    "python3",
    "python3-pip",
    "python-is-python3",
    "ca-certificates",
    "tzdata",
    "tini",
];

/// Priority-required packages a container needs besides the Essential set: `apt` (and its
/// dependencies), `mawk` (awk, which maintainer scripts call). Unlike debootstrap's minbase,
/// `e2fsprogs`, `mount` and the like are left out.
pub const BASE_SYSTEM: &[&str] = &["apt", "mawk"];

/// Satisfies `init-system-helpers`' `usrmerge | usr-is-merged` where the archive has it: the
/// layout is merged by construction, and `usrmerge` would pull in the whole of perl.
pub const MERGED_USR_MARKER: &str = "usr-is-merged";

/// What the image config of an assembled base needs.
#[derive(Debug, Clone)]
pub struct AssembledBase {
    pub layers: Vec<LayerInfo>,
    pub env: Vec<(String, String)>,
    pub entrypoint: Vec<String>,
    /// `/var/lib/dpkg/status` of the base (for an apt layer on top).
    pub status: Vec<u8>,
    pub lock: Lock,
    pub arch: String,
    /// `/usr/bin/python3`
    pub python: String,
    /// `3.11`
    pub python_version: String,
    /// Where pip would install (`/usr/local/lib/python3.11/dist-packages`).
    pub site_packages: String,
    /// Shared libraries in the base (pass as `InstallOptions::base_libraries` to an apt layer
    /// so its `/etc/ld.so.cache` covers both).
    pub libraries: Vec<String>,
    /// The dpkg path filters written into the base (for an apt layer on top).
    pub path_filter: PathFilter,
}

#[derive(Debug, Clone, Default)]
pub struct AssembleOptions {
    /// Added to the package set (e.g. `python3-pip`, `python3-venv`).
    pub extra_packages: Vec<String>,
    pub install: InstallOptions,
}

/// Assembles the base for `python` on `arch` from the default (or `$COG_APT_MIRROR`) mirror.
pub async fn assemble_base(
    python: &str,
    arch: &str,
    store: &BlobStore,
) -> Result<AssembledBase, Error> {
    let release = release_for_python(python)?;
    let archive = Archive::fetch(release.archive_config(arch)).await?;
    assemble_base_from(&archive, &AssembleOptions::default(), store).await
}

/// The base's package selection (names) for an archive: the Essential set, [`BASE_SYSTEM`],
/// [`MERGED_USR_MARKER`] when the archive has it, [`BASE_EXTRAS`] and `extra`.
pub fn base_package_names(archive: &Archive, extra: &[String]) -> Vec<String> {
    let mut names = essential_names(&archive.index);
    names.extend(BASE_SYSTEM.iter().map(|s| (*s).to_owned()));
    if !archive.index.versions(MERGED_USR_MARKER).is_empty() {
        names.push(MERGED_USR_MARKER.to_owned());
    }
    names.extend(BASE_EXTRAS.iter().map(|s| (*s).to_owned()));
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Resolves the base's lock against `archive` (for `cog` to write and reuse).
pub fn base_lock(archive: &Archive, extra: &[String]) -> Result<Lock, Error> {
    resolve(
        archive,
        &base_package_names(archive, extra),
        b"",
        &archive.config.arch,
    )
}

pub async fn assemble_base_from(
    archive: &Archive,
    opts: &AssembleOptions,
    store: &BlobStore,
) -> Result<AssembledBase, Error> {
    let lock = base_lock(archive, &opts.extra_packages)?;
    assemble_base_from_lock(&lock, opts, store).await
}

/// apt's deb822 sources file for `sources` (`/etc/apt/sources.list.d/debian.sources` or
/// `ubuntu.sources`): one stanza per mirror and component set, suites in lock order.
pub fn apt_sources(sources: &[Source]) -> Option<(String, Vec<u8>)> {
    let first = sources.first()?;
    let (file, keyring) = match first.keyring {
        Keyring::Debian => ("debian", "/usr/share/keyrings/debian-archive-keyring.gpg"),
        Keyring::Ubuntu => ("ubuntu", "/usr/share/keyrings/ubuntu-archive-keyring.gpg"),
    };
    let mut stanzas: Vec<(&str, &[String], Vec<&str>)> = Vec::new();
    for s in sources {
        match stanzas
            .iter_mut()
            .find(|(mirror, components, _)| *mirror == s.mirror && *components == s.components)
        {
            Some((_, _, suites)) => suites.push(&s.suite),
            None => stanzas.push((&s.mirror, &s.components, vec![&s.suite])),
        }
    }
    let text = stanzas
        .iter()
        .map(|(mirror, components, suites)| {
            format!(
                "Types: deb\nURIs: {mirror}\nSuites: {}\nComponents: {}\nSigned-By: {keyring}\n",
                suites.join(" "),
                components.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some((
        format!("/etc/apt/sources.list.d/{file}.sources"),
        text.into_bytes(),
    ))
}

/// Builds the base from a lock: two builds from the same lock give the same layer digest.
pub async fn assemble_base_from_lock(
    lock: &Lock,
    opts: &AssembleOptions,
    store: &BlobStore,
) -> Result<AssembledBase, Error> {
    let python_pkg = lock
        .packages
        .iter()
        .find(|p| p.name == "python3")
        .ok_or_else(|| Error::Config("the base lock has no python3 package".into()))?;
    let python_version: String = python_pkg
        .version
        .upstream
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let mut install_opts = opts.install.clone();
    install_opts.new_root = true;
    // Cog's images run `/sbin/tini --`; Debian ships tini in /usr/bin.
    install_opts
        .extra_links
        .push(("/usr/sbin/tini".into(), "/usr/bin/tini".into()));
    // Docs, man pages and translations are left out, and the rules stay in the image so that
    // a later `apt-get install` leaves them out too.
    install_opts.path_filter = PathFilter::parse(SLIM_EXCLUDES);
    install_opts
        .extra_files
        .push((SLIM_EXCLUDES_PATH.into(), SLIM_EXCLUDES.as_bytes().to_vec()));
    // apt in the image reads the archive the base came from, as a debootstrapped system does.
    if let Some(sources) = apt_sources(&lock.sources) {
        install_opts.extra_files.push(sources);
    }
    let installed = install(lock, b"", store, &install_opts).await?;
    Ok(AssembledBase {
        layers: vec![installed.layer],
        env: vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("LANG".into(), "C.UTF-8".into()),
            ("LC_ALL".into(), "C.UTF-8".into()),
            ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ],
        entrypoint: vec!["/sbin/tini".into(), "--".into()],
        status: installed.status,
        arch: lock.arch.clone(),
        python: "/usr/bin/python3".into(),
        libraries: installed.libraries,
        path_filter: install_opts.path_filter,
        site_packages: format!("/usr/local/lib/python{python_version}/dist-packages"),
        python_version,
        lock: lock.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_sources_group_suites_by_mirror() {
        let config = ArchiveConfig::debian("bookworm", "amd64")
            .with_mirror("http://deb.example/debian")
            .with_security_mirror("http://sec.example/debian-security");
        let (path, text) = apt_sources(&config.sources).unwrap();
        assert_eq!(path, "/etc/apt/sources.list.d/debian.sources");
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
             Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
        let ubuntu = ArchiveConfig::ubuntu("noble", "amd64").with_mirror("http://u.example/ubuntu");
        let (path, text) = apt_sources(&ubuntu.sources).unwrap();
        assert_eq!(path, "/etc/apt/sources.list.d/ubuntu.sources");
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(
                "Suites: noble noble-updates noble-security\nComponents: main universe\n"
            ),
            "{text}"
        );
        assert!(apt_sources(&[]).is_none());
    }

    #[test]
    fn maps_python_versions_to_releases() {
        assert_eq!(release_for_python("3.11").unwrap().suite, "bookworm");
        assert_eq!(release_for_python("3.13.1").unwrap().suite, "trixie");
        assert_eq!(release_for_python("3.10").unwrap().distro, "ubuntu");
        let err = release_for_python("2.7").unwrap_err().to_string();
        assert!(
            err.contains("\"2.7\"") && err.contains("3.10, 3.11, 3.12, 3.13"),
            "{err}"
        );
    }
}
