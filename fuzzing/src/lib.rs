//! Mutation fuzzing on top of proptest, for one test per parser across the workspace.
//!
//! Each parser has a corpus of real inputs in `fuzzing/corpus/<parser>/` (checked in). A case is
//! a corpus entry with a few mutations applied (byte flips, insertions of hostile tokens such as
//! `../` or a NUL, deletions, duplications, truncations, splices with another entry), or plain
//! random bytes. Proptest shrinks a failing case to its smallest mutation list and records its
//! seed in a `.proptest-regressions` file beside the test, which is replayed on every run.
//!
//! How long: [`config`] runs `COG_FUZZ_CASES` cases per target (default 256, what CI runs);
//! longer on demand: `COG_FUZZ_CASES=100000 cargo test --test fuzz`.
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Tokens that break parsers and path joins more often than random bytes do.
const HOSTILE: &[&[u8]] = &[
    b"../",
    b"..\\",
    b"/",
    b"%2F",
    b"%2e%2e",
    b"\0",
    b"\n",
    b"\r\n",
    b"\"",
    b"'",
    b"<",
    b">",
    b"\xff\xfe",
    b"\xe2\x80\xae",
    b"18446744073709551616",
    b"-1",
    b"0x",
    b"{",
    b"[",
    b":",
    b"=",
    b"#",
    b";",
    b"@",
    b"\\",
    b"*",
    b"${",
];

/// One edit of an input; positions are fractions of its length so that a case stays meaningful
/// while proptest shrinks it.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip { at: f64, bits: u8 },
    Insert { at: f64, bytes: Vec<u8> },
    InsertHostile { at: f64, token: usize },
    Delete { at: f64, len: usize },
    Duplicate { at: f64, len: usize },
    Truncate { at: f64 },
    Splice { at: f64, other: usize, from: f64 },
}

fn position(len: usize, at: f64) -> usize {
    ((len as f64) * at).floor().clamp(0.0, len as f64) as usize
}

/// `input` with `mutations` applied in order; `corpus` is what splices take from.
pub fn mutate(mut input: Vec<u8>, mutations: &[Mutation], corpus: &[Vec<u8>]) -> Vec<u8> {
    for mutation in mutations {
        let len = input.len();
        match mutation {
            Mutation::Flip { at, bits } => {
                if len > 0 {
                    let i = position(len - 1, *at);
                    input[i] ^= bits | 1;
                }
            }
            Mutation::Insert { at, bytes } => {
                let i = position(len, *at);
                input.splice(i..i, bytes.iter().copied());
            }
            Mutation::InsertHostile { at, token } => {
                let i = position(len, *at);
                let token = HOSTILE[token % HOSTILE.len()];
                input.splice(i..i, token.iter().copied());
            }
            Mutation::Delete { at, len: n } => {
                let i = position(len, *at);
                let end = (i + n).min(len);
                input.drain(i..end);
            }
            Mutation::Duplicate { at, len: n } => {
                let i = position(len, *at);
                let end = (i + n).min(len);
                let copy = input[i..end].to_vec();
                input.splice(end..end, copy);
            }
            Mutation::Truncate { at } => input.truncate(position(len, *at)),
            Mutation::Splice { at, other, from } => {
                if !corpus.is_empty() {
                    let other = &corpus[other % corpus.len()];
                    let i = position(len, *at);
                    let j = position(other.len(), *from);
                    input.truncate(i);
                    input.extend_from_slice(&other[j..]);
                }
            }
        }
    }
    input
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), any::<u8>()).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        (at.clone(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (at.clone(), any::<usize>()).prop_map(|(at, token)| Mutation::InsertHostile { at, token }),
        (at.clone(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at.clone(), 1..256usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        at.clone().prop_map(|at| Mutation::Truncate { at }),
        (at.clone(), any::<usize>(), at).prop_map(|(at, other, from)| Mutation::Splice {
            at,
            other,
            from
        }),
    ]
}

/// The corpus directory of `parser`.
pub fn corpus_dir(parser: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(parser)
}

/// Every file of `parser`'s corpus, by name. Panics when it has none: a fuzz target without
/// seeds would test only random bytes, which most parsers reject at the first byte.
pub fn corpus(parser: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(parser);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "fuzz corpus {} is empty", dir.display());
    paths
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// Inputs for `parser`: mutated corpus entries (9 in 10) or random bytes.
pub fn inputs(parser: &str) -> BoxedStrategy<Vec<u8>> {
    inputs_from(corpus(parser))
}

/// [`inputs`] over a corpus built in code (binary formats the test assembles itself).
pub fn inputs_from(corpus: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    assert!(!corpus.is_empty(), "an empty fuzz corpus");
    let seeds = corpus.clone();
    let mutated = (0..seeds.len(), proptest::collection::vec(mutation(), 0..8))
        .prop_map(move |(seed, mutations)| mutate(seeds[seed].clone(), &mutations, &corpus));
    prop_oneof![
        9 => mutated,
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
    .boxed()
}

/// [`inputs`] as text (invalid UTF-8 replaced), for parsers that take `&str`.
pub fn text_inputs(parser: &str) -> BoxedStrategy<String> {
    inputs(parser)
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .boxed()
}

/// Cases per target: `COG_FUZZ_CASES`, default 256. Regressions are kept beside the test.
pub fn config() -> Config {
    let cases = std::env::var("COG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_in_bounds_on_any_input() {
        let corpus = vec![b"abc".to_vec(), Vec::new()];
        proptest!(|(input in proptest::collection::vec(any::<u8>(), 0..8),
                    mutations in proptest::collection::vec(mutation(), 0..16))| {
            let _ = mutate(input, &mutations, &corpus);
        });
    }

    #[test]
    fn hostile_tokens_are_inserted_where_asked() {
        let out = mutate(
            b"name.whl".to_vec(),
            &[Mutation::InsertHostile { at: 0.0, token: 0 }],
            &[],
        );
        assert_eq!(out, b"../name.whl");
    }
}
