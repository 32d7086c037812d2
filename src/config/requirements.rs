//! What Cog's config layer reads from `python_requirements`: logical lines (comments and
//! `-e .` dropped, continuations joined), package names and versions for the CUDA matrix, local
//! wheel/sdist artifacts, and the `cog`/`coglet` lines Cog strips. The full pip syntax is the
//! wheels crate's job; it gets the raw lines from here.

use std::path::{Path, PathBuf};

/// Reads a requirements file the way Cog's `requirements.ReadRequirements` does.
pub fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    let text = fs_err::read_to_string(path)?;
    Ok(parse_lines(&text))
}

/// Logical lines: CRLF handled, `\` continuations joined, comment lines, trailing comments,
/// blank lines and `-e .` dropped.
pub fn parse_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    let mut physical = text.split('\n').peekable();
    while let Some(raw) = physical.next() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(continued) = raw.strip_suffix('\\') {
            pending.push_str(continued);
            if physical.peek().is_some() {
                continue;
            }
        } else {
            pending.push_str(raw);
        }
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if line.starts_with('#') || is_editable_dot(line) {
            continue;
        }
        let line = match line.find('#') {
            Some(i) => &line[..i],
            None => line,
        };
        if !line.is_empty() {
            lines.push(line.to_owned());
        }
    }
    lines
}

fn is_editable_dot(line: &str) -> bool {
    line.strip_prefix("-e")
        .is_some_and(|rest| rest.starts_with(char::is_whitespace) && rest.trim() == ".")
}

/// The leading name (with extras) of a requirement line: Cog's `requirements.PackageName`.
pub fn package_name(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut end = 0;
    while end < bytes.len()
        && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'_' | b'-' | b'.'))
    {
        end += 1;
    }
    if end == 0 {
        return "";
    }
    if bytes.get(end) == Some(&b'[')
        && let Some(close) = line[end..].find(']')
        && close > 1
    {
        return &line[..=end + close];
    }
    &line[..end]
}

/// Versions named by specifiers (`==1.0`, `>=2`), then an `@ url` target: Cog's
/// `requirements.Versions`.
pub fn versions(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'<' | b'>' | b'=' | b'!' | b'~') {
            let mut j = i + 1;
            if bytes.get(j) == Some(&b'=') {
                j += 1;
            }
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let start = j;
            while j < bytes.len()
                && !bytes[j].is_ascii_whitespace()
                && !matches!(bytes[j], b',' | b';' | b'|')
            {
                j += 1;
            }
            if j > start {
                found.push(line[start..j].to_owned());
                i = j;
                continue;
            }
            // Go's regexp would retry from the next byte.
            i += 1;
            continue;
        }
        i += 1;
    }
    if let Some(at) = line.find('@') {
        let target = line[at + 1..].trim_start();
        let target: String = target.chars().take_while(|c| !c.is_whitespace()).collect();
        if !target.is_empty() {
            found.push(target);
        }
    }
    found
}

/// The first version of package `name` in `lines`; `Some("")` when it is listed unpinned.
pub fn package_version(lines: &[String], name: &str) -> Option<String> {
    lines
        .iter()
        .find(|line| package_name(line) == name)
        .map(|line| versions(line).into_iter().next().unwrap_or_default())
}

/// `name==version` plus index options on the same line: Cog's `SplitPinnedPythonRequirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub name: String,
    pub version: String,
    pub find_links: Vec<String>,
    pub extra_index_urls: Vec<String>,
}

pub fn split_pinned(line: &str) -> Option<Pinned> {
    let mut pinned = Pinned {
        name: String::new(),
        version: String::new(),
        find_links: Vec::new(),
        extra_index_urls: Vec::new(),
    };
    let (mut name_found, mut version_found) = (false, false);
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        if let Some(value) = token.strip_prefix("--find-links=") {
            pinned.find_links.push(value.to_owned());
        } else if let Some(value) = token.strip_prefix("--extra-index-url=") {
            pinned.extra_index_urls.push(value.to_owned());
        } else if token == "-f" && i + 1 < tokens.len() {
            pinned.find_links.push(tokens[i + 1].to_owned());
            i += 1;
        } else if let Some((name, version)) = pinned_token(token) {
            name.clone_into(&mut pinned.name);
            version.clone_into(&mut pinned.version);
            name_found = true;
            version_found = true;
        }
        i += 1;
    }
    (name_found && version_found).then_some(pinned)
}

/// Finds `[A-Za-z0-9_-]+==[^ ]+` inside a token.
fn pinned_token(token: &str) -> Option<(&str, &str)> {
    let eq = token.find("==")?;
    let name_start = token[..eq]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .last()
        .map(|(i, _)| i)?;
    let version = &token[eq + 2..];
    (!version.is_empty()).then_some((&token[name_start..eq], version))
}

/// A requirement line that is a bare path to a wheel or source archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalArtifact {
    /// The line as written.
    pub line: String,
    /// Resolved, canonical path inside the project.
    pub path: PathBuf,
}

const ARTIFACT_SUFFIXES: [&str; 6] = [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"];

fn has_artifact_suffix(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ARTIFACT_SUFFIXES
        .iter()
        .any(|suffix| lower.ends_with(suffix))
}

fn is_remote(line: &str) -> bool {
    line.contains("://") || line.starts_with("git+")
}

fn is_file_url(line: &str) -> bool {
    line.to_ascii_lowercase().starts_with("file:")
}

fn is_local_path(line: &str) -> bool {
    line.starts_with('/') || line.starts_with("./") || line.starts_with("../")
}

fn is_local_artifact(path: &str) -> bool {
    !is_remote(path) && (is_local_path(path) || has_artifact_suffix(path))
}

/// Classifies one line as a local artifact (`Ok(Some(path))`), something else (`Ok(None)`), or a
/// local form Cog rejects (Cog's `ParseLocalArtifactRequirement`).
pub fn local_artifact(line: &str) -> Result<Option<&str>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if is_file_url(line) {
        return Err(format!(
            "local file URL requirements are not supported: {line}"
        ));
    }
    if let Some((name, target)) = line.split_once('@') {
        let spaced = name != name.trim() || target != target.trim();
        let (name, target) = (name.trim(), target.trim());
        if !name.is_empty() && package_name(name) == name {
            if is_file_url(target) {
                return Err(format!(
                    "local file URL requirements are not supported: {line}"
                ));
            }
            if is_local_path(target) || (spaced && is_local_artifact(target)) {
                return Err(format!(
                    "local direct reference requirements (`name @ path`) are not supported; list the path directly instead: {line}"
                ));
            }
        }
    }
    if line.starts_with('-') {
        for option in ["--find-links", "--requirement", "-f", "-r"] {
            if let Some(value) = option_value(line, option)
                && !value.is_empty()
                && (is_file_url(value) || !is_remote(value))
            {
                return Err(format!(
                    "local requirements option \"{option}\" is not supported: {line}"
                ));
            }
        }
        return Ok(None);
    }
    if has_inline_option(line) {
        return Err(format!(
            "local package artifact requirements do not support inline options or hashes: {line}"
        ));
    }
    if is_remote(line) {
        return Ok(None);
    }
    if let Some((base, _)) = line.split_once(';')
        && is_local_artifact(base.trim())
    {
        return Err(format!(
            "environment markers are not supported on local package artifact requirements: {line}"
        ));
    }
    if let Some((base, _)) = line.split_once('[')
        && line.ends_with(']')
        && is_local_artifact(base.trim())
    {
        return Err(format!(
            "extras are not supported on local package artifact requirements: {line}"
        ));
    }
    if !is_local_path(line) && !has_artifact_suffix(line) {
        return Ok(None);
    }
    if !has_artifact_suffix(line) {
        return Err(format!(
            "local package requirement \"{line}\" is not a supported wheel or source archive"
        ));
    }
    Ok(Some(line))
}

fn option_value<'a>(line: &'a str, option: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(option)?;
    if rest.is_empty() {
        return None;
    }
    let rest = if option.starts_with("--") {
        match rest.as_bytes()[0] {
            b'=' => &rest[1..],
            b' ' | b'\t' => rest,
            _ => return None,
        }
    } else {
        rest
    };
    Some(rest.trim())
}

fn has_inline_option(line: &str) -> bool {
    line.char_indices()
        .filter(|(_, c)| *c == ' ' || *c == '\t')
        .any(|(i, _)| {
            let rest = line[i..].trim_start_matches([' ', '\t']);
            is_local_artifact(line[..i].trim())
                && (rest.starts_with("--")
                    || option_value(rest, "-f").is_some()
                    || option_value(rest, "-r").is_some())
        })
}

/// Checks a local artifact path: relative to the requirements file, a regular file, and inside
/// the project once symlinks are resolved.
pub fn resolve_local_artifact(
    line: &str,
    requirements_dir: &Path,
    project_dir: &Path,
) -> Result<PathBuf, String> {
    let joined = requirements_dir.join(line);
    let resolved = std::fs::canonicalize(&joined).map_err(|_| {
        format!(
            "local package artifact \"{line}\" does not exist (looked for {})",
            joined.display()
        )
    })?;
    let project = std::fs::canonicalize(project_dir).unwrap_or_else(|_| project_dir.to_path_buf());
    if !resolved.starts_with(&project) {
        return Err(format!(
            "local package artifact \"{line}\" must be inside the project directory {}",
            project.display()
        ));
    }
    if !resolved.is_file() {
        return Err(format!(
            "local package artifact \"{line}\" is not a regular file"
        ));
    }
    Ok(resolved)
}

/// `cog` and `coglet` are installed by the build itself; a pin in requirements would fight it.
pub fn is_managed_package(line: &str) -> bool {
    let name = package_name(line);
    let base = name.split('[').next().unwrap_or(name);
    let normalized = base.to_ascii_lowercase().replace(['_', '.'], "-");
    normalized == "cog" || normalized == "coglet"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_logical_lines_like_cog() {
        let text = "# comment\r\ntorch==2.1.0 # trailing\r\n\r\n-e .\nnumpy \\\n  >=1.0\n--extra-index-url https://x/simple\n";
        assert_eq!(
            parse_lines(text),
            vec![
                "torch==2.1.0 ",
                "numpy   >=1.0",
                "--extra-index-url https://x/simple"
            ]
        );
    }

    #[test]
    fn names_and_versions() {
        assert_eq!(package_name("torch==2.1.0"), "torch");
        assert_eq!(package_name("uvicorn[standard]>=0.2"), "uvicorn[standard]");
        assert_eq!(package_name("--index-url x"), "--index-url");
        assert_eq!(versions("torch>=2.0,<3"), vec!["2.0", "3"]);
        assert_eq!(
            versions("pkg @ https://x/pkg.whl"),
            vec!["https://x/pkg.whl"]
        );
        assert_eq!(
            package_version(&["torch".to_owned()], "torch"),
            Some(String::new())
        );
        assert_eq!(package_version(&["numpy".to_owned()], "torch"), None);
    }

    #[test]
    fn splits_pinned_requirements() {
        let pinned =
            split_pinned("torch==2.1.0+cu118 --extra-index-url=https://x/cu118 -f https://y")
                .unwrap();
        assert_eq!(pinned.name, "torch");
        assert_eq!(pinned.version, "2.1.0+cu118");
        assert_eq!(pinned.extra_index_urls, vec!["https://x/cu118"]);
        assert_eq!(pinned.find_links, vec!["https://y"]);
        assert_eq!(split_pinned("torch>=2"), None);
    }

    #[test]
    fn classifies_local_artifacts() {
        assert_eq!(
            local_artifact("./dist/pkg-1.0-py3-none-any.whl"),
            Ok(Some("./dist/pkg-1.0-py3-none-any.whl"))
        );
        assert_eq!(local_artifact("pkg.tar.gz"), Ok(Some("pkg.tar.gz")));
        assert_eq!(local_artifact("numpy==1.0"), Ok(None));
        assert_eq!(local_artifact("https://x/pkg.whl"), Ok(None));
        assert_eq!(
            local_artifact("file:///tmp/pkg.whl").unwrap_err(),
            "local file URL requirements are not supported: file:///tmp/pkg.whl"
        );
        assert_eq!(
            local_artifact("pkg @ ./pkg.whl").unwrap_err(),
            "local direct reference requirements (`name @ path`) are not supported; list the path directly instead: pkg @ ./pkg.whl"
        );
        assert_eq!(
            local_artifact("./pkg.whl --hash=sha256:abc").unwrap_err(),
            "local package artifact requirements do not support inline options or hashes: ./pkg.whl --hash=sha256:abc"
        );
        assert_eq!(
            local_artifact("./pkg.whl; python_version > '3.10'").unwrap_err(),
            "environment markers are not supported on local package artifact requirements: ./pkg.whl; python_version > '3.10'"
        );
        assert_eq!(
            local_artifact("./pkg.whl[extra]").unwrap_err(),
            "extras are not supported on local package artifact requirements: ./pkg.whl[extra]"
        );
        assert_eq!(
            local_artifact("./src/mypkg").unwrap_err(),
            "local package requirement \"./src/mypkg\" is not a supported wheel or source archive"
        );
        assert_eq!(
            local_artifact("--find-links ./wheels").unwrap_err(),
            "local requirements option \"--find-links\" is not supported: --find-links ./wheels"
        );
        assert_eq!(local_artifact("--extra-index-url https://x"), Ok(None));
    }

    #[test]
    fn managed_packages() {
        assert!(is_managed_package("cog==0.9.0"));
        assert!(is_managed_package("Coglet>=0.1"));
        assert!(!is_managed_package("cogs==1"));
    }
}
