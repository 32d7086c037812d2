//! Limits on unpacking image layers onto disk (for the sandbox's build steps and for `cog run`
//! on runc): the total bytes of file content, and how far a compressed layer may expand. A
//! layer of a few MB that inflates to gigabytes of zeros is refused once it passes the ratio,
//! long before it fills the disk.
//!
//! Both are set from the environment where a user may need more: `COG_MAX_UNPACKED_SIZE`
//! (bytes, or with `K`/`M`/`G`) and `COG_MAX_LAYER_RATIO` (uncompressed bytes per compressed
//! byte).
use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

pub use super::DEFAULT_MAX_UNPACKED_BYTES;
/// Default cap on uncompressed bytes per compressed byte of a layer. Real layers expand 2-10
/// times; gzip's own maximum is about 1,030.
pub const DEFAULT_MAX_LAYER_RATIO: u64 = 200;
/// A layer may always expand to this much, whatever its ratio (small layers of text).
pub const RATIO_FREE_BYTES: u64 = 256 << 20;

pub const UNPACKED_SIZE_VAR: &str = "COG_MAX_UNPACKED_SIZE";
pub const LAYER_RATIO_VAR: &str = "COG_MAX_LAYER_RATIO";

/// How much unpacking may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnpackLimits {
    /// Bytes of file content, all layers together.
    pub max_bytes: u64,
    /// Uncompressed bytes per compressed byte of one layer (beyond [`RATIO_FREE_BYTES`]).
    pub max_ratio: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_bytes: DEFAULT_MAX_UNPACKED_BYTES,
            max_ratio: DEFAULT_MAX_LAYER_RATIO,
        }
    }
}

impl UnpackLimits {
    /// The defaults, overridden by `COG_MAX_UNPACKED_SIZE` and `COG_MAX_LAYER_RATIO`; a value
    /// that is not a size or a number is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let mut limits = UnpackLimits::default();
        if let Some(text) = set(UNPACKED_SIZE_VAR) {
            limits.max_bytes = debian::limits::parse_size(&text).ok_or_else(|| {
                format!(
                    "{UNPACKED_SIZE_VAR}={text:?}: not a size (bytes, or a number with K, M or G)"
                )
            })?;
        }
        if let Some(text) = set(LAYER_RATIO_VAR) {
            limits.max_ratio = text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|r| *r > 0)
                .ok_or_else(|| format!("{LAYER_RATIO_VAR}={text:?}: not a positive number"))?;
        }
        Ok(limits)
    }
}

fn set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Bytes read so far on both sides of a decompressor.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    compressed: Cell<u64>,
    inflated: Cell<u64>,
    tripped: Cell<bool>,
}

impl Counts {
    /// Whether the ratio was passed (the read that passed it failed).
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.get()
    }

    pub(crate) fn inflated(&self) -> u64 {
        self.inflated.get()
    }

    pub(crate) fn compressed(&self) -> u64 {
        self.compressed.get()
    }
}

/// Counts the compressed bytes read from a blob.
pub(crate) struct CountIn<R> {
    pub inner: R,
    pub counts: Rc<Counts>,
}

impl<R: Read> Read for CountIn<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counts
            .compressed
            .set(self.counts.compressed.get() + n as u64);
        Ok(n)
    }
}

/// The decompressed stream, failing once it has given more than `max_ratio` times the
/// compressed bytes read (and more than [`RATIO_FREE_BYTES`]). The caller tells this failure
/// from others by [`Counts::tripped`].
pub(crate) struct RatioGuard<R> {
    pub inner: R,
    pub counts: Rc<Counts>,
    pub max_ratio: u64,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let inflated = self.counts.inflated.get() + n as u64;
        self.counts.inflated.set(inflated);
        let allowed = self
            .counts
            .compressed
            .get()
            .saturating_mul(self.max_ratio)
            .max(RATIO_FREE_BYTES);
        if inflated > allowed {
            self.counts.tripped.set(true);
            return Err(io::Error::other(format!(
                "the layer expands more than {} times",
                self.max_ratio
            )));
        }
        Ok(n)
    }
}

/// A layer blob (gzip, zstd or plain tar, sniffed from its first bytes) as a tar stream whose
/// expansion is watched by the returned [`Counts`].
pub(crate) fn decompress<'a>(
    blob: impl Read + 'a,
    max_ratio: u64,
) -> io::Result<(Box<dyn Read + 'a>, Rc<Counts>)> {
    use std::io::BufRead;
    let counts = Rc::new(Counts::default());
    let mut reader = io::BufReader::with_capacity(
        1 << 20,
        CountIn {
            inner: blob,
            counts: Rc::clone(&counts),
        },
    );
    let head = reader.fill_buf()?;
    let decoded: Box<dyn Read + 'a> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(reader)?)
    } else {
        // A plain tar is its own size: nothing to watch.
        return Ok((Box::new(reader), counts));
    };
    Ok((
        Box::new(RatioGuard {
            inner: decoded,
            counts: Rc::clone(&counts),
            max_ratio,
        }),
        counts,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_layer_that_expands_too_far_trips_the_guard() {
        // 300 MiB of zeros: past the free allowance, about 1,000 times its gzip.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..300 {
            io::Write::write_all(&mut gz, &chunk).unwrap();
        }
        let blob = gz.finish().unwrap();
        let (mut reader, counts) = decompress(&blob[..], 200).unwrap();
        let err = io::copy(&mut reader, &mut io::sink()).unwrap_err();
        assert!(counts.tripped(), "{err}");
        assert!(counts.inflated() <= RATIO_FREE_BYTES + (1 << 20));
        // With a ratio that allows it, the same layer reads to its end.
        let (mut reader, counts) = decompress(&blob[..], 5000).unwrap();
        assert_eq!(io::copy(&mut reader, &mut io::sink()).unwrap(), 300 << 20);
        assert!(!counts.tripped());
    }
}
