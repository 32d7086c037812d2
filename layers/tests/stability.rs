//! Byte stability: the same layer gives the same compressed bytes (so the same digest) whatever
//! the number of compression threads, the timing of the pipeline stages and the way the bytes
//! arrive, for gzip and zstd.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{self, Read, Write};
use std::time::Duration;

use layers::{BlobStore, Compression, Encoder, LayerInfo, LayerOptions, LayerWriter};

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 24) as u8).collect()
    }
}

fn text(len: usize, seed: u64) -> Vec<u8> {
    let words = [
        "def ", "return ", "self", ".weight", " = ", "torch", "(x)\n", "    ", "import ", "cog\n",
    ];
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(words[rng.below(words.len() as u64) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

/// Mixed content, large enough for many gzip blocks, several 1 MiB pipeline chunks and more
/// than one zstd job at level 1 (2 MiB jobs) and at level 3 (8 MiB jobs).
fn contents() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0x5eed);
    let mut files = Vec::new();
    for index in 0..300 {
        let len = rng.below(20_000) as usize;
        files.push((format!("pkg/mod{index:03}.py"), text(len, index)));
    }
    files.push(("weights/a.bin".into(), rng.bytes(5 << 20)));
    files.push(("weights/config.json".into(), text(9 << 20, 99)));
    files.push(("weights/b.bin".into(), rng.bytes(3 << 20)));
    files
}

/// A reader that hands out its bytes in random short pieces and now and then sleeps: it shifts
/// when chunks reach the sink and when blocks reach the compression workers.
struct Jittery<'a> {
    data: &'a [u8],
    rng: Rng,
}

impl Read for Jittery<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rng.below(64) == 0 {
            std::thread::sleep(Duration::from_millis(self.rng.below(3)));
        }
        let want = (1 + self.rng.below(300_000) as usize)
            .min(buf.len())
            .min(self.data.len());
        buf[..want].copy_from_slice(&self.data[..want]);
        self.data = &self.data[want..];
        Ok(want)
    }
}

fn build(
    files: &[(String, Vec<u8>)],
    compression: Compression,
    threads: usize,
    jitter: Option<u64>,
) -> (LayerInfo, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap().with_fsync(false);
    let options = LayerOptions {
        mtime: Some(0),
        ..LayerOptions::new(compression).with_threads(threads)
    };
    let mut writer = LayerWriter::new(&store, &options).unwrap();
    writer.append_dir("pkg", 0o755).unwrap();
    writer.append_dir("weights", 0o755).unwrap();
    for (index, (path, data)) in files.iter().enumerate() {
        let size = data.len() as u64;
        match jitter {
            Some(seed) => {
                let mut reader = Jittery {
                    data,
                    rng: Rng(seed + index as u64 + 1),
                };
                writer.append_file(path, 0o644, size, &mut reader).unwrap();
            }
            None => writer
                .append_file(path, 0o644, size, &mut &data[..])
                .unwrap(),
        }
    }
    let layer = writer.finish().unwrap();
    let blob = std::fs::read(store.blob_path(&layer.digest)).unwrap();
    (layer, blob)
}

fn assert_stable(compression: Compression) {
    let files = contents();
    let (reference, blob) = build(&files, compression, 1, None);
    assert!(blob.len() > 5 << 20, "the random files keep the blob large");
    for (threads, jitter) in [
        (2, None),
        (8, None),
        (1, Some(1)),
        (2, Some(2)),
        (8, Some(3)),
    ] {
        let (layer, other) = build(&files, compression, threads, jitter);
        assert_eq!(
            layer, reference,
            "{compression:?} with {threads} threads, jitter {jitter:?}"
        );
        assert!(other == blob, "the blob bytes differ");
    }
}

#[test]
fn gzip_layers_are_byte_stable_across_threads_and_timing() {
    assert_stable(Compression::gzip());
}

#[test]
fn zstd_layers_are_byte_stable_across_threads_and_timing() {
    assert_stable(Compression::zstd());
    assert_stable(Compression::Zstd { level: 1 });
}

#[test]
fn uncompressed_layers_do_not_depend_on_threads() {
    let files = contents();
    let (reference, _) = build(&files, Compression::None, 1, None);
    assert_eq!(reference.digest, reference.diff_id);
    assert_eq!(build(&files, Compression::None, 8, Some(4)).0, reference);
}

/// A writer that is slow now and then: finished blocks and jobs wait, workers run ahead.
struct SlowSink {
    out: Vec<u8>,
    rng: Rng,
}

impl Write for SlowSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.rng.below(16) == 0 {
            std::thread::sleep(Duration::from_millis(1 + self.rng.below(2)));
        }
        let take = buf.len().min(1 + self.rng.below(100_000) as usize);
        self.out.extend_from_slice(&buf[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The encoder on its own (as the debian crate uses it): random write sizes, flushes in
/// between and a slow output change nothing.
fn encode(data: &[u8], compression: Compression, threads: usize, seed: Option<u64>) -> Vec<u8> {
    let sink = SlowSink {
        out: Vec::new(),
        rng: Rng(seed.unwrap_or(0) | 1),
    };
    let mut encoder: Encoder<SlowSink> = compression.encoder_with_threads(sink, threads).unwrap();
    match seed {
        None => encoder.write_all(data).unwrap(),
        Some(seed) => {
            let mut rng = Rng(seed | 1);
            let mut rest = data;
            while !rest.is_empty() {
                let take = (1 + rng.below(400_000) as usize).min(rest.len());
                encoder.write_all(&rest[..take]).unwrap();
                rest = &rest[take..];
                if rng.below(4) == 0 {
                    encoder.flush().unwrap();
                }
            }
        }
    }
    encoder.finish().unwrap().out
}

#[test]
fn encoders_ignore_write_sizes_flushes_and_a_slow_output() {
    let mut data = Vec::new();
    for (_, content) in contents() {
        data.extend(content);
    }
    for compression in [Compression::gzip(), Compression::zstd()] {
        let reference = encode(&data, compression, 1, None);
        for (threads, seed) in [(2, Some(7)), (8, Some(8)), (1, Some(9))] {
            let other = encode(&data, compression, threads, seed);
            assert!(
                other == reference,
                "{compression:?}: {threads} threads, seed {seed:?}: {} vs {} bytes",
                other.len(),
                reference.len()
            );
        }
    }
}

#[test]
fn a_failing_reader_stops_the_pipeline_and_leaves_no_blob() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(7);
            self.0 -= n;
            Ok(n)
        }
    }
    for compression in [Compression::gzip(), Compression::zstd(), Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut writer = LayerWriter::new(&store, &LayerOptions::new(compression)).unwrap();
        // Several chunks go to the sink thread before the reader fails.
        let err = chain(
            &writer
                .append_file("big", 0o644, 10 << 20, &mut Failing(5 << 20))
                .unwrap_err(),
        );
        assert!(
            err.contains("\"big\"") && err.contains("disk on fire"),
            "{err}"
        );
        drop(writer);
        let blobs: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(blobs.is_empty(), "{blobs:?}");
        let temp = store.temp_files();
        assert!(temp.is_empty(), "{temp:?}");
    }
}

/// The error with its sources, as the CLI prints it.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
