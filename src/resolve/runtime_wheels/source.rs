//! Cog's values of `COG_SDK_WHEEL` and `COGLET_WHEEL` (`pkg/wheels/wheels.go`,
//! `ParseWheelValue`): `pypi`, `pypi:VERSION`, an `http(s)://` URL, or a path to a wheel file or
//! to a directory of wheels (`dist` is the relative path `./dist`).
use std::path::{Path, PathBuf};

use url::Url;

/// Which of the two runtime wheels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The `cog` Python SDK (pure Python, `py3-none-any`).
    Sdk,
    /// The `coglet` prediction server (one wheel per architecture).
    Coglet,
}

impl Kind {
    /// The environment variable that overrides it.
    pub fn var(self) -> &'static str {
        match self {
            Kind::Sdk => "COG_SDK_WHEEL",
            Kind::Coglet => "COGLET_WHEEL",
        }
    }

    /// The distribution name.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Sdk => "cog",
            Kind::Coglet => "coglet",
        }
    }

    /// The pattern of its wheels in a directory (Cog's message names it).
    pub fn pattern(self) -> &'static str {
        match self {
            Kind::Sdk => "cog-*.whl",
            Kind::Coglet => "coglet-*.whl",
        }
    }
}

/// The oldest cog SDK `pypi:X.Y.Z` may ask for (Cog's `MinimumSDKVersion`).
pub const MINIMUM_SDK_VERSION: &str = "0.16.0";

/// Where a runtime wheel comes from, as the environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelSource {
    /// `pypi` (the latest release) or `pypi:VERSION` (semver pre-releases such as
    /// `0.17.0-alpha1` are written as PEP 440's `0.17.0a1`, as Cog does).
    PyPi { version: Option<String> },
    /// An `http://` or `https://` URL of a wheel.
    Url(Url),
    /// A wheel file, or a directory searched for the wheel (absolute).
    Path(PathBuf),
}

/// Reads the variable of `kind`: `None` when it is unset or empty.
pub fn from_env(kind: Kind) -> Result<Option<WheelSource>, super::RuntimeWheelError> {
    let Some(value) = std::env::var_os(kind.var()) else {
        return Ok(None);
    };
    let value = value
        .into_string()
        .map_err(|_| super::RuntimeWheelError::NotUtf8 { var: kind.var() })?;
    let cwd = std::env::current_dir().map_err(|source| super::RuntimeWheelError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    parse(kind, &value, &cwd)
}

/// Parses a value of `kind`'s variable; relative paths are taken from `cwd`.
pub fn parse(
    kind: Kind,
    value: &str,
    cwd: &Path,
) -> Result<Option<WheelSource>, super::RuntimeWheelError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.eq_ignore_ascii_case("pypi") {
        return Ok(Some(WheelSource::PyPi { version: None }));
    }
    if value.len() > 5 && value[..5].eq_ignore_ascii_case("pypi:") {
        let version = semver_to_pep440(value[5..].trim());
        let Ok(parsed) = version.parse::<pep508_rs::pep440_rs::Version>() else {
            return Err(super::RuntimeWheelError::BadVersion {
                var: kind.var(),
                value: value.to_owned(),
            });
        };
        // Cog's `ValidateSDKVersion`: older SDKs lack what the CLI needs.
        let minimum: pep508_rs::pep440_rs::Version =
            MINIMUM_SDK_VERSION.parse().expect("a valid version");
        let padded = |release: &[u64]| {
            let mut release = release.to_vec();
            release.resize(release.len().max(3), 0);
            release
        };
        if kind == Kind::Sdk && padded(parsed.release()) < padded(minimum.release()) {
            return Err(super::RuntimeWheelError::BelowMinimum {
                var: kind.var(),
                version,
                minimum: MINIMUM_SDK_VERSION,
            });
        }
        return Ok(Some(WheelSource::PyPi {
            version: Some(version),
        }));
    }
    if value.starts_with("https://") || value.starts_with("http://") {
        let url = Url::parse(value).map_err(|e| super::RuntimeWheelError::BadUrl {
            var: kind.var(),
            url: value.to_owned(),
            reason: e.to_string(),
        })?;
        return Ok(Some(WheelSource::Url(url)));
    }
    Ok(Some(WheelSource::Path(cwd.join(value))))
}

/// Cog's `SemverToPEP440`: `-alphaN` -> `aN`, `-betaN` -> `bN`, `-rcN` -> `rcN`,
/// `-devN` -> `.devN`; other versions unchanged.
fn semver_to_pep440(version: &str) -> String {
    for (semver, pep440) in [
        ("-alpha", "a"),
        ("-beta", "b"),
        ("-rc", "rc"),
        ("-dev", ".dev"),
    ] {
        if let Some((base, n)) = version.split_once(semver)
            && n.chars().all(|c| c.is_ascii_digit())
            && (semver == "-dev" || !n.is_empty())
        {
            return format!("{base}{pep440}{n}");
        }
    }
    version.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(value: &str) -> Option<WheelSource> {
        parse(Kind::Sdk, value, Path::new("/work/project")).unwrap()
    }

    #[test]
    fn cogs_values() {
        assert_eq!(p(""), None);
        assert_eq!(p("  "), None);
        assert_eq!(p("pypi"), Some(WheelSource::PyPi { version: None }));
        assert_eq!(p("PyPI"), Some(WheelSource::PyPi { version: None }));
        assert_eq!(
            p("pypi:0.17.1"),
            Some(WheelSource::PyPi {
                version: Some("0.17.1".into())
            })
        );
        assert_eq!(
            p("PYPI:0.17.0-alpha1"),
            Some(WheelSource::PyPi {
                version: Some("0.17.0a1".into())
            })
        );
        assert_eq!(
            p("https://example.com/w/cog-0.17.0-py3-none-any.whl"),
            Some(WheelSource::Url(
                Url::parse("https://example.com/w/cog-0.17.0-py3-none-any.whl").unwrap()
            ))
        );
        assert_eq!(
            p("dist"),
            Some(WheelSource::Path(PathBuf::from("/work/project/dist")))
        );
        assert_eq!(
            p("/srv/wheels/cog.whl"),
            Some(WheelSource::Path(PathBuf::from("/srv/wheels/cog.whl")))
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = parse(Kind::Coglet, "pypi:not a version", Path::new("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "COGLET_WHEEL=pypi:not a version: not a version (pypi:X.Y.Z)"
        );
        let err = parse(Kind::Sdk, "pypi:0.15.2", Path::new("/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "COG_SDK_WHEEL version 0.15.2 is below the minimum required version 0.16.0"
        );
        assert!(parse(Kind::Sdk, "pypi:0.16.0-rc1", Path::new("/")).is_ok());
        assert!(parse(Kind::Sdk, "pypi:0.16", Path::new("/")).is_ok());
        assert!(parse(Kind::Coglet, "pypi:0.1.0", Path::new("/")).is_ok());
        let err = parse(Kind::Sdk, "https://", Path::new("/")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("COG_SDK_WHEEL=https://: not a URL"),
            "{err}"
        );
    }

    #[test]
    fn semver_pre_releases_become_pep440() {
        assert_eq!(semver_to_pep440("0.17.0"), "0.17.0");
        assert_eq!(semver_to_pep440("0.17.0-beta2"), "0.17.0b2");
        assert_eq!(semver_to_pep440("0.17.0-rc1"), "0.17.0rc1");
        assert_eq!(semver_to_pep440("0.17.0-dev3"), "0.17.0.dev3");
        assert_eq!(semver_to_pep440("0.17.0-dev"), "0.17.0.dev");
    }
}
