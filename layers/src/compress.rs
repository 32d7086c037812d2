//! Layer compression: the choices, their OCI media types, and the streaming encoder.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::pgzip::{ParGzEncoder, worker_count};

pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Default gzip level: see docs/benchmarks.md ("Layers") for the speed/size measurements.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;
/// Default zstd level (zstd's own default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// How a layer's tar stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "algorithm")]
pub enum Compression {
    /// Block-parallel gzip (one member), `level` 0-9.
    Gzip { level: u32 },
    /// Multithreaded zstd, `level` 1-22 (negative levels are zstd's fast modes).
    Zstd { level: i32 },
    /// A plain tar (e.g. for high-entropy weights).
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::gzip()
    }
}

impl Compression {
    pub fn gzip() -> Self {
        Compression::Gzip {
            level: DEFAULT_GZIP_LEVEL,
        }
    }

    pub fn zstd() -> Self {
        Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        }
    }

    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip { .. } => MEDIA_TYPE_TAR_GZIP,
            Compression::Zstd { .. } => MEDIA_TYPE_TAR_ZSTD,
            Compression::None => MEDIA_TYPE_TAR,
        }
    }

    /// Wraps `inner` in a streaming encoder for this compression, with as many compression
    /// workers as the machine has cores.
    pub fn encoder<W: Write>(&self, inner: W) -> io::Result<Encoder<W>> {
        self.encoder_with_threads(inner, worker_count())
    }

    /// Like [`Compression::encoder`] with `threads` compression workers (at least 1). The
    /// compressed bytes do not depend on `threads`, nor on the sizes of the writes or their
    /// timing: gzip cuts fixed 128 KiB blocks ([`crate::pgzip`]); zstd always runs in its
    /// multithreaded mode (at least one worker; its single-threaded mode frames the output
    /// differently), whose jobs are cut by size only, a size zstd derives from the level's window
    /// (4 windows, at least 1 MiB: 8 MiB at level 3), never from the worker count.
    pub fn encoder_with_threads<W: Write>(
        &self,
        inner: W,
        threads: usize,
    ) -> io::Result<Encoder<W>> {
        let threads = threads.max(1);
        Ok(match *self {
            Compression::Gzip { level } => {
                Encoder::Gzip(ParGzEncoder::with_threads(inner, level, threads))
            }
            Compression::Zstd { level } => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
                encoder.multithread(threads as u32)?;
                encoder.include_checksum(true)?;
                Encoder::Zstd(encoder)
            }
            Compression::None => Encoder::None(inner),
        })
    }
}

/// A streaming compressor; `finish` writes the trailer and returns the inner writer.
pub enum Encoder<W: Write> {
    Gzip(ParGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
            Encoder::None(mut inner) => {
                inner.flush()?;
                Ok(inner)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
            Encoder::None(inner) => inner.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.write_all(buf),
            Encoder::Zstd(encoder) => encoder.write_all(buf),
            Encoder::None(inner) => inner.write_all(buf),
        }
    }

    /// Flushes the inner writer with what is compressed so far, but never cuts a block or a
    /// job: a flush must not change the compressed bytes (zstd's own flush would end a job
    /// early). Everything is out after [`Encoder::finish`].
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.get_mut().flush(),
            Encoder::None(inner) => inner.flush(),
        }
    }
}
