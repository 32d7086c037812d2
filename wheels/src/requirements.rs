//! pip's requirements.txt syntax, with Cog's rules (local artifacts, `cog`/`coglet` stripped).
//!
//! Supported: `-r/--requirement`, `-c/--constraint`, `-i/--index-url`, `--extra-index-url`,
//! `--no-index`, `-f/--find-links`, `--pre`, `--hash`, extras, markers, `name @ URL`, bare paths
//! to local wheels and archives (relative to the file that names them), `\` continuations,
//! comments and `${VAR}` expansion. Harmless pip options (`--trusted-host`, `--prefer-binary`,
//! `--only-binary`, ...) are accepted and ignored.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::{PackageName, Requirement};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, Result};
use crate::filename::{WheelFilename, parse_sdist};

/// A parsed set of requirements with its index options.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub requirements: Vec<Entry>,
    /// `-c` files: versions they allow, applied only to packages that are otherwise required.
    pub constraints: Vec<Entry>,
    /// `-i/--index-url`; `None` means the configured default (pip config, else PyPI).
    pub index_url: Option<Url>,
    pub extra_index_urls: Vec<Url>,
    pub no_index: bool,
    pub find_links: Vec<FindLinks>,
    /// `--pre`: pre-releases allowed for every package.
    pub pre: bool,
    /// Warnings for the user (stripped `cog` lines, ignored options).
    pub warnings: Vec<String>,
    /// Canonical text of every line read, in order, for the lock's input hash.
    canonical: Vec<String>,
}

/// One requirement line.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    /// `--hash=sha256:...` values (lowercase hex); other algorithms are rejected.
    pub hashes: Vec<String>,
    /// `file:line`, for messages.
    pub origin: String,
}

/// What a requirement line asks for.
#[derive(Debug, Clone)]
pub enum Source {
    /// A PEP 508 requirement, possibly `name @ URL`.
    Pep508(Requirement<Url>),
    /// A local wheel or archive, already resolved to an absolute path.
    Path { name: PackageName, path: PathBuf },
}

impl Source {
    pub fn name(&self) -> &PackageName {
        match self {
            Source::Pep508(r) => &r.name,
            Source::Path { name, .. } => name,
        }
    }
}

/// A `--find-links` location: a directory of files or an HTML page of links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FindLinks {
    Dir(PathBuf),
    Url(Url),
}

impl fmt::Display for FindLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindLinks::Dir(p) => write!(f, "{}", p.display()),
            FindLinks::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Where relative local paths may point (Cog: regular files inside the project).
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// When set, local artifacts must resolve (symlinks followed) inside this directory.
    pub project_dir: Option<PathBuf>,
}

const ARCHIVE_EXTS: [&str; 6] = [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"];
const MANAGED: [&str; 2] = ["cog", "coglet"];

/// Parses a requirements file (`build.python_requirements`).
pub fn parse_file(path: &Path, options: &ParseOptions) -> Result<Requirements> {
    let mut reqs = Requirements::default();
    let mut stack = Vec::new();
    read_file(path, false, options, &mut reqs, &mut stack)?;
    Ok(reqs)
}

/// Parses requirements text; relative paths are taken from `base_dir`, messages name `name`.
pub fn parse_str(
    text: &str,
    name: &Path,
    base_dir: &Path,
    options: &ParseOptions,
) -> Result<Requirements> {
    let mut reqs = Requirements::default();
    let mut stack = vec![name.to_path_buf()];
    parse_text(text, name, base_dir, false, options, &mut reqs, &mut stack)?;
    Ok(reqs)
}

/// The deprecated `build.python_packages` list: each item is one requirements line.
pub fn from_packages(packages: &[String], project_dir: &Path) -> Result<Requirements> {
    let text = packages.join("\n");
    parse_str(
        &text,
        Path::new("cog.yaml (build.python_packages)"),
        project_dir,
        &ParseOptions {
            project_dir: Some(project_dir.to_path_buf()),
        },
    )
}

impl Requirements {
    /// sha256 of the canonical requirement lines and options: the lock's input.
    pub fn input_hash(&self) -> String {
        let mut h = Sha256::new();
        for line in &self.canonical {
            h.update(line.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

fn read_file(
    path: &Path,
    constraint: bool,
    options: &ParseOptions,
    reqs: &mut Requirements,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    let canonical = fs_err::canonicalize(path)?;
    if stack.contains(&canonical) {
        return Err(Error::Requirements {
            file: path.to_path_buf(),
            line: 0,
            message: "includes itself (-r/-c cycle)".into(),
        });
    }
    stack.push(canonical);
    let text = fs_err::read_to_string(path)?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    parse_text(&text, path, &base, constraint, options, reqs, stack)?;
    stack.pop();
    Ok(())
}

/// Logical lines: continuations joined, comments dropped, `(line number, text)`.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = i + 1;
        }
        // Comments start at `#` at line start or after whitespace (a URL fragment is not one).
        let mut line = raw;
        if let Some(pos) = comment_start(raw) {
            line = &raw[..pos];
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let l = current.trim().to_string();
        if !l.is_empty() {
            out.push((start, l));
        }
        current.clear();
    }
    let l = current.trim().to_string();
    if !l.is_empty() {
        out.push((start, l));
    }
    out
}

fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .map(|(i, _)| i)
}

fn expand_env(line: &str) -> String {
    let re = regex::Regex::new(r"\$\{([A-Z0-9_]+)\}").ok();
    match re {
        Some(re) => re
            .replace_all(line, |c: &regex::Captures<'_>| {
                std::env::var(&c[1]).unwrap_or_else(|_| c[0].to_string())
            })
            .into_owned(),
        None => line.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_text(
    text: &str,
    file: &Path,
    base: &Path,
    constraint: bool,
    options: &ParseOptions,
    reqs: &mut Requirements,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    for (lineno, line) in logical_lines(text) {
        let line = expand_env(&line);
        let err = |message: String| Error::Requirements {
            file: file.to_path_buf(),
            line: lineno,
            message,
        };
        if line.starts_with('-') {
            parse_option(&line, file, base, options, reqs, stack, &err)?;
            continue;
        }
        // Per-requirement options follow the requirement: `name==1 --hash=sha256:...`.
        let (spec, hashes) = split_hashes(&line).map_err(&err)?;
        let origin = format!("{}:{lineno}", file.display());
        let source = if let Some(path) = local_artifact(&spec) {
            if !hashes.is_empty() {
                return Err(err(format!(
                    "local package {spec:?} may not carry --hash options"
                )));
            }
            local_source(&spec, path, base, options).map_err(&err)?
        } else {
            let r = Requirement::<Url>::parse(&spec, base)
                .map_err(|e| err(format!("invalid requirement {spec:?}: {e}")))?;
            Source::Pep508(r)
        };
        if MANAGED.contains(&source.name().as_ref()) {
            let warning = format!(
                "{origin}: ignoring `{spec}`: the {} package is installed by cog itself",
                source.name()
            );
            tracing::warn!("{warning}");
            reqs.warnings.push(warning);
            continue;
        }
        reqs.canonical.push(format!(
            "{}{} {}",
            if constraint { "-c " } else { "" },
            match &source {
                Source::Pep508(r) => r.to_string(),
                Source::Path { path, .. } => path.display().to_string(),
            },
            hashes.join(" ")
        ));
        let entry = Entry {
            source,
            hashes,
            origin,
        };
        if constraint {
            reqs.constraints.push(entry);
        } else {
            reqs.requirements.push(entry);
        }
    }
    Ok(())
}

/// Splits `spec --hash=sha256:x --hash sha256:y` into the spec and the hex digests.
fn split_hashes(line: &str) -> std::result::Result<(String, Vec<String>), String> {
    let Some(pos) = line.find(" --hash").or_else(|| line.find("\t--hash")) else {
        if line.contains(" --") {
            return Err(format!("unsupported per-requirement option in {line:?}"));
        }
        return Ok((line.to_string(), Vec::new()));
    };
    let spec = line[..pos].trim().to_string();
    let mut hashes = Vec::new();
    let mut words = line[pos..].split_whitespace();
    while let Some(word) = words.next() {
        let value = if let Some(v) = word.strip_prefix("--hash=") {
            v.to_string()
        } else if word == "--hash" {
            words.next().ok_or("--hash needs a value")?.to_string()
        } else {
            return Err(format!("unexpected {word:?} after --hash"));
        };
        let (algo, digest) = value
            .split_once(':')
            .ok_or_else(|| format!("--hash {value:?} must be of the form sha256:<hex>"))?;
        if algo != "sha256" {
            return Err(format!(
                "--hash algorithm {algo:?} is not supported (use sha256)"
            ));
        }
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("--hash {value:?} is not a sha256 hex digest"));
        }
        hashes.push(digest.to_ascii_lowercase());
    }
    Ok((spec, hashes))
}

/// A bare path to a wheel or archive (`./x.whl`, `dist/x-1.0.tar.gz`, `file:///...`).
fn local_artifact(spec: &str) -> Option<&str> {
    if spec.contains(" @ ") || spec.contains(';') {
        return None;
    }
    let path = spec.strip_prefix("file://").unwrap_or(spec);
    let lower = path.to_ascii_lowercase();
    let is_archive = ARCHIVE_EXTS.iter().any(|e| lower.ends_with(e));
    let plain = !path.contains("://")
        && !path.contains(char::is_whitespace)
        && !path.contains(['=', '<', '>', '~', '!', '[']);
    (is_archive && plain).then_some(path)
}

fn local_source(
    spec: &str,
    path: &str,
    base: &Path,
    options: &ParseOptions,
) -> std::result::Result<Source, String> {
    let full = base.join(path);
    let meta = std::fs::metadata(&full)
        .map_err(|e| format!("local package {spec:?} ({}): {e}", full.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "local package {spec:?} ({}) is not a regular file",
            full.display()
        ));
    }
    let resolved = std::fs::canonicalize(&full).map_err(|e| format!("{}: {e}", full.display()))?;
    if let Some(project) = &options.project_dir {
        let project =
            std::fs::canonicalize(project).map_err(|e| format!("{}: {e}", project.display()))?;
        if !resolved.starts_with(&project) {
            return Err(format!(
                "local package {spec:?} resolves to {}, outside the project directory {}",
                resolved.display(),
                project.display()
            ));
        }
    }
    let file_name = resolved
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let name = WheelFilename::parse(file_name)
        .map(|w| w.name)
        .or_else(|| parse_sdist(file_name).map(|(n, _)| n))
        .ok_or_else(|| format!("cannot tell the package name of local file {file_name:?}"))?;
    Ok(Source::Path {
        name,
        path: resolved,
    })
}

#[allow(clippy::too_many_arguments)]
fn parse_option(
    line: &str,
    file: &Path,
    base: &Path,
    options: &ParseOptions,
    reqs: &mut Requirements,
    stack: &mut Vec<PathBuf>,
    err: &dyn Fn(String) -> Error,
) -> Result<()> {
    let (flag, value) = match line.split_once(['=', ' ', '\t']) {
        Some((f, v)) if !(f.starts_with('-') && !f.starts_with("--") && f.len() > 2) => {
            (f, v.trim().to_string())
        }
        // `-rfile.txt`
        _ if !line.starts_with("--") && line.len() > 2 => {
            (&line[..2], line[2..].trim().to_string())
        }
        _ => (line, String::new()),
    };
    let need = |v: &str| -> Result<String> {
        if v.is_empty() {
            Err(err(format!("option {flag} needs a value")))
        } else {
            Ok(v.to_string())
        }
    };
    let parse_url = |v: &str| -> Result<Url> {
        Url::parse(v.trim_end_matches('/'))
            .map(|mut u| {
                if !u.path().ends_with('/') {
                    let p = format!("{}/", u.path());
                    u.set_path(&p);
                }
                u
            })
            .map_err(|e| err(format!("invalid URL {v:?} for {flag}: {e}")))
    };
    match flag {
        "-r" | "--requirement" | "-c" | "--constraint" => {
            let value = need(&value)?;
            let target = base.join(&value);
            if !target.is_file() {
                return Err(err(format!(
                    "{flag} {value}: file {} does not exist",
                    target.display()
                )));
            }
            read_file(
                &target,
                flag.starts_with("-c") || flag == "--constraint",
                options,
                reqs,
                stack,
            )?;
        }
        "-i" | "--index-url" => {
            let url = parse_url(&need(&value)?)?;
            reqs.canonical.push(format!("--index-url {url}"));
            reqs.index_url = Some(url);
        }
        "--extra-index-url" => {
            let url = parse_url(&need(&value)?)?;
            reqs.canonical.push(format!("--extra-index-url {url}"));
            if !reqs.extra_index_urls.contains(&url) {
                reqs.extra_index_urls.push(url);
            }
        }
        "--no-index" => {
            reqs.canonical.push("--no-index".into());
            reqs.no_index = true;
        }
        "-f" | "--find-links" => {
            let value = need(&value)?;
            let fl = match Url::parse(&value) {
                Ok(u) if u.scheme() == "file" => {
                    FindLinks::Dir(u.to_file_path().unwrap_or_default())
                }
                Ok(u) => FindLinks::Url(u),
                Err(_) => FindLinks::Dir(base.join(&value)),
            };
            reqs.canonical.push(format!("--find-links {fl}"));
            reqs.find_links.push(fl);
        }
        "--pre" => {
            reqs.canonical.push("--pre".into());
            reqs.pre = true;
        }
        "-e" | "--editable" => {
            return Err(err(format!(
                "editable requirements are not supported: {line:?}"
            )));
        }
        "--trusted-host" | "--prefer-binary" | "--only-binary" | "--no-binary"
        | "--use-feature" | "--require-hashes" | "--config-settings" | "--global-option"
        | "--progress-bar" => {
            if flag == "--no-binary" {
                let w = format!(
                    "{}: ignoring {line:?}: cog-rs installs wheels only",
                    file.display()
                );
                tracing::warn!("{w}");
                reqs.warnings.push(w);
            }
        }
        other => return Err(err(format!("unsupported option {other:?}"))),
    }
    Ok(())
}

impl FromStr for Requirements {
    type Err = Error;
    /// Text with relative paths taken from the current directory.
    fn from_str(text: &str) -> Result<Self> {
        parse_str(
            text,
            Path::new("requirements.txt"),
            Path::new("."),
            &ParseOptions::default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Requirements {
        text.parse().unwrap()
    }

    #[test]
    fn pip_syntax() {
        let r = parse(
            "# comment\n--index-url https://example.com/simple\n--extra-index-url=https://download.pytorch.org/whl/cu121\n\
             -f https://example.com/links.html\n--pre\nnumpy>=1.20 # trailing\nrequests[socks] ; python_version >= '3.8'\n\
             pkg @ https://example.com/pkg-1.0-py3-none-any.whl#sha256=abc\nscipy==1.11.0 \\\n  --hash=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        );
        assert_eq!(
            r.index_url.as_ref().unwrap().as_str(),
            "https://example.com/simple/"
        );
        assert_eq!(
            r.extra_index_urls[0].as_str(),
            "https://download.pytorch.org/whl/cu121/"
        );
        assert!(r.pre);
        assert_eq!(r.find_links.len(), 1);
        let names: Vec<_> = r
            .requirements
            .iter()
            .map(|e| e.source.name().to_string())
            .collect();
        assert_eq!(names, ["numpy", "requests", "pkg", "scipy"]);
        assert_eq!(r.requirements[3].hashes.len(), 1);
        assert!(r.requirements[3].origin.ends_with(":9"));
    }

    #[test]
    fn strips_cog_with_a_warning() {
        let r = parse("cog==0.9.0\ncoglet\ntorch\n");
        assert_eq!(r.requirements.len(), 1);
        assert_eq!(r.warnings.len(), 2);
        assert!(r.warnings[0].contains("cog==0.9.0"), "{:?}", r.warnings);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = "numpy\nnot a ===valid req!!\n"
            .parse::<Requirements>()
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("requirements.txt:2: invalid requirement"),
            "{e}"
        );
        let e = "--frobnicate\n".parse::<Requirements>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "requirements.txt:1: unsupported option \"--frobnicate\""
        );
        let e = "x==1 --hash=md5:abc\n".parse::<Requirements>().unwrap_err();
        assert!(e.to_string().contains("md5"), "{e}");
        let e = "-e .\n".parse::<Requirements>().unwrap_err();
        assert!(e.to_string().contains("editable"), "{e}");
    }

    #[test]
    fn includes_constraints_and_local_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/foo-1.0-py3-none-any.whl"), b"zip").unwrap();
        std::fs::write(d.join("c.txt"), "numpy<2\n").unwrap();
        std::fs::write(d.join("base.txt"), "-c c.txt\npillow\n").unwrap();
        std::fs::write(
            d.join("req.txt"),
            "-r base.txt\nnumpy\nsub/foo-1.0-py3-none-any.whl\n",
        )
        .unwrap();
        let opts = ParseOptions {
            project_dir: Some(d.to_path_buf()),
        };
        let r = parse_file(&d.join("req.txt"), &opts).unwrap();
        assert_eq!(r.constraints.len(), 1);
        assert_eq!(r.requirements.len(), 3);
        assert!(
            matches!(&r.requirements[2].source, Source::Path { name, .. } if name.as_ref() == "foo")
        );
        let h1 = r.input_hash();
        std::fs::write(d.join("c.txt"), "numpy<3\n").unwrap();
        assert_ne!(
            parse_file(&d.join("req.txt"), &opts).unwrap().input_hash(),
            h1
        );

        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("bar-1.0-py3-none-any.whl"), b"zip").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("bar-1.0-py3-none-any.whl"),
            d.join("bar-1.0-py3-none-any.whl"),
        )
        .unwrap();
        std::fs::write(d.join("bad.txt"), "bar-1.0-py3-none-any.whl\n").unwrap();
        let e = parse_file(&d.join("bad.txt"), &opts).unwrap_err();
        assert!(
            e.to_string().contains("outside the project directory"),
            "{e}"
        );
        std::fs::write(d.join("missing.txt"), "./nope-1.0-py3-none-any.whl\n").unwrap();
        assert!(parse_file(&d.join("missing.txt"), &opts).is_err());
    }

    #[test]
    fn python_packages() {
        let r = from_packages(&["numpy==1.26.4".into(), "pillow".into()], Path::new(".")).unwrap();
        assert_eq!(r.requirements.len(), 2);
    }
}
