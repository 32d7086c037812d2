//! What the resolver tells the user: why a version cannot be installed (with what pip would
//! have done), hash-checking failures, and pubgrub's conflict reports made readable.

use std::collections::BTreeSet;

use pep508_rs::pep440_rs::{Operator, Version};
use pep508_rs::{PackageName, VersionOrUrl};

use crate::error::Error;
use crate::filename::TagRanking;
use crate::lock::LockedPackage;
use crate::requirements::{Requirements, Source};
use crate::target::Target;

/// Why a version cannot be installed.
#[derive(Debug, Clone)]
pub(super) enum Unavailable {
    /// Only a source distribution, and no builder to build it.
    NoBuilder {
        sdist: String,
        tags: Vec<String>,
    },
    /// No wheel for the target; `refused_sdist` when `--only-binary` refuses its sdist.
    NoWheel {
        tags: Vec<String>,
        refused_sdist: Option<String>,
    },
    /// `--no-binary` asks for a build, but there is no source distribution.
    NoSdist,
    RequiresPython(String),
    Yanked,
    Hash,
}

/// Sort key that puts `cp39` before `cp310`.
fn natural(tag: &str) -> (String, u64, String) {
    let digits_at = tag.find(|c: char| c.is_ascii_digit()).unwrap_or(tag.len());
    let (prefix, rest) = tag.split_at(digits_at);
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (
        prefix.to_string(),
        rest[..end].parse().unwrap_or(0),
        rest[end..].to_string(),
    )
}

/// `Python cp310, cp311 on manylinux_2_17_x86_64, macosx_11_0_arm64`: what a set of wheel
/// tags (`py-abi-platform`, compressed sets allowed) covers.
pub(super) fn covers(tags: &[String]) -> Option<String> {
    let mut pythons = BTreeSet::new();
    let mut platforms = BTreeSet::new();
    for tag in tags {
        let parts: Vec<&str> = tag.split('-').collect();
        let [py, _abi, plat] = parts.as_slice() else {
            continue;
        };
        pythons.extend(py.split('.').map(natural));
        platforms.extend(plat.split('.').map(str::to_string));
    }
    if pythons.is_empty() {
        return None;
    }
    let pythons: Vec<String> = pythons
        .into_iter()
        .map(|(a, n, b)| format!("{a}{n}{b}"))
        .collect();
    let platforms: Vec<String> = platforms.into_iter().collect();
    Some(format!(
        "Python {} on {}",
        pythons.join(", "),
        platforms.join(", ")
    ))
}

/// The error for a version that exists but cannot be installed.
pub(super) fn unavailable(
    name: &PackageName,
    version: &Version,
    why: &Unavailable,
    target: &Target,
    ranking: &TagRanking,
) -> Error {
    let takes = format!("the target takes {}, ...", ranking.top(3).join(", "));
    match why {
        Unavailable::NoBuilder { sdist, tags } => Error::SourceOnly {
            name: name.to_string(),
            version: version.to_string(),
            file: sdist.clone(),
            covers: covers(tags).map_or_else(String::new, |c| {
                format!(" for {target} (its wheels cover {c})")
            }),
        },
        Unavailable::NoWheel {
            tags,
            refused_sdist,
        } => {
            let cover = covers(tags).map_or_else(
                || "it has no wheels at all".to_string(),
                |c| format!("its wheels cover {c}"),
            );
            let source = match refused_sdist {
                Some(s) => format!(
                    "its source distribution ({s}) is refused by --only-binary; pip would refuse it too"
                ),
                None => {
                    "and it has no source distribution: pip would not find a matching distribution either".to_string()
                }
            };
            Error::NoCompatibleWheel(format!(
                "no wheel of `{name}` {version} matches the target ({target}): {cover}; {takes}; {source}"
            ))
        }
        Unavailable::NoSdist => Error::NoCompatibleWheel(format!(
            "`{name}` {version} has no source distribution, and --no-binary asks for one (pip would fail too)"
        )),
        Unavailable::RequiresPython(spec) => Error::NoCompatibleWheel(format!(
            "`{name}` {version} requires Python {spec}, but the target is Python {}",
            target.python_full_version()
        )),
        Unavailable::Yanked => Error::NoCompatibleWheel(format!(
            "`{name}` {version} was yanked; pin it with == to use it anyway (as pip allows)"
        )),
        Unavailable::Hash => Error::NoCompatibleWheel(format!(
            "no file of `{name}` {version} matches the --hash values in the requirements"
        )),
    }
}

/// pip's hash-checking mode, before resolving: every top-level requirement pinned with `==`
/// (or a direct archive).
pub(super) fn check_hash_pins(reqs: &Requirements) -> Result<(), Error> {
    if !reqs.hash_checking() {
        return Ok(());
    }
    let unpinned: Vec<String> = reqs
        .requirements
        .iter()
        .filter(|e| match &e.source {
            Source::Pep508(r) => !matches!(&r.version_or_url,
                Some(VersionOrUrl::VersionSpecifier(s))
                    if s.len() == 1
                        && s.iter().all(|s| matches!(s.operator(), Operator::Equal | Operator::ExactEqual)
                            && !s.version().to_string().contains('*'))),
            Source::Direct(_) => false,
        })
        .map(|e| format!("    {} (from {})", e.text, e.origin))
        .collect();
    if unpinned.is_empty() {
        return Ok(());
    }
    Err(Error::Hashes(format!(
        "In --require-hashes mode (on because a requirement has --hash), all requirements must have their versions pinned with ==. These do not:\n{}",
        unpinned.join("\n")
    )))
}

/// pip's hash-checking mode, after resolving: every package installed has a `--hash`.
pub(super) fn check_hashes(reqs: &Requirements, packages: &[LockedPackage]) -> Result<(), Error> {
    if !reqs.hash_checking() {
        return Ok(());
    }
    let missing: Vec<String> = packages
        .iter()
        .filter(|p| p.hashes.is_empty())
        .map(|p| match &p.sha256 {
            Some(sha) => format!("    {}=={} --hash=sha256:{sha}", p.name, p.version),
            None => format!("    {}=={}", p.name, p.version),
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Hashes(format!(
        "Hashes are required in --require-hashes mode, but they are missing from some requirements. Here is a list of those requirements along with the hashes their downloaded archives actually had. You can add these to your requirements files after checking that they are trustworthy.\n{}",
        missing.join("\n")
    )))
}

/// Makes pubgrub's report read like specifiers: `==1.2` instead of the internal local-max bound.
pub(super) fn prettify(report: &str) -> String {
    const LOCAL_MAX: &str = "+18446744073709551615";
    let Ok(re) = regex::Regex::new(r">=([^\s,|]+), <=([^\s,|]+)\+18446744073709551615") else {
        return report.to_string();
    };
    let out = re.replace_all(report, |c: &regex::Captures<'_>| {
        if c[1] == c[2] {
            format!("=={}", &c[1])
        } else {
            c[0].to_string()
        }
    });
    out.replace(LOCAL_MAX, "")
        .replace(
            "your requirements 0 depends on",
            "your requirements depend on",
        )
        .replace("your requirements 0", "your requirements")
        .replace(
            "your requirements is forbidden",
            "your requirements cannot be satisfied",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_summarises_tags() {
        let tags = [
            "cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64".to_string(),
            "cp39-cp39-macosx_11_0_arm64".to_string(),
            "cp310-cp310-win_amd64".to_string(),
        ];
        assert_eq!(
            covers(&tags).unwrap(),
            "Python cp39, cp310 on macosx_11_0_arm64, manylinux2014_x86_64, manylinux_2_17_x86_64, win_amd64"
        );
        assert_eq!(covers(&[]), None);
    }
}
