//! dpkg's path filters (`path-exclude` / `path-include` in `/etc/dpkg/dpkg.cfg.d/*`): which
//! package files are not unpacked. The assembled base writes [`SLIM_EXCLUDES`] into the image and
//! applies the same rules to its own packages and to the system packages installed on it, so
//! that what we unpack and what a later `apt-get install` in the image unpacks agree.
//!
//! The rules are dpkg's (`src/main/filters.c`): every filter is tried in order against the
//! package path (`/usr/share/doc/x/README`), the last one that matches decides; patterns are
//! shell globs where `*` also matches `/`; a directory or symlink that is excluded is still
//! unpacked when an include filter's fixed prefix (up to its first wildcard, trailing slashes
//! dropped) begins with its path, so the included files have their parents.

/// What the assembled base's `/etc/dpkg/dpkg.cfg.d/` file holds (the path is
/// [`SLIM_EXCLUDES_PATH`]): documentation, manual pages, info pages and translations are not
/// installed, as in Debian's and Ubuntu's slim container images; copyright files stay. Python's
/// `EXTERNALLY-MANAGED` marker is left out too, so that `pip install` works system-wide as in
/// Cog's `python` images.
pub const SLIM_EXCLUDES: &str = "\
# Written by cog: documentation, manual pages and translations are not installed (as in
# Debian's slim images). Remove this file to have later packages install them.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
# glibc's iconv modules (3.5 MB compressed): UTF-8, ASCII and Latin-1 are built into libc and
# Python has its own codecs. Leap-second time zones (trixie moved them to tzdata-legacy). The
# static tini (the image runs the dynamic one).
path-exclude /usr/lib/*/gconv/*
path-exclude /usr/share/zoneinfo/right/*
path-exclude /usr/bin/tini-static
# pip installs into the system Python, as in Cog's python images (no PEP 668 marker).
path-exclude /usr/lib/python3*/EXTERNALLY-MANAGED
";

/// Where [`SLIM_EXCLUDES`] is written in the image.
pub const SLIM_EXCLUDES_PATH: &str = "/etc/dpkg/dpkg.cfg.d/cog-slim";

use crate::deb::Kind;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    include: bool,
    pattern: String,
}

/// An ordered list of dpkg path filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathFilter {
    rules: Vec<Rule>,
}

impl PathFilter {
    /// The filters in a dpkg configuration text (`path-exclude PATTERN`, `path-exclude=PATTERN`,
    /// a leading `--` allowed); other options and comments are ignored.
    pub fn parse(text: &str) -> PathFilter {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim_start_matches("--");
            let separator = |c: char| c == '=' || c.is_whitespace();
            let Some(i) = line.find(separator) else {
                continue;
            };
            let (key, rest) = line.split_at(i);
            let value = rest.trim_start_matches(separator).trim();
            let include = match key {
                "path-exclude" => false,
                "path-include" => true,
                _ => continue,
            };
            if !value.is_empty() {
                rules.push(Rule {
                    include,
                    pattern: value.to_owned(),
                });
            }
        }
        PathFilter { rules }
    }

    /// The filters of several configuration files, in order.
    pub fn extend(&mut self, other: PathFilter) {
        self.rules.extend(other.rules);
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether dpkg would leave out the package member at `path` (absolute, no trailing
    /// slash) of `kind`.
    pub fn skips(&self, path: &str, kind: Kind) -> bool {
        // dpkg matches a directory's tar name, which ends in a slash.
        let name = if kind == Kind::Dir {
            format!("{path}/")
        } else {
            path.to_owned()
        };
        let mut skip = false;
        for rule in &self.rules {
            if glob(&rule.pattern, &name) {
                skip = !rule.include;
            }
        }
        if skip && matches!(kind, Kind::Dir | Kind::Symlink) {
            for rule in self.rules.iter().filter(|r| r.include) {
                let fixed = rule
                    .pattern
                    .find(['*', '?', '[', '\\'])
                    .map_or(rule.pattern.as_str(), |i| &rule.pattern[..i]);
                if name.starts_with(fixed.trim_end_matches('/')) {
                    return false;
                }
            }
        }
        skip
    }
}

/// `fnmatch(pattern, text, 0)`: `*` and `?` match any character, `/` included; `[...]` a set
/// (`!` or `^` negates, ranges with `-`); `\` quotes the next character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(&p, pi, t[ti])
                        && matched
                    {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A bracket expression at `p[start]`: whether `c` is in it, and the index after it; `None`
/// when the bracket is not closed (then it is a literal `[`).
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_fnmatch_without_flags() {
        assert!(glob("/usr/share/doc/*", "/usr/share/doc/a/b/c"));
        assert!(glob("/usr/share/doc/*", "/usr/share/doc/"));
        assert!(!glob("/usr/share/doc/*", "/usr/share/doc"));
        assert!(glob(
            "/usr/share/doc/*/copyright",
            "/usr/share/doc/bash/copyright"
        ));
        assert!(!glob(
            "/usr/share/doc/*/copyright",
            "/usr/share/doc/bash/README"
        ));
        assert!(glob("/a/?.[ch]", "/a/x.c"));
        assert!(!glob("/a/?.[!ch]", "/a/x.c"));
        assert!(glob("/a/[0-9]*", "/a/7z"));
        assert!(glob("/a/\\*", "/a/*"));
        assert!(!glob("/a/\\*", "/a/b"));
    }

    #[test]
    fn the_slim_rules_leave_out_docs_but_keep_copyrights_and_their_parents() {
        let f = PathFilter::parse(SLIM_EXCLUDES);
        assert!(f.skips("/usr/share/doc/bash/README.gz", Kind::File));
        assert!(!f.skips("/usr/share/doc/bash/copyright", Kind::File));
        assert!(
            !f.skips("/usr/share/doc/bash", Kind::Dir),
            "parent of a copyright"
        );
        assert!(!f.skips("/usr/share/doc", Kind::Dir));
        assert!(f.skips("/usr/share/man/man1/ls.1.gz", Kind::File));
        assert!(f.skips("/usr/share/man/man1", Kind::Dir));
        assert!(f.skips("/usr/share/man", Kind::Dir));
        assert!(f.skips("/usr/share/locale/de/LC_MESSAGES/apt.mo", Kind::File));
        // A symlink under a kept prefix stays, as with dpkg.
        assert!(!f.skips("/usr/share/doc/libfoo", Kind::Symlink));
        assert!(f.skips("/usr/share/man/man1/sh.1.gz", Kind::Symlink));
        assert!(!f.skips("/usr/bin/ls", Kind::File));
        assert!(!f.skips("/usr/share/zoneinfo/UTC", Kind::File));
        assert!(!f.skips("/usr/share", Kind::Dir));
        assert!(f.skips("/usr/lib/python3.11/EXTERNALLY-MANAGED", Kind::File));
        assert!(f.skips("/usr/lib/x86_64-linux-gnu/gconv/IBM1388.so", Kind::File));
        assert!(!f.skips("/usr/lib/x86_64-linux-gnu/libc.so.6", Kind::File));
        assert!(f.skips("/usr/share/zoneinfo/right/UTC", Kind::File));
        assert!(!f.skips("/usr/share/zoneinfo/Etc/UTC", Kind::File));
    }

    #[test]
    fn the_last_matching_rule_wins_and_other_options_are_ignored() {
        let f = PathFilter::parse(
            "# c\nforce-unsafe-io\n--path-exclude=/opt/*\npath-include /opt/keep/*\n\
             path-exclude /opt/keep/no\n",
        );
        assert!(f.skips("/opt/x", Kind::File));
        assert!(!f.skips("/opt/keep/yes", Kind::File));
        assert!(f.skips("/opt/keep/no", Kind::File));
        assert!(PathFilter::parse("force-unsafe-io\n").is_empty());
    }
}
