//! Building from source: a source's `[build-system]`, the [`SdistBuilder`] the caller
//! provides (it runs the PEP 517 hooks, in a sandbox of the image's environment), and the
//! cache of what it gives.
//!
//! The crate does everything around the hooks: it reads metadata without a build where the
//! source gives it ([`crate::sdist`]), resolves the isolated build environment with the
//! resolver (wheels only), unpacks sdists and git commits, checks what the builder returns,
//! and caches prepared metadata and built wheels by (source hash or commit, build system,
//! build environment, target).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use pep508_rs::PackageName;
use pep508_rs::pep440_rs::Version;
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, Result};
use crate::filename::{TagRanking, WheelFilename};
use crate::git::GitCache;
use crate::index::{Client, ClientOptions, DistFile};
use crate::lock::{LockedBuild, LockedGit, LockedPackage};
use crate::requirements::GitUrl;
use crate::sdist::{self, SdistFiles};
use crate::target::Target;

pub use crate::build_system::BuildSystem;

/// The error a [`SdistBuilder`] returns; its text should end with the build log's tail.
pub type BuildFailure = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Runs a source's PEP 517 backend for the target (in the image's environment: its Python,
/// its system packages). Implemented by the caller; may be called from several threads at once.
pub trait SdistBuilder: Send + Sync + fmt::Debug {
    /// `get_requires_for_build_wheel`: requirements the backend wants on top of
    /// `[build-system] requires`. The default asks for none.
    fn build_requires(&self, request: &BuildRequest<'_>) -> Result<Vec<String>, BuildFailure> {
        let _ = request;
        Ok(Vec::new())
    }

    /// `prepare_metadata_for_build_wheel` (or a build, for backends without the hook): the
    /// text of the distribution's `METADATA`.
    fn prepare_metadata(&self, request: &BuildRequest<'_>) -> Result<String, BuildFailure>;

    /// `build_wheel` into `out_dir` (an empty directory): the path of the wheel.
    fn build_wheel(
        &self,
        request: &BuildRequest<'_>,
        out_dir: &Path,
    ) -> Result<PathBuf, BuildFailure>;

    /// `get_requires_for_build_wheel`, then `build_wheel` into `out_dir` when every
    /// distribution the backend named is already in the build environment (by name: the
    /// caller checks the versions, by resolving again). A builder whose runs cost a start-up
    /// (a sandbox, a container) does both in one run; the default calls the two in turn.
    fn requires_then_wheel(
        &self,
        request: &BuildRequest<'_>,
        out_dir: &Path,
    ) -> Result<RequiresThenWheel, BuildFailure> {
        let requires = self.build_requires(request)?;
        let wheel = if names_present(&requires, request.build_requirements) {
            Some(self.build_wheel(request, out_dir)?)
        } else {
            None
        };
        Ok(RequiresThenWheel { requires, wheel })
    }
}

/// What [`SdistBuilder::requires_then_wheel`] gives: the backend's own build requirements,
/// and the wheel when it was built in the same run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiresThenWheel {
    pub requires: Vec<String>,
    pub wheel: Option<PathBuf>,
}

/// Whether every requirement in `requires` names a distribution of `env` (names only; the
/// leading name of each line, normalized).
pub fn names_present(requires: &[String], env: &[LockedPackage]) -> bool {
    let normalize = |name: &str| PackageName::new(name.to_string()).ok();
    let have: std::collections::HashSet<PackageName> =
        env.iter().filter_map(|p| normalize(&p.name)).collect();
    requires.iter().all(|r| {
        let name: String = r
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        normalize(&name).is_some_and(|n| have.contains(&n))
    })
}

/// What to build, and with what.
#[derive(Debug, Clone, Copy)]
pub struct BuildRequest<'a> {
    /// `name version (file)` or the git URL, for messages and logs.
    pub what: &'a str,
    /// The distribution's name and version, when known before its metadata is read.
    pub name: Option<&'a PackageName>,
    pub version: Option<&'a Version>,
    /// The unpacked source (the sdist's top directory, or the checkout's subdirectory). It may
    /// be written to; it is removed after the call.
    pub source_tree: &'a Path,
    /// The sdist archive, when the source is one.
    pub sdist: Option<&'a Path>,
    pub build_system: &'a BuildSystem,
    /// The wheels of the isolated build environment (resolved for `target`): install them
    /// with [`crate::install::install_to_dir`].
    pub build_requirements: &'a [LockedPackage],
    pub target: &'a Target,
    /// The index client's settings (its cache holds the build requirements' downloads).
    pub client: &'a ClientOptions,
}

/// The key prepared metadata and built wheels are cached under.
fn build_key(
    source_id: &str,
    build_system: &BuildSystem,
    requirements: &[LockedPackage],
    target: &Target,
) -> String {
    let mut h = Sha256::new();
    h.update(b"cog-rs source build v1\n");
    h.update(source_id.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(build_system).unwrap_or_default());
    for r in requirements {
        h.update(format!("\n{} {} {:?}", r.name, r.version, r.sha256).as_bytes());
    }
    h.update(b"\n");
    h.update(serde_json::to_vec(target).unwrap_or_default());
    hex::encode(h.finalize())
}

/// What a source gives the resolver: its metadata, and how it will be built.
pub(crate) struct Prepared {
    pub metadata: String,
    pub build: LockedBuild,
}

type SharedEnv = Shared<BoxFuture<'static, std::result::Result<Arc<Vec<LockedPackage>>, Error>>>;

/// Resolves a build environment's requirements (wheels only) with the resolver.
pub(crate) type EnvResolver =
    fn(Vec<String>, Client, Target) -> BoxFuture<'static, Result<Vec<LockedPackage>>>;

/// Source builds for one resolution or installation: the builder, the caches, and the build
/// environments already resolved.
pub(crate) struct Builds {
    pub builder: Option<Arc<dyn SdistBuilder>>,
    client: Client,
    target: Target,
    root: PathBuf,
    pub git: GitCache,
    resolve_env: EnvResolver,
    envs: Mutex<HashMap<Vec<String>, SharedEnv>>,
    /// Builder runs at once: one per core (a run is mostly CPU: a backend's start-up,
    /// compilers), so that prefetched sources build side by side without thrashing.
    runs: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Builds {
    pub fn new(
        builder: Option<Arc<dyn SdistBuilder>>,
        client: Client,
        target: Target,
        resolve_env: EnvResolver,
    ) -> Self {
        let cache_dir = client.options().cache_dir.clone();
        let root = cache_dir.as_ref().map_or_else(
            || std::env::temp_dir().join("cog-wheels-built"),
            |d| d.join("built-v1"),
        );
        Self {
            builder,
            git: GitCache::new(cache_dir.as_deref()),
            client,
            target,
            root,
            resolve_env,
            envs: Mutex::new(HashMap::new()),
            runs: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            ),
        }
    }

    fn builder(&self, what: &str) -> Result<Arc<dyn SdistBuilder>> {
        self.builder.clone().ok_or_else(|| Error::NoBuilder {
            what: what.to_string(),
        })
    }

    /// The build environment for `requires`, resolved once per list.
    pub async fn env(&self, requires: &[String]) -> Result<Vec<LockedPackage>> {
        let key = requires.to_vec();
        let fut = {
            let mut envs = lock(&self.envs);
            envs.entry(key.clone())
                .or_insert_with(|| {
                    (self.resolve_env)(key, self.client.clone(), self.target.clone())
                        .map(|r| r.map(Arc::new))
                        .boxed()
                        .shared()
                })
                .clone()
        };
        fut.await.map(|v| v.as_ref().clone())
    }

    fn tempdir(&self) -> Result<tempfile::TempDir> {
        fs_err::create_dir_all(&self.root)?;
        Ok(tempfile::Builder::new()
            .prefix(".build-")
            .tempdir_in(&self.root)?)
    }

    fn metadata_path(&self, key: &str) -> PathBuf {
        self.root.join("metadata").join(format!("{key}.METADATA"))
    }

    /// The backend's answer to `get_requires_for_build_wheel` for `key`, kept from the metadata
    /// step for the wheel step (one sandbox run fewer per source).
    fn build_requires_path(&self, key: &str) -> PathBuf {
        self.root.join("requires").join(format!("{key}.json"))
    }

    fn wheel_dir(&self, key: &str) -> PathBuf {
        self.root.join("wheels").join(key)
    }

    /// A wheel built before under `key`.
    fn cached_wheel(&self, key: &str) -> Option<PathBuf> {
        std::fs::read_dir(self.wheel_dir(key))
            .ok()?
            .filter_map(std::result::Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
    }

    /// Metadata and build plan of an sdist at `path` (downloaded and verified).
    pub async fn sdist(
        &self,
        what: &str,
        filename: &str,
        path: &Path,
        sha256: &str,
        name: Option<&PackageName>,
        version: Option<&Version>,
    ) -> Result<Prepared> {
        let files = {
            let (path, filename) = (path.to_path_buf(), filename.to_string());
            tokio::task::spawn_blocking(move || sdist::read_files(&path, &filename))
                .await
                .map_err(|_| Error::Task("reading an sdist"))??
        };
        let source = Source {
            what,
            id: sha256,
            name,
            version,
            kind: SourceKind::Sdist { filename, path },
        };
        self.prepare(&source, &files, None).await
    }

    /// Metadata and build plan of a git commit.
    pub async fn git(
        &self,
        what: &str,
        url: &GitUrl,
        commit: &str,
        name: Option<&PackageName>,
    ) -> Result<Prepared> {
        let id = git_id(&url.repository, commit, url.subdirectory.as_deref());
        let tmp = self.tempdir()?;
        let tree = {
            let (git, url, commit, dest) = (
                self.git.clone(),
                url.clone(),
                commit.to_string(),
                tmp.path().join("src"),
            );
            tokio::task::spawn_blocking(move || git.export(&url, &commit, &dest))
                .await
                .map_err(|_| Error::Task("git export"))??
        };
        let read = |name: &str| std::fs::read_to_string(tree.join(name)).ok();
        let files = SdistFiles {
            pkg_info: read("PKG-INFO"),
            pyproject: read("pyproject.toml"),
        };
        let source = Source {
            what,
            id: &id,
            name,
            version: None,
            kind: SourceKind::Tree(&tree),
        };
        let mut prepared = self.prepare(&source, &files, Some(&tree)).await?;
        prepared.build.git = Some(LockedGit {
            repository: url.repository.to_string(),
            commit: commit.to_string(),
            requested_revision: url.rev.clone(),
            subdirectory: url.subdirectory.clone(),
        });
        Ok(prepared)
    }

    async fn prepare(
        &self,
        source: &Source<'_>,
        files: &SdistFiles,
        tree: Option<&Path>,
    ) -> Result<Prepared> {
        let pyproject_name = format!("{}: pyproject.toml", source.what);
        let build_system =
            BuildSystem::from_pyproject(files.pyproject.as_deref(), &pyproject_name)?;
        let builder = self.builder(source.what)?;
        let requirements = self
            .env(&build_system.requires)
            .await
            .map_err(|e| in_build_env(source.what, e))?;
        let key = build_key(source.id, &build_system, &requirements, &self.target);
        let static_text = match &files.pkg_info {
            Some(p) if sdist::pkg_info_is_static(p) => Some(p.clone()),
            _ => files
                .pyproject
                .as_deref()
                .map(|t| sdist::pyproject_metadata(t, &pyproject_name))
                .transpose()?
                .flatten(),
        };
        let metadata = if let Some(text) = static_text {
            text
        } else if let Ok(text) = std::fs::read_to_string(self.metadata_path(&key)) {
            text
        } else {
            let (output, _tmp) = self
                .run_builder(
                    source,
                    tree,
                    &build_system,
                    &requirements,
                    builder,
                    Step::Metadata,
                )
                .await?;
            let text = match output {
                Output::Metadata(text) => text,
                Output::Wheel(wheel) => self.metadata_of_built(source.what, &wheel, &key)?,
            };
            crate::index::write_atomic(&self.metadata_path(&key), text.as_bytes())?;
            text
        };
        Ok(Prepared {
            metadata,
            build: LockedBuild {
                git: None,
                build_system,
                requirements,
            },
        })
    }

    /// The wheel for a locked package built from source, built now unless cached, and its
    /// sha256. `sdist` is the downloaded sdist (`None` for git sources).
    pub async fn wheel(
        &self,
        pkg: &LockedPackage,
        sdist: Option<&Path>,
    ) -> Result<(PathBuf, String)> {
        let build = pkg.build.as_ref().ok_or(Error::Task("building a wheel"))?;
        let what = format!("{} {} ({})", pkg.name, pkg.version, pkg.filename);
        let id = pkg
            .content_id()
            .ok_or_else(|| Error::NoBuilder { what: what.clone() })?;
        let key = build_key(&id, &build.build_system, &build.requirements, &self.target);
        let wheel = if let Some(w) = self.cached_wheel(&key) {
            w
        } else {
            {
                let builder = self.builder(&what)?;
                let name = PackageName::new(pkg.name.clone()).ok();
                let version: Option<Version> = pkg.version.parse().ok();
                let git_url;
                let tmp = self.tempdir()?;
                let tree;
                let kind = match &build.git {
                    Some(g) => {
                        git_url = GitUrl {
                            repository: Url::parse(&g.repository).map_err(|e| Error::Lock {
                                path: PathBuf::from(crate::lock::LOCK_FILE_NAME),
                                message: format!("package `{}`: repository URL", pkg.name),
                                source: Some(Arc::new(e)),
                            })?,
                            rev: g.requested_revision.clone(),
                            subdirectory: g.subdirectory.clone(),
                        };
                        let (git, url, commit, dest) = (
                            self.git.clone(),
                            git_url.clone(),
                            g.commit.clone(),
                            tmp.path().join("src"),
                        );
                        tree =
                            tokio::task::spawn_blocking(move || git.export(&url, &commit, &dest))
                                .await
                                .map_err(|_| Error::Task("git export"))??;
                        SourceKind::Tree(&tree)
                    }
                    None => SourceKind::Sdist {
                        filename: &pkg.filename,
                        path: sdist.ok_or(Error::Task("building a wheel"))?,
                    },
                };
                let source = Source {
                    what: &what,
                    id: &id,
                    name: name.as_ref(),
                    version: version.as_ref(),
                    kind,
                };
                let tree_ref = match &source.kind {
                    SourceKind::Tree(t) => Some(*t),
                    SourceKind::Sdist { .. } => None,
                };
                let (out, _tmp) = self
                    .run_builder(
                        &source,
                        tree_ref,
                        &build.build_system,
                        &build.requirements,
                        builder,
                        Step::Wheel,
                    )
                    .await?;
                let Output::Wheel(built) = out else {
                    return Err(Error::Task("building a wheel"));
                };
                self.check_wheel(&what, &built, &pkg.name, &pkg.version)?;
                self.store_wheel(&key, &built)?
            }
        };
        let sha = {
            let w = wheel.clone();
            tokio::task::spawn_blocking(move || crate::index::sha256_file(&w))
                .await
                .map_err(|_| Error::Task("hashing a wheel"))??
        };
        Ok((wheel, sha))
    }

    /// The metadata of a wheel built while preparing a source (see [`Self::run_builder`]),
    /// checked against itself and stored under `key` for the wheel step.
    fn metadata_of_built(&self, what: &str, wheel: &Path, key: &str) -> Result<String> {
        let filename = wheel
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_string();
        let text = crate::index::read_metadata_from_wheel(wheel, &filename)?;
        let meta = crate::metadata::CoreMetadata::parse(&text, &filename)?;
        self.check_wheel(what, wheel, meta.name.as_ref(), &meta.version.to_string())?;
        self.store_wheel(key, wheel)?;
        Ok(text)
    }

    fn check_wheel(&self, what: &str, wheel: &Path, name: &str, version: &str) -> Result<()> {
        let filename = wheel
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_string();
        let bad = |message: String| Error::BuiltWheel {
            what: what.to_string(),
            wheel: filename.clone(),
            message,
        };
        let parsed = WheelFilename::parse(&filename)
            .ok_or_else(|| bad("is not a wheel file name".into()))?;
        if PackageName::new(name.to_string()).ok().as_ref() != Some(&parsed.name) {
            return Err(bad(format!("is for package `{}`", parsed.name)));
        }
        if version.parse::<Version>().ok().as_ref() != Some(&parsed.version) {
            return Err(bad(format!(
                "has version {}, but the metadata said {version}",
                parsed.version
            )));
        }
        let ranking = TagRanking::new(&self.target);
        if ranking.rank(&parsed).is_none() {
            return Err(bad(format!(
                "is built for {}, which the target ({}) cannot install",
                parsed.tag_string(),
                self.target
            )));
        }
        if !wheel.is_file() {
            return Err(bad("does not exist".into()));
        }
        Ok(())
    }

    fn store_wheel(&self, key: &str, built: &Path) -> Result<PathBuf> {
        let filename = built
            .file_name()
            .ok_or(Error::Task("storing a built wheel"))?;
        let dir = self.wheel_dir(key);
        let parent = dir.parent().unwrap_or(&self.root);
        fs_err::create_dir_all(parent)?;
        let staging = tempfile::Builder::new()
            .prefix(".new-")
            .tempdir_in(parent)?;
        fs_err::copy(built, staging.path().join(filename))?;
        // Another build may have stored it meanwhile: either copy is the same build.
        if std::fs::rename(staging.path(), &dir).is_err() && self.cached_wheel(key).is_none() {
            return Err(Error::Io(Arc::new(std::io::Error::other(format!(
                "cannot store the built wheel in {}",
                dir.display()
            )))));
        }
        self.cached_wheel(key)
            .ok_or(Error::Task("storing a built wheel"))
    }

    /// Unpacks the source if needed, completes the build environment with the backend's own
    /// requirements (`get_requires_for_build_wheel`), and runs one hook. The returned
    /// directory holds what the hook wrote.
    async fn run_builder(
        &self,
        source: &Source<'_>,
        tree: Option<&Path>,
        build_system: &BuildSystem,
        requirements: &[LockedPackage],
        builder: Arc<dyn SdistBuilder>,
        step: Step,
    ) -> Result<(Output, tempfile::TempDir)> {
        let tmp = self.tempdir()?;
        let tree = match (tree, &source.kind) {
            (Some(t), _) => t.to_path_buf(),
            (None, SourceKind::Tree(t)) => t.to_path_buf(),
            (None, SourceKind::Sdist { filename, path }) => {
                let (p, f, d) = (
                    path.to_path_buf(),
                    filename.to_string(),
                    tmp.path().join("src"),
                );
                tokio::task::spawn_blocking(move || sdist::unpack(&p, &f, &d))
                    .await
                    .map_err(|_| Error::Task("unpacking an sdist"))??
            }
        };
        let mut request = OwnedRequest {
            what: source.what.to_string(),
            name: source.name.cloned(),
            version: source.version.cloned(),
            source_tree: tree,
            sdist: match &source.kind {
                SourceKind::Sdist { path, .. } => Some(path.to_path_buf()),
                SourceKind::Tree(_) => None,
            },
            build_system: build_system.clone(),
            build_requirements: requirements.to_vec(),
            target: self.target.clone(),
            client: self.client.options().clone(),
        };
        let request_arc = Arc::new(request);
        let requires_path = self.build_requires_path(&build_key(
            source.id,
            build_system,
            requirements,
            &self.target,
        ));
        let known: Option<Vec<String>> = std::fs::read(&requires_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let out_dir = tmp.path().join("out");
        fs_err::create_dir_all(&out_dir)?;
        let (extra, prebuilt) = if let Some(known) = known {
            (known, None)
        } else {
            // One run asks for the backend's requirements and, when the environment has
            // them already (the usual case), builds the wheel too: a metadata step then
            // needs no second run, and the wheel step finds the wheel in the cache.
            let (b, r, out) = (builder.clone(), request_arc.clone(), out_dir.clone());
            let answer = {
                let _permit = self.runs.acquire().await;
                tokio::task::spawn_blocking(move || b.requires_then_wheel(&r.borrow(), &out))
                    .await
                    .map_err(|_| Error::Task("get_requires_for_build_wheel"))?
                    .map_err(|e| Error::Build {
                        what: source.what.to_string(),
                        step: "building a wheel (get_requires_for_build_wheel, build_wheel)",
                        source: Arc::from(e),
                    })?
            };
            let json = serde_json::to_vec(&answer.requires)
                .map_err(|_| Error::Task("build requirements"))?;
            crate::index::write_atomic(&requires_path, &json)?;
            (answer.requires, answer.wheel)
        };
        request = Arc::try_unwrap(request_arc).map_err(|_| Error::Task("the source builder"))?;
        let missing: Vec<String> = extra
            .into_iter()
            .filter(|r| !build_system.requires.contains(r))
            .collect();
        let mut prebuilt = prebuilt;
        if !missing.is_empty() {
            let mut all = build_system.requires.clone();
            all.extend(missing);
            let env = self
                .env(&all)
                .await
                .map_err(|e| in_build_env(source.what, e))?;
            // The wheel built in the first run stands only if the environment the backend
            // asked for is the one it ran in.
            if env_key(&env) != env_key(&request.build_requirements) {
                prebuilt = None;
                fs_err::remove_dir_all(&out_dir)?;
                fs_err::create_dir_all(&out_dir)?;
            }
            request.build_requirements = env;
        }
        if let Some(wheel) = prebuilt {
            return Ok((Output::Wheel(wheel), tmp));
        }
        let _permit = self.runs.acquire().await;
        let output = tokio::task::spawn_blocking(move || {
            let r = request.borrow();
            let fail = |step: &'static str| {
                let what = r.what.to_string();
                move |e: BuildFailure| Error::Build {
                    what,
                    step,
                    source: Arc::from(e),
                }
            };
            match step {
                Step::Metadata => builder
                    .prepare_metadata(&r)
                    .map(Output::Metadata)
                    .map_err(fail(
                        "preparing metadata (prepare_metadata_for_build_wheel)",
                    )),
                Step::Wheel => builder
                    .build_wheel(&r, &out_dir)
                    .map(Output::Wheel)
                    .map_err(fail("building a wheel (build_wheel)")),
            }
        })
        .await
        .map_err(|_| Error::Task("the source builder"))??;
        Ok((output, tmp))
    }
}

/// A build environment's identity: its wheels (name, version, hash), one per line. Two
/// environments with the same key are the same environment.
pub fn env_key(packages: &[LockedPackage]) -> String {
    packages
        .iter()
        .map(|p| format!("{} {} {:?}", p.name, p.version, p.sha256))
        .collect::<Vec<_>>()
        .join("\n")
}

fn in_build_env(what: &str, e: Error) -> Error {
    Error::Requirement {
        origin: "build environment".into(),
        requirement: what.to_string(),
        via: String::new(),
        source: Box::new(e),
    }
}

pub(crate) fn git_id(repository: &Url, commit: &str, subdirectory: Option<&str>) -> String {
    format!("git:{repository}@{commit}#{}", subdirectory.unwrap_or(""))
}

#[derive(Clone, Copy)]
enum Step {
    Metadata,
    Wheel,
}

enum Output {
    Metadata(String),
    Wheel(PathBuf),
}

enum SourceKind<'a> {
    Sdist { filename: &'a str, path: &'a Path },
    Tree(&'a Path),
}

struct Source<'a> {
    what: &'a str,
    id: &'a str,
    name: Option<&'a PackageName>,
    version: Option<&'a Version>,
    kind: SourceKind<'a>,
}

/// A [`BuildRequest`] that can move to a blocking thread.
struct OwnedRequest {
    what: String,
    name: Option<PackageName>,
    version: Option<Version>,
    source_tree: PathBuf,
    sdist: Option<PathBuf>,
    build_system: BuildSystem,
    build_requirements: Vec<LockedPackage>,
    target: Target,
    client: ClientOptions,
}

impl OwnedRequest {
    fn borrow(&self) -> BuildRequest<'_> {
        BuildRequest {
            what: &self.what,
            name: self.name.as_ref(),
            version: self.version.as_ref(),
            source_tree: &self.source_tree,
            sdist: self.sdist.as_deref(),
            build_system: &self.build_system,
            build_requirements: &self.build_requirements,
            target: &self.target,
            client: &self.client,
        }
    }
}

/// A [`DistFile`] for a locked package's file.
pub(crate) fn dist_file(p: &LockedPackage) -> Result<DistFile> {
    Ok(DistFile {
        filename: p.filename.clone(),
        url: Url::parse(&p.url).map_err(|e| Error::Lock {
            path: PathBuf::from(crate::lock::LOCK_FILE_NAME),
            message: format!("package `{}`: invalid URL", p.name),
            source: Some(Arc::new(e)),
        })?,
        sha256: p.sha256.clone(),
        requires_python: None,
        yanked: false,
        metadata: Some(false),
        size: p.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: "1.0".into(),
            filename: format!("{name}-1.0-py3-none-any.whl"),
            url: String::new(),
            sha256: None,
            hashes: Vec::new(),
            size: None,
            direct_url: None,
            build: None,
        }
    }

    #[test]
    fn requirements_are_present_by_normalized_name() {
        let env = [package("setuptools"), package("typing_extensions")];
        assert!(names_present(&[], &env));
        assert!(names_present(
            &[
                "setuptools>=40.8".into(),
                "Typing.Extensions ; python_version>'3'".into()
            ],
            &env
        ));
        assert!(!names_present(&["wheel".into()], &env));
        assert!(!names_present(&[String::new()], &env));
    }

    #[test]
    fn build_system_as_pip_reads_it() {
        assert_eq!(
            BuildSystem::from_pyproject(None, "p").unwrap(),
            BuildSystem::pip_default()
        );
        assert_eq!(
            BuildSystem::from_pyproject(Some("[project]\nname='x'\n"), "p").unwrap(),
            BuildSystem::pip_default()
        );
        let b = BuildSystem::from_pyproject(
            Some("[build-system]\nrequires = ['hatchling>=1']\nbuild-backend = 'hatchling.build'\nbackend-path = ['_build']\n"),
            "p",
        )
        .unwrap();
        assert_eq!(b.requires, ["hatchling>=1"]);
        assert_eq!(b.build_backend, "hatchling.build");
        assert_eq!(b.backend_path, ["_build"]);
        let b = BuildSystem::from_pyproject(Some("[build-system]\nrequires = []\n"), "p").unwrap();
        assert_eq!(b.build_backend, BuildSystem::LEGACY_BACKEND);
        let e = BuildSystem::from_pyproject(
            Some("[build-system]\nbuild-backend = 'x'\n"),
            "x-1.0.tar.gz: pyproject.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x-1.0.tar.gz: pyproject.toml: the [build-system] table is missing the mandatory `requires` key (pip refuses it too)"
        );
        assert!(
            BuildSystem::from_pyproject(Some("[build-system]\nrequires = ['not valid!!']\n"), "p")
                .is_err()
        );
        assert!(
            BuildSystem::from_pyproject(
                Some("[build-system]\nrequires = []\nbackend-path = ['../x']\n"),
                "p"
            )
            .is_err()
        );
        assert!(BuildSystem::from_pyproject(Some("[build-system"), "p").is_err());
    }
}
