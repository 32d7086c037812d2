//! A real PEP 517 frontend for the tests: the build environment is installed with
//! `wheels::install::install_to_dir`, and the host's `python3` runs the backend's hooks in the
//! source tree (the root crate does the same inside the image's sandbox). It counts its calls.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use wheels::install::{InstallOptions, install_to_dir};
use wheels::{BuildFailure, BuildRequest, SdistBuilder};

/// The hook runner: `python3 -c HOOKS <hook> <backend> <out dir> <result file>`.
const HOOKS: &str = r#"
import importlib, json, os, sys, zipfile
hook, spec, out, result = sys.argv[1:5]
module, _, attr = spec.partition(":")
backend = importlib.import_module(module)
for part in filter(None, attr.split(".")):
    backend = getattr(backend, part)
if hook == "get_requires_for_build_wheel":
    f = getattr(backend, hook, None)
    value = json.dumps(f({}) if f else [])
elif hook == "prepare_metadata_for_build_wheel":
    f = getattr(backend, hook, None)
    if f:
        value = open(os.path.join(out, f(out, {}), "METADATA")).read()
    else:
        name = backend.build_wheel(out, {})
        with zipfile.ZipFile(os.path.join(out, name)) as z:
            meta = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            value = z.read(meta[0]).decode()
else:
    value = os.path.join(out, backend.build_wheel(out, {}))
open(result, "w").write(value)
"#;

#[derive(Debug, Default)]
pub struct HostBuilder {
    /// Calls of each hook.
    pub build_requires: AtomicUsize,
    pub prepare_metadata: AtomicUsize,
    pub build_wheel: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("{hook} failed (exit {status}); log tail:\n{tail}")]
pub struct HookFailed {
    hook: String,
    status: i32,
    tail: String,
}

impl HostBuilder {
    pub fn wheels_built(&self) -> usize {
        self.build_wheel.load(Ordering::SeqCst)
    }

    pub fn metadata_prepared(&self) -> usize {
        self.prepare_metadata.load(Ordering::SeqCst)
    }

    fn run(request: &BuildRequest<'_>, hook: &str, out: &Path) -> Result<String, BuildFailure> {
        let env = tempfile::tempdir()?;
        let mut options = InstallOptions::python_slim("3.11");
        options.site_packages = PathBuf::from("/env/site-packages");
        options.prefix = PathBuf::from("/env");
        options.python = PathBuf::from("/usr/bin/env python3");
        options.client = request.client.clone();
        install_to_dir(request.build_requirements, &options, env.path())?;
        let mut path = vec![env.path().join("env/site-packages")];
        path.extend(
            request
                .build_system
                .backend_path
                .iter()
                .map(|p| request.source_tree.join(p)),
        );
        let result = env.path().join("result");
        let output = Command::new("python3")
            .args(["-c", HOOKS, hook, &request.build_system.build_backend])
            .arg(out)
            .arg(&result)
            .current_dir(request.source_tree)
            .env("PYTHONPATH", std::env::join_paths(path)?)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()?;
        if !output.status.success() {
            let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
            log.push_str(&String::from_utf8_lossy(&output.stderr));
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(10)..].join("\n");
            return Err(Box::new(HookFailed {
                hook: hook.to_string(),
                status: output.status.code().unwrap_or(-1),
                tail,
            }));
        }
        Ok(std::fs::read_to_string(result)?)
    }
}

impl SdistBuilder for HostBuilder {
    fn build_requires(&self, request: &BuildRequest<'_>) -> Result<Vec<String>, BuildFailure> {
        self.build_requires.fetch_add(1, Ordering::SeqCst);
        let out = tempfile::tempdir()?;
        let text = Self::run(request, "get_requires_for_build_wheel", out.path())?;
        Ok(serde_json::from_str(&text)?)
    }

    fn prepare_metadata(&self, request: &BuildRequest<'_>) -> Result<String, BuildFailure> {
        self.prepare_metadata.fetch_add(1, Ordering::SeqCst);
        let out = tempfile::tempdir()?;
        Self::run(request, "prepare_metadata_for_build_wheel", out.path())
    }

    fn build_wheel(
        &self,
        request: &BuildRequest<'_>,
        out_dir: &Path,
    ) -> Result<PathBuf, BuildFailure> {
        self.build_wheel.fetch_add(1, Ordering::SeqCst);
        Ok(PathBuf::from(Self::run(request, "build_wheel", out_dir)?))
    }
}

/// A small PEP 517 backend, served as a wheel: it reads `tiny.json` in the source tree
/// (`name`, `version`, `requires`, `build-requires`, `fail`) and packs `<name>/*.py`.
pub const TINY_BACKEND: &str = r#"
import base64, hashlib, json, os, sys, zipfile

def _cfg():
    with open("tiny.json") as f:
        return json.load(f)

def _dist(c):
    return c["name"].replace("-", "_") + "-" + c["version"]

def _metadata(c):
    lines = ["Metadata-Version: 2.1", "Name: " + c["name"], "Version: " + c["version"]]
    lines += ["Requires-Dist: " + r for r in c.get("requires", [])]
    return "\n".join(lines) + "\n"

def get_requires_for_build_wheel(config_settings=None):
    return _cfg().get("build-requires", [])

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    c = _cfg()
    d = os.path.join(metadata_directory, _dist(c) + ".dist-info")
    os.makedirs(d)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write(_metadata(c))
    return _dist(c) + ".dist-info"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    c = _cfg()
    print("tinybackend: building", c["name"])
    if c.get("fail"):
        print("error: " + c["fail"], file=sys.stderr)
        sys.exit(1)
    for r in c.get("build-requires", []):
        __import__(r.replace("-", "_"))
    name = c["name"].replace("-", "_")
    filename = _dist(c) + "-" + c.get("tag", "py3-none-any") + ".whl"
    info = _dist(c) + ".dist-info"
    files = {}
    for root, _, names in os.walk(name):
        for n in sorted(names):
            if n.endswith(".py"):
                p = os.path.join(root, n)
                files[p] = open(p, "rb").read()
    files[info + "/METADATA"] = _metadata(c).encode()
    files[info + "/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = ""
    for p, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += "%s,sha256=%s,%d\n" % (p, digest, len(data))
    record += info + "/RECORD,,\n"
    files[info + "/RECORD"] = record.encode()
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as z:
        for p, data in files.items():
            z.writestr(p, data)
    return filename
"#;
