//! `cog cache`: what the cache holds, cleaning it, checking it. The cache is the blob store
//! (`$COG_CACHE_DIR`, else `~/.cache/cog`) and what lives beside its blobs: downloaded wheels
//! and `.deb`s, layers unpacked for build commands and `cog run`, lock-free temp space.
use std::process::ExitCode;

use anyhow::{Context, Result};
use layers::Compression;

use crate::sandbox::{self, SandboxOptions};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CacheCommand {
    /// Show where the cache is and how much each part of it holds
    Info,
    /// Remove what can be made again: temp files of builds that are gone and unpacked layers
    /// (with --all, everything)
    Prune {
        /// Remove the whole cache: every blob, download and unpacked layer
        #[arg(long)]
        all: bool,
    },
    /// Check every blob against its digest and every cached layer record against its blob
    Verify {
        /// Remove what is wrong, so that the next build writes it again
        #[arg(long)]
        repair: bool,
    },
}

pub fn run(session: &Session, args: &CacheArgs) -> Result<ExitCode> {
    match args.command {
        CacheCommand::Info => info(session),
        CacheCommand::Prune { all } => prune(session, all),
        CacheCommand::Verify { repair } => verify(session, repair),
    }
}

fn info(session: &Session) -> Result<ExitCode> {
    let root = session.store.root();
    println!("cache: {}", root.display());
    let mut total = 0;
    let mut parts: Vec<(String, u64)> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .flatten()
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, layers::bytes_under(&entry.path()))
        })
        .collect();
    parts.sort();
    for (name, bytes) in &parts {
        total += bytes;
        println!("  {name:<10} {:>10}", human(*bytes));
    }
    println!("  {:<10} {:>10}", "total", human(total));
    Ok(ExitCode::SUCCESS)
}

fn prune(session: &Session, all: bool) -> Result<ExitCode> {
    let store = &session.store;
    let swept = store.sweep_temp();
    let options = SandboxOptions::new(Compression::gzip());
    // Unpacked layers may belong to the user's subordinate ids: removed from inside the
    // sandbox's user namespace.
    sandbox::remove_unpacked(store, &options).context("removing unpacked layers")?;
    println!(
        "removed {} temp entries ({}) and the unpacked layers",
        swept.entries,
        human(swept.bytes)
    );
    if all {
        let root = store.root();
        let before = layers::bytes_under(root);
        for entry in std::fs::read_dir(root)
            .with_context(|| format!("reading {}", root.display()))?
            .flatten()
        {
            let path = entry.path();
            let removed = if path.is_dir() {
                fs_err::remove_dir_all(&path)
            } else {
                fs_err::remove_file(&path)
            };
            removed.context("emptying the cache")?;
        }
        println!(
            "removed everything in {} ({})",
            root.display(),
            human(before)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(session: &Session, repair: bool) -> Result<ExitCode> {
    let found = session
        .store
        .verify(repair)
        .with_context(|| format!("checking the cache at {}", session.store.root().display()))?;
    println!(
        "{} blobs ({}) match their digests",
        found.blobs,
        human(found.bytes)
    );
    let verb = if repair { "removed" } else { "found" };
    for (what, paths) in [
        ("corrupt blob", &found.corrupt),
        ("stray file", &found.stray),
        ("layer record without its blob", &found.bad_keys),
    ] {
        for path in paths {
            println!("{verb} {what}: {}", path.display());
        }
    }
    Ok(if found.is_clean() || repair {
        ExitCode::SUCCESS
    } else {
        println!("run `cog cache verify --repair` to remove them");
        ExitCode::FAILURE
    })
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
