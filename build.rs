//! Embeds the cog SDK and coglet wheels into the `cog` binary when `COG_EMBED_WHEELS_DIR` names
//! a directory of them (`scripts/release.sh` sets it). Without it (a contributor's
//! `cargo build`), nothing is embedded and `cog` finds the wheels in `dist/` as before.
//!
//! Writes `$OUT_DIR/embedded_wheels.rs`: `EMBEDDED_WHEELS` (file name, sha256, bytes) and
//! `EMBEDDED_SUMMARY` (one line per wheel, for `cog --version`).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

fn main() {
    println!("cargo:rerun-if-env-changed=COG_EMBED_WHEELS_DIR");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_wheels.rs");
    let wheels = match std::env::var_os("COG_EMBED_WHEELS_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => embedded(Path::new(&dir)),
        None => Vec::new(),
    };
    let mut code = String::from(
        "/// The wheels built into this binary (`COG_EMBED_WHEELS_DIR` at build time).\n\
         pub static EMBEDDED_WHEELS: &[EmbeddedWheel] = &[\n",
    );
    let mut summary = String::new();
    for (path, filename, sha256) in &wheels {
        writeln!(
            code,
            "    EmbeddedWheel {{ filename: {filename:?}, sha256: {sha256:?}, bytes: include_bytes!({:?}) }},",
            path.display().to_string()
        )
        .expect("writing to a String");
        let mut parts = filename.trim_end_matches(".whl").splitn(3, '-');
        let (name, version, tags) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        writeln!(
            summary,
            "  {name} {version} ({tags}, sha256 {})",
            &sha256[..12]
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    writeln!(
        code,
        "/// `cog --version`'s lines on the embedded wheels.\npub const EMBEDDED_SUMMARY: &str = {summary:?};"
    )
    .expect("writing to a String");
    std::fs::write(&out, code).expect("writing embedded_wheels.rs");
}

/// The SDK wheel and the coglet wheels of this version in `dir`: (path, file name, sha256).
/// Fails the build when the SDK or every coglet is missing, or when one is there twice.
fn embedded(dir: &Path) -> Vec<(PathBuf, String, String)> {
    let dir = std::fs::canonicalize(dir)
        .unwrap_or_else(|e| panic!("COG_EMBED_WHEELS_DIR={}: {e}", dir.display()));
    println!("cargo:rerun-if-changed={}", dir.display());
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("COG_EMBED_WHEELS_DIR={}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| Path::new(name).extension().is_some_and(|e| e == "whl"))
        .collect();
    names.sort();
    let sdk = format!("cog-{version}-");
    let coglet = format!("coglet-{version}-");
    let mut wanted: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with(&sdk) && n.ends_with("-py3-none-any.whl"))
        .cloned()
        .collect();
    let found = |wanted: &[String], what: &str| {
        assert!(
            wanted.len() <= 1,
            "COG_EMBED_WHEELS_DIR={}: more than one {what} wheel: {wanted:?}",
            dir.display()
        );
    };
    found(&wanted, "cog SDK");
    assert!(
        !wanted.is_empty(),
        "COG_EMBED_WHEELS_DIR={}: no {sdk}*-py3-none-any.whl (python/build-wheels.sh builds it)",
        dir.display()
    );
    let mut arches = 0;
    for arch in ARCHES {
        let of_arch: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(&coglet) && n.ends_with(&format!("_{arch}.whl")))
            .cloned()
            .collect();
        found(&of_arch, &format!("coglet {arch}"));
        arches += of_arch.len();
        wanted.extend(of_arch);
    }
    assert!(
        arches > 0,
        "COG_EMBED_WHEELS_DIR={}: no {coglet}*_x86_64.whl or _aarch64.whl (python/build-wheels.sh builds them)",
        dir.display()
    );
    wanted
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            println!("cargo:rerun-if-changed={}", path.display());
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let sha256 = hex(&Sha256::digest(&bytes));
            (path, name, sha256)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
