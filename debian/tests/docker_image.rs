//! Real archive, real Docker: the assembled bookworm base plus an apt layer, built without a
//! daemon, loaded and run.

mod common;

use std::process::Command;

use common::{docker_archive, fetch, run, runtime, store, temp_tar};
use debian::{
    AssembleOptions, assemble_base_from, assemble_base_from_lock, install_layer, resolve,
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
    let apt = rt
        .block_on(install_layer(&lock, &base.status, &store))
        .unwrap();

    // Reproducible: the same lock gives the same layer (rebuilt without the key cache). The
    // tar (diff_id) is compared: layers' parallel gzip is not yet byte-stable run to run.
    let fresh = tempfile::tempdir().unwrap();
    let store2 = layers::BlobStore::open(fresh.path()).unwrap();
    let again = rt
        .block_on(assemble_base_from_lock(&base.lock, &opts, &store2))
        .unwrap();
    assert_eq!(again.layers[0].diff_id, base.layers[0].diff_id);
    assert_eq!(again.status, base.status);
    let apt_again = rt
        .block_on(install_layer(&lock, &base.status, &store2))
        .unwrap();
    assert_eq!(apt_again.diff_id, apt.diff_id);

    let mut layers = base.layers.clone();
    layers.push(apt);
    let (_dir, tar) = temp_tar("image.tar");
    let tag = "cog-rs-debian-test:bookworm";
    docker_archive(&store, &layers, &base.env, &base.entrypoint, tag, &tar);
    run(Command::new("docker").arg("load").arg("-i").arg(&tar));
    let sh =
        |script: &str| run(Command::new("docker").args(["run", "--rm", tag, "sh", "-c", script]));
    assert_eq!(sh("echo '{\"a\":[1,2]}' | jq -c .a").trim(), "[1,2]");
    assert!(sh("eancheck 4006381333931").contains("4006381333931"));
    for pkg in ["jq", "eancheck", "python3", "tini"] {
        assert!(
            sh(&format!("dpkg -s {pkg}")).contains("Status: install ok installed"),
            "{pkg}"
        );
        let sim = sh(&format!("apt-get install -s {pkg}"));
        assert!(
            sim.contains(&format!("{pkg} is already the newest version")),
            "{sim}"
        );
    }
    let py = sh("python -c 'import ssl, sqlite3, ctypes, venv; print(ssl.OPENSSL_VERSION)'");
    assert!(py.starts_with("OpenSSL 3"), "{py}");
    assert!(sh("pip --version").contains("python 3.11"));
    assert!(
        sh("ls -l /usr/bin/passwd").starts_with("-rwsr-xr-x"),
        "setuid kept"
    );
    assert_eq!(sh("readlink -f /usr/bin/awk").trim(), "/usr/bin/mawk");
    assert!(sh("id -un").contains("root"));
    assert!(
        sh("python -c 'import urllib.request, ssl; ssl.create_default_context()' && echo ok")
            .contains("ok")
    );
    // PID 1 is tini.
    assert!(sh("cat /proc/1/cmdline | tr '\\0' ' '").starts_with("/sbin/tini"));
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
}
