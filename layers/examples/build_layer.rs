//! Builds one layer from a directory and prints its `LayerInfo` and timing: the benchmark's
//! driver (`benches/layers/compare.sh`).
//!
//! `build_layer <dir> [--compression gzip|zstd|none] [--level N] [--threads N] [--store DIR]
//! [--no-fsync] [--plan-only]` (`--plan-only`: only walk, stat and sort the tree, and time that)

use std::process::ExitCode;
use std::time::Instant;

use layers::{BlobStore, Compression, LayerOptions, LayerSpec};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("build_layer: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut algorithm = "gzip".to_owned();
    let mut level = None;
    let mut store_root = None;
    let mut fsync = true;
    let mut plan_only = false;
    let mut threads = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--compression" => algorithm = value("--compression")?,
            "--level" => {
                let text = value("--level")?;
                level = Some(
                    text.parse::<i32>()
                        .map_err(|_| format!("bad level {text:?}"))?,
                );
            }
            "--store" => store_root = Some(value("--store")?),
            "--threads" => {
                let text = value("--threads")?;
                threads = Some(
                    text.parse::<usize>()
                        .map_err(|_| format!("bad thread count {text:?}"))?,
                );
            }
            "--no-fsync" => fsync = false,
            "--plan-only" => plan_only = true,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other => dir = Some(other.to_owned()),
        }
    }
    let dir = dir.ok_or("usage: build_layer <dir> [--compression gzip|zstd|none] [--level N] [--threads N] [--store DIR] [--no-fsync] [--plan-only]")?;
    let compression = match (algorithm.as_str(), level) {
        ("gzip", None) => Compression::gzip(),
        ("gzip", Some(level)) => Compression::Gzip {
            level: level.clamp(0, 9) as u32,
        },
        ("zstd", None) => Compression::zstd(),
        ("zstd", Some(level)) => Compression::Zstd { level },
        ("none", _) => Compression::None,
        (other, _) => return Err(format!("unknown compression {other:?}")),
    };
    let store = match store_root {
        Some(root) => BlobStore::open(root),
        None => BlobStore::open(BlobStore::default_root()),
    }
    .map_err(|err| err.to_string())?
    .with_fsync(fsync);
    let spec = LayerSpec::new()
        .tree(&dir, "/", &[] as &[&str])
        .map_err(|err| err.to_string())?;
    let mut options = LayerOptions::new(compression);
    if let Some(threads) = threads {
        options = options.with_threads(threads);
    }
    if plan_only {
        // Only walk, stat and sort the tree (the part before any byte is read).
        let start = Instant::now();
        let key = spec
            .cache_key(&store, &options)
            .map_err(|err| err.to_string())?;
        let seconds = start.elapsed().as_secs_f64();
        println!("{{\"seconds\":{seconds:.3},\"key\":\"{key}\"}}");
        return Ok(());
    }
    let start = Instant::now();
    let layer = spec
        .build_uncached(&store, &options)
        .map_err(|err| err.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"seconds\":{seconds:.3},\"layer\":{}}}",
        serde_json::to_string(&layer).map_err(|err| err.to_string())?
    );
    Ok(())
}
