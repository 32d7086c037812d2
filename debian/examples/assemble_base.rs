//! Assembles the embedded Python base (the Essential set, apt, python3 with pip,
//! ca-certificates, tzdata, tini; no docs) and prints what it built as JSON. Used by
//! benches/debian/run.sh. Ubuntu suites (jammy, noble) read the Ubuntu archive.
//!
//! usage: assemble_base <suite> [extra packages...]   (COG_CACHE_DIR picks the cache)

use std::time::Instant;

use debian::base::base_lock;
use debian::{Archive, ArchiveConfig, AssembleOptions, assemble_base_from_lock};
use layers::BlobStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let suite = args.next().unwrap_or_else(|| "bookworm".into());
    let extra: Vec<String> = args.collect();
    let start = Instant::now();
    // The release alone, as debootstrap reads it: both sides install the same package versions.
    let config = if ["jammy", "noble"].contains(&suite.as_str()) {
        ArchiveConfig::ubuntu_main(&suite, "amd64")
    } else {
        ArchiveConfig::debian_main(&suite, "amd64")
    };
    let archive = Archive::fetch(config).await?;
    let fetched = start.elapsed().as_secs_f64();
    let lock = base_lock(&archive, &extra)?;
    let resolved = start.elapsed().as_secs_f64();
    let store = BlobStore::open(BlobStore::default_root())?;
    let base = assemble_base_from_lock(&lock, &AssembleOptions::default(), &store).await?;
    let total = start.elapsed().as_secs_f64();
    let layer = &base.layers[0];
    println!(
        "{}",
        serde_json::json!({
            "suite": suite,
            "packages": lock.packages.len(),
            "names": lock.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            "download_bytes": lock.packages.iter().map(|p| p.size).sum::<u64>(),
            "index_seconds": fetched,
            "resolve_seconds": resolved - fetched,
            "total_seconds": total,
            "layer_digest": layer.digest.to_string(),
            "layer_gzip_bytes": layer.size,
            "blob": store.blob_path(&layer.digest),
        })
    );
    Ok(())
}
