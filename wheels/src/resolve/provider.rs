//! pubgrub's view of the packages: versions to choose from and their dependencies.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use pep508_rs::pep440_rs::Version;
use pep508_rs::{ExtraName, PackageName, Requirement, VersionOrUrl};
use pubgrub::{Dependencies, DependencyProvider, PackageResolutionStatistics, Ranges};
use url::Url;

use super::state::{State, lock};
use crate::error::Error;
use crate::requirements::{Requirements, Source};
use crate::specifiers::to_ranges;

/// A package to pubgrub: the root, a distribution, or a distribution with an extra.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Pkg {
    Root,
    Name(PackageName),
    Extra(PackageName, ExtraName),
}

impl Pkg {
    pub fn name(&self) -> Option<&PackageName> {
        match self {
            Pkg::Root => None,
            Pkg::Name(n) | Pkg::Extra(n, _) => Some(n),
        }
    }
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => write!(f, "your requirements"),
            Pkg::Name(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// The provider's error: the crate's error, cloned out of shared futures.
#[derive(Debug, Clone)]
pub(crate) struct ProviderError(pub Error);

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<Error> for ProviderError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

type Deps = Vec<(Pkg, Ranges<Version>)>;

pub(crate) struct Provider {
    state: Arc<State>,
    handle: tokio::runtime::Handle,
    root: Deps,
    /// Discovery order, for stable tie-breaking (earlier first, like pip's depth-first order).
    order: Mutex<HashMap<Pkg, usize>>,
}

fn add(deps: &mut Deps, pkg: Pkg, range: Ranges<Version>) {
    if let Some((_, r)) = deps.iter_mut().find(|(p, _)| *p == pkg) {
        *r = r.intersection(&range);
    } else {
        deps.push((pkg, range));
    }
}

impl Provider {
    pub fn new(state: Arc<State>, handle: tokio::runtime::Handle, reqs: &Requirements) -> Self {
        let root = root_dependencies(reqs, &state);
        Self {
            state,
            handle,
            root,
            order: Mutex::new(HashMap::new()),
        }
    }

    fn project(
        &self,
        name: &PackageName,
    ) -> std::result::Result<Arc<super::state::Project>, ProviderError> {
        let fut = self.state.project_future(name);
        self.handle.block_on(fut).map_err(ProviderError)
    }

    fn add_requirement(&self, r: &Requirement<Url>, parent: &PackageName, deps: &mut Deps) {
        let range = match &r.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(s)) => to_ranges(s),
            _ => Ranges::full(),
        };
        let range = self.state.constrain(&r.name, range);
        if &r.name != parent {
            add(deps, Pkg::Name(r.name.clone()), range.clone());
        }
        for x in &r.extras {
            add(deps, Pkg::Extra(r.name.clone(), x.clone()), range.clone());
        }
    }
}

fn root_dependencies(reqs: &Requirements, state: &State) -> Deps {
    let mut deps = Deps::new();
    for e in &reqs.requirements {
        match &e.source {
            Source::Pep508(r) => {
                if !r.marker.evaluate(&state.env, &[]) {
                    continue;
                }
                let range = state.root_range(r);
                add(&mut deps, Pkg::Name(r.name.clone()), range.clone());
                for x in &r.extras {
                    add(
                        &mut deps,
                        Pkg::Extra(r.name.clone(), x.clone()),
                        range.clone(),
                    );
                }
            }
            Source::Direct(d) => {
                if !d.marker.evaluate(&state.env, &[]) {
                    continue;
                }
                let direct = lock(&state.direct);
                // Named by the file, `#egg=` or `name @`, else by its metadata.
                let loaded = d
                    .name
                    .as_ref()
                    .and_then(|n| direct.get(n).map(|l| (n.clone(), l.clone())))
                    .or_else(|| {
                        direct
                            .iter()
                            .find(|(_, l)| l.requested == requested_of(d))
                            .map(|(n, l)| (n.clone(), l.clone()))
                    });
                if let Some((name, l)) = loaded {
                    let range = state.constrain(&name, Ranges::singleton(l.version.clone()));
                    add(&mut deps, Pkg::Name(name.clone()), range.clone());
                    for x in &l.extras {
                        add(
                            &mut deps,
                            Pkg::Extra(name.clone(), x.clone()),
                            range.clone(),
                        );
                    }
                }
            }
        }
    }
    deps
}

/// The `requested` text a loaded direct requirement records for its location.
fn requested_of(d: &crate::requirements::Direct) -> String {
    use crate::requirements::Location;
    match &d.location {
        Location::Url(u) => u.to_string(),
        Location::Path(p) => {
            Url::from_file_path(p).map_or_else(|()| p.display().to_string(), |u| u.to_string())
        }
        Location::Git(g) => g.to_string(),
    }
}

impl DependencyProvider for Provider {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = ProviderError;
    type Priority = (bool, u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let mut order = lock(&self.order);
        let n = order.len();
        let idx = *order.entry(package.clone()).or_insert(n);
        (
            range.as_singleton().is_some(),
            stats.conflict_count(),
            Reverse(idx),
        )
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> std::result::Result<Option<Version>, ProviderError> {
        let Some(name) = package.name() else {
            return Ok(Some(Version::new([0u64])));
        };
        if let Some(d) = lock(&self.state.direct).get(name) {
            return Ok(range.contains(&d.version).then(|| d.version.clone()));
        }
        let project = self.project(name)?;
        if project.versions.is_empty() {
            return Err(Error::NoCompatibleWheel(format!(
                "`{name}` has no installable files (no wheels or source archives with a valid name)"
            ))
            .into());
        }
        if let Some((v, _)) = self.state.pick(name, &project, range) {
            return Ok(Some(v));
        }
        // Nothing installable in range: say why, when a version in range exists but cannot be used.
        let allow_pre = self.state.allows_pre(name, &project);
        let blocked = project
            .versions
            .iter()
            .find(|(v, a)| a.is_err() && range.contains(v) && (allow_pre || !v.any_prerelease()));
        if let Some((v, Err(why))) = blocked
            && (range != &Ranges::full() || project.versions.iter().all(|(_, a)| a.is_err()))
        {
            return Err(self.state.unavailable_error(name, v, why).into());
        }
        Ok(None)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> std::result::Result<Dependencies<Pkg, Ranges<Version>, String>, ProviderError> {
        let (name, extra) = match package {
            Pkg::Root => {
                return Ok(Dependencies::Available(self.root.iter().cloned().collect()));
            }
            Pkg::Name(n) => (n, None),
            Pkg::Extra(n, e) => (n, Some(e)),
        };
        let direct = lock(&self.state.direct).get(name).cloned();
        let requires = if let Some(d) = direct {
            (
                d.meta.core.requires_dist.clone(),
                d.meta.core.requires_python.clone(),
            )
        } else {
            let project = self.project(name)?;
            let Some(dist) = project
                .versions
                .iter()
                .find(|(v, _)| v == version)
                .and_then(|(_, a)| a.as_ref().ok().cloned())
            else {
                return Ok(Dependencies::Unavailable("no installable file".into()));
            };
            let fut = self.state.metadata_future(name, version, dist);
            let meta = self.handle.block_on(fut).map_err(ProviderError)?;
            (
                meta.core.requires_dist.clone(),
                meta.core.requires_python.clone(),
            )
        };
        let (requires_dist, requires_python) = requires;
        let target_python: Version = self
            .state
            .target
            .python_full_version()
            .parse()
            .unwrap_or_else(|_| Version::new([3u64]));
        if let Some(rp) = &requires_python
            && !rp.contains(&target_python)
        {
            return Ok(Dependencies::Unavailable(format!(
                "it requires Python {rp}"
            )));
        }
        let mut deps = Deps::new();
        if let Some(e) = extra {
            add(
                &mut deps,
                Pkg::Name(name.clone()),
                Ranges::singleton(version.clone()),
            );
            for r in &requires_dist {
                // Only what this extra adds; the base requirements come with `name` itself.
                if r.marker.evaluate(&self.state.env, std::slice::from_ref(e))
                    && !r.marker.evaluate(&self.state.env, &[])
                {
                    self.add_requirement(r, name, &mut deps);
                }
            }
        } else {
            for r in &requires_dist {
                if r.marker.evaluate(&self.state.env, &[]) {
                    self.add_requirement(r, name, &mut deps);
                }
            }
        }
        {
            let mut parents = lock(&self.state.parents);
            for (pkg, _) in &deps {
                if let Pkg::Name(n) = pkg
                    && n != name
                {
                    parents
                        .entry(n.clone())
                        .or_insert_with(|| (name.clone(), version.clone()));
                }
            }
        }
        for (pkg, range) in &deps {
            if let Pkg::Name(n) = pkg {
                self.state.prefetch(&self.handle, n, range);
            }
        }
        Ok(Dependencies::Available(deps.into_iter().collect()))
    }
}
