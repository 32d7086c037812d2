//! Wheels to OCI layers, streamed: each wheel is downloaded (verified), read as a zip, and its
//! files written as tar entries straight into the compressed layer; nothing is unpacked on disk.
//!
//! Large wheels get a layer each; small ones share one of a few buckets chosen by a hash of the
//! package name, so a change to one package only rebuilds its bucket. Every layer is cached in
//! the [`BlobStore`] under a key made of the wheels' hashes and the install parameters, so a
//! wheel set shared by two models is layered once.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use futures::StreamExt;
use layers::{BlobStore, Compression, LayerInfo, LayerOptions, LayerWriter};
use sha2::{Digest, Sha256};
use url::Url;

use crate::build::{Builds, SdistBuilder, dist_file};
use crate::error::{Cause, Error, Result};
use crate::index::{Client, ClientOptions};
use crate::lock::{Lock, LockedPackage};
use crate::splice::{DeflatedMember, SplicedLayer};
use crate::target::Target;

/// Where and how wheels are installed in the image.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// purelib/platlib, e.g. `/usr/local/lib/python3.11/site-packages` (python:*-slim) or
    /// `/usr/local/lib/python3.11/dist-packages` (Debian's python3).
    pub site_packages: PathBuf,
    /// Prefix for `.data/scripts` (`<prefix>/bin`), headers and data: `/usr/local`.
    pub prefix: PathBuf,
    /// `X.Y`, for the headers directory (`<prefix>/include/pythonX.Y/<dist>`).
    pub python_version: String,
    /// Interpreter in console-script shebangs, e.g. `/usr/local/bin/python3.11`.
    pub python: PathBuf,
    pub layer: LayerOptions,
    /// With gzip layers: copy each wheel member's deflate data into the layer as it is
    /// (default) rather than inflating and deflating it again at the layer's level. Splicing
    /// costs no compression time and gives about the wheels' own size (docs/benchmarks.md).
    pub splice: bool,
    /// Wheels larger than this (compressed bytes) get a layer of their own.
    pub large_wheel_bytes: u64,
    /// Number of buckets small wheels are spread over (by name hash).
    pub buckets: u32,
    /// Index client settings used for downloads (cache, retries). Indexes are needed only
    /// when a source build's backend asks for more build requirements
    /// (`get_requires_for_build_wheel`): give them [`crate::ResolveOptions::client_options`].
    pub client: ClientOptions,
    /// Write the layers even when the store has them (`cog build --no-cache`). Downloaded wheels
    /// are still reused: each is verified against its hash.
    pub rebuild: bool,
    /// Builds the packages locked as built from source (sdists, git); their wheels are cached
    /// by (source, build environment, target). `None`: such a package is an error.
    pub builder: Option<Arc<dyn SdistBuilder>>,
    /// The target source builds are for; [`layers`] takes the lock's when `None`.
    pub target: Option<Target>,
}

impl InstallOptions {
    /// Layout of the official `python:X.Y-slim` images.
    pub fn python_slim(python_version: &str) -> Self {
        Self::with_site_packages(
            python_version,
            "site-packages",
            format!("/usr/local/bin/python{python_version}"),
        )
    }

    /// Layout of Debian's `python3` (pip installs to `/usr/local/lib/python3.Y/dist-packages`).
    pub fn debian(python_version: &str) -> Self {
        Self::with_site_packages(
            python_version,
            "dist-packages",
            format!("/usr/bin/python{python_version}"),
        )
    }

    fn with_site_packages(python_version: &str, dir: &str, python: String) -> Self {
        Self {
            site_packages: PathBuf::from(format!("/usr/local/lib/python{python_version}/{dir}")),
            prefix: PathBuf::from("/usr/local"),
            python_version: python_version.to_string(),
            python: PathBuf::from(python),
            layer: LayerOptions::default(),
            splice: true,
            // numpy, transformers, scipy, torch, ...: a layer each, written in parallel with
            // the others and cached on their own.
            large_wheel_bytes: 8 * 1024 * 1024,
            buckets: 4,
            client: ClientOptions::default(),
            rebuild: false,
            builder: None,
            target: None,
        }
    }

    fn key_params(&self) -> String {
        format!(
            "site={} prefix={} py={} python={} compression={:?} mtime={:?} splice={} large={} buckets={}",
            self.site_packages.display(),
            self.prefix.display(),
            self.python_version,
            self.python.display(),
            // What the bytes depend on (never the thread count): keys travel between machines.
            self.layer.compression,
            self.layer.resolved_mtime().ok(),
            self.splice,
            self.large_wheel_bytes,
            self.buckets
        )
    }
}

/// One layer of wheels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelLayer {
    pub info: LayerInfo,
    /// `name==version` of the wheels in it.
    pub packages: Vec<String>,
    /// The content key it is cached under.
    pub key: String,
    /// Taken from the store rather than written now.
    pub cached: bool,
}

/// Builds the layers for `lock` (on a dedicated runtime; callable from anywhere).
pub fn layers(lock: &Lock, options: &InstallOptions, store: &BlobStore) -> Result<Vec<WheelLayer>> {
    install_packages(&lock.packages, &with_target(options, lock), store)
}

fn with_target(options: &InstallOptions, lock: &Lock) -> InstallOptions {
    let mut options = options.clone();
    if options.target.is_none() {
        options.target = Some(lock.target.clone());
    }
    options
}

/// Builds the layers for pinned packages that need not come from one lock (the cog runtime
/// wheels, or a lock split by phase), on a dedicated runtime; callable from anywhere.
pub fn install_packages(
    packages: &[LockedPackage],
    options: &InstallOptions,
    store: &BlobStore,
) -> Result<Vec<WheelLayer>> {
    let (packages, options, store) = (packages.to_vec(), options.clone(), store.clone());
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = rt.block_on(install_packages_async(&packages, &options, &store));
            // Do not wait for stray blocking tasks (e.g. the DNS lookup of a connection hyper
            // started and no longer needs): a plain drop of the runtime waits for them, and
            // was seen to add seconds after all the work was done.
            rt.shutdown_background();
            result
        })
        .join()
        .map_err(|_| Error::Task("the installer"))?
    })
}

/// Groups the lock's wheels into layers: large ones alone, small ones in name-hash buckets.
fn group(packages: &[LockedPackage], options: &InstallOptions) -> Vec<Vec<LockedPackage>> {
    let mut large = Vec::new();
    let mut buckets: BTreeMap<u32, Vec<LockedPackage>> = BTreeMap::new();
    for p in packages {
        if p.size.is_some_and(|s| s > options.large_wheel_bytes) {
            large.push(vec![p.clone()]);
        } else {
            let h = Sha256::digest(p.name.as_bytes());
            let b = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % options.buckets.max(1);
            buckets.entry(b).or_default().push(p.clone());
        }
    }
    large.extend(buckets.into_values());
    large
}

/// Async form of [`layers`].
pub async fn layers_async(
    lock: &Lock,
    options: &InstallOptions,
    store: &BlobStore,
) -> Result<Vec<WheelLayer>> {
    install_packages_async(&lock.packages, &with_target(options, lock), store).await
}

/// Source builds of an installation, when it has any.
fn builds(
    client: &Client,
    options: &InstallOptions,
    packages: &[LockedPackage],
) -> Result<Option<Arc<Builds>>> {
    let Some(first) = packages.iter().find(|p| p.build.is_some()) else {
        return Ok(None);
    };
    let target = options.target.clone().ok_or_else(|| Error::NoBuilder {
        what: format!(
            "{} {} ({}), with no target given (InstallOptions::target)",
            first.name, first.version, first.filename
        ),
    })?;
    Ok(Some(Arc::new(Builds::new(
        options.builder.clone(),
        client.clone(),
        target,
        crate::resolve::resolve_env,
    ))))
}

/// Async form of [`install_packages`].
pub async fn install_packages_async(
    packages: &[LockedPackage],
    options: &InstallOptions,
    store: &BlobStore,
) -> Result<Vec<WheelLayer>> {
    let client = Client::new(options.client.clone())?;
    let builds = builds(&client, options, packages)?;
    let options = Arc::new(options.clone());
    let jobs = group(packages, &options).into_iter().map(|packages| {
        let client = client.clone();
        let options = options.clone();
        let store = store.clone();
        let builds = builds.clone();
        async move { build_group(&client, builds.as_deref(), packages, options, store).await }
    });
    let results = futures::future::join_all(jobs).await;
    results.into_iter().collect()
}

/// The wheel of a locked package (downloaded and verified, or built from its source) and the
/// wheel's sha256.
async fn fetch_wheel(
    client: &Client,
    builds: Option<&Builds>,
    p: &LockedPackage,
) -> Result<(PathBuf, String)> {
    if p.build.is_some() {
        let builds = builds.ok_or(Error::Task("building from source"))?;
        let sdist = if p.build.as_ref().is_some_and(|b| b.git.is_none()) {
            Some(client.download(&dist_file(p)?, &p.hashes).await?)
        } else {
            None
        };
        return builds.wheel(p, sdist.as_deref()).await;
    }
    let file = dist_file(p)?;
    let path = client.download(&file, &p.hashes).await?;
    let sha = if let Some(sha) = &p.sha256 {
        sha.clone()
    } else {
        let path = path.clone();
        tokio::task::spawn_blocking(move || crate::index::sha256_file(&path))
            .await
            .map_err(|_| Error::Task("hashing a wheel"))??
    };
    Ok((path, sha))
}

/// A direct URL as it goes into a layer key: a local `file:` URL (a path on this machine) by
/// its file name alone, the content hash beside it identifying the file.
fn portable_url(url: Option<&str>) -> &str {
    match url {
        Some(url) if url.starts_with("file:") => url.rsplit('/').next().unwrap_or(""),
        Some(url) => url,
        None => "",
    }
}

/// What identifies a package's layer content: its wheel's hash, or for a build its source
/// and build environment (the build is deterministic enough to be cached by them).
fn layer_id(p: &LockedPackage) -> Option<String> {
    let id = p.content_id()?;
    Some(match &p.build {
        None => id,
        Some(b) => {
            let mut h = Sha256::new();
            h.update(id.as_bytes());
            h.update(serde_json::to_vec(b).unwrap_or_default());
            format!("built:{}", hex::encode(h.finalize()))
        }
    })
}

async fn build_group(
    client: &Client,
    builds: Option<&Builds>,
    packages: Vec<LockedPackage>,
    options: Arc<InstallOptions>,
    store: BlobStore,
) -> Result<WheelLayer> {
    let names: Vec<String> = packages
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version))
        .collect();
    let known: Option<Vec<String>> = packages.iter().map(layer_id).collect();
    let key_of = |hashes: &[String]| {
        let mut h = Sha256::new();
        h.update(b"cog-rs wheels layer v2\n");
        h.update(options.key_params().as_bytes());
        for (p, sha) in packages.iter().zip(hashes) {
            h.update(
                format!(
                    "\n{} {} {} {}",
                    p.name,
                    p.version,
                    sha,
                    portable_url(p.direct_url.as_deref())
                )
                .as_bytes(),
            );
        }
        format!("wheels:{}", hex::encode(h.finalize()))
    };
    if let Some(hashes) = &known
        && !options.rebuild
    {
        let key = key_of(hashes);
        if let Some(info) = store.lookup_key(&key) {
            return Ok(WheelLayer {
                info,
                packages: names,
                key,
                cached: true,
            });
        }
    }
    // Wheels are written into the layer in lock order as soon as they (and those before them)
    // are downloaded: downloading the rest overlaps with unpacking and compressing.
    let (tx, rx) = std::sync::mpsc::channel::<Result<(PathBuf, String)>>();
    let writer = {
        let options = options.clone();
        let store = store.clone();
        let packages = packages.clone();
        tokio::task::spawn_blocking(move || write_layer(&store, &options, &packages, &rx))
    };
    let mut downloads = futures::stream::iter(packages.iter())
        .map(|p| fetch_wheel(client, builds, p))
        .buffered(packages.len().max(1));
    let mut hashes = Vec::with_capacity(packages.len());
    let mut failed = None;
    for p in &packages {
        let Some(result) = downloads.next().await else {
            break;
        };
        match &result {
            Ok((_, sha)) => hashes.push(layer_id(p).unwrap_or_else(|| sha.clone())),
            Err(e) => failed = Some(e.clone()),
        }
        // A closed channel means the writer stopped on an error, reported below.
        if tx.send(result).is_err() || failed.is_some() {
            break;
        }
    }
    drop(tx);
    let info = writer.await.map_err(|_| Error::Task("the layer writer"))?;
    // A failed download or build is the error to report, not the writer's stop.
    if let Some(e) = failed {
        return Err(e);
    }
    let info = info?;
    let key = key_of(&hashes);
    store.record_key(&key, &info)?;
    Ok(WheelLayer {
        info,
        packages: names,
        key,
        cached: false,
    })
}

fn write_layer(
    store: &BlobStore,
    options: &InstallOptions,
    packages: &[LockedPackage],
    wheels: &std::sync::mpsc::Receiver<Result<(PathBuf, String)>>,
) -> Result<LayerInfo> {
    let mut out = Installer {
        sink: match options.layer.compression {
            Compression::Gzip { level } if options.splice => Sink::Spliced(Box::new(
                SplicedLayer::new(store, level, options.layer.resolved_mtime()?)?,
            )),
            _ => Sink::Plain(Box::new(LayerWriter::new(store, &options.layer)?)),
        },
        dirs: HashSet::new(),
        files: HashSet::new(),
    };
    for p in packages {
        let Ok(received) = wheels.recv() else {
            // The sender stopped on an error, which it reports.
            return Err(Error::Task("the download"));
        };
        let (path, sha) = received?;
        install_wheel(&mut out, options, p, &path, &sha)?;
    }
    match out.sink {
        Sink::Spliced(w) => w.finish(),
        Sink::Plain(w) => Ok(w.finish()?),
        Sink::Dir(_) => Err(Error::Task("the layer writer")),
    }
}

/// Installs `packages` into the directory `root` as they would be in the image (paths of
/// `options`, e.g. `site_packages`, taken under `root`): for a build environment. Packages
/// built from source are built first (`options.builder`, `options.target`).
pub fn install_to_dir(
    packages: &[LockedPackage],
    options: &InstallOptions,
    root: &Path,
) -> Result<()> {
    let (packages, options, root) = (packages.to_vec(), options.clone(), root.to_path_buf());
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = rt.block_on(install_to_dir_async(&packages, &options, &root));
            rt.shutdown_background();
            result
        })
        .join()
        .map_err(|_| Error::Task("the installer"))?
    })
}

/// Async form of [`install_to_dir`].
pub async fn install_to_dir_async(
    packages: &[LockedPackage],
    options: &InstallOptions,
    root: &Path,
) -> Result<()> {
    let client = Client::new(options.client.clone())?;
    let builds = builds(&client, options, packages)?;
    let wheels = futures::future::try_join_all(
        packages
            .iter()
            .map(|p| fetch_wheel(&client, builds.as_deref(), p)),
    )
    .await?;
    let (packages, options, root) = (packages.to_vec(), options.clone(), root.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut out = Installer {
            sink: Sink::Dir(root),
            dirs: HashSet::new(),
            files: HashSet::new(),
        };
        for (p, (path, sha)) in packages.iter().zip(&wheels) {
            install_wheel(&mut out, &options, p, path, sha)?;
        }
        Ok(())
    })
    .await
    .map_err(|_| Error::Task("the installer"))?
}

/// Where a layer's tar goes: gzip layers splice the wheels' deflate data ([`SplicedLayer`]),
/// other compressions go through [`LayerWriter`].
enum Sink {
    Spliced(Box<SplicedLayer>),
    Plain(Box<LayerWriter>),
    /// Files written under a directory (a build environment).
    Dir(PathBuf),
}

/// `path` (absolute in the image) under `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn write_dir_file(root: &Path, path: &Path, mode: u32, content: &mut impl Read) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dest = under(root, path);
    let mut f = fs_err::File::create(&dest)?;
    std::io::copy(content, &mut f)?;
    fs_err::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// A layer being filled, with the directories and files already in it.
struct Installer {
    sink: Sink,
    dirs: HashSet<PathBuf>,
    files: HashSet<PathBuf>,
}

/// A file's RECORD hash (`sha256=<urlsafe b64>`) and size.
type Recorded = (String, u64);

impl Installer {
    fn ensure_dirs(&mut self, path: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut cur = path.parent();
        while let Some(dir) = cur {
            if dir.as_os_str().is_empty() || dir == Path::new("/") || self.dirs.contains(dir) {
                break;
            }
            missing.push(dir.to_path_buf());
            cur = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            match &mut self.sink {
                Sink::Spliced(w) => w.append_dir(&dir)?,
                Sink::Plain(w) => w.append_dir(&dir, 0o755)?,
                Sink::Dir(root) => fs_err::create_dir_all(under(root, &dir))?,
            }
            self.dirs.insert(dir);
        }
        Ok(())
    }

    /// Whether `path` is new in this layer (a path already written is skipped with a warning).
    fn claim(&mut self, path: &Path) -> Result<bool> {
        if !self.files.insert(path.to_path_buf()) {
            tracing::warn!(path = %path.display(), "two wheels in one layer install the same file; keeping the first");
            return Ok(false);
        }
        self.ensure_dirs(path)?;
        Ok(true)
    }

    /// Writes one file from `content`; `None` when the path was already written.
    fn file(
        &mut self,
        path: &Path,
        mode: u32,
        size: u64,
        content: &mut impl Read,
    ) -> Result<Option<Recorded>> {
        if !self.claim(path)? {
            return Ok(None);
        }
        let mut hasher = layers::Sha256::new();
        let mut count = 0u64;
        match &mut self.sink {
            Sink::Spliced(w) => w.append_file(path, mode, size, content, &mut |b| {
                hasher.update(b);
                count += b.len() as u64;
            })?,
            Sink::Plain(w) => {
                let mut reader = HashingReader {
                    inner: content,
                    hasher: &mut hasher,
                    count: &mut count,
                };
                w.append_file(path, mode, size, &mut reader)?;
            }
            Sink::Dir(root) => {
                let mut reader = HashingReader {
                    inner: content,
                    hasher: &mut hasher,
                    count: &mut count,
                };
                write_dir_file(root, path, mode, &mut reader)?;
            }
        }
        Ok(Some((record_hash(hasher.finish().as_raw()), count)))
    }

    /// Writes one file whose content is a zip member's raw deflate data.
    fn deflated(
        &mut self,
        path: &Path,
        mode: u32,
        member: &DeflatedMember<'_>,
    ) -> Result<Option<Recorded>> {
        if !self.claim(path)? {
            return Ok(None);
        }
        let mut hasher = layers::Sha256::new();
        let mut count = 0u64;
        match &mut self.sink {
            Sink::Spliced(w) => w.append_deflated(path, mode, member, &mut |b| {
                hasher.update(b);
                count += b.len() as u64;
            })?,
            Sink::Plain(w) => {
                let mut reader = HashingReader {
                    inner: flate2::read::DeflateDecoder::new(member.raw),
                    hasher: &mut hasher,
                    count: &mut count,
                };
                w.append_file(path, mode, member.size, &mut reader)
                    .map_err(|e| Error::InvalidWheel {
                        file: member.wheel.to_string(),
                        message: member.name.to_string(),
                        source: Some(Arc::new(e)),
                    })?;
            }
            Sink::Dir(root) => {
                let mut reader = HashingReader {
                    inner: flate2::read::DeflateDecoder::new(member.raw),
                    hasher: &mut hasher,
                    count: &mut count,
                };
                write_dir_file(root, path, mode, &mut reader).map_err(|e| Error::InvalidWheel {
                    file: member.wheel.to_string(),
                    message: member.name.to_string(),
                    source: Some(Arc::new(e)),
                })?;
                if count != member.size {
                    return Err(Error::InvalidWheel {
                        file: member.wheel.to_string(),
                        message: format!(
                            "{}: {count} bytes, but the zip says {}",
                            member.name, member.size
                        ),
                        source: None,
                    });
                }
            }
        }
        Ok(Some((record_hash(hasher.finish().as_raw()), count)))
    }
}

/// A reader that hashes what passes through it (for RECORD).
struct HashingReader<'a, R> {
    inner: R,
    hasher: &'a mut layers::Sha256,
    count: &'a mut u64,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        *self.count += n as u64;
        Ok(n)
    }
}

fn record_hash(digest: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Where a wheel member goes, relative to the image root; `None` for the wheel's own RECORD etc.
enum Dest {
    File(PathBuf),
    Script(PathBuf),
}

fn destination(
    options: &InstallOptions,
    wheel: &str,
    data_dir: &str,
    dist_name: &str,
    member: &str,
) -> Result<Dest> {
    let unsafe_path = || Error::UnsafePath {
        file: wheel.to_string(),
        path: member.to_string(),
    };
    if member.starts_with('/')
        || member.starts_with('\\')
        || member.contains('\\')
        || member.split('/').any(|c| c == "..")
        || member.contains('\0')
    {
        return Err(unsafe_path());
    }
    if let Some(rest) = member
        .strip_prefix(data_dir)
        .and_then(|r| r.strip_prefix('/'))
    {
        let (scheme, rel) = rest.split_once('/').ok_or_else(unsafe_path)?;
        let py = format!("python{}", options.python_version);
        return Ok(match scheme {
            "purelib" | "platlib" => Dest::File(options.site_packages.join(rel)),
            "scripts" => Dest::Script(options.prefix.join("bin").join(rel)),
            "headers" => Dest::File(
                options
                    .prefix
                    .join("include")
                    .join(py)
                    .join(dist_name)
                    .join(rel),
            ),
            "data" => Dest::File(options.prefix.join(rel)),
            other => {
                return Err(Error::InvalidWheel {
                    file: wheel.to_string(),
                    message: format!("unknown .data scheme {other:?} in {member:?}"),
                    source: None,
                });
            }
        });
    }
    Ok(Dest::File(options.site_packages.join(member)))
}

/// `path` relative to `base` for RECORD (`../../../bin/x` for scripts).
fn relative_to(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), b.len() - common).collect();
    parts.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

fn install_wheel(
    out: &mut Installer,
    options: &InstallOptions,
    pkg: &LockedPackage,
    path: &Path,
    sha256: &str,
) -> Result<()> {
    let wheel = pkg.filename.as_str();
    let bad = |message: String| Error::InvalidWheel {
        file: wheel.to_string(),
        message,
        source: None,
    };
    let bad_from = |message: &str, source: Cause| Error::InvalidWheel {
        file: wheel.to_string(),
        message: message.to_string(),
        source: Some(source),
    };
    let f = fs_err::File::open(path)?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| bad_from("not a zip archive", Arc::new(e)))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let dist_info = names
        .iter()
        .filter_map(|n| n.split_once('/').map(|(d, _)| d))
        .find(|d| d.ends_with(".dist-info") && names.iter().any(|n| n == &format!("{d}/WHEEL")))
        .ok_or_else(|| bad("no .dist-info directory with a WHEEL file".into()))?
        .to_string();
    let data_dir = format!("{}.data", dist_info.trim_end_matches(".dist-info"));
    let dist_name = dist_info
        .trim_end_matches(".dist-info")
        .rsplit_once('-')
        .map_or(pkg.name.as_str(), |(n, _)| n)
        .to_string();
    let skip: HashSet<String> = [
        format!("{dist_info}/RECORD"),
        format!("{dist_info}/RECORD.jws"),
        format!("{dist_info}/RECORD.p7s"),
        format!("{dist_info}/INSTALLER"),
        format!("{dist_info}/direct_url.json"),
    ]
    .into_iter()
    .collect();
    let site = options.site_packages.clone();
    let mut record: Vec<(String, String, String)> = Vec::new();
    let mut entry_points = None;
    // Validate every path before writing anything, so a bad wheel leaves no partial layer entry.
    for name in &names {
        if !name.ends_with('/') {
            destination(options, wheel, &data_dir, &dist_name, name)?;
        }
    }
    let mut raw = Vec::new();
    for i in 0..zip.len() {
        let (name, exec, size, deflated, crc32) = {
            let entry = zip
                .by_index_raw(i)
                .map_err(|e| bad_from("unreadable zip entry", Arc::new(e)))?;
            (
                entry.name().to_string(),
                entry.unix_mode().is_some_and(|m| m & 0o111 != 0),
                entry.size(),
                entry.compression() == zip::CompressionMethod::Deflated,
                entry.crc32(),
            )
        };
        if name.ends_with('/') || skip.contains(&name) {
            continue;
        }
        let is_entry_points = name == format!("{dist_info}/entry_points.txt");
        let dest = destination(options, wheel, &data_dir, &dist_name, &name)?;
        if let (Dest::File(dest), true, false) = (&dest, deflated, is_entry_points) {
            // The member's deflate data as stored: spliced into gzip layers as it is.
            raw.clear();
            zip.by_index_raw(i)
                .map_err(|e| bad_from(&name, Arc::new(e)))?
                .read_to_end(&mut raw)
                .map_err(|e| bad_from(&name, Arc::new(e)))?;
            let member = DeflatedMember {
                wheel,
                name: &name,
                size,
                crc32,
                raw: &raw,
            };
            if let Some((hash, len)) =
                out.deflated(dest, if exec { 0o755 } else { 0o644 }, &member)?
            {
                record.push((relative_to(dest, &site), hash, len.to_string()));
            }
            continue;
        }
        let mut bytes = Vec::with_capacity(size.min(64 << 20) as usize);
        zip.by_index(i)
            .map_err(|e| bad_from(&name, Arc::new(e)))?
            .read_to_end(&mut bytes)
            .map_err(|e| bad_from(&name, Arc::new(e)))?;
        let (dest, mode) = match dest {
            Dest::File(dest) => (dest, if exec { 0o755 } else { 0o644 }),
            Dest::Script(dest) => {
                // `#!python` (and `#!pythonw`) shebangs point at the image's interpreter.
                if bytes.starts_with(b"#!python") {
                    let end = bytes
                        .iter()
                        .position(|&b| b == b'\n')
                        .unwrap_or(bytes.len());
                    let mut new = format!("#!{}", options.python.display()).into_bytes();
                    new.extend_from_slice(&bytes[end..]);
                    bytes = new;
                }
                (dest, 0o755)
            }
        };
        if is_entry_points {
            let text =
                String::from_utf8(bytes.clone()).map_err(|_| bad(format!("{name}: not UTF-8")))?;
            entry_points = Some(text);
        }
        if let Some((hash, len)) =
            out.file(&dest, mode, bytes.len() as u64, &mut bytes.as_slice())?
        {
            record.push((relative_to(&dest, &site), hash, len.to_string()));
        }
    }
    if let Some(text) = entry_points {
        for (script, target) in console_scripts(&text) {
            let Some(content) = launcher(&options.python, &target) else {
                tracing::warn!(wheel, script, target, "ignoring malformed entry point");
                continue;
            };
            if script.contains('/') || script.contains("..") {
                return Err(Error::UnsafePath {
                    file: wheel.to_string(),
                    path: script,
                });
            }
            let dest = options.prefix.join("bin").join(&script);
            if let Some((hash, len)) =
                out.file(&dest, 0o755, content.len() as u64, &mut content.as_bytes())?
            {
                record.push((relative_to(&dest, &site), hash, len.to_string()));
            }
        }
    }
    let mut extra = vec![(format!("{dist_info}/INSTALLER"), "cog\n".to_string())];
    if pkg.direct_url.is_some() {
        extra.push((
            format!("{dist_info}/direct_url.json"),
            direct_url_json(pkg, sha256),
        ));
    }
    for (name, content) in extra {
        let dest = site.join(&name);
        if let Some((hash, len)) =
            out.file(&dest, 0o644, content.len() as u64, &mut content.as_bytes())?
        {
            record.push((name, hash, len.to_string()));
        }
    }
    let mut text = String::new();
    for (p, h, s) in &record {
        let _ = writeln!(text, "{},{h},{s}", csv_field(p));
    }
    let _ = writeln!(text, "{dist_info}/RECORD,,");
    out.file(
        &site.join(format!("{dist_info}/RECORD")),
        0o644,
        text.len() as u64,
        &mut text.as_bytes(),
    )?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A URL without its password (PEP 610: credentials are not recorded).
fn without_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// pip's `direct_url.json` (PEP 610, keys sorted as pip writes them): the git commit of a
/// `git+…` requirement, else the archive and its hash (the sdist's, for a build).
fn direct_url_json(pkg: &LockedPackage, wheel_sha256: &str) -> String {
    if let Some(g) = pkg.build.as_ref().and_then(|b| b.git.as_ref()) {
        let mut vcs = serde_json::json!({"commit_id": g.commit, "vcs": "git"});
        if let Some(rev) = &g.requested_revision {
            vcs["requested_revision"] = serde_json::json!(rev);
        }
        let mut doc = serde_json::json!({"url": without_password(&g.repository), "vcs_info": vcs});
        if let Some(sub) = &g.subdirectory {
            doc["subdirectory"] = serde_json::json!(sub);
        }
        return doc.to_string();
    }
    let url = pkg.direct_url.as_deref().unwrap_or(&pkg.url);
    let url = url.split('#').next().unwrap_or(url);
    let sha = pkg.sha256.as_deref().unwrap_or(wheel_sha256);
    serde_json::json!({
        "archive_info": {"hash": format!("sha256={sha}"), "hashes": {"sha256": sha}},
        "url": without_password(url),
    })
    .to_string()
}

/// `(name, "module:attr")` of `[console_scripts]` and `[gui_scripts]`.
fn console_scripts(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_scripts = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_scripts = line == "[console_scripts]" || line == "[gui_scripts]";
            continue;
        }
        if !in_scripts || line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// pip's console-script launcher for `module:attr [extras]`.
fn launcher(python: &Path, target: &str) -> Option<String> {
    let target = target.split('[').next()?.trim();
    let (module, attr) = target.split_once(':')?;
    let (module, attr) = (module.trim(), attr.trim());
    if module.is_empty() || attr.is_empty() {
        return None;
    }
    let import_name = attr.split('.').next()?;
    Some(format!(
        "#!{}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {import_name}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({attr}())\n",
        python.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchers_match_pip() {
        let l = launcher(
            Path::new("/usr/local/bin/python3.11"),
            "transformers.commands.cli:main",
        )
        .unwrap();
        assert!(l.starts_with("#!/usr/local/bin/python3.11\n"));
        assert!(l.contains("from transformers.commands.cli import main\n"));
        assert!(l.ends_with("    sys.exit(main())\n"));
        let l = launcher(Path::new("/p"), "a.b:C.run [extra]").unwrap();
        assert!(l.contains("from a.b import C\n") && l.contains("sys.exit(C.run())"));
        assert!(launcher(Path::new("/p"), "nocolon").is_none());
    }

    #[test]
    fn entry_points_sections() {
        let t = "[console_scripts]\nfoo = a:b\n\n[other]\nx = y:z\n[gui_scripts]\ng=m:n\n";
        assert_eq!(
            console_scripts(t),
            [("foo".into(), "a:b".into()), ("g".into(), "m:n".into())]
        );
    }

    #[test]
    fn destinations() {
        let o = InstallOptions::python_slim("3.11");
        let d = |m: &str| destination(&o, "w.whl", "foo-1.0.data", "foo", m);
        assert!(
            matches!(d("foo/__init__.py").unwrap(), Dest::File(p) if p == Path::new("/usr/local/lib/python3.11/site-packages/foo/__init__.py"))
        );
        assert!(
            matches!(d("foo-1.0.data/scripts/run").unwrap(), Dest::Script(p) if p == Path::new("/usr/local/bin/run"))
        );
        assert!(
            matches!(d("foo-1.0.data/headers/x.h").unwrap(), Dest::File(p) if p == Path::new("/usr/local/include/python3.11/foo/x.h"))
        );
        assert!(
            matches!(d("foo-1.0.data/data/share/x").unwrap(), Dest::File(p) if p == Path::new("/usr/local/share/x"))
        );
        assert!(
            matches!(d("foo-1.0.data/platlib/foo.so").unwrap(), Dest::File(p) if p == Path::new("/usr/local/lib/python3.11/site-packages/foo.so"))
        );
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "foo/../../x",
            "foo-1.0.data/data/../../x",
        ] {
            assert!(matches!(d(bad), Err(Error::UnsafePath { .. })), "{bad}");
        }
        assert_eq!(
            relative_to(Path::new("/usr/local/bin/x"), &o.site_packages),
            "../../../bin/x"
        );
    }
}
