//! Cog's flags that cog-rs builds differently or not at all: each is accepted by the parser so
//! that it can be answered by name, with a warning where our build already does what the flag
//! asks for in substance, else an error. Nothing here is ignored silently. When a flag becomes
//! a real feature, move it out of this file.
use std::path::PathBuf;

use anyhow::{Result, bail};

/// Cog's base-image flags (`cog build`, `push`, `run`, `serve`, `exec`, `train`, `debug`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BaseImageFlags {
    /// Cog: build on a pre-built cog-base image. cog-rs always builds on its own pinned base
    /// (prebuilt layers, cached): the value changes nothing, and a warning says so
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub use_cog_base_image: Option<bool>,
    /// Cog: use Nvidia's CUDA base image (auto, true, false). cog-rs resolves CUDA from
    /// cog.yaml's gpu/cuda settings: only `auto` is accepted
    #[arg(long, value_name = "auto|true|false")]
    pub use_cuda_base_image: Option<String>,
    /// Cog: build from a custom Dockerfile. cog-rs builds without Dockerfiles: refused
    #[arg(long, hide = true, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
}

impl BaseImageFlags {
    /// Warnings for the flags that change nothing here; an error for those we cannot honour.
    pub fn check(&self, reporter: &dyn report::Reporter) -> Result<()> {
        if let Some(value) = self.use_cog_base_image {
            reporter.warning(&format!(
                "--use-cog-base-image={value}: cog-rs always builds on its own pinned base image; the flag changes nothing"
            ));
        }
        match self.use_cuda_base_image.as_deref() {
            None => {}
            Some("auto") => reporter.warning(
                "--use-cuda-base-image=auto: cog-rs picks the CUDA libraries from cog.yaml (gpu, cuda) as auto does; the flag changes nothing",
            ),
            Some(value @ ("true" | "false")) => bail!(
                "--use-cuda-base-image={value} is not supported by cog-rs: CUDA comes from cog.yaml's `build.gpu` and `build.cuda` (remove the flag, or set those fields)"
            ),
            Some(other) => bail!(
                "--use-cuda-base-image={other}: expected auto, true or false"
            ),
        }
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
    fn cuda_base_image_true_is_refused_and_auto_warned() {
        let reporter = report::SharedReporter::default();
        let flags = BaseImageFlags {
            use_cuda_base_image: Some("true".into()),
            ..BaseImageFlags::default()
        };
        let err = flags.check(reporter.as_ref()).unwrap_err().to_string();
        assert!(
            err.starts_with("--use-cuda-base-image=true is not supported"),
            "{err}"
        );
        let auto = BaseImageFlags {
            use_cuda_base_image: Some("auto".into()),
            use_cog_base_image: Some(false),
            ..BaseImageFlags::default()
        };
        assert!(auto.check(reporter.as_ref()).is_ok());
        let dockerfile = BaseImageFlags {
            dockerfile: Some("Dockerfile".into()),
            ..BaseImageFlags::default()
        };
        let err = dockerfile.check(reporter.as_ref()).unwrap_err().to_string();
        assert!(err.starts_with("--dockerfile Dockerfile:"), "{err}");
    }
}
