//! pip's requirements.txt syntax, with Cog's rules (local artifacts, `cog`/`coglet` stripped).
//!
//! Every form pip accepts is read: PEP 508 requirements (extras, markers), `name @ URL`, bare
//! archive URLs and paths (relative to the file that names them), `git+…[@rev][#egg=…&
//! subdirectory=…]`, `-e` (a git checkout is installed as a regular package, with a warning;
//! a local directory is an error), `-r`/`-c`, `-i`/`--extra-index-url`/`--no-index`,
//! `-f`/`--find-links`, `--pre`, `--no-binary`/`--only-binary`/`--prefer-binary`, `--hash` and
//! `--require-hashes`, `--trusted-host` and `--use-feature` (no effect here), several options
//! on one line, `\` continuations, comments, byte-order marks and `${VAR}` expansion. Anything
//! else is an error naming the file and line.

pub mod direct;
pub mod format;
mod lines;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use pep508_rs::{PackageName, Requirement, VersionOrUrl};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

pub use direct::{Direct, GitUrl, Location};
pub use format::FormatControl;

use crate::error::{Cause, Error, Result};
use crate::filename::WheelFilename;

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
    /// `--no-binary`, `--only-binary`, `--prefer-binary`.
    pub format: FormatControl,
    /// `--require-hashes` (any `--hash` turns it on too: see [`Requirements::hash_checking`]).
    pub require_hashes: bool,
    /// Warnings for the user (stripped `cog` lines, editable lines installed as regular ones).
    pub warnings: Vec<String>,
    /// Canonical text of every line read, in order, for the lock's input hash.
    canonical: Vec<String>,
}

/// A value in a requirements file that cannot be used (the caller adds the file and line).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub message: String,
    #[source]
    pub source: Option<Cause>,
}

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Self {
            message,
            source: None,
        }
    }
}

impl Problem {
    pub(crate) fn with_source(message: String, source: Cause) -> Self {
        Self {
            message,
            source: Some(source),
        }
    }
}

/// One requirement line.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source: Source,
    /// `--hash=sha256:...` values (lowercase hex); other algorithms are rejected.
    pub hashes: Vec<String>,
    /// `file:line`, for messages.
    pub origin: String,
    /// The requirement as written (after `${VAR}` expansion, URL passwords masked).
    pub text: String,
    /// Written with `-e`; installed as a regular package.
    pub editable: bool,
}

/// What a requirement line asks for.
#[derive(Debug, Clone)]
pub enum Source {
    /// A PEP 508 requirement on an index package (`numpy>=1.20`, with extras and markers).
    Pep508(Requirement<Url>),
    /// A distribution at a fixed place: `name @ URL`, a bare URL or path, `git+…`.
    Direct(Direct),
}

impl Source {
    /// The package name, when the line gives it (a bare sdist URL or `git+…` without `#egg=`
    /// gets it from the distribution's metadata).
    pub fn name(&self) -> Option<&PackageName> {
        match self {
            Source::Pep508(r) => Some(&r.name),
            Source::Direct(d) => d.name.as_ref(),
        }
    }
}

/// A `--find-links` location: a directory of files or an HTML page of links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FindLinks {
    /// A local directory (or a local HTML file).
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

/// An index base URL with a trailing slash, so that `join(name/)` works.
pub fn normalize_index_url(value: &str) -> Result<Url, url::ParseError> {
    let mut url = Url::parse(value.trim())?;
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// Where relative local paths may point (Cog: regular files inside the project).
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// When set, local artifacts must resolve (symlinks followed) inside this directory.
    pub project_dir: Option<PathBuf>,
}

const ARCHIVE_EXTS: [&str; 7] = [
    ".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar",
];
const MANAGED: [&str; 2] = ["cog", "coglet"];

fn is_wheel_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("whl"))
}

/// Whether a file name is one pip installs from (a wheel or a source archive).
pub(crate) fn is_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ARCHIVE_EXTS.iter().any(|e| lower.ends_with(e))
}

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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
        h.update(self.format.canonical().as_bytes());
        hex::encode(h.finalize())
    }

    /// pip's hash-checking mode: `--require-hashes`, or any requirement with `--hash`. Every
    /// package installed must then be pinned and match one of its hashes.
    pub fn hash_checking(&self) -> bool {
        self.require_hashes
            || self
                .requirements
                .iter()
                .chain(&self.constraints)
                .any(|e| !e.hashes.is_empty())
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
            source: None,
        });
    }
    stack.push(canonical);
    let bytes = fs_err::read(path)?;
    let text = lines::decode(&bytes).map_err(|message| Error::Requirements {
        file: path.to_path_buf(),
        line: 0,
        message,
        source: None,
    })?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    parse_text(&text, path, &base, constraint, options, reqs, stack)?;
    stack.pop();
    Ok(())
}

/// What one line of a file is being parsed with.
struct LineContext<'a> {
    file: &'a Path,
    line: usize,
    base: &'a Path,
    constraint: bool,
    options: &'a ParseOptions,
}

impl LineContext<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::Requirements {
            file: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
            source: None,
        }
    }

    fn err_from(&self, message: impl Into<String>, source: Cause) -> Error {
        Error::Requirements {
            file: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
            source: Some(source),
        }
    }

    fn problem(&self, p: Problem) -> Error {
        Error::Requirements {
            file: self.file.to_path_buf(),
            line: self.line,
            message: p.message,
            source: p.source,
        }
    }

    fn origin(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
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
    for (line, text) in lines::logical_lines(text) {
        let cx = LineContext {
            file,
            line,
            base,
            constraint,
            options,
        };
        let (args, opts) = lines::split_args_options(&text);
        let words = lines::shell_words(&opts)
            .map_err(|m| cx.err(format!("cannot split the options {opts:?}: {m}")))?;
        if args.is_empty() {
            parse_options(&words, &cx, reqs, stack)?;
        } else {
            let hashes = requirement_options(&words, &cx)?;
            add_requirement(&args, hashes, false, &cx, reqs)?;
        }
    }
    Ok(())
}

/// The options after a requirement: only `--hash` is honoured there.
fn requirement_options(words: &[String], cx: &LineContext<'_>) -> Result<Vec<String>> {
    let mut hashes = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (word.as_str(), None),
        };
        match flag {
            "--hash" => {
                let value = if let Some(v) = inline {
                    v
                } else {
                    i += 1;
                    words
                        .get(i)
                        .cloned()
                        .ok_or_else(|| cx.err("--hash needs a value"))?
                };
                hashes.push(parse_hash(&value).map_err(|m| cx.err(m))?);
            }
            "--global-option" | "--config-settings" | "--build-option" | "--install-option" => {
                return Err(cx.err(format!(
                    "{flag} is not supported: pip would pass it to the package's build backend, and cog-rs builds with the backend's defaults"
                )));
            }
            other => {
                return Err(cx.err(format!(
                    "option {other} cannot follow a requirement (pip ignores it there): put it on a line of its own"
                )));
            }
        }
        i += 1;
    }
    Ok(hashes)
}

fn parse_hash(value: &str) -> std::result::Result<String, String> {
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
    Ok(digest.to_ascii_lowercase())
}

/// pip's requirement-file options, by long name; `true` when it takes a value.
const OPTIONS: [(&str, Option<char>, bool); 14] = [
    ("--requirement", Some('r'), true),
    ("--constraint", Some('c'), true),
    ("--index-url", Some('i'), true),
    ("--extra-index-url", None, true),
    ("--no-index", None, false),
    ("--find-links", Some('f'), true),
    ("--editable", Some('e'), true),
    ("--pre", None, false),
    ("--no-binary", None, true),
    ("--only-binary", None, true),
    ("--prefer-binary", None, false),
    ("--require-hashes", None, false),
    ("--trusted-host", None, true),
    ("--use-feature", None, true),
];

/// `(long name, value)` of the options on an option line.
fn option_pairs(words: &[String], cx: &LineContext<'_>) -> Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        let (spec, inline) = if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            // optparse takes any unambiguous prefix of a long option.
            let matches: Vec<_> = OPTIONS
                .iter()
                .filter(|(l, _, _)| l[2..].starts_with(name))
                .collect();
            let exact = OPTIONS.iter().find(|(l, _, _)| &l[2..] == name);
            let spec = match (exact, matches.as_slice()) {
                (Some(s), _) => *s,
                (None, [s]) => **s,
                _ => return Err(unsupported_option(word, cx)),
            };
            (spec, value)
        } else if let Some(short) = word.strip_prefix('-')
            && let Some(c) = short.chars().next()
        {
            let spec = OPTIONS
                .iter()
                .find(|(_, s, _)| *s == Some(c))
                .ok_or_else(|| unsupported_option(word, cx))?;
            let rest = &short[c.len_utf8()..];
            (*spec, (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            return Err(cx.err(format!(
                "unexpected {word:?} among the options (a requirement comes before its options)"
            )));
        };
        let (long, _, takes_value) = spec;
        let value = if takes_value {
            if let Some(v) = inline {
                v
            } else {
                i += 1;
                words
                    .get(i)
                    .cloned()
                    .ok_or_else(|| cx.err(format!("option {long} needs a value")))?
            }
        } else {
            if inline.is_some() {
                return Err(cx.err(format!("option {long} takes no value")));
            }
            String::new()
        };
        out.push((long, value));
        i += 1;
    }
    Ok(out)
}

fn unsupported_option(word: &str, cx: &LineContext<'_>) -> Error {
    let name = word.split('=').next().unwrap_or(word);
    cx.err(format!(
        "unsupported option {name:?} (pip would refuse it too: it is not a requirements-file option)"
    ))
}

fn parse_options(
    words: &[String],
    cx: &LineContext<'_>,
    reqs: &mut Requirements,
    stack: &mut Vec<PathBuf>,
) -> Result<()> {
    let index_url = |v: &str, flag: &str| -> Result<Url> {
        normalize_index_url(v)
            .map_err(|e| cx.err_from(format!("invalid URL {v:?} for {flag}"), Arc::new(e)))
    };
    for (flag, value) in option_pairs(words, cx)? {
        match flag {
            "--requirement" | "--constraint" => {
                if direct::is_url(&value) {
                    return Err(cx.err(format!(
                        "{flag} {value}: requirement files from URLs are not supported; save it in the project"
                    )));
                }
                let target = cx.base.join(&value);
                if !target.is_file() {
                    return Err(cx.err(format!(
                        "{flag} {value}: file {} does not exist",
                        target.display()
                    )));
                }
                read_file(
                    &target,
                    flag == "--constraint" || cx.constraint,
                    cx.options,
                    reqs,
                    stack,
                )?;
            }
            "--index-url" => {
                let url = index_url(&value, flag)?;
                reqs.canonical.push(format!("--index-url {url}"));
                reqs.index_url = Some(url);
            }
            "--extra-index-url" => {
                let url = index_url(&value, flag)?;
                reqs.canonical.push(format!("--extra-index-url {url}"));
                if !reqs.extra_index_urls.contains(&url) {
                    reqs.extra_index_urls.push(url);
                }
            }
            "--no-index" => {
                reqs.canonical.push("--no-index".into());
                reqs.no_index = true;
            }
            "--find-links" => {
                let fl = find_links(&value, cx.base);
                reqs.canonical.push(format!("--find-links {fl}"));
                if !reqs.find_links.contains(&fl) {
                    reqs.find_links.push(fl);
                }
            }
            "--pre" => {
                reqs.canonical.push("--pre".into());
                reqs.pre = true;
            }
            "--no-binary" => reqs
                .format
                .add_no_binary(&value)
                .map_err(|p| cx.problem(p))?,
            "--only-binary" => reqs
                .format
                .add_only_binary(&value)
                .map_err(|p| cx.problem(p))?,
            "--prefer-binary" => reqs.format.prefer_binary = true,
            "--require-hashes" => {
                reqs.canonical.push("--require-hashes".into());
                reqs.require_hashes = true;
            }
            "--editable" => add_requirement(&value, Vec::new(), true, cx, reqs)?,
            // Hosts are reached over HTTP or HTTPS as their URLs say; features are pip's own.
            "--trusted-host" | "--use-feature" => {}
            _ => return Err(unsupported_option(flag, cx)),
        }
    }
    Ok(())
}

/// A `-f` value: a URL, or a path relative to the requirements file.
fn find_links(value: &str, base: &Path) -> FindLinks {
    match Url::parse(value) {
        Ok(u) if u.scheme() == "file" => FindLinks::Dir(
            u.to_file_path()
                .unwrap_or_else(|()| PathBuf::from(u.path())),
        ),
        Ok(u) if u.scheme().len() > 1 => FindLinks::Url(u),
        _ => FindLinks::Dir(base.join(value)),
    }
}

/// Masks the password of URLs in a requirement for messages (`https://user:****@host`).
pub(crate) fn mask_credentials(text: &str) -> String {
    let Ok(re) = regex::Regex::new(r"(://[^/@\s:]*):[^/@\s]*@") else {
        return text.to_string();
    };
    re.replace_all(text, "$1:****@").into_owned()
}

fn add_requirement(
    spec: &str,
    hashes: Vec<String>,
    editable: bool,
    cx: &LineContext<'_>,
    reqs: &mut Requirements,
) -> Result<()> {
    let text = mask_credentials(spec);
    let source = if editable {
        editable_source(spec, cx)?
    } else {
        parse_source(spec, cx)?
    };
    if let Source::Direct(Direct {
        location: Location::Path(_),
        ..
    }) = &source
        && !hashes.is_empty()
    {
        return Err(cx.err(format!(
            "local package {spec:?} may not carry --hash options"
        )));
    }
    if let Some(name) = source.name()
        && MANAGED.contains(&name.as_ref())
    {
        let warning = format!(
            "{}: ignoring `{text}`: the {name} package is installed by cog itself",
            cx.origin()
        );
        tracing::warn!("{warning}");
        reqs.warnings.push(warning);
        return Ok(());
    }
    if editable {
        let warning = format!(
            "{}: `-e {text}` is installed as a regular package: an image has no checkout to edit (pip would install it in development mode)",
            cx.origin()
        );
        tracing::warn!("{warning}");
        reqs.warnings.push(warning);
    }
    reqs.canonical.push(format!(
        "{}{} {}",
        if cx.constraint { "-c " } else { "" },
        match &source {
            Source::Pep508(r) => r.to_string(),
            Source::Direct(d) => format!(
                "{:?} {:?} {:?} {}",
                d.name.as_ref().map(ToString::to_string),
                d.extras.iter().map(ToString::to_string).collect::<Vec<_>>(),
                d.marker.try_to_string(),
                d.location
            ),
        },
        hashes.join(" ")
    ));
    let entry = Entry {
        source,
        hashes,
        origin: cx.origin(),
        text,
        editable,
    };
    if cx.constraint {
        if let Source::Direct(_) = &entry.source {
            return Err(cx.err(format!(
                "constraint `{}`: constraints cannot name URLs or files (pip refuses them too)",
                entry.text
            )));
        }
        reqs.constraints.push(entry);
    } else {
        reqs.requirements.push(entry);
    }
    Ok(())
}

/// `-e VALUE`: a git checkout becomes a regular install; a local directory cannot be used.
fn editable_source(spec: &str, cx: &LineContext<'_>) -> Result<Source> {
    let source = parse_source(spec, cx);
    match source {
        Ok(Source::Direct(d)) if matches!(d.location, Location::Git(_)) => Ok(Source::Direct(d)),
        Ok(_) | Err(_) if !direct::is_url(spec) => Err(cx.err(format!(
            "editable requirement `-e {spec}`: a local project cannot be installed in development mode into an image (Cog's pip would not find {spec} either: it runs in the image, where the project is not yet copied); build it into a wheel or sdist in the project and name that file"
        ))),
        Ok(_) => Err(cx.err(format!(
            "editable requirement `-e {spec}`: pip only installs local directories and VCS checkouts in development mode"
        ))),
        Err(e) => Err(e),
    }
}

/// Classifies one requirement as pip's `parse_req_from_line` does.
fn parse_source(spec: &str, cx: &LineContext<'_>) -> Result<Source> {
    if direct::is_url(spec) {
        // A URL's marker needs `; ` (a `;` may be part of the URL).
        let (url_text, marker_text) = match spec.split_once("; ") {
            Some((u, m)) => (u.trim(), Some(m.trim())),
            None => (spec.trim(), None),
        };
        let url = Url::parse(url_text)
            .map_err(|e| cx.err_from(format!("invalid URL {url_text:?}"), Arc::new(e)))?;
        let location = direct::classify_url(&url).map_err(|p| cx.problem(p))?;
        let fragment = direct::Fragment::parse(&url);
        let (name, extras) = match &fragment.egg {
            Some(egg) => {
                let (n, x) = direct::parse_egg(egg).map_err(|p| cx.problem(p))?;
                (Some(n), x)
            }
            None => (None, Vec::new()),
        };
        let marker = match marker_text {
            Some(m) => crate::pep508_guard::parse(m, false, pep508_rs::MarkerTree::from_str)
                .map_err(|e| cx.err_from(format!("invalid marker {m:?}"), e))?,
            None => pep508_rs::MarkerTree::TRUE,
        };
        return direct_source(name, extras, marker, location, spec, cx);
    }
    if let Some(path) = local_artifact(spec) {
        let path = local_path(spec, path, cx)?;
        return direct_source(
            None,
            Vec::new(),
            pep508_rs::MarkerTree::TRUE,
            Location::Path(path),
            spec,
            cx,
        );
    }
    // `name @ ./x` and `name @ URL` are PEP 508 (pip: the part before `@` is not a path).
    let pep508_at = spec
        .split_once('@')
        .is_some_and(|(before, _)| !looks_like_path(before));
    if looks_like_path(spec) && !pep508_at {
        let full = cx.base.join(spec);
        if full.is_dir() {
            return Err(cx.err(format!(
                "`{spec}` is a local directory: Cog's pip runs in the image, where {spec} does not exist yet; build the project into a wheel or sdist (`python -m build`) and name that file"
            )));
        }
        return Err(cx.err(format!(
            "`{spec}` looks like a path, but is not a wheel or source archive ({})",
            ARCHIVE_EXTS.join(", ")
        )));
    }
    let r = crate::pep508_guard::parse(spec, true, |spec| Requirement::<Url>::parse(spec, cx.base))
        .map_err(|e| cx.err_from(format!("invalid requirement {spec:?}"), e))?;
    match &r.version_or_url {
        Some(VersionOrUrl::Url(url)) => {
            let location = direct::classify_url(url).map_err(|p| cx.problem(p))?;
            let location = match location {
                Location::Path(p) => Location::Path(local_path(spec, &p.to_string_lossy(), cx)?),
                other => other,
            };
            direct_source(
                Some(r.name.clone()),
                r.extras.clone(),
                r.marker.clone(),
                location,
                spec,
                cx,
            )
        }
        _ => Ok(Source::Pep508(r)),
    }
}

/// A direct source, with the name its file name gives checked against the one written.
fn direct_source(
    name: Option<PackageName>,
    extras: Vec<pep508_rs::ExtraName>,
    marker: pep508_rs::MarkerTree,
    location: Location,
    spec: &str,
    cx: &LineContext<'_>,
) -> Result<Source> {
    if let Some(filename) = location.filename()
        && !is_archive(&filename)
        && !matches!(location, Location::Git(_))
    {
        return Err(cx.err(format!(
            "`{}`: {filename:?} is not a wheel or source archive ({})",
            mask_credentials(spec),
            ARCHIVE_EXTS.join(", ")
        )));
    }
    let from_file = location.name_from_filename();
    if location.is_wheel() && from_file.is_none() {
        return Err(cx.err(format!(
            "`{}`: {:?} is not a valid wheel file name (name-version-python-abi-platform.whl)",
            mask_credentials(spec),
            location.filename().unwrap_or_default()
        )));
    }
    let name = match (name, from_file) {
        (Some(n), Some(f)) if location.is_wheel() && n != f => {
            return Err(cx.err(format!(
                "`{}`: the wheel is for package `{f}`, not `{n}`",
                mask_credentials(spec)
            )));
        }
        (Some(n), _) => Some(n),
        (None, f) => f,
    };
    Ok(Source::Direct(Direct {
        name,
        extras,
        marker,
        location,
    }))
}

/// pip's `_looks_like_path`: a path separator, or a leading `.`.
fn looks_like_path(spec: &str) -> bool {
    spec.contains('/') || spec.starts_with('.')
}

/// A bare path to a wheel or archive (`./x.whl`, `dist/x-1.0.tar.gz`).
fn local_artifact(spec: &str) -> Option<&str> {
    if spec.contains(" @ ") || spec.contains(';') {
        return None;
    }
    let plain = !spec.contains("://")
        && !spec.contains(char::is_whitespace)
        && !spec.contains(['=', '<', '>', '~', '!', '[']);
    (is_archive(spec) && plain).then_some(spec)
}

/// Checks a local artifact (a regular file, inside the project) and resolves it.
fn local_path(spec: &str, path: &str, cx: &LineContext<'_>) -> Result<PathBuf> {
    let full = cx.base.join(path);
    let meta = std::fs::metadata(&full).map_err(|e| {
        cx.err_from(
            format!("local package {spec:?} ({})", full.display()),
            Arc::new(e),
        )
    })?;
    if !meta.is_file() {
        return Err(cx.err(format!(
            "local package {spec:?} ({}) is not a regular file",
            full.display()
        )));
    }
    let resolved = std::fs::canonicalize(&full).map_err(|e| {
        cx.err_from(
            format!("local package {spec:?} ({})", full.display()),
            Arc::new(e),
        )
    })?;
    if let Some(project) = &cx.options.project_dir {
        let project = std::fs::canonicalize(project).map_err(|e| {
            cx.err_from(
                format!("project directory {}", project.display()),
                Arc::new(e),
            )
        })?;
        if !resolved.starts_with(&project) {
            return Err(cx.err(format!(
                "local package {spec:?} resolves to {}, outside the project directory {}",
                resolved.display(),
                project.display()
            )));
        }
    }
    let file_name = resolved
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    if is_wheel_name(file_name) && WheelFilename::parse(file_name).is_none() {
        return Err(cx.err(format!(
            "cannot tell the package name of local file {file_name:?}"
        )));
    }
    Ok(resolved)
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
mod tests;
