//! `--no-binary` / `--only-binary` / `--prefer-binary`: which kinds of files a package may use,
//! with pip's rules for `:all:`, `:none:` and later options overriding earlier ones.

use std::collections::BTreeSet;

use std::sync::Arc;

use pep508_rs::PackageName;

use super::Problem;

/// pip's `FormatControl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatControl {
    /// Names (or `:all:`) that must be built from source.
    pub no_binary: BTreeSet<String>,
    /// Names (or `:all:`) that must come as wheels.
    pub only_binary: BTreeSet<String>,
    /// `--prefer-binary`: an older version with a wheel beats a newer one with only an sdist.
    pub prefer_binary: bool,
}

/// The kinds of files a package may be installed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub wheel: bool,
    pub sdist: bool,
}

const ALL: &str = ":all:";
const NONE: &str = ":none:";

impl FormatControl {
    /// `--no-binary VALUE`.
    pub fn add_no_binary(&mut self, value: &str) -> Result<(), Problem> {
        Self::handle(value, &mut self.no_binary, &mut self.only_binary)
    }

    /// `--only-binary VALUE`.
    pub fn add_only_binary(&mut self, value: &str) -> Result<(), Problem> {
        Self::handle(value, &mut self.only_binary, &mut self.no_binary)
    }

    /// pip's `handle_mutual_excludes`.
    fn handle(
        value: &str,
        target: &mut BTreeSet<String>,
        other: &mut BTreeSet<String>,
    ) -> Result<(), Problem> {
        if value.starts_with('-') {
            return Err(format!(
                "--no-binary / --only-binary option requires 1 argument, got {value:?}"
            )
            .into());
        }
        let mut names: Vec<&str> = value.split(',').collect();
        while let Some(pos) = names.iter().position(|n| *n == ALL) {
            other.clear();
            target.clear();
            target.insert(ALL.to_string());
            names.drain(..=pos);
            if !names.contains(&NONE) {
                return Ok(());
            }
        }
        for name in names {
            if name == NONE {
                target.clear();
                continue;
            }
            let name = PackageName::new(name.trim().to_string())
                .map_err(|e| {
                    Problem::with_source(format!("invalid package name {name:?}"), Arc::new(e))
                })?
                .to_string();
            other.remove(&name);
            target.insert(name);
        }
        Ok(())
    }

    /// pip's `get_allowed_formats`.
    pub fn allowed(&self, name: &PackageName) -> Allowed {
        let name = name.as_ref();
        let (wheel, sdist) = if self.only_binary.contains(name) {
            (true, false)
        } else if self.no_binary.contains(name) {
            (false, true)
        } else if self.only_binary.contains(ALL) {
            (true, false)
        } else if self.no_binary.contains(ALL) {
            (false, true)
        } else {
            (true, true)
        };
        Allowed { wheel, sdist }
    }

    /// Canonical text for the lock's input hash.
    pub(crate) fn canonical(&self) -> String {
        format!(
            "no-binary={:?} only-binary={:?} prefer-binary={}",
            self.no_binary, self.only_binary, self.prefer_binary
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> PackageName {
        PackageName::new(n.to_string()).unwrap()
    }

    #[test]
    fn follows_pips_rules() {
        let mut f = FormatControl::default();
        assert_eq!(
            f.allowed(&name("x")),
            Allowed {
                wheel: true,
                sdist: true
            }
        );
        f.add_only_binary(":all:").unwrap();
        assert_eq!(
            f.allowed(&name("x")),
            Allowed {
                wheel: true,
                sdist: false
            }
        );
        f.add_no_binary("Foo_Bar").unwrap();
        assert_eq!(
            f.allowed(&name("foo-bar")),
            Allowed {
                wheel: false,
                sdist: true
            }
        );
        assert_eq!(
            f.allowed(&name("x")),
            Allowed {
                wheel: true,
                sdist: false
            }
        );
        // `:all:` clears both sets; `:none:` after it clears again.
        f.add_no_binary(":all:,:none:,y").unwrap();
        assert!(f.only_binary.is_empty());
        assert_eq!(
            f.allowed(&name("x")),
            Allowed {
                wheel: true,
                sdist: true
            }
        );
        assert_eq!(
            f.allowed(&name("y")),
            Allowed {
                wheel: false,
                sdist: true
            }
        );
        assert!(f.add_only_binary("--pre").is_err());
    }
}
