//! What the resolver knows: project pages, metadata (fetched or prepared), direct
//! requirements, and where each requirement came from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use pep508_rs::pep440_rs::{Operator, Version};
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement, VersionOrUrl};
use pubgrub::Ranges;
use url::Url;

use super::report::{self, Unavailable};
use crate::build::{Builds, SdistBuilder};
use crate::error::{Error, Result};
use crate::filename::{TagRanking, WheelFilename, parse_sdist};
use crate::index::{Client, DistFile};
use crate::lock::{LockedBuild, LockedPackage};
use crate::metadata::CoreMetadata;
use crate::requirements::{Direct, Entry, FormatControl, GitUrl, Location, Requirements, Source};
use crate::specifiers::{mentions_prerelease, to_ranges};
use crate::target::Target;

pub(super) type SharedResult<T> = Shared<BoxFuture<'static, Result<Arc<T>>>>;

/// An installable file of a version.
#[derive(Debug, Clone)]
pub(super) enum Dist {
    Wheel(DistFile),
    Sdist(DistFile),
}

#[derive(Debug)]
pub(super) struct Project {
    /// Newest first.
    pub versions: Vec<(Version, std::result::Result<Dist, Unavailable>)>,
}

/// A distribution's metadata, and how to build it when it is a source.
#[derive(Debug)]
pub(super) struct Meta {
    pub core: CoreMetadata,
    pub build: Option<LockedBuild>,
    /// The file's sha256 when it was downloaded to read the metadata.
    pub sha256: Option<String>,
}

/// A direct requirement, loaded.
pub(super) struct Loaded {
    pub version: Version,
    pub meta: Meta,
    /// The archive (`None` for git).
    pub file: Option<DistFile>,
    pub git: Option<(GitUrl, String)>,
    /// The URL or path as written.
    pub requested: String,
    pub hashes: Vec<String>,
    pub extras: Vec<ExtraName>,
}

pub(super) struct State {
    pub client: Client,
    pub builds: Arc<Builds>,
    pub target: Target,
    pub ranking: TagRanking,
    pub env: MarkerEnvironment,
    pre_all: bool,
    pre_explicit: HashSet<PackageName>,
    pinned: HashSet<PackageName>,
    hashes: HashMap<PackageName, Vec<String>>,
    constraints: HashMap<PackageName, Ranges<Version>>,
    format: FormatControl,
    pub direct: Mutex<HashMap<PackageName, Arc<Loaded>>>,
    projects: Mutex<HashMap<PackageName, SharedResult<Project>>>,
    metadata: Mutex<HashMap<(PackageName, Version), SharedResult<Meta>>>,
    prefetched: Mutex<HashSet<PackageName>>,
    /// Where each top-level requirement is written: `(file:line, text)`.
    origins: Mutex<HashMap<PackageName, (String, String)>>,
    /// The package and version that first required each package.
    pub parents: Mutex<HashMap<PackageName, (PackageName, Version)>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn target_python(target: &Target) -> Version {
    target
        .python_full_version()
        .parse()
        .unwrap_or_else(|_| Version::new([3u64]))
}

impl State {
    pub fn new(
        client: Client,
        builder: Option<Arc<dyn SdistBuilder>>,
        reqs: &Requirements,
        target: &Target,
    ) -> Result<Self> {
        let mut pre_explicit = HashSet::new();
        let mut pinned = HashSet::new();
        let mut hashes: HashMap<PackageName, Vec<String>> = HashMap::new();
        let mut constraints: HashMap<PackageName, Ranges<Version>> = HashMap::new();
        let mut origins = HashMap::new();
        for e in reqs.requirements.iter().chain(&reqs.constraints) {
            if let Source::Pep508(r) = &e.source
                && let Some(VersionOrUrl::VersionSpecifier(s)) = &r.version_or_url
            {
                if mentions_prerelease(s) {
                    pre_explicit.insert(r.name.clone());
                }
                if s.iter()
                    .any(|s| matches!(s.operator(), Operator::Equal | Operator::ExactEqual))
                {
                    pinned.insert(r.name.clone());
                }
            }
            if let (Source::Pep508(r), false) = (&e.source, e.hashes.is_empty()) {
                hashes
                    .entry(r.name.clone())
                    .or_default()
                    .extend(e.hashes.iter().cloned());
            }
        }
        for e in &reqs.requirements {
            if let Some(name) = e.source.name() {
                origins
                    .entry(name.clone())
                    .or_insert_with(|| (e.origin.clone(), e.text.clone()));
            }
        }
        let env = target.marker_environment()?;
        for e in &reqs.constraints {
            if let Source::Pep508(r) = &e.source {
                if !r.marker.evaluate(&env, &[]) {
                    continue;
                }
                if let Some(VersionOrUrl::VersionSpecifier(s)) = &r.version_or_url {
                    let range = constraints
                        .remove(&r.name)
                        .unwrap_or_else(Ranges::full)
                        .intersection(&to_ranges(s));
                    constraints.insert(r.name.clone(), range);
                }
            }
        }
        let builds = Arc::new(Builds::new(
            builder,
            client.clone(),
            target.clone(),
            super::resolve_env,
        ));
        Ok(Self {
            client,
            builds,
            ranking: TagRanking::new(target),
            target: target.clone(),
            env,
            pre_all: reqs.pre,
            pre_explicit,
            pinned,
            hashes,
            constraints,
            format: reqs.format.clone(),
            direct: Mutex::new(HashMap::new()),
            projects: Mutex::new(HashMap::new()),
            metadata: Mutex::new(HashMap::new()),
            prefetched: Mutex::new(HashSet::new()),
            origins: Mutex::new(origins),
            parents: Mutex::new(HashMap::new()),
        })
    }

    fn has_builder(&self) -> bool {
        self.builds.builder.is_some()
    }

    /// Loads `name @ URL`, bare URLs and paths, and `git+…` requirements before solving.
    pub async fn load_direct(&self, reqs: &Requirements) -> Result<()> {
        let jobs = reqs.requirements.iter().filter_map(|e| match &e.source {
            Source::Direct(d) if d.marker.evaluate(&self.env, &[]) => Some(async move {
                self.load_one(e, d)
                    .await
                    .map_err(|source| Error::Requirement {
                        origin: e.origin.clone(),
                        requirement: e.text.clone(),
                        via: String::new(),
                        source: Box::new(source),
                    })
                    .map(|loaded| (e, loaded))
            }),
            _ => None,
        });
        for result in futures::future::join_all(jobs).await {
            let (entry, loaded) = result?;
            let name = loaded.meta.core.name.clone();
            let mut direct = lock(&self.direct);
            if let Some(other) = direct.get(&name)
                && other.requested != loaded.requested
            {
                return Err(Error::Requirement {
                    origin: entry.origin.clone(),
                    requirement: entry.text.clone(),
                    via: String::new(),
                    source: Box::new(Error::Conflict(format!(
                        "package `{name}` is also required from {}",
                        other.requested
                    ))),
                });
            }
            lock(&self.origins)
                .entry(name.clone())
                .or_insert_with(|| (entry.origin.clone(), entry.text.clone()));
            direct.insert(name, Arc::new(loaded));
        }
        Ok(())
    }

    async fn load_one(&self, entry: &Entry, d: &Direct) -> Result<Loaded> {
        let requested = match &d.location {
            Location::Url(u) => u.to_string(),
            Location::Path(p) => {
                Url::from_file_path(p).map_or_else(|()| p.display().to_string(), |u| u.to_string())
            }
            Location::Git(g) => g.to_string(),
        };
        let (meta, file, git) = match &d.location {
            Location::Git(g) => {
                if !entry.hashes.is_empty() {
                    return Err(Error::Hashes(format!(
                        "`{}`: --hash cannot be checked for a git repository (pip: \"Can't verify hashes for these requirements because we don't have a way to hash version control repositories\")",
                        entry.text
                    )));
                }
                if !self.has_builder() {
                    return Err(Error::NoBuilder {
                        what: format!("`{}` (a git repository)", entry.text),
                    });
                }
                let (git, url) = (self.builds.git.clone(), g.clone());
                let commit = tokio::task::spawn_blocking(move || git.resolve(&url))
                    .await
                    .map_err(|_| Error::Task("git"))??;
                let prepared = self
                    .builds
                    .git(&entry.text, g, &commit, d.name.as_ref())
                    .await?;
                let core = CoreMetadata::parse(&prepared.metadata, &g.to_string())?;
                check_metadata(&core, d.name.as_ref(), None, &g.to_string())?;
                let meta = Meta {
                    core,
                    build: Some(prepared.build),
                    sha256: None,
                };
                (meta, None, Some((g.clone(), commit)))
            }
            location => {
                let mut file = direct_file(location)?;
                if location.is_wheel() {
                    let wheel = WheelFilename::parse(&file.filename).ok_or_else(|| {
                        Error::InvalidWheel {
                            file: file.filename.clone(),
                            message: "not a wheel file name".into(),
                            source: None,
                        }
                    })?;
                    if self.ranking.rank(&wheel).is_none() {
                        return Err(Error::NoCompatibleWheel(format!(
                            "{} is built for {}, which the target ({}) cannot install; the target takes {}, ...",
                            file.filename,
                            wheel.tag_string(),
                            self.target,
                            self.ranking.top(4).join(", ")
                        )));
                    }
                    let path = self.client.download(&file, &entry.hashes).await?;
                    let (sha, size, text) = {
                        let (path, filename) = (path.clone(), file.filename.clone());
                        tokio::task::spawn_blocking(move || -> Result<_> {
                            Ok((
                                crate::index::sha256_file(&path)?,
                                fs_err::metadata(&path)?.len(),
                                crate::index::read_metadata_from_wheel(&path, &filename)?,
                            ))
                        })
                        .await
                        .map_err(|_| Error::Task("reading a wheel"))??
                    };
                    let core = CoreMetadata::parse(&text, &file.filename)?;
                    check_metadata(
                        &core,
                        Some(&wheel.name),
                        Some(&wheel.version),
                        &file.filename,
                    )?;
                    file.sha256 = Some(sha.clone());
                    file.size = Some(size);
                    let meta = Meta {
                        core,
                        build: None,
                        sha256: Some(sha),
                    };
                    (meta, Some(file), None)
                } else {
                    if !self.has_builder() {
                        return Err(Error::NoBuilder {
                            what: format!("`{}` (a source archive)", entry.text),
                        });
                    }
                    let version = parse_sdist(&file.filename).map(|(_, v)| v);
                    let meta = self
                        .sdist_meta(&file, d.name.as_ref(), version.as_ref(), &entry.hashes)
                        .await?;
                    file.sha256.clone_from(&meta.sha256);
                    (meta, Some(file), None)
                }
            }
        };
        Ok(Loaded {
            version: meta.core.version.clone(),
            meta,
            file,
            git,
            requested,
            hashes: entry.hashes.clone(),
            extras: d.extras.clone(),
        })
    }

    /// Downloads an sdist and reads (or prepares) its metadata.
    async fn sdist_meta(
        &self,
        file: &DistFile,
        name: Option<&PackageName>,
        version: Option<&Version>,
        hashes: &[String],
    ) -> Result<Meta> {
        let path = self.client.download(file, hashes).await?;
        let (sha, size) = {
            let p = path.clone();
            tokio::task::spawn_blocking(move || -> Result<_> {
                Ok((crate::index::sha256_file(&p)?, fs_err::metadata(&p)?.len()))
            })
            .await
            .map_err(|_| Error::Task("hashing an sdist"))??
        };
        let _ = size;
        let what = match (name, version) {
            (Some(n), Some(v)) => format!("{n} {v} ({})", file.filename),
            _ => file.filename.clone(),
        };
        let prepared = self
            .builds
            .sdist(&what, &file.filename, &path, &sha, name, version)
            .await?;
        let core = CoreMetadata::parse(&prepared.metadata, &file.filename)?;
        check_metadata(&core, name, version, &file.filename)?;
        Ok(Meta {
            core,
            build: Some(prepared.build),
            sha256: Some(sha),
        })
    }

    pub fn root_range(&self, r: &Requirement<Url>) -> Ranges<Version> {
        let range = match &r.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(s)) => to_ranges(s),
            Some(VersionOrUrl::Url(_)) | None => Ranges::full(),
        };
        self.constrain(&r.name, range)
    }

    pub fn constrain(&self, name: &PackageName, range: Ranges<Version>) -> Ranges<Version> {
        match self.constraints.get(name) {
            Some(c) => range.intersection(c),
            None => range,
        }
    }

    pub fn project_future(self: &Arc<Self>, name: &PackageName) -> SharedResult<Project> {
        let mut projects = lock(&self.projects);
        if let Some(f) = projects.get(name) {
            return f.clone();
        }
        let state = self.clone();
        let n = name.clone();
        let fut = async move {
            let files = state.client.project(&n).await?;
            if files.is_empty() && !lock(&state.direct).contains_key(&n) {
                return Err(state.client.not_found(&n));
            }
            Ok(Arc::new(state.build_project(&n, files)))
        }
        .boxed()
        .shared();
        projects.insert(name.clone(), fut.clone());
        fut
    }

    /// Groups files by version and picks each version's best wheel for the target (or its
    /// sdist, to be built), as `--no-binary`/`--only-binary` allow.
    fn build_project(&self, name: &PackageName, files: Vec<DistFile>) -> Project {
        let python = target_python(&self.target);
        let hashes = self.hashes.get(name);
        let allow_yanked = self.pinned.contains(name);
        let allowed = self.format.allowed(name);
        #[derive(Default)]
        struct Group {
            best: Option<(usize, DistFile)>,
            sdist: Option<DistFile>,
            sdist_name: Option<String>,
            reason: Option<Unavailable>,
            tags: Vec<String>,
        }
        let check = |f: &DistFile| -> Option<Unavailable> {
            if f.yanked && !allow_yanked {
                Some(Unavailable::Yanked)
            } else if f.requires_python().is_some_and(|s| !s.contains(&python)) {
                Some(Unavailable::RequiresPython(
                    f.requires_python.clone().unwrap_or_default(),
                ))
            } else if hashes.is_some_and(|h| f.sha256.as_ref().is_some_and(|s| !h.contains(s))) {
                Some(Unavailable::Hash)
            } else {
                None
            }
        };
        let mut groups: BTreeMap<Version, Group> = BTreeMap::new();
        for f in files {
            if let Some(w) = WheelFilename::parse(&f.filename) {
                if &w.name != name {
                    continue;
                }
                let g = groups.entry(w.version.clone()).or_default();
                let Some(rank) = self.ranking.rank(&w) else {
                    g.tags.push(w.tag_string());
                    continue;
                };
                if !allowed.wheel {
                    continue;
                }
                match check(&f) {
                    Some(r) => g.reason = Some(r),
                    None => {
                        if g.best.as_ref().is_none_or(|(r, _)| rank < *r) {
                            g.best = Some((rank, f));
                        }
                    }
                }
            } else if let Some((n, v)) = parse_sdist(&f.filename)
                && &n == name
            {
                let g = groups.entry(v).or_default();
                if g.sdist_name.is_none() {
                    g.sdist_name = Some(f.filename.clone());
                }
                if !allowed.sdist || g.sdist.is_some() {
                    continue;
                }
                match check(&f) {
                    Some(r) => g.reason = Some(r),
                    None => g.sdist = Some(f),
                }
            }
        }
        let builder = self.has_builder();
        let versions = groups
            .into_iter()
            .rev()
            .map(|(v, g)| {
                let availability = if let Some((_, f)) = g.best {
                    Ok(Dist::Wheel(f))
                } else if let (Some(f), true) = (&g.sdist, builder) {
                    Ok(Dist::Sdist(f.clone()))
                } else if let (Some(f), false) = (&g.sdist, builder) {
                    Err(Unavailable::NoBuilder {
                        sdist: f.filename.clone(),
                        tags: g.tags,
                    })
                } else if let Some(r) = g.reason {
                    Err(r)
                } else if !allowed.wheel && g.sdist_name.is_none() {
                    Err(Unavailable::NoSdist)
                } else {
                    Err(Unavailable::NoWheel {
                        tags: g.tags,
                        refused_sdist: g.sdist_name.filter(|_| !allowed.sdist),
                    })
                };
                (v, availability)
            })
            .collect();
        Project { versions }
    }

    pub fn metadata_future(
        self: &Arc<Self>,
        name: &PackageName,
        version: &Version,
        dist: Dist,
    ) -> SharedResult<Meta> {
        let key = (name.clone(), version.clone());
        let mut map = lock(&self.metadata);
        if let Some(f) = map.get(&key) {
            return f.clone();
        }
        let state = self.clone();
        let (name, version) = key.clone();
        let fut = async move {
            match dist {
                Dist::Wheel(file) => {
                    let text = state.client.metadata(&file).await?;
                    Ok(Arc::new(Meta {
                        core: CoreMetadata::parse(&text, &file.filename)?,
                        build: None,
                        sha256: file.sha256.clone(),
                    }))
                }
                Dist::Sdist(file) => {
                    let hashes = state.hashes.get(&name).cloned().unwrap_or_default();
                    state
                        .sdist_meta(&file, Some(&name), Some(&version), &hashes)
                        .await
                        .map(Arc::new)
                }
            }
        }
        .boxed()
        .shared();
        map.insert(key, fut.clone());
        fut
    }

    /// Starts fetching `name`'s page and the metadata of the version the solver will likely
    /// pick. For a source distribution that means preparing it (often building it, see
    /// `build::Builds`) now, side by side with the others, rather than one after another as
    /// the solver reaches them.
    pub fn prefetch(
        self: &Arc<Self>,
        handle: &tokio::runtime::Handle,
        name: &PackageName,
        range: &Ranges<Version>,
    ) {
        if !lock(&self.prefetched).insert(name.clone()) || lock(&self.direct).contains_key(name) {
            return;
        }
        let state = self.clone();
        let name = name.clone();
        let range = range.clone();
        handle.spawn(async move {
            let Ok(project) = state.project_future(&name).await else {
                return;
            };
            if let Some((v, d)) = state.pick(&name, &project, &range) {
                let _ = state.metadata_future(&name, &v, d).await;
            }
        });
    }

    pub fn allows_pre(&self, name: &PackageName, project: &Project) -> bool {
        self.pre_all
            || self.pre_explicit.contains(name)
            || project.versions.iter().all(|(v, _)| v.any_prerelease())
    }

    /// Newest installable version in `range`; pre-releases only when allowed; with
    /// `--prefer-binary`, the newest with a wheel first.
    pub fn pick(
        &self,
        name: &PackageName,
        project: &Project,
        range: &Ranges<Version>,
    ) -> Option<(Version, Dist)> {
        let pre = self.allows_pre(name, project);
        let find = |wheels_only: bool| {
            project.versions.iter().find_map(|(v, a)| match a {
                Ok(d)
                    if range.contains(v)
                        && (pre || !v.any_prerelease())
                        && (!wheels_only || matches!(d, Dist::Wheel(_))) =>
                {
                    Some((v.clone(), d.clone()))
                }
                _ => None,
            })
        };
        if self.format.prefer_binary {
            find(true).or_else(|| find(false))
        } else {
            find(false)
        }
    }

    pub fn unavailable_error(
        &self,
        name: &PackageName,
        version: &Version,
        why: &Unavailable,
    ) -> Error {
        report::unavailable(name, version, why, &self.target, &self.ranking)
    }

    /// Wraps a failure about the distribution `name` (`None`: the root) with the top-level
    /// requirement that led to it.
    pub fn in_context(&self, name: Option<&PackageName>, error: Error) -> Error {
        let Some(name) = name else {
            return error;
        };
        if matches!(error, Error::Requirement { .. }) {
            return error;
        }
        let origins = lock(&self.origins);
        let parents = lock(&self.parents);
        let mut chain = Vec::new();
        let mut current = name.clone();
        let mut seen = HashSet::new();
        while !origins.contains_key(&current) && seen.insert(current.clone()) {
            match parents.get(&current) {
                Some((p, v)) => {
                    chain.push(format!("{p} {v}"));
                    current = p.clone();
                }
                None => break,
            }
        }
        let Some((origin, text)) = origins.get(&current) else {
            return error;
        };
        let via = if chain.is_empty() {
            String::new()
        } else {
            chain.reverse();
            format!(": {} → {name}", chain.join(" → "))
        };
        Error::Requirement {
            origin: origin.clone(),
            requirement: text.clone(),
            via,
            source: Box::new(error),
        }
    }

    /// The lock entry of a chosen version, with its file's hash (downloaded now when the index
    /// gave none).
    pub async fn locked(&self, name: &PackageName, version: &Version) -> Result<LockedPackage> {
        let direct = lock(&self.direct).get(name).cloned();
        if let Some(d) = direct {
            return Ok(match (&d.git, &d.file) {
                (Some((g, commit)), _) => {
                    let mut url = format!("git+{}@{commit}", g.repository);
                    if let Some(sub) = &g.subdirectory {
                        let _ = write!(url, "#subdirectory={sub}");
                    }
                    LockedPackage {
                        name: name.to_string(),
                        version: version.to_string(),
                        filename: format!("{name}-{version}-git-{commit}"),
                        url,
                        direct_url: Some(d.requested.clone()),
                        build: d.meta.build.clone(),
                        ..LockedPackage::default()
                    }
                }
                (None, Some(f)) => LockedPackage {
                    name: name.to_string(),
                    version: version.to_string(),
                    filename: f.filename.clone(),
                    url: f.url.to_string(),
                    sha256: d.meta.sha256.clone().or_else(|| f.sha256.clone()),
                    hashes: d.hashes.clone(),
                    size: f.size,
                    direct_url: Some(d.requested.clone()),
                    build: d.meta.build.clone(),
                },
                (None, None) => return Err(Error::Task("locking a direct requirement")),
            });
        }
        let project = lock(&self.projects)
            .get(name)
            .cloned()
            .and_then(|f| f.peek().cloned())
            .and_then(std::result::Result::ok)
            .ok_or(Error::Task("locking a package"))?;
        let dist = project
            .versions
            .iter()
            .find(|(v, _)| v == version)
            .and_then(|(_, a)| a.as_ref().ok().cloned())
            .ok_or(Error::Task("locking a package"))?;
        let meta = lock(&self.metadata)
            .get(&(name.clone(), version.clone()))
            .cloned()
            .and_then(|f| f.peek().cloned())
            .and_then(std::result::Result::ok);
        let hashes = self.hashes.get(name).cloned().unwrap_or_default();
        let (file, build) = match dist {
            Dist::Wheel(f) => (f, None),
            Dist::Sdist(f) => (f, meta.as_ref().and_then(|m| m.build.clone())),
        };
        let mut sha256 = file
            .sha256
            .clone()
            .or_else(|| meta.as_ref().and_then(|m| m.sha256.clone()));
        let mut size = file.size;
        if sha256.is_none() {
            // A find-links file without a hash: the lock pins the one it has now.
            let path = self.client.download(&file, &hashes).await?;
            let p = path.clone();
            let (sha, len) = tokio::task::spawn_blocking(move || -> Result<_> {
                Ok((crate::index::sha256_file(&p)?, fs_err::metadata(&p)?.len()))
            })
            .await
            .map_err(|_| Error::Task("hashing a file"))??;
            sha256 = Some(sha);
            size = size.or(Some(len));
        }
        Ok(LockedPackage {
            name: name.to_string(),
            version: version.to_string(),
            filename: file.filename,
            url: file.url.to_string(),
            sha256,
            hashes,
            size,
            direct_url: None,
            build,
        })
    }
}

/// The metadata of a distribution must name the package and version it was taken for.
fn check_metadata(
    core: &CoreMetadata,
    name: Option<&PackageName>,
    version: Option<&Version>,
    file: &str,
) -> Result<()> {
    if let Some(n) = name
        && &core.name != n
    {
        return Err(Error::Metadata {
            file: file.to_string(),
            message: format!(
                "it is package `{}`, not `{n}` (pip refuses such a distribution too)",
                core.name
            ),
            source: None,
        });
    }
    if let Some(v) = version
        && &core.version != v
    {
        return Err(Error::Metadata {
            file: file.to_string(),
            message: format!(
                "its metadata says version {}, its file name {v} (pip refuses such a distribution too)",
                core.version
            ),
            source: None,
        });
    }
    Ok(())
}

/// The archive of a direct URL or path.
fn direct_file(location: &Location) -> Result<DistFile> {
    let (url, filename) = match location {
        Location::Url(u) => (u.clone(), location.filename()),
        Location::Path(p) => (
            Url::from_file_path(p).map_err(|()| {
                Error::Io(Arc::new(std::io::Error::other(format!(
                    "{} is not an absolute path",
                    p.display()
                ))))
            })?,
            location.filename(),
        ),
        Location::Git(_) => return Err(Error::Task("reading a direct file")),
    };
    let fragment = crate::requirements::direct::Fragment::parse(&url);
    let mut url = url;
    url.set_fragment(None);
    Ok(DistFile {
        filename: filename.unwrap_or_default(),
        url,
        sha256: fragment.sha256,
        requires_python: None,
        yanked: false,
        metadata: Some(false),
        size: None,
    })
}
