//! Caps on what is read into memory from bases, packages and archives. Every file this crate
//! reads whole comes from outside (a base image's layers, a `.deb`, a mirror), so each read is
//! bounded: a hostile base whose `/etc/os-release` is gigabytes of zeros (a few MB compressed)
//! gets an error naming the file and the cap, not the machine's memory.
//!
//! | cap | default | covers | raise with |
//! |---|---|---|---|
//! | metadata file | 16 MiB | `/etc/os-release`, `/var/lib/dpkg/status`, `/etc/ld.so.conf*` of a base; a `.deb`'s `control.tar` members; `InRelease`/`Release`/`Release.gpg` | `COG_MAX_METADATA_SIZE` |
//! | package index | 1 GiB | one `Packages` file, uncompressed (bookworm main: ~45 MiB) | `COG_MAX_INDEX_SIZE` |
//!
//! Sizes are bytes, or a number with `K`, `M`, `G` (powers of 1024, an optional `iB`/`B`).

use std::io::Read;

use crate::Error;

/// Default cap on one metadata file (see the module's table).
pub const DEFAULT_METADATA_SIZE: u64 = 16 << 20;
/// Default cap on one uncompressed `Packages` index.
pub const DEFAULT_INDEX_SIZE: u64 = 1 << 30;

/// Environment variable that raises (or lowers) the metadata cap.
pub const METADATA_SIZE_VAR: &str = "COG_MAX_METADATA_SIZE";
/// Environment variable for the `Packages` index cap.
pub const INDEX_SIZE_VAR: &str = "COG_MAX_INDEX_SIZE";

/// A cap: its size and the variable that sets it (for the error message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub bytes: u64,
    /// What the cap is on, for messages (`metadata files`).
    pub what: &'static str,
    pub variable: &'static str,
}

impl Cap {
    /// The metadata cap, from `COG_MAX_METADATA_SIZE` or the default.
    pub fn metadata() -> Result<Cap, Error> {
        Cap::from_env(METADATA_SIZE_VAR, DEFAULT_METADATA_SIZE, "metadata files")
    }

    /// The `Packages` index cap, from `COG_MAX_INDEX_SIZE` or the default.
    pub fn index() -> Result<Cap, Error> {
        Cap::from_env(INDEX_SIZE_VAR, DEFAULT_INDEX_SIZE, "package indexes")
    }

    fn from_env(variable: &'static str, default: u64, what: &'static str) -> Result<Cap, Error> {
        let bytes = match std::env::var(variable) {
            Ok(text) if !text.trim().is_empty() => parse_size(&text).ok_or_else(|| {
                Error::Config(format!(
                    "{variable}={text:?}: not a size (bytes, or a number with K, M or G)"
                ))
            })?,
            _ => default,
        };
        Ok(Cap {
            bytes,
            what,
            variable,
        })
    }

    /// The error for `file` (named as the caller names it) being larger than this cap.
    pub fn exceeded(&self, file: impl Into<String>) -> Error {
        Error::TooLarge {
            file: file.into(),
            limit: self.bytes,
            what: self.what,
            variable: self.variable,
        }
    }

    /// Checks a size already known (a tar header's, a download's so far).
    pub fn check(&self, size: u64, file: impl FnOnce() -> String) -> Result<(), Error> {
        if size > self.bytes {
            Err(self.exceeded(file()))
        } else {
            Ok(())
        }
    }

    /// Reads `reader` to its end, failing as soon as it gives more than the cap (at most
    /// cap + 1 bytes are ever held). I/O errors are returned as they are.
    pub fn read_all(
        &self,
        reader: impl Read,
        file: impl FnOnce() -> String,
    ) -> Result<Vec<u8>, ReadError> {
        let mut data = Vec::new();
        reader
            .take(self.bytes.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(ReadError::Io)?;
        if data.len() as u64 > self.bytes {
            return Err(ReadError::TooLarge(self.exceeded(file())));
        }
        Ok(data)
    }
}

/// A capped read failed: the reader's error, or the cap.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    TooLarge(Error),
}

/// `"64MiB"`, `"2G"`, `"1048576"` -> bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// `67108864` -> `64 MiB` (exact units only; else bytes).
pub fn human(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("64 M"), Some(64 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("3KB"), Some(3 << 10));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5T"), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(1 << 30), "1 GiB");
        assert_eq!(human(1000), "1000 bytes");
    }

    #[test]
    fn reads_stop_at_the_cap() {
        let cap = Cap {
            bytes: 10,
            what: "metadata files",
            variable: METADATA_SIZE_VAR,
        };
        assert_eq!(
            cap.read_all(&b"0123456789"[..], String::new).unwrap().len(),
            10
        );
        // An endless reader: the read stops after cap + 1 bytes.
        let Err(ReadError::TooLarge(err)) = cap.read_all(std::io::repeat(0), || "etc/x".into())
        else {
            panic!("an endless file must be refused");
        };
        assert_eq!(
            err.to_string(),
            "etc/x is larger than 10 bytes, the limit on metadata files (set \
             COG_MAX_METADATA_SIZE to raise it)"
        );
    }
}
