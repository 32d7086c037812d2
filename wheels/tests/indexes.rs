//! Several indexes: the first index that has a package wins by default (against dependency
//! confusion), merging is an option; PyTorch's `+cuXYZ`/`+cpu` local versions on an index laid
//! out like download.pytorch.org/whl/<variant>.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::server::{Server, wheel};
use wheels::index::config::PipConfig;
use wheels::resolve::{ResolveOptions, resolve};
use wheels::{Arch, ExplicitIndex, IndexStrategy, Libc, Lock, Requirements, Target};

fn target() -> Target {
    Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 36)).unwrap()
}

fn resolve_with(text: &str, strategy: IndexStrategy) -> wheels::Result<Lock> {
    let cache = tempfile::tempdir().unwrap();
    let reqs: Requirements = text.parse().unwrap();
    let options = ResolveOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        pip_config: Some(PipConfig::default()),
        attempts: 2,
        backoff: Duration::from_millis(10),
        index_strategy: strategy,
        ..ResolveOptions::default()
    };
    resolve(&reqs, &target(), &options)
}

/// Publishes wheels on a PEP 503 page at `/<index>/<name>/` with links to `/<index>/<file>`,
/// as download.pytorch.org lays out `/whl/cu121/torch/`.
fn publish(server: &Server, index: &str, name: &str, wheels: &[(&str, &str)]) {
    let mut html = String::from("<!DOCTYPE html><html><body>\n");
    for (version, tag) in wheels {
        let (f, bytes) = wheel(
            name,
            version,
            tag,
            &[(&format!("{name}/__init__.py"), version.as_bytes(), 0o644)],
            &[],
            None,
        );
        let href = f.replace('+', "%2B");
        let sha = server.put_file(&f, bytes.clone());
        server.put(
            &format!("{index}/{href}"),
            "application/octet-stream",
            bytes,
        );
        let _ = writeln!(html, "<a href=\"{index}/{href}#sha256={sha}\">{f}</a><br/>");
    }
    html.push_str("</body></html>\n");
    server.put(&format!("{index}/{name}/"), "text/html", html.into_bytes());
}

const CP311: &str = "cp311-cp311-linux_x86_64";
const MANYLINUX: &str = "cp311-cp311-manylinux_2_17_x86_64";

fn torch_indexes() -> Server {
    let server = Server::start();
    publish(
        &server,
        "/simple",
        "torch",
        &[("2.1.0", MANYLINUX), ("2.2.0", MANYLINUX)],
    );
    publish(&server, "/simple", "numpy", &[("1.26.4", MANYLINUX)]);
    publish(
        &server,
        "/whl/cu121",
        "torch",
        &[("2.1.0+cu121", CP311), ("2.2.0+cu121", CP311)],
    );
    publish(
        &server,
        "/whl/cpu",
        "torch",
        &[("2.1.0+cpu", CP311), ("2.2.0+cpu", CP311)],
    );
    server
}

fn torch_file(lock: &Lock) -> String {
    lock.packages
        .iter()
        .find(|p| p.name == "torch")
        .unwrap()
        .filename
        .clone()
}

#[test]
fn pytorch_local_versions_follow_the_index() {
    let server = torch_indexes();
    let base = &server.base;
    for strategy in [IndexStrategy::FirstIndex, IndexStrategy::UnsafeBestMatch] {
        // What Cog writes for `torch==2.1.0` with `gpu: true`, `cuda: "12.1"`.
        let gpu = resolve_with(
            &format!(
                "--index-url {base}/simple\n--extra-index-url {base}/whl/cu121\ntorch==2.1.0\nnumpy\n"
            ),
            strategy,
        )
        .unwrap();
        assert_eq!(
            gpu.pins(),
            "numpy==1.26.4\ntorch==2.1.0+cu121\n",
            "{strategy:?}"
        );
        assert_eq!(
            torch_file(&gpu),
            "torch-2.1.0+cu121-cp311-cp311-linux_x86_64.whl"
        );
        let torch = gpu.packages.iter().find(|p| p.name == "torch").unwrap();
        assert_eq!(
            torch.url,
            format!("{base}/whl/cu121/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl")
        );
        assert!(torch.sha256.is_some());
        // ... and for a CPU build.
        let cpu = resolve_with(
            &format!("--index-url {base}/simple\n--extra-index-url {base}/whl/cpu\ntorch==2.1.0\n"),
            strategy,
        )
        .unwrap();
        assert_eq!(cpu.pins(), "torch==2.1.0+cpu\n", "{strategy:?}");
        // An explicit local version, and the newest without a pin.
        let pinned = resolve_with(
            &format!(
                "--index-url {base}/simple\n--extra-index-url {base}/whl/cu121\ntorch==2.2.0+cu121\n"
            ),
            strategy,
        )
        .unwrap();
        assert_eq!(pinned.pins(), "torch==2.2.0+cu121\n");
    }
    // Without the PyTorch index, PyPI's plain build.
    let plain = resolve_with(
        &format!("--index-url {base}/simple\ntorch==2.1.0\n"),
        IndexStrategy::FirstIndex,
    )
    .unwrap();
    assert_eq!(torch_file(&plain), format!("torch-2.1.0-{MANYLINUX}.whl"));
}

#[test]
fn the_first_index_with_a_name_wins_unless_asked_otherwise() {
    let server = Server::start();
    let base = &server.base;
    // A private package on the company index; someone publishes the same name, higher, publicly.
    publish(
        &server,
        "/private",
        "internal-tool",
        &[("1.0", "py3-none-any")],
    );
    publish(
        &server,
        "/public",
        "internal-tool",
        &[("99.0", "py3-none-any")],
    );
    publish(&server, "/public", "six", &[("1.16.0", "py3-none-any")]);
    let text = format!(
        "--index-url {base}/public\n--extra-index-url {base}/private\ninternal-tool\nsix\n"
    );
    let safe = resolve_with(&text, IndexStrategy::FirstIndex).unwrap();
    assert_eq!(safe.pins(), "internal-tool==1.0\nsix==1.16.0\n");
    let merged = resolve_with(&text, IndexStrategy::UnsafeBestMatch).unwrap();
    assert_eq!(merged.pins(), "internal-tool==99.0\nsix==1.16.0\n");
    // The strategy is an input of the lock.
    let reqs: Requirements = text.parse().unwrap();
    let hash = |s| {
        wheels::resolve::input_hash(
            &reqs,
            &target(),
            &ResolveOptions {
                index_strategy: s,
                pip_config: Some(PipConfig::default()),
                ..ResolveOptions::default()
            },
        )
    };
    assert_ne!(
        hash(IndexStrategy::FirstIndex),
        hash(IndexStrategy::UnsafeBestMatch)
    );
}

#[test]
fn an_explicit_index_serves_only_its_packages() {
    let server = torch_indexes();
    let base = &server.base;
    // The PyTorch index also hosts an older numpy, which first-index would take from it.
    publish(&server, "/whl/cu121", "numpy", &[("1.24.1", MANYLINUX)]);
    let text = format!(
        "--index-url {base}/simple\n--extra-index-url {base}/whl/cu121\ntorch==2.1.0\nnumpy\n"
    );
    let shadowed = resolve_with(&text, IndexStrategy::FirstIndex).unwrap();
    assert_eq!(shadowed.pins(), "numpy==1.24.1\ntorch==2.1.0+cu121\n");
    let cache = tempfile::tempdir().unwrap();
    let reqs: Requirements = format!("--index-url {base}/simple\ntorch==2.1.0\nnumpy\n")
        .parse()
        .unwrap();
    let options = ResolveOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        pip_config: Some(PipConfig::default()),
        explicit_indexes: vec![ExplicitIndex {
            url: format!("{base}/whl/cu121/").parse().unwrap(),
            packages: vec!["torch".parse().unwrap(), "torchvision".parse().unwrap()],
        }],
        ..ResolveOptions::default()
    };
    let lock = resolve(&reqs, &target(), &options).unwrap();
    assert_eq!(lock.pins(), "numpy==1.26.4\ntorch==2.1.0+cu121\n");
}
