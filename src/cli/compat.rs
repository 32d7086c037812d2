//! Cog's flags that cog-rs builds differently or not at all: each is accepted by the parser so
//! that it can be answered by name, with a warning where our build already does what the flag
//! asks for in substance, else an error. Nothing here is ignored silently. When a flag becomes
//! a real feature, move it out of this file.
use std::path::PathBuf;

use anyhow::{Result, bail};

/// Cog's `--dockerfile` (`cog build`, `push`, `run`, `serve`, `exec`, `train`, `debug`). Cog's
/// other base-image flags, `--use-cog-base-image` and `--use-cuda-base-image`, are implemented
/// (`super::args::BaseFlagArgs`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BaseImageFlags {
    /// Cog: build from a custom Dockerfile. cog-rs builds without Dockerfiles: refused
    #[arg(long, hide = true, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
}

impl BaseImageFlags {
    /// An error for the flags we cannot honour.
    pub fn check(&self) -> Result<()> {
        if let Some(file) = &self.dockerfile {
            bail!(
                "--dockerfile {}: cog-rs builds without Dockerfiles and cannot build from one (`cog debug` prints the Dockerfile equivalent to a cog.yaml)",
                file.display()
            );
        }
        Ok(())
    }
}

/// `cog build`/`push`/`debug` flags of Cog that cog-rs does not implement.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UnsupportedBuildFlags {
    /// Cog: strip shared libraries for faster inference. Not supported by cog-rs: refused
    #[arg(long, hide = true)]
    pub strip: bool,
    /// Cog: precompile Python bytecode into the image. Not supported by cog-rs: refused
    #[arg(long, hide = true)]
    pub precompile: bool,
    /// Cog: the timestamp of the image's files. Not supported by cog-rs: refused
    #[arg(long, hide = true, value_name = "SECONDS")]
    pub timestamp: Option<i64>,
    /// Cog: skip validating the schema after the build. Not supported by cog-rs: refused
    #[arg(long, hide = true)]
    pub skip_schema_validation: bool,
}

impl UnsupportedBuildFlags {
    pub fn check(&self) -> Result<()> {
        let given = [
            (self.strip, "--strip"),
            (self.precompile, "--precompile"),
            (self.timestamp.is_some(), "--timestamp"),
            (self.skip_schema_validation, "--skip-schema-validation"),
        ];
        if let Some((_, flag)) = given.iter().find(|(set, _)| *set) {
            bail!("{flag} is not supported by cog-rs (remove the flag)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_flags_are_refused_by_name() {
        let flags = UnsupportedBuildFlags {
            precompile: true,
            ..UnsupportedBuildFlags::default()
        };
        assert_eq!(
            flags.check().unwrap_err().to_string(),
            "--precompile is not supported by cog-rs (remove the flag)"
        );
        assert!(UnsupportedBuildFlags::default().check().is_ok());
    }

    #[test]
    fn dockerfile_is_refused() {
        assert!(BaseImageFlags::default().check().is_ok());
        let dockerfile = BaseImageFlags {
            dockerfile: Some("Dockerfile".into()),
        };
        let err = dockerfile.check().unwrap_err().to_string();
        assert!(err.starts_with("--dockerfile Dockerfile:"), "{err}");
    }
}
