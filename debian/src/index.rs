//! Package indices: the archive's `Packages` files and dpkg's `status`, reduced to what the
//! resolver needs. Relationship fields stay raw text and are parsed only for packages the
//! resolver visits.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::Error;
use crate::control::{Paragraph, paragraphs};
use crate::relation::{Provide, parse_provides};
use crate::version::Version;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

impl MultiArch {
    fn parse(s: Option<&str>) -> MultiArch {
        match s.map(str::to_ascii_lowercase).as_deref() {
            Some("same") => MultiArch::Same,
            Some("foreign") => MultiArch::Foreign,
            Some("allowed") => MultiArch::Allowed,
            _ => MultiArch::No,
        }
    }
}

/// `Priority:`, most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Required,
    Important,
    Standard,
    Optional,
    Extra,
}

impl Priority {
    fn parse(s: Option<&str>) -> Priority {
        match s {
            Some("required") => Priority::Required,
            Some("important") => Priority::Important,
            Some("standard") => Priority::Standard,
            Some("extra") => Priority::Extra,
            _ => Priority::Optional,
        }
    }
}

/// One binary package version, from a `Packages` index or a `status` file.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub arch: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Priority,
    pub depends: String,
    pub pre_depends: String,
    pub conflicts: String,
    pub breaks: String,
    pub provides: Vec<Provide>,
    /// Pool path relative to the mirror (`pool/main/h/hello/hello_2.10-3_amd64.deb`).
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// The mirror URL this package is downloaded from (shared by all its packages).
    pub mirror: Arc<str>,
}

impl Package {
    /// `name:arch` for `Multi-Arch: same` packages, as dpkg names their files; `name` otherwise.
    pub fn dpkg_name(&self) -> String {
        if self.multi_arch == MultiArch::Same {
            format!("{}:{}", self.name, self.arch)
        } else {
            self.name.clone()
        }
    }

    fn from_paragraph(
        p: &Paragraph<'_>,
        mirror: &Arc<str>,
        arch: &str,
        origin: &str,
    ) -> Result<Package, Error> {
        let name = p.get("Package").ok_or_else(|| Error::Index {
            origin: origin.to_owned(),
            reason: format!("paragraph without Package: {:?}", truncate(p.raw)),
        })?;
        let bad = |reason: String| Error::Index {
            origin: origin.to_owned(),
            reason: format!("package {name}: {reason}"),
        };
        let version = p
            .get("Version")
            .ok_or_else(|| bad("no Version".into()))?
            .parse()
            .map_err(|e: crate::version::VersionError| bad(e.to_string()))?;
        let provides = match p.get("Provides") {
            Some(v) => parse_provides(v, arch).map_err(|e| bad(e.to_string()))?,
            None => Vec::new(),
        };
        Ok(Package {
            name: name.to_owned(),
            version,
            arch: p.get("Architecture").unwrap_or("all").to_owned(),
            multi_arch: MultiArch::parse(p.get("Multi-Arch")),
            essential: p
                .get("Essential")
                .is_some_and(|e| e.eq_ignore_ascii_case("yes")),
            priority: Priority::parse(p.get("Priority")),
            depends: p.get("Depends").unwrap_or_default().to_owned(),
            pre_depends: p.get("Pre-Depends").unwrap_or_default().to_owned(),
            conflicts: p.get("Conflicts").unwrap_or_default().to_owned(),
            breaks: p.get("Breaks").unwrap_or_default().to_owned(),
            provides,
            filename: p.get("Filename").unwrap_or_default().to_owned(),
            size: p.get("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
            sha256: p.get("SHA256").unwrap_or_default().to_owned(),
            mirror: Arc::clone(mirror),
        })
    }
}

/// `text` cut into about `parts` pieces, each ending at a blank line (a paragraph boundary).
fn split_paragraphs(text: &str, parts: usize) -> Vec<&str> {
    let target = (text.len() / parts.max(1)).max(1 << 16);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > target {
        let Some(cut) = rest[target..].find("\n\n").map(|i| target + i + 2) else {
            break;
        };
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(80).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// Packages by name, every version of each, plus who provides what.
#[derive(Debug, Default, Clone)]
pub struct Index {
    pub arch: String,
    packages: HashMap<String, Vec<Package>>,
    providers: HashMap<String, Vec<(String, Option<Version>)>>,
}

impl Index {
    pub fn new(arch: &str) -> Index {
        Index {
            arch: arch.to_owned(),
            ..Index::default()
        }
    }

    /// Adds the packages of a `Packages` file for `self.arch` (and `all`). `origin` names the
    /// file in errors.
    pub fn add_packages_file(
        &mut self,
        text: &str,
        mirror: &Arc<str>,
        origin: &str,
    ) -> Result<(), Error> {
        // Parsed in parallel, in chunks cut at paragraph boundaries; inserted in file order.
        let chunks = split_paragraphs(text, rayon::current_num_threads().max(1) * 4);
        let parsed: Vec<Result<Vec<Package>, Error>> = chunks
            .par_iter()
            .map(|chunk| {
                let mut out = Vec::new();
                for p in paragraphs(chunk) {
                    let arch = p.get("Architecture").unwrap_or("all");
                    if arch != self.arch && arch != "all" {
                        continue;
                    }
                    out.push(Package::from_paragraph(&p, mirror, &self.arch, origin)?);
                }
                Ok(out)
            })
            .collect();
        for chunk in parsed {
            for pkg in chunk? {
                self.insert(pkg);
            }
        }
        Ok(())
    }

    pub fn insert(&mut self, pkg: Package) {
        for prov in &pkg.provides {
            self.providers
                .entry(prov.name.clone())
                .or_default()
                .push((pkg.name.clone(), prov.version.clone()));
        }
        let versions = self.packages.entry(pkg.name.clone()).or_default();
        if !versions
            .iter()
            .any(|v| v.version == pkg.version && v.arch == pkg.arch)
        {
            versions.push(pkg);
            // Newest first; candidates are picked from the front.
            versions.sort_by(|a, b| b.version.cmp(&a.version));
        }
    }

    /// All versions of `name`, newest first.
    pub fn versions(&self, name: &str) -> &[Package] {
        self.packages.get(name).map_or(&[], Vec::as_slice)
    }

    /// Packages providing the virtual `name`: (real package name, provided version).
    pub fn providers(&self, name: &str) -> &[(String, Option<Version>)] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.packages.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Newest version of every package, for whole-archive selections (e.g. `Priority: required`).
    pub fn candidates(&self) -> impl Iterator<Item = &Package> {
        self.packages.values().filter_map(|v| v.first())
    }
}

/// What dpkg's `status` says is installed (only `install ok installed` entries count).
#[derive(Debug, Default, Clone)]
pub struct Installed {
    pub index: Index,
}

impl Installed {
    pub fn parse(status: &[u8], arch: &str) -> Result<Installed, Error> {
        let text = std::str::from_utf8(status).map_err(|e| Error::Index {
            origin: "dpkg status".into(),
            reason: e.to_string(),
        })?;
        let mut index = Index::new(arch);
        let none: Arc<str> = Arc::from("");
        for p in paragraphs(text) {
            let installed = p
                .get("Status")
                .is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"));
            if installed {
                index.insert(Package::from_paragraph(&p, &none, arch, "dpkg status")?);
            }
        }
        Ok(Installed { index })
    }

    pub fn get(&self, name: &str) -> Option<&Package> {
        self.index.versions(name).first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGES: &str = "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nDepends: libc6 (>= 2.34)\nPriority: optional\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSize: 53000\nSHA256: ab\n\nPackage: hello\nVersion: 2.10-2\nArchitecture: amd64\n\nPackage: mawk\nVersion: 1.3.4-1\nArchitecture: amd64\nProvides: awk\nPriority: required\nMulti-Arch: foreign\n\nPackage: other\nVersion: 1\nArchitecture: arm64\n";

    #[test]
    fn indexes_versions_and_providers() {
        let mut idx = Index::new("amd64");
        idx.add_packages_file(PACKAGES, &Arc::from("http://m"), "test")
            .unwrap();
        assert_eq!(idx.len(), 2, "arm64 package skipped");
        assert_eq!(idx.versions("hello")[0].version.to_string(), "2.10-3");
        assert_eq!(idx.versions("hello").len(), 2);
        assert_eq!(idx.providers("awk")[0].0, "mawk");
        let mawk = &idx.versions("mawk")[0];
        assert_eq!(mawk.priority, Priority::Required);
        assert_eq!(mawk.multi_arch, MultiArch::Foreign);
    }

    #[test]
    fn splits_at_paragraph_boundaries() {
        use std::fmt::Write as _;
        let mut text = String::new();
        for i in 0..20_000 {
            writeln!(text, "Package: p{i}\nVersion: 1\nArchitecture: amd64\n").unwrap();
        }
        let chunks = split_paragraphs(&text, 8);
        assert!(chunks.len() > 4, "{}", chunks.len());
        assert_eq!(chunks.concat(), text);
        assert!(chunks.iter().all(|c| c.starts_with("Package: p")));
        let mut idx = Index::new("amd64");
        idx.add_packages_file(&text, &Arc::from("m"), "t").unwrap();
        assert_eq!(idx.len(), 20_000);
        assert_eq!(idx.versions("p19999").len(), 1);
    }

    #[test]
    fn status_counts_only_installed() {
        let status = b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n";
        let inst = Installed::parse(status, "amd64").unwrap();
        assert!(inst.get("a").is_some());
        assert!(inst.get("b").is_none());
    }

    #[test]
    fn bad_version_names_the_package_and_origin() {
        let mut idx = Index::new("amd64");
        let err = idx
            .add_packages_file(
                "Package: x\nVersion: a b\n",
                &Arc::from("m"),
                "main/Packages.xz",
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("main/Packages.xz") && err.contains("package x"),
            "{err}"
        );
    }
}
