//! `/etc/ld.so.cache` as `ldconfig` writes it (glibc's "new" format, `glibc-ld.so.cache1.1`),
//! so that `ldconfig -p` and `ctypes.util.find_library` see the libraries. The dynamic loader
//! itself finds libraries in the standard multiarch directories without a cache.
//!
//! Keys are file names (sonames are what Debian ships as file or link names); no ELF parsing.

use std::cmp::Ordering;

use crate::Error;
use crate::layer::LayerTar;

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const FLAG_ELF_LIBC6: i32 = 0x0003;
const FLAG_X8664_LIB64: i32 = 0x0300;
const FLAG_AARCH64_LIB64: i32 = 0x0a00;
const ENDIAN_LITTLE: u8 = 2;
const HEADER_LEN: usize = 48;
const ENTRY_LEN: usize = 24;

fn triplet(arch: &str) -> &'static str {
    if arch == "arm64" {
        "aarch64-linux-gnu"
    } else {
        "x86_64-linux-gnu"
    }
}

/// Whether `path` is a shared library in a directory ldconfig scans for `arch`.
pub fn is_library(path: &str, arch: &str) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    let t = triplet(arch);
    let dirs = [
        format!("/lib/{t}"),
        format!("/usr/lib/{t}"),
        "/lib".into(),
        "/usr/lib".into(),
        "/usr/local/lib".into(),
    ];
    dirs.iter().any(|d| d == dir)
        && (name.starts_with("lib") || name.starts_with("ld-"))
        && name.contains(".so.")
        && !name.ends_with(".py")
        && !name.ends_with(".gdb.py")
}

/// glibc's `_dl_cache_libcmp`: digit runs compare numerically.
fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if a[i].is_ascii_digit() {
            if j < b.len() && b[j].is_ascii_digit() {
                let (mut va, mut vb) = (0u64, 0u64);
                while i < a.len() && a[i].is_ascii_digit() {
                    va = va.saturating_mul(10).saturating_add(u64::from(a[i] - b'0'));
                    i += 1;
                }
                while j < b.len() && b[j].is_ascii_digit() {
                    vb = vb.saturating_mul(10).saturating_add(u64::from(b[j] - b'0'));
                    j += 1;
                }
                if va != vb {
                    return va.cmp(&vb);
                }
            } else {
                return Ordering::Greater;
            }
        } else if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        } else if j >= b.len() || a[i] != b[j] {
            return a[i].cmp(b.get(j).unwrap_or(&0));
        } else {
            i += 1;
            j += 1;
        }
    }
    if j < b.len() {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

/// Whether `path` (`libjq.so.1.0.4`) has a shorter soname beside it (`libjq.so.1`): then only
/// the soname is listed, as ldconfig does.
fn has_soname_link(path: &str, all: &std::collections::HashSet<&str>) -> bool {
    let mut cut = path.len();
    while let Some(dot) = path[..cut].rfind('.') {
        let shorter = &path[..dot];
        if !shorter
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .contains(".so.")
        {
            return false;
        }
        if all.contains(shorter) {
            return true;
        }
        cut = dot;
    }
    false
}

/// The cache for `libraries` (absolute paths).
pub fn build(libraries: &[String], arch: &str) -> Vec<u8> {
    let flags = FLAG_ELF_LIBC6
        | if arch == "arm64" {
            FLAG_AARCH64_LIB64
        } else {
            FLAG_X8664_LIB64
        };
    let all: std::collections::HashSet<&str> = libraries.iter().map(String::as_str).collect();
    let mut entries: Vec<(&str, &str)> = libraries
        .iter()
        .filter(|p| !has_soname_link(p, &all))
        .filter_map(|p| p.rsplit_once('/').map(|(_, name)| (name, p.as_str())))
        .collect();
    // ldconfig's order: descending by libcmp; ties by path for determinism.
    entries.sort_by(|a, b| libcmp(b.0, a.0).then_with(|| a.1.cmp(b.1)));
    entries.dedup_by(|a, b| a.0 == b.0);
    let strings_start = HEADER_LEN + entries.len() * ENTRY_LEN;
    let mut strings = Vec::new();
    let mut table = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for (name, path) in &entries {
        let key = strings_start + strings.len();
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        let value = strings_start + strings.len();
        strings.extend_from_slice(path.as_bytes());
        strings.push(0);
        table.extend_from_slice(&flags.to_le_bytes());
        table.extend_from_slice(&(key as u32).to_le_bytes());
        table.extend_from_slice(&(value as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut out = Vec::with_capacity(strings_start + strings.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.push(ENDIAN_LITTLE);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&table);
    out.extend_from_slice(&strings);
    out
}

pub fn write(libraries: &[String], arch: &str, layer: &mut LayerTar) -> Result<(), Error> {
    layer.file("/etc/ld.so.cache", 0o644, &build(libraries, arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_digits_numerically() {
        assert_eq!(libcmp("libz.so.10", "libz.so.9"), Ordering::Greater);
        assert_eq!(libcmp("libc.so.6", "libc.so.6"), Ordering::Equal);
        assert_eq!(libcmp("liba.so", "libb.so"), Ordering::Less);
        assert_eq!(libcmp("liba", "liba.so"), Ordering::Less);
    }

    #[test]
    fn selects_libraries_in_scanned_directories() {
        assert!(is_library("/lib/x86_64-linux-gnu/libc.so.6", "amd64"));
        assert!(is_library("/usr/lib/x86_64-linux-gnu/libz.so.1", "amd64"));
        assert!(!is_library("/usr/lib/x86_64-linux-gnu/libz.so", "amd64"));
        assert!(!is_library(
            "/usr/lib/python3/dist-packages/libfoo.so.1",
            "amd64"
        ));
        assert!(is_library("/usr/lib/aarch64-linux-gnu/libz.so.1", "arm64"));
    }

    #[test]
    fn lists_sonames_not_full_versions() {
        let libs = vec![
            "/usr/lib/x86_64-linux-gnu/libjq.so.1".to_owned(),
            "/usr/lib/x86_64-linux-gnu/libjq.so.1.0.4".to_owned(),
            "/usr/lib/x86_64-linux-gnu/libonly.so.2.3".to_owned(),
        ];
        let cache = build(&libs, "amd64");
        let text = String::from_utf8_lossy(&cache);
        assert!(text.contains("libjq.so.1\0"));
        assert!(!text.contains("libjq.so.1.0.4"));
        assert!(text.contains("libonly.so.2.3\0"));
    }

    /// `ldconfig -p -C <file>` (from the host's libc-bin) reads what we wrote.
    #[test]
    fn host_ldconfig_reads_the_cache() {
        let libs = vec![
            "/lib/x86_64-linux-gnu/libc.so.6".to_owned(),
            "/usr/lib/x86_64-linux-gnu/libz.so.1".to_owned(),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ld.so.cache");
        std::fs::write(&path, build(&libs, "amd64")).unwrap();
        let Ok(out) = std::process::Command::new("/sbin/ldconfig")
            .arg("-p")
            .arg("-C")
            .arg(&path)
            .output()
        else {
            return; // not a glibc host
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("2 libs found in cache"), "{text}");
        assert!(
            text.contains("libz.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libz.so.1"),
            "{text}"
        );
    }
}
