//! `.dockerignore` rules with moby's semantics (moby/patternmatcher and its ignorefile reader).
//!
//! Patterns are cleaned like Go's `filepath.Clean`, a leading `/` is dropped, `*` and `?` do not
//! cross `/`, `**` crosses any number of directories, `[...]` is a character class, `\` escapes,
//! `!` re-includes. Rules apply in order and the last one that matches a path, or one of its
//! parent directories, wins. Walking a tree, a directory that is excluded is still entered when
//! an exception could re-include something under it (BuildKit's behaviour; the directory entry
//! itself then only appears as the parent of what is re-included).

use regex::Regex;

use crate::error::{Error, Result};

/// Compiled ignore rules.
#[derive(Clone, Debug, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
struct Pattern {
    /// Cleaned, without the `!`.
    text: String,
    exclusion: bool,
    kind: MatchKind,
}

#[derive(Clone, Debug)]
enum MatchKind {
    Exact,
    /// `prefix**`: the text without the trailing `**`.
    Prefix(String),
    /// `**suffix`: the text without the leading `**`.
    Suffix(String),
    Regex(Regex),
}

impl IgnoreMatcher {
    /// Compiles rules given one per item, as moby's `patternmatcher.New` does (a leading `/` is
    /// dropped too).
    pub fn new<S: AsRef<str>>(rules: &[S]) -> Result<Self> {
        let mut patterns = Vec::new();
        for rule in rules {
            let trimmed = rule.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean(trimmed);
            let (exclusion, text) = match cleaned.strip_prefix('!') {
                Some("") => {
                    return Err(Error::InvalidPattern {
                        pattern: rule.as_ref().to_owned(),
                        reason: "illegal exclusion pattern: \"!\"".to_owned(),
                    });
                }
                Some(rest) => (true, rest.to_owned()),
                None => (false, cleaned),
            };
            // Paths are relative to the context: a rooted rule means the same relative one
            // (moby strips the `/` when reading .dockerignore; rules given directly get it too).
            let text = match text.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_owned(),
                _ => text,
            };
            let kind = compile(&text).ok_or_else(|| Error::InvalidPattern {
                pattern: rule.as_ref().to_owned(),
                reason: "syntax error in pattern".to_owned(),
            })?;
            patterns.push(Pattern {
                text,
                exclusion,
                kind,
            });
        }
        Ok(IgnoreMatcher { patterns })
    }

    /// Compiles the content of a `.dockerignore` file.
    pub fn from_dockerignore(content: &str) -> Result<Self> {
        Self::new(&parse_dockerignore(content))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative, `/`-separated) is excluded: the last rule matching it or one of
    /// its parent directories decides (moby's `MatchesOrParentMatches`).
    pub fn matches(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(end) => path[..end]
                .match_indices('/')
                .map(|(index, _)| &path[..index])
                .chain(std::iter::once(&path[..end]))
                .collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // An include cannot change an already excluded path, nor an exception an included one.
            if pattern.exclusion != matched {
                continue;
            }
            let hit =
                pattern.matches(&path) || parents.iter().any(|parent| pattern.matches(parent));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether an exception (`!rule`) could re-include something inside the excluded directory
    /// `dir`, so that a walk must enter it.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let dir_slash = format!("{}/", clean(dir));
        self.patterns
            .iter()
            .filter(|pattern| pattern.exclusion)
            .any(|pattern| match pattern.kind {
                MatchKind::Exact => format!("{}/", pattern.text).starts_with(&dir_slash),
                _ => true,
            })
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.text,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix
                        .strip_prefix('/')
                        .is_some_and(|bare| !suffix.is_empty() && path == bare)
            }
            MatchKind::Regex(regex) => regex.is_match(path),
        }
    }
}

/// Reads a `.dockerignore` like moby's `ignorefile.ReadAll`: a UTF-8 BOM is dropped, `#` lines are
/// comments, lines are trimmed, and each pattern is cleaned with a leading `/` removed.
pub fn parse_dockerignore(content: &str) -> Vec<String> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut rules = Vec::new();
    for line in content.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        rules.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    rules
}

/// Go's `path.Clean`: collapses `//` and `.`, resolves `..` lexically, drops a trailing `/`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Translates a cleaned pattern as moby's `Pattern.compile` does; `None` for a bad pattern.
fn compile(pattern: &str) -> Option<MatchKind> {
    if !valid_glob(pattern) {
        return None;
    }
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut regex = String::from("^");
    let mut detected = Detected::Exact;
    let mut chars = pattern.chars().peekable();
    let mut index = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        regex.push_str(".*");
                        detected = Detected::Regex;
                    }
                } else {
                    regex.push_str("(.*/)?");
                    detected = Detected::Regex;
                }
                if index == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                regex.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                regex.push_str("[^/]");
                detected = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                regex.push('\\');
                regex.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    regex.push('\\');
                    regex.push(next);
                    detected = Detected::Regex;
                }
                None => regex.push_str("\\\\"),
            },
            '[' | ']' => {
                regex.push(ch);
                detected = Detected::Regex;
            }
            _ => regex.push(ch),
        }
        index += 1;
    }
    Some(match detected {
        Detected::Exact => MatchKind::Exact,
        Detected::Prefix => MatchKind::Prefix(pattern[..pattern.len() - 2].to_owned()),
        Detected::Suffix => MatchKind::Suffix(pattern[2..].to_owned()),
        Detected::Regex => {
            regex.push('$');
            MatchKind::Regex(Regex::new(&regex).ok()?)
        }
    })
}

/// The syntax check Go's `filepath.Match` applies: classes must close and hold at least one
/// range, a range end may not be missing, and a pattern may not end with a lone `\`.
fn valid_glob(pattern: &str) -> bool {
    let bytes = pattern.as_bytes();
    let mut index = 0;
    // One class character (possibly escaped); `-` and `]` cannot start a range.
    let class_char = |index: &mut usize| -> bool {
        match bytes.get(*index) {
            None | Some(b'-' | b']') => false,
            Some(b'\\') => {
                *index += 2;
                *index <= bytes.len()
            }
            Some(_) => {
                *index += 1;
                true
            }
        }
    };
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => {
                if index + 1 >= bytes.len() {
                    return false;
                }
                index += 2;
            }
            b'[' => {
                index += 1;
                if bytes.get(index) == Some(&b'^') {
                    index += 1;
                }
                let mut ranges = 0;
                loop {
                    if bytes.get(index) == Some(&b']') && ranges > 0 {
                        index += 1;
                        break;
                    }
                    if !class_char(&mut index) {
                        return false;
                    }
                    if bytes.get(index) == Some(&b'-') {
                        index += 1;
                        if !class_char(&mut index) {
                            return false;
                        }
                    }
                    ranges += 1;
                }
            }
            _ => index += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(pattern: &str, path: &str) -> bool {
        IgnoreMatcher::new(&[pattern]).unwrap().matches(path)
    }

    /// Cases from moby/patternmatcher's tests.
    #[test]
    fn moby_pattern_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
        ];
        for &(pattern, path, want) in cases {
            assert_eq!(single(pattern, path), want, "{pattern:?} on {path:?}");
        }
    }

    /// moby's MatchesOrParentMatches cases: parents match, later rules win, `!` re-includes.
    #[test]
    fn rule_lists_and_parents() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*"], "fileutils.go", true),
            (&["*.go"], "fileutils.go", true),
            (&["**"], "fileutils.go", true),
            (&["dir"], "dir/fileutils.go", true),
            (&["dir/"], "dir/fileutils.go", true),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (
                &["*.go", "!fileutils.go", "fileutils.go"],
                "fileutils.go",
                true,
            ),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs", "!docs/README.md"], "docs/other.md", true),
            (&["docs/*.md", "!docs/README.md"], "docs/README.md", false),
            (&["a/b"], "a/b/c/d", true),
            (&["a/b"], "a/bc", false),
            (&["/a"], "a/b", true),
            (&["./a/../b"], "b", true),
            (&["**/*.pyc"], "pkg/sub/x.pyc", true),
            (&["*", "!keep", "keep/tmp"], "keep/tmp/x", true),
            (&["*", "!keep", "keep/tmp"], "keep/src/x", false),
        ];
        for &(rules, path, want) in cases {
            let matcher = IgnoreMatcher::new(rules).unwrap();
            assert_eq!(matcher.matches(path), want, "{rules:?} on {path:?}");
        }
    }

    #[test]
    fn dockerignore_files_are_read_like_moby() {
        let content = "\u{feff}# comment\n  \n/abs\n  spaced  \n!  /keep/me\n./dot/../x\n#not\n";
        assert_eq!(
            parse_dockerignore(content),
            ["abs", "spaced", "!keep/me", "x"]
        );
    }

    #[test]
    fn bad_patterns_are_errors_naming_the_pattern() {
        for bad in ["!", "[", "a[", "[]", "[a-]", "x\\"] {
            let err = IgnoreMatcher::new(&[bad]).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert!(IgnoreMatcher::new(&["[a-z]", "\\*", "a[\\]]b"]).is_ok());
    }

    #[test]
    fn exceptions_decide_whether_a_walk_enters_an_excluded_dir() {
        let literal = IgnoreMatcher::new(&["docs", "!docs/keep.md"]).unwrap();
        assert!(literal.may_reinclude_under("docs"));
        assert!(!literal.may_reinclude_under("other"));
        let wildcard = IgnoreMatcher::new(&["build", "!**/*.so"]).unwrap();
        assert!(wildcard.may_reinclude_under("build"));
        assert!(
            !IgnoreMatcher::new(&["build"])
                .unwrap()
                .may_reinclude_under("build")
        );
    }
}
