//! Index settings as pip reads them: environment, then pip config files, then PyPI.

use std::path::{Path, PathBuf};

use url::Url;

use crate::requirements::FindLinks;

/// PyPI's simple API.
pub const PYPI_SIMPLE: &str = "https://pypi.org/simple/";

/// pip's configured defaults: `index-url`, `extra-index-url` and `find-links`.
#[derive(Debug, Clone, Default)]
pub struct PipConfig {
    pub index_url: Option<Url>,
    pub extra_index_urls: Vec<Url>,
    pub find_links: Vec<FindLinks>,
}

impl PipConfig {
    /// Reads `PIP_INDEX_URL`/`PIP_EXTRA_INDEX_URL`/`PIP_FIND_LINKS`, then the pip config files
    /// (site `/etc/pip.conf`, user `~/.config/pip/pip.conf`, `~/.pip/pip.conf`, `PIP_CONFIG_FILE`;
    /// later files win, the environment wins over all), sections `[global]` then `[install]`.
    pub fn from_environment() -> Self {
        let mut files: Vec<PathBuf> = vec![
            PathBuf::from("/etc/xdg/pip/pip.conf"),
            PathBuf::from("/etc/pip.conf"),
        ];
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            files.push(home.join(".pip/pip.conf"));
            let xdg = std::env::var_os("XDG_CONFIG_HOME")
                .map_or_else(|| home.join(".config"), PathBuf::from);
            files.push(xdg.join("pip/pip.conf"));
        }
        if let Some(f) = std::env::var_os("PIP_CONFIG_FILE") {
            files.push(PathBuf::from(f));
        }
        let mut values: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        for f in &files {
            if let Ok(text) = std::fs::read_to_string(f) {
                for (k, v) in parse_ini(&text) {
                    values.insert(k, v);
                }
            }
        }
        for (env, key) in [
            ("PIP_INDEX_URL", "index-url"),
            ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
            ("PIP_FIND_LINKS", "find-links"),
        ] {
            if let Ok(v) = std::env::var(env) {
                values.insert(key.to_string(), v);
            }
        }
        let urls = |key: &str| -> Vec<Url> {
            values
                .get(key)
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|u| normalize_index_url(u).ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            index_url: urls("index-url").into_iter().next(),
            extra_index_urls: urls("extra-index-url"),
            find_links: values
                .get("find-links")
                .map(|v| v.split_whitespace().map(find_links_entry).collect())
                .unwrap_or_default(),
        }
    }
}

/// Parses a find-links value: a URL or a local directory.
pub fn find_links_entry(value: &str) -> FindLinks {
    match Url::parse(value) {
        Ok(u) if u.scheme() == "file" => FindLinks::Dir(
            u.to_file_path()
                .unwrap_or_else(|()| PathBuf::from(u.path())),
        ),
        Ok(u) => FindLinks::Url(u),
        Err(_) => FindLinks::Dir(Path::new(value).to_path_buf()),
    }
}

pub use crate::requirements::normalize_index_url;

/// `key = value` pairs of `[global]` then `[install]` (later wins), with continuation lines.
fn parse_ini(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut section = String::new();
    let mut global = Vec::new();
    let mut install = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if trimmed.starts_with('[') {
            section = trimmed.trim_matches(['[', ']']).trim().to_ascii_lowercase();
            continue;
        }
        let target = match section.as_str() {
            "global" => &mut global,
            "install" => &mut install,
            _ => continue,
        };
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = target.last_mut() {
                let v: &mut String = v;
                v.push(' ');
                v.push_str(trimmed);
            }
            continue;
        }
        if let Some((k, v)) = trimmed.split_once(['=', ':']) {
            target.push((
                k.trim().to_ascii_lowercase().replace('_', "-"),
                v.trim().to_string(),
            ));
        }
    }
    out.extend(global);
    out.extend(install);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ini_sections() {
        let ini = "[global]\nindex-url = https://a/simple\nfind-links =\n    /opt/wheels\n    https://x/links\n[install]\nindex_url=https://b/simple\n[other]\nindex-url=https://c\n";
        let kv = parse_ini(ini);
        let last = |k: &str| {
            kv.iter()
                .rev()
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(last("index-url").unwrap(), "https://b/simple");
        assert_eq!(last("find-links").unwrap().split_whitespace().count(), 2);
        assert_eq!(
            normalize_index_url("https://a/simple").unwrap().as_str(),
            "https://a/simple/"
        );
        assert_eq!(
            find_links_entry("/opt/wheels"),
            FindLinks::Dir("/opt/wheels".into())
        );
    }
}
