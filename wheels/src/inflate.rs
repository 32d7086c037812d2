//! A raw deflate (RFC 1951) decoder that also reports where the stream's blocks are, to the bit.
//!
//! The wheel layers reuse each wheel member's deflate data as it is (see [`crate::splice`]): to
//! join several deflate streams into one, the final-block bit of each must be cleared and its
//! end aligned, which needs the bit position of the last block header and of the stream's end.
//! zlib exposes those only through its C API (`Z_BLOCK`, `data_type`), so this module decodes
//! the stream itself; the content is needed anyway (file hashes, the layer's diff_id and CRC).

use std::sync::OnceLock;

/// Where the blocks of a decoded stream are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Bit offset (from the start of the input, least significant bit first) of the final
    /// block's header, i.e. of its BFINAL bit.
    pub final_header_bit: u64,
    /// Bit offset just past the final block's end-of-block code.
    pub end_bit: u64,
    /// Uncompressed bytes produced.
    pub total_out: u64,
}

/// Why a deflate stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflateError(pub String);

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid deflate data: {}", self.0)
    }
}

impl std::error::Error for InflateError {}

type Res<T> = std::result::Result<T, InflateError>;

fn err<T>(msg: &str) -> Res<T> {
    Err(InflateError(msg.to_string()))
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// Back references reach at most this far.
const WINDOW: usize = 32 * 1024;
/// Decoded bytes are handed out in pieces of about this size.
const FLUSH_AT: usize = 256 * 1024;

/// A canonical Huffman code as a single lookup table indexed by the next `bits` input bits
/// (bit-reversed codes): each entry is `symbol << 4 | code length`, 0 for an invalid code.
struct Table {
    bits: u32,
    entries: Vec<u32>,
}

impl Table {
    fn new(lengths: &[u8]) -> Res<Self> {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[l as usize] += 1;
        }
        count[0] = 0;
        let max = (1..16).rev().find(|&l| count[l] != 0).unwrap_or(0) as u32;
        // Over-subscribed codes are invalid; incomplete ones only leave invalid entries.
        let mut left: i32 = 1;
        for &c in &count[1..] {
            left = (left << 1) - i32::from(c);
            if left < 0 {
                return err("over-subscribed Huffman code");
            }
        }
        let bits = max.max(1);
        let mut entries = vec![0u32; 1 << bits];
        let mut next = [0u32; 16];
        let mut code = 0u32;
        for len in 1..16 {
            code = (code + u32::from(count[len - 1])) << 1;
            next[len] = code;
        }
        for (sym, &len) in lengths.iter().enumerate() {
            if len == 0 {
                continue;
            }
            let len = u32::from(len);
            let c = next[len as usize];
            next[len as usize] += 1;
            let rev = c.reverse_bits() >> (32 - len);
            let entry = (sym as u32) << 4 | len;
            let mut i = rev as usize;
            while i < entries.len() {
                entries[i] = entry;
                i += 1 << len;
            }
        }
        Ok(Table { bits, entries })
    }
}

fn fixed_tables() -> &'static (Table, Table) {
    static FIXED: OnceLock<(Table, Table)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let mut lit = [0u8; 288];
        lit[..144].fill(8);
        lit[144..256].fill(9);
        lit[256..280].fill(7);
        lit[280..].fill(8);
        let dist = [5u8; 30];
        match (Table::new(&lit), Table::new(&dist)) {
            (Ok(l), Ok(d)) => (l, d),
            _ => unreachable!("the fixed Huffman codes are valid"),
        }
    })
}

struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    buf: u64,
    count: u32,
}

impl Bits<'_> {
    #[inline]
    fn refill(&mut self) {
        if self.pos + 8 <= self.input.len() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&self.input[self.pos..self.pos + 8]);
            let word = u64::from_le_bytes(word);
            self.buf |= word << self.count;
            let taken = (63 - self.count) / 8;
            self.pos += taken as usize;
            self.count += taken * 8;
        } else {
            while self.count <= 56 && self.pos < self.input.len() {
                self.buf |= u64::from(self.input[self.pos]) << self.count;
                self.pos += 1;
                self.count += 8;
            }
        }
    }

    #[inline]
    fn take(&mut self, n: u32) -> Res<u32> {
        if n > self.count {
            self.refill();
            if n > self.count {
                return err("unexpected end of data");
            }
        }
        let v = (self.buf & ((1u64 << n) - 1)) as u32;
        self.buf >>= n;
        self.count -= n;
        Ok(v)
    }

    #[inline]
    fn decode(&mut self, table: &Table) -> Res<u32> {
        if self.count < table.bits {
            self.refill();
        }
        let entry = table.entries[(self.buf & ((1u64 << table.bits) - 1)) as usize];
        let len = entry & 15;
        if len == 0 || len > self.count {
            return err("invalid Huffman code or unexpected end of data");
        }
        self.buf >>= len;
        self.count -= len;
        Ok(entry >> 4)
    }

    /// Bits consumed so far.
    fn position(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.count)
    }

    /// Drops the bits up to the next byte boundary and gives back the whole buffered bytes.
    fn align(&mut self) {
        let drop = self.count % 8;
        self.buf >>= drop;
        self.count -= drop;
        self.pos -= (self.count / 8) as usize;
        self.buf = 0;
        self.count = 0;
    }
}

/// Decodes the raw deflate stream `input`, handing the output in order to `sink`, and says where
/// its final block starts and where the stream ends (data after the end is ignored).
pub fn inflate<E: From<InflateError>>(
    input: &[u8],
    sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Scan, E> {
    let mut bits = Bits {
        input,
        pos: 0,
        buf: 0,
        count: 0,
    };
    let mut out: Vec<u8> = Vec::with_capacity(FLUSH_AT + WINDOW + 512);
    // Bytes of `out` already handed to `sink` (kept as the window).
    let mut flushed = 0usize;
    let mut total_out = 0u64;
    let mut dynamic: Option<(Table, Table)> = None;
    loop {
        let header_bit = bits.position();
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => {
                bits.align();
                let rest = &input[bits.pos..];
                if rest.len() < 4 {
                    return Err(InflateError("truncated stored block".into()).into());
                }
                let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
                let nlen = u16::from_le_bytes([rest[2], rest[3]]);
                if len as u16 != !nlen {
                    return Err(InflateError("stored block length check failed".into()).into());
                }
                let data = rest
                    .get(4..4 + len)
                    .ok_or_else(|| InflateError("truncated stored block".into()))?;
                out.extend_from_slice(data);
                bits.pos += 4 + len;
            }
            kind @ (1 | 2) => {
                let (lit, dist) = if kind == 1 {
                    let f = fixed_tables();
                    (&f.0, &f.1)
                } else {
                    let tables = dynamic_tables(&mut bits)?;
                    let t = dynamic.insert(tables);
                    (&t.0, &t.1)
                };
                loop {
                    if out.len() - flushed >= FLUSH_AT {
                        sink(&out[flushed..])?;
                        total_out += (out.len() - flushed) as u64;
                        let keep = out.len() - WINDOW;
                        out.drain(..keep);
                        flushed = out.len();
                    }
                    bits.refill();
                    let sym = bits.decode(lit)?;
                    if sym < 256 {
                        out.push(sym as u8);
                        continue;
                    }
                    if sym == 256 {
                        break;
                    }
                    let i = (sym - 257) as usize;
                    if i >= 29 {
                        return Err(InflateError("invalid length symbol".into()).into());
                    }
                    let len =
                        usize::from(LEN_BASE[i]) + bits.take(u32::from(LEN_EXTRA[i]))? as usize;
                    let d = bits.decode(dist)? as usize;
                    if d >= 30 {
                        return Err(InflateError("invalid distance symbol".into()).into());
                    }
                    let distance =
                        usize::from(DIST_BASE[d]) + bits.take(u32::from(DIST_EXTRA[d]))? as usize;
                    // `out` holds everything since the start, or at least the last WINDOW bytes.
                    let produced = total_out as usize + out.len() - flushed;
                    if distance > out.len() || distance > produced {
                        return Err(InflateError("distance too far back".into()).into());
                    }
                    let start = out.len() - distance;
                    if distance >= len {
                        out.extend_from_within(start..start + len);
                    } else {
                        out.reserve(len);
                        for k in 0..len {
                            let b = out[start + k];
                            out.push(b);
                        }
                    }
                }
            }
            _ => return Err(InflateError("invalid block type".into()).into()),
        }
        if last {
            if out.len() > flushed {
                sink(&out[flushed..])?;
                total_out += (out.len() - flushed) as u64;
            }
            return Ok(Scan {
                final_header_bit: header_bit,
                end_bit: bits.position(),
                total_out,
            });
        }
    }
}

fn dynamic_tables(bits: &mut Bits<'_>) -> Res<(Table, Table)> {
    let hlit = bits.take(5)? as usize + 257;
    let hdist = bits.take(5)? as usize + 1;
    let hclen = bits.take(4)? as usize + 4;
    if hlit > 286 || hdist > 30 {
        return err("too many length or distance codes");
    }
    let mut clens = [0u8; 19];
    for &i in &CLEN_ORDER[..hclen] {
        clens[i] = bits.take(3)? as u8;
    }
    let ctable = Table::new(&clens)?;
    let mut lengths = [0u8; 286 + 30];
    let mut n = 0;
    while n < hlit + hdist {
        bits.refill();
        let sym = bits.decode(&ctable)?;
        let (value, repeat) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                if n == 0 {
                    return err("repeat with no previous length");
                }
                (lengths[n - 1], 3 + bits.take(2)? as usize)
            }
            17 => (0, 3 + bits.take(3)? as usize),
            18 => (0, 11 + bits.take(7)? as usize),
            _ => return err("invalid code length symbol"),
        };
        if n + repeat > hlit + hdist {
            return err("code lengths overflow");
        }
        lengths[n..n + repeat].fill(value);
        n += repeat;
    }
    if lengths[256] == 0 {
        return err("no end-of-block code");
    }
    Ok((
        Table::new(&lengths[..hlit])?,
        Table::new(&lengths[hlit..hlit + hdist])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::DeflateEncoder;
    use proptest::prelude::*;
    use std::io::Write;

    fn deflate(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(raw: &[u8]) -> Res<(Vec<u8>, Scan)> {
        let mut out = Vec::new();
        let scan = inflate(raw, &mut |b: &[u8]| {
            out.extend_from_slice(b);
            Ok::<(), InflateError>(())
        })?;
        Ok((out, scan))
    }

    fn sample(n: usize) -> Vec<u8> {
        // Compressible but not trivial: words with a drifting pattern and some noise.
        let mut x = 12345u32;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 7 == 0 {
                    (x >> 16) as u8
                } else {
                    b"import numpy as np\n"[i % 19]
                }
            })
            .collect()
    }

    #[test]
    fn round_trips_every_level_and_reports_the_end() {
        for level in 0..=9 {
            for n in [0, 1, 100, 70_000, 700_000] {
                let data = sample(n);
                let raw = deflate(&data, level);
                let (out, scan) = decode(&raw).unwrap();
                assert_eq!(out, data, "level {level} size {n}");
                assert_eq!(scan.total_out, n as u64);
                assert_eq!(
                    scan.end_bit.div_ceil(8),
                    raw.len() as u64,
                    "level {level} size {n}"
                );
                // The final block's header has its BFINAL bit set.
                let f = scan.final_header_bit;
                assert_eq!(raw[(f / 8) as usize] >> (f % 8) & 1, 1);
            }
        }
    }

    #[test]
    fn rejects_corrupt_data() {
        let raw = deflate(&sample(10_000), 6);
        assert!(decode(&raw[..raw.len() / 2]).is_err());
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
        // A stored block whose length check fails.
        assert!(decode(&[1, 5, 0, 5, 0, 1, 2, 3, 4, 5]).is_err());
        // A distance before the start of the output.
        let mut bad = vec![0b0000_0011u8];
        bad.extend_from_slice(&[0xff; 8]);
        assert!(decode(&bad).is_err());
    }

    proptest! {
        #[test]
        fn agrees_with_zlib(data in proptest::collection::vec(0u8..8, 0..5000), level in 0u32..10) {
            let raw = deflate(&data, level);
            let (out, scan) = decode(&raw).unwrap();
            prop_assert_eq!(out, data);
            prop_assert_eq!(scan.end_bit.div_ceil(8), raw.len() as u64);
        }
    }
}
