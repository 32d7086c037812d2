//! Source distributions and every pip requirement form through `cog build`, as a user sees it:
//! a model whose requirements mix a pure-Python sdist-only package from PyPI (`fire==0.6.0`), a
//! C extension built from its sdist with `build-essential` in `system_packages`, a bare wheel
//! URL and a `name @ URL` from a local HTTP server, a git requirement from a local repository,
//! `--find-links` to a local directory (served as a flat page), in a requirements file that starts with a BOM. The
//! image imports them all (`cog exec` with runc); a second build builds no sdist. And the
//! errors: a `--hash` mismatch, an sdist whose build fails (its log tail in the error), a
//! missing git ref.
//!
//! Needs runc, python3 and git on the host, and PyPI and the Debian archive (through the
//! machine's proxy: `COG_CA_CERT` is set from its certificates, as tests/build_run.rs does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{failed, ok, require_tool};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// Makes the fixtures in `argv[1]`: `http/` (two wheels), `links/` (the C extension's sdist, a
/// wheel, a failing sdist), `repo/` (a git-able package source).
const FIXTURES: &str = r##"
import base64, hashlib, io, os, sys, tarfile, zipfile
root = sys.argv[1]

def wheel(dir, name, version, body):
    dist = f"{name}-{version}"
    files = {f"{name}/__init__.py": body.encode()}
    info = f"{dist}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = ""
    for p, data in files.items():
        d = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{p},sha256={d},{len(data)}\n"
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    os.makedirs(dir, exist_ok=True)
    with zipfile.ZipFile(os.path.join(dir, f"{dist}-py3-none-any.whl"), "w") as z:
        for p, data in files.items():
            z.writestr(p, data)

def sdist(dir, name, version, files):
    os.makedirs(dir, exist_ok=True)
    top = f"{name}-{version}"
    files = dict(files)
    files["PKG-INFO"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    with tarfile.open(os.path.join(dir, f"{top}.tar.gz"), "w:gz") as t:
        for p, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{p}")
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))

SETUPTOOLS = '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
wheel(os.path.join(root, "http"), "bare", "1.0", "WHO = 'bare'\n")
wheel(os.path.join(root, "http"), "named", "2.0", "WHO = 'named'\n")
links = os.path.join(root, "links")
wheel(links, "flwheel", "3.0", "WHO = 'flwheel'\n")
sdist(links, "cext", "1.0", {
    "pyproject.toml": SETUPTOOLS + '[project]\nname = "cext"\nversion = "1.0"\n',
    "setup.py": "from setuptools import Extension, setup\nsetup(ext_modules=[Extension('cext', ['cext.c'])])\n",
    "cext.c": """#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(6 * 7); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "The answer."}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_cext(void) { return PyModule_Create(&module); }
""",
})
sdist(links, "broken", "1.0", {
    "pyproject.toml": SETUPTOOLS,
    "setup.py": "import sys\nprint('compiling broken: BROKEN-MARKER-7f3a', file=sys.stderr)\nsys.exit(3)\n",
})
repo = os.path.join(root, "repo")
os.makedirs(os.path.join(repo, "gitpkg"))
open(os.path.join(repo, "pyproject.toml"), "w").write(SETUPTOOLS + '[project]\nname = "gitpkg"\nversion = "0.3"\n')
open(os.path.join(repo, "gitpkg", "__init__.py"), "w").write("WHO = 'gitpkg'\n")
"##;

/// A static HTTP server on loopback (`python3 -m http.server`), stopped when dropped.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn serve(dir: &Path) -> Self {
        let port = common::registry::free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "http.server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fixtures, made fresh under `root`, and the git repository committed and tagged `v1`.
fn fixtures(root: &Path) -> PathBuf {
    let dir = root.join("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    common::run("python3", &["-c", FIXTURES, dir.to_str().unwrap()]);
    let repo = dir.join("repo");
    let git = |args: &[&str]| {
        let mut all = vec![
            "-C",
            repo.to_str().unwrap(),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
        ];
        all.extend_from_slice(args);
        common::run("git", &all);
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "gitpkg 0.3"]);
    git(&["tag", "v1"]);
    dir
}

/// `COG_CA_CERT`: this machine's extra certificates (the HTTPS proxy's), when it has any.
fn ca_cert_dir() -> Option<&'static str> {
    let dir = "/usr/local/share/ca-certificates";
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "crt"))
        .then_some(dir)
}

fn cog(project: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(COG);
    command
        .current_dir(project)
        .args(args)
        .env("COG_CACHE_DIR", cache)
        .env("NO_COLOR", "1")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(dir) = ca_cert_dir() {
        command.env("COG_CA_CERT", dir);
    }
    command.output().unwrap()
}

fn write_project(dir: &Path, system_packages: &[&str], requirements: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let packages = if system_packages.is_empty() {
        String::new()
    } else {
        let items: Vec<String> = system_packages
            .iter()
            .map(|p| format!("    - {p}\n"))
            .collect();
        format!("  system_packages:\n{}", items.concat())
    };
    std::fs::write(
        dir.join("cog.yaml"),
        format!(
            "build:\n  python_version: \"3.11\"\n{packages}  python_requirements: requirements.txt\npredict: \"predict.py:Predictor\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("predict.py"),
        "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return 'ok'\n",
    )
    .unwrap();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(requirements.as_bytes());
    std::fs::write(dir.join("requirements.txt"), bytes).unwrap();
}

/// In the line the build prints before running a backend's hooks (`get_requires_for_build_wheel,
/// build_wheel (…)` or `build_wheel (…)`), never in a metadata-only one.
const BUILT: &str = " build_wheel (";

#[test]
fn every_requirement_form_builds_and_the_image_imports_them_all() {
    require_tool("runc", "runc");
    require_tool("git", "git");
    let work = tempfile::tempdir().unwrap();
    let fixtures = fixtures(work.path());
    let http = HttpServer::serve(&fixtures);
    let repo = fixtures.join("repo");
    // Cog rejects a local `--find-links` directory in requirements.txt (config/requirements.rs,
    // Cog's ParseLocalArtifactRequirement): the directory is served as a flat page instead.
    let requirements = format!(
        "# every form at once\n--find-links {links}\nfire==0.6.0\ncext==1.0\nflwheel\n{bare}\nnamed @ {named}\ngit+file://{repo}@v1\n",
        links = http.url("links/"),
        bare = http.url("http/bare-1.0-py3-none-any.whl"),
        named = http.url("http/named-2.0-py3-none-any.whl"),
        repo = repo.display(),
    );
    let project = work.path().join("project");
    // As in Cog: the compiler alone; the Python headers come with it (resolve::system).
    write_project(&project, &["build-essential"], &requirements);
    let cache = work.path().join("cache");

    let first = cog(
        &project,
        &cache,
        &["build", "-t", "sdists", "--progress", "plain"],
    );
    let digest = ok(&first);
    let log = String::from_utf8_lossy(&first.stderr);
    for built in ["fire 0.6.0", "cext 1.0", "gitpkg"] {
        assert!(
            log.lines().any(|l| l.contains(built) && l.contains(BUILT)),
            "{built} was not built from source:\n{log}"
        );
    }

    // The lock pins what makes each reproducible.
    let lock = std::fs::read_to_string(project.join("cog-requirements.lock.json")).unwrap();
    let commit = common::run("git", &["-C", repo.to_str().unwrap(), "rev-parse", "HEAD"]);
    assert!(lock.contains(commit.trim()), "{lock}");
    assert!(lock.contains("bare-1.0-py3-none-any.whl"), "{lock}");

    let check = "import fire, cext, flwheel, bare, named, gitpkg; \
                 print(fire.__name__, cext.answer(), flwheel.WHO, bare.WHO, named.WHO, gitpkg.WHO)";
    let run = cog(
        &project,
        &cache,
        &["exec", "--runtime", "runc", "python", "-c", check],
    );
    assert_eq!(ok(&run), "fire 42 flwheel bare named gitpkg");

    // Built again from a clean project lock-wise (the lock is kept): no sdist is built.
    let second = cog(
        &project,
        &cache,
        &["build", "-t", "sdists", "--progress", "plain"],
    );
    assert_eq!(ok(&second), digest);
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(!log.contains(BUILT), "a second build built again:\n{log}");
    // Without the lock, resolution reads the cached metadata and wheels: still no build.
    std::fs::remove_file(project.join("cog-requirements.lock.json")).unwrap();
    let third = cog(
        &project,
        &cache,
        &["build", "-t", "sdists", "--progress", "plain"],
    );
    assert_eq!(ok(&third), digest);
    let log = String::from_utf8_lossy(&third.stderr);
    assert!(
        !log.contains(BUILT),
        "a build without the lock built again:\n{log}"
    );
}

#[test]
fn a_hash_mismatch_a_failing_build_and_a_missing_ref_say_what_went_wrong() {
    require_tool("runc", "runc");
    require_tool("git", "git");
    let work = tempfile::tempdir().unwrap();
    let fixtures = fixtures(work.path());
    let http = HttpServer::serve(&fixtures);
    let cache = work.path().join("cache");
    let attempt = |name: &str, requirements: &str| {
        let project = work.path().join(name);
        write_project(&project, &[], requirements);
        failed(&cog(
            &project,
            &cache,
            &["build", "-t", "bad", "--progress", "plain"],
        ))
    };

    let zeros = "0".repeat(64);
    let err = attempt(
        "hash",
        &format!(
            "named @ {} --hash=sha256:{zeros}\n",
            http.url("http/named-2.0-py3-none-any.whl")
        ),
    );
    assert!(err.contains("named") && err.contains(&zeros), "{err}");

    let err = attempt(
        "broken",
        &format!("--find-links {}\nbroken==1.0\n", http.url("links/")),
    );
    assert!(
        err.contains("broken 1.0") && err.contains("BROKEN-MARKER-7f3a"),
        "{err}"
    );
    let tail = err
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("last lines") && !tail.is_empty(),
        "the error ends with the log tail:\n{err}"
    );

    let err = attempt(
        "ref",
        &format!(
            "git+file://{}@no-such-ref\n",
            fixtures.join("repo").display()
        ),
    );
    assert!(err.contains("no-such-ref"), "{err}");
}
