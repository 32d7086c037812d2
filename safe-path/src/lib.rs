//! Names that come from outside (a package index, a registry, an archive, a lock file, a user's
//! `cog.yaml`) are checked here, one function per kind, before any of them becomes part of a path
//! on disk or in a layer. Each check either returns the name in a form that cannot leave the
//! directory it is joined to, or an [`UnsafeName`] that says which name, of what kind, and why.
//!
//! The rules are deliberately narrower than what the filesystem accepts: a name that a
//! well-behaved index, registry or archive would never produce is refused rather than repaired,
//! so that a hostile one cannot find a spelling that a later step interprets differently.

use std::path::{Path, PathBuf};

/// The longest single path component Linux filesystems accept.
pub const MAX_COMPONENT: usize = 255;
/// The longest relative path we accept from an archive or a lock (PATH_MAX).
pub const MAX_PATH: usize = 4096;

/// A name from outside that cannot be used as (part of) a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe {kind} {name:?}: {reason}")]
pub struct UnsafeName {
    /// What the name is: `file name`, `archive path`, `sha256 digest`, ...
    pub kind: &'static str,
    pub name: String,
    pub reason: &'static str,
}

fn refuse(kind: &'static str, name: &str, reason: &'static str) -> UnsafeName {
    let mut name = name.to_owned();
    if name.len() > 200 {
        let mut cut = 200;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name.push('…');
    }
    UnsafeName { kind, name, reason }
}

/// One path component: a file name that an index, a registry or a user gave us (a wheel or
/// sdist file name, a `.deb` file name, a weight name). Never empty, `.` or `..`, no `/`, `\`,
/// NUL or other control characters, at most [`MAX_COMPONENT`] bytes.
pub fn file_name(name: &str) -> Result<&str, UnsafeName> {
    const KIND: &str = "file name";
    check_component(name).map_err(|reason| refuse(KIND, name, reason))?;
    Ok(name)
}

fn check_component(part: &str) -> Result<(), &'static str> {
    if part.is_empty() {
        return Err("it is empty");
    }
    if part == "." || part == ".." {
        return Err("it names a directory, not a file");
    }
    if part.len() > MAX_COMPONENT {
        return Err("it is longer than 255 bytes");
    }
    if part.contains('/') || part.contains('\\') {
        return Err("it contains a path separator");
    }
    if part.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    Ok(())
}

/// A path inside an archive, a layer or a wheel, as its entries name them (`./usr/bin/x`,
/// `usr//lib/`, `/etc/passwd`): normalized to `a/b/c` with no empty, `.` or `..` components.
/// Leading `/` and `./` are accepted (tar writers emit both); any `..`, a NUL, an overlong
/// component or an empty result (the root itself) is refused. (A `\\` or a newline is an
/// ordinary character in a Linux file name, and real packages ship such names.)
pub fn relative_path(path: &str) -> Result<String, UnsafeName> {
    const KIND: &str = "archive path";
    if path.len() > MAX_PATH {
        return Err(refuse(KIND, path, "it is longer than 4096 bytes"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(refuse(
                    KIND,
                    path,
                    "it contains a `..` component (a path traversal)",
                ));
            }
            _ if part.contains('\0') => {
                return Err(refuse(KIND, path, "it contains a NUL byte"));
            }
            _ if part.len() > MAX_COMPONENT => {
                return Err(refuse(KIND, path, "a component is longer than 255 bytes"));
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(refuse(KIND, path, "it names the root, not an entry"));
    }
    Ok(parts.join("/"))
}

/// `root` joined with an outside `path` (see [`relative_path`]): the result always lies under
/// `root`, lexically. (Symlinks already on disk under `root` are the caller's concern: code that
/// unpacks archives must not follow them; see `docs/security.md`.)
pub fn join(root: &Path, path: &str) -> Result<PathBuf, UnsafeName> {
    Ok(root.join(relative_path(path)?))
}

/// `root` joined with one outside file name (see [`file_name`]).
pub fn join_file(root: &Path, name: &str) -> Result<PathBuf, UnsafeName> {
    Ok(root.join(file_name(name)?))
}

/// A sha256 digest in lowercase hex (64 characters), as indexes, locks and registries give it;
/// upper case is accepted and lowered. Used as a directory or file name in caches.
pub fn sha256_hex(hex: &str) -> Result<String, UnsafeName> {
    const KIND: &str = "sha256 digest";
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse(KIND, hex, "it is not 64 hexadecimal digits"));
    }
    Ok(hex.to_ascii_lowercase())
}

/// A symlink target inside an archive: absolute targets are resolved by the reader against the
/// image root, so they are fine; a relative one may not climb above the root from the link's
/// own directory (`a/b -> ../../x` is refused, `a/b -> ../x` is fine).
pub fn symlink_target(link_path: &str, target: &str) -> Result<(), UnsafeName> {
    const KIND: &str = "symlink target";
    if target.is_empty() {
        return Err(refuse(KIND, target, "it is empty"));
    }
    if target.contains('\0') {
        return Err(refuse(KIND, target, "it contains a NUL byte"));
    }
    if target.starts_with('/') {
        return Ok(());
    }
    let link = relative_path(link_path)?;
    let mut depth = link.matches('/').count() as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return Err(refuse(KIND, target, "it escapes the archive root"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Component;

    #[test]
    fn file_names() {
        for ok in [
            "numpy-2.0-cp311-cp311-linux_x86_64.whl",
            "a",
            ".hidden",
            "x..y",
        ] {
            assert_eq!(file_name(ok), Ok(ok));
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "travpkg-1.0-py3-none-any./../../../../../../tmp/x/evil.whl",
            "a\\b",
            "a\0b",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path("./usr//bin/x").unwrap(), "usr/bin/x");
        assert_eq!(relative_path("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(relative_path("usr/lib/").unwrap(), "usr/lib");
        assert_eq!(relative_path("a\\b").unwrap(), "a\\b");
        for bad in ["", "/", "./", "../x", "a/../../b", "a/../b", "a/\0"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digests() {
        let h = "A".repeat(64);
        assert_eq!(sha256_hex(&h).unwrap(), "a".repeat(64));
        assert!(sha256_hex("../../etc").is_err());
        assert!(sha256_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn symlinks() {
        assert!(symlink_target("usr/bin/python3", "python3.11").is_ok());
        assert!(symlink_target("usr/bin/python3", "../lib/x").is_ok());
        assert!(symlink_target("usr/bin/python3", "/usr/lib/x").is_ok());
        assert!(symlink_target("usr/bin/python3", "../../../etc").is_err());
        assert!(symlink_target("x", "").is_err());
    }

    fn lexically_under(root: &Path, p: &Path) -> bool {
        p.starts_with(root)
            && p.strip_prefix(root)
                .unwrap()
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
    }

    proptest! {
        // Any string, including the separators and dots attackers use.
        #[test]
        fn join_never_escapes(s in "(\\PC|[./\\\\%\0]){0,64}") {
            let root = Path::new("/cache/root");
            if let Ok(p) = join(root, &s) {
                prop_assert!(lexically_under(root, &p), "{s:?} -> {}", p.display());
                prop_assert!(p != root);
            }
            if let Ok(p) = join_file(root, &s) {
                prop_assert!(lexically_under(root, &p));
                prop_assert_eq!(p.parent(), Some(root));
            }
        }

        #[test]
        fn relative_path_is_normal(s in "([a-z.]{0,3}/){0,8}[a-z.]{0,3}") {
            if let Ok(r) = relative_path(&s) {
                prop_assert!(!r.starts_with('/') && !r.ends_with('/'));
                prop_assert!(r.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
                prop_assert_eq!(relative_path(&r).unwrap(), r.clone());
            }
        }

        #[test]
        fn safe_symlinks_stay_inside(link in "[a-z]{1,3}(/[a-z]{1,3}){0,4}", target in "((\\.\\.|[a-z]{1,2}|\\.)/){0,6}[a-z]{1,2}") {
            if symlink_target(&link, &target).is_ok() {
                // Resolve lexically from the link's directory: it never climbs above the root.
                let mut parts: Vec<&str> = link.split('/').collect();
                parts.pop();
                for part in target.split('/') {
                    match part {
                        "" | "." => {}
                        ".." => { prop_assert!(parts.pop().is_some()); }
                        p => parts.push(p),
                    }
                }
            }
        }
    }
}
