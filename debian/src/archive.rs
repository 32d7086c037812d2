//! The archive client: signed `InRelease` -> `Packages` indices checked against its SHA256 list.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::control::{paragraphs, value_lines};
use crate::fetch::{self, default_cache_dir, sha256_hex};
use crate::index::Index;
use crate::limits::{Cap, ReadError};
use crate::signature::{self, Keyring};

/// Environment variable overriding the primary mirror (`--apt-mirror` in the CLI).
pub const MIRROR_ENV: &str = "COG_APT_MIRROR";
/// Environment variable overriding the security mirror.
pub const SECURITY_MIRROR_ENV: &str = "COG_APT_SECURITY_MIRROR";

pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
pub const DEBIAN_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
pub const UBUNTU_MIRROR: &str = "http://archive.ubuntu.com/ubuntu";
pub const UBUNTU_PORTS_MIRROR: &str = "http://ports.ubuntu.com/ubuntu-ports";

/// One `deb` line: a mirror, a suite and its components, signed by `keyring`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub mirror: String,
    pub suite: String,
    pub components: Vec<String>,
    pub keyring: Keyring,
    /// An update suite (`-updates`, `-security`): skipped when the mirror has no such suite
    /// (no `InRelease` or `Release`), as apt would only warn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl Source {
    /// Debian's security suite, which lives on its own mirror.
    fn is_debian_security(&self) -> bool {
        self.keyring == Keyring::Debian && self.suite.ends_with("-security")
    }
}

/// Debian suites without `-updates` and `-security` suites.
const DEBIAN_SUITES_WITHOUT_UPDATES: &[&str] = &["sid", "unstable", "experimental", "rc-buggy"];

/// Which sources to read for which architecture, and where to cache downloads.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub sources: Vec<Source>,
    /// Debian architecture name: `amd64` or `arm64`.
    pub arch: String,
    pub cache_dir: PathBuf,
}

fn env_mirror(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Debian's architecture name for a platform name (`x86_64`, `linux/arm64`, ...).
pub fn debian_arch(platform: &str) -> Option<&'static str> {
    match platform.trim_start_matches("linux/") {
        "amd64" | "x86_64" => Some("amd64"),
        "arm64" | "aarch64" | "arm64/v8" => Some("arm64"),
        _ => None,
    }
}

impl ArchiveConfig {
    /// Debian `suite` (`bookworm`, `trixie`), component `main`, with its `-updates` and
    /// `-security` suites as a Debian image's apt sources have them: from `$COG_APT_MIRROR` or
    /// deb.debian.org, security from `$COG_APT_SECURITY_MIRROR` or deb.debian.org/debian-security.
    pub fn debian(suite: &str, arch: &str) -> ArchiveConfig {
        let config = Self::debian_main(suite, arch);
        if DEBIAN_SUITES_WITHOUT_UPDATES.contains(&suite) {
            config
        } else {
            config.with_updates().with_security()
        }
    }

    /// Debian `suite` alone, without its update suites (the release as published).
    pub fn debian_main(suite: &str, arch: &str) -> ArchiveConfig {
        let mirror = env_mirror(MIRROR_ENV).unwrap_or_else(|| DEBIAN_MIRROR.to_owned());
        ArchiveConfig {
            sources: vec![Source {
                mirror,
                suite: suite.to_owned(),
                components: vec!["main".to_owned()],
                keyring: Keyring::Debian,
                optional: false,
            }],
            arch: arch.to_owned(),
            cache_dir: default_cache_dir(),
        }
    }

    /// Ubuntu `suite` (`jammy`, `noble`), `main` and `universe`, with its `-updates` and
    /// `-security` suites (all on one mirror; arm64 lives on ports.ubuntu.com).
    pub fn ubuntu(suite: &str, arch: &str) -> ArchiveConfig {
        Self::ubuntu_main(suite, arch)
            .with_updates()
            .with_security()
    }

    /// Ubuntu `suite` alone, without its update suites.
    pub fn ubuntu_main(suite: &str, arch: &str) -> ArchiveConfig {
        let default = if arch == "amd64" {
            UBUNTU_MIRROR
        } else {
            UBUNTU_PORTS_MIRROR
        };
        let mirror = env_mirror(MIRROR_ENV).unwrap_or_else(|| default.to_owned());
        ArchiveConfig {
            sources: vec![Source {
                mirror,
                suite: suite.to_owned(),
                components: vec!["main".to_owned(), "universe".to_owned()],
                keyring: Keyring::Ubuntu,
                optional: false,
            }],
            arch: arch.to_owned(),
            cache_dir: default_cache_dir(),
        }
    }

    /// Adds the suite's stable updates (`<suite>-updates`, on the main mirror).
    pub fn with_updates(mut self) -> ArchiveConfig {
        if let Some(first) = self.sources.first().cloned() {
            self.sources.push(Source {
                suite: format!("{}-updates", first.suite),
                optional: true,
                ..first
            });
        }
        self
    }

    /// Adds the suite's security updates (`<suite>-security`; Debian's live on their own
    /// mirror, Ubuntu's on the main one unless `$COG_APT_SECURITY_MIRROR` says otherwise).
    pub fn with_security(mut self) -> ArchiveConfig {
        if let Some(first) = self.sources.first().cloned() {
            let mirror = match first.keyring {
                Keyring::Debian => env_mirror(SECURITY_MIRROR_ENV)
                    .unwrap_or_else(|| DEBIAN_SECURITY_MIRROR.to_owned()),
                Keyring::Ubuntu => env_mirror(SECURITY_MIRROR_ENV).unwrap_or(first.mirror.clone()),
            };
            self.sources.push(Source {
                mirror,
                suite: format!("{}-security", first.suite),
                optional: true,
                ..first
            });
        }
        self
    }

    /// Replaces the mirror of every source but Debian's security suite (a Debian mirror does
    /// not carry it; see [`with_security_mirror`](Self::with_security_mirror)).
    pub fn with_mirror(mut self, mirror: &str) -> ArchiveConfig {
        for s in self.sources.iter_mut().filter(|s| !s.is_debian_security()) {
            mirror.trim_end_matches('/').clone_into(&mut s.mirror);
        }
        self
    }

    /// Replaces the mirror of Debian's security suite.
    pub fn with_security_mirror(mut self, mirror: &str) -> ArchiveConfig {
        for s in self.sources.iter_mut().filter(|s| s.is_debian_security()) {
            mirror.trim_end_matches('/').clone_into(&mut s.mirror);
        }
        self
    }

    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> ArchiveConfig {
        self.cache_dir = dir.into();
        self
    }
}

/// A file listed in a Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    pub sha256: String,
    pub size: u64,
}

/// The parts of a (verified) Release file we use.
#[derive(Debug, Clone, Default)]
pub struct Release {
    pub suite: String,
    pub codename: String,
    pub files: HashMap<String, ReleaseFile>,
}

impl Release {
    pub fn parse(text: &str, origin: &str) -> Result<Release, Error> {
        let p = paragraphs(text).next().ok_or_else(|| Error::Index {
            origin: origin.to_owned(),
            reason: "empty Release file".into(),
        })?;
        let mut files = HashMap::new();
        for line in value_lines(p.get("SHA256").unwrap_or_default()) {
            let mut parts = line.split_whitespace();
            if let (Some(hash), Some(size), Some(path)) = (parts.next(), parts.next(), parts.next())
            {
                files.insert(
                    path.to_owned(),
                    ReleaseFile {
                        sha256: hash.to_ascii_lowercase(),
                        size: size.parse().unwrap_or(0),
                    },
                );
            }
        }
        if files.is_empty() {
            return Err(Error::Index {
                origin: origin.to_owned(),
                reason: "Release file has no SHA256 list".into(),
            });
        }
        Ok(Release {
            suite: p.get("Suite").unwrap_or_default().to_owned(),
            codename: p.get("Codename").unwrap_or_default().to_owned(),
            files,
        })
    }
}

/// The loaded archive: every package of the configured sources for one architecture.
#[derive(Debug, Clone)]
pub struct Archive {
    pub config: ArchiveConfig,
    pub index: Index,
}

impl Archive {
    /// Fetches and verifies the indices of every source (in parallel).
    pub async fn fetch(config: ArchiveConfig) -> Result<Archive, Error> {
        let client = fetch::client()?;
        let loads = config
            .sources
            .iter()
            .map(|s| load_source(&client, s, &config.arch, &config.cache_dir));
        let texts: Vec<SourceTexts> = futures::future::try_join_all(loads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let arch = config.arch.clone();
        // Parsing 50 MB of text is CPU work: keep it off the async executor.
        let index = tokio::task::spawn_blocking(move || {
            let mut index = Index::new(&arch);
            for (mirror, files) in texts {
                for (origin, text) in files {
                    index.add_packages_file(&text, &mirror, &origin)?;
                }
            }
            Ok::<_, Error>(index)
        })
        .await
        .map_err(|e| Error::Config(format!("index parser panicked: {e}")))??;
        tracing::debug!(packages = index.len(), "archive index loaded");
        Ok(Archive { config, index })
    }

    /// An archive over an index built elsewhere (tests, local repositories).
    pub fn from_index(config: ArchiveConfig, index: Index) -> Archive {
        Archive { config, index }
    }
}

type SourceTexts = (Arc<str>, Vec<(String, String)>);

/// A source's verified `Packages` texts; `None` for an optional suite the mirror lacks.
async fn load_source(
    client: &reqwest::Client,
    source: &Source,
    arch: &str,
    cache_dir: &std::path::Path,
) -> Result<Option<SourceTexts>, Error> {
    let base = format!(
        "{}/dists/{}",
        source.mirror.trim_end_matches('/'),
        source.suite
    );
    let release_url = format!("{base}/InRelease");
    let keys =
        signature::parse_keyring(source.keyring.bytes()).map_err(|reason| Error::Signature {
            url: release_url.clone(),
            reason,
        })?;
    let text = match fetch::get_bytes(client, &release_url).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            signature::verify_clearsigned(&text, &keys).map_err(|reason| Error::Signature {
                url: release_url.clone(),
                reason,
            })?
        }
        Err(Error::Fetch { reason, .. }) if reason.contains("HTTP 404") => {
            // Older mirrors: Release + detached Release.gpg.
            let url = format!("{base}/Release");
            let data = match fetch::get_bytes(client, &url).await {
                Err(Error::Fetch { reason, .. })
                    if source.optional && reason.contains("HTTP 404") =>
                {
                    tracing::warn!(
                        "{} has no suite {}: skipping it",
                        source.mirror,
                        source.suite
                    );
                    return Ok(None);
                }
                other => other?,
            };
            let sig = fetch::get_bytes(client, &format!("{url}.gpg")).await?;
            signature::verify_detached(&data, &sig, &keys).map_err(|reason| Error::Signature {
                url: url.clone(),
                reason,
            })?;
            String::from_utf8_lossy(&data).into_owned()
        }
        Err(e) => return Err(e),
    };
    let release = Release::parse(&text, &release_url)?;
    if release.suite != source.suite && release.codename != source.suite {
        return Err(Error::Signature {
            url: release_url,
            reason: format!(
                "signed Release is for suite {:?} (codename {:?}), not {:?}",
                release.suite, release.codename, source.suite
            ),
        });
    }
    let mirror: Arc<str> = Arc::from(source.mirror.trim_end_matches('/'));
    let loads = source
        .components
        .iter()
        .map(|c| load_packages(client, &base, &release, &release_url, c, arch, cache_dir));
    let files = futures::future::try_join_all(loads).await?;
    Ok(Some((mirror, files)))
}

/// Fetches one component's `Packages` (xz, else gz), verifies it and returns its text. The
/// uncompressed text is cached by its SHA-256 from the Release file.
async fn load_packages(
    client: &reqwest::Client,
    base: &str,
    release: &Release,
    release_url: &str,
    component: &str,
    arch: &str,
    cache_dir: &std::path::Path,
) -> Result<(String, String), Error> {
    let plain = format!("{component}/binary-{arch}/Packages");
    let origin = format!("{base}/{plain}");
    let cached = release
        .files
        .get(&plain)
        .and_then(|f| safe_path::sha256_hex(&f.sha256).ok())
        .map(|sha| cache_dir.join("indices").join(sha));
    if let Some(path) = &cached
        && let Ok(bytes) = fs_err::read(path)
        && Some(sha256_hex(&bytes)) == release.files.get(&plain).map(|f| f.sha256.clone())
    {
        let text = into_text(bytes, &origin)?;
        return Ok((origin, text));
    }
    let (name, entry) = ["xz", "gz"]
        .iter()
        .find_map(|ext| {
            let name = format!("{plain}.{ext}");
            release.files.get(&name).map(|f| (name, f.clone()))
        })
        .ok_or_else(|| Error::NotInRelease {
            release: release_url.to_owned(),
            path: format!("{plain}.xz"),
        })?;
    let url = format!("{base}/{name}");
    let text = fetch_decompressed(client, &url, &name, &entry.sha256).await?;
    if let (Some(path), Some(f)) = (&cached, release.files.get(&plain))
        && sha256_hex(&text) == f.sha256
    {
        fetch::write_atomic(path, &text)?;
    }
    Ok((origin.clone(), into_text(text, &origin)?))
}

/// Downloads a compressed index and decompresses it while it arrives (a blocking thread reads
/// the chunks from a channel), hashing the compressed bytes on the way: the result is used only
/// when they match `sha256` from the signed Release.
async fn fetch_decompressed(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    sha256: &str,
) -> Result<Vec<u8>, Error> {
    let cap = Cap::index()?;
    let mut resp = fetch::get(client, url).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(256);
    let url_text = url.to_owned();
    let xz = name.ends_with(".xz");
    let decoder = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let decoded: Box<dyn Read> = if xz {
            Box::new(xz2::read::XzDecoder::new_multi_decoder(reader))
        } else {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        };
        cap.read_all(decoded, || format!("{url_text} (uncompressed)"))
    });
    let mut hasher = Sha256::new();
    let mut sending = true;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| fetch::fetch_error(url, &e))?
    {
        hasher.update(&chunk);
        // The decoder stops early on corrupt data; the hash check below reports it.
        if sending && tx.send(chunk.to_vec()).await.is_err() {
            sending = false;
        }
    }
    drop(tx);
    let actual = hex::encode(hasher.finalize());
    if actual != sha256 {
        return Err(Error::HashMismatch {
            what: url.to_owned(),
            expected: sha256.to_owned(),
            actual,
        });
    }
    decoder
        .await
        .map_err(|e| Error::Config(format!("decompression panicked: {e}")))?
        .map_err(|e| match e {
            ReadError::Io(e) => Error::Fetch {
                url: url.to_owned(),
                reason: format!("cannot decompress: {e}"),
            },
            ReadError::TooLarge(e) => e,
        })
}

/// A `Read` over chunks sent from the download (blocking receive: use on a blocking thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn into_text(bytes: Vec<u8>, origin: &str) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| Error::Index {
        origin: origin.to_owned(),
        reason: format!("not UTF-8: {e}"),
    })
}

/// Reads the first `deb` mirror URL from an apt deb822 sources file
/// (`/etc/apt/sources.list.d/debian.sources`).
pub fn mirror_from_deb822(text: &str) -> Option<String> {
    paragraphs(text)
        .filter(|p| {
            p.get("Types")
                .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
        })
        .filter(|p| p.get("Enabled").is_none_or(|e| e != "no"))
        .find_map(|p| p.get("URIs")?.split_whitespace().next().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_sha256_list() {
        let text = "Origin: Debian\nSuite: stable\nCodename: bookworm\nSHA256:\n 0123abcd 1234 main/binary-amd64/Packages.xz\n 99ff 77 main/binary-amd64/Packages\n";
        let r = Release::parse(text, "test").unwrap();
        assert_eq!(r.codename, "bookworm");
        assert_eq!(r.files["main/binary-amd64/Packages.xz"].size, 1234);
        assert_eq!(r.files["main/binary-amd64/Packages"].sha256, "99ff");
        assert!(Release::parse("Origin: x\n", "test").is_err());
    }

    #[test]
    fn reads_mirror_from_deb822_sources() {
        let text = "Types: deb-src\nURIs: http://src.example\n\nTypes: deb\n# comment\nURIs: http://deb.example/debian http://other\nSuites: bookworm\n";
        assert_eq!(
            mirror_from_deb822(text).as_deref(),
            Some("http://deb.example/debian")
        );
    }

    #[test]
    fn maps_platforms_to_debian_architectures() {
        assert_eq!(debian_arch("linux/amd64"), Some("amd64"));
        assert_eq!(debian_arch("aarch64"), Some("arm64"));
        assert_eq!(debian_arch("s390x"), None);
    }
}
