//! Source distributions, direct URLs, git repositories and find-links against a local index,
//! built by a real PEP 517 frontend (the host's python3 running the backends' hooks).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::builder::{HostBuilder, TINY_BACKEND};
use common::server::{Server, wheel};
use layers::BlobStore;
use wheels::index::config::PipConfig;
use wheels::install::{InstallOptions, layers};
use wheels::requirements::{ParseOptions, parse_file};
use wheels::resolve::{ResolveOptions, resolve};
use wheels::{Arch, Error, Libc, Lock, Requirements, Target};

const ANY: &str = "py3-none-any";
const TINY_PYPROJECT: &str =
    "[build-system]\nrequires = [\"tinybackend\"]\nbuild-backend = \"tinybackend\"\n";

fn target() -> Target {
    Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 36)).unwrap()
}

fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

/// A local index with the tiny backend, and a builder.
struct Fixture {
    server: Server,
    builder: Arc<HostBuilder>,
    cache: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let server = Server::start();
        publish_wheel(
            &server,
            "tinybackend",
            "1.0",
            &[("tinybackend/__init__.py", TINY_BACKEND.as_bytes())],
            &[],
        );
        Self {
            server,
            builder: Arc::new(HostBuilder::default()),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn options(&self) -> ResolveOptions {
        ResolveOptions {
            cache_dir: Some(self.cache.path().join("cache")),
            pip_config: Some(PipConfig::default()),
            attempts: 2,
            backoff: Duration::from_millis(10),
            builder: Some(self.builder.clone()),
            ..ResolveOptions::default()
        }
    }

    fn reqs(&self, text: &str) -> Requirements {
        format!("--index-url {}\n{text}", self.server.index_url())
            .parse()
            .unwrap()
    }

    fn resolve(&self, text: &str) -> wheels::Result<Lock> {
        resolve(&self.reqs(text), &target(), &self.options())
    }

    fn install_options(&self) -> InstallOptions {
        let mut install = InstallOptions::python_slim("3.11");
        install.client = self.options().client_options(&self.reqs(""));
        install.builder = Some(self.builder.clone());
        install
    }

    /// Installs the lock into a fresh store; the files of its layers.
    fn install(&self, lock: &Lock) -> wheels::Result<BTreeMap<String, Vec<u8>>> {
        let store = BlobStore::open(tempfile::tempdir().unwrap().keep()).unwrap();
        let built = layers(lock, &self.install_options(), &store)?;
        let mut files = BTreeMap::new();
        for l in &built {
            let blob = std::fs::File::open(store.blob_path(&l.info.digest)).unwrap();
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                files.insert(path, data);
            }
        }
        Ok(files)
    }
}

const SITE: &str = "usr/local/lib/python3.11/site-packages";

fn publish_wheel(
    server: &Server,
    name: &str,
    version: &str,
    files: &[(&str, &[u8])],
    requires: &[&str],
) -> String {
    let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, b)| (*p, *b, 0o644)).collect();
    let (f, bytes) = wheel(name, version, ANY, &files, requires, None);
    let sha = server.put_file(&f, bytes);
    server.put_project_json(name, &[(&f, &sha, None, false)]);
    f
}

/// A `name-version.tar.gz` sdist with a `name-version/` top directory.
fn sdist(name: &str, version: &str, files: &[(&str, &str)]) -> (String, Vec<u8>) {
    let top = format!("{}-{version}", name.replace('-', "_"));
    let mut out = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, format!("{top}/{path}"), data.as_bytes())
                .unwrap();
        }
        t.into_inner().unwrap().finish().unwrap();
    }
    (format!("{top}.tar.gz"), out)
}

/// The files of a tiny-backend project.
fn tiny_project(
    name: &str,
    version: &str,
    json: &str,
    pkg_info: Option<&str>,
) -> Vec<(String, String)> {
    let module = name.replace('-', "_");
    let mut files = vec![
        ("pyproject.toml".to_string(), TINY_PYPROJECT.to_string()),
        ("tiny.json".to_string(), json.to_string()),
        (
            format!("{module}/__init__.py"),
            format!("NAME = {name:?}\nVERSION = {version:?}\n"),
        ),
    ];
    if let Some(p) = pkg_info {
        files.push(("PKG-INFO".to_string(), p.to_string()));
    }
    files
}

fn publish_sdist(
    server: &Server,
    name: &str,
    version: &str,
    files: &[(String, String)],
) -> (String, String) {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (f, bytes) = sdist(name, version, &refs);
    let sha = server.put_file(&f, bytes);
    server.put_project_json(name, &[(&f, &sha, None, false)]);
    (f, sha)
}

/// `statpkg` (static PKG-INFO 2.2), `dynpkg` (metadata from the backend), `dep` (a wheel).
fn publish_sources(server: &Server) {
    publish_wheel(server, "dep", "1.0", &[("dep/__init__.py", b"")], &[]);
    publish_sdist(
        server,
        "statpkg",
        "1.0",
        &tiny_project(
            "statpkg",
            "1.0",
            r#"{"name": "statpkg", "version": "1.0", "requires": ["dep"]}"#,
            Some("Metadata-Version: 2.2\nName: statpkg\nVersion: 1.0\nRequires-Dist: dep\n"),
        ),
    );
    publish_sdist(
        server,
        "dynpkg",
        "2.0",
        &tiny_project(
            "dynpkg",
            "2.0",
            r#"{"name": "dynpkg", "version": "2.0", "requires": ["dep>=1"]}"#,
            Some("Metadata-Version: 2.1\nName: dynpkg\nVersion: 2.0\n"),
        ),
    );
}

#[test]
fn sdist_only_packages_resolve_build_once_and_layer() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    let lock = fx.resolve("statpkg\ndynpkg\n").unwrap();
    assert_eq!(lock.pins(), "dep==1.0\ndynpkg==2.0\nstatpkg==1.0\n");
    // Static PKG-INFO is read without the backend; dynpkg's metadata comes from the wheel
    // its backend built right away (in the run that asked for its build requirements).
    assert_eq!(fx.builder.metadata_prepared(), 0);
    assert_eq!(fx.builder.wheels_built(), 1);
    let stat = lock.packages.iter().find(|p| p.name == "statpkg").unwrap();
    assert_eq!(stat.filename, "statpkg-1.0.tar.gz");
    assert!(stat.sha256.is_some());
    let build = stat.build.as_ref().expect("statpkg is built from source");
    assert_eq!(build.build_system.build_backend, "tinybackend");
    assert_eq!(
        build
            .requirements
            .iter()
            .map(|p| format!("{}=={}", p.name, p.version))
            .collect::<Vec<_>>(),
        ["tinybackend==1.0"]
    );
    assert!(
        lock.packages
            .iter()
            .find(|p| p.name == "dep")
            .unwrap()
            .build
            .is_none()
    );

    // Prepared metadata is cached: a new resolution asks the backend nothing.
    let again = fx.resolve("statpkg\ndynpkg\n").unwrap();
    assert_eq!(again.packages, lock.packages);
    assert_eq!(fx.builder.metadata_prepared(), 0);
    assert_eq!(fx.builder.wheels_built(), 1);

    // Installing builds each source once (dynpkg's wheel is already built); the built wheels
    // are cached.
    let files = fx.install(&lock).unwrap();
    assert_eq!(fx.builder.wheels_built(), 2);
    assert_eq!(
        files[&format!("{SITE}/statpkg/__init__.py")],
        b"NAME = \"statpkg\"\nVERSION = \"1.0\"\n"
    );
    assert!(files.contains_key(&format!("{SITE}/dynpkg-2.0.dist-info/RECORD")));
    assert_eq!(
        files[&format!("{SITE}/dynpkg-2.0.dist-info/INSTALLER")],
        b"cog\n"
    );
    let second = fx.install(&lock).unwrap();
    assert_eq!(
        fx.builder.wheels_built(),
        2,
        "a second install builds nothing"
    );
    assert_eq!(second, files);
}

#[test]
fn a_failing_build_reports_its_log() {
    let fx = Fixture::new();
    publish_sdist(
        &fx.server,
        "failpkg",
        "1.0",
        &tiny_project(
            "failpkg",
            "1.0",
            r#"{"name": "failpkg", "version": "1.0", "fail": "the compiler exploded"}"#,
            Some("Metadata-Version: 2.4\nName: failpkg\nVersion: 1.0\n"),
        ),
    );
    let lock = fx.resolve("failpkg\n").unwrap();
    let e = fx.install(&lock).unwrap_err();
    assert!(matches!(e, Error::Build { .. }), "{e:?}");
    let text = chain(&e);
    assert!(
        text.starts_with(
            "building a wheel (get_requires_for_build_wheel, build_wheel) for failpkg 1.0 (failpkg-1.0.tar.gz) failed: build_wheel failed (exit 1); log tail:\n"
        ),
        "{text}"
    );
    assert!(text.contains("tinybackend: building failpkg"), "{text}");
    assert!(text.ends_with("error: the compiler exploded"), "{text}");
}

#[test]
fn backend_build_requirements_join_the_environment() {
    let fx = Fixture::new();
    publish_wheel(
        &fx.server,
        "helper-mod",
        "1.0",
        &[("helper_mod.py", b"")],
        &[],
    );
    publish_sdist(
        &fx.server,
        "needy",
        "1.0",
        &tiny_project(
            "needy",
            "1.0",
            r#"{"name": "needy", "version": "1.0", "build-requires": ["helper-mod"]}"#,
            Some("Metadata-Version: 2.2\nName: needy\nVersion: 1.0\n"),
        ),
    );
    let lock = fx.resolve("needy\n").unwrap();
    // build_wheel imports helper_mod: it is there only if get_requires_for_build_wheel was honoured.
    let files = fx.install(&lock).unwrap();
    assert!(files.contains_key(&format!("{SITE}/needy/__init__.py")));
    assert!(
        fx.builder
            .build_requires
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1
    );
}

#[test]
fn the_backends_build_requirements_are_asked_once_for_metadata_and_wheel() {
    let fx = Fixture::new();
    publish_wheel(
        &fx.server,
        "helper-mod",
        "1.0",
        &[("helper_mod.py", b"")],
        &[],
    );
    // No PKG-INFO, and the backend asks for a distribution its environment lacks: so no wheel
    // in the first run; the metadata comes from prepare_metadata_for_build_wheel, then the
    // wheel from build_wheel; get_requires_for_build_wheel answered the first and is kept for
    // the second.
    publish_sdist(
        &fx.server,
        "dynamic",
        "1.0",
        &tiny_project(
            "dynamic",
            "1.0",
            r#"{"name": "dynamic", "version": "1.0", "build-requires": ["helper-mod"]}"#,
            None,
        ),
    );
    let lock = fx.resolve("dynamic\n").unwrap();
    let files = fx.install(&lock).unwrap();
    assert!(files.contains_key(&format!("{SITE}/dynamic/__init__.py")));
    let count = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(count(&fx.builder.prepare_metadata), 1);
    assert_eq!(count(&fx.builder.build_wheel), 1);
    assert_eq!(count(&fx.builder.build_requires), 1);
}

#[test]
fn without_a_builder_sources_are_errors_that_say_where() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    let mut options = fx.options();
    options.builder = None;
    let project = tempfile::tempdir().unwrap();
    let req = project.path().join("requirements.txt");
    std::fs::write(
        &req,
        format!(
            "--index-url {}\nstatpkg @ {}/files/statpkg-1.0.tar.gz\n",
            fx.server.index_url(),
            fx.server.base
        ),
    )
    .unwrap();
    let reqs = parse_file(&req, &ParseOptions::default()).unwrap();
    let e = resolve(&reqs, &target(), &options).unwrap_err();
    assert_eq!(
        chain(&e),
        format!(
            "{}:2: `statpkg @ {}/files/statpkg-1.0.tar.gz`: `statpkg @ {}/files/statpkg-1.0.tar.gz` (a source archive) must be built from source; pip would build it, but cog-rs was given no source builder here",
            req.display(),
            fx.server.base,
            fx.server.base
        )
    );
}

#[test]
fn direct_urls_wheels_and_archives() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    let (wf, wb) = wheel(
        "tool",
        "3.0",
        ANY,
        &[("tool/__init__.py", b"T = 3\n", 0o644)],
        &["dep"],
        None,
    );
    let tool_sha = fx.server.put_file(&wf, wb);
    let (bf, bb) = wheel("bare", "0.5", ANY, &[("bare.py", b"", 0o644)], &[], None);
    fx.server.put_file(&bf, bb);
    // A GitHub-style archive whose file name says nothing: the name comes from its metadata.
    let files = tiny_project(
        "zipped",
        "0.3",
        r#"{"name": "zipped", "version": "0.3"}"#,
        None,
    );
    let mut zip_bytes = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut zip_bytes);
        for (p, data) in &files {
            z.start_file(
                format!("zipped-main/{p}"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            z.write_all(data.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }
    fx.server.put(
        "/archive/main.zip",
        "application/zip",
        zip_bytes.into_inner(),
    );
    let base = &fx.server.base;
    let lock = fx
        .resolve(&format!(
            "tool @ {base}/files/{wf}#sha256={tool_sha}\n{base}/files/{bf}\n{base}/archive/main.zip\n\
             statpkg @ {base}/files/statpkg-1.0.tar.gz\n"
        ))
        .unwrap();
    assert_eq!(
        lock.pins(),
        "bare==0.5\ndep==1.0\nstatpkg==1.0\ntool==3.0\nzipped==0.3\n"
    );
    for p in &lock.packages {
        assert!(p.sha256.is_some(), "{} has no hash in the lock", p.name);
    }
    let zipped = lock.packages.iter().find(|p| p.name == "zipped").unwrap();
    assert_eq!(zipped.url, format!("{base}/archive/main.zip"));
    assert!(zipped.build.is_some());
    let files = fx.install(&lock).unwrap();
    let direct: serde_json::Value =
        serde_json::from_slice(&files[&format!("{SITE}/tool-3.0.dist-info/direct_url.json")])
            .unwrap();
    assert_eq!(direct["url"], format!("{base}/files/{wf}"));
    assert_eq!(
        direct["archive_info"]["hashes"]["sha256"],
        tool_sha.as_str()
    );
    // A built sdist records the sdist's hash, as pip does.
    let direct: serde_json::Value =
        serde_json::from_slice(&files[&format!("{SITE}/zipped-0.3.dist-info/direct_url.json")])
            .unwrap();
    assert_eq!(
        direct["archive_info"]["hashes"]["sha256"].as_str(),
        zipped.sha256.as_deref()
    );
    assert!(files.contains_key(&format!("{SITE}/zipped/__init__.py")));

    // A wrong `#sha256=` or `--hash` on a direct URL is refused.
    let e = fx
        .resolve(&format!(
            "tool @ {base}/files/{wf}#sha256={}\n",
            "0".repeat(64)
        ))
        .unwrap_err();
    assert!(matches!(e.innermost(), Error::HashMismatch { .. }), "{e:?}");
    let e = fx
        .resolve(&format!(
            "{base}/files/statpkg-1.0.tar.gz --hash=sha256:{}\n",
            "1".repeat(64)
        ))
        .unwrap_err();
    assert!(matches!(e.innermost(), Error::HashMismatch { .. }), "{e:?}");
    // A wheel for another platform, named directly.
    let (mf, mb) = wheel(
        "maconly",
        "1.0",
        "cp311-cp311-macosx_11_0_arm64",
        &[],
        &[],
        None,
    );
    fx.server.put_file(&mf, mb);
    let e = fx.resolve(&format!("{base}/files/{mf}\n")).unwrap_err();
    assert!(
        chain(&e).contains("maconly-1.0-cp311-cp311-macosx_11_0_arm64.whl is built for cp311-cp311-macosx_11_0_arm64, which the target"),
        "{}",
        chain(&e)
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with a static-metadata project in `py/` and a backend-metadata one at the root.
fn git_repo(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir.join("py/gitpkg")).unwrap();
    git(dir, &["init", "--quiet", "-b", "main"]);
    std::fs::write(
        dir.join("py/pyproject.toml"),
        format!(
            "{TINY_PYPROJECT}[project]\nname = \"gitpkg\"\nversion = \"0.1\"\ndependencies = [\"dep\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("py/tiny.json"),
        r#"{"name": "gitpkg", "version": "0.1", "requires": ["dep"]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("py/gitpkg/__init__.py"), "V = 1\n").unwrap();
    for (p, data) in tiny_project(
        "rootpkg",
        "5.0",
        r#"{"name": "rootpkg", "version": "5.0"}"#,
        None,
    ) {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "one"]);
    git(dir, &["tag", "v1"]);
    let first = git(dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("py/gitpkg/__init__.py"), "V = 2\n").unwrap();
    git(dir, &["commit", "--quiet", "-am", "two"]);
    let second = git(dir, &["rev-parse", "HEAD"]);
    (first, second)
}

#[test]
fn git_requirements_are_pinned_to_commits() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    let repo = tempfile::tempdir().unwrap();
    let (first, second) = git_repo(repo.path());
    let url = format!("git+file://{}", repo.path().display());
    let lock = fx
        .resolve(&format!("{url}@v1#subdirectory=py\n-e {url}#egg=rootpkg\n"))
        .unwrap();
    assert_eq!(lock.pins(), "dep==1.0\ngitpkg==0.1\nrootpkg==5.0\n");
    let gitpkg = lock.packages.iter().find(|p| p.name == "gitpkg").unwrap();
    let g = gitpkg.build.as_ref().unwrap().git.as_ref().unwrap();
    assert_eq!(g.commit, first);
    assert_eq!(g.requested_revision.as_deref(), Some("v1"));
    assert_eq!(g.subdirectory.as_deref(), Some("py"));
    let rootpkg = lock.packages.iter().find(|p| p.name == "rootpkg").unwrap();
    assert_eq!(
        rootpkg.build.as_ref().unwrap().git.as_ref().unwrap().commit,
        second
    );
    // gitpkg's [project] table is static; rootpkg's metadata comes from its backend (the
    // wheel it built).
    assert_eq!(fx.builder.metadata_prepared(), 0);
    assert_eq!(fx.builder.wheels_built(), 1);

    let files = fx.install(&lock).unwrap();
    assert_eq!(files[&format!("{SITE}/gitpkg/__init__.py")], b"V = 1\n");
    let direct: serde_json::Value =
        serde_json::from_slice(&files[&format!("{SITE}/gitpkg-0.1.dist-info/direct_url.json")])
            .unwrap();
    assert_eq!(
        direct,
        serde_json::json!({
            "url": format!("file://{}", repo.path().display()),
            "vcs_info": {"vcs": "git", "commit_id": first, "requested_revision": "v1"},
            "subdirectory": "py",
        })
    );
    // The lock keeps the commit after the branch moves on.
    std::fs::write(repo.path().join("py/gitpkg/__init__.py"), "V = 3\n").unwrap();
    git(repo.path(), &["commit", "--quiet", "-am", "three"]);
    let files = fx.install(&lock).unwrap();
    assert!(files[&format!("{SITE}/rootpkg/__init__.py")].starts_with(b"NAME"));

    // A revision the repository does not have.
    let project = tempfile::tempdir().unwrap();
    let req = project.path().join("requirements.txt");
    std::fs::write(&req, format!("{url}@no-such-tag#egg=gitpkg\n")).unwrap();
    let reqs = parse_file(&req, &ParseOptions::default()).unwrap();
    let e = resolve(&reqs, &target(), &fx.options()).unwrap_err();
    assert!(
        matches!(e.innermost(), Error::GitRevNotFound { .. }),
        "{e:?}"
    );
    assert_eq!(
        chain(&e),
        format!(
            "{}:1: `{url}@no-such-tag#egg=gitpkg`: file://{} has no branch, tag or commit `no-such-tag` (pip would fail to check it out too)",
            req.display(),
            repo.path().display()
        )
    );
    // --hash cannot be checked on a repository, as pip says.
    let e = fx
        .resolve(&format!(
            "{url}#egg=gitpkg --hash=sha256:{}\n",
            "a".repeat(64)
        ))
        .unwrap_err();
    assert!(chain(&e).contains("Can't verify hashes"), "{}", chain(&e));
}

#[test]
fn find_links_directories_and_pages() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    let project = tempfile::tempdir().unwrap();
    let house = project.path().join("wheelhouse");
    std::fs::create_dir(&house).unwrap();
    let (lf, lb) = wheel(
        "localwheel",
        "1.2",
        ANY,
        &[("localwheel.py", b"", 0o644)],
        &[],
        None,
    );
    std::fs::write(house.join(&lf), lb).unwrap();
    let (sf, sb) = sdist(
        "housesrc",
        "0.9",
        &tiny_project(
            "housesrc",
            "0.9",
            r#"{"name": "housesrc", "version": "0.9"}"#,
            Some("Metadata-Version: 2.2\nName: housesrc\nVersion: 0.9\n"),
        )
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect::<Vec<_>>(),
    );
    std::fs::write(house.join(&sf), sb).unwrap();
    // A flat page of links with pre-releases only, asked for with `--pre -f` on one line.
    let (nf, nb) = wheel(
        "nightly",
        "0.2.dev5",
        ANY,
        &[("nightly.py", b"", 0o644)],
        &[],
        None,
    );
    fx.server
        .put(&format!("/wheels/{nf}"), "application/octet-stream", nb);
    fx.server.put(
        "/wheels/",
        "text/html",
        format!("<html><body><a href=\"{nf}\">{nf}</a></body></html>").into_bytes(),
    );
    let req = project.path().join("requirements.txt");
    std::fs::write(
        &req,
        format!(
            "\u{feff}--index-url {}\n--pre -f {}/wheels/\n-f ./wheelhouse\nlocalwheel\nhousesrc\nnightly\n",
            fx.server.index_url(),
            fx.server.base
        ),
    )
    .unwrap();
    let reqs = parse_file(&req, &ParseOptions::default()).unwrap();
    let lock = resolve(&reqs, &target(), &fx.options()).unwrap();
    assert_eq!(
        lock.pins(),
        "housesrc==0.9\nlocalwheel==1.2\nnightly==0.2.dev5\n"
    );
    for p in &lock.packages {
        assert!(
            p.sha256.is_some(),
            "{}: the lock pins every file's hash",
            p.name
        );
    }
    let files = fx.install(&lock).unwrap();
    assert!(files.contains_key(&format!("{SITE}/housesrc/__init__.py")));
    assert!(files.contains_key(&format!("{SITE}/nightly.py")));
}

#[test]
fn binary_choices_as_pip_makes_them() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    // `both` 1.0 has a wheel and an sdist; `newer` 2.0 only an sdist, 1.0 a wheel.
    let (wf, wb) = wheel(
        "both",
        "1.0",
        ANY,
        &[("both/__init__.py", b"W = 1\n", 0o644)],
        &[],
        None,
    );
    let wsha = fx.server.put_file(&wf, wb);
    let (sf, sb) = sdist(
        "both",
        "1.0",
        &tiny_project(
            "both",
            "1.0",
            r#"{"name": "both", "version": "1.0"}"#,
            Some("Metadata-Version: 2.2\nName: both\nVersion: 1.0\n"),
        )
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect::<Vec<_>>(),
    );
    let ssha = fx.server.put_file(&sf, sb);
    fx.server.put_project_json(
        "both",
        &[(&wf, &wsha, None, false), (&sf, &ssha, None, false)],
    );
    let (nwf, nwb) = wheel("newer", "1.0", ANY, &[], &[], None);
    let nwsha = fx.server.put_file(&nwf, nwb);
    let (nsf, nsb) = sdist(
        "newer",
        "2.0",
        &tiny_project(
            "newer",
            "2.0",
            r#"{"name": "newer", "version": "2.0"}"#,
            Some("Metadata-Version: 2.2\nName: newer\nVersion: 2.0\n"),
        )
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect::<Vec<_>>(),
    );
    let nssha = fx.server.put_file(&nsf, nsb);
    fx.server.put_project_json(
        "newer",
        &[(&nwf, &nwsha, None, false), (&nsf, &nssha, None, false)],
    );

    let lock = fx.resolve("both\nnewer\n").unwrap();
    let by_name =
        |lock: &Lock, n: &str| lock.packages.iter().find(|p| p.name == n).cloned().unwrap();
    assert!(by_name(&lock, "both").build.is_none());
    assert_eq!(by_name(&lock, "newer").version, "2.0");
    let lock = fx.resolve("--no-binary both\nboth\n").unwrap();
    assert_eq!(by_name(&lock, "both").filename, sf);
    assert!(by_name(&lock, "both").build.is_some());
    let lock = fx.resolve("--prefer-binary\nnewer\n").unwrap();
    assert_eq!(by_name(&lock, "newer").version, "1.0");
    let lock = fx.resolve("--only-binary=:all:\nnewer\n").unwrap();
    assert_eq!(by_name(&lock, "newer").version, "1.0");
    let e = fx.resolve("--only-binary :all:\nnewer==2.0\n").unwrap_err();
    assert!(
        chain(&e)
            .contains("its source distribution (newer-2.0.tar.gz) is refused by --only-binary"),
        "{}",
        chain(&e)
    );
    let e = fx.resolve("--no-binary dep\ndep\n").unwrap_err();
    assert!(
        chain(&e).contains("--no-binary asks for one"),
        "{}",
        chain(&e)
    );
}

#[test]
fn hash_checking_mode_as_pip() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    let lock = fx.resolve("dynpkg\n").unwrap();
    let sha = |n: &str| {
        lock.packages
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .sha256
            .clone()
            .unwrap()
    };
    let (dyn_sha, dep_sha) = (sha("dynpkg"), sha("dep"));
    // Every package needs a hash once one has.
    let e = fx
        .resolve(&format!("dynpkg==2.0 --hash=sha256:{dyn_sha}\n"))
        .unwrap_err();
    assert!(matches!(e, Error::Hashes(_)), "{e:?}");
    assert!(
        chain(&e).ends_with(&format!("    dep==1.0 --hash=sha256:{dep_sha}")),
        "{}",
        chain(&e)
    );
    // And must be pinned.
    let e = fx
        .resolve(&format!("dynpkg --hash=sha256:{dyn_sha}\n"))
        .unwrap_err();
    assert!(chain(&e).contains("must have their versions pinned with ==. These do not:\n    dynpkg (from requirements.txt:2)"), "{}", chain(&e));
    let ok = fx
        .resolve(&format!(
            "dynpkg==2.0 --hash=sha256:{dyn_sha}\ndep==1.0 --hash=sha256:{dep_sha}\n"
        ))
        .unwrap();
    assert_eq!(ok.pins(), "dep==1.0\ndynpkg==2.0\n");
    // A wrong hash on an sdist fails its download.
    let e = fx
        .resolve(&format!(
            "statpkg==1.0 --hash=sha256:{}\ndep==1.0 --hash=sha256:{dep_sha}\n",
            "b".repeat(64)
        ))
        .unwrap_err();
    assert!(
        chain(&e).contains("no file of `statpkg` 1.0 matches the --hash values"),
        "{}",
        chain(&e)
    );
}

#[test]
fn build_requirements_resolve_to_wheels() {
    let fx = Fixture::new();
    let system =
        wheels::BuildSystem::from_pyproject(Some(TINY_PYPROJECT), "pyproject.toml").unwrap();
    let env = wheels::resolve_build_requirements(&system, &fx.reqs(""), &target(), &fx.options())
        .unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].name, "tinybackend");
    assert!(env[0].sha256.is_some());
    let dir = tempfile::tempdir().unwrap();
    let mut options = fx.install_options();
    options.site_packages = PathBuf::from("/env/site");
    wheels::install::install_to_dir(&env, &options, dir.path()).unwrap();
    assert!(
        dir.path()
            .join("env/site/tinybackend/__init__.py")
            .is_file()
    );
    assert!(
        dir.path()
            .join("env/site/tinybackend-1.0.dist-info/RECORD")
            .is_file()
    );
}

/// `git daemon` serving a repository: the `git://` transport, a shallow fetch by commit.
struct Daemon {
    child: std::process::Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git_daemon(base: &Path) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // `git-daemon` itself, not `git daemon`: killing the `git` wrapper would leave it running.
    let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = String::from_utf8(exec_path.stdout).unwrap();
    let mut daemon = Daemon {
        child: Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        port,
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return daemon;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = daemon.child.kill();
    panic!("git daemon did not start on port {port}");
}

#[test]
fn git_daemon_repositories() {
    let fx = Fixture::new();
    publish_sources(&fx.server);
    let base = tempfile::tempdir().unwrap();
    let (first, _) = git_repo(&base.path().join("repo"));
    let daemon = git_daemon(base.path());
    let url = format!("git+git://127.0.0.1:{}/repo", daemon.port);
    let lock = fx
        .resolve(&format!("gitpkg @ {url}@{first}#subdirectory=py\n"))
        .unwrap();
    let gitpkg = lock.packages.iter().find(|p| p.name == "gitpkg").unwrap();
    assert_eq!(
        gitpkg.build.as_ref().unwrap().git.as_ref().unwrap().commit,
        first
    );
    let files = fx.install(&lock).unwrap();
    assert_eq!(files[&format!("{SITE}/gitpkg/__init__.py")], b"V = 1\n");
    let e = fx
        .resolve(&format!("{url}@missing#egg=gitpkg\n"))
        .unwrap_err();
    assert!(
        matches!(e.innermost(), Error::GitRevNotFound { .. }),
        "{e:?}"
    );
}
