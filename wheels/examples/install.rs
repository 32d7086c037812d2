//! `cargo run -p wheels --example install -- REQUIREMENTS PYTHON STORE_DIR`: resolves for
//! linux/x86_64 glibc 2.36 and writes the wheel layers (gzip) into a blob store at STORE_DIR.
//! `WHEELS_RECOMPRESS=LEVEL` inflates the wheels and deflates the layers at that gzip level
//! instead of splicing the wheels' deflate data (for comparison).

use std::path::Path;
use std::time::Instant;

use wheels::install::{InstallOptions, layers};
use wheels::requirements::{ParseOptions, parse_file};
use wheels::resolve::{ResolveOptions, resolve};
use wheels::{Arch, Libc, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: install REQUIREMENTS PYTHON STORE_DIR";
    let file = args.get(1).ok_or(usage)?;
    let python = args.get(2).ok_or(usage)?;
    let store_dir = args.get(3).ok_or(usage)?;
    let target = Target::new(python, Arch::X86_64, Libc::Glibc(2, 36))?;
    let reqs = parse_file(Path::new(file), &ParseOptions::default())?;
    let mut options = ResolveOptions::default();
    let mut install = InstallOptions::python_slim(python);
    if let Ok(dir) = std::env::var("WHEELS_CACHE_DIR") {
        options.cache_dir = Some(dir.clone().into());
        install.client.cache_dir = Some(dir.into());
    }
    if let Ok(level) = std::env::var("WHEELS_RECOMPRESS") {
        install.splice = false;
        install.layer.compression = layers::Compression::Gzip {
            level: level.parse()?,
        };
    }
    let start = Instant::now();
    let lock = resolve(&reqs, &target, &options)?;
    let resolved = start.elapsed();
    let store = layers::BlobStore::open(store_dir)?;
    let built = layers(&lock, &install, &store)?;
    let total: u64 = built.iter().map(|l| l.info.size).sum();
    eprintln!(
        "{} packages, {} layers, {:.1} MB compressed; resolve {:.2?}, total {:.2?}",
        lock.packages.len(),
        built.len(),
        total as f64 / 1e6,
        resolved,
        start.elapsed()
    );
    for l in &built {
        println!("{} {} {}", l.info.digest, l.info.size, l.packages.join(" "));
    }
    Ok(())
}
