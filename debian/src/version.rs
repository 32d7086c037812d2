//! Debian version numbers (`[epoch:]upstream[-revision]`) and their ordering, as dpkg defines
//! it (deb-version(7)): `~` sorts before everything, even the end of the string.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    pub epoch: u32,
    pub upstream: String,
    pub revision: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid Debian version {version:?}: {reason}")]
pub struct VersionError {
    pub version: String,
    pub reason: &'static str,
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, VersionError> {
        let err = |reason| VersionError {
            version: s.to_owned(),
            reason,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => (
                e.parse::<u32>().map_err(|_| err("epoch is not a number"))?,
                rest,
            ),
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("empty upstream version"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            // dpkg only warns here; real archives contain none, so accept like dpkg does.
            tracing::trace!(version = s, "upstream version does not start with a digit");
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if !upstream.chars().all(allowed) || !revision.chars().all(allowed) {
            return Err(err("invalid character"));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch > 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Weight of a character in the non-digit parts: `~` lowest, then end of string, then letters,
/// then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, compared character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Digit run, compared numerically (leading zeros ignored, any length).
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let si = i;
        let sj = j;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (da, db) = (&a[si..i], &b[sj..j]);
        let by_len = da.len().cmp(&db.len());
        if by_len != Ordering::Equal {
            return by_len;
        }
        let by_digits = da.cmp(db);
        if by_digits != Ordering::Equal {
            return by_digits;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_epoch_upstream_revision() {
        let x = v("1:2.30-1~deb12u1");
        assert_eq!(x.epoch, 1);
        assert_eq!(x.upstream, "2.30");
        assert_eq!(x.revision, "1~deb12u1");
        assert_eq!(x.to_string(), "1:2.30-1~deb12u1");
        let y = v("1.2-3-4");
        assert_eq!(y.upstream, "1.2-3");
        assert_eq!(y.revision, "4");
        assert_eq!(v("0:1.0").to_string(), "1.0");
    }

    #[test]
    fn rejects_garbage() {
        assert!("".parse::<Version>().is_err());
        assert!("x:1".parse::<Version>().is_err());
        assert!("1.0 beta".parse::<Version>().is_err());
        assert!(":1".parse::<Version>().is_err());
    }

    #[test]
    fn orders_like_dpkg() {
        // deb-version(7): "~~" < "~~a" < "~" < "" < "a".
        let ascending = ["~~", "~~a", "~", "", "a"];
        for w in ascending.windows(2) {
            assert_eq!(
                compare_part(w[0], w[1]),
                Ordering::Less,
                "{} < {}",
                w[0],
                w[1]
            );
        }
        assert!(v("1.0~rc1") < v("1.0"));
        assert_eq!(v("1.0").cmp(&v("1.0-0")), Ordering::Equal);
        assert!(v("2.30-1") < v("2.30-1+b1"));
        assert!(v("2.36-9+deb12u4") < v("2.36-9+deb12u10"));
        assert!(v("1:1.0") > v("9.9"));
        assert_eq!(v("1.001"), v("1.001"));
        assert_eq!(v("1.001").cmp(&v("1.1")), Ordering::Equal);
        assert!(v("1.0a") < v("1.0+"));
        assert!(v("1.0") < v("1.0a"));
        assert!(v("3.11.2-6+deb12u6") > v("3.11.2-6"));
    }

    #[test]
    fn serializes_as_string() {
        let x = v("1:2.0-1");
        assert_eq!(serde_json::to_string(&x).unwrap(), "\"1:2.0-1\"");
        assert_eq!(serde_json::from_str::<Version>("\"1:2.0-1\"").unwrap(), x);
    }

    proptest::proptest! {
        #[test]
        fn ordering_is_antisymmetric(a in "[0-9][0-9a-z.+~]{0,6}", b in "[0-9][0-9a-z.+~]{0,6}") {
            let (a, b) = (v(&a), v(&b));
            proptest::prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        }
    }
}
