//! `cargo run -p wheels --example resolve -- REQUIREMENTS PYTHON [x86_64|aarch64] [GLIBC_MINOR]`:
//! prints the pins, one `name==version` a line (what `uv pip compile` prints, without comments).

use std::path::Path;
use std::time::Instant;

use wheels::requirements::{ParseOptions, parse_file};
use wheels::resolve::{ResolveOptions, resolve};
use wheels::{Arch, Libc, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let file = args
        .get(1)
        .ok_or("usage: resolve REQUIREMENTS PYTHON [ARCH] [GLIBC_MINOR]")?;
    let python = args.get(2).map_or("3.11", String::as_str);
    let arch: Arch = args.get(3).map_or("x86_64", String::as_str).parse()?;
    let glibc: u16 = args.get(4).map_or(Ok(28), |s| s.parse())?;
    let target = Target::new(python, arch, Libc::Glibc(2, glibc))?;
    let reqs = parse_file(Path::new(file), &ParseOptions::default())?;
    let mut options = ResolveOptions::default();
    if let Ok(dir) = std::env::var("WHEELS_CACHE_DIR") {
        options.cache_dir = Some(dir.into());
    }
    let start = Instant::now();
    let lock = resolve(&reqs, &target, &options)?;
    eprintln!(
        "resolved {} packages in {:.2?}",
        lock.packages.len(),
        start.elapsed()
    );
    print!("{}", lock.pins());
    Ok(())
}
