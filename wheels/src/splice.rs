//! Gzip layers that reuse the wheels' own compression.
//!
//! A wheel is a zip whose members are (almost always) raw deflate streams. A tar.gz layer is one
//! deflate stream over the tar. Instead of inflating every member and deflating the tar again
//! (the costly part of a layer), [`SplicedLayer`] copies each member's deflate data into the
//! layer's deflate stream as it is: the member's final-block bit is cleared and its end padded
//! to a byte boundary with an empty stored block (what zlib's `gzjoin` does). Tar headers,
//! padding and the files the installer writes itself (RECORD, launchers, ...) are deflated in
//! between, each run ending with a sync flush. The result is ONE gzip member with ONE deflate
//! stream, which any gzip reader accepts; the tar inside is byte for byte what
//! [`layers::LayerWriter`] writes for the same entries (same headers through
//! [`layers::encode_header`]), so the diff_id is the same whichever way a layer is written.
//!
//! Every member is still decoded once ([`crate::inflate`]): for its RECORD hash, the layer's
//! diff_id and CRC-32, and to check the zip's CRC-32, so a corrupt wheel is caught here.

use std::io::{Read, Write};
use std::path::Path;

use flate2::{Compress, FlushCompress};
use layers::{BlobStore, BlobWriter, LayerInfo, MEDIA_TYPE_TAR_GZIP};

use crate::error::{Error, Result};
use crate::inflate::{InflateError, inflate};

/// A zip member stored with deflate, as it is in the wheel.
pub struct DeflatedMember<'a> {
    /// The wheel's file name and the member's name, for errors.
    pub wheel: &'a str,
    pub name: &'a str,
    /// Uncompressed size and CRC-32, from the zip.
    pub size: u64,
    pub crc32: u32,
    /// The raw deflate data.
    pub raw: &'a [u8],
}

/// Uncompressed bytes gathered before they are deflated (and flushed) as one run.
const RUN: usize = 256 * 1024;

/// A gzip layer being written: tar entries in, one gzip member out, digests computed in the
/// same pass.
pub struct SplicedLayer {
    blob: BlobWriter,
    mtime: u64,
    deflate: Compress,
    /// The compressor has history from before the last spliced member (must be reset).
    dirty: bool,
    /// Uncompressed bytes not yet deflated.
    run: Vec<u8>,
    compressed: Vec<u8>,
    diff_id: layers::Sha256,
    crc: crc32fast::Hasher,
    total_in: u64,
    header: Vec<u8>,
}

impl SplicedLayer {
    pub fn new(store: &BlobStore, level: u32, mtime: u64) -> Result<Self> {
        let mut blob = store.writer()?;
        // Magic, deflate, no flags, mtime 0 (reproducible), no XFL, OS unknown.
        blob.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(Self {
            blob,
            mtime,
            deflate: Compress::new(flate2::Compression::new(level.min(9)), false),
            dirty: false,
            run: Vec::with_capacity(RUN + 4096),
            compressed: Vec::with_capacity(RUN),
            diff_id: layers::Sha256::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            header: Vec::with_capacity(1024),
        })
    }

    /// Uncompressed tar bytes, deflated with the next run.
    fn plain(&mut self, bytes: &[u8]) -> Result<()> {
        self.diff_id.update(bytes);
        self.crc.update(bytes);
        self.total_in += bytes.len() as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = rest.len().min(RUN - self.run.len().min(RUN));
            self.run.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.run.len() >= RUN {
                self.deflate_run(FlushCompress::Sync)?;
            }
        }
        Ok(())
    }

    /// Deflates the pending run; a sync flush leaves the stream byte-aligned at a block
    /// boundary, a finish ends it with a final block.
    fn deflate_run(&mut self, flush: FlushCompress) -> Result<()> {
        if self.run.is_empty() && !matches!(flush, FlushCompress::Finish) {
            return Ok(());
        }
        if self.dirty {
            self.deflate.reset();
            self.dirty = false;
        }
        let start_in = self.deflate.total_in();
        loop {
            self.compressed.clear();
            let consumed = (self.deflate.total_in() - start_in) as usize;
            let status = self
                .deflate
                .compress_vec(&self.run[consumed..], &mut self.compressed, flush)
                .map_err(|e| Error::Io(std::sync::Arc::new(std::io::Error::other(e))))?;
            self.blob.write_all(&self.compressed)?;
            let consumed = (self.deflate.total_in() - start_in) as usize;
            // Done when all input is taken and the flush fit in the buffer.
            let room_left = self.compressed.len() < self.compressed.capacity();
            if matches!(status, flate2::Status::StreamEnd)
                || (!matches!(flush, FlushCompress::Finish)
                    && consumed == self.run.len()
                    && room_left)
            {
                break;
            }
        }
        self.run.clear();
        Ok(())
    }

    pub fn append_dir(&mut self, path: &Path) -> Result<()> {
        self.header.clear();
        layers::encode_header(path, true, 0o755, 0, self.mtime, &mut self.header)?;
        let header = std::mem::take(&mut self.header);
        let r = self.plain(&header);
        self.header = header;
        r
    }

    fn file_header(&mut self, path: &Path, mode: u32, size: u64) -> Result<()> {
        self.header.clear();
        layers::encode_header(path, false, mode, size, self.mtime, &mut self.header)?;
        let header = std::mem::take(&mut self.header);
        let r = self.plain(&header);
        self.header = header;
        r
    }

    fn padding(&mut self, size: u64) -> Result<()> {
        let zeros = [0u8; 512];
        self.plain(&zeros[..layers::tar_padding(size)])
    }

    /// A regular file of `size` bytes from `content`; `seen` gets every byte.
    pub fn append_file(
        &mut self,
        path: &Path,
        mode: u32,
        size: u64,
        content: &mut impl Read,
        seen: &mut impl FnMut(&[u8]),
    ) -> Result<()> {
        self.file_header(path, mode, size)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = content.read(&mut buf[..want])?;
            if n == 0 {
                return Err(Error::Io(std::sync::Arc::new(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: content ended {left} bytes short of its size {size}",
                        path.display()
                    ),
                ))));
            }
            seen(&buf[..n]);
            self.plain(&buf[..n])?;
            left -= n as u64;
        }
        self.padding(size)
    }

    /// A regular file whose content is a zip member's raw deflate data, which must decode to
    /// the member's size and CRC-32; `seen` gets every decoded byte. Errors name the wheel and
    /// the member.
    pub fn append_deflated(
        &mut self,
        path: &Path,
        mode: u32,
        member: &DeflatedMember<'_>,
        seen: &mut impl FnMut(&[u8]),
    ) -> Result<()> {
        let DeflatedMember {
            wheel,
            name: member,
            size,
            crc32,
            raw,
        } = *member;
        self.file_header(path, mode, size)?;
        // Everything before this member is deflated and flushed to a byte boundary.
        self.deflate_run(FlushCompress::Sync)?;
        let mut member_crc = crc32fast::Hasher::new();
        let (diff_id, crc) = (&mut self.diff_id, &mut self.crc);
        let scan = inflate(raw, &mut |bytes: &[u8]| {
            member_crc.update(bytes);
            diff_id.update(bytes);
            crc.update(bytes);
            seen(bytes);
            Ok::<(), InflateError>(())
        })
        .map_err(|e| Error::InvalidWheel {
            file: wheel.to_string(),
            message: member.to_string(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        if scan.total_out != size || member_crc.finalize() != crc32 {
            return Err(Error::InvalidWheel {
                file: wheel.to_string(),
                message: format!(
                    "{member}: the data does not match the size ({size}) or CRC-32 in the zip"
                ),
                source: None,
            });
        }
        self.total_in += size;
        self.splice(raw, scan.final_header_bit, scan.end_bit)?;
        self.dirty = true;
        self.padding(size)
    }

    /// Copies a complete raw deflate stream into the layer's stream, minus its final-block bit,
    /// then pads it to a byte boundary with an empty stored block.
    fn splice(&mut self, raw: &[u8], final_bit: u64, end_bit: u64) -> Result<()> {
        let fin = (final_bit / 8) as usize;
        let end_byte = (end_bit / 8) as usize;
        let end_bits = (end_bit % 8) as u32;
        let used = end_byte + usize::from(end_bits != 0);
        let mut data = raw[..used].to_vec();
        data[fin] &= !(1u8 << (final_bit % 8));
        if end_bits == 0 {
            self.blob.write_all(&data)?;
            return Ok(());
        }
        // Unused high bits of the last byte become the stored block's header (BFINAL 0, BTYPE
        // 00: three zero bits) and the padding to the byte boundary.
        let last = used - 1;
        data[last] &= ((1u16 << end_bits) - 1) as u8;
        self.blob.write_all(&data)?;
        if end_bits > 5 {
            // The 3 header bits do not fit in what is left of the byte.
            self.blob.write_all(&[0])?;
        }
        self.blob.write_all(&[0, 0, 0xff, 0xff])?;
        Ok(())
    }

    /// Ends the archive (two zero blocks), the deflate stream and the gzip member, and commits
    /// the blob.
    pub fn finish(mut self) -> Result<LayerInfo> {
        self.plain(&[0u8; 1024])?;
        self.deflate_run(FlushCompress::Finish)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        trailer[4..].copy_from_slice(&(self.total_in as u32).to_le_bytes());
        self.blob.write_all(&trailer)?;
        let (digest, size) = self.blob.commit(None)?;
        Ok(LayerInfo {
            digest,
            size,
            diff_id: self.diff_id.finish(),
            media_type: MEDIA_TYPE_TAR_GZIP.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::DeflateEncoder;
    use std::io::Read;

    fn deflate(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn member<'a>(
        wheel: &'a str,
        name: &'a str,
        body: &[u8],
        crc32: u32,
        raw: &'a [u8],
    ) -> DeflatedMember<'a> {
        DeflatedMember {
            wheel,
            name,
            size: body.len() as u64,
            crc32,
            raw,
        }
    }

    /// Spliced and plain layers hold the same tar (same diff_id), in one gzip member.
    #[test]
    fn spliced_layer_equals_plain_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let files: Vec<(String, Vec<u8>)> = (0..40)
            .map(|i| {
                let body: Vec<u8> = (0..(i * 997 % 70_000))
                    .map(|k| (k * (i + 1) % 251) as u8 ^ b"def f(): pass\n"[k % 14])
                    .collect();
                (format!("usr/lib/p/{i}/m{i}.py"), body)
            })
            .collect();
        let mut spliced = SplicedLayer::new(&store, 6, 0).unwrap();
        let mut plain = layers::LayerWriter::new(
            &store,
            &layers::LayerOptions::new(layers::Compression::gzip()),
        )
        .unwrap();
        spliced.append_dir(Path::new("usr/lib/p")).unwrap();
        plain.append_dir("usr/lib/p", 0o755).unwrap();
        for (i, (name, body)) in files.iter().enumerate() {
            let path = Path::new(name);
            let mut seen = Vec::new();
            if i % 3 == 0 {
                spliced
                    .append_file(
                        path,
                        0o644,
                        body.len() as u64,
                        &mut body.as_slice(),
                        &mut |b| {
                            seen.extend_from_slice(b);
                        },
                    )
                    .unwrap();
            } else {
                let raw = deflate(body, (i % 10) as u32);
                spliced
                    .append_deflated(
                        path,
                        0o755,
                        &member("t.whl", name, body, crc32fast::hash(body), &raw),
                        &mut |b| seen.extend_from_slice(b),
                    )
                    .unwrap();
            }
            assert_eq!(&seen, body);
            let mode = if i % 3 == 0 { 0o644 } else { 0o755 };
            plain
                .append_file(name, mode, body.len() as u64, &mut body.as_slice())
                .unwrap();
        }
        let a = spliced.finish().unwrap();
        let b = plain.finish().unwrap();
        assert_eq!(a.diff_id, b.diff_id);
        assert_eq!(a.media_type, b.media_type);
        // A single-member reader sees the whole tar: one gzip member, valid CRC and length.
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(store.open_blob(&a.digest).unwrap())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(layers::Digest::of(&tar), a.diff_id);
    }

    #[test]
    fn corrupt_members_are_rejected_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let body = b"hello hello hello".repeat(100);
        let raw = deflate(&body, 6);
        let mut layer = SplicedLayer::new(&store, 6, 0).unwrap();
        let err = layer
            .append_deflated(
                Path::new("a"),
                0o644,
                &member("w.whl", "a", &body, crc32fast::hash(&body) ^ 1, &raw),
                &mut |_| {},
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("w.whl") && err.contains("a: ") && err.contains("CRC"),
            "{err}"
        );
        let err = layer
            .append_deflated(
                Path::new("b"),
                0o644,
                &member("w.whl", "b", b"12345", 0, &[0xff, 0xff]),
                &mut |_| {},
            )
            .unwrap_err();
        let source = std::error::Error::source(&err).map(ToString::to_string);
        let err = err.to_string();
        assert!(
            err == "w.whl: invalid wheel: b"
                && source.is_some_and(|s| s.starts_with("invalid deflate")),
            "{err}"
        );
    }
}
