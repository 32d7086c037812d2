//! Where a weight's files come from: a directory (a bare path or `file://`, relative to the
//! project or absolute), or one file over `https://`/`http://`. `hf://` needs the Hugging Face
//! Hub, which cog-rs does not reach yet: refused, naming the weight.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

/// A path inside a weight: relative, no `.` or `..` component, no empty component, no control
/// characters or backslash (spec 1.4), and not under a `.cog/` (the runtime's state directory).
pub fn check_file_path(path: &str) -> Result<(), String> {
    let bad = || format!("path {path:?} is not a clean relative path");
    if path.is_empty() || path.starts_with('/') {
        return Err(bad());
    }
    for part in path.split('/') {
        if part.is_empty()
            || part == "."
            || part == ".."
            || part.chars().any(|c| c.is_control() || c == '\\')
        {
            return Err(bad());
        }
    }
    if path.split('/').next() == Some(".cog") {
        return Err(format!(
            "path {path:?} is under .cog/, reserved for the runtime"
        ));
    }
    Ok(())
}

/// A source of one weight, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory on this machine.
    Dir(PathBuf),
    /// One file at a URL; its name is the last path segment.
    Http { url: url::Url, file_name: String },
}

/// One file of a directory source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the source's root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub absolute: PathBuf,
}

fn scheme(uri: &str) -> Option<&str> {
    uri.split_once("://").map(|(s, _)| s)
}

/// Cog's canonical form of a source URI: `file://./rel`, `file:///abs`, the URL for http(s).
pub fn normalize_uri(uri: &str) -> Result<String, String> {
    let uri = uri.trim();
    if uri.is_empty() {
        return Err("weight source.uri is required".to_string());
    }
    match scheme(uri) {
        None | Some("file") => normalize_file(uri.strip_prefix("file://").unwrap_or(uri)),
        Some("http" | "https") => {
            let url = url::Url::parse(uri).map_err(|e| format!("invalid HTTP URI: {e}"))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err("HTTP URI must not embed credentials (user:pass@host)".to_string());
            }
            Ok(url.to_string())
        }
        Some("hf" | "huggingface") => Ok(uri.replacen("huggingface://", "hf://", 1)),
        Some(other) => Err(format!(
            "unsupported weight source scheme {other:?} (supported: file, https, http)"
        )),
    }
}

fn normalize_file(path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("empty weight source path".to_string());
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("the weight source escapes the project directory".to_string());
                }
            }
            other => parts.push(other),
        }
    }
    if absolute {
        return Ok(format!("file:///{}", parts.join("/")));
    }
    if parts.is_empty() {
        return Err("the weight source cannot be the project directory itself".to_string());
    }
    Ok(format!("file://./{}", parts.join("/")))
}

impl Source {
    /// The source a normalized URI names, for a project in `project_dir`.
    pub fn resolve(uri: &str, project_dir: &Path) -> Result<Self, String> {
        let normalized = normalize_uri(uri)?;
        if let Some(rest) = normalized.strip_prefix("file://") {
            let path = match rest.strip_prefix("./") {
                Some(relative) => project_dir.join(relative),
                None => PathBuf::from(rest),
            };
            return Ok(Source::Dir(path));
        }
        if normalized.starts_with("hf://") {
            return Err(
                "hf:// sources (the Hugging Face Hub) are not supported by cog-rs yet: download the files and use a directory (file://) or an https:// URL".to_string(),
            );
        }
        let url = url::Url::parse(&normalized).map_err(|e| e.to_string())?;
        let file_name = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("HTTP URI {normalized:?} has no filename in path"))?
            .to_string();
        safe_path::file_name(&file_name).map_err(|e| e.to_string())?;
        Ok(Source::Http { url, file_name })
    }
}

/// The regular files under `dir`, sorted by path. A missing source, a file where a directory is
/// expected, a symlink, a device or a `.cog/` directory is an error (spec 1.3): never skipped.
pub fn walk(dir: &Path, uri: &str) -> Result<Vec<SourceFile>, String> {
    let meta = match fs_err::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("weight source not found: {uri}"));
        }
        Err(e) => return Err(e.to_string()),
    };
    if !meta.is_dir() {
        return Err(format!(
            "weight source {uri} is not a directory (file:// sources must be directories)"
        ));
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        let relative = entry
            .path()
            .strip_prefix(dir)
            .map_err(|e| e.to_string())?
            .to_str()
            .ok_or_else(|| format!("{}: not UTF-8", entry.path().display()))?
            .to_string();
        if relative.is_empty() {
            continue;
        }
        let kind = entry.file_type();
        if kind.is_dir() {
            if entry.file_name() == ".cog" {
                return Err(format!(
                    "weight source contains a .cog/ directory ({relative}), reserved for the runtime state"
                ));
            }
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "weight source contains non-regular entry {relative:?} (a symlink or special file); resolve it to a regular file before importing"
            ));
        }
        check_file_path(&relative)?;
        let size = entry.metadata().map_err(|e| e.to_string())?.len();
        files.push(SourceFile {
            path: relative,
            size,
            absolute: entry.path().to_path_buf(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// `include`/`exclude` patterns, matched as `.gitignore` lines are (as Cog does): a pattern
/// without `/` matches a file or directory name at any depth, one with `/` is anchored at the
/// source's root, a trailing `/` matches directories only.
#[derive(Debug)]
pub struct Filter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    glob: GlobMatcher,
    anchored: bool,
    dir_only: bool,
}

impl Pattern {
    fn new(text: &str) -> Result<Self, String> {
        let dir_only = text.ends_with('/');
        let body = text.trim_end_matches('/');
        let anchored = body.contains('/');
        let body = body.trim_start_matches('/');
        let glob = GlobBuilder::new(body)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("pattern {text:?}: {e}"))?
            .compile_matcher();
        Ok(Pattern {
            glob,
            anchored,
            dir_only,
        })
    }

    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let last = parts.len() - 1;
        if self.anchored {
            // The path itself, or one of its directories.
            (1..=parts.len())
                .any(|n| (!self.dir_only || n <= last) && self.glob.is_match(parts[..n].join("/")))
        } else {
            parts
                .iter()
                .enumerate()
                .any(|(i, name)| (!self.dir_only || i < last) && self.glob.is_match(name))
        }
    }
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        let compile = |list: &[String]| -> Result<Vec<Pattern>, String> {
            list.iter()
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(Pattern::new)
                .collect()
        };
        Ok(Filter {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    /// Excluded when an exclude pattern matches; else kept when there is no include pattern or
    /// one matches.
    pub fn keeps(&self, path: &str) -> bool {
        if self.exclude.iter().any(|p| p.matches(path)) {
            return false;
        }
        self.include.is_empty() || self.include.iter().any(|p| p.matches(path))
    }
}

/// Cog's error when the patterns leave nothing.
pub fn zero_survivors(total: usize, include: &[String], exclude: &[String]) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|i| crate::go::quote(i)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut message =
        format!("include/exclude patterns matched zero files out of {total} in the source");
    if !include.is_empty() {
        let _ = write!(message, "\n  include: {}", list(include));
    }
    if !exclude.is_empty() {
        let _ = write!(message, "\n  exclude: {}", list(exclude));
    }
    message.push_str("\n  check your patterns — did you mean a different glob?");
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_normalize_as_cogs() {
        assert_eq!(normalize_uri("weights").unwrap(), "file://./weights");
        assert_eq!(normalize_uri("./weights/").unwrap(), "file://./weights");
        assert_eq!(normalize_uri("file://./a/../b").unwrap(), "file://./b");
        assert_eq!(normalize_uri("/data/w").unwrap(), "file:///data/w");
        assert_eq!(normalize_uri("file:///data/w").unwrap(), "file:///data/w");
        assert!(normalize_uri("../outside").unwrap_err().contains("escapes"));
        assert!(
            normalize_uri(".")
                .unwrap_err()
                .contains("project directory itself")
        );
        assert!(
            normalize_uri("s3://b/k")
                .unwrap_err()
                .contains("unsupported")
        );
        assert!(
            normalize_uri("https://u:p@example.com/a.bin")
                .unwrap_err()
                .contains("credentials")
        );
        let err = Source::resolve("hf://org/model", Path::new("/p")).unwrap_err();
        assert!(err.contains("hf://"), "{err}");
        assert_eq!(
            Source::resolve("https://example.com/x/model.bin?dl=1", Path::new("/p")).unwrap(),
            Source::Http {
                url: url::Url::parse("https://example.com/x/model.bin?dl=1").unwrap(),
                file_name: "model.bin".into()
            }
        );
    }

    #[test]
    fn patterns_match_as_gitignore_lines() {
        let f = Filter::new(
            &["*.safetensors".into(), "*.json".into()],
            &["README*".into(), "onnx/".into()],
        )
        .unwrap();
        assert!(f.keeps("model.safetensors"));
        assert!(f.keeps("text/config.json"));
        assert!(!f.keeps("onnx/model.json"));
        assert!(!f.keeps("model.onnx"));
        assert!(!f.keeps("README.json"));
        let anchored = Filter::new(&[], &["sub/*.bin".into()]).unwrap();
        assert!(!anchored.keeps("sub/a.bin"));
        assert!(anchored.keeps("other/sub/a.bin"));
        assert!(Filter::new(&[], &[]).unwrap().keeps("anything"));
    }

    #[test]
    fn walking_refuses_symlinks_and_state_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let missing = walk(&dir.path().join("nope"), "file://./nope").unwrap_err();
        assert_eq!(missing, "weight source not found: file://./nope");
        std::fs::create_dir_all(dir.path().join("w/sub")).unwrap();
        std::fs::write(dir.path().join("w/sub/b.bin"), b"b").unwrap();
        std::fs::write(dir.path().join("w/a.json"), b"aa").unwrap();
        let files = walk(&dir.path().join("w"), "w").unwrap();
        let paths: Vec<(&str, u64)> = files.iter().map(|f| (f.path.as_str(), f.size)).collect();
        assert_eq!(paths, [("a.json", 2), ("sub/b.bin", 1)]);
        std::os::unix::fs::symlink("a.json", dir.path().join("w/link")).unwrap();
        assert!(
            walk(&dir.path().join("w"), "w")
                .unwrap_err()
                .contains("\"link\"")
        );
        std::fs::remove_file(dir.path().join("w/link")).unwrap();
        std::fs::create_dir(dir.path().join("w/.cog")).unwrap();
        assert!(
            walk(&dir.path().join("w"), "w")
                .unwrap_err()
                .contains(".cog/")
        );
    }
}
