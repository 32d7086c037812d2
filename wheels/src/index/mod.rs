//! Index client: PEP 691 JSON / PEP 503 HTML simple API, find-links, PEP 658 metadata with
//! range-read and full-download fallbacks, an on-disk HTTP cache, bounded retries.

pub mod config;
pub mod simple;
pub mod zip_range;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use pep508_rs::PackageName;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_RANGE, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, RANGE,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

pub use simple::DistFile;

use crate::error::{Error, Result};
use crate::requirements::FindLinks;

const SIMPLE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
const TAIL_BYTES: u64 = 64 * 1024;

/// Where the index client keeps its cache: `$COG_CACHE_DIR`, else `$XDG_CACHE_HOME/cog`, else
/// `~/.cache/cog`, then `wheels/`.
pub fn default_cache_dir() -> PathBuf {
    layers::BlobStore::default_root().join("wheels")
}

/// How files of one package are taken from several indexes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexStrategy {
    /// Only the first index (in [`ClientOptions::indexes`] order) that has the package is
    /// used, as uv's default: a package published under the same name on a later index
    /// (dependency confusion) is never picked.
    #[default]
    FirstIndex,
    /// Every index's files are merged and the best version wins, as pip does.
    UnsafeBestMatch,
}

/// An index that only some packages come from, and only it (uv's explicit index): Cog's
/// PyTorch index for `torch`, `torchvision` and `torchaudio`, without it shadowing the other
/// packages it also hosts (numpy, pillow, ... at older versions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExplicitIndex {
    pub url: Url,
    pub packages: Vec<PackageName>,
}

/// Settings of the index client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Indexes in priority order (the extra indexes, then the default one, as uv orders them).
    pub indexes: Vec<Url>,
    /// How the indexes' files are combined; find-links are always added.
    pub strategy: IndexStrategy,
    /// Indexes for some packages only; those packages use no other index.
    pub explicit: Vec<ExplicitIndex>,
    pub find_links: Vec<FindLinks>,
    /// `None` disables the on-disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Attempts per request (first try included) for connection errors, 429 and 5xx.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub backoff: Duration,
    /// Concurrent requests.
    pub concurrency: usize,
    /// Treat cached index pages as fresh for this long even without `Cache-Control`.
    pub max_age: Option<Duration>,
    pub timeout: Duration,
    /// Where downloads report their progress (a task per file fetched over the network).
    pub reporter: report::SharedReporter,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            indexes: vec![],
            strategy: IndexStrategy::default(),
            explicit: vec![],
            find_links: vec![],
            cache_dir: Some(default_cache_dir()),
            attempts: 4,
            backoff: Duration::from_millis(250),
            concurrency: 48,
            max_age: None,
            timeout: Duration::from_secs(60),
            reporter: report::SharedReporter::default(),
        }
    }
}

/// An async client for package indexes; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    options: ClientOptions,
    permits: Semaphore,
    find_links_pages: Vec<OnceCell<Vec<DistFile>>>,
}

#[derive(Serialize, Deserialize)]
struct CachedPage {
    fetched: u64,
    max_age: Option<u64>,
    etag: Option<String>,
    last_modified: Option<String>,
    files: Vec<DistFile>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..8])
}

/// Writes `bytes` to `path` through a temp file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cog-rs/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(options.concurrency)
            .build()
            .map_err(|e| Error::Http {
                url: String::new(),
                what: "building the HTTP client",
                source: Arc::new(e),
            })?;
        let find_links_pages = options.find_links.iter().map(|_| OnceCell::new()).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                permits: Semaphore::new(options.concurrency.max(1)),
                find_links_pages,
                options,
            }),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The indexes `name` is looked up in, in priority order.
    fn indexes_for(&self, name: &PackageName) -> Vec<&Url> {
        let o = &self.inner.options;
        let explicit: Vec<&Url> = o
            .explicit
            .iter()
            .filter(|e| e.packages.contains(name))
            .map(|e| &e.url)
            .collect();
        if explicit.is_empty() {
            o.indexes.iter().collect()
        } else {
            explicit
        }
    }

    fn describe_indexes(&self, name: &PackageName) -> String {
        let o = &self.inner.options;
        let mut parts: Vec<String> = self
            .indexes_for(name)
            .into_iter()
            .map(ToString::to_string)
            .collect();
        parts.extend(o.find_links.iter().map(|f| format!("find-links {f}")));
        if parts.is_empty() {
            "no index (--no-index and no --find-links)".into()
        } else {
            parts.join(", ")
        }
    }

    /// Sends a GET with bounded retries on connection errors, 429 and 5xx.
    async fn get(&self, url: &Url, headers: HeaderMap) -> Result<reqwest::Response> {
        let o = &self.inner.options;
        let mut delay = o.backoff;
        let mut last_status = None;
        let mut last_error = None;
        for attempt in 1..=o.attempts.max(1) {
            let result = {
                let _permit = self.inner.permits.acquire().await;
                self.inner
                    .http
                    .get(url.clone())
                    .headers(headers.clone())
                    .send()
                    .await
            };
            match result {
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    last_status = Some(resp.status().as_u16());
                    last_error = None;
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    last_status = None;
                    last_error = Some(Arc::new(e));
                }
            }
            if attempt < o.attempts {
                tracing::debug!(%url, attempt, status = ?last_status, error = ?last_error, "retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(Error::Unreachable {
            url: url.to_string(),
            attempts: o.attempts.max(1),
            last_status,
            source: last_error,
        })
    }

    async fn get_bytes(
        &self,
        url: &Url,
        headers: HeaderMap,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let (status, headers, body, _) = self.get_page(url, headers).await?;
        Ok((status, headers, body))
    }

    /// Like `get_bytes`, with the URL the answer came from (after redirects).
    async fn get_page(
        &self,
        url: &Url,
        headers: HeaderMap,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>, Url)> {
        let resp = self.get(url, headers).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let final_url = resp.url().clone();
        let body = resp.bytes().await.map_err(|e| Error::Http {
            url: url.to_string(),
            what: "reading the answer",
            source: Arc::new(e),
        })?;
        Ok((status, headers, body.to_vec(), final_url))
    }

    /// The files of `name` from the indexes (all merged, or the first that has it, as the
    /// strategy says) and every find-links location; empty when unknown.
    pub async fn project(&self, name: &PackageName) -> Result<Vec<DistFile>> {
        let o = &self.inner.options;
        let indexes = self.indexes_for(name);
        let pages =
            futures::future::join_all(indexes.iter().map(|index| self.index_page(index, name)))
                .await;
        let mut files: Vec<DistFile> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, page) in indexes.into_iter().zip(pages) {
            let page = page?;
            let found = !page.is_empty();
            for f in page {
                check_dist_file(&f, index)?;
                if seen.insert(f.filename.clone()) {
                    files.push(f);
                }
            }
            if found && o.strategy == IndexStrategy::FirstIndex {
                tracing::debug!(%name, %index, "first index with the package");
                break;
            }
        }
        for (i, fl) in o.find_links.iter().enumerate() {
            let all = self.inner.find_links_pages[i]
                .get_or_try_init(|| self.find_links_files(fl))
                .await?;
            for f in all {
                check_dist_file(f, &f.url)?;
                if file_belongs_to(&f.filename, name) && seen.insert(f.filename.clone()) {
                    files.push(f.clone());
                }
            }
        }
        Ok(files)
    }

    /// Error for a package no index knows.
    pub fn not_found(&self, name: &PackageName) -> Error {
        Error::PackageNotFound {
            name: name.to_string(),
            indexes: self.describe_indexes(name),
        }
    }

    async fn find_links_files(&self, fl: &FindLinks) -> Result<Vec<DistFile>> {
        match fl {
            FindLinks::Dir(file) if file.is_file() => {
                // A local HTML page of links, or an archive named directly.
                let url = Url::from_file_path(fs_err::canonicalize(file)?).map_err(|()| {
                    Error::Io(Arc::new(std::io::Error::other(format!(
                        "{} is not an absolute path",
                        file.display()
                    ))))
                })?;
                let filename = file
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or_default();
                if crate::requirements::is_archive(filename) {
                    return Ok(vec![link_file(url)]);
                }
                let text = fs_err::read_to_string(file)?;
                Ok(simple::parse_html(&text, &url))
            }
            FindLinks::Dir(dir) => {
                // pip ignores find-links directories that do not exist (e.g. /opt/wheels).
                let Ok(entries) = std::fs::read_dir(dir) else {
                    tracing::debug!(dir = %dir.display(), "find-links directory missing; ignored");
                    return Ok(Vec::new());
                };
                Ok(entries
                    .filter_map(std::result::Result::ok)
                    .filter_map(|e| {
                        let path = e.path();
                        let filename = path.file_name()?.to_str()?.to_string();
                        let url = Url::from_file_path(std::fs::canonicalize(&path).ok()?).ok()?;
                        Some(DistFile {
                            filename,
                            url,
                            sha256: None,
                            requires_python: None,
                            yanked: false,
                            metadata: Some(false),
                            size: e.metadata().ok().map(|m| m.len()),
                        })
                    })
                    .collect())
            }
            FindLinks::Url(url) => {
                // An archive named directly is a link of its own (pip accepts `-f URL.whl`).
                let filename = url
                    .path_segments()
                    .and_then(|mut s| s.next_back())
                    .map(crate::requirements::direct::percent_decode)
                    .unwrap_or_default();
                if crate::requirements::is_archive(&filename) {
                    return Ok(vec![link_file(url.clone())]);
                }
                let (status, _, body, final_url) = self.get_page(url, HeaderMap::new()).await?;
                if !status.is_success() {
                    return Err(Error::HttpStatus {
                        url: url.to_string(),
                        what: "find-links page",
                        status: status.as_u16(),
                    });
                }
                // Links are relative to where the page was served from (`/wheels` redirects
                // to `/wheels/`).
                Ok(simple::parse_html(
                    &String::from_utf8_lossy(&body),
                    &final_url,
                ))
            }
        }
    }

    fn page_cache_path(&self, index: &Url, name: &PackageName) -> Option<PathBuf> {
        let dir = self.inner.options.cache_dir.as_ref()?;
        Some(
            dir.join("simple-v1")
                .join(short_hash(index.as_str()))
                .join(format!("{name}.json")),
        )
    }

    async fn index_page(&self, index: &Url, name: &PackageName) -> Result<Vec<DistFile>> {
        // `name` is a normalized package name: joining it cannot leave the index.
        let mut url = index.clone();
        url.set_path(&format!("{}{name}/", index.path()));
        let cache_path = self.page_cache_path(index, name);
        let cached: Option<CachedPage> = cache_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(SIMPLE_ACCEPT));
        if let Some(c) = &cached {
            let age = now_secs().saturating_sub(c.fetched);
            let fresh_for = self
                .inner
                .options
                .max_age
                .map(|d| d.as_secs())
                .or(c.max_age)
                .unwrap_or(0);
            if age < fresh_for {
                return Ok(c.files.clone());
            }
            if let Some(v) = c
                .etag
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                headers.insert(IF_NONE_MATCH, v);
            }
            if let Some(v) = c
                .last_modified
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                headers.insert(IF_MODIFIED_SINCE, v);
            }
        }
        let (status, resp_headers, body, final_url) = self.get_page(&url, headers).await?;
        let header = |h| {
            resp_headers
                .get(h)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let max_age = header(CACHE_CONTROL).and_then(|cc| parse_max_age(&cc));
        let files = if status == StatusCode::NOT_MODIFIED {
            match cached {
                Some(c) => c.files,
                None => {
                    return Err(Error::HttpStatus {
                        url: url.to_string(),
                        what: "project page (not modified, but nothing is cached)",
                        status: 304,
                    });
                }
            }
        } else if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(Vec::new());
        } else if !status.is_success() {
            return Err(Error::HttpStatus {
                url: url.to_string(),
                what: "project page",
                status: status.as_u16(),
            });
        } else {
            let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
            if content_type.contains("json") {
                simple::parse_json(&body, &final_url).map_err(|e| Error::Metadata {
                    file: url.to_string(),
                    message: "invalid JSON project page".into(),
                    source: Some(Arc::new(e)),
                })?
            } else {
                simple::parse_html(&String::from_utf8_lossy(&body), &final_url)
            }
        };
        if let Some(path) = cache_path {
            let entry = CachedPage {
                fetched: now_secs(),
                max_age,
                etag: header(ETAG),
                last_modified: header(LAST_MODIFIED),
                files,
            };
            if let Ok(bytes) = serde_json::to_vec(&entry)
                && let Err(e) = write_atomic(&path, &bytes)
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot write index cache");
            }
            return Ok(entry.files);
        }
        Ok(files)
    }

    fn metadata_cache_path(&self, file: &DistFile) -> Option<PathBuf> {
        let dir = self.inner.options.cache_dir.as_ref()?;
        let key = file
            .sha256
            .clone()
            .unwrap_or_else(|| format!("url-{}", short_hash(file.url.as_str())));
        Some(dir.join("metadata-v1").join(format!("{key}.METADATA")))
    }

    /// The wheel's `METADATA` text: cached, else `<url>.metadata` (PEP 658), else a range read
    /// of the zip, else a full download.
    pub async fn metadata(&self, file: &DistFile) -> Result<String> {
        let cache = self.metadata_cache_path(file);
        if let Some(text) = cache.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
            return Ok(text);
        }
        let text = self.fetch_metadata(file).await?;
        if let Some(p) = cache
            && let Err(e) = write_atomic(&p, text.as_bytes())
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot write metadata cache");
        }
        Ok(text)
    }

    async fn fetch_metadata(&self, file: &DistFile) -> Result<String> {
        if file.url.scheme() == "file" {
            let path = file.url.to_file_path().unwrap_or_default();
            return read_metadata_from_wheel(&path, &file.filename);
        }
        if file.metadata != Some(false) {
            let mut url = file.url.clone();
            url.set_path(&format!("{}.metadata", file.url.path()));
            let (status, _, body) = self.get_bytes(&url, HeaderMap::new()).await?;
            if status.is_success() {
                return Ok(String::from_utf8_lossy(&body).into_owned());
            }
            tracing::debug!(%url, %status, "no PEP 658 metadata; trying a range read");
        }
        match self.range_metadata(file).await {
            Ok(Some(text)) => return Ok(text),
            Ok(None) => tracing::debug!(url = %file.url, "range read not possible; downloading"),
            Err(e) => {
                tracing::debug!(url = %file.url, error = %e, "range read failed; downloading");
            }
        }
        let path = self.download(file, &[]).await?;
        read_metadata_from_wheel(&path, &file.filename)
    }

    async fn range(&self, url: &Url, spec: &str) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(spec) {
            headers.insert(RANGE, v);
        }
        self.get_bytes(url, headers).await
    }

    /// `Ok(None)` when the server does not do ranges or the zip is unusual.
    async fn range_metadata(&self, file: &DistFile) -> Result<Option<String>> {
        let url = &file.url;
        let (status, headers, tail) = self.range(url, &format!("bytes=-{TAIL_BYTES}")).await?;
        if status == StatusCode::OK {
            // The server sent the whole file.
            return extract_metadata(std::io::Cursor::new(tail), &file.filename).map(Some);
        }
        if status != StatusCode::PARTIAL_CONTENT {
            return Ok(None);
        }
        let Some(total) = headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return Ok(None);
        };
        let Some((cd_offset, cd_size)) = zip_range::central_directory(&tail, total) else {
            return Ok(None);
        };
        let tail_start = total - tail.len() as u64;
        let cd = if cd_offset >= tail_start {
            let s = (cd_offset - tail_start) as usize;
            tail.get(s..s + cd_size as usize).map(<[u8]>::to_vec)
        } else {
            let (st, _, b) = self
                .range(
                    url,
                    &format!("bytes={cd_offset}-{}", cd_offset + cd_size - 1),
                )
                .await?;
            (st == StatusCode::PARTIAL_CONTENT).then_some(b)
        };
        let Some(cd) = cd else { return Ok(None) };
        let Some(member) = zip_range::find_member(&cd, zip_range::is_root_metadata) else {
            return Ok(None);
        };
        let mut want = 30 + 512 + member.compressed_size;
        for _ in 0..2 {
            let start = member.local_header_offset;
            let bytes = if start >= tail_start {
                tail[(start - tail_start) as usize..].to_vec()
            } else {
                let end = (start + want).min(total) - 1;
                let (st, _, b) = self.range(url, &format!("bytes={start}-{end}")).await?;
                if st != StatusCode::PARTIAL_CONTENT {
                    return Ok(None);
                }
                b
            };
            match zip_range::read_member(&bytes, &member) {
                Ok(Ok(data)) => return Ok(Some(String::from_utf8_lossy(&data).into_owned())),
                Ok(Err(message)) => {
                    return Err(Error::InvalidWheel {
                        file: file.filename.clone(),
                        message,
                        source: None,
                    });
                }
                Err(needed) => want = needed as u64,
            }
        }
        Ok(None)
    }

    /// Downloads `file` into the cache (verified against its index sha256 and any of `hashes`)
    /// and returns the path. Local files are verified in place.
    pub async fn download(&self, file: &DistFile, hashes: &[String]) -> Result<PathBuf> {
        if file.url.scheme() == "file" {
            let path = file.url.to_file_path().unwrap_or_default();
            let digest = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || sha256_file(&path))
                    .await
                    .map_err(|_| Error::Task("hashing a file"))??
            };
            verify(&file.filename, &digest, file.sha256.as_deref(), hashes)?;
            return Ok(path);
        }
        let dir = match &self.inner.options.cache_dir {
            Some(d) => d.join("files-v1"),
            None => std::env::temp_dir().join("cog-wheels-files"),
        };
        check_dist_file(file, &file.url)?;
        let key = match &file.sha256 {
            Some(sha) => safe_path::sha256_hex(sha).map_err(|e| unsafe_name(&file.url, e))?,
            None => format!("url-{}", short_hash(file.url.as_str())),
        };
        let dest = safe_path::join_file(&dir.join(&key), &file.filename)
            .map_err(|e| unsafe_name(&file.url, e))?;
        if file.sha256.is_some() && dest.is_file() {
            // Stored only after verification, under its own hash.
            verify(&file.filename, &key, file.sha256.as_deref(), hashes)?;
            return Ok(dest);
        }
        // A file whose hash is not known yet: the URL remembers which digest it had.
        let by_url = dir.join(format!("url-{}", short_hash(file.url.as_str())));
        if file.sha256.is_none()
            && let Ok(digest) = std::fs::read_to_string(&by_url)
            && let Ok(digest) = safe_path::sha256_hex(digest.trim())
            && let Ok(stored) = safe_path::join_file(&dir.join(&digest), &file.filename)
            && stored.is_file()
        {
            verify(&file.filename, &digest, None, hashes)?;
            return Ok(stored);
        }
        fs_err::create_dir_all(&dir)?;
        let resp = self.get(&file.url, HeaderMap::new()).await?;
        if !resp.status().is_success() {
            return Err(Error::HttpStatus {
                url: file.url.to_string(),
                what: "download",
                status: resp.status().as_u16(),
            });
        }
        let mut task = self.inner.options.reporter.task(
            &file.filename,
            resp.content_length(),
            report::Unit::Bytes,
        );
        // In this process's temp directory, so a killed build leaves nothing behind for long.
        let scratch = layers::process_temp_dir(&dir.join("tmp"))?;
        let mut tmp = tempfile::NamedTempFile::new_in(scratch.path())?;
        let mut hasher = Sha256::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Http {
                url: file.url.to_string(),
                what: "download",
                source: Arc::new(e),
            })?;
            hasher.update(&chunk);
            tmp.write_all(&chunk)?;
            task.inc(chunk.len() as u64);
        }
        task.finish("downloaded");
        let digest = hex::encode(hasher.finalize());
        verify(&file.filename, &digest, file.sha256.as_deref(), hashes)?;
        let dest = safe_path::join_file(&dir.join(&digest), &file.filename)
            .map_err(|e| unsafe_name(&file.url, e))?;
        fs_err::create_dir_all(dest.parent().unwrap_or(&dir))?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        if file.sha256.is_none() {
            write_atomic(&by_url, digest.as_bytes())?;
        }
        Ok(dest)
    }
}

/// Refuses a file whose name could not safely name a file in the cache (a hostile or broken
/// index: `x-1.0-py3-none-any./../../evil.whl`). Its digest is checked where it names a
/// directory (`download`).
fn check_dist_file(file: &DistFile, origin: &Url) -> Result<()> {
    safe_path::file_name(&file.filename)
        .map(drop)
        .map_err(|e| unsafe_name(origin, e))
}

fn unsafe_name(origin: &Url, source: safe_path::UnsafeName) -> Error {
    Error::UnsafeName {
        origin: origin.to_string(),
        source,
    }
}

/// A link to one file, its name from its URL.
fn link_file(url: Url) -> DistFile {
    let filename = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .map(crate::requirements::direct::percent_decode)
        .unwrap_or_default();
    let sha256 = url
        .fragment()
        .and_then(|f| f.strip_prefix("sha256="))
        .map(str::to_ascii_lowercase);
    let mut url = url;
    url.set_fragment(None);
    DistFile {
        filename,
        url,
        sha256,
        requires_python: None,
        yanked: false,
        metadata: Some(false),
        size: None,
    }
}

/// Checks a computed sha256 against the index's and the `--hash` values.
pub fn verify(filename: &str, actual: &str, index: Option<&str>, hashes: &[String]) -> Result<()> {
    if let Some(expected) = index
        && !expected.eq_ignore_ascii_case(actual)
    {
        return Err(Error::HashMismatch {
            file: filename.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    if !hashes.is_empty() && !hashes.iter().any(|h| h.eq_ignore_ascii_case(actual)) {
        return Err(Error::HashMismatch {
            file: filename.to_string(),
            expected: hashes.join(" or "),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs_err::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

pub(crate) fn read_metadata_from_wheel(path: &Path, filename: &str) -> Result<String> {
    let f = fs_err::File::open(path)?;
    extract_metadata(std::io::BufReader::new(f), filename)
}

fn extract_metadata<R: Read + std::io::Seek>(reader: R, filename: &str) -> Result<String> {
    let bad = |message: &str, source: Option<crate::error::Cause>| Error::InvalidWheel {
        file: filename.to_string(),
        message: message.to_string(),
        source,
    };
    let mut zip =
        zip::ZipArchive::new(reader).map_err(|e| bad("not a zip archive", Some(Arc::new(e))))?;
    let name = zip
        .file_names()
        .find(|n| zip_range::is_root_metadata(n))
        .map(str::to_string)
        .ok_or_else(|| bad("no .dist-info/METADATA", None))?;
    let mut text = String::new();
    zip.by_name(&name)
        .map_err(|e| bad(&name, Some(Arc::new(e))))?
        .read_to_string(&mut text)
        .map_err(|e| bad(&name, Some(Arc::new(e))))?;
    Ok(text)
}

fn parse_max_age(cc: &str) -> Option<u64> {
    if cc.contains("no-store") || cc.contains("no-cache") {
        return Some(0);
    }
    cc.split(',')
        .find_map(|d| d.trim().strip_prefix("max-age=")?.parse().ok())
}

/// Whether a find-links file name is a distribution of `name`.
fn file_belongs_to(filename: &str, name: &PackageName) -> bool {
    crate::filename::WheelFilename::parse(filename)
        .map(|w| &w.name == name)
        .or_else(|| crate::filename::parse_sdist(filename).map(|(n, _)| &n == name))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age() {
        assert_eq!(parse_max_age("max-age=600, public"), Some(600));
        assert_eq!(parse_max_age("no-cache"), Some(0));
        assert_eq!(parse_max_age("public"), None);
    }

    #[test]
    fn verifies_hashes() {
        assert!(verify("f", "ab", Some("AB"), &[]).is_ok());
        let e = verify("f.whl", "ab", Some("cd"), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "hash mismatch for f.whl: expected sha256 cd, got ab"
        );
        assert!(verify("f", "ab", None, &["cd".into()]).is_err());
        assert!(verify("f", "ab", None, &["cd".into(), "ab".into()]).is_ok());
    }
}
