//! The environment wheels are resolved and installed for: the image's, never the host's.

use std::fmt;
use std::str::FromStr;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// CPU architecture of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The name used in wheel platform tags and `platform_machine`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "x86_64" | "amd64" | "linux/amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" | "linux/arm64" | "linux/arm64/v8" => Ok(Arch::Aarch64),
            other => Err(Error::Target(format!(
                "unsupported architecture {other:?}: expected x86_64 (amd64) or aarch64 (arm64)"
            ))),
        }
    }
}

/// The C library of the image, with its version (`(major, minor)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    /// glibc, e.g. `(2, 36)` for Debian bookworm.
    Glibc(u16, u16),
    /// musl, e.g. `(1, 2)` for Alpine.
    Musl(u16, u16),
}

/// The Python environment of the image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// `(major, minor)`, e.g. `(3, 11)`.
    pub python: (u16, u16),
    /// Patch version when known; markers otherwise see `X.Y.0`, as `uv --python-version X.Y` does.
    pub python_patch: Option<u16>,
    pub arch: Arch,
    pub libc: Libc,
}

impl Target {
    /// A CPython `X.Y[.Z]` on Linux with glibc `2.M`; `python` as in cog.yaml (`"3.11"`).
    pub fn new(python: &str, arch: Arch, libc: Libc) -> Result<Self, Error> {
        let mut parts = python.trim().split('.');
        let mut num = |what: &str| -> Result<Option<u16>, Error> {
            parts
                .next()
                .map(|p| {
                    p.parse::<u16>().map_err(|_| {
                        Error::Target(format!("invalid Python version {python:?}: bad {what}"))
                    })
                })
                .transpose()
        };
        let major = num("major")?;
        let minor = num("minor")?;
        let patch = num("patch")?;
        let (Some(major), Some(minor)) = (major, minor) else {
            return Err(Error::Target(format!(
                "invalid Python version {python:?}: must include major and minor version (e.g., '3.11')"
            )));
        };
        Ok(Self {
            python: (major, minor),
            python_patch: patch,
            arch,
            libc,
        })
    }

    /// `python_full_version` as markers see it.
    pub fn python_full_version(&self) -> String {
        let (major, minor) = self.python;
        format!("{major}.{minor}.{}", self.python_patch.unwrap_or(0))
    }

    /// The PEP 508 marker environment of the image.
    pub fn marker_environment(&self) -> Result<MarkerEnvironment, Error> {
        let (major, minor) = self.python;
        let python_version = format!("{major}.{minor}");
        let full = self.python_full_version();
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &full,
            os_name: "posix",
            platform_machine: self.arch.as_str(),
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &full,
            python_version: &python_version,
            sys_platform: "linux",
        })
        .map_err(|e| Error::Target(format!("invalid Python version {full}: {e}")))
    }

    /// Platform tags, best first, as `packaging.tags` orders them.
    pub fn platform_tags(&self) -> Vec<String> {
        let arch = self.arch.as_str();
        let mut tags = Vec::new();
        match self.libc {
            Libc::Glibc(major, minor) => {
                // manylinux_2_5 is the oldest on x86, 2_17 elsewhere (packaging's `too_old_glibc2`).
                let oldest = if self.arch == Arch::X86_64 { 5 } else { 17 };
                if major == 2 {
                    for m in (oldest..=minor).rev() {
                        tags.push(format!("manylinux_2_{m}_{arch}"));
                        let legacy = match m {
                            17 => Some("manylinux2014"),
                            12 => Some("manylinux2010"),
                            5 => Some("manylinux1"),
                            _ => None,
                        };
                        if let Some(legacy) = legacy {
                            tags.push(format!("{legacy}_{arch}"));
                        }
                    }
                }
            }
            Libc::Musl(major, minor) => {
                if major == 1 {
                    for m in (0..=minor).rev() {
                        tags.push(format!("musllinux_1_{m}_{arch}"));
                    }
                }
            }
        }
        tags.push(format!("linux_{arch}"));
        tags
    }

    /// Every `(python, abi, platform)` tag the image accepts, best first (pip's `sys_tags`).
    pub fn tags(&self) -> Vec<Tag> {
        let (major, minor) = self.python;
        let platforms = self.platform_tags();
        let cp = format!("cp{major}{minor}");
        let mut tags = Vec::new();
        let mut push = |py: &str, abi: &str, plat: &str| {
            tags.push(Tag {
                python: py.to_string(),
                abi: abi.to_string(),
                platform: plat.to_string(),
            });
        };
        for abi in [cp.as_str(), "abi3", "none"] {
            for plat in &platforms {
                push(&cp, abi, plat);
            }
        }
        // abi3 wheels built for older CPython 3 minors (3.2+).
        for older in (2..minor).rev() {
            for plat in &platforms {
                push(&format!("cp{major}{older}"), "abi3", plat);
            }
        }
        let py_versions: Vec<String> = std::iter::once(format!("py{major}{minor}"))
            .chain(std::iter::once(format!("py{major}")))
            .chain((0..minor).rev().map(|m| format!("py{major}{m}")))
            .collect();
        for py in &py_versions {
            for plat in &platforms {
                push(py, "none", plat);
            }
        }
        push(&cp, "none", "any");
        for py in &py_versions {
            push(py, "none", "any");
        }
        tags
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.python;
        let libc = match self.libc {
            Libc::Glibc(a, b) => format!("glibc {a}.{b}"),
            Libc::Musl(a, b) => format!("musl {a}.{b}"),
        };
        write!(
            f,
            "CPython {major}.{minor} on linux/{} ({libc})",
            self.arch.as_str()
        )
    }
}

/// One PEP 425 compatibility tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bookworm(py: &str) -> Target {
        Target::new(py, Arch::X86_64, Libc::Glibc(2, 36)).unwrap()
    }

    #[test]
    fn tags_are_ranked_like_pip() {
        let tags: Vec<String> = bookworm("3.11")
            .tags()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(tags[0], "cp311-cp311-manylinux_2_36_x86_64");
        let pos = |t: &str| tags.iter().position(|x| x == t).unwrap();
        assert!(pos("cp311-cp311-manylinux_2_17_x86_64") < pos("cp311-cp311-manylinux2014_x86_64"));
        assert!(pos("cp311-cp311-manylinux1_x86_64") < pos("cp311-cp311-linux_x86_64"));
        assert!(pos("cp311-cp311-linux_x86_64") < pos("cp311-abi3-manylinux_2_36_x86_64"));
        assert!(pos("cp311-none-linux_x86_64") < pos("cp310-abi3-manylinux_2_36_x86_64"));
        assert!(pos("cp32-abi3-linux_x86_64") < pos("py311-none-manylinux_2_36_x86_64"));
        assert!(pos("py30-none-linux_x86_64") < pos("cp311-none-any"));
        assert_eq!(tags.last().unwrap(), "py30-none-any");
        assert!(!tags.iter().any(|t| t.contains("manylinux_2_37")));
        assert!(!tags.iter().any(|t| t.contains("musllinux")));
    }

    #[test]
    fn aarch64_starts_at_glibc_2_17() {
        let t = Target::new("3.12", Arch::Aarch64, Libc::Glibc(2, 31)).unwrap();
        let plats = t.platform_tags();
        assert_eq!(plats.first().unwrap(), "manylinux_2_31_aarch64");
        assert!(plats.contains(&"manylinux2014_aarch64".to_string()));
        assert!(!plats.iter().any(|p| p.contains("manylinux2010")));
    }

    #[test]
    fn musl_tags() {
        let t = Target::new("3.12", Arch::X86_64, Libc::Musl(1, 2)).unwrap();
        assert_eq!(
            t.platform_tags(),
            [
                "musllinux_1_2_x86_64",
                "musllinux_1_1_x86_64",
                "musllinux_1_0_x86_64",
                "linux_x86_64"
            ]
        );
    }

    #[test]
    fn bad_python_version() {
        let err = Target::new("3", Arch::X86_64, Libc::Glibc(2, 36)).unwrap_err();
        assert!(
            err.to_string().contains("must include major and minor"),
            "{err}"
        );
        assert!(Target::new("three.11", Arch::X86_64, Libc::Glibc(2, 36)).is_err());
    }

    #[test]
    fn markers_are_the_images() {
        let env = bookworm("3.10.4").marker_environment().unwrap();
        let m: pep508_rs::MarkerTree =
            "python_full_version >= '3.10.4' and platform_machine == 'x86_64' and sys_platform == 'linux'"
                .parse()
                .unwrap();
        assert!(m.evaluate(&env, &[]));
        let m: pep508_rs::MarkerTree = "python_version >= '3.11'".parse().unwrap();
        assert!(!m.evaluate(&env, &[]));
    }
}
