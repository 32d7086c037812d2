//! The resolver: pubgrub over the index, newest compatible distributions first, metadata
//! prefetched in parallel while the solver runs.
//!
//! pubgrub is synchronous; it runs on a blocking thread and waits on shared futures that tokio
//! drives concurrently. Whenever a package's dependencies become known, the project pages of
//! those dependencies and the metadata of their likely versions are fetched in the background,
//! so the solver rarely waits on the network.
//!
//! A version is installed from its best wheel for the target; without one, from its source
//! distribution when a [`SdistBuilder`] is given (its metadata read from `PKG-INFO` or
//! `pyproject.toml` where they are static, else prepared by the builder), as pip would build
//! it. `name @ URL`, bare URLs and paths, and `git+…` requirements are loaded before solving.

mod provider;
mod report;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use pep508_rs::pep440_rs::Version;
use pubgrub::{DefaultStringReporter, PubGrubError, Reporter};

use crate::build::{BuildSystem, SdistBuilder};
use crate::error::{Error, Result};
use crate::index::config::{PYPI_SIMPLE, PipConfig, normalize_index_url};
use crate::index::{Client, ClientOptions, ExplicitIndex, IndexStrategy};
use crate::lock::{LOCK_VERSION, Lock, LockedPackage};
use crate::requirements::{Requirements, Source};
use crate::target::Target;

use provider::{Pkg, Provider};
use state::State;

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
    /// How several indexes are combined (default: the first index that has a package).
    pub index_strategy: IndexStrategy,
    /// Indexes that only some packages come from (and only from them).
    pub explicit_indexes: Vec<ExplicitIndex>,
    /// Builds source distributions and git checkouts. `None`: a package with only a source
    /// is an error that names it.
    pub builder: Option<Arc<dyn SdistBuilder>>,
    /// Where downloads report their progress.
    pub reporter: ::report::SharedReporter,
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
            index_strategy: IndexStrategy::default(),
            explicit_indexes: Vec::new(),
            builder: None,
            reporter: ::report::SharedReporter::default(),
        }
    }
}

impl ResolveOptions {
    /// The index client settings for these requirements. Indexes in priority order: the
    /// file's and pip's `--extra-index-url`s, then `-i` (else pip's `index-url`, else PyPI),
    /// as uv orders them; find-links from pip's config and the file.
    pub fn client_options(&self, reqs: &Requirements) -> ClientOptions {
        let pip = self
            .pip_config
            .clone()
            .unwrap_or_else(PipConfig::from_environment);
        let mut indexes = Vec::new();
        if !reqs.no_index {
            for u in reqs.extra_index_urls.iter().chain(&pip.extra_index_urls) {
                if !indexes.contains(u) {
                    indexes.push(u.clone());
                }
            }
            let default = reqs
                .index_url
                .clone()
                .or(pip.index_url.clone())
                .or_else(|| normalize_index_url(PYPI_SIMPLE).ok());
            if let Some(d) = default
                && !indexes.contains(&d)
            {
                indexes.push(d);
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
            strategy: self.index_strategy,
            explicit: self.explicit_indexes.clone(),
            find_links,
            cache_dir: self.cache_dir.clone(),
            attempts: self.attempts,
            backoff: self.backoff,
            concurrency: self.concurrency,
            max_age: self.max_age,
            reporter: self.reporter.clone(),
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
        .chain(client.explicit.iter().map(|e| {
            let names: Vec<&str> = e.packages.iter().map(AsRef::as_ref).collect();
            format!("explicit {} {}", e.url, names.join(","))
        }))
        .chain([
            format!("strategy {:?}", client.strategy),
            format!("builder {}", options.builder.is_some()),
        ])
        .collect();
    Lock::input_hash(&reqs.input_hash(), &sources, target)
}

/// Runs `f` on a runtime of its own on a thread of its own: callable from sync code and from
/// inside a tokio runtime.
fn on_runtime<T: Send>(
    what: &'static str,
    f: impl FnOnce() -> BoxFuture<'static, Result<T>> + Send,
) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = rt.block_on(f());
            // Do not wait for stray blocking tasks (e.g. the DNS lookup of a connection hyper
            // started and no longer needs): a plain drop of the runtime waits for them, and
            // was seen to add seconds after all the work was done.
            rt.shutdown_background();
            result
        })
        .join()
        .map_err(|_| Error::Task(what))?
    })
}

/// Resolves on a dedicated runtime; callable from sync code and from inside a tokio runtime.
pub fn resolve(reqs: &Requirements, target: &Target, options: &ResolveOptions) -> Result<Lock> {
    let (reqs, target, options) = (reqs.clone(), target.clone(), options.clone());
    on_runtime("the resolver", move || {
        async move { resolve_async(&reqs, &target, &options).await }.boxed()
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
    let client = Client::new(options.client_options(reqs))?;
    let packages = resolve_with(reqs, target, client, options.builder.clone()).await?;
    Ok(Lock {
        version: LOCK_VERSION,
        input_hash: input_hash(reqs, target, options),
        target: target.clone(),
        packages,
    })
}

/// The wheels of a build environment for `build_system` (its `requires`), resolved for
/// `target` with the indexes, find-links and `--pre` of `reqs`, as pip gives a build
/// environment the options of the install. Build requirements are installed from wheels only.
pub fn resolve_build_requirements(
    build_system: &BuildSystem,
    reqs: &Requirements,
    target: &Target,
    options: &ResolveOptions,
) -> Result<Vec<LockedPackage>> {
    let client = Client::new(options.client_options(reqs))?;
    let (requires, target) = (build_system.requires.clone(), target.clone());
    on_runtime("the resolver", move || {
        resolve_env(requires, client, target)
    })
}

/// A build environment: `requires`, wheels only, with `client`'s indexes.
pub(crate) fn resolve_env(
    requires: Vec<String>,
    client: Client,
    target: Target,
) -> BoxFuture<'static, Result<Vec<LockedPackage>>> {
    async move {
        let mut reqs = crate::requirements::parse_str(
            &requires.join("\n"),
            std::path::Path::new("[build-system] requires"),
            std::path::Path::new("."),
            &crate::requirements::ParseOptions::default(),
        )?;
        reqs.format
            .add_only_binary(":all:")
            .map_err(|_| Error::Task("resolving a build environment"))?;
        resolve_with(&reqs, &target, client, None).await
    }
    .boxed()
}

/// The resolution itself, with a ready client.
async fn resolve_with(
    reqs: &Requirements,
    target: &Target,
    client: Client,
    builder: Option<Arc<dyn SdistBuilder>>,
) -> Result<Vec<LockedPackage>> {
    report::check_hash_pins(reqs)?;
    let state = Arc::new(State::new(client, builder, reqs, target)?);
    state.load_direct(reqs).await?;
    let handle = tokio::runtime::Handle::current();
    for e in &reqs.requirements {
        if let Source::Pep508(r) = &e.source
            && r.marker.evaluate(&state.env, &[])
        {
            state.prefetch(&handle, &r.name, &state.root_range(r));
        }
    }
    let provider = Provider::new(state.clone(), handle.clone(), reqs);
    let selected = tokio::task::spawn_blocking(move || {
        let result = pubgrub::resolve(&provider, Pkg::Root, Version::new([0u64]));
        (result, provider)
    })
    .await
    .map_err(|_| Error::Task("the resolver"))?;
    let solution = match selected.0 {
        Ok(s) => s,
        Err(PubGrubError::NoSolution(mut tree)) => {
            tree.collapse_no_versions();
            return Err(Error::Conflict(report::prettify(
                &DefaultStringReporter::report(&tree),
            )));
        }
        Err(
            PubGrubError::ErrorChoosingVersion { package, source }
            | PubGrubError::ErrorRetrievingDependencies {
                package, source, ..
            },
        ) => {
            return Err(state.in_context(package.name(), source.0));
        }
        Err(PubGrubError::ErrorInShouldCancel(e)) => return Err(e.0),
    };
    let mut chosen: Vec<_> = solution
        .into_iter()
        .filter_map(|(pkg, version)| match pkg {
            Pkg::Name(name) => Some((name, version)),
            _ => None,
        })
        .collect();
    chosen.sort_by(|a, b| a.0.cmp(&b.0));
    let packages = futures::future::try_join_all(
        chosen
            .iter()
            .map(|(name, version)| state.locked(name, version)),
    )
    .await?;
    report::check_hashes(reqs, &packages)?;
    Ok(packages)
}
