//! Distribution file names: wheels (PEP 427) and source archives.

use std::collections::HashMap;

use pep508_rs::PackageName;
use pep508_rs::pep440_rs::Version;

use crate::target::{Tag, Target};

/// A parsed `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    pub name: PackageName,
    pub version: Version,
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelFilename {
    /// `None` when the name is not a well-formed wheel file name.
    pub fn parse(filename: &str) -> Option<Self> {
        safe_path::file_name(filename).ok()?;
        let stem = filename.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, rest) = match parts.len() {
            5 => (parts[0], parts[1], &parts[2..]),
            6 => (parts[0], parts[1], &parts[3..]),
            _ => return None,
        };
        let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        Some(Self {
            name: PackageName::new(name.to_string()).ok()?,
            version: version.parse().ok()?,
            python: split(rest[0]),
            abi: split(rest[1]),
            platform: split(rest[2]),
        })
    }

    /// Every tag this wheel is built for (compressed tag sets expanded).
    pub fn tags(&self) -> impl Iterator<Item = Tag> + '_ {
        self.python.iter().flat_map(move |py| {
            self.abi.iter().flat_map(move |abi| {
                self.platform.iter().map(move |plat| Tag {
                    python: py.clone(),
                    abi: abi.clone(),
                    platform: plat.clone(),
                })
            })
        })
    }

    /// The tag triple as written in the file name (`cp311-cp311-manylinux_2_17_x86_64`).
    pub fn tag_string(&self) -> String {
        format!(
            "{}-{}-{}",
            self.python.join("."),
            self.abi.join("."),
            self.platform.join(".")
        )
    }
}

/// `(name, version)` of a source archive, when the file name is one.
pub fn parse_sdist(filename: &str) -> Option<(PackageName, Version)> {
    safe_path::file_name(filename).ok()?;
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))?;
    // The version is after the last '-' that is followed by a digit.
    let idx = stem
        .char_indices()
        .filter(|(i, c)| *c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i)
        .next_back()?;
    let name = PackageName::new(stem[..idx].to_string()).ok()?;
    let version = stem[idx + 1..].parse().ok()?;
    Some((name, version))
}

/// The target's tags with their rank (0 is best), for picking the best wheel of a release.
#[derive(Debug, Clone)]
pub struct TagRanking {
    ranks: HashMap<Tag, usize>,
    ordered: Vec<Tag>,
}

impl TagRanking {
    pub fn new(target: &Target) -> Self {
        let ordered = target.tags();
        let ranks = ordered
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        Self { ranks, ordered }
    }

    /// Best (lowest) rank of any of the wheel's tags; `None` when the target cannot install it.
    pub fn rank(&self, wheel: &WheelFilename) -> Option<usize> {
        wheel
            .tags()
            .filter_map(|t| self.ranks.get(&t).copied())
            .min()
    }

    /// The best few tags, for error messages.
    pub fn top(&self, n: usize) -> Vec<String> {
        self.ordered
            .iter()
            .take(n)
            .map(ToString::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Arch, Libc};

    #[test]
    fn parses_wheel_names() {
        let w = WheelFilename::parse(
            "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name.as_ref(), "numpy");
        assert_eq!(w.version.to_string(), "2.1.0");
        assert_eq!(w.platform.len(), 2);
        let w = WheelFilename::parse("six-1.16.0-1-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.python, ["py2", "py3"]);
        assert!(WheelFilename::parse("bad.whl").is_none());
        assert!(WheelFilename::parse("six-1.16.0.tar.gz").is_none());
        // A platform tag that is a path (`any./../..`) is no tag at all.
        assert!(
            WheelFilename::parse("travpkg-1.0-py3-none-any./../../../../tmp/x/evil.whl").is_none()
        );
        assert!(parse_sdist("x-1.0/../../evil.tar.gz").is_none());
    }

    #[test]
    fn parses_sdist_names() {
        let (n, v) = parse_sdist("scikit-learn-1.5.0.tar.gz").unwrap();
        assert_eq!(
            (n.as_ref(), v.to_string().as_str()),
            ("scikit-learn", "1.5.0")
        );
        assert!(parse_sdist("README.md").is_none());
    }

    #[test]
    fn ranks_wheels() {
        let t = Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 36)).unwrap();
        let r = TagRanking::new(&t);
        let rank = |f: &str| r.rank(&WheelFilename::parse(f).unwrap());
        let native =
            rank("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").unwrap();
        let abi3 = rank("x-1.0-cp38-abi3-manylinux_2_28_x86_64.whl").unwrap();
        let pure = rank("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert!(native < abi3 && abi3 < pure);
        assert!(rank("numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl").is_none());
        assert!(rank("numpy-2.1.0-cp311-cp311-manylinux_2_39_x86_64.whl").is_none());
        assert!(rank("numpy-2.1.0-cp311-cp311-macosx_11_0_arm64.whl").is_none());
        assert!(rank("numpy-2.1.0-cp311-cp311-musllinux_1_1_x86_64.whl").is_none());
    }
}
