//! Dependency resolution: the requested packages plus everything they `Depends`/`Pre-Depends`
//! on, newest candidates first, skipping what the base's dpkg status already satisfies.
//!
//! Like apt's default resolver this is greedy (first satisfiable alternative, newest version),
//! not a SAT search; conflicts among the result are reported, not backtracked over.

use std::collections::{BTreeMap, VecDeque};

use crate::Error;
use crate::archive::Archive;
use crate::index::{Index, Installed, Package};
use crate::lock::{Lock, LockedPackage};
use crate::relation::{Atom, Clause, parse_relations};
use crate::version::Version;

/// A request: `name`, `name=version`, or `name:arch` (the arch must be the target's or `all`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    name: String,
    version: Option<Version>,
}

fn parse_request(text: &str) -> Result<Request, Error> {
    let text = text.trim();
    let (name, version) = match text.split_once('=') {
        Some((n, v)) => (
            n,
            Some(
                v.parse()
                    .map_err(|e: crate::version::VersionError| Error::Config(e.to_string()))?,
            ),
        ),
        None => (text, None),
    };
    let name = name.split(':').next().unwrap_or(name);
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !valid {
        return Err(Error::Config(format!("invalid package name {text:?}")));
    }
    Ok(Request {
        name: name.to_owned(),
        version,
    })
}

/// Resolves `names` against `archive` on top of the base whose `/var/lib/dpkg/status` is
/// `base_status` (empty for an empty base).
pub fn resolve(
    archive: &Archive,
    names: &[impl AsRef<str>],
    base_status: &[u8],
    arch: &str,
) -> Result<Lock, Error> {
    let installed = Installed::parse(base_status, arch)?;
    let mut resolver = Resolver {
        index: &archive.index,
        installed: &installed,
        arch,
        selected: BTreeMap::new(),
        why: BTreeMap::new(),
    };
    let mut requested = Vec::new();
    for name in names {
        requested.push(parse_request(name.as_ref())?);
    }
    let mut queue = VecDeque::new();
    for req in &requested {
        if let Some(pkg) = resolver.select_request(req)? {
            queue.push_back(pkg);
        }
    }
    while let Some(pkg) = queue.pop_front() {
        for clause in resolver.dependencies(pkg)? {
            if resolver.satisfied(&clause) {
                continue;
            }
            let chosen = resolver
                .choose(&clause)
                .ok_or_else(|| resolver.explain(pkg, &clause))?;
            resolver.why.insert(chosen.name.clone(), pkg.name.clone());
            if resolver
                .selected
                .insert(chosen.name.clone(), chosen)
                .is_none()
            {
                queue.push_back(chosen);
            }
        }
    }
    resolver.check_conflicts()?;
    Ok(Lock::new(
        arch,
        archive.config.sources.clone(),
        names.iter().map(|n| n.as_ref().to_owned()).collect(),
        resolver
            .selected
            .values()
            .map(|p| LockedPackage::from_package(p))
            .collect(),
    ))
}

struct Resolver<'a> {
    index: &'a Index,
    installed: &'a Installed,
    arch: &'a str,
    selected: BTreeMap<String, &'a Package>,
    /// Who pulled each package in (for explanations).
    why: BTreeMap<String, String>,
}

impl<'a> Resolver<'a> {
    fn select_request(&mut self, req: &Request) -> Result<Option<&'a Package>, Error> {
        let versions = self.index.versions(&req.name);
        if versions.is_empty() {
            let providers = self.index.providers(&req.name);
            if providers.is_empty() {
                if self.installed.get(&req.name).is_some() {
                    return Ok(None);
                }
                return Err(Error::UnknownPackage {
                    name: req.name.clone(),
                    suggestions: suggestions(self.index, &req.name),
                });
            }
            let atom = Atom {
                name: req.name.clone(),
                arch: None,
                constraint: None,
            };
            if self.atom_satisfied(&atom) {
                return Ok(None);
            }
            let mut names: Vec<&str> = providers.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            if names.len() > 1 {
                return Err(Error::Unsatisfiable(format!(
                    "package {} is a virtual package provided by: {}; name one of them",
                    req.name,
                    names.join(", ")
                )));
            }
            return Ok(self.choose(&Clause(vec![atom])).map(|p| self.add(p)));
        }
        let wanted = match &req.version {
            Some(v) => versions.iter().find(|p| &p.version == v).ok_or_else(|| {
                Error::Unsatisfiable(format!(
                    "version {v} of package {} is not in the archive (available: {})",
                    req.name,
                    list_versions(versions)
                ))
            })?,
            None => &versions[0],
        };
        if let Some(have) = self.installed.get(&req.name)
            && (req.version.is_none() || req.version.as_ref() == Some(&have.version))
        {
            return Ok(None);
        }
        Ok(Some(self.add(wanted)))
    }

    fn add(&mut self, pkg: &'a Package) -> &'a Package {
        self.selected.insert(pkg.name.clone(), pkg);
        pkg
    }

    fn dependencies(&self, pkg: &Package) -> Result<Vec<Clause>, Error> {
        let bad = |e: crate::relation::RelationError| Error::Index {
            origin: format!("package {} {}", pkg.name, pkg.version),
            reason: e.to_string(),
        };
        let mut clauses = parse_relations(&pkg.pre_depends, self.arch).map_err(bad)?;
        clauses.extend(parse_relations(&pkg.depends, self.arch).map_err(bad)?);
        Ok(clauses)
    }

    /// The package that will be installed under `name` (selected wins over the base's).
    fn current(&self, name: &str) -> Option<&'a Package> {
        self.selected
            .get(name)
            .copied()
            .or_else(|| self.installed.index.versions(name).first())
    }

    fn atom_satisfied(&self, atom: &Atom) -> bool {
        if let Some(p) = self.current(&atom.name)
            && atom
                .constraint
                .as_ref()
                .is_none_or(|c| c.matches(&p.version))
        {
            return true;
        }
        // Virtual: any installed or selected provider, with a matching version if constrained.
        let providers = self
            .index
            .providers(&atom.name)
            .iter()
            .chain(self.installed.index.providers(&atom.name));
        for (name, provided) in providers {
            let Some(p) = self.current(name) else {
                continue;
            };
            // The provider must still provide it in the version that will be installed.
            let Some(prov) = p.provides.iter().find(|pr| pr.name == atom.name) else {
                continue;
            };
            let _ = provided;
            match (&atom.constraint, &prov.version) {
                (None, _) => return true,
                (Some(c), Some(v)) if c.matches(v) => return true,
                _ => {}
            }
        }
        false
    }

    fn satisfied(&self, clause: &Clause) -> bool {
        clause.0.iter().any(|a| self.atom_satisfied(a))
    }

    /// The first alternative that can be satisfied: a real package's newest matching version,
    /// else the best provider (highest priority, then name).
    fn choose(&self, clause: &Clause) -> Option<&'a Package> {
        for atom in &clause.0 {
            let real = self.index.versions(&atom.name).iter().find(|p| {
                atom.constraint
                    .as_ref()
                    .is_none_or(|c| c.matches(&p.version))
            });
            if let Some(p) = real {
                return Some(p);
            }
            let mut providers: Vec<&'a Package> = self
                .index
                .providers(&atom.name)
                .iter()
                .filter(|(_, v)| match (&atom.constraint, v) {
                    (None, _) => true,
                    (Some(c), Some(v)) => c.matches(v),
                    (Some(_), None) => false,
                })
                .filter_map(|(name, _)| self.index.versions(name).first())
                .collect();
            providers.sort_by(|a, b| {
                a.priority
                    .cmp(&b.priority)
                    .then_with(|| a.name.cmp(&b.name))
            });
            if let Some(p) = providers.first() {
                return Some(p);
            }
        }
        None
    }

    fn chain(&self, name: &str) -> String {
        let mut chain = vec![name.to_owned()];
        let mut cur = name;
        while let Some(parent) = self.why.get(cur) {
            if chain.contains(parent) {
                break;
            }
            chain.push(parent.clone());
            cur = parent;
        }
        chain.reverse();
        chain.join(" -> ")
    }

    fn explain(&self, pkg: &Package, clause: &Clause) -> Error {
        let mut lines = vec![format!(
            "{} {} depends on {clause} (needed by: {})",
            pkg.name,
            pkg.version,
            self.chain(&pkg.name)
        )];
        for atom in &clause.0 {
            let versions = self.index.versions(&atom.name);
            let providers = self.index.providers(&atom.name);
            let line = if !versions.is_empty() {
                format!(
                    "  {}: available versions {}",
                    atom.name,
                    list_versions(versions)
                )
            } else if !providers.is_empty() {
                let list: Vec<String> = providers
                    .iter()
                    .map(|(n, v)| v.as_ref().map_or(n.clone(), |v| format!("{n} (= {v})")))
                    .collect();
                format!("  {}: virtual, provided by {}", atom.name, list.join(", "))
            } else {
                format!("  {}: not in the archive", atom.name)
            };
            lines.push(line);
        }
        Error::Unsatisfiable(lines.join("\n"))
    }

    fn check_conflicts(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        for pkg in self.selected.values() {
            for (field, text) in [("conflicts with", &pkg.conflicts), ("breaks", &pkg.breaks)] {
                let Ok(clauses) = parse_relations(text, self.arch) else {
                    continue;
                };
                for atom in clauses.iter().flat_map(|c| &c.0) {
                    if let Some(other) = self.conflicting(pkg, atom) {
                        problems.push(format!(
                            "{} {} {field} {atom}, but {} {} is to be installed",
                            pkg.name, pkg.version, other.name, other.version
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Unsatisfiable(problems.join("\n")))
        }
    }

    fn conflicting(&self, pkg: &Package, atom: &Atom) -> Option<&'a Package> {
        if atom.name != pkg.name
            && let Some(other) = self.current(&atom.name)
            && atom
                .constraint
                .as_ref()
                .is_none_or(|c| c.matches(&other.version))
        {
            return Some(other);
        }
        if atom.constraint.is_none() {
            // Conflicting with a virtual package: any other package providing it.
            for (name, _) in self.index.providers(&atom.name) {
                if name == &pkg.name {
                    continue;
                }
                if let Some(other) = self.selected.get(name)
                    && other.provides.iter().any(|p| p.name == atom.name)
                {
                    return Some(other);
                }
            }
        }
        None
    }
}

fn list_versions(versions: &[Package]) -> String {
    versions
        .iter()
        .map(|p| p.version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Up to five package names close to `name`: small edit distance, or sharing its prefix.
fn suggestions(index: &Index, name: &str) -> Vec<String> {
    let limit = (name.len() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, &str)> = index
        .names()
        .filter_map(|n| {
            let d = levenshtein(name, n);
            if d <= limit {
                Some((d, n))
            } else if n.starts_with(name) && n.len() <= name.len() + 4 {
                Some((limit + 1, n))
            } else {
                None
            }
        })
        .collect();
    scored.sort_unstable();
    scored
        .into_iter()
        .take(5)
        .map(|(_, n)| n.to_owned())
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 3 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The Essential packages (the newest candidate of each name).
pub fn essential_names(index: &Index) -> Vec<String> {
    let mut names: Vec<String> = index
        .candidates()
        .filter(|p| p.essential)
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The `debootstrap --variant=minbase` selection: every `Essential: yes` or `Priority: required`
/// package, plus `apt`.
pub fn minbase_names(index: &Index) -> Vec<String> {
    let mut names: Vec<String> = index
        .candidates()
        .filter(|p| p.essential || p.priority == crate::index::Priority::Required)
        .map(|p| p.name.clone())
        .collect();
    names.push("apt".to_owned());
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::archive::ArchiveConfig;

    const PACKAGES: &str = "\
Package: libc6
Version: 2.36-9
Architecture: amd64
Priority: optional
Multi-Arch: same
Filename: pool/l/libc6.deb
Size: 10
SHA256: aa

Package: hello
Version: 2.10-3
Architecture: amd64
Depends: libc6 (>= 2.34)
Filename: pool/h/hello.deb
Size: 10
SHA256: bb

Package: cowsay
Version: 3.03
Architecture: all
Depends: perl:any, awk | gawk
Filename: pool/c/cowsay.deb
Size: 10
SHA256: cc

Package: perl
Version: 5.36.0-7
Architecture: amd64
Multi-Arch: allowed
Filename: pool/p/perl.deb
Size: 10
SHA256: dd

Package: mawk
Version: 1.3.4
Architecture: amd64
Priority: required
Provides: awk
Filename: pool/m/mawk.deb
Size: 10
SHA256: ee

Package: original-awk
Version: 2012
Architecture: amd64
Priority: optional
Provides: awk
Filename: pool/o/oawk.deb
Size: 10
SHA256: ff

Package: needs-new-libc
Version: 1
Architecture: amd64
Depends: libc6 (>= 2.40) | libc6-compat
Filename: pool/n/n.deb
Size: 10
SHA256: 11

Package: py-thing
Version: 1
Architecture: all
Depends: python3-api (= 3)
Filename: pool/p/pt.deb
Size: 10
SHA256: 12

Package: python3-api-provider
Version: 1
Architecture: amd64
Provides: python3-api (= 3)
Filename: pool/p/pap.deb
Size: 10
SHA256: 13

Package: fights-hello
Version: 1
Architecture: amd64
Conflicts: hello
Filename: pool/f/f.deb
Size: 10
SHA256: 14
";

    fn archive() -> Archive {
        let mut index = Index::new("amd64");
        index
            .add_packages_file(PACKAGES, &Arc::from("http://mirror"), "test")
            .unwrap();
        Archive::from_index(ArchiveConfig::debian("bookworm", "amd64"), index)
    }

    fn names(lock: &Lock) -> Vec<String> {
        lock.packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }

    #[test]
    fn resolves_dependencies_newest_first() {
        let lock = resolve(&archive(), &["hello"], b"", "amd64").unwrap();
        assert_eq!(names(&lock), ["hello=2.10-3", "libc6=2.36-9"]);
        assert_eq!(lock.packages[0].url, "http://mirror/pool/h/hello.deb");
    }

    #[test]
    fn skips_what_the_base_has() {
        let status = b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\nMulti-Arch: same\n";
        let lock = resolve(&archive(), &["hello"], status, "amd64").unwrap();
        assert_eq!(names(&lock), ["hello=2.10-3"]);
        // An older base version that does not satisfy the constraint gets upgraded.
        let old = b"Package: libc6\nStatus: install ok installed\nVersion: 2.31-13\nArchitecture: amd64\n";
        let lock = resolve(&archive(), &["hello"], old, "amd64").unwrap();
        assert_eq!(names(&lock), ["hello=2.10-3", "libc6=2.36-9"]);
    }

    #[test]
    fn virtual_dependencies_pick_the_most_important_provider() {
        let lock = resolve(&archive(), &["cowsay"], b"", "amd64").unwrap();
        assert_eq!(names(&lock), ["cowsay=3.03", "mawk=1.3.4", "perl=5.36.0-7"]);
        let lock = resolve(&archive(), &["original-awk", "cowsay"], b"", "amd64").unwrap();
        assert!(
            !names(&lock).iter().any(|n| n.starts_with("mawk")),
            "awk already provided"
        );
    }

    #[test]
    fn versioned_provides_satisfy_versioned_dependencies() {
        let lock = resolve(&archive(), &["py-thing"], b"", "amd64").unwrap();
        assert_eq!(names(&lock), ["py-thing=1", "python3-api-provider=1"]);
    }

    #[test]
    fn unknown_packages_are_named_with_close_matches() {
        let err = resolve(&archive(), &["helo"], b"", "amd64")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "unable to locate package helo (did you mean: hello?)");
    }

    #[test]
    fn unsatisfiable_dependencies_are_explained() {
        let err = resolve(&archive(), &["needs-new-libc"], b"", "amd64")
            .unwrap_err()
            .to_string();
        insta::assert_snapshot!(err, @r"
        unsatisfiable dependencies:
        needs-new-libc 1 depends on libc6 (>= 2.40) | libc6-compat (needed by: needs-new-libc)
          libc6: available versions 2.36-9
          libc6-compat: not in the archive
        ");
    }

    #[test]
    fn conflicts_are_reported() {
        let err = resolve(&archive(), &["hello", "fights-hello"], b"", "amd64")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fights-hello 1 conflicts with hello"), "{err}");
    }

    #[test]
    fn requested_virtual_with_many_providers_must_be_named() {
        let err = resolve(&archive(), &["awk"], b"", "amd64")
            .unwrap_err()
            .to_string();
        assert!(err.contains("provided by: mawk, original-awk"), "{err}");
    }

    #[test]
    fn exact_versions_can_be_requested() {
        let err = resolve(&archive(), &["hello=9.9"], b"", "amd64")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("version 9.9 of package hello is not in the archive (available: 2.10-3)"),
            "{err}"
        );
        assert!(resolve(&archive(), &["Bad Name"], b"", "amd64").is_err());
    }

    #[test]
    fn minbase_takes_required_and_apt() {
        assert_eq!(minbase_names(&archive().index), ["apt", "mawk"]);
    }
}
