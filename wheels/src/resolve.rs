//! The resolver: pubgrub over the index, newest compatible wheels first, metadata prefetched in
//! parallel while the solver runs.
//!
//! pubgrub is synchronous; it runs on a blocking thread and waits on shared futures that tokio
//! drives concurrently. Whenever a package's dependencies become known, the project pages of
//! those dependencies and the metadata of their likely versions are fetched in the background,
//! so the solver rarely waits on the network.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use pep508_rs::pep440_rs::Version;
use pep508_rs::{ExtraName, MarkerEnvironment, PackageName, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyProvider, PackageResolutionStatistics,
    PubGrubError, Ranges, Reporter,
};
use url::Url;

use crate::error::{Error, Result};
use crate::filename::{TagRanking, WheelFilename, parse_sdist};
use crate::index::config::{PYPI_SIMPLE, PipConfig, normalize_index_url};
use crate::index::{Client, ClientOptions, DistFile};
use crate::lock::{LOCK_VERSION, Lock, LockedPackage};
use crate::metadata::CoreMetadata;
use crate::requirements::{Requirements, Source};
use crate::specifiers::{mentions_prerelease, to_ranges};
use crate::target::Target;

/// How to resolve.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// On-disk cache; `None` disables it. Default: [`crate::index::default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// pip's configured index settings; `None` reads them from the environment and pip config.
    pub pip_config: Option<PipConfig>,
    /// Attempts per HTTP request (retries on connection errors, 429, 5xx).
    pub attempts: u32,
    pub backoff: Duration,
    pub concurrency: usize,
    /// Treat cached index pages as fresh for this long (default: as the server says).
    pub max_age: Option<Duration>,
    /// Re-resolve even when a lock with the same inputs exists (`--upgrade`).
    pub upgrade: bool,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        let c = ClientOptions::default();
        Self {
            cache_dir: c.cache_dir,
            pip_config: None,
            attempts: c.attempts,
            backoff: c.backoff,
            concurrency: c.concurrency,
            max_age: None,
            upgrade: false,
        }
    }
}

impl ResolveOptions {
    /// The index client settings for these requirements: `-i` (else pip's `index-url`, else
    /// PyPI), then pip's and the file's `--extra-index-url`s; pip's and the file's find-links.
    pub fn client_options(&self, reqs: &Requirements) -> ClientOptions {
        let pip = self
            .pip_config
            .clone()
            .unwrap_or_else(PipConfig::from_environment);
        let mut indexes = Vec::new();
        if !reqs.no_index {
            let default = pip
                .index_url
                .clone()
                .or_else(|| normalize_index_url(PYPI_SIMPLE).ok());
            indexes.extend(reqs.index_url.clone().or(default));
            for u in pip.extra_index_urls.iter().chain(&reqs.extra_index_urls) {
                if !indexes.contains(u) {
                    indexes.push(u.clone());
                }
            }
        }
        let mut find_links = pip.find_links.clone();
        for f in &reqs.find_links {
            if !find_links.contains(f) {
                find_links.push(f.clone());
            }
        }
        ClientOptions {
            indexes,
            find_links,
            cache_dir: self.cache_dir.clone(),
            attempts: self.attempts,
            backoff: self.backoff,
            concurrency: self.concurrency,
            max_age: self.max_age,
            ..ClientOptions::default()
        }
    }
}

/// The lock's input hash for these requirements, options and target.
pub fn input_hash(reqs: &Requirements, target: &Target, options: &ResolveOptions) -> String {
    let client = options.client_options(reqs);
    let sources: Vec<String> = client
        .indexes
        .iter()
        .map(ToString::to_string)
        .chain(client.find_links.iter().map(|f| format!("find-links {f}")))
        .collect();
    Lock::input_hash(&reqs.input_hash(), &sources, target)
}

/// Resolves on a dedicated runtime; callable from sync code and from inside a tokio runtime.
pub fn resolve(reqs: &Requirements, target: &Target, options: &ResolveOptions) -> Result<Lock> {
    let (reqs, target, options) = (reqs.clone(), target.clone(), options.clone());
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = rt.block_on(resolve_async(&reqs, &target, &options));
            // Do not wait for stray blocking tasks (e.g. the DNS lookup of a connection hyper
            // started and no longer needs): a plain drop of the runtime waits for them, and
            // was seen to add seconds after all the work was done.
            rt.shutdown_background();
            result
        })
        .join()
        .map_err(|_| Error::Other("resolver thread panicked".into()))?
    })
}

/// Reuses the lock at `path` when its inputs are unchanged (and not `upgrade`), else resolves
/// and writes it. Returns the lock and whether it was reused.
pub fn resolve_locked(
    path: &std::path::Path,
    reqs: &Requirements,
    target: &Target,
    options: &ResolveOptions,
) -> Result<(Lock, bool)> {
    let hash = input_hash(reqs, target, options);
    if !options.upgrade
        && let Some(lock) = Lock::read(path)?
        && lock.input_hash == hash
        && lock.version == LOCK_VERSION
    {
        return Ok((lock, true));
    }
    let lock = resolve(reqs, target, options)?;
    lock.write(path)?;
    Ok((lock, false))
}

/// Resolves `reqs` for `target`: newest compatible versions, as pip would choose them.
pub async fn resolve_async(
    reqs: &Requirements,
    target: &Target,
    options: &ResolveOptions,
) -> Result<Lock> {
    let client_options = options.client_options(reqs);
    let client = Client::new(client_options)?;
    let state = Arc::new(State::new(client, reqs, target)?);
    state.load_direct(reqs).await?;
    let handle = tokio::runtime::Handle::current();
    for e in &reqs.requirements {
        if let Source::Pep508(r) = &e.source
            && r.marker.evaluate(&state.env, &[])
        {
            state.prefetch(&handle, &r.name, &state.root_range(r));
        }
    }
    let provider = Provider {
        state: state.clone(),
        handle: handle.clone(),
        root: root_dependencies(reqs, &state),
        order: Mutex::new(HashMap::new()),
    };
    let selected = tokio::task::spawn_blocking(move || {
        let result = pubgrub::resolve(&provider, Pkg::Root, Version::new([0u64]));
        (result, provider)
    })
    .await
    .map_err(|e| Error::Other(format!("resolver task failed: {e}")))?;
    let solution = match selected.0 {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(mut tree)) => {
            tree.collapse_no_versions();
            return Err(Error::Conflict(prettify(&DefaultStringReporter::report(
                &tree,
            ))));
        }
        Err(
            PubGrubError::ErrorChoosingVersion { source, .. }
            | PubGrubError::ErrorRetrievingDependencies { source, .. },
        ) => {
            return Err(source.into_error());
        }
        Err(e) => return Err(Error::Other(e.to_string())),
    };
    let mut packages = Vec::new();
    for (pkg, version) in solution {
        let Pkg::Name(name) = pkg else { continue };
        packages.push(state.locked(&name, &version)?);
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Lock {
        version: LOCK_VERSION,
        input_hash: input_hash(reqs, target, options),
        target: target.clone(),
        packages,
    })
}

/// pubgrub's view of a package: the root, a distribution, or a distribution with an extra.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Pkg {
    Root,
    Name(PackageName),
    Extra(PackageName, ExtraName),
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

/// Why a version cannot be installed.
#[derive(Debug, Clone)]
enum Unavailable {
    SourceOnly(String),
    NoWheel(Vec<String>),
    RequiresPython(String),
    Yanked,
    Hash,
}

#[derive(Debug)]
struct Project {
    /// Newest first.
    versions: Vec<(Version, std::result::Result<DistFile, Unavailable>)>,
}

/// A `name @ URL` or local-path distribution.
struct Direct {
    file: DistFile,
    version: Version,
    metadata: CoreMetadata,
    requested: String,
}

type SharedResult<T> = Shared<BoxFuture<'static, std::result::Result<Arc<T>, Arc<Error>>>>;

struct State {
    client: Client,
    target: Target,
    ranking: TagRanking,
    env: MarkerEnvironment,
    pre_all: bool,
    pre_explicit: HashSet<PackageName>,
    pinned: HashSet<PackageName>,
    hashes: HashMap<PackageName, Vec<String>>,
    constraints: HashMap<PackageName, Ranges<Version>>,
    direct: Mutex<HashMap<PackageName, Arc<Direct>>>,
    projects: Mutex<HashMap<PackageName, SharedResult<Project>>>,
    metadata: Mutex<HashMap<(PackageName, Version), SharedResult<CoreMetadata>>>,
    prefetched: Mutex<HashSet<PackageName>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn new(client: Client, reqs: &Requirements, target: &Target) -> Result<Self> {
        let mut pre_explicit = HashSet::new();
        let mut pinned = HashSet::new();
        let mut hashes: HashMap<PackageName, Vec<String>> = HashMap::new();
        let mut constraints: HashMap<PackageName, Ranges<Version>> = HashMap::new();
        for e in reqs.requirements.iter().chain(&reqs.constraints) {
            if let Source::Pep508(r) = &e.source
                && let Some(VersionOrUrl::VersionSpecifier(s)) = &r.version_or_url
            {
                if mentions_prerelease(s) {
                    pre_explicit.insert(r.name.clone());
                }
                if s.iter().any(|s| {
                    matches!(
                        s.operator(),
                        pep508_rs::pep440_rs::Operator::Equal
                            | pep508_rs::pep440_rs::Operator::ExactEqual
                    )
                }) {
                    pinned.insert(r.name.clone());
                }
            }
            if !e.hashes.is_empty() {
                hashes
                    .entry(e.source.name().clone())
                    .or_default()
                    .extend(e.hashes.iter().cloned());
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
        Ok(Self {
            client,
            ranking: TagRanking::new(target),
            target: target.clone(),
            env,
            pre_all: reqs.pre,
            pre_explicit,
            pinned,
            hashes,
            constraints,
            direct: Mutex::new(HashMap::new()),
            projects: Mutex::new(HashMap::new()),
            metadata: Mutex::new(HashMap::new()),
            prefetched: Mutex::new(HashSet::new()),
        })
    }

    /// Fetches metadata of `name @ URL` and local files before solving.
    async fn load_direct(&self, reqs: &Requirements) -> Result<()> {
        let mut jobs = Vec::new();
        for e in &reqs.requirements {
            let (name, url, requested) = match &e.source {
                Source::Pep508(r) => match &r.version_or_url {
                    Some(VersionOrUrl::Url(u)) => (r.name.clone(), u.clone(), u.to_string()),
                    _ => continue,
                },
                Source::Path { name, path } => {
                    let url = Url::from_file_path(path)
                        .map_err(|()| Error::Other(format!("bad path {}", path.display())))?;
                    (name.clone(), url.clone(), url.to_string())
                }
            };
            let hashes = e.hashes.clone();
            jobs.push(async move {
                let filename = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or_default().to_string();
                let Some(wheel) = WheelFilename::parse(&filename) else {
                    if let Some((_, v)) = parse_sdist(&filename) {
                        return Err(Error::SourceOnly { name: name.to_string(), version: v.to_string(), file: filename });
                    }
                    return Err(Error::Other(format!("{name} @ {url}: only wheels can be installed (got {filename:?}); VCS and source URLs are not supported")));
                };
                if wheel.name != name {
                    return Err(Error::Other(format!("{name} @ {url}: the wheel is for package `{}`", wheel.name)));
                }
                if self.ranking.rank(&wheel).is_none() {
                    return Err(Error::NoCompatibleWheel(format!(
                        "{filename} ({name} @ {url}) does not match the target {}: it is built for {}; the target supports {}",
                        self.target,
                        wheel.tag_string(),
                        self.ranking.top(5).join(", ")
                    )));
                }
                let mut file_url = url.clone();
                let sha256 = url.fragment().and_then(|f| f.strip_prefix("sha256=")).map(str::to_ascii_lowercase);
                file_url.set_fragment(None);
                let file = DistFile {
                    filename: filename.clone(),
                    url: file_url,
                    sha256,
                    requires_python: None,
                    yanked: false,
                    metadata: Some(false),
                    size: None,
                };
                let text = self.client.metadata(&file).await?;
                let metadata = CoreMetadata::parse(&text, &filename)?;
                // Local and direct files get their hash computed at download time.
                let _ = hashes;
                Ok((name, Direct { file, version: wheel.version, metadata, requested }))
            });
        }
        for result in futures::future::join_all(jobs).await {
            let (name, d) = result?;
            lock(&self.direct).insert(name, Arc::new(d));
        }
        Ok(())
    }

    fn root_range(&self, r: &Requirement<Url>) -> Ranges<Version> {
        let range = match &r.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(s)) => to_ranges(s),
            Some(VersionOrUrl::Url(_)) => lock(&self.direct)
                .get(&r.name)
                .map_or_else(Ranges::full, |d| Ranges::singleton(d.version.clone())),
            None => Ranges::full(),
        };
        self.constrain(&r.name, range)
    }

    fn constrain(&self, name: &PackageName, range: Ranges<Version>) -> Ranges<Version> {
        match self.constraints.get(name) {
            Some(c) => range.intersection(c),
            None => range,
        }
    }

    fn project_future(self: &Arc<Self>, name: &PackageName) -> SharedResult<Project> {
        let mut projects = lock(&self.projects);
        if let Some(f) = projects.get(name) {
            return f.clone();
        }
        let state = self.clone();
        let n = name.clone();
        let fut = async move {
            let files = state.client.project(&n).await.map_err(Arc::new)?;
            if files.is_empty() && !lock(&state.direct).contains_key(&n) {
                return Err(Arc::new(state.client.not_found(&n)));
            }
            Ok(Arc::new(state.build_project(&n, files)))
        }
        .boxed()
        .shared();
        projects.insert(name.clone(), fut.clone());
        fut
    }

    /// Groups files by version and picks each version's best wheel for the target.
    fn build_project(&self, name: &PackageName, files: Vec<DistFile>) -> Project {
        let target_python: Version = self
            .target
            .python_full_version()
            .parse()
            .unwrap_or_else(|_| Version::new([3u64]));
        let hashes = self.hashes.get(name);
        let allow_yanked = self.pinned.contains(name);
        #[derive(Default)]
        struct Group {
            best: Option<(usize, DistFile)>,
            reason: Option<Unavailable>,
            tags: Vec<String>,
            sdist: Option<String>,
        }
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
                let reason = if f.yanked && !allow_yanked {
                    Some(Unavailable::Yanked)
                } else if f
                    .requires_python()
                    .is_some_and(|s| !s.contains(&target_python))
                {
                    Some(Unavailable::RequiresPython(
                        f.requires_python.clone().unwrap_or_default(),
                    ))
                } else if hashes.is_some_and(|h| f.sha256.as_ref().is_some_and(|s| !h.contains(s)))
                {
                    Some(Unavailable::Hash)
                } else {
                    None
                };
                match reason {
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
                groups.entry(v).or_default().sdist = Some(f.filename);
            }
        }
        let versions = groups
            .into_iter()
            .rev()
            .map(|(v, g)| {
                let availability = match (g.best, g.reason, g.tags.is_empty(), g.sdist) {
                    (Some((_, f)), _, _, _) => Ok(f),
                    (None, Some(r), _, _) => Err(r),
                    (None, None, false, _) => Err(Unavailable::NoWheel(g.tags)),
                    (None, None, true, Some(s)) => Err(Unavailable::SourceOnly(s)),
                    (None, None, true, None) => Err(Unavailable::NoWheel(Vec::new())),
                };
                (v, availability)
            })
            .collect();
        Project { versions }
    }

    fn metadata_future(
        self: &Arc<Self>,
        name: &PackageName,
        version: &Version,
        file: DistFile,
    ) -> SharedResult<CoreMetadata> {
        let key = (name.clone(), version.clone());
        let mut map = lock(&self.metadata);
        if let Some(f) = map.get(&key) {
            return f.clone();
        }
        let state = self.clone();
        let fut = async move {
            let text = state.client.metadata(&file).await.map_err(Arc::new)?;
            CoreMetadata::parse(&text, &file.filename)
                .map(Arc::new)
                .map_err(Arc::new)
        }
        .boxed()
        .shared();
        map.insert(key, fut.clone());
        fut
    }

    /// Starts fetching `name`'s page and the metadata of the version the solver will likely pick.
    fn prefetch(
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
            if let Some((v, f)) = state.pick(&name, &project, &range) {
                let _ = state.metadata_future(&name, &v, f).await;
            }
        });
    }

    fn allows_pre(&self, name: &PackageName, project: &Project) -> bool {
        self.pre_all
            || self.pre_explicit.contains(name)
            || project.versions.iter().all(|(v, _)| v.any_prerelease())
    }

    /// Newest installable version in `range`; pre-releases only when allowed.
    fn pick(
        &self,
        name: &PackageName,
        project: &Project,
        range: &Ranges<Version>,
    ) -> Option<(Version, DistFile)> {
        let find = |pre: bool| {
            project.versions.iter().find_map(|(v, a)| match a {
                Ok(f) if range.contains(v) && (pre || !v.any_prerelease()) => {
                    Some((v.clone(), f.clone()))
                }
                _ => None,
            })
        };
        if self.allows_pre(name, project) {
            find(true)
        } else {
            find(false)
        }
    }

    fn unavailable_error(&self, name: &PackageName, version: &Version, why: &Unavailable) -> Error {
        match why {
            Unavailable::SourceOnly(file) => Error::SourceOnly {
                name: name.to_string(),
                version: version.to_string(),
                file: file.clone(),
            },
            Unavailable::NoWheel(tags) => {
                let mut available: Vec<String> = tags.clone();
                available.sort();
                available.dedup();
                Error::NoCompatibleWheel(format!(
                    "no wheel of `{name}` {version} matches the target ({}).\n  the target supports: {}, ...\n  available: {}",
                    self.target,
                    self.ranking.top(4).join(", "),
                    if available.is_empty() {
                        "no wheels".to_string()
                    } else {
                        available.join(", ")
                    }
                ))
            }
            Unavailable::RequiresPython(spec) => Error::NoCompatibleWheel(format!(
                "`{name}` {version} requires Python {spec}, but the target is Python {}",
                self.target.python_full_version()
            )),
            Unavailable::Yanked => Error::NoCompatibleWheel(format!(
                "`{name}` {version} was yanked; pin it with == to use it anyway"
            )),
            Unavailable::Hash => Error::NoCompatibleWheel(format!(
                "no file of `{name}` {version} matches the --hash values in the requirements"
            )),
        }
    }

    fn locked(&self, name: &PackageName, version: &Version) -> Result<LockedPackage> {
        let hashes = self.hashes.get(name).cloned().unwrap_or_default();
        if let Some(d) = lock(&self.direct).get(name) {
            return Ok(LockedPackage {
                name: name.to_string(),
                version: version.to_string(),
                filename: d.file.filename.clone(),
                url: d.file.url.to_string(),
                sha256: d.file.sha256.clone(),
                hashes,
                size: d.file.size,
                direct_url: Some(d.requested.clone()),
            });
        }
        let fut = lock(&self.projects).get(name).cloned();
        let project = fut
            .and_then(|f| f.peek().cloned())
            .and_then(std::result::Result::ok);
        let file = project
            .and_then(|p| {
                p.versions
                    .iter()
                    .find(|(v, _)| v == version)
                    .and_then(|(_, a)| a.as_ref().ok().cloned())
            })
            .ok_or_else(|| {
                Error::Other(format!("internal: no file recorded for {name} {version}"))
            })?;
        Ok(LockedPackage {
            name: name.to_string(),
            version: version.to_string(),
            filename: file.filename,
            url: file.url.to_string(),
            sha256: file.sha256,
            hashes,
            size: file.size,
            direct_url: None,
        })
    }
}

fn root_dependencies(reqs: &Requirements, state: &State) -> Vec<(Pkg, Ranges<Version>)> {
    let mut deps: Vec<(Pkg, Ranges<Version>)> = Vec::new();
    let mut add = |pkg: Pkg, range: Ranges<Version>| {
        if let Some((_, r)) = deps.iter_mut().find(|(p, _)| *p == pkg) {
            *r = r.intersection(&range);
        } else {
            deps.push((pkg, range));
        }
    };
    for e in &reqs.requirements {
        match &e.source {
            Source::Pep508(r) => {
                if !r.marker.evaluate(&state.env, &[]) {
                    continue;
                }
                let range = state.root_range(r);
                add(Pkg::Name(r.name.clone()), range.clone());
                for x in &r.extras {
                    add(Pkg::Extra(r.name.clone(), x.clone()), range.clone());
                }
            }
            Source::Path { name, .. } => {
                let v = lock(&state.direct).get(name).map(|d| d.version.clone());
                add(
                    Pkg::Name(name.clone()),
                    v.map_or_else(Ranges::full, Ranges::singleton),
                );
            }
        }
    }
    deps
}

/// The provider's error: shared between futures, unwrapped at the end.
#[derive(Debug, Clone)]
struct ProviderError(Arc<Error>);

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ProviderError {}

impl ProviderError {
    fn into_error(self) -> Error {
        Arc::try_unwrap(self.0).unwrap_or_else(|e| e.duplicate())
    }
}

impl From<Error> for ProviderError {
    fn from(e: Error) -> Self {
        Self(Arc::new(e))
    }
}

struct Provider {
    state: Arc<State>,
    handle: tokio::runtime::Handle,
    root: Vec<(Pkg, Ranges<Version>)>,
    /// Discovery order, for stable tie-breaking (earlier first, like pip's depth-first order).
    order: Mutex<HashMap<Pkg, usize>>,
}

impl Provider {
    fn project(&self, name: &PackageName) -> std::result::Result<Arc<Project>, ProviderError> {
        let fut = self.state.project_future(name);
        self.handle.block_on(fut).map_err(ProviderError)
    }

    fn name_of(pkg: &Pkg) -> Option<&PackageName> {
        match pkg {
            Pkg::Root => None,
            Pkg::Name(n) | Pkg::Extra(n, _) => Some(n),
        }
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
        let Some(name) = Self::name_of(package) else {
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
        let metadata = if let Some(d) = direct {
            Arc::new(d.metadata.clone())
        } else {
            let project = self.project(name)?;
            let Some(file) = project
                .versions
                .iter()
                .find(|(v, _)| v == version)
                .and_then(|(_, a)| a.as_ref().ok().cloned())
            else {
                return Ok(Dependencies::Unavailable("no installable file".into()));
            };
            let fut = self.state.metadata_future(name, version, file);
            self.handle.block_on(fut).map_err(ProviderError)?
        };
        let target_python: Version = self
            .state
            .target
            .python_full_version()
            .parse()
            .unwrap_or_else(|_| Version::new([3u64]));
        if let Some(rp) = &metadata.requires_python
            && !rp.contains(&target_python)
        {
            return Ok(Dependencies::Unavailable(format!(
                "it requires Python {rp}"
            )));
        }
        let mut deps: Vec<(Pkg, Ranges<Version>)> = Vec::new();
        let mut add = |pkg: Pkg, range: Ranges<Version>| {
            if let Some((_, r)) = deps.iter_mut().find(|(p, _)| *p == pkg) {
                *r = r.intersection(&range);
            } else {
                deps.push((pkg, range));
            }
        };
        if let Some(e) = extra {
            add(Pkg::Name(name.clone()), Ranges::singleton(version.clone()));
            for r in &metadata.requires_dist {
                // Only what this extra adds; the base requirements come with `name` itself.
                if r.marker.evaluate(&self.state.env, std::slice::from_ref(e))
                    && !r.marker.evaluate(&self.state.env, &[])
                {
                    self.add_requirement(r, name, &mut add);
                }
            }
        } else {
            for r in &metadata.requires_dist {
                if r.marker.evaluate(&self.state.env, &[]) {
                    self.add_requirement(r, name, &mut add);
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

impl Provider {
    fn add_requirement(
        &self,
        r: &Requirement<Url>,
        parent: &PackageName,
        add: &mut impl FnMut(Pkg, Ranges<Version>),
    ) {
        let range = match &r.version_or_url {
            Some(VersionOrUrl::VersionSpecifier(s)) => to_ranges(s),
            _ => Ranges::full(),
        };
        let range = self.state.constrain(&r.name, range);
        if &r.name != parent {
            add(Pkg::Name(r.name.clone()), range.clone());
        }
        for x in &r.extras {
            add(Pkg::Extra(r.name.clone(), x.clone()), range.clone());
        }
    }
}

/// Makes pubgrub's report read like specifiers: `==1.2` instead of the internal local-max bound.
fn prettify(report: &str) -> String {
    const LOCAL_MAX: &str = "+18446744073709551615";
    let Ok(re) = regex::Regex::new(r">=([^\s,|]+), <=([^\s,|]+)\+18446744073709551615") else {
        return report.to_string();
    };
    let out = re.replace_all(report, |c: &regex::Captures<'_>| {
        if c[1] == c[2] {
            format!("=={}", &c[1])
        } else {
            c[0].to_string()
        }
    });
    out.replace(LOCAL_MAX, "")
        .replace(
            "your requirements 0 depends on",
            "your requirements depend on",
        )
        .replace("your requirements 0", "your requirements")
        .replace(
            "your requirements is forbidden",
            "your requirements cannot be satisfied",
        )
}
