//! Secrets for `mounts: [{type: secret, id, target}]`, given at build time
//! (`cog build --secret id=ID,src=PATH` or `env=VAR`). A secret's bytes go into a private file
//! (mode 0600, in a 0700 directory outside the cache: `$XDG_RUNTIME_DIR` or the temp dir) only
//! for as long as its step runs; the file is bind-mounted read-only at the target. The bytes
//! never reach a cache key, a layer, a log or the cache directory.
use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use super::bundle::FileMount;
use super::error::SandboxError;
use super::{RunStep, SecretMount};

/// The largest secret accepted (BuildKit's limit is 500 KiB).
pub const MAX_SECRET_BYTES: u64 = 1 << 20;

/// A secret given at build time.
#[derive(Clone)]
pub struct Secret {
    pub id: String,
    pub source: SecretSource,
}

/// Where a secret's bytes come from.
#[derive(Clone)]
pub enum SecretSource {
    /// A file (`--secret id=ID,src=PATH`), read when its step runs.
    File(PathBuf),
    /// An environment variable of this process (`--secret id=ID,env=VAR`).
    Env(String),
    /// Bytes already in memory.
    Bytes(Vec<u8>),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            SecretSource::File(path) => format!("file {}", path.display()),
            SecretSource::Env(var) => format!("env {var}"),
            SecretSource::Bytes(bytes) => format!("{} bytes", bytes.len()),
        };
        write!(f, "Secret({:?}, {source})", self.id)
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "File({})", path.display()),
            SecretSource::Env(var) => write!(f, "Env({var})"),
            SecretSource::Bytes(bytes) => write!(f, "Bytes(<{} bytes>)", bytes.len()),
        }
    }
}

/// Where the secret id `id` is mounted when no target is given (Docker's default).
pub fn default_target(id: &str) -> String {
    format!("/run/secrets/{id}")
}

/// Checks that every mount of every step names a given secret.
pub(crate) fn check_ids(
    steps: &[RunStep],
    first: usize,
    secrets: &[Secret],
) -> Result<(), SandboxError> {
    for (index, step) in steps.iter().enumerate().skip(first) {
        for mount in &step.mounts {
            if !secrets.iter().any(|s| s.id == mount.id) {
                return Err(SandboxError::UnknownSecret {
                    step: index,
                    command: step.command.clone(),
                    id: mount.id.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The secrets of one step, written out; removed when dropped.
pub(crate) struct StepSecrets {
    dir: Option<tempfile::TempDir>,
    pub mounts: Vec<FileMount>,
}

impl StepSecrets {
    pub(crate) fn write(mounts: &[SecretMount], secrets: &[Secret]) -> Result<Self, SandboxError> {
        if mounts.is_empty() {
            return Ok(StepSecrets {
                dir: None,
                mounts: Vec::new(),
            });
        }
        let (parent, dir) = private_dir()?;
        let dir_error = |source| SandboxError::SecretsDir {
            path: parent.clone(),
            source,
        };
        let mut files = Vec::new();
        for (index, mount) in mounts.iter().enumerate() {
            let secret = secrets
                .iter()
                .find(|s| s.id == mount.id)
                .expect("ids are checked before any step runs");
            let bytes = read(secret)?;
            let path = dir.path().join(format!("secret-{index}"));
            let mut file = tempfile::Builder::new()
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .tempfile_in(dir.path())
                .map_err(dir_error)?;
            file.write_all(&bytes).map_err(dir_error)?;
            file.persist(&path).map_err(|e| dir_error(e.error))?;
            files.push(FileMount {
                source: path.to_string_lossy().into_owned(),
                target: mount.target.clone(),
            });
        }
        Ok(StepSecrets {
            dir: Some(dir),
            mounts: files,
        })
    }
}

impl Drop for StepSecrets {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            tracing::warn!("cannot remove a secrets directory: {e}");
        }
    }
}

fn read(secret: &Secret) -> Result<Vec<u8>, SandboxError> {
    let bytes = match &secret.source {
        SecretSource::Bytes(bytes) => bytes.clone(),
        SecretSource::Env(var) => std::env::var_os(var)
            .map(|v| std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
            .ok_or_else(|| SandboxError::SecretEnv {
                id: secret.id.clone(),
                var: var.clone(),
            })?,
        SecretSource::File(path) => {
            let read_error = |source| SandboxError::SecretRead {
                id: secret.id.clone(),
                path: path.clone(),
                source,
            };
            let size = fs_err::metadata(path).map_err(read_error)?.len();
            check_size(secret, size)?;
            fs_err::read(path).map_err(read_error)?
        }
    };
    check_size(secret, bytes.len() as u64)?;
    Ok(bytes)
}

fn check_size(secret: &Secret, size: u64) -> Result<(), SandboxError> {
    if size > MAX_SECRET_BYTES {
        return Err(SandboxError::SecretTooLarge {
            id: secret.id.clone(),
            size,
            limit: MAX_SECRET_BYTES,
        });
    }
    Ok(())
}

/// A new private directory (0700) in `$XDG_RUNTIME_DIR` (a per-user tmpfs) when usable, else
/// in the temp directory.
fn private_dir() -> Result<(PathBuf, tempfile::TempDir), SandboxError> {
    let make = |parent: &PathBuf| {
        let dir = tempfile::Builder::new()
            .prefix("cog-secrets-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(parent)?;
        // Whatever the umask did: nobody else may look in.
        fs_err::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok::<_, std::io::Error>(dir)
    };
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && let Ok(dir) = make(&runtime)
    {
        return Ok((runtime, dir));
    }
    let temp = std::env::temp_dir();
    match make(&temp) {
        Ok(dir) => Ok((temp, dir)),
        Err(source) => Err(SandboxError::SecretsDir { path: temp, source }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mount(id: &str) -> SecretMount {
        SecretMount {
            id: id.into(),
            target: default_target(id),
        }
    }

    #[test]
    fn secrets_live_in_private_files_only_while_held() {
        let secrets = vec![Secret {
            id: "token".into(),
            source: SecretSource::Bytes(b"s3cr3t".to_vec()),
        }];
        let written = StepSecrets::write(&[mount("token")], &secrets).unwrap();
        let path = PathBuf::from(&written.mounts[0].source);
        assert_eq!(written.mounts[0].target, "/run/secrets/token");
        assert_eq!(fs_err::read(&path).unwrap(), b"s3cr3t");
        let mode = |p: &std::path::Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        drop(written);
        assert!(!path.exists() && !path.parent().unwrap().exists());
    }

    #[test]
    fn unknown_ids_missing_variables_and_huge_secrets_are_errors() {
        let step = RunStep {
            mounts: vec![mount("nope")],
            ..RunStep::new("true")
        };
        let err = check_ids(&[step], 0, &[]).unwrap_err().to_string();
        assert!(
            err.contains("\"nope\"") && err.contains("--secret id=nope"),
            "{err}"
        );
        let secrets = vec![Secret {
            id: "nope".into(),
            source: SecretSource::Env("COG_TEST_SURELY_UNSET_VARIABLE".into()),
        }];
        let err = StepSecrets::write(&[mount("nope")], &secrets)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("COG_TEST_SURELY_UNSET_VARIABLE"), "{err}");
        let big = vec![Secret {
            id: "big".into(),
            source: SecretSource::Bytes(vec![0; (MAX_SECRET_BYTES + 1) as usize]),
        }];
        let err = StepSecrets::write(&[mount("big")], &big)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("at most"), "{err}");
        assert_eq!(
            format!("{:?}", big[0]),
            format!("Secret(\"big\", {} bytes)", MAX_SECRET_BYTES + 1)
        );
    }
}
