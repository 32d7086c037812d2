//! PEP 440 specifiers as pubgrub ranges.

use pep508_rs::pep440_rs::{LocalSegment, Operator, Version, VersionSpecifier, VersionSpecifiers};
use pubgrub::Ranges;

/// The set of versions a specifier list allows (pre-release policy is applied elsewhere).
pub fn to_ranges(specifiers: &VersionSpecifiers) -> Ranges<Version> {
    specifiers.iter().fold(Ranges::full(), |acc, s| {
        acc.intersection(&specifier_range(s))
    })
}

fn specifier_range(spec: &VersionSpecifier) -> Ranges<Version> {
    let v = spec.version().clone();
    match spec.operator() {
        Operator::Equal | Operator::ExactEqual => {
            if v.is_local() {
                Ranges::singleton(v)
            } else {
                // `==1.0` also accepts local versions such as `1.0+cpu`.
                let upper = v.clone().with_local(vec![LocalSegment::Number(u64::MAX)]);
                Ranges::between(v, upper.clone()).union(&Ranges::singleton(upper))
            }
        }
        Operator::NotEqual => specifier_range(&VersionSpecifier::equals_version(v)).complement(),
        Operator::EqualStar => prefix_range(&v),
        Operator::NotEqualStar => prefix_range(&v).complement(),
        Operator::TildeEqual => {
            let release = v.release();
            let prefix = Version::new(&release[..release.len().saturating_sub(1).max(1)])
                .with_epoch(v.epoch());
            Ranges::higher_than(v).intersection(&prefix_range(&prefix))
        }
        Operator::LessThan => {
            if v.any_prerelease() || v.is_local() {
                Ranges::strictly_lower_than(v)
            } else {
                // `<V` excludes V's own pre-releases.
                Ranges::strictly_lower_than(v.with_min(Some(0)))
            }
        }
        Operator::LessThanEqual => Ranges::lower_than(v),
        Operator::GreaterThan => {
            if v.is_post() || v.is_dev() || v.is_local() {
                Ranges::strictly_higher_than(v)
            } else {
                // `>V` excludes V's post-releases (and local versions).
                Ranges::strictly_higher_than(v.with_max(Some(0)))
            }
        }
        Operator::GreaterThanEqual => Ranges::higher_than(v),
    }
}

/// `==prefix.*`: every version whose release starts with the prefix, pre/post/dev included.
fn prefix_range(prefix: &Version) -> Ranges<Version> {
    let release = prefix.release();
    let low = Version::new(release)
        .with_epoch(prefix.epoch())
        .with_min(Some(0));
    let mut next: Vec<u64> = release.to_vec();
    if let Some(last) = next.last_mut() {
        *last += 1;
    }
    let high = Version::new(next)
        .with_epoch(prefix.epoch())
        .with_min(Some(0));
    Ranges::between(low, high)
}

/// Whether any specifier names a pre-release (which opts that package into pre-releases).
pub fn mentions_prerelease(specifiers: &VersionSpecifiers) -> bool {
    specifiers.iter().any(VersionSpecifier::any_prerelease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: &str) -> Ranges<Version> {
        to_ranges(&s.parse().unwrap())
    }
    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn operators() {
        assert!(r("==1.2").contains(&v("1.2")));
        assert!(r("==1.2").contains(&v("1.2+cpu")));
        assert!(!r("==1.2").contains(&v("1.2.post1")));
        assert!(r("==1.2.*").contains(&v("1.2.9rc1")));
        assert!(!r("==1.2.*").contains(&v("1.3")));
        assert!(r("~=1.4.2").contains(&v("1.4.9")));
        assert!(!r("~=1.4.2").contains(&v("1.5")));
        assert!(r("~=1.4").contains(&v("1.9")));
        assert!(!r("~=1.4").contains(&v("2.0")));
        assert!(!r("<2.0").contains(&v("2.0rc1")));
        assert!(r("<2.0").contains(&v("1.9.post3")));
        assert!(!r(">1.0").contains(&v("1.0.post1")));
        assert!(r(">1.0").contains(&v("1.0.1")));
        assert!(r(">=1,!=1.5").contains(&v("1.6")));
        assert!(!r(">=1,!=1.5").contains(&v("1.5")));
        assert!(!r("!=1.5.*").contains(&v("1.5.3")));
    }

    proptest! {
        // Our ranges agree with pep440_rs's own `contains` on ordinary versions.
        #[test]
        fn agrees_with_pep440(
            op in prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">=", "~="]),
            a in 0u64..4, b in 0u64..4, c in 0u64..4, d in 0u64..4,
            post in prop::option::of(0u64..2),
        ) {
            let spec: VersionSpecifiers = format!("{op}{a}.{b}").parse().unwrap();
            let mut version = Version::new([c, d]);
            if let Some(p) = post { version = version.with_post(Some(p)); }
            prop_assert_eq!(to_ranges(&spec).contains(&version), spec.contains(&version), "{} {}", spec, version);
        }
    }
}
