//! `.deb`s -> one layer: every package verified by SHA-256, its data streamed into the layer
//! with the archive's metadata, and dpkg's database updated so that `dpkg -s` and apt in the
//! running image see the packages as installed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use layers::{BlobStore, Compression, LayerInfo};
use md5::{Digest as _, Md5};
use rayon::prelude::*;

use crate::Error;
use crate::control::paragraphs;
use crate::deb::{Deb, Kind, read_deb};
use crate::effects::{self, Installing};
use crate::fetch::{self, default_cache_dir};
use crate::filter::PathFilter;
use crate::layer::LayerTar;
use crate::lock::{Lock, LockedPackage};

/// How to build the layer.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub compression: Compression,
    /// The target uses merged /usr (`/bin -> usr/bin`): true for Debian >= 12, Ubuntu >= 21.04.
    pub merged_usr: bool,
    /// Write the merged-/usr links and dpkg's bookkeeping files (for a base from nothing).
    pub new_root: bool,
    /// Extra entries appended after the packages (e.g. `/sbin/tini`): (absolute path, target).
    pub extra_links: Vec<(String, String)>,
    /// Extra files appended after the packages (e.g. apt's sources): (absolute path, content).
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// Where downloaded `.deb`s are cached.
    pub cache_dir: PathBuf,
    /// Parallel downloads.
    pub downloads: usize,
    /// Shared libraries of the base (absolute paths): when set, `/etc/ld.so.cache` is written
    /// for them plus the new packages' (always for a new root).
    pub base_libraries: Option<Vec<String>>,
    /// dpkg path filters applied to the packages' files (see [`crate::filter`]): what
    /// `/etc/dpkg/dpkg.cfg.d/` in the target says. Filtered files stay in dpkg's `.list`, as
    /// dpkg keeps them.
    pub path_filter: PathFilter,
    /// Write the layer even when the store has it (`cog build --no-cache`). Downloaded `.deb`s
    /// are still reused: each is verified against the lock's hash.
    pub rebuild: bool,
    /// Where the downloads report their progress (one task counting packages).
    pub reporter: report::SharedReporter,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            compression: Compression::default(),
            merged_usr: true,
            new_root: false,
            extra_links: Vec::new(),
            extra_files: Vec::new(),
            cache_dir: default_cache_dir(),
            downloads: 16,
            base_libraries: None,
            path_filter: PathFilter::default(),
            rebuild: false,
            reporter: report::SharedReporter::default(),
        }
    }
}

/// The layer and the dpkg status it leaves (base status + the new packages).
#[derive(Debug, Clone)]
pub struct Installed {
    pub layer: LayerInfo,
    pub status: Vec<u8>,
    /// Shared libraries of the new packages plus `base_libraries` (for a later layer's cache).
    pub libraries: Vec<String>,
    /// Taken from the store rather than written now.
    pub cached: bool,
}

/// One apt layer for `lock` on top of a base whose dpkg status is `base_status`, cached in
/// `store` by the resolved set.
pub async fn install_layer(
    lock: &Lock,
    base_status: &[u8],
    store: &BlobStore,
) -> Result<LayerInfo, Error> {
    Ok(
        install(lock, base_status, store, &InstallOptions::default())
            .await?
            .layer,
    )
}

/// [`install_layer`] with options, also returning the resulting dpkg status.
pub async fn install(
    lock: &Lock,
    base_status: &[u8],
    store: &BlobStore,
    opts: &InstallOptions,
) -> Result<Installed, Error> {
    let key = cache_key(lock, base_status, opts);
    // The dpkg status and libraries the layer leaves are kept with its key in the store (so
    // that they travel with it to a registry build cache).
    if !opts.rebuild
        && let Some((layer, Some(meta))) = store.lookup_key_with_meta(&key)
        && let Ok((status, libraries)) = serde_json::from_slice::<(String, Vec<String>)>(&meta)
    {
        tracing::debug!(digest = %layer.digest, "apt layer cached");
        return Ok(Installed {
            layer,
            status: status.into_bytes(),
            libraries,
            cached: true,
        });
    }
    // Downloads (many in parallel, delivered in lock order) and the layer writer run as a
    // pipeline: a package is unpacked as soon as it and those before it are in.
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Result<PathBuf, Error>>(lock.packages.len() + 1);
    let builder = {
        let lock = lock.clone();
        let base_status = base_status.to_vec();
        let store = store.clone();
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || {
            let mut next = || {
                rx.blocking_recv()
                    .unwrap_or_else(|| Err(Error::Config("the package downloads stopped".into())))
            };
            build_layer(&lock, &mut next, &base_status, &store, &opts)
        })
    };
    let mut task = opts.reporter.task(
        "system packages",
        Some(lock.packages.len() as u64),
        report::Unit::Items,
    );
    let downloads = download_each(lock, &opts.cache_dir, opts.downloads, |path| {
        task.inc(1);
        // The builder may have failed and gone: nothing left to deliver to.
        let _ = tx.try_send(path);
    });
    downloads.await;
    drop(tx);
    task.finish("downloaded");
    let built = builder
        .await
        .map_err(|e| Error::Config(format!("layer builder panicked: {e}")))??;
    let meta = (String::from_utf8_lossy(&built.status), &built.libraries);
    let meta = serde_json::to_vec(&meta).map_err(std::io::Error::other)?;
    store.record_key_with_meta(&key, &built.layer, &meta)?;
    Ok(built)
}

/// Bump when what a layer holds for the same inputs changes (new effects, layout): the key
/// cache would otherwise hand back layers built by an older cog.
const LAYER_FORMAT: u32 = 6;

fn cache_key(lock: &Lock, base_status: &[u8], opts: &InstallOptions) -> String {
    format!(
        "debian-install/v{LAYER_FORMAT}\n{}\nbase-status {}\ncompression {:?}\nmerged-usr {}\nnew-root {}\nlinks {:?}\nfiles {:?}\nlibs {:?}\nfilter {:?}",
        lock.content_key(),
        fetch::sha256_hex(base_status),
        opts.compression,
        opts.merged_usr,
        opts.new_root,
        opts.extra_links,
        opts.extra_files
            .iter()
            .map(|(path, content)| format!("{path} {}", fetch::sha256_hex(content)))
            .collect::<Vec<_>>(),
        opts.base_libraries
            .as_ref()
            .map(|l| fetch::sha256_hex(l.join("\n").as_bytes())),
        opts.path_filter,
    )
}

/// Downloads every package (in parallel) into the cache; returns their paths in lock order.
pub async fn download_all(
    lock: &Lock,
    cache_dir: &Path,
    parallel: usize,
) -> Result<Vec<PathBuf>, Error> {
    let mut paths = Vec::with_capacity(lock.packages.len());
    let mut failed = None;
    download_each(lock, cache_dir, parallel, |r| match r {
        Ok(p) => paths.push(p),
        Err(e) => {
            failed.get_or_insert(e);
        }
    })
    .await;
    match failed {
        Some(e) => Err(e),
        None => Ok(paths),
    }
}

/// Downloads every package (`parallel` at a time) and hands each result to `deliver` in lock
/// order, as soon as it and the ones before it are done; stops after the first error.
async fn download_each(
    lock: &Lock,
    cache_dir: &Path,
    parallel: usize,
    mut deliver: impl FnMut(Result<PathBuf, Error>),
) {
    let client = match fetch::client() {
        Ok(c) => c,
        Err(e) => return deliver(Err(e)),
    };
    let client = &client;
    let jobs = lock.packages.iter().map(|p| async move {
        // The digest names the cache file; a lock or index could give anything.
        let sha = safe_path::sha256_hex(&p.sha256).map_err(|e| Error::UnsafeName {
            origin: p.url.clone(),
            source: e,
        })?;
        let path = cache_dir.join("debs").join(format!("{sha}.deb"));
        fetch::download_verified(
            client,
            &p.url,
            &path,
            &p.sha256,
            Some(p.size).filter(|s| *s > 0),
        )
        .await?;
        Ok::<_, Error>(path)
    });
    let mut results = futures::stream::iter(jobs).buffered(parallel.max(1));
    while let Some(result) = results.next().await {
        let stop = result.is_err();
        deliver(result);
        if stop {
            return;
        }
    }
}

/// Reads a cached `.deb`, checking its SHA-256 again (the cache may have been tampered with).
fn read_verified(path: &Path, pkg: &LockedPackage) -> Result<Deb, Error> {
    let bytes = fs_err::read(path)?;
    let actual = fetch::sha256_hex(&bytes);
    if actual != pkg.sha256 {
        return Err(Error::HashMismatch {
            what: path.display().to_string(),
            expected: pkg.sha256.clone(),
            actual,
        });
    }
    read_deb(
        &bytes[..],
        &format!("{}_{}_{}.deb", pkg.name, pkg.version, pkg.architecture),
    )
}

fn build_layer(
    lock: &Lock,
    next_deb: &mut dyn FnMut() -> Result<PathBuf, Error>,
    base_status: &[u8],
    store: &BlobStore,
    opts: &InstallOptions,
) -> Result<Installed, Error> {
    let mut layer = LayerTar::new(store, opts.compression, opts.merged_usr)?;
    if opts.new_root && opts.merged_usr {
        layer.merged_usr_links(&lock.arch)?;
    }
    let mut inst = Installing::default();
    let mut status_entries: BTreeMap<String, String> = BTreeMap::new();
    let mut info_files: Vec<(String, u32, Vec<u8>)> = Vec::new();
    // Decompress a few packages in parallel, write them in lock order.
    let chunk = rayon::current_num_threads().max(1) * 2;
    for packages in lock.packages.chunks(chunk) {
        let mut group: Vec<(&LockedPackage, PathBuf)> = Vec::with_capacity(packages.len());
        for p in packages {
            group.push((p, next_deb()?));
        }
        let read: Vec<Result<Deb, Error>> = group
            .par_iter()
            .map(|(p, path)| read_verified(path, p))
            .collect();
        for ((pkg, _), deb) in group.iter().zip(read) {
            let deb = deb?;
            record_package(
                pkg,
                &deb,
                &mut layer,
                &mut inst,
                &mut status_entries,
                &mut info_files,
                &opts.path_filter,
            )?;
        }
    }
    // dpkg's database.
    let status = merged_status(base_status, &status_entries);
    layer.dir("/var/lib/dpkg")?;
    layer.dir("/var/lib/dpkg/info")?;
    for (path, mode, data) in &info_files {
        layer.file(path, *mode, data)?;
    }
    if opts.new_root {
        for dir in ["alternatives", "parts", "triggers", "updates"] {
            layer.dir(&format!("/var/lib/dpkg/{dir}"))?;
        }
        for file in ["diversions", "statoverride", "available"] {
            layer.file(&format!("/var/lib/dpkg/{file}"), 0o644, b"")?;
        }
        // The multiarch database layout (`info/<pkg>:<arch>.list` for `Multi-Arch: same`):
        // without it dpkg reads the info directory as the old layout.
        layer.file("/var/lib/dpkg/info/format", 0o644, b"1\n")?;
    }
    layer.file("/var/lib/dpkg/status", 0o644, &status)?;
    effects::apply(&inst, &mut layer)?;
    let mut libraries: Vec<String> = opts.base_libraries.clone().unwrap_or_default();
    libraries.extend(
        inst.paths
            .iter()
            .filter(|p| crate::ldcache::is_library(p, &lock.arch))
            .cloned(),
    );
    libraries.sort();
    libraries.dedup();
    if opts.new_root || opts.base_libraries.is_some() {
        crate::ldcache::write(&libraries, &lock.arch, &mut layer)?;
    }
    for (path, target) in &opts.extra_links {
        layer.link(path, target)?;
    }
    for (path, content) in &opts.extra_files {
        layer.file(path, 0o644, content)?;
    }
    let (info, tar_size) = layer.finish()?;
    tracing::debug!(digest = %info.digest, tar_size, "apt layer built");
    Ok(Installed {
        layer: info,
        status,
        libraries,
        cached: false,
    })
}

fn record_package(
    pkg: &LockedPackage,
    deb: &Deb,
    layer: &mut LayerTar,
    inst: &mut Installing,
    status_entries: &mut BTreeMap<String, String>,
    info_files: &mut Vec<(String, u32, Vec<u8>)>,
    filter: &PathFilter,
) -> Result<(), Error> {
    let control = paragraphs(&deb.control).next().ok_or_else(|| Error::Deb {
        name: pkg.name.clone(),
        reason: "empty control file".into(),
    })?;
    let name = control.get("Package").unwrap_or(&pkg.name);
    if name != pkg.name || control.get("Version") != Some(pkg.version.to_string().as_str()) {
        return Err(Error::Deb {
            name: pkg.name.clone(),
            reason: format!(
                "control says {} {}, the lock says {} {}",
                name,
                control.get("Version").unwrap_or("?"),
                pkg.name,
                pkg.version
            ),
        });
    }
    let arch = control.get("Architecture").unwrap_or(&pkg.architecture);
    let same = control
        .get("Multi-Arch")
        .is_some_and(|m| m.eq_ignore_ascii_case("same"));
    let dpkg_name = if same {
        format!("{name}:{arch}")
    } else {
        name.to_owned()
    };
    let conffiles: Vec<String> = deb
        .control_files
        .get("conffiles")
        .map(|c| {
            String::from_utf8_lossy(c)
                .lines()
                .map(|l| l.trim().to_owned())
                .filter(|l| l.starts_with('/'))
                .collect()
        })
        .unwrap_or_default();
    let mut conffile_sums = Vec::new();
    let mut list = String::from("/.\n");
    let mut skipped: BTreeSet<&str> = BTreeSet::new();
    for m in &deb.members {
        if m.path != "/" {
            list.push_str(&m.path);
            list.push('\n');
        }
        let skip = match m.kind {
            Kind::Hardlink => {
                filter.skips(&m.path, Kind::File)
                    || m.link.as_deref().is_some_and(|t| skipped.contains(t))
            }
            kind => m.path != "/" && filter.skips(&m.path, kind),
        };
        if skip {
            skipped.insert(&m.path);
            continue;
        }
        layer.append_member(m)?;
        inst.paths.insert(m.path.clone());
        if m.kind == Kind::File {
            if effects::wants(&m.path) {
                inst.captured.insert(m.path.clone(), m.data.clone());
            }
            if conffiles.contains(&m.path) {
                conffile_sums.push(format!(" {} {}", m.path, hex::encode(Md5::digest(&m.data))));
            }
        }
    }
    inst.packages.insert(name.to_owned());
    if let Some(postinst) = deb.control_files.get("postinst") {
        inst.postinst.insert(
            name.to_owned(),
            String::from_utf8_lossy(postinst).into_owned(),
        );
    }
    let info = |f: &str| format!("/var/lib/dpkg/info/{dpkg_name}.{f}");
    info_files.push((info("list"), 0o644, list.into_bytes()));
    for (file, data) in &deb.control_files {
        let script = ["preinst", "postinst", "prerm", "postrm", "config"].contains(&file.as_str());
        info_files.push((info(file), if script { 0o755 } else { 0o644 }, data.clone()));
    }
    status_entries.insert(
        format!("{name}:{arch}"),
        status_paragraph(&deb.control, &conffile_sums),
    );
    Ok(())
}

/// The control paragraph as dpkg records it: `Status:` after `Package:`, `Conffiles:` added.
fn status_paragraph(control: &str, conffiles: &[String]) -> String {
    let mut out = String::new();
    for line in control.trim_end().lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("Package:") {
            out.push_str("Status: install ok installed\n");
        }
    }
    if !conffiles.is_empty() {
        out.push_str("Conffiles:\n");
        for c in conffiles {
            out.push_str(c);
            out.push('\n');
        }
    }
    out
}

/// The base's status with the new packages' paragraphs replacing or joining its own, sorted by
/// package name as dpkg writes it.
fn merged_status(base_status: &[u8], new: &BTreeMap<String, String>) -> Vec<u8> {
    let base = String::from_utf8_lossy(base_status);
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    for p in paragraphs(&base) {
        let name = p.get("Package").unwrap_or_default();
        let arch = p.get("Architecture").unwrap_or("all");
        let mut text = p.raw.to_owned();
        text.push('\n');
        all.insert(format!("{name}:{arch}"), text);
    }
    for (key, para) in new {
        // An upgrade may change the architecture (any <-> all): drop the old entry.
        let name = key.split(':').next().unwrap_or(key);
        all.retain(|k, _| k.split(':').next() != Some(name));
        all.insert(key.clone(), para.clone());
    }
    let mut out = String::new();
    for para in all.values() {
        out.push_str(para);
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_cache_key_covers_extra_files() {
        let lock = Lock::new("amd64", Vec::new(), Vec::new(), Vec::new());
        let mut opts = InstallOptions::default();
        let plain = cache_key(&lock, b"", &opts);
        opts.extra_files.push(("/etc/a".into(), b"one".to_vec()));
        let one = cache_key(&lock, b"", &opts);
        opts.extra_files[0].1 = b"two".to_vec();
        let two = cache_key(&lock, b"", &opts);
        assert!(plain != one && one != two, "{plain}\n{one}\n{two}");
        // Rebuilding is not an input of the layer.
        opts.rebuild = true;
        assert_eq!(cache_key(&lock, b"", &opts), two);
    }

    #[test]
    fn status_paragraph_marks_installed_and_lists_conffiles() {
        let p = status_paragraph(
            "Package: a\nVersion: 1\nDescription: x\n y\n",
            &[" /etc/a 0123".into()],
        );
        assert_eq!(
            p,
            "Package: a\nStatus: install ok installed\nVersion: 1\nDescription: x\n y\nConffiles:\n /etc/a 0123\n"
        );
    }

    #[test]
    fn merged_status_replaces_and_sorts() {
        let base = b"Package: z\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\nPackage: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n";
        let mut new = BTreeMap::new();
        new.insert(
            "a:all".to_owned(),
            "Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: 2\n".to_owned(),
        );
        new.insert("m:amd64".to_owned(), "Package: m\nVersion: 1\n".to_owned());
        let out = String::from_utf8(merged_status(base, &new)).unwrap();
        let names: Vec<_> = paragraphs(&out)
            .map(|p| {
                (
                    p.get("Package").unwrap().to_owned(),
                    p.get("Version").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("a".into(), "2".into()),
                ("m".into(), "1".into()),
                ("z".into(), "1".into())
            ]
        );
    }
}
