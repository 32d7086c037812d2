//! Core metadata (`METADATA`): the fields the resolver needs.

use std::str::FromStr;
use std::sync::Arc;

use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{PackageName, Requirement};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};

/// The resolver's view of a distribution's `METADATA`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoreMetadata {
    pub name: PackageName,
    pub version: Version,
    pub requires_dist: Vec<Requirement<Url>>,
    pub requires_python: Option<VersionSpecifiers>,
}

impl CoreMetadata {
    /// Parses the RFC 822-style header block; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let err = |message: String| Error::Metadata {
            file: file.to_string(),
            message,
            source: None,
        };
        let err_from = |message: String, source: crate::error::Cause| Error::Metadata {
            file: file.to_string(),
            message,
            source: Some(source),
        };
        let mut name = None;
        let mut version = None;
        let mut requires_dist = Vec::new();
        let mut requires_python = None;
        for (key, value) in headers(text) {
            match key.to_ascii_lowercase().as_str() {
                "name" => {
                    name = Some(
                        PackageName::new(value.clone())
                            .map_err(|e| err_from(format!("Name {value:?}"), Arc::new(e)))?,
                    );
                }
                "version" => {
                    version = Some(
                        Version::from_str(&value)
                            .map_err(|e| err_from(format!("Version {value:?}"), Arc::new(e)))?,
                    );
                }
                "requires-dist" => requires_dist.push(
                    crate::pep508_guard::parse(&value, true, Requirement::<Url>::from_str)
                        .map_err(|e| err_from(format!("Requires-Dist {value:?}"), e))?,
                ),
                "requires-python" => {
                    // Some old uploads carry junk here; pip ignores what it cannot parse.
                    requires_python = VersionSpecifiers::from_str(&value).ok();
                }
                _ => {}
            }
        }
        Ok(Self {
            name: name.ok_or_else(|| err("missing Name".into()))?,
            version: version.ok_or_else(|| err("missing Version".into()))?,
            requires_dist,
            requires_python,
        })
    }
}

/// Header fields up to the first blank line, with continuation lines joined.
pub(crate) fn headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        // Only a truly empty line ends the headers: a whitespace-only line continues a
        // multi-line field (License texts do this).
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata() {
        let text = "Metadata-Version: 2.1\nName: Foo_Bar\nLicense: a\n        \n  b\nVersion: 1.0\nRequires-Python: >=3.8\nRequires-Dist: numpy>=1.20\nRequires-Dist: torch; extra == 'gpu'\n\nBody: not a header\n";
        let m = CoreMetadata::parse(text, "foo.whl").unwrap();
        assert_eq!(m.name.as_ref(), "foo-bar");
        assert_eq!(m.requires_dist.len(), 2);
        assert!(m.requires_python.is_some());
        let e = CoreMetadata::parse("Name: x\n", "x.whl").unwrap_err();
        assert_eq!(e.to_string(), "x.whl: invalid metadata: missing Version");
    }
}
