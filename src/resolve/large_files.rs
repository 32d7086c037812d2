//! Finding the project's large files (weights), so that each goes into a layer of its own below
//! the code: a code-only change then adds one layer of the code's size, not of the weights'.
//!
//! The walk sees what the source layer would copy (`.dockerignore` and `.cog/` honoured). Files
//! of at least the threshold (10 MiB, `COG_LARGE_FILE_THRESHOLD`) are split out one by one;
//! files of a known weight format from 1 MiB up to the threshold go into one shared layer. A
//! sample of each (up to 3 MiB: start, middle, end) is compressed with zstd level 1: data that
//! gains under 10% (weights usually) is stored as plain tar.
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use layers::IgnoreMatcher;

use super::ResolveError;
use crate::plan::{FoundFile, LargeFiles};

/// Files of at least this many bytes get a layer of their own.
pub const DEFAULT_THRESHOLD: u64 = 10 << 20;
/// The environment variable that sets the threshold (`512K`, `64M`, `1G`, bytes, or `off`).
pub const THRESHOLD_VAR: &str = "COG_LARGE_FILE_THRESHOLD";
/// Weight formats smaller than this stay with the code.
const GROUP_MIN: u64 = 1 << 20;
/// Extensions of weight formats, grouped even under the threshold.
pub const WEIGHT_EXTENSIONS: &[&str] = &[
    "safetensors",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "onnx",
    "gguf",
    "h5",
    "msgpack",
];
/// Bytes per sample of the compressibility check; three samples at most.
const SAMPLE: usize = 1 << 20;
/// Compressed to more than this fraction of the sample: not worth compressing.
const WORTH_COMPRESSING: f64 = 0.9;

/// The threshold `COG_LARGE_FILE_THRESHOLD` sets (0 when `off`), else the default.
pub fn threshold_from_env() -> Result<u64, ResolveError> {
    match std::env::var(THRESHOLD_VAR) {
        Ok(value) if !value.trim().is_empty() => {
            parse_size(&value).ok_or_else(|| ResolveError::LargeFileThreshold { value })
        }
        _ => Ok(DEFAULT_THRESHOLD),
    }
}

/// `off`, bytes, or a number with a binary `K`, `M` or `G` suffix.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Some(0);
    }
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        _ => (text, 0),
    };
    let number: u64 = digits.trim().parse().ok()?;
    number.checked_mul(1 << shift).filter(|n| *n > 0)
}

/// Walks the project as the source layer would (`excludes`: its `.dockerignore` rules plus
/// `.cog`) and finds the files to split out. `threshold` 0: none.
pub fn scan(dir: &Path, excludes: &[String], threshold: u64) -> Result<LargeFiles, ResolveError> {
    let mut found = LargeFiles {
        threshold,
        ..LargeFiles::default()
    };
    if threshold == 0 {
        return Ok(found);
    }
    let ignore = IgnoreMatcher::new(excludes).map_err(|source| ResolveError::Dockerignore {
        path: dir.join(".dockerignore"),
        source,
    })?;
    let mut candidates = Vec::new();
    walk(dir, "", &ignore, threshold, &mut candidates)
        .map_err(|(path, source)| ResolveError::Io { path, source })?;
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, size, alone) in candidates {
        let full = dir.join(&path);
        let compressible =
            compressible(&full, size).map_err(|source| ResolveError::Io { path: full, source })?;
        let file = FoundFile {
            path,
            size,
            compressible,
        };
        if alone {
            found.alone.push(file);
        } else {
            found.grouped.push(file);
        }
    }
    Ok(found)
}

type Candidate = (String, u64, bool);

fn walk(
    dir: &Path,
    rel: &str,
    ignore: &IgnoreMatcher,
    threshold: u64,
    out: &mut Vec<Candidate>,
) -> Result<(), (PathBuf, io::Error)> {
    let at = |e| (dir.to_path_buf(), e);
    for item in std::fs::read_dir(dir).map_err(at)? {
        let item = item.map_err(at)?;
        let Some(name) = item.file_name().to_str().map(str::to_owned) else {
            // Not UTF-8: the source layer reports it.
            continue;
        };
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let excluded = ignore.matches(&rel);
        let metadata = item.metadata().map_err(|e| (item.path(), e))?;
        if metadata.is_dir() {
            if !excluded || ignore.may_reinclude_under(&rel) {
                walk(&item.path(), &rel, ignore, threshold, out)?;
            }
        } else if metadata.is_file() && !excluded && splittable(&rel) {
            let size = metadata.len();
            if size >= threshold {
                out.push((rel, size, true));
            } else if size >= GROUP_MIN.min(threshold) && is_weight_format(&rel) {
                out.push((rel, size, false));
            }
        }
    }
    Ok(())
}

/// Whether `path` has the extension of a known weight format.
pub fn is_weight_format(path: &str) -> bool {
    Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| WEIGHT_EXTENSIONS.iter().any(|w| e.eq_ignore_ascii_case(w)))
}

/// A path the source layer can leave out with an exact `.dockerignore` rule: no pattern
/// characters, no leading `!`, no surrounding spaces. Others (rare) stay in the source layer.
fn splittable(path: &str) -> bool {
    !path.contains(['*', '?', '[', ']', '\\'])
        && !path.starts_with('!')
        && path.trim() == path
        && path
            .split('/')
            .all(|part| part.trim() == part && part != ".")
}

/// Whether zstd level 1 gains 10% or more on up to three 1 MiB samples (start, middle, end).
fn compressible(path: &Path, size: u64) -> io::Result<bool> {
    let file = std::fs::File::open(path)?;
    let mut offsets = vec![0];
    if size > 2 * SAMPLE as u64 {
        offsets.push(size / 2);
        offsets.push(size - SAMPLE as u64);
    }
    let mut raw = 0usize;
    let mut packed = 0usize;
    let mut buf = vec![0; SAMPLE];
    for offset in offsets {
        let len = (size - offset).min(SAMPLE as u64) as usize;
        file.read_exact_at(&mut buf[..len], offset)?;
        raw += len;
        packed += zstd::bulk::compress(&buf[..len], 1)?.len();
    }
    Ok(raw > 0 && (packed as f64) < (raw as f64) * WORTH_COMPRESSING)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("off"), Some(0));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size(" 64m "), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("M"), None);
    }

    #[test]
    fn scan_splits_large_files_and_groups_weight_formats() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("weights/sub")).unwrap();
        std::fs::create_dir_all(root.join("ignored")).unwrap();
        std::fs::create_dir_all(root.join(".cog")).unwrap();
        std::fs::write(root.join("weights/model.bin"), noise(3 << 20, 1)).unwrap();
        std::fs::write(root.join("weights/sub/zeros.dat"), vec![0u8; 3 << 20]).unwrap();
        std::fs::write(root.join("lora.safetensors"), noise(1 << 20, 2)).unwrap();
        std::fs::write(root.join("tiny.bin"), b"small").unwrap();
        std::fs::write(root.join("data.csv"), noise(1 << 20, 3)).unwrap();
        std::fs::write(root.join("ignored/big.bin"), noise(3 << 20, 4)).unwrap();
        std::fs::write(root.join(".cog/big.bin"), noise(3 << 20, 5)).unwrap();
        std::fs::write(root.join("odd*name.bin"), noise(3 << 20, 6)).unwrap();
        std::fs::write(root.join("predict.py"), b"print(1)").unwrap();
        let excludes = vec!["ignored".to_string(), ".cog".to_string()];
        let found = scan(root, &excludes, 2 << 20).unwrap();
        let alone: Vec<_> = found
            .alone
            .iter()
            .map(|f| (f.path.as_str(), f.compressible))
            .collect();
        assert_eq!(
            alone,
            [
                ("weights/model.bin", false),
                ("weights/sub/zeros.dat", true)
            ]
        );
        let grouped: Vec<_> = found.grouped.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(grouped, ["lora.safetensors"]);
        assert_eq!(found.threshold, 2 << 20);
        assert!(scan(root, &excludes, 0).unwrap().all().next().is_none());
    }
}
