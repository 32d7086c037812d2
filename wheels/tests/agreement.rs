//! Our resolver and `uv pip compile` agree on real ML requirement sets, against the same index
//! at the same time (real PyPI through the configured index).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::process::Command;

use wheels::requirements::{ParseOptions, parse_file};
use wheels::resolve::{ResolveOptions, resolve};
use wheels::{Arch, Libc, Target};

fn agree(set: &str) {
    let file = common::fixtures()
        .join("requirements")
        .join(format!("{set}.txt"));
    let reqs = parse_file(&file, &ParseOptions::default()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let options = ResolveOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..ResolveOptions::default()
    };
    // The default index comes last (after any extra ones).
    let index = options
        .client_options(&reqs)
        .indexes
        .last()
        .unwrap()
        .to_string();
    let target = Target::new("3.11", Arch::X86_64, Libc::Glibc(2, 28)).unwrap();
    let lock = resolve(&reqs, &target, &options).unwrap_or_else(|e| panic!("{set}: {e}"));
    let ours = common::parse_pins(&lock.pins());

    let out = Command::new(common::uv())
        .args([
            "pip",
            "compile",
            "-q",
            "--no-header",
            "--no-annotate",
            "--python-version",
            "3.11",
        ])
        .args([
            "--python-platform",
            "x86_64-manylinux_2_28",
            "--index-url",
            &index,
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uv failed on {set}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = common::parse_pins(&String::from_utf8_lossy(&out.stdout));
    assert!(!ours.is_empty());
    assert_eq!(ours, theirs, "{set}: ours (left) and uv (right) differ");
    // Every locked file is a wheel with a hash.
    for p in &lock.packages {
        assert!(
            std::path::Path::new(&p.filename)
                .extension()
                .is_some_and(|e| e == "whl"),
            "{}",
            p.filename
        );
        assert!(p.sha256.is_some(), "{}", p.filename);
    }
}

macro_rules! sets {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(#[test] fn $test() { agree($file); })*
    };
}

sets! {
    numpy_pillow => "numpy-pillow",
    transformers => "transformers",
    diffusers => "diffusers",
    sklearn_pandas => "sklearn-pandas",
    opencv => "opencv",
    fastapi => "fastapi",
    scipy_matplotlib => "scipy-matplotlib",
    datasets => "datasets",
    pinned_older => "pinned-older",
    onnx => "onnx",
    api_clients => "api-clients",
    small_cli => "small-cli",
}
