//! `LayerSpec`: a declarative layer (trees, in-memory files, dirs, symlinks), sorted, keyed
//! cheaply for the cache, and built into the store.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::num::NonZeroU64;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::digest::{Digest, Sha256};
use crate::dockerignore::IgnoreMatcher;
use crate::error::{Error, Result};
use crate::store::{BlobStore, LayerInfo};
use crate::writer::{LayerOptions, LayerWriter, archive_path, normalize_mode};

/// Bumped whenever the bytes a spec produces could change for the same inputs (v2: gzip blocks
/// are compressed from a fresh deflate state, see `pgzip`; v3: keys hash file contents and
/// normalized modes, never host paths or inode data, so that they travel between machines).
const KEY_VERSION: &str = "layers/spec/v3";
/// The local-only stamp of a plan (paths, inodes, times), mapped to its portable key.
const STAMP_VERSION: &str = "layers/spec-stamp/v1";

/// A layer described as data. Entries may overlap: for the same path the one added last wins.
#[derive(Clone, Debug, Default)]
pub struct LayerSpec {
    entries: Vec<SpecEntry>,
}

#[derive(Clone, Debug)]
enum SpecEntry {
    Tree {
        source: PathBuf,
        dest: String,
        ignore: IgnoreMatcher,
    },
    DiskFile {
        source: PathBuf,
        dest: String,
        mode: Option<u32>,
    },
    MemFile {
        dest: String,
        mode: u32,
        content: Arc<[u8]>,
        digest: Digest,
    },
    Dir {
        dest: String,
        mode: u32,
    },
    Symlink {
        dest: String,
        target: String,
    },
}

/// One resolved entry of the layer, keyed by its path components.
#[derive(Clone, Debug)]
enum Planned {
    Dir {
        mode: u32,
    },
    DiskFile {
        source: PathBuf,
        mode: u32,
        size: u64,
        stamp: Stamp,
    },
    MemFile {
        mode: u32,
        content: Arc<[u8]>,
        digest: Digest,
    },
    Symlink {
        target: String,
    },
}

/// Metadata that changes when a file's content may have: the cheap cache key of a tree.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(metadata: &Metadata) -> Self {
        Stamp {
            dev: metadata.dev(),
            ino: metadata.ino(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

type Plan = BTreeMap<Vec<String>, Planned>;

fn dest_path(dest: &str) -> Result<String> {
    archive_path(Path::new(dest))
}

/// A tree may go to the root (`/`): its contents then land at the top, with no root entry.
fn tree_dest(dest: &str) -> Result<String> {
    if dest.split('/').all(|part| part.is_empty() || part == ".") {
        Ok(String::new())
    } else {
        dest_path(dest)
    }
}

impl LayerSpec {
    pub fn new() -> Self {
        LayerSpec::default()
    }

    /// Copies the directory `source` to `dest` (like `COPY source dest`), leaving out what the
    /// `.dockerignore`-style `ignore` rules exclude. Symlinks are kept as symlinks, empty
    /// directories are kept, hard links become separate files; sockets, FIFOs and devices are
    /// skipped. A `source` that is a file is copied to `dest` itself.
    pub fn tree<S: AsRef<str>>(
        mut self,
        source: impl Into<PathBuf>,
        dest: &str,
        ignore: &[S],
    ) -> Result<Self> {
        self.entries.push(SpecEntry::Tree {
            source: source.into(),
            dest: tree_dest(dest)?,
            ignore: IgnoreMatcher::new(ignore)?,
        });
        Ok(self)
    }

    /// Like [`LayerSpec::tree`] with an already compiled matcher.
    pub fn tree_with_matcher(
        mut self,
        source: impl Into<PathBuf>,
        dest: &str,
        ignore: IgnoreMatcher,
    ) -> Result<Self> {
        self.entries.push(SpecEntry::Tree {
            source: source.into(),
            dest: tree_dest(dest)?,
            ignore,
        });
        Ok(self)
    }

    /// The file at `source` as `dest`; `mode` `None` keeps the file's exec bit.
    pub fn file_from_path(
        mut self,
        source: impl Into<PathBuf>,
        dest: &str,
        mode: Option<u32>,
    ) -> Result<Self> {
        self.entries.push(SpecEntry::DiskFile {
            source: source.into(),
            dest: dest_path(dest)?,
            mode,
        });
        Ok(self)
    }

    /// An in-memory file.
    pub fn file(mut self, dest: &str, mode: u32, content: impl Into<Arc<[u8]>>) -> Result<Self> {
        let content = content.into();
        self.entries.push(SpecEntry::MemFile {
            dest: dest_path(dest)?,
            mode,
            digest: Digest::of(&content),
            content,
        });
        Ok(self)
    }

    pub fn dir(mut self, dest: &str, mode: u32) -> Result<Self> {
        self.entries.push(SpecEntry::Dir {
            dest: dest_path(dest)?,
            mode,
        });
        Ok(self)
    }

    pub fn symlink(mut self, dest: &str, target: &str) -> Result<Self> {
        self.entries.push(SpecEntry::Symlink {
            dest: dest_path(dest)?,
            target: target.to_owned(),
        });
        Ok(self)
    }

    /// A key for the layer cache that travels between machines: a hash of the entries' paths,
    /// kinds, normalized modes, link targets, contents and the options; no host path, inode or
    /// time. Files are hashed once: the key is remembered in `store` under the tree's local
    /// stamp (paths, sizes, inodes, mtimes, ctimes), so an unchanged tree is not read again.
    pub fn cache_key(&self, store: &BlobStore, options: &LayerOptions) -> Result<String> {
        key_of(&self.plan()?, store, options)
    }

    /// Builds the layer into `store`, or returns the cached one when the key is known.
    pub fn build(&self, store: &BlobStore, options: &LayerOptions) -> Result<LayerInfo> {
        let plan = self.plan()?;
        let key = key_of(&plan, store, options)?;
        if let Some(cached) = store.lookup_key(&key) {
            tracing::debug!(key, digest = %cached.digest, "layer cache hit");
            return Ok(cached);
        }
        let layer = write_plan(&plan, store, options)?;
        store.record_key(&key, &layer)?;
        tracing::debug!(key, digest = %layer.digest, size = layer.size, "layer built");
        Ok(layer)
    }

    /// Builds the layer without consulting the cache (`--no-cache`), then records its key.
    pub fn build_uncached(&self, store: &BlobStore, options: &LayerOptions) -> Result<LayerInfo> {
        let plan = self.plan()?;
        let key = key_of(&plan, store, options)?;
        let layer = write_plan(&plan, store, options)?;
        store.record_key(&key, &layer)?;
        Ok(layer)
    }

    fn plan(&self) -> Result<Plan> {
        let mut plan = Plan::new();
        for entry in &self.entries {
            match entry {
                SpecEntry::Tree {
                    source,
                    dest,
                    ignore,
                } => plan_tree(&mut plan, source, dest, ignore)?,
                SpecEntry::DiskFile { source, dest, mode } => {
                    let metadata = fs_err::metadata(source)?;
                    if !metadata.is_file() {
                        return Err(Error::InvalidEntry {
                            path: dest.clone(),
                            reason: format!("{} is not a regular file", source.display()),
                        });
                    }
                    let mode = mode.unwrap_or(metadata.mode());
                    insert(&mut plan, dest, disk_file(source.clone(), mode, &metadata));
                }
                SpecEntry::MemFile {
                    dest,
                    mode,
                    content,
                    digest,
                } => insert(
                    &mut plan,
                    dest,
                    Planned::MemFile {
                        mode: *mode,
                        content: content.clone(),
                        digest: *digest,
                    },
                ),
                SpecEntry::Dir { dest, mode } => {
                    insert(&mut plan, dest, Planned::Dir { mode: *mode });
                }
                SpecEntry::Symlink { dest, target } => insert(
                    &mut plan,
                    dest,
                    Planned::Symlink {
                        target: target.clone(),
                    },
                ),
            }
        }
        imply_parents(&mut plan)?;
        Ok(plan)
    }
}

/// Builds independent layers in parallel; results are in the order of `specs`.
pub fn build_all(
    store: &BlobStore,
    specs: Vec<LayerSpec>,
    options: &LayerOptions,
) -> Result<Vec<LayerInfo>> {
    specs
        .into_par_iter()
        .map(|spec| spec.build(store, options))
        .collect()
}

fn components(path: &str) -> Vec<String> {
    path.split('/').map(str::to_owned).collect()
}

fn insert(plan: &mut Plan, path: &str, entry: Planned) {
    plan.insert(components(path), entry);
}

fn disk_file(source: PathBuf, mode: u32, metadata: &Metadata) -> Planned {
    Planned::DiskFile {
        source,
        mode,
        size: metadata.len(),
        stamp: Stamp::of(metadata),
    }
}

fn plan_tree(plan: &mut Plan, source: &Path, dest: &str, ignore: &IgnoreMatcher) -> Result<()> {
    let metadata = fs_err::metadata(source)?;
    if metadata.is_file() {
        if dest.is_empty() {
            return Err(Error::InvalidEntry {
                path: source.to_string_lossy().into_owned(),
                reason: "a file cannot be copied to the root itself; name its destination"
                    .to_owned(),
            });
        }
        insert(
            plan,
            dest,
            disk_file(source.to_owned(), metadata.mode(), &metadata),
        );
        return Ok(());
    }
    if !dest.is_empty() {
        insert(
            plan,
            dest,
            Planned::Dir {
                mode: metadata.mode(),
            },
        );
    }
    walk(plan, source, "", dest, ignore)
}

/// Adds the contents of `dir` (at `rel` inside the tree) under `dest`.
fn walk(plan: &mut Plan, dir: &Path, rel: &str, dest: &str, ignore: &IgnoreMatcher) -> Result<()> {
    for item in fs_err::read_dir(dir)? {
        let item = item?;
        let source = item.path();
        let name = item.file_name();
        let name = name.to_str().ok_or_else(|| Error::InvalidEntry {
            path: source.to_string_lossy().into_owned(),
            reason: "the file name is not valid UTF-8".to_owned(),
        })?;
        let rel = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let target = if dest.is_empty() {
            name.to_owned()
        } else {
            format!("{dest}/{name}")
        };
        let excluded = !ignore.is_empty() && ignore.matches(&rel);
        // Relative to the open directory (fstatat): no walk of the whole path per entry.
        let metadata = item.metadata()?;
        let file_type = metadata.file_type();
        if file_type.is_dir() {
            if !excluded {
                insert(
                    plan,
                    &target,
                    Planned::Dir {
                        mode: metadata.mode(),
                    },
                );
                walk(plan, &source, &rel, &target, ignore)?;
            } else if ignore.may_reinclude_under(&rel) {
                walk(plan, &source, &rel, &target, ignore)?;
            }
        } else if excluded {
            // Excluded files and links are left out.
        } else if file_type.is_file() {
            insert(plan, &target, disk_file(source, metadata.mode(), &metadata));
        } else if file_type.is_symlink() {
            let link = fs_err::read_link(&source)?;
            let link = link.to_str().ok_or_else(|| Error::InvalidEntry {
                path: source.to_string_lossy().into_owned(),
                reason: "the symlink target is not valid UTF-8".to_owned(),
            })?;
            insert(
                plan,
                &target,
                Planned::Symlink {
                    target: link.to_owned(),
                },
            );
        } else {
            tracing::warn!(
                "skipping {}: not a file, directory or symlink",
                source.display()
            );
        }
    }
    Ok(())
}

/// Adds missing parent directories (0755) and rejects an entry whose parent is not a directory.
fn imply_parents(plan: &mut Plan) -> Result<()> {
    let mut missing = Vec::new();
    for path in plan.keys() {
        for end in 1..path.len() {
            let parent = &path[..end];
            match plan.get(parent) {
                Some(Planned::Dir { .. }) => {}
                Some(_) => {
                    return Err(Error::InvalidEntry {
                        path: path.join("/"),
                        reason: format!("its parent {} is not a directory", parent.join("/")),
                    });
                }
                None => missing.push(parent.to_vec()),
            }
        }
    }
    for parent in missing {
        plan.entry(parent).or_insert(Planned::Dir { mode: 0o755 });
    }
    Ok(())
}

/// The portable key of `plan`, through the local stamp memo in `store`.
fn key_of(plan: &Plan, store: &BlobStore, options: &LayerOptions) -> Result<String> {
    let stamp = stamp_of(plan, options)?;
    if let Some(key) = store.lookup_alias(&stamp) {
        return Ok(key);
    }
    let key = portable_key_of(plan, options)?;
    store.record_alias(&stamp, &key);
    Ok(key)
}

/// What changes when a tree's files may have (local only: host paths and inode data).
fn stamp_of(plan: &Plan, options: &LayerOptions) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut line = |text: String| {
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
    };
    line(STAMP_VERSION.to_owned());
    line(KEY_VERSION.to_owned());
    line(format!("{:?}", options.compression));
    line(format!("mtime {}", options.resolved_mtime()?));
    for (path, entry) in plan {
        let path = path.join("/");
        line(match entry {
            Planned::Dir { mode } => format!("dir {path:?} {mode:o}"),
            Planned::DiskFile {
                source,
                mode,
                size,
                stamp,
            } => format!(
                "file {path:?} {mode:o} {size} {} {} {} {}.{} {}.{}",
                source.display(),
                stamp.dev,
                stamp.ino,
                stamp.mtime.0,
                stamp.mtime.1,
                stamp.ctime.0,
                stamp.ctime.1
            ),
            Planned::MemFile { mode, digest, .. } => format!("mem {path:?} {mode:o} {digest}"),
            Planned::Symlink { target } => format!("symlink {path:?} {target:?}"),
        });
    }
    Ok(hasher.finish().hex().to_string())
}

/// The key from what goes into the layer: paths, normalized modes, contents, link targets.
fn portable_key_of(plan: &Plan, options: &LayerOptions) -> Result<String> {
    let contents: Vec<Option<Digest>> = plan
        .par_iter()
        .map(|(_, entry)| match entry {
            Planned::DiskFile { source, .. } => {
                let mut file = fs_err::File::open(source)?;
                let mut hashing = crate::digest::HashingWriter::new(std::io::sink());
                std::io::copy(&mut file, &mut hashing)?;
                Ok(Some(hashing.finish().0))
            }
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    let mut hasher = Sha256::new();
    let mut line = |text: String| {
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
    };
    line(KEY_VERSION.to_owned());
    line(format!("{:?}", options.compression));
    line(format!("mtime {}", options.resolved_mtime()?));
    for ((path, entry), content) in plan.iter().zip(contents) {
        let path = path.join("/");
        line(match entry {
            Planned::Dir { mode } => format!("dir {path:?} {:o}", normalize_mode(true, *mode)),
            Planned::DiskFile { mode, size, .. } => format!(
                "file {path:?} {:o} {size} {}",
                normalize_mode(false, *mode),
                content.map(|d| d.to_string()).unwrap_or_default()
            ),
            Planned::MemFile { mode, digest, .. } => {
                format!("mem {path:?} {:o} {digest}", normalize_mode(false, *mode))
            }
            Planned::Symlink { target } => format!("symlink {path:?} {target:?}"),
        });
    }
    Ok(format!("{KEY_VERSION}:{}", hasher.finish().hex()))
}

fn write_plan(plan: &Plan, store: &BlobStore, options: &LayerOptions) -> Result<LayerInfo> {
    let files: Vec<(&Path, u64)> = plan
        .values()
        .filter_map(|entry| match entry {
            Planned::DiskFile { source, size, .. } => Some((source.as_path(), *size)),
            _ => None,
        })
        .collect();
    let read_ahead = ReadAhead::new(&files);
    std::thread::scope(|scope| {
        let advisor = read_ahead
            .worth_it()
            .then(|| {
                std::thread::Builder::new()
                    .name("layers-readahead".to_owned())
                    .spawn_scoped(scope, || read_ahead.run())
                    .ok()
            })
            .flatten();
        let advisor = advisor.as_ref().map(std::thread::ScopedJoinHandle::thread);
        let result = write_entries(plan, store, options, &read_ahead, advisor);
        read_ahead.stop(advisor);
        result
    })
}

fn write_entries(
    plan: &Plan,
    store: &BlobStore,
    options: &LayerOptions,
    read_ahead: &ReadAhead<'_>,
    advisor: Option<&std::thread::Thread>,
) -> Result<LayerInfo> {
    let mut writer = LayerWriter::new(store, options)?;
    let mut file_index = 0;
    for (path, entry) in plan {
        let path = path.join("/");
        match entry {
            Planned::Dir { mode } => writer.append_dir(&path, *mode)?,
            Planned::DiskFile {
                source, mode, size, ..
            } => {
                read_ahead.reading(file_index, advisor);
                file_index += 1;
                let mut file = fs_err::File::open(source)?;
                writer.append_file(&path, *mode, *size, &mut file)?;
            }
            Planned::MemFile { mode, content, .. } => {
                writer.append_file(&path, *mode, content.len() as u64, &mut &content[..])?;
            }
            Planned::Symlink { target } => writer.append_symlink(&path, target)?,
        }
    }
    writer.finish()
}

/// Read-ahead for the files of a tree: a helper thread tells the kernel which files the reader
/// will want next (`posix_fadvise(WILLNEED)`), so that their pages are read in the background,
/// many at once, instead of one small synchronous read after another when the page cache is
/// cold. It stays a bounded distance ahead of the reader. Advice only: errors are ignored (the
/// reader reports them).
struct ReadAhead<'a> {
    files: &'a [(&'a Path, u64)],
    /// Index of the file the reader is on.
    reader: AtomicUsize,
    stopped: AtomicBool,
}

/// Stay at most this many files ...
const READ_AHEAD_FILES: usize = 1024;
/// ... and this many bytes ahead of the reader.
const READ_AHEAD_BYTES: u64 = 32 << 20;
/// Advise at most this much of one file: past it the kernel's own read-ahead keeps up.
const READ_AHEAD_PER_FILE: u64 = 4 << 20;

impl<'a> ReadAhead<'a> {
    fn new(files: &'a [(&'a Path, u64)]) -> Self {
        ReadAhead {
            files,
            reader: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    /// A thread is worth it for many files, not for a handful.
    fn worth_it(&self) -> bool {
        self.files.len() >= 64
    }

    fn reading(&self, index: usize, advisor: Option<&std::thread::Thread>) {
        self.reader.store(index, Ordering::Release);
        // Wake the advisor now and then (it also wakes by itself), not for every small file.
        let large = self
            .files
            .get(index)
            .is_some_and(|(_, size)| *size >= 1 << 20);
        if let Some(advisor) = advisor
            && (index.is_multiple_of(32) || large)
        {
            advisor.unpark();
        }
    }

    fn stop(&self, advisor: Option<&std::thread::Thread>) {
        self.stopped.store(true, Ordering::Release);
        if let Some(advisor) = advisor {
            advisor.unpark();
        }
    }

    fn run(&self) {
        let mut next = 0;
        // Bytes of the files from the reader's to `next`, kept as a running window.
        let mut window_start = 0;
        let mut window_bytes = 0u64;
        while next < self.files.len() && !self.stopped.load(Ordering::Acquire) {
            let reader = self.reader.load(Ordering::Acquire);
            while window_start < reader.min(next) {
                window_bytes -= self.files[window_start].1;
                window_start += 1;
            }
            if next < reader {
                // The reader got there first: no use advising what it has read.
                next = reader;
                window_start = reader;
                window_bytes = 0;
            }
            let ahead = next > reader
                && (next - reader >= READ_AHEAD_FILES || window_bytes >= READ_AHEAD_BYTES);
            if ahead {
                std::thread::park_timeout(std::time::Duration::from_millis(20));
                continue;
            }
            let (path, size) = self.files[next];
            if let Ok(file) = std::fs::File::open(path) {
                let len = NonZeroU64::new(size.min(READ_AHEAD_PER_FILE));
                let _ = rustix::fs::fadvise(&file, 0, len, rustix::fs::Advice::WillNeed);
            }
            window_bytes += size;
            next += 1;
        }
    }
}
