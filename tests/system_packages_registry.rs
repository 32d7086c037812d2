//! `build.system_packages` on a base pulled from a registry: a Debian bookworm minbase image
//! (made from the real archive by the `debian` crate) is served by the real registry, `cog build
//! --base` resolves the packages against the suite its `/etc/os-release` names and installs them
//! on its dpkg database; the image then runs in Docker. A busybox base gets a clear error. And
//! the same on the default base (assembled from packages, no registry).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cog::oci::{self, ImageConfig};
use common::registry::{TestRegistry, busybox_image, layout_of, temp_store};
use common::{assert_warm_then_no_cache, failed, ok, require_tool, run};

const COG: &str = env!("CARGO_BIN_EXE_cog");

/// The mirror apt on this machine uses, else the default (deb.debian.org).
fn machine_mirror() -> Option<String> {
    let text = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok()?;
    debian::archive::mirror_from_deb822(&text)
}

fn cog(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(COG);
    cmd.args(args)
        .current_dir(dir)
        .env("COG_CACHE_DIR", cache)
        .env("DOCKER_CONFIG", cache.join("docker-config"))
        .env_remove("SOURCE_DATE_EPOCH");
    if let Some(mirror) = machine_mirror() {
        cmd.env("COG_APT_MIRROR", mirror);
    }
    cmd.output().unwrap()
}

/// A Debian bookworm minbase image (Essential + required + apt, as `debootstrap
/// --variant=minbase`) pushed to `registry` as `debian:bookworm`.
fn push_debian_base(registry: &TestRegistry) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = debian::ArchiveConfig::debian("bookworm", "amd64");
    if let Some(mirror) = machine_mirror() {
        config = config.with_mirror(&mirror);
    }
    let archive = rt.block_on(debian::Archive::fetch(config)).unwrap();
    let lock = debian::resolve(
        &archive,
        &debian::minbase_names(&archive.index),
        b"",
        "amd64",
    )
    .unwrap();
    let (dir, store) = temp_store();
    let opts = debian::InstallOptions {
        new_root: true,
        ..debian::InstallOptions::default()
    };
    let base = rt
        .block_on(debian::install(&lock, b"", &store, &opts))
        .unwrap();
    let mut image_config = ImageConfig::new_linux_amd64();
    let container = image_config.container_config_mut();
    container.env = Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ]);
    container.cmd = Some(vec!["bash".to_string()]);
    let image = oci::assemble(&store, &image_config, &[base.layer], BTreeMap::new()).unwrap();
    let layout = layout_of(&store, &image.image_ref(), dir.path(), "bookworm");
    registry.push_layout(&layout, "bookworm", "debian:bookworm", false);
    registry.reference("debian:bookworm")
}

/// A project asking for `packages`.
fn project(packages: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir_all(&dir).unwrap();
    let list: Vec<String> = packages.iter().map(|p| format!("    - {p}")).collect();
    std::fs::write(
        dir.join("cog.yaml"),
        format!(
            "build:\n  python_version: \"3.11\"\n  system_packages:\n{}\n",
            list.join("\n")
        ),
    )
    .unwrap();
    (root, dir)
}

#[test]
fn system_packages_on_a_debian_base_from_a_registry_run_in_docker() {
    for (tool, package) in [
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("docker", "docker.io"),
    ] {
        require_tool(tool, package);
    }
    let registry = TestRegistry::start();
    let base = push_debian_base(&registry);
    // jq: a real package with dependencies (libjq1, libonig5); eancheck: depends on the virtual
    // libgcc1 (>= 1:3.0), a versioned Provides of libgcc-s1, which the base already has.
    let (_root, dir) = project(&["jq", "eancheck"]);
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tarball = out.path().join("image.tar");
    let tag = "cog-rs-test/system-packages:registry";
    let build = |cache: &Path| {
        ok(&cog(
            &dir,
            cache,
            &[
                "build",
                "--base",
                &base,
                "-t",
                tag,
                "--output",
                tarball.to_str().unwrap(),
            ],
        ))
    };
    let digest = build(cache.path());
    assert!(digest.starts_with("sha256:"), "{digest}");

    // The lock is for the base's suite and holds only what the base lacks.
    let lock = debian::Lock::read(&dir.join(debian::LOCK_FILE_NAME)).unwrap();
    assert_eq!(lock.sources[0].suite, "bookworm");
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"jq") && names.contains(&"libjq1") && names.contains(&"libonig5"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"libc6") && !names.contains(&"libgcc-s1"),
        "base packages are not installed again: {names:?}"
    );

    // Reproducible: the same lock on a fresh cache gives the same image digest.
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(build(fresh.path()), digest, "same lock, same digest");

    run("docker", &["load", "-i", tarball.to_str().unwrap()]);
    let sh = |script: &str| {
        run(
            "docker",
            &["run", "--rm", "--entrypoint", "sh", tag, "-c", script],
        )
    };
    assert_eq!(sh("echo '{\"a\":[1,2]}' | jq -c .a").trim(), "[1,2]");
    assert_eq!(sh("eancheck 4006381333931").trim(), "Check digit correct");
    for pkg in ["jq", "libjq1", "eancheck", "apt", "libc6"] {
        let status = sh(&format!("dpkg -s {pkg}"));
        assert!(
            status.contains("Status: install ok installed"),
            "{pkg}: {status}"
        );
    }
    for pkg in ["jq", "eancheck"] {
        let sim = sh(&format!("apt-get install -s {pkg}"));
        assert!(
            sim.contains(&format!("{pkg} is already the newest version")),
            "{sim}"
        );
    }
    // dpkg's database is consistent: nothing half-installed, files listed.
    assert_eq!(sh("dpkg --audit").trim(), "");
    assert!(sh("dpkg -L jq").contains("/usr/bin/jq"));
    assert!(sh("ldconfig -p").contains("libjq.so.1 (libc6,x86-64) => "));
    assert!(sh("ldconfig -p").contains("libc.so.6 (libc6,x86-64) => "));
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
}

#[test]
fn a_busybox_base_is_refused_naming_the_base_and_the_field() {
    require_tool("docker-registry", "docker-registry");
    require_tool("skopeo", "skopeo");
    let registry = TestRegistry::start();
    let (dir, store) = temp_store();
    let image = busybox_image(&store, &oci::Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), dir.path(), "latest");
    registry.push_layout(&layout, "latest", "busybox:latest", false);
    let base = registry.reference("busybox:latest");
    let (_root, project_dir) = project(&["jq"]);
    let cache = tempfile::tempdir().unwrap();
    let err = failed(&cog(
        &project_dir,
        cache.path(),
        &["build", "--base", &base, "--output", "out.tar"],
    ));
    assert!(err.contains("build.system_packages in "), "{err}");
    assert!(err.contains(&format!("base image {base}")), "{err}");
    assert!(
        err.contains("it has no /etc/os-release: not a Debian or Ubuntu image"),
        "{err}"
    );
    assert!(!project_dir.join("out.tar").exists());
    assert!(!project_dir.join(debian::LOCK_FILE_NAME).exists());

    let err = failed(&cog(
        &project_dir,
        cache.path(),
        &["build", "--base", "scratch", "--output", "out.tar"],
    ));
    assert!(
        err.contains("build.system_packages in ")
            && err.contains("base image scratch has no Debian or Ubuntu system"),
        "{err}"
    );
}

/// The default base (assembled from bookworm packages, no registry) with system packages: two
/// builds from the same locks on fresh caches give the same digest, and the image runs.
#[test]
fn system_packages_on_the_assembled_base_same_lock_same_digest() {
    require_tool("docker", "docker.io");
    let (_root, dir) = project(&["jq"]);
    let out = tempfile::tempdir().unwrap();
    let tarball = out.path().join("image.tar");
    let tag = "cog-rs-test/system-packages:assembled";
    let build = |cache: &Path| {
        ok(&cog(
            &dir,
            cache,
            &["build", "-t", tag, "--output", tarball.to_str().unwrap()],
        ))
    };
    let first = tempfile::tempdir().unwrap();
    let digest = build(first.path());
    assert!(dir.join("cog-base.lock").is_file());
    let lock = debian::Lock::read(&dir.join(debian::LOCK_FILE_NAME)).unwrap();
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"jq") && !names.contains(&"libc6"),
        "{names:?}"
    );
    let second = tempfile::tempdir().unwrap();
    assert_eq!(build(second.path()), digest, "same locks, same digest");
    // The apt layer included.
    let rebuild = |extra: &[&str]| {
        let tarball = tarball.to_str().unwrap();
        let mut args = vec![
            "build",
            "-t",
            tag,
            "--progress",
            "plain",
            "--output",
            tarball,
        ];
        args.extend_from_slice(extra);
        cog(&dir, second.path(), &args)
    };
    assert_warm_then_no_cache(rebuild, &digest);

    run("docker", &["load", "-i", tarball.to_str().unwrap()]);
    let out = run(
        "docker",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            tag,
            "-c",
            "jq -n 1+1 && dpkg -s jq | grep Status && dpkg --audit && apt-get install -s jq \
             && apt-get update --print-uris | grep InRelease",
        ],
    );
    assert!(
        out.starts_with("2\nStatus: install ok installed\n"),
        "{out}"
    );
    assert!(out.contains("jq is already the newest version"), "{out}");
    // apt in the image knows the archive the base came from (apt-get update would work).
    for release in [
        "/dists/bookworm/InRelease",
        "/dists/bookworm-updates/InRelease",
        "debian-security/dists/bookworm-security/InRelease",
    ] {
        assert!(out.contains(release), "{out}");
    }
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
}
