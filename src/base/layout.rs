//! Where an image's Python lives: found in a base (`python.rs`), used by the plan and the
//! builder to put wheels where that Python imports them.
use serde::{Deserialize, Serialize};

/// Where the image's Python lives, so wheels land where it looks for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonLayout {
    /// `X.Y`
    pub version: String,
    /// The interpreter console scripts run with (`/usr/local/bin/python3.11`).
    pub interpreter: String,
    /// purelib/platlib directory.
    pub site_packages: String,
    /// Prefix of `bin/`, `include/` and `share/` for wheel data.
    pub prefix: String,
    /// The base has no `python` command on its `PATH` (only `python3`): `/usr/local/bin/python`
    /// becomes a link to this interpreter, as Cog links the Python it installs, so that the
    /// server's `python -m cog.server.http` runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_link: Option<String>,
}

impl PythonLayout {
    /// The official `python:X.Y-slim` images.
    pub fn python_slim(version: &str) -> Self {
        Self {
            version: version.to_string(),
            interpreter: format!("/usr/local/bin/python{version}"),
            site_packages: format!("/usr/local/lib/python{version}/site-packages"),
            prefix: "/usr/local".into(),
            python_link: None,
        }
    }

    /// Debian's `python3` (where pip installs: `/usr/local/lib/python3.Y/dist-packages`).
    pub fn debian(version: &str) -> Self {
        Self {
            version: version.to_string(),
            interpreter: format!("/usr/bin/python{version}"),
            site_packages: format!("/usr/local/lib/python{version}/dist-packages"),
            prefix: "/usr/local".into(),
            python_link: None,
        }
    }
}
