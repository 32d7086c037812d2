//! Reading one member of a remote zip (a wheel's METADATA) with HTTP range requests: the end
//! of central directory, the central directory, then the member's bytes.

use std::io::Read;

/// Where a member lives in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub method: u16,
    pub compressed_size: u64,
    pub local_header_offset: u64,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CDH_SIG: u32 = 0x0201_4b50;
const LFH_SIG: u32 = 0x0403_4b50;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

/// Locates the central directory from the archive's tail (`tail` ends at the end of the file,
/// which is `file_size` long): `(offset, size)`.
pub fn central_directory(tail: &[u8], file_size: u64) -> Option<(u64, u64)> {
    let tail_start = file_size.checked_sub(tail.len() as u64)?;
    let eocd = (0..=tail.len().checked_sub(22)?)
        .rev()
        .find(|&i| u32_at(tail, i) == Some(EOCD_SIG))?;
    let mut cd_size = u64::from(u32_at(tail, eocd + 12)?);
    let mut cd_offset = u64::from(u32_at(tail, eocd + 16)?);
    if cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        let loc = eocd.checked_sub(20)?;
        if u32_at(tail, loc)? != ZIP64_LOCATOR_SIG {
            return None;
        }
        let z64 = u64_at(tail, loc + 8)?.checked_sub(tail_start)? as usize;
        if u32_at(tail, z64)? != ZIP64_EOCD_SIG {
            return None;
        }
        cd_size = u64_at(tail, z64 + 40)?;
        cd_offset = u64_at(tail, z64 + 48)?;
    }
    Some((cd_offset, cd_size))
}

/// Scans central directory records for the first member whose name satisfies `want`.
pub fn find_member(cd: &[u8], want: impl Fn(&str) -> bool) -> Option<Member> {
    let mut i = 0;
    while u32_at(cd, i) == Some(CDH_SIG) {
        let method = u16_at(cd, i + 10)?;
        let mut compressed_size = u64::from(u32_at(cd, i + 20)?);
        let uncompressed = u32_at(cd, i + 24)?;
        let name_len = usize::from(u16_at(cd, i + 28)?);
        let extra_len = usize::from(u16_at(cd, i + 30)?);
        let comment_len = usize::from(u16_at(cd, i + 32)?);
        let mut offset = u64::from(u32_at(cd, i + 42)?);
        let name = String::from_utf8_lossy(cd.get(i + 46..i + 46 + name_len)?).into_owned();
        if want(&name) {
            // Zip64 extra field (id 1): present values in order uncompressed, compressed, offset.
            let extra = cd.get(i + 46 + name_len..i + 46 + name_len + extra_len)?;
            let mut j = 0;
            while j + 4 <= extra.len() {
                let id = u16_at(extra, j)?;
                let len = usize::from(u16_at(extra, j + 2)?);
                if id == 1 {
                    let mut k = j + 4;
                    if uncompressed == 0xFFFF_FFFF {
                        k += 8;
                    }
                    if compressed_size == 0xFFFF_FFFF {
                        compressed_size = u64_at(extra, k)?;
                        k += 8;
                    }
                    if offset == 0xFFFF_FFFF {
                        offset = u64_at(extra, k)?;
                    }
                }
                j += 4 + len;
            }
            return Some(Member {
                name,
                method,
                compressed_size,
                local_header_offset: offset,
            });
        }
        i += 46 + name_len + extra_len + comment_len;
    }
    None
}

/// Given bytes starting at the member's local header, returns its decompressed content, or
/// `Err(needed)` with the number of bytes required when `bytes` is too short.
pub fn read_member(bytes: &[u8], member: &Member) -> Result<Result<Vec<u8>, String>, usize> {
    if bytes.len() < 30 {
        return Err(30);
    }
    if u32_at(bytes, 0) != Some(LFH_SIG) {
        return Ok(Err("bad local file header".into()));
    }
    let name_len = usize::from(u16_at(bytes, 26).unwrap_or(0));
    let extra_len = usize::from(u16_at(bytes, 28).unwrap_or(0));
    let start = 30 + name_len + extra_len;
    let end = start + member.compressed_size as usize;
    let Some(data) = bytes.get(start..end) else {
        return Err(end);
    };
    Ok(match member.method {
        0 => Ok(data.to_vec()),
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(data)
                .read_to_end(&mut out)
                .map(|_| out)
                .map_err(|e| format!("deflate: {e}"))
        }
        m => Err(format!("unsupported compression method {m}")),
    })
}

/// `name-version.dist-info/METADATA` at the archive root.
pub fn is_root_metadata(name: &str) -> bool {
    let mut parts = name.split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(dir), Some("METADATA"), None) if dir.ends_with(".dist-info"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample_zip() -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            z.start_file("foo/__init__.py", opts).unwrap();
            z.write_all(&[b'x'; 5000]).unwrap();
            z.start_file("foo-1.0.dist-info/METADATA", opts).unwrap();
            z.write_all(b"Name: foo\nVersion: 1.0\n").unwrap();
            z.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn reads_metadata_from_the_tail() {
        let zip = sample_zip();
        let size = zip.len() as u64;
        let tail = &zip[zip.len() - 200..];
        let (off, len) = central_directory(tail, size).unwrap();
        let cd = &zip[off as usize..(off + len) as usize];
        let m = find_member(cd, is_root_metadata).unwrap();
        let from = &zip[m.local_header_offset as usize..];
        assert_eq!(read_member(&from[..10], &m).unwrap_err(), 30);
        let data = read_member(from, &m).unwrap().unwrap();
        assert_eq!(data, b"Name: foo\nVersion: 1.0\n");
        assert!(!is_root_metadata("a/b.dist-info/METADATA"));
    }
}
