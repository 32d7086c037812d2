//! Requirements that name a place rather than a version: `name @ URL`, bare archive URLs and
//! paths, and `git+…` repositories.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use pep508_rs::{ExtraName, MarkerTree, PackageName};
use url::Url;

use super::Problem;
use crate::filename::{WheelFilename, parse_sdist};

/// A distribution at a fixed place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    /// `None` until the distribution's metadata is read (a bare sdist URL, `git+…` without
    /// `#egg=`).
    pub name: Option<PackageName>,
    pub extras: Vec<ExtraName>,
    pub marker: MarkerTree,
    pub location: Location,
}

/// Where a direct distribution is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A wheel or source archive on a server (`http`, `https`).
    Url(Url),
    /// A local wheel or source archive (absolute, symlinks resolved).
    Path(PathBuf),
    /// A git repository at a revision.
    Git(GitUrl),
}

impl Location {
    /// The file name of an archive (`None` for git).
    pub fn filename(&self) -> Option<String> {
        match self {
            Location::Url(u) => u
                .path_segments()
                .and_then(|mut s| s.next_back())
                .map(percent_decode)
                .filter(|s| !s.is_empty()),
            Location::Path(p) => p.file_name().and_then(|f| f.to_str()).map(str::to_string),
            Location::Git(_) => None,
        }
    }

    /// Whether the archive is a wheel.
    pub fn is_wheel(&self) -> bool {
        self.filename()
            .is_some_and(|f| f.to_ascii_lowercase().ends_with(".whl"))
    }

    /// The name its file name gives (wheels, sdists named `name-version.tar.gz`).
    pub fn name_from_filename(&self) -> Option<PackageName> {
        let f = self.filename()?;
        WheelFilename::parse(&f)
            .map(|w| w.name)
            .or_else(|| parse_sdist(&f).map(|(n, _)| n))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Url(u) => write!(f, "{u}"),
            Location::Path(p) => write!(f, "{}", p.display()),
            Location::Git(g) => write!(f, "{g}"),
        }
    }
}

/// `git+<repository>[@rev][#subdirectory=…]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitUrl {
    /// The repository, without `git+`, revision or fragment (`https://host/org/repo.git`).
    pub repository: Url,
    /// Branch, tag or commit; `None` is the remote's `HEAD`.
    pub rev: Option<String>,
    /// The project's directory inside the repository.
    pub subdirectory: Option<String>,
}

impl fmt::Display for GitUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "git+{}", self.repository)?;
        if let Some(rev) = &self.rev {
            write!(f, "@{rev}")?;
        }
        if let Some(sub) = &self.subdirectory {
            write!(f, "#subdirectory={sub}")?;
        }
        Ok(())
    }
}

/// Fragment keys of a requirement URL: `egg=name[extras]`, `subdirectory=dir`, `sha256=hex`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub egg: Option<String>,
    pub subdirectory: Option<String>,
    pub sha256: Option<String>,
}

impl Fragment {
    pub fn parse(url: &Url) -> Self {
        let mut out = Self::default();
        for part in url.fragment().unwrap_or_default().split('&') {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let value = percent_decode(value);
            match key {
                "egg" => out.egg = Some(value),
                "subdirectory" => out.subdirectory = Some(value),
                "sha256" => out.sha256 = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
        out
    }
}

/// VCS schemes pip knows; only git is supported here.
const VCS_PREFIXES: [&str; 4] = ["git+", "hg+", "svn+", "bzr+"];

/// pip's `is_url`: a scheme pip downloads from, or a VCS scheme.
pub(crate) fn is_url(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    matches!(scheme.as_str(), "http" | "https" | "file" | "ftp" | "git")
        || VCS_PREFIXES.iter().any(|p| scheme.starts_with(p))
        || matches!(scheme.as_str(), "hg" | "svn" | "bzr")
}

/// What a requirement URL points at. `Err` is a message for the user.
pub(crate) fn classify_url(url: &Url) -> Result<Location, Problem> {
    let scheme = url.scheme();
    if let Some(inner) = scheme.strip_prefix("git+") {
        return parse_git(url, inner).map(Location::Git);
    }
    if scheme == "git" {
        // `git://host/repo`: pip needs the `git+` prefix for it.
        return Err(
            format!("{url}: pip needs the `git+` prefix for a repository (git+{url})").into(),
        );
    }
    if VCS_PREFIXES[1..].iter().any(|p| scheme.starts_with(p))
        || matches!(scheme, "hg" | "svn" | "bzr")
    {
        return Err(format!(
            "{url}: only git repositories can be installed from version control (pip would use {})",
            scheme.split('+').next().unwrap_or(scheme)
        )
        .into());
    }
    match scheme {
        "http" | "https" => Ok(Location::Url(url.clone())),
        "file" => url
            .to_file_path()
            .map(Location::Path)
            .map_err(|()| format!("{url}: not a local file path").into()),
        other => Err(format!(
            "{url}: URLs with scheme {other:?} are not supported (http, https, file and git+ are)"
        )
        .into()),
    }
}

fn parse_git(url: &Url, inner_scheme: &str) -> Result<GitUrl, Problem> {
    if !matches!(inner_scheme, "https" | "http" | "ssh" | "git" | "file") {
        return Err(format!(
            "{url}: unsupported git transport {inner_scheme:?} (https, http, ssh, git and file are)"
        )
        .into());
    }
    let fragment = Fragment::parse(url);
    // `git+https://host/repo.git@rev`: the revision is after the last `@` of the path.
    let text = url.as_str();
    let without_fragment = text.split('#').next().unwrap_or(text);
    let rest = &without_fragment[url.scheme().len() + 1..];
    let (authority_and_path, rev) = {
        // Only an `@` in the path is a revision (`user@host` is the authority's).
        let path_start = rest
            .strip_prefix("//")
            .map_or(0, |r| 2 + r.find('/').unwrap_or(r.len()));
        match rest[path_start..].rfind('@') {
            Some(at) => (
                &rest[..path_start + at],
                Some(percent_decode(&rest[path_start + at + 1..])),
            ),
            None => (rest, None),
        }
    };
    if rev.as_deref() == Some("") {
        return Err(format!("{url}: empty revision after `@`").into());
    }
    let repository = Url::parse(&format!("{inner_scheme}:{authority_and_path}"))
        .map_err(|e| Problem::with_source(format!("{url}: invalid repository URL"), Arc::new(e)))?;
    if let Some(sub) = &fragment.subdirectory
        && safe_path::relative_path(sub).is_err()
    {
        return Err(format!(
            "{url}: subdirectory {sub:?} must be a relative path inside the repository"
        )
        .into());
    }
    Ok(GitUrl {
        repository,
        rev,
        subdirectory: fragment.subdirectory,
    })
}

/// `name[extra1,extra2]` of an `#egg=` fragment.
pub(crate) fn parse_egg(egg: &str) -> Result<(PackageName, Vec<ExtraName>), Problem> {
    let (name, extras) = match egg.split_once('[') {
        Some((n, rest)) => (n, rest.trim_end_matches(']')),
        None => (egg, ""),
    };
    let name = PackageName::from_str(name.trim()).map_err(|e| {
        Problem::with_source(format!("#egg={egg}: invalid package name"), Arc::new(e))
    })?;
    let extras = extras
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            ExtraName::from_str(e).map_err(|err| {
                Problem::with_source(format!("#egg={egg}: extra {e:?}"), Arc::new(err))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((name, extras))
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(text: &str) -> GitUrl {
        match classify_url(&Url::parse(text).unwrap()).unwrap() {
            Location::Git(g) => g,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn git_urls() {
        let g = git("git+https://github.com/org/repo.git@v1.2#egg=pkg&subdirectory=python");
        assert_eq!(g.repository.as_str(), "https://github.com/org/repo.git");
        assert_eq!(g.rev.as_deref(), Some("v1.2"));
        assert_eq!(g.subdirectory.as_deref(), Some("python"));
        assert_eq!(
            g.to_string(),
            "git+https://github.com/org/repo.git@v1.2#subdirectory=python"
        );
        let g = git("git+ssh://git@github.com/org/repo.git");
        assert_eq!(g.repository.as_str(), "ssh://git@github.com/org/repo.git");
        assert_eq!(g.rev, None);
        let g = git("git+https://host/repo@feature/x%2By");
        assert_eq!(g.rev.as_deref(), Some("feature/x+y"));
        let g = git("git+file:///srv/repo@abc123");
        assert_eq!(g.repository.as_str(), "file:///srv/repo");
        assert_eq!(g.rev.as_deref(), Some("abc123"));
        for bad in [
            "git+https://h/r.git#subdirectory=../x",
            "hg+https://h/r",
            "git+ftp://h/r",
            "git://h/r",
            "git+https://h/r@",
        ] {
            assert!(classify_url(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn eggs_and_file_names() {
        let (n, x) = parse_egg("My_Pkg[a, b]").unwrap();
        assert_eq!(n.as_ref(), "my-pkg");
        assert_eq!(x.len(), 2);
        let l = Location::Url(
            Url::parse("https://h/d/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl").unwrap(),
        );
        assert_eq!(
            l.filename().unwrap(),
            "torch-2.1.0+cu121-cp311-cp311-linux_x86_64.whl"
        );
        assert!(l.is_wheel());
        assert_eq!(l.name_from_filename().unwrap().as_ref(), "torch");
        let l = Location::Url(Url::parse("https://h/archive/main.zip").unwrap());
        assert_eq!(l.name_from_filename(), None);
        assert!(is_url("git+https://x") && is_url("HTTPS://x") && !is_url("numpy>=1"));
    }
}
