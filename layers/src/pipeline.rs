//! The back half of a layer build, behind [`LayerWriter`](crate::LayerWriter): tar bytes ->
//! diff_id hash -> compressor -> blob (hashed and written by the store).
//!
//! The caller's thread reads the entries and fills 1 MiB chunks with tar bytes (file contents
//! are read straight into the chunk, no copy buffer), hashing each full chunk (the diff_id). It
//! then goes to a sink thread that feeds the compressor, whose own workers (gzip blocks, zstd
//! jobs) compress in parallel while the sink writes and hashes the finished output in order.
//! So reading, hashing, compressing and writing overlap, and the thread that hands work to the
//! compression workers does little else. A layer smaller than one chunk never starts the
//! thread: it is compressed on the caller's thread in `finish`.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::compress::{Compression, Encoder};
use crate::digest::{Digest, Sha256};
use crate::store::BlobWriter;

/// Bytes per chunk handed from the reader to the sink (a multiple of the gzip block).
pub(crate) const CHUNK_SIZE: usize = 1 << 20;
/// Full chunks in flight between the reader and the sink.
const QUEUE_DEPTH: usize = 16;

/// compressor -> blob: where the tar bytes go once hashed.
struct Back {
    encoder: Encoder<BlobWriter>,
}

impl Back {
    fn take(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.encoder.write_all(bytes)
    }

    fn finish(self) -> io::Result<BlobWriter> {
        self.encoder.finish()
    }
}

enum Stage {
    /// Nothing handed over yet: the back half is still here.
    Inline(Box<Back>),
    Threaded {
        to_sink: SyncSender<(Vec<u8>, usize)>,
        spare: Receiver<Vec<u8>>,
        sink: JoinHandle<io::Result<BlobWriter>>,
    },
    Done,
}

/// Takes tar bytes; `finish` returns the diff_id and the (uncommitted) blob.
pub(crate) struct TarPipeline {
    /// The chunk being filled: always `CHUNK_SIZE` long, `filled` bytes used.
    chunk: Vec<u8>,
    filled: usize,
    /// The diff_id, hashed on the reader's thread: the sink only feeds the compressor, so that
    /// it hands the next job to a compression worker as soon as one is free. `None` for an
    /// uncompressed layer: the blob's digest is the diff_id, so the bytes are hashed once.
    hasher: Option<Sha256>,
    stage: Stage,
    aborted: Arc<AtomicBool>,
}

impl TarPipeline {
    pub(crate) fn new(
        blob: BlobWriter,
        compression: Compression,
        threads: usize,
    ) -> io::Result<Self> {
        let encoder = compression.encoder_with_threads(blob, threads)?;
        Ok(TarPipeline {
            chunk: vec![0; CHUNK_SIZE],
            filled: 0,
            hasher: (compression != Compression::None).then(Sha256::new),
            stage: Stage::Inline(Box::new(Back { encoder })),
            aborted: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Appends `bytes` to the stream.
    pub(crate) fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let space = self.space()?;
            let take = bytes.len().min(space.len());
            space[..take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
        }
        Ok(())
    }

    /// The free part of the current chunk (never empty): read into it, then [`Self::commit`].
    pub(crate) fn space(&mut self) -> io::Result<&mut [u8]> {
        if self.filled == CHUNK_SIZE {
            self.hand_over()?;
        }
        Ok(&mut self.chunk[self.filled..])
    }

    /// Marks `len` bytes of [`Self::space`] as written.
    pub(crate) fn commit(&mut self, len: usize) {
        debug_assert!(self.filled + len <= CHUNK_SIZE);
        self.filled = (self.filled + len).min(CHUNK_SIZE);
    }

    /// Sends the full chunk to the sink thread (starting it the first time).
    fn hand_over(&mut self) -> io::Result<()> {
        if matches!(self.stage, Stage::Inline(_))
            && let Stage::Inline(back) = std::mem::replace(&mut self.stage, Stage::Done)
        {
            self.stage = self.start_sink(*back)?;
        }
        let Stage::Threaded { to_sink, spare, .. } = &self.stage else {
            return Err(io::Error::other("the layer stream is already finished"));
        };
        let next = spare.try_recv().unwrap_or_else(|_| vec![0; CHUNK_SIZE]);
        let full = std::mem::replace(&mut self.chunk, next);
        let filled = std::mem::take(&mut self.filled);
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&full[..filled]);
        }
        if to_sink.send((full, filled)).is_err() {
            // The sink stopped on an error: report it.
            return Err(match self.join_sink() {
                Err(err) => err,
                Ok(_) => io::Error::other("the layer compression thread stopped early"),
            });
        }
        Ok(())
    }

    fn start_sink(&self, mut back: Back) -> io::Result<Stage> {
        let (to_sink, from_reader) = sync_channel::<(Vec<u8>, usize)>(QUEUE_DEPTH);
        let (give_back, spare) = sync_channel::<Vec<u8>>(QUEUE_DEPTH + 1);
        let aborted = Arc::clone(&self.aborted);
        let sink = std::thread::Builder::new()
            .name("layers-sink".to_owned())
            .spawn(move || {
                for (chunk, filled) in from_reader {
                    if aborted.load(Ordering::Relaxed) {
                        return Err(io::Error::other("layer build abandoned"));
                    }
                    back.take(&chunk[..filled])?;
                    // Reused by the reader when it wants it; dropped otherwise.
                    let _ = give_back.try_send(chunk);
                }
                back.finish()
            })?;
        Ok(Stage::Threaded {
            to_sink,
            spare,
            sink,
        })
    }

    /// Waits for the sink thread (its channel must be closed first, or it must be failing).
    fn join_sink(&mut self) -> io::Result<BlobWriter> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Threaded { to_sink, sink, .. } => {
                drop(to_sink);
                sink.join()
                    .map_err(|_| io::Error::other("the layer compression thread panicked"))?
            }
            Stage::Inline(back) => back.finish(),
            Stage::Done => Err(io::Error::other("the layer stream is already finished")),
        }
    }

    /// Ends the stream: the diff_id of everything written (`None` when uncompressed: the
    /// blob's digest) and the blob, ready to commit.
    pub(crate) fn finish(mut self) -> io::Result<(Option<Digest>, BlobWriter)> {
        let filled = std::mem::take(&mut self.filled);
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&self.chunk[..filled]);
        }
        match &mut self.stage {
            Stage::Inline(back) => back.take(&self.chunk[..filled])?,
            Stage::Threaded { to_sink, .. } => {
                let last = std::mem::take(&mut self.chunk);
                if to_sink.send((last, filled)).is_err() {
                    return Err(match self.join_sink() {
                        Err(err) => err,
                        Ok(_) => io::Error::other("the layer compression thread stopped early"),
                    });
                }
            }
            Stage::Done => return Err(io::Error::other("the layer stream is already finished")),
        }
        let blob = self.join_sink()?;
        Ok((self.hasher.take().map(Sha256::finish), blob))
    }
}

impl Drop for TarPipeline {
    /// Dropped unfinished (an error on the way): stop the sink before the blob is dropped, so
    /// no thread keeps writing into the store after the build failed.
    fn drop(&mut self) {
        if let Stage::Threaded { .. } = self.stage {
            self.aborted.store(true, Ordering::Relaxed);
            let _ = self.join_sink();
        }
    }
}
