//! Block-parallel gzip and zstd: correct, one gzip member, deterministic.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use layers::Compression;
use layers::pgzip::{BLOCK_SIZE, ParGzEncoder};

/// Deterministic pseudo-random bytes (xorshift), no dependency needed.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn text_bytes(len: usize) -> Vec<u8> {
    let words = [
        "lorem ", "ipsum ", "dolor ", "sit ", "amet\n", "cog ", "layer ",
    ];
    let mut out = Vec::with_capacity(len + 8);
    let mut index = 0usize;
    while out.len() < len {
        out.extend_from_slice(words[(index * 7 + index / 3) % words.len()].as_bytes());
        index += 1;
    }
    out.truncate(len);
    out
}

fn gzip(data: &[u8], level: u32, chunk: usize) -> Vec<u8> {
    let mut encoder = ParGzEncoder::new(Vec::new(), level);
    for piece in data.chunks(chunk.max(1)) {
        encoder.write_all(piece).unwrap();
    }
    encoder.finish().unwrap()
}

fn gunzip_single_member(compressed: &[u8]) -> Vec<u8> {
    // GzDecoder stops after the first member: a full round trip proves there is only one.
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn system_tool_accepts(tool: &str, args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output.stdout)
}

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut mixed = random_bytes(1024 * 1024 + 17, 7);
    mixed.extend(text_bytes(2 * 1024 * 1024 + 3));
    mixed.extend(random_bytes(100_000, 9));
    vec![
        ("empty".into(), Vec::new()),
        ("one byte".into(), b"x".to_vec()),
        ("exactly one block".into(), text_bytes(BLOCK_SIZE)),
        (
            "exactly three blocks".into(),
            random_bytes(3 * BLOCK_SIZE, 3),
        ),
        ("block plus one".into(), text_bytes(BLOCK_SIZE + 1)),
        ("multi-MB random+text".into(), mixed),
    ]
}

#[test]
fn parallel_gzip_round_trips_as_one_member() {
    for (name, data) in inputs() {
        for level in [1, 9] {
            let compressed = gzip(&data, level, 64 * 1024 + 5);
            assert_eq!(
                gunzip_single_member(&compressed),
                data,
                "{name} level {level}"
            );
        }
    }
}

#[test]
fn parallel_gzip_passes_system_gzip_and_pigz() {
    for (name, data) in inputs() {
        let compressed = gzip(&data, 6, 1 << 20);
        for tool in ["gzip", "pigz"] {
            if let Some(out) = system_tool_accepts(tool, &["-d", "-c"], &compressed) {
                assert_eq!(out, data, "{tool} on {name}");
            }
            system_tool_accepts(tool, &["-t"], &compressed);
        }
    }
}

#[test]
fn parallel_gzip_is_deterministic_whatever_the_write_sizes() {
    let data = inputs().pop().unwrap().1;
    let reference = gzip(&data, 6, 1 << 20);
    for chunk in [1000, BLOCK_SIZE, 3 * BLOCK_SIZE + 1] {
        assert_eq!(gzip(&data, 6, chunk), reference, "chunk {chunk}");
    }
    let text = text_bytes(2 * 1024 * 1024);
    let compressed = gzip(&text, 6, 1 << 20);
    assert!(
        compressed.len() < text.len() / 5,
        "dictionary priming keeps the ratio"
    );
}

fn zstd_with_workers(data: &[u8], workers: u32) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.multithread(workers).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn zstd_round_trips_and_is_deterministic() {
    for (name, data) in inputs() {
        let mut encoder = Compression::zstd().encoder(Vec::new()).unwrap();
        for piece in data.chunks(70_000) {
            encoder.write_all(piece).unwrap();
        }
        let compressed = encoder.finish().unwrap();
        assert_eq!(zstd::decode_all(&compressed[..]).unwrap(), data, "{name}");
        if let Some(out) = system_tool_accepts("zstd", &["-d", "-c"], &compressed) {
            assert_eq!(out, data, "zstd -d on {name}");
        }
    }
    // Large enough for several zstd jobs: the worker count must not change the bytes.
    let mut big = text_bytes(12 * 1024 * 1024);
    big.extend(random_bytes(6 * 1024 * 1024, 5));
    let one = zstd_with_workers(&big, 1);
    assert_eq!(zstd_with_workers(&big, 2), one);
    assert_eq!(zstd_with_workers(&big, 4), one);
}
