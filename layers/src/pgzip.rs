//! Block-parallel gzip, as pigz does it.
//!
//! The input is cut into fixed 128 KiB blocks. Each block is compressed on its own (on a
//! dedicated thread pool) as raw deflate primed with the previous block's last 32 KiB as
//! dictionary, and ends with a sync flush (the last block with a final block), so the pieces
//! concatenate into ONE deflate stream inside ONE gzip member; the CRC-32s of the blocks are
//! combined. Block boundaries depend only on the input bytes, so the output is the same for the
//! same input and level whatever the thread count, the timing of the workers, the sizes of the
//! writes or any `flush` in between (`layers/tests/compression.rs` checks all four).

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use flate2::{Compress, FlushCompress, Status};

/// Uncompressed bytes per block (pigz's default).
pub const BLOCK_SIZE: usize = 128 * 1024;
/// Deflate's window: how much of the previous block primes the next.
const DICT_SIZE: usize = 32 * 1024;

type BlockResult = Result<(Vec<u8>, crc32fast::Hasher), String>;

/// Compression workers, apart from rayon's global pool: they never block, so callers running on
/// rayon threads (e.g. `build_all`) cannot deadlock waiting for them. One pool per thread count
/// asked for (in practice one: the machine's parallelism).
fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<BTreeMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    pools
        .entry(threads)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|index| format!("layers-gzip-{index}"))
                    .build()
                    .or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build())
                    .unwrap_or_else(|err| panic!("cannot start a compression thread: {err}")),
            )
        })
        .clone()
}

/// The default number of compression workers: the machine's available parallelism.
pub fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A gzip encoder that compresses blocks in parallel and writes one gzip member, in order, to
/// `inner`. Call [`ParGzEncoder::finish`]; dropping it loses the trailer.
pub struct ParGzEncoder<W: Write> {
    inner: W,
    level: u32,
    pool: Arc<rayon::ThreadPool>,
    block: Vec<u8>,
    dict: Vec<u8>,
    pending: VecDeque<Receiver<BlockResult>>,
    max_pending: usize,
    crc: crc32fast::Hasher,
    /// Uncompressed bytes taken (crc32fast keeps its count private).
    total_in: u64,
    header_written: bool,
}

impl<W: Write> ParGzEncoder<W> {
    /// `level` is zlib's 0-9 (clamped); as many workers as the machine has cores.
    pub fn new(inner: W, level: u32) -> Self {
        Self::with_threads(inner, level, worker_count())
    }

    /// With `threads` compression workers (at least 1). The output does not depend on it.
    pub fn with_threads(inner: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        ParGzEncoder {
            inner,
            level: level.min(9),
            pool: pool(threads),
            block: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            pending: VecDeque::new(),
            // Deep enough that the workers keep busy while the writer thread is descheduled.
            max_pending: 4 * threads + 4,
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            header_written: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, mtime 0 (reproducible), XFL per level, OS unknown.
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            self.inner
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Hands the full current block to the pool.
    fn submit_block(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        let next_dict = data[data.len().saturating_sub(DICT_SIZE)..].to_vec();
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let level = self.level;
        let (sender, receiver) = sync_channel(1);
        self.pool.spawn(move || {
            // The receiver may be gone if the encoder was dropped on an error.
            let _ = sender.send(compress_block(&dict, &data, level, false));
        });
        self.pending.push_back(receiver);
        self.drain(self.max_pending)
    }

    /// Writes finished blocks in order until at most `keep` are pending (blocking for the
    /// oldest when needed), and any further ones already done.
    fn drain(&mut self, keep: usize) -> io::Result<()> {
        while let Some(receiver) = self.pending.front() {
            let result = if self.pending.len() > keep {
                receiver.recv().map_err(|_| lost_worker())?
            } else {
                match receiver.try_recv() {
                    Ok(result) => result,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Err(lost_worker()),
                }
            };
            self.pending.pop_front();
            self.emit(result)?;
        }
        Ok(())
    }

    fn emit(&mut self, result: BlockResult) -> io::Result<()> {
        let (compressed, crc) = result.map_err(io::Error::other)?;
        self.write_header()?;
        self.inner.write_all(&compressed)?;
        self.crc.combine(&crc);
        Ok(())
    }

    /// Compresses the last block, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let data = std::mem::take(&mut self.block);
        let dict = std::mem::take(&mut self.dict);
        // The last block is compressed here: a small input never touches the pool.
        let last = compress_block(&dict, &data, self.level, true);
        self.drain(0)?;
        self.emit(last)?;
        let crc = self.crc.clone().finalize();
        let total = self.total_in;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&(total as u32).to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

fn lost_worker() -> io::Error {
    io::Error::other("a gzip compression worker stopped unexpectedly")
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.block.len() == BLOCK_SIZE {
            // Only now is the full block known not to be the last one.
            self.submit_block()?;
        }
        let take = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..take]);
        self.total_in += take as u64;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are cut by size only (determinism): flushing just writes what is done.
        self.drain(self.max_pending)?;
        self.inner.flush()
    }
}

/// Raw deflate of one block, primed with `dict`; ends with a sync flush, or a final block when
/// `last`. Returns the compressed bytes and the block's CRC-32.
///
/// Every block gets a fresh deflate state. Reusing one per thread (`reset`) is not enough: the
/// match finder compares up to 258 bytes past the end of the input, into window bytes left over
/// from whatever that thread compressed before, which can pick a different (equally long) match
/// and so change the bytes with the thread count and timing. A fresh state's window is zeroed.
fn compress_block(dict: &[u8], data: &[u8], level: u32, last: bool) -> BlockResult {
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    let mut compress = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() {
        compress
            .set_dictionary(dict)
            .map_err(|err| format!("cannot set the deflate dictionary: {err}"))?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(16 * 1024));
        }
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(|err| format!("deflate failed: {err}"))?;
        let consumed = compress.total_in() as usize;
        let done = match status {
            Status::StreamEnd => true,
            Status::Ok | Status::BufError => {
                !last && consumed == data.len() && out.len() < out.capacity()
            }
        };
        if done {
            break;
        }
    }
    Ok((out, crc))
}
