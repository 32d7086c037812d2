//! Building source distributions (and git checkouts) into wheels inside the image's own
//! environment, as `pip install` does in Cog's Dockerfile: [`SandboxSdistBuilder`] implements
//! the `wheels` crate's [`SdistBuilder`] by running the PEP 517 hooks with the image's Python,
//! over the base image's layers plus the `build.system_packages` layer (so `build-essential`
//! there gives a compiler), in the sandbox (`crate::sandbox::run_command`: read-write binds,
//! no layer captured).
//!
//! In the container: the source tree at [`SRC`] (the working directory), the isolated build
//! environment (the resolved build requirements, installed with
//! [`wheels::install::install_to_dir`]) at [`ENV`], the hook runner and its result at
//! [`WORK`], the wheel directory at [`OUT`]. The backend runs with `python -S` (the image's
//! site-packages are not on `sys.path`, as in pip's isolated builds), the environment's
//! site-packages added with its `.pth` files, `backend-path` first, no network, and Cog's
//! `CFLAGS` (see [`CFLAGS`]). Each output line goes to the reporter; a failing hook's error
//! ends with its last lines.
//!
//! The environment (the base and its system packages) is made when the first hook runs, once,
//! by the [`ImageEnvironment`] given: a project whose packages are all wheels never makes it
//! at resolve time.
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use layers::{BlobStore, Compression, LayerInfo};
use report::SharedReporter;
use wheels::install::{InstallOptions, install_to_dir};
use wheels::{BuildFailure, BuildRequest, RequiresThenWheel, SdistBuilder};

use crate::base::{BaseImage, Fetcher, fetch_base_with, system_package_layers};
use crate::oci::Platform;
use crate::plan::PythonLayout;
use crate::sandbox::{self, Bind, RunStep, SandboxError, SandboxOptions};

/// The source tree in the container (the hooks' working directory).
pub const SRC: &str = "/cog-build/src";
/// The isolated build environment's prefix in the container.
pub const ENV: &str = "/cog-build/env";
/// The hook runner and its result file.
pub const WORK: &str = "/cog-build/work";
/// Where `build_wheel` writes the wheel.
pub const OUT: &str = "/cog-build/out";

/// Cog's `ENV CFLAGS` around `pip install` (`-O3 -funroll-loops -fno-strict-aliasing -flto
/// -S`), without `-S`: with it gcc writes assembly where setuptools expects an object file and
/// every C extension's link fails (`file format not recognized`).
pub const CFLAGS: &str = "-O3 -funroll-loops -fno-strict-aliasing -flto";

/// The hook runner: `python -S hooks.py HOOK BACKEND SITE_PACKAGES RESULT [BACKEND_PATH...]`.
/// `requires_then_wheel` answers `get_requires_for_build_wheel` and, when the environment has
/// every distribution named, runs `build_wheel` in a fresh interpreter (as pip's hooks each
/// get one), all in one sandbox run.
const HOOKS: &str = r#"import importlib, json, os, re, site, subprocess, sys, zipfile
hook, spec, env_site, result = sys.argv[1:5]
if hook == "requires_then_wheel":
    import importlib.metadata as md
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
    have = {norm(d.metadata["Name"] or "") for d in md.distributions(path=[env_site])}
    subprocess.run([sys.executable, "-S", __file__, "get_requires_for_build_wheel"] + sys.argv[2:], check=True)
    requires = json.load(open(result, encoding="utf-8"))
    names = [re.match(r"\s*([A-Za-z0-9._-]*)", r).group(1) for r in requires]
    wheel = None
    if all(n and norm(n) in have for n in names):
        subprocess.run([sys.executable, "-S", __file__, "build_wheel"] + sys.argv[2:], check=True)
        wheel = open(result, encoding="utf-8").read()
    with open(result, "w", encoding="utf-8") as f:
        json.dump({"requires": requires, "wheel": wheel}, f)
    sys.exit(0)
backend_path = sys.argv[5:]
sys.path[:] = [p for p in sys.path if p and p != os.path.dirname(os.path.abspath(__file__))]
site.addsitedir(env_site)
sys.path[:0] = backend_path
module, _, attr = spec.partition(":")
backend = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
out = os.environ["COG_BUILD_OUT"]
if hook == "get_requires_for_build_wheel":
    f = getattr(backend, hook, None)
    value = json.dumps(list(f({})) if f else [])
elif hook == "prepare_metadata_for_build_wheel":
    f = getattr(backend, hook, None)
    if f:
        value = open(os.path.join(out, f(out, {}), "METADATA"), encoding="utf-8").read()
    else:
        name = backend.build_wheel(out, {})
        with zipfile.ZipFile(os.path.join(out, name)) as z:
            meta = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            value = z.read(meta[0]).decode()
else:
    value = backend.build_wheel(out, {})
with open(result, "w", encoding="utf-8") as f:
    f.write(value)
"#;

/// The image's environment source builds run in: its layers (blobs in the store) and the
/// environment variables its commands see.
#[derive(Debug, Clone)]
pub struct Environment {
    pub layers: Vec<LayerInfo>,
    pub env: Vec<(String, String)>,
}

/// Makes the [`Environment`] when a build first needs it.
pub trait ImageEnvironment: Send + Sync + fmt::Debug {
    fn environment(&self) -> Result<Environment, String>;
}

/// The base image plus its `build.system_packages` layer, fetched and installed into the store
/// (both cached by content: the build later reuses them).
#[derive(Debug)]
pub struct BaseWithPackages {
    pub fetcher: Fetcher,
    pub handle: tokio::runtime::Handle,
    pub base: BaseImage,
    pub system_packages: Option<debian::Lock>,
    pub platform: Platform,
    pub compression: Compression,
    /// Set over the base's own (cog.yaml's `environment`).
    pub env: Vec<(String, String)>,
}

impl BaseWithPackages {
    async fn make(&self) -> Result<Environment, String> {
        let base = fetch_base_with(&self.fetcher, &self.base, &self.platform)
            .await
            .map_err(|e| error_text(&e))?;
        let mut layers = base.layers.clone();
        if let Some(lock) = &self.system_packages {
            let installed = system_package_layers(
                &[lock],
                &base,
                &self.fetcher.store,
                self.compression,
                false,
                &self.fetcher.reporter,
            )
            .await
            .map_err(|e| format!("build.system_packages: {}", error_text(&e)))?;
            layers.extend(installed.into_iter().map(|l| l.info));
        }
        let mut env = base_env(base.config.as_ref());
        for (name, value) in &self.env {
            env.retain(|(k, _)| k != name);
            env.push((name.clone(), value.clone()));
        }
        Ok(Environment { layers, env })
    }
}

impl ImageEnvironment for BaseWithPackages {
    fn environment(&self) -> Result<Environment, String> {
        // On a thread of its own: the caller may be on a runtime's thread.
        std::thread::scope(|s| {
            s.spawn(|| self.handle.block_on(self.make()))
                .join()
                .unwrap_or_else(|_| Err("preparing the image's environment panicked".into()))
        })
    }
}

/// The base config's `Env`, as pairs.
fn base_env(config: Option<&crate::oci::ImageConfig>) -> Vec<(String, String)> {
    config
        .and_then(|c| c.config.as_ref())
        .and_then(|c| c.env.as_ref())
        .map(|env| {
            env.iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// An error and its causes, on one line.
fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs the PEP 517 hooks in the image's environment (see the module docs).
pub struct SandboxSdistBuilder {
    store: BlobStore,
    source: Arc<dyn ImageEnvironment>,
    environment: OnceLock<Result<Environment, String>>,
    python: PythonLayout,
    options: SandboxOptions,
    reporter: SharedReporter,
    /// Installed build environments, by their wheels: `(dir holding ENV, in use)`.
    envs: Mutex<HashMap<String, Arc<tempfile::TempDir>>>,
    scratch: PathBuf,
}

impl fmt::Debug for SandboxSdistBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxSdistBuilder")
            .field("source", &self.source)
            .field("python", &self.python.interpreter)
            .finish_non_exhaustive()
    }
}

/// A hook that failed; the text ends with its last lines of output.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{hook} exited with code {exit_code}; its last lines:\n{}", .tail.join("\n"))]
    Failed {
        hook: &'static str,
        exit_code: i32,
        tail: Vec<String>,
    },
    #[error("the image's environment for source builds: {0}")]
    Environment(String),
    #[error("{hook} in the sandbox")]
    Sandbox {
        hook: &'static str,
        #[source]
        source: SandboxError,
    },
    #[error("{hook} gave no usable result: {reason}")]
    Result { hook: &'static str, reason: String },
}

impl SandboxSdistBuilder {
    /// A builder whose hooks run over `source`'s environment with the interpreter of
    /// `python`; scratch directories under the store's root.
    pub fn new(
        store: BlobStore,
        source: Arc<dyn ImageEnvironment>,
        python: PythonLayout,
        options: SandboxOptions,
        reporter: SharedReporter,
    ) -> Self {
        let scratch = store.root().join("source-builds");
        Self {
            store,
            source,
            environment: OnceLock::new(),
            python,
            options,
            reporter,
            envs: Mutex::new(HashMap::new()),
            scratch,
        }
    }

    fn environment(&self) -> Result<&Environment, HookError> {
        self.environment
            .get_or_init(|| self.source.environment())
            .as_ref()
            .map_err(|e| HookError::Environment(e.clone()))
    }

    fn tempdir(&self, prefix: &str) -> std::io::Result<tempfile::TempDir> {
        fs_err::create_dir_all(&self.scratch)?;
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.scratch)
    }

    /// The build environment for `request`, installed once per set of wheels; the returned
    /// directory holds `ENV`'s content.
    fn build_env(
        &self,
        request: &BuildRequest<'_>,
    ) -> Result<Arc<tempfile::TempDir>, BuildFailure> {
        let key = wheels::build::env_key(request.build_requirements);
        if let Some(dir) = lock(&self.envs).get(&key) {
            return Ok(dir.clone());
        }
        let dir = self.tempdir("env-")?;
        let mut options = InstallOptions::python_slim(&self.python.version);
        options.site_packages = PathBuf::from(ENV).join("site-packages");
        options.prefix = PathBuf::from(ENV);
        options.python = PathBuf::from(&self.python.interpreter);
        options.client = request.client.clone();
        install_to_dir(request.build_requirements, &options, dir.path())?;
        let dir = Arc::new(dir);
        // Another thread may have installed the same one meanwhile: either serves.
        Ok(lock(&self.envs).entry(key).or_insert(dir).clone())
    }

    /// Runs `hook`; its result file's text.
    fn run(
        &self,
        request: &BuildRequest<'_>,
        hook: &'static str,
        out: &Path,
    ) -> Result<String, BuildFailure> {
        let environment = self.environment()?;
        let env_dir = self.build_env(request)?;
        let work = self.tempdir("hook-")?;
        fs_err::write(work.path().join("hooks.py"), HOOKS)?;
        let site = format!("{ENV}/site-packages");
        let mut args = vec![
            self.python.interpreter.clone(),
            "-S".into(),
            format!("{WORK}/hooks.py"),
            hook.into(),
            request.build_system.build_backend.clone(),
            site.clone(),
            format!("{WORK}/result"),
        ];
        args.extend(
            request
                .build_system
                .backend_path
                .iter()
                .map(|p| format!("{SRC}/{p}")),
        );
        let command = args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let step = RunStep {
            command,
            env: hook_env(&environment.env, &site),
            workdir: SRC.to_string(),
            mounts: Vec::new(),
            network: false,
        };
        let binds = [
            Bind {
                source: request.source_tree.to_path_buf(),
                target: SRC.into(),
            },
            Bind {
                source: env_dir.path().join(ENV.trim_start_matches('/')),
                target: ENV.into(),
            },
            Bind {
                source: work.path().to_path_buf(),
                target: WORK.into(),
            },
            Bind {
                source: out.to_path_buf(),
                target: OUT.into(),
            },
        ];
        fs_err::create_dir_all(&binds[1].source)?;
        let label = format!("build {}", request.what);
        let hooks = match hook {
            "requires_then_wheel" => "get_requires_for_build_wheel, build_wheel",
            other => other,
        };
        self.reporter.message(&format!(
            "{label}: {hooks} ({})",
            request.build_system.build_backend
        ));
        let reporter = self.reporter.clone();
        let ran = sandbox::run_command(
            &self.store,
            &environment.layers,
            &step,
            &binds,
            &self.options,
            &mut |line| reporter.output(&label, line),
        );
        match ran {
            Ok(()) => {}
            Err(SandboxError::CommandFailed {
                exit_code, tail, ..
            }) => {
                return Err(Box::new(HookError::Failed {
                    hook,
                    exit_code,
                    tail,
                }));
            }
            Err(source) => return Err(Box::new(HookError::Sandbox { hook, source })),
        }
        fs_err::read_to_string(work.path().join("result")).map_err(|e| {
            Box::new(HookError::Result {
                hook,
                reason: e.to_string(),
            }) as BuildFailure
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The hooks' environment: the image's, with the build environment's scripts first on `PATH`,
/// its site-packages on `PYTHONPATH` (for the processes a backend starts), Cog's `CFLAGS`,
/// bytecode kept in the environment (none written into the source tree), and where the wheel
/// goes.
fn hook_env(image: &[(String, String)], site: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = image.to_vec();
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(sandbox::DEFAULT_PATH, |(_, v)| v.as_str())
        .to_string();
    let set = [
        ("PATH", format!("{ENV}/bin:{path}")),
        ("PYTHONPATH", site.to_string()),
        ("CFLAGS", CFLAGS.to_string()),
        // Bytecode goes to the build environment, never into the source tree: the backend's
        // modules are compiled once per environment, not in every hook's interpreter.
        ("PYTHONPYCACHEPREFIX", format!("{ENV}/pycache")),
        ("PYTHONNOUSERSITE", "1".to_string()),
        ("PIP_NO_INDEX", "1".to_string()),
        ("COG_BUILD_OUT", OUT.to_string()),
    ];
    for (name, value) in set {
        env.retain(|(k, _)| k != name);
        env.push((name.to_string(), value));
    }
    env
}

/// `text` as one word for `/bin/sh`.
fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

impl SdistBuilder for SandboxSdistBuilder {
    fn build_requires(&self, request: &BuildRequest<'_>) -> Result<Vec<String>, BuildFailure> {
        let out = self.tempdir("out-")?;
        let text = self.run(request, "get_requires_for_build_wheel", out.path())?;
        Ok(serde_json::from_str(&text)?)
    }

    fn prepare_metadata(&self, request: &BuildRequest<'_>) -> Result<String, BuildFailure> {
        let out = self.tempdir("out-")?;
        self.run(request, "prepare_metadata_for_build_wheel", out.path())
    }

    fn build_wheel(
        &self,
        request: &BuildRequest<'_>,
        out_dir: &Path,
    ) -> Result<PathBuf, BuildFailure> {
        let name = self.run(request, "build_wheel", out_dir)?;
        Ok(out_dir.join(wheel_name("build_wheel", &name)?))
    }

    fn requires_then_wheel(
        &self,
        request: &BuildRequest<'_>,
        out_dir: &Path,
    ) -> Result<RequiresThenWheel, BuildFailure> {
        #[derive(serde::Deserialize)]
        struct Answer {
            requires: Vec<String>,
            wheel: Option<String>,
        }
        const HOOK: &str = "get_requires_for_build_wheel + build_wheel";
        let text = self.run(request, "requires_then_wheel", out_dir)?;
        let answer: Answer = serde_json::from_str(&text).map_err(|e| HookError::Result {
            hook: HOOK,
            reason: e.to_string(),
        })?;
        let wheel = match answer.wheel {
            Some(name) => Some(out_dir.join(wheel_name(HOOK, &name)?)),
            None => None,
        };
        Ok(RequiresThenWheel {
            requires: answer.requires,
            wheel,
        })
    }
}

/// The file name `build_wheel` returned, refused unless it is a plain name.
fn wheel_name<'a>(hook: &'static str, name: &'a str) -> Result<&'a str, HookError> {
    let name = name.trim();
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(HookError::Result {
            hook,
            reason: format!("{name:?} is not a file name"),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(
            shell_quote("setuptools.build_meta:__legacy__"),
            "setuptools.build_meta:__legacy__"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn hooks_see_the_build_environment_first_and_cogs_cflags() {
        let env = hook_env(
            &[
                ("PATH".into(), "/usr/bin".into()),
                ("CFLAGS".into(), "-g".into()),
                ("LANG".into(), "C.UTF-8".into()),
            ],
            "/cog-build/env/site-packages",
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/cog-build/env/bin:/usr/bin"));
        assert_eq!(get("CFLAGS"), Some(CFLAGS));
        assert_eq!(get("LANG"), Some("C.UTF-8"));
        assert_eq!(get("PYTHONPATH"), Some("/cog-build/env/site-packages"));
        assert_eq!(env.iter().filter(|(k, _)| k == "CFLAGS").count(), 1);
        assert_eq!(get("PYTHONPYCACHEPREFIX"), Some("/cog-build/env/pycache"));
    }
}
