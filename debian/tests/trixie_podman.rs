//! The assembled Python 3.13 base (Debian trixie) runs in podman and Docker.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{docker_archive, fetch, run, runtime, store, temp_tar};
use debian::{AssembleOptions, assemble_base_from};

#[test]
fn trixie_python_base_runs_in_podman_and_docker() {
    let archive = fetch("trixie");
    let store = store();
    let opts = AssembleOptions {
        extra_packages: vec!["python3-pip".into()],
        ..AssembleOptions::default()
    };
    let base = runtime()
        .block_on(assemble_base_from(&archive, &opts, &store))
        .unwrap();
    assert_eq!(base.python_version, "3.13");
    let (_dir, tar) = temp_tar("trixie.tar");
    let tag = "localhost/cog-rs-debian-test:trixie";
    docker_archive(&store, &base.layers, &base.env, &base.entrypoint, tag, &tar);
    let check = "python -c 'import ssl, sqlite3, ctypes, venv; print(ssl.OPENSSL_VERSION)' && pip --version && dpkg -s python3 | grep Status";
    for engine in ["podman", "docker"] {
        run(Command::new(engine).arg("load").arg("-i").arg(&tar));
        let out = run(Command::new(engine).args(["run", "--rm", tag, "sh", "-c", check]));
        assert!(out.contains("OpenSSL 3"), "{engine}: {out}");
        assert!(out.contains("python 3.13"), "{engine}: {out}");
        assert!(
            out.contains("Status: install ok installed"),
            "{engine}: {out}"
        );
        let _ = Command::new(engine).args(["rmi", "-f", tag]).output();
    }
}
