//! Where an image is pulled from, as `containers-registries.conf(5)` says (the file podman,
//! buildah and skopeo read): `[[registry]]` entries whose `prefix` matches the reference
//! rewrite it to their `location`, try their `[[registry.mirror]]`s first, can be `blocked`, and
//! can be `insecure` (plain HTTP).
//!
//! Files, as containers/image finds them: `$CONTAINERS_REGISTRIES_CONF` alone when set; else
//! `~/.config/containers/registries.conf` (`$XDG_CONFIG_HOME`) when it exists, else
//! `/etc/containers/registries.conf`; then the drop-ins of `registries.conf.d` beside the file
//! used, in name order, whose entries replace earlier ones of the same prefix. The version-1
//! tables `[registries.insecure]` and `[registries.block]` are honoured too.
//!
//! Short names are Docker's (`python` is `docker.io/library/python`, as in Cog), so the keys
//! about them (`unqualified-search-registries`, `short-name-mode`, `[aliases]`,
//! `[registries.search]`) change nothing here; `credential-helpers` neither (credentials come
//! from Docker's `config.json`).
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::oci::reference::Reference;

/// The system file.
pub const SYSTEM_FILE: &str = "/etc/containers/registries.conf";
/// The variable naming the one file to read instead.
pub const FILE_VAR: &str = "CONTAINERS_REGISTRIES_CONF";

/// A `registries.conf` that cannot be used; names the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: [[registry]] prefix {prefix:?}: {message}", .path.display())]
    Entry {
        path: PathBuf,
        prefix: String,
        message: String,
    },
}

/// When a mirror is used (`pull-from-mirror`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullFromMirror {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MirrorToml {
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: Option<PullFromMirror>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RegistryToml {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<MirrorToml>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct V1List {
    #[serde(default)]
    registries: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct V1Tables {
    #[serde(default)]
    insecure: Option<V1List>,
    #[serde(default)]
    block: Option<V1List>,
    #[serde(default)]
    #[allow(dead_code)] // short names are Docker's here
    search: Option<V1List>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct FileToml {
    #[serde(default)]
    registry: Vec<RegistryToml>,
    #[serde(default)]
    registries: Option<V1Tables>,
}

/// One mirror of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub location: String,
    pub insecure: bool,
    pub pull_from: PullFromMirror,
}

/// One `[[registry]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it matches: `docker.io/nvidia/cuda`, `quay.io`, `*.example.com`.
    pub prefix: String,
    /// What the prefix is replaced by (the prefix itself when not given).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirrors: Vec<Mirror>,
    /// The file it came from, for messages.
    pub file: PathBuf,
}

/// Where one pull may come from, in the order to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub reference: Reference,
    /// Plain HTTP.
    pub insecure: bool,
    /// A mirror (not the entry's own location).
    pub mirror: bool,
}

/// A reference that `registries.conf` forbids pulling.
#[derive(Debug, thiserror::Error)]
#[error("{reference}: registry {prefix} is blocked by {}", .file.display())]
pub struct Blocked {
    pub reference: String,
    pub prefix: String,
    pub file: PathBuf,
}

/// The entries of every file read, later files' entries replacing earlier ones of the same
/// prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    pub entries: Vec<Entry>,
}

impl RegistriesConf {
    /// Reads the files containers/image reads (see the module's documentation).
    pub fn load() -> Result<Self, ConfError> {
        let mut conf = Self::default();
        if let Some(file) = std::env::var_os(FILE_VAR).filter(|f| !f.is_empty()) {
            conf.add_file(Path::new(&file))?;
            return Ok(conf);
        }
        let user_dir = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|d| d.join("containers"));
        let user_file = user_dir.as_ref().map(|d| d.join("registries.conf"));
        let file = user_file
            .filter(|f| f.exists())
            .unwrap_or_else(|| PathBuf::from(SYSTEM_FILE));
        if file.exists() {
            conf.add_file(&file)?;
        }
        let user_drop_ins = user_dir.map(|d| d.join("registries.conf.d"));
        let drop_ins = user_drop_ins
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| PathBuf::from(format!("{SYSTEM_FILE}.d")));
        if drop_ins.is_dir() {
            let mut files: Vec<PathBuf> = fs_err::read_dir(&drop_ins)
                .map_err(|source| ConfError::Read {
                    path: drop_ins.clone(),
                    source,
                })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            files.sort();
            for file in files {
                conf.add_file(&file)?;
            }
        }
        Ok(conf)
    }

    /// Adds one file's entries.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ConfError> {
        let text = fs_err::read_to_string(path).map_err(|source| ConfError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_str(&text, path)
    }

    /// Adds the entries of `text` (read from `path`).
    pub fn add_str(&mut self, text: &str, path: &Path) -> Result<(), ConfError> {
        let file: FileToml = toml::from_str(text).map_err(|e| ConfError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut entries = Vec::new();
        for registry in file.registry {
            entries.push(entry(registry, path)?);
        }
        if let Some(v1) = file.registries {
            if !entries.is_empty() {
                return Err(ConfError::Syntax {
                    path: path.to_path_buf(),
                    message:
                        "mixes the version 1 tables ([registries.*]) with [[registry]] entries"
                            .into(),
                });
            }
            let insecure = v1.insecure.unwrap_or_default().registries;
            let blocked = v1.block.unwrap_or_default().registries;
            let mut hosts: Vec<&String> = insecure.iter().chain(&blocked).collect();
            hosts.sort();
            hosts.dedup();
            for host in hosts {
                entries.push(entry(
                    RegistryToml {
                        prefix: host.clone(),
                        insecure: insecure.contains(host),
                        blocked: blocked.contains(host),
                        ..RegistryToml::default()
                    },
                    path,
                )?);
            }
        }
        for new in entries {
            self.entries.retain(|e| e.prefix != new.prefix);
            self.entries.push(new);
        }
        Ok(())
    }

    /// The entry whose prefix matches `reference` (the longest one).
    fn entry_for(&self, name: &str) -> Option<&Entry> {
        let host = name.split('/').next().unwrap_or_default();
        self.entries
            .iter()
            .filter(|e| match e.prefix.strip_prefix('*') {
                Some(domain) => host.ends_with(domain),
                None => prefix_matches(&e.prefix, name),
            })
            .max_by_key(|e| e.prefix.len())
    }

    /// Where to pull `reference` from, in order: the matching entry's mirrors that apply, then
    /// its location; just `reference` when no entry matches.
    pub fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, Blocked> {
        let name = reference.to_string();
        let Some(entry) = self.entry_for(&name) else {
            return Ok(vec![Endpoint {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if entry.blocked {
            return Err(Blocked {
                reference: name,
                prefix: entry.prefix.clone(),
                file: entry.file.clone(),
            });
        }
        let wildcard = entry.prefix.starts_with('*');
        let rewrite = |location: &str| -> Option<Reference> {
            if wildcard {
                return Some(reference.clone());
            }
            let rewritten = format!("{location}{}", &name[entry.prefix.len()..]);
            match Reference::parse(&rewritten) {
                Ok(r) => Some(r),
                Err(err) => {
                    tracing::warn!(
                        "{}: [[registry]] prefix {:?}: {rewritten:?} is not a reference ({err}); skipped",
                        entry.file.display(),
                        entry.prefix
                    );
                    None
                }
            }
        };
        let pinned = reference.digest().is_some();
        let mut endpoints = Vec::new();
        for mirror in &entry.mirrors {
            let applies = match mirror.pull_from {
                PullFromMirror::All => true,
                PullFromMirror::DigestOnly => pinned,
                PullFromMirror::TagOnly => !pinned,
            };
            if let Some(reference) = rewrite(&mirror.location).filter(|_| applies) {
                endpoints.push(Endpoint {
                    reference,
                    insecure: mirror.insecure,
                    mirror: true,
                });
            }
        }
        if let Some(reference) = rewrite(&entry.location) {
            endpoints.push(Endpoint {
                reference,
                insecure: entry.insecure,
                mirror: false,
            });
        }
        Ok(endpoints)
    }
}

/// containers/image's `refMatchingPrefix`: the prefix, then the end or one of `/`, `:`, `@`.
fn prefix_matches(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ':', '@']))
}

/// A `[[registry]]` table checked and completed (`prefix` defaults to `location`). Prefixes
/// match fully qualified names: Docker Hub's official images are `docker.io/library/NAME`.
fn entry(registry: RegistryToml, path: &Path) -> Result<Entry, ConfError> {
    let prefix = if registry.prefix.is_empty() {
        registry.location.clone()
    } else {
        registry.prefix.clone()
    };
    let err = |message: &str| ConfError::Entry {
        path: path.to_path_buf(),
        prefix: prefix.clone(),
        message: message.to_owned(),
    };
    if prefix.is_empty() {
        return Err(err("neither prefix nor location is set"));
    }
    let wildcard = prefix.starts_with('*');
    if wildcard && !prefix.starts_with("*.") {
        return Err(err("a wildcard prefix is written *.domain"));
    }
    if wildcard && (!registry.location.is_empty() || !registry.mirror.is_empty()) {
        return Err(err(
            "a wildcard prefix takes no location and no mirrors (cog-rs, as containers/image)",
        ));
    }
    if prefix.contains("://") || registry.location.contains("://") {
        return Err(err(
            "locations are written without a scheme (set insecure = true for plain HTTP)",
        ));
    }
    let location = if registry.location.is_empty() {
        prefix.clone()
    } else {
        registry.location.trim_end_matches('/').to_owned()
    };
    let mirrors = registry
        .mirror
        .into_iter()
        .map(|m| {
            if m.location.is_empty() {
                return Err(err("a [[registry.mirror]] has no location"));
            }
            if m.location.contains("://") {
                return Err(err(
                    "mirror locations are written without a scheme (set insecure = true for plain HTTP)",
                ));
            }
            let pull_from = match (m.pull_from_mirror, registry.mirror_by_digest_only) {
                (Some(p), _) => p,
                (None, true) => PullFromMirror::DigestOnly,
                (None, false) => PullFromMirror::All,
            };
            Ok(Mirror {
                location: m.location.trim_end_matches('/').to_owned(),
                insecure: m.insecure,
                pull_from,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Entry {
        prefix: prefix.trim_end_matches('/').to_owned(),
        location,
        insecure: registry.insecure,
        blocked: registry.blocked,
        mirrors,
        file: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        let mut conf = RegistriesConf::default();
        conf.add_str(text, Path::new("registries.conf")).unwrap();
        conf
    }

    fn names(conf: &RegistriesConf, reference: &str) -> Vec<(String, bool, bool)> {
        conf.endpoints(&Reference::parse(reference).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.reference.to_string(), e.insecure, e.mirror))
            .collect()
    }

    #[test]
    fn mirrors_come_first_then_the_location() {
        let conf = conf(
            r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "docker.io/nvidia/cuda"
location = "docker.io/nvidia/cuda"

[[registry.mirror]]
location = "127.0.0.1:5000/hub/nvidia/cuda"
insecure = true

[[registry.mirror]]
location = "mirror.example.com/cuda"
pull-from-mirror = "digest-only"
"#,
        );
        assert_eq!(
            names(&conf, "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"),
            vec![
                (
                    "127.0.0.1:5000/hub/nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04".to_owned(),
                    true,
                    true
                ),
                (
                    "docker.io/nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04".to_owned(),
                    false,
                    false
                ),
            ]
        );
        let digest = format!("nvidia/cuda@sha256:{}", "a".repeat(64));
        assert_eq!(names(&conf, &digest).len(), 3);
        // `docker.io/nvidia/cudax` is another repository.
        assert_eq!(names(&conf, "nvidia/cudax:1").len(), 1);
        // Nothing matches: the reference as it is.
        assert_eq!(
            names(&conf, "python:3.11"),
            vec![("docker.io/library/python:3.11".to_owned(), false, false)]
        );
    }

    #[test]
    fn location_rewrites_the_prefix_and_the_longest_prefix_wins() {
        let conf = conf(
            r#"
[[registry]]
prefix = "docker.io"
location = "hub.internal:5000"

[[registry]]
prefix = "docker.io/library"
location = "hub.internal:5000/official"
insecure = true
"#,
        );
        assert_eq!(
            names(&conf, "python:3.11-slim"),
            vec![(
                "hub.internal:5000/official/python:3.11-slim".to_owned(),
                true,
                false
            )]
        );
        assert_eq!(
            names(&conf, "nvidia/cuda:12"),
            vec![("hub.internal:5000/nvidia/cuda:12".to_owned(), false, false)]
        );
    }

    #[test]
    fn blocked_wildcards_v1_and_drop_ins() {
        let mut conf = conf(
            r#"
[[registry]]
prefix = "*.example.com"
blocked = true
"#,
        );
        let err = conf
            .endpoints(&Reference::parse("r.example.com/a/b:1").unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.example.com/a/b:1: registry *.example.com is blocked by registries.conf"
        );
        // A drop-in replaces the entry of the same prefix.
        conf.add_str(
            "[[registry]]\nprefix = \"*.example.com\"\ninsecure = true\n",
            Path::new("registries.conf.d/50-x.conf"),
        )
        .unwrap();
        assert_eq!(
            names(&conf, "r.example.com/a/b:1"),
            vec![("r.example.com/a/b:1".to_owned(), true, false)]
        );
        let v1 = self::conf(
            "[registries.search]\nregistries = ['docker.io']\n[registries.insecure]\nregistries = ['reg.lan:5000']\n[registries.block]\nregistries = ['bad.io']\n",
        );
        assert_eq!(
            names(&v1, "reg.lan:5000/a:1"),
            vec![("reg.lan:5000/a:1".to_owned(), true, false)]
        );
        assert!(
            v1.endpoints(&Reference::parse("bad.io/x:1").unwrap())
                .is_err()
        );
    }

    #[test]
    fn mistakes_name_the_file_and_the_entry() {
        let mut conf = RegistriesConf::default();
        let path = Path::new("/etc/containers/registries.conf");
        let err = conf
            .add_str(
                "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"https://m.example\"\n",
                path,
            )
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "/etc/containers/registries.conf: [[registry]] prefix \"docker.io\": mirror locations are written without a scheme"
            ),
            "{err}"
        );
        let err = conf
            .add_str("[[registry]]\nprefix = \"x.io\"\nmirrors = []\n", path)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `mirrors`"), "{err}");
    }
}
