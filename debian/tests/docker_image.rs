//! Real archive, real Docker: the assembled bookworm base plus an apt layer, built without a
//! daemon, loaded and run.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{docker_archive, fetch, run, runtime, store, temp_tar};
use debian::{
    AssembleOptions, InstallOptions, assemble_base_from, assemble_base_from_lock, install, resolve,
};

#[test]
fn bookworm_base_and_apt_layer_run_in_docker() {
    let archive = fetch("bookworm");
    let store = store();
    let rt = runtime();
    let opts = AssembleOptions {
        extra_packages: vec!["python3-pip".into(), "python3-venv".into()],
        ..AssembleOptions::default()
    };
    let base = rt
        .block_on(assemble_base_from(&archive, &opts, &store))
        .unwrap();
    // jq: a real package with dependencies; eancheck: depends on the virtual libgcc1 (>= 1:3.0),
    // a versioned Provides of libgcc-s1.
    let lock = resolve(&archive, &["jq", "eancheck"], &base.status, "amd64").unwrap();
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"libjq1") && names.contains(&"libonig5"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"libc6") && !names.contains(&"libgcc-s1"),
        "base packages not reinstalled: {names:?}"
    );
    let apt_opts = InstallOptions {
        base_libraries: Some(base.libraries.clone()),
        ..InstallOptions::default()
    };
    let apt = rt
        .block_on(install(&lock, &base.status, &store, &apt_opts))
        .unwrap()
        .layer;

    // Reproducible: the same lock gives the same layer (rebuilt without the key cache). The
    // tar (diff_id) is compared, uncompressed, to keep debug-build tests fast; the compressed
    // image digest is compared by tests/system_packages_registry.rs (fresh caches).
    let fresh = tempfile::tempdir().unwrap();
    let store2 = layers::BlobStore::open(fresh.path()).unwrap();
    let mut plain = opts.clone();
    plain.install.compression = layers::Compression::None;
    let again = rt
        .block_on(assemble_base_from_lock(&base.lock, &plain, &store2))
        .unwrap();
    assert_eq!(again.layers[0].diff_id, base.layers[0].diff_id);
    assert_eq!(again.status, base.status);
    let plain_apt = InstallOptions {
        compression: layers::Compression::None,
        ..apt_opts.clone()
    };
    let apt_again = rt
        .block_on(install(&lock, &base.status, &store2, &plain_apt))
        .unwrap();
    assert_eq!(apt_again.layer.diff_id, apt.diff_id);

    let mut layers = base.layers.clone();
    layers.push(apt);
    let (_dir, tar) = temp_tar("image.tar");
    let tag = "localhost/cog-rs-debian-test:bookworm";
    docker_archive(&store, &layers, &base.env, &base.entrypoint, tag, &tar);
    run(Command::new("docker").arg("load").arg("-i").arg(&tar));
    let sh =
        |script: &str| run(Command::new("docker").args(["run", "--rm", tag, "sh", "-c", script]));
    assert_eq!(sh("echo '{\"a\":[1,2]}' | jq -c .a").trim(), "[1,2]");
    assert_eq!(sh("eancheck 4006381333931").trim(), "Check digit correct");
    for pkg in ["jq", "eancheck", "python3", "tini"] {
        let status = sh(&format!("dpkg -s {pkg}"));
        assert!(status.contains("Status: install ok installed"), "{status}");
        let sim = sh(&format!("apt-get install -s {pkg}"));
        assert!(
            sim.contains(&format!("{pkg} is already the newest version")),
            "{sim}"
        );
    }
    // dpkg's database is consistent (info files in the multiarch layout, md5sums, lists).
    assert_eq!(sh("dpkg --audit").trim(), "");
    assert!(sh("dpkg -L libc6").contains("/lib/x86_64-linux-gnu/libc.so.6"));
    let py = sh("python -c 'import ssl, sqlite3, ctypes, venv; print(ssl.OPENSSL_VERSION)'");
    assert!(py.starts_with("OpenSSL 3"), "{py}");
    assert!(sh("pip --version").contains("python 3.11"));
    assert!(
        sh("ls -l /usr/bin/passwd").starts_with("-rwsr-xr-x"),
        "setuid kept"
    );
    assert_eq!(sh("readlink -f /usr/bin/awk").trim(), "/usr/bin/mawk");
    assert!(sh("id -un").contains("root"));
    assert!(sh("head -1 /etc/passwd").starts_with("root:x:0:0:root:/root:/bin/bash"));
    assert!(
        sh("stat -c '%a %G' /etc/shadow /var/mail /run/lock")
            .contains("640 shadow\n2775 mail\n1777 root")
    );
    assert!(sh("cat /etc/shells").contains("/bin/bash"));
    // ld.so.cache covers base and apt-layer libraries (ctypes.util.find_library reads it).
    let ldp = sh("ldconfig -p");
    assert!(ldp.contains("libjq.so.1 (libc6,x86-64) => "), "{ldp}");
    assert!(ldp.contains("libc.so.6 (libc6,x86-64) => "), "{ldp}");
    let found = sh(
        "python -c 'import ctypes.util as u; print(u.find_library(\"jq\"), u.find_library(\"ssl\"))'",
    );
    assert_eq!(found.trim(), "libjq.so.1 libssl.so.3");
    // TLS verification works with the generated CA bundle.
    let tls = sh(
        "python -c 'import ssl; print(ssl.create_default_context().cert_store_stats()[\"x509_ca\"])'",
    );
    assert!(tls.trim().parse::<u32>().unwrap_or(0) > 100, "{tls}");
    // PID 1 is tini.
    assert!(sh("cat /proc/1/cmdline | tr '\\0' ' '").starts_with("/sbin/tini"));
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();

    // The same image runs in podman (no daemon).
    run(Command::new("podman").arg("load").arg("-i").arg(&tar));
    let out = run(Command::new("podman").args([
        "run",
        "--rm",
        tag,
        "sh",
        "-c",
        "python -c 'import ssl, sqlite3, ctypes, venv; print(ssl.OPENSSL_VERSION)' && pip --version && jq --version",
    ]));
    assert!(out.contains("OpenSSL 3"), "{out}");
    assert!(out.contains("python 3.11"), "{out}");
    assert!(out.contains("jq-1.6"), "{out}");
    let _ = Command::new("podman").args(["rmi", "-f", tag]).output();
}
