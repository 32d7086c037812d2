//! Schema generation against predictor fixtures: every document and every error message is
//! an insta snapshot (`tests/schema_fixtures/snapshots/`). A fixture is a folder with a
//! `cog.yaml` (its `predict:`/`run:`/`train:` references) and the Python files.
//! A fixture may also hold `openapi_schema.json`: the exact bytes expected (kept for the
//! server's tests to reuse), checked here so it cannot drift.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cog::schema::{self, Mode};
use proptest::prelude::*;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schema_fixtures")
        .join(kind);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixture folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn refs(dir: &Path) -> (Option<String>, Option<String>) {
    let yaml = std::fs::read_to_string(dir.join("cog.yaml")).expect("cog.yaml");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect("valid cog.yaml");
    let get = |key: &str| doc.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    (get("run").or_else(|| get("predict")), get("train"))
}

fn name(dir: &Path) -> String {
    dir.file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned()
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema_fixtures/snapshots"),
    );
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn documents_match_snapshots() {
    let dirs = fixtures("ok");
    assert!(
        dirs.len() >= 40,
        "expected at least 40 predictor fixtures, found {}",
        dirs.len()
    );
    for dir in dirs {
        let (predict, train) = refs(&dir);
        let out = schema::generate(&dir, predict.as_deref(), train.as_deref())
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        // Always a valid JSON document, and the label carries the same bytes.
        serde_json::from_str::<serde_json::Value>(&out.document).expect("valid JSON");
        assert_eq!(out.label, out.document);
        if let Ok(expected) = std::fs::read_to_string(dir.join("openapi_schema.json")) {
            assert_eq!(
                out.document,
                expected,
                "{}: openapi_schema.json differs",
                dir.display()
            );
        }
        snapshot_settings()
            .bind(|| insta::assert_snapshot!(format!("ok__{}", name(&dir)), out.document));
    }
}

#[test]
fn errors_match_snapshots() {
    let dirs = fixtures("errors");
    assert!(
        dirs.len() >= 15,
        "expected at least 15 error fixtures, found {}",
        dirs.len()
    );
    for dir in dirs {
        let (predict, train) = refs(&dir);
        let err = schema::generate(&dir, predict.as_deref(), train.as_deref())
            .expect_err(&format!("{} should fail", dir.display()));
        let shown = err
            .to_string()
            .replace(&*dir.to_string_lossy(), "<fixture>");
        snapshot_settings()
            .bind(|| insta::assert_snapshot!(format!("error__{}", name(&dir)), shown));
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schema_fixtures/ok")
        .join(name)
}

#[test]
fn concurrency_and_async_are_reported() {
    let out = schema::generate(
        &fixture("concurrent_async"),
        Some("predict.py:Predictor"),
        None,
    )
    .unwrap();
    assert_eq!(out.concurrency_max, Some(8));
    assert!(out.run_is_async);

    let out = schema::generate(
        &fixture("async_concatenate_concurrent"),
        Some("predict.py:Runner"),
        None,
    )
    .unwrap();
    assert_eq!(out.concurrency_max, Some(4));
    assert!(out.run_is_async);

    let out = schema::generate(&fixture("primitives"), Some("predict.py:Predictor"), None).unwrap();
    assert_eq!(out.concurrency_max, None);
    assert!(!out.run_is_async);
}

#[test]
fn model_is_exposed_for_input_coercion() {
    let out = schema::generate(
        &fixture("input_keywords"),
        Some("predict.py:Predictor"),
        None,
    )
    .unwrap();
    let model = out.predict.expect("predict model");
    assert_eq!(model.mode, Mode::Predict);
    let guidance = model.input("guidance").expect("guidance");
    assert_eq!(guidance.order, 1);
    assert_eq!(guidance.ge, Some(0.0));
    assert_eq!(guidance.le, Some(20.5));
    assert_eq!(
        guidance.effective_default(),
        Some(&schema::Value::Float(7.5))
    );
    assert!(!guidance.is_required());
    let prompt = model.input("prompt").expect("prompt");
    assert_eq!(prompt.regex.as_deref(), Some("^[a-z ]+$"));
}

#[test]
fn errors_carry_file_and_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schema_fixtures/errors/default_below_minimum");
    let err = schema::generate(&dir, Some("predict.py:Predictor"), None).unwrap_err();
    let loc = err.location.expect("location");
    assert_eq!(loc.file, Path::new("predict.py"));
    assert_eq!(loc.line, 6);
    assert!(
        err.message.contains("invalid") && err.message.contains("minimum"),
        "{}",
        err.message
    );
}

/// Runs the parser on arbitrary text; it must return (Ok or Err) quickly and never panic.
fn parse_bounded(src: &str) {
    let start = Instant::now();
    let _ = schema::parse_model_source(src, "Predictor", Mode::Predict);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "parser took {:?}",
        start.elapsed()
    );
}

const PIECES: &[&str] = &[
    "from cog import BasePredictor, Input, Path\n",
    "class Predictor(BasePredictor):\n",
    "    def predict(self",
    ", x: ",
    "str",
    "int",
    "list[",
    "Optional[",
    "Literal[\"a\", 1]",
    "]",
    ") -> ",
    "Iterator[",
    "ConcatenateIterator[str]",
    ":\n",
    "        return x\n",
    " = Input(",
    "default=",
    "choices=[",
    "\"a\"",
    ", ",
    "ge=1",
    ")",
    "@concurrent(max=2)\n",
    "async ",
    "Annotated[dict, Opaque]",
    "BaseModel",
    "TypedDict",
    "\"\"\"",
    "'",
    "#",
    "\\",
    "\n",
    "    ",
    "X = [1, 2]\n",
    "import typing as t\n",
    "t.List[",
    "from .types import Output\n",
    "\u{e9}",
    "\0",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(src in "\\PC{0,400}") {
        parse_bounded(&src);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        parse_bounded(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parser_never_panics_on_python_like_text(parts in proptest::collection::vec(proptest::sample::select(PIECES), 0..60)) {
        parse_bounded(&parts.concat());
    }

    #[test]
    fn parser_never_panics_on_mutated_fixture(cut in 0usize..2000, insert in "\\PC{0,20}") {
        let src = std::fs::read_to_string(fixture("input_keywords").join("predict.py")).unwrap();
        let mut at = cut.min(src.len());
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        parse_bounded(&format!("{}{}{}", &src[..at], insert, &src[at..]));
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowing() {
    let deep = format!(
        "from cog import BasePredictor\nclass Predictor(BasePredictor):\n    def predict(self, x: {}str{}) -> str:\n        ...\n",
        "list[".repeat(5000),
        "]".repeat(5000)
    );
    parse_bounded(&deep);
    let deep_default = format!(
        "from cog import BasePredictor\nclass Predictor(BasePredictor):\n    def predict(self, x: list = {}1{}) -> str:\n        ...\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    parse_bounded(&deep_default);
}
