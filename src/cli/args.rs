//! The flags the commands share, in one place: every command that builds takes [`BuildFlags`],
//! every command that talks to a registry takes [`RegistryArgs`], and `run`, `serve` and `exec`
//! take [`ProjectArgs`].
use std::path::PathBuf;

use layers::Compression;

use super::compat::{BaseImageFlags, UnsupportedBuildFlags};
use super::printer::ProgressMode;
use crate::base::select::{BaseFlags, UseCudaBaseImage};
use crate::registry::{ClientOptions, DEFAULT_PUSH_CONCURRENCY, ManifestFormat};
use crate::resolve::{self, LockMode};
use crate::runtime::{GpuRequest, RuntimeKind};
use crate::sandbox::{Secret, SecretSource};

/// How to build a project (`cog build`, `cog push`).
#[derive(Debug, Clone, clap::Args)]
pub struct BuildFlags {
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    pub file: String,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Set type of build progress output: 'auto' (default), 'tty', 'plain', 'quiet' or 'json'
    #[arg(long, value_enum)]
    pub progress: Option<ProgressMode>,
    /// Base image: a registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    #[arg(long)]
    pub base: Option<String>,
    #[command(flatten)]
    pub base_flags: BaseFlagArgs,
    /// Target platform
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
    /// Load OpenAPI schema from a file instead of generating it
    #[arg(long, value_name = "FILE")]
    pub openapi_schema: Option<PathBuf>,
    #[command(flatten)]
    pub locks: LockArgs,
    /// Secrets for build commands' `mounts`, as `id=ID,src=PATH` or `id=ID,env=VAR`
    /// (repeatable); never stored in the image or the cache
    #[arg(long = "secret", value_name = "SPEC", value_parser = parse_secret)]
    pub secrets: Vec<SecretArg>,
    /// Layer compression
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Separate model weights from code in image layers: also make `<image>-weights`, an image
    /// of the weight layers alone (shared with the image), and push both
    #[arg(long)]
    pub separate_weights: bool,
    /// Reuse layers from a build cache in a registry, as --cache-to wrote it (repeatable)
    #[arg(
        long = "cache-from",
        value_name = "REF",
        env = "COG_CACHE_FROM",
        value_delimiter = ','
    )]
    pub cache_from: Vec<String>,
    /// Write the layers this build used to a build cache in a registry (repeatable)
    #[arg(
        long = "cache-to",
        value_name = "REF",
        env = "COG_CACHE_TO",
        value_delimiter = ','
    )]
    pub cache_to: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    pub base_image: BaseImageFlags,
    #[command(flatten)]
    pub unsupported: UnsupportedBuildFlags,
}

impl BuildFlags {
    /// The defaults `cog run`, `serve` and `exec` build with.
    pub fn for_project(project: &ProjectArgs) -> Self {
        Self {
            file: project.file.clone(),
            no_cache: false,
            progress: project.progress,
            base: project.base.clone(),
            base_flags: project.base_flags.clone(),
            platform: "linux/amd64".to_string(),
            openapi_schema: None,
            locks: LockArgs::default(),
            secrets: Vec::new(),
            compression: CompressionArg::Gzip,
            separate_weights: false,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            registry: RegistryArgs::default(),
            base_image: project.base_image.clone(),
            unsupported: UnsupportedBuildFlags::default(),
        }
    }

    /// Cog's flags that cog-rs answers with a warning or refuses ([`super::compat`]).
    pub fn check_compat(&self) -> anyhow::Result<()> {
        self.unsupported.check()?;
        self.base_image.check()
    }

    /// `--cache-from` and `--cache-to`.
    pub fn remote_cache(&self) -> anyhow::Result<crate::remote_cache::RemoteCache> {
        crate::remote_cache::RemoteCache::parse(&self.cache_from, &self.cache_to)
    }

    pub fn resolve_options(&self) -> resolve::Options<'_> {
        resolve::Options {
            config_file: Some(&self.file),
            base: self.base.as_deref(),
            platform: &self.platform,
            openapi_schema: self.openapi_schema.as_deref(),
            lock_mode: self.locks.mode(),
            network: true,
            base_flags: self.base_flags.flags(),
        }
    }

    pub fn secrets(&self) -> Vec<Secret> {
        self.secrets.iter().map(|s| s.0.clone()).collect()
    }

    pub fn compression(&self) -> Compression {
        match self.compression {
            CompressionArg::Gzip => Compression::gzip(),
            CompressionArg::Zstd => Compression::zstd(),
        }
    }
}

/// Cog's base-image flags (reference 5.2); each is "not given" unless set on the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BaseFlagArgs {
    /// Use Cog's pre-built base image (`r8.im/cog-base:<tag>`, or on `$COG_REGISTRY_HOST`)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub use_cog_base_image: Option<bool>,
    /// Use Nvidia CUDA base image for GPU models: 'auto' (default), 'true' or 'false' (the CPU
    /// default base)
    #[arg(long, value_enum, value_name = "auto|true|false")]
    pub use_cuda_base_image: Option<UseCudaBaseImage>,
}

impl BaseFlagArgs {
    pub fn flags(&self) -> BaseFlags {
        BaseFlags {
            use_cog_base_image: self.use_cog_base_image,
            use_cuda_base_image: self.use_cuda_base_image,
        }
    }
}

/// One `--secret` (Docker's syntax: `id=ID,src=PATH`, `id=ID,env=VAR`; `source=` and `type=`
/// accepted).
#[derive(Debug, Clone)]
pub struct SecretArg(Secret);

fn parse_secret(spec: &str) -> Result<SecretArg, String> {
    let (mut id, mut file, mut env, mut kind) = (None, None, None, None);
    for part in spec.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!(
                "{part:?} is not KEY=VALUE (expected id=ID,src=PATH or id=ID,env=VAR)"
            ));
        };
        match key.trim() {
            "id" => id = Some(value.to_string()),
            "src" | "source" => file = Some(value.to_string()),
            "env" => env = Some(value.to_string()),
            "type" => kind = Some(value.to_string()),
            other => return Err(format!("unknown key {other:?} (expected id, src or env)")),
        }
    }
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return Err("no id= (expected id=ID,src=PATH or id=ID,env=VAR)".into());
    };
    let source = match (kind.as_deref(), file, env) {
        (Some("file") | None, Some(path), None) => SecretSource::File(path.into()),
        (Some("env") | None, None, Some(var)) => SecretSource::Env(var),
        // Docker: with neither, a variable named like the id, else a file of that name.
        (None, None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
        (None, None, None) => SecretSource::File(id.clone().into()),
        (Some(other), _, _) if other != "file" && other != "env" => {
            return Err(format!("type={other}: expected type=file or type=env"));
        }
        _ => return Err("give one of src=PATH or env=VAR".into()),
    };
    Ok(SecretArg(Secret { id, source }))
}

/// What to do with the lock files next to cog.yaml.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LockArgs {
    /// Resolve Python requirements and system packages again, ignoring the lock files
    #[arg(long, conflicts_with_all = ["locked", "frozen"])]
    pub upgrade: bool,
    /// Fail instead of updating a lock file that is missing or out of date (for CI)
    #[arg(long, conflicts_with = "frozen")]
    pub locked: bool,
    /// Use the lock files as they are, without checking them against cog.yaml and the requirements
    #[arg(long)]
    pub frozen: bool,
}

impl LockArgs {
    pub fn mode(&self) -> LockMode {
        if self.upgrade {
            LockMode::Upgrade
        } else if self.locked {
            LockMode::Locked
        } else if self.frozen {
            LockMode::Frozen
        } else {
            LockMode::Update
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

/// How to talk to registries.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to registries (the target, and a --base image) even when they are not
    /// on loopback
    #[arg(long)]
    pub insecure: bool,
    /// Blobs uploaded at once
    #[arg(long, env = "COG_PUSH_CONCURRENCY", default_value_t = DEFAULT_PUSH_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Manifest format: OCI (as built) or Docker schema2
    #[arg(long, value_enum, default_value = "oci")]
    pub manifest_format: FormatArg,
}

impl Default for RegistryArgs {
    /// What `cog run`, `serve` and `exec` use: defaults, with `$COG_PUSH_CONCURRENCY` when set.
    fn default() -> Self {
        Self {
            insecure: false,
            concurrency: std::env::var("COG_PUSH_CONCURRENCY")
                .ok()
                .and_then(|v| parse_concurrency(&v).ok())
                .unwrap_or(DEFAULT_PUSH_CONCURRENCY),
            manifest_format: FormatArg::Oci,
        }
    }
}

impl RegistryArgs {
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            insecure: self.insecure,
            push_concurrency: self.concurrency,
            ..ClientOptions::default()
        }
    }

    pub fn manifest_format(&self) -> ManifestFormat {
        match self.manifest_format {
            FormatArg::Oci => ManifestFormat::Oci,
            FormatArg::Docker => ManifestFormat::Docker,
        }
    }
}

/// 1 to 256 blobs at once.
fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a number from 1 to 256")),
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Oci,
    Docker,
}

/// Flags shared by `run`, `serve` and `exec`: which project, how to build it, where to run it.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// The name of the config file
    #[arg(short = 'f', long = "file", default_value = "cog.yaml")]
    pub file: String,
    /// Set type of build progress output: 'auto' (default), 'tty', 'plain', 'quiet' or 'json'
    #[arg(long, value_enum)]
    pub progress: Option<ProgressMode>,
    /// Base image: a registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE
    #[arg(long)]
    pub base: Option<String>,
    /// GPU devices to add to the container, in the same format as `docker run --gpus` (all,
    /// N, device=ID[,ID]); default: all when cog.yaml sets `build.gpu`. podman gets them as
    /// CDI devices (nvidia.com/gpu=...)
    #[arg(long, value_parser = GpuRequest::parse)]
    pub gpus: Option<GpuRequest>,
    /// Where to run: docker, podman or runc (no daemon). Default: Docker when its daemon
    /// answers, else podman, else runc
    #[arg(long, value_enum, env = "COG_RUNTIME")]
    pub runtime: Option<RuntimeKind>,
    #[command(flatten)]
    pub base_flags: BaseFlagArgs,
    #[command(flatten)]
    pub base_image: BaseImageFlags,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_as_docker_does() {
        let file = parse_secret("id=tok,src=/run/tok").unwrap().0;
        assert_eq!(file.id, "tok");
        assert!(
            matches!(file.source, SecretSource::File(p) if p == std::path::Path::new("/run/tok"))
        );
        let env = parse_secret("type=env,id=tok,env=TOKEN").unwrap().0;
        assert!(matches!(env.source, SecretSource::Env(v) if v == "TOKEN"));
        for bad in [
            "src=/x",
            "id=a,src=/x,env=Y",
            "id=a,nope=1",
            "id=a,type=ssh,src=/x",
            "id",
        ] {
            assert!(parse_secret(bad).is_err(), "{bad}");
        }
    }
}
