//! The wheels built into the binary (see `build.rs`): written into the store on first use,
//! under their sha256, and checked against it every time they are used.
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wheels::Arch;

use super::RuntimeWheelError;
use super::source::Kind;

/// One wheel carried by the binary.
#[derive(Debug)]
pub struct EmbeddedWheel {
    pub filename: &'static str,
    /// Lowercase hex sha256 of `bytes`, computed when the binary was built.
    pub sha256: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded_wheels.rs"));

/// Where the embedded wheels are written, under the store's root.
pub const DIR: &str = "runtime-wheels";

/// Whether this binary carries wheels (a release build); a development build has none.
pub fn any() -> bool {
    !EMBEDDED_WHEELS.is_empty()
}

/// The embedded wheel of `kind` for `arch`, if the binary carries one.
pub fn find(kind: Kind, arch: Arch) -> Option<&'static EmbeddedWheel> {
    find_in(EMBEDDED_WHEELS, kind, arch)
}

fn find_in(
    wheels: &'static [EmbeddedWheel],
    kind: Kind,
    arch: Arch,
) -> Option<&'static EmbeddedWheel> {
    let prefix = format!("{}-{}-", kind.package(), crate::VERSION);
    wheels.iter().find(|w| {
        w.filename.starts_with(&prefix)
            && match kind {
                Kind::Sdk => w.filename.ends_with("-py3-none-any.whl"),
                Kind::Coglet => w.filename.ends_with(&format!("_{}.whl", arch.as_str())),
            }
    })
}

/// The wheel as a file in the store (`<root>/runtime-wheels/<sha256>/<file name>`): written
/// there (through a temp file, renamed into place) when it is missing or does not match its
/// hash.
pub fn materialize(root: &Path, wheel: &EmbeddedWheel) -> Result<PathBuf, RuntimeWheelError> {
    let base = root.join(DIR);
    let dir = base.join(wheel.sha256);
    let path = dir.join(wheel.filename);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RuntimeWheelError::Io { path, source }
    };
    if path.is_file() {
        let found =
            wheels::index::sha256_file(&path).map_err(|source| RuntimeWheelError::Resolve {
                what: format!("hashing {}", path.display()),
                source,
            })?;
        if found == wheel.sha256 {
            return Ok(path);
        }
        tracing::warn!(path = %path.display(), %found, "embedded wheel in the store changed; writing it again");
    }
    fs_err::create_dir_all(&dir).map_err(io(&dir))?;
    let scratch = layers::process_temp_dir(&base.join("tmp")).map_err(io(&base))?;
    let mut tmp = tempfile::NamedTempFile::new_in(scratch.path()).map_err(io(scratch.path()))?;
    tmp.write_all(wheel.bytes).map_err(io(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io(tmp.path()))?;
    tmp.persist(&path).map_err(|e| RuntimeWheelError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    static WHEELS: &[EmbeddedWheel] = &[
        EmbeddedWheel {
            filename: concat!("cog-", env!("CARGO_PKG_VERSION"), "-py3-none-any.whl"),
            sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            bytes: b"hello",
        },
        EmbeddedWheel {
            filename: concat!(
                "coglet-",
                env!("CARGO_PKG_VERSION"),
                "-cp310-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
            ),
            sha256: "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7",
            bytes: b"world",
        },
    ];

    #[test]
    fn found_by_kind_and_arch() {
        assert_eq!(
            find_in(WHEELS, Kind::Sdk, Arch::X86_64).map(|w| w.bytes),
            Some(&b"hello"[..])
        );
        assert_eq!(
            find_in(WHEELS, Kind::Coglet, Arch::Aarch64).map(|w| w.bytes),
            Some(&b"world"[..])
        );
        assert!(find_in(WHEELS, Kind::Coglet, Arch::X86_64).is_none());
    }

    #[test]
    fn written_once_then_checked_and_repaired() {
        let root = tempfile::tempdir().unwrap();
        let path = materialize(root.path(), &WHEELS[0]).unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"hello");
        assert_eq!(
            path,
            root.path()
                .join(DIR)
                .join(WHEELS[0].sha256)
                .join(WHEELS[0].filename)
        );
        // A file changed in the store is written again, never used as it is.
        fs_err::write(&path, b"tampered").unwrap();
        assert_eq!(materialize(root.path(), &WHEELS[0]).unwrap(), path);
        assert_eq!(fs_err::read(&path).unwrap(), b"hello");
    }
}
