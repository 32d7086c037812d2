#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::schema::{Mode, document, parse_model_source};

/// The OpenAPI document our schema generator writes for a runner (so these tests follow the
/// real document shape: `allOf`-wrapped enums, `format: uri`, secrets, nullable unions).
fn doc(src: &str) -> Value {
    let model = parse_model_source(src, "Predictor", Mode::Predict).expect("schema");
    serde_json::from_str(&document(&model).to_compact()).expect("json")
}

const RUNNER: &str = r#"
from typing import Optional
from cog import BasePredictor, Input, Path, Secret

class Predictor(BasePredictor):
    def predict(
        self,
        prompt: str = Input(min_length=2, max_length=8, regex="^[a-z]+$"),
        count: int = Input(default=5, ge=1, le=100),
        scale: float = Input(default=1.5, ge=0.5, le=10),
        fast: bool = False,
        mode: str = Input(default="a", choices=["a", "b"]),
        level: int = Input(default=1, choices=[1, 2, 3]),
        image: Optional[Path] = None,
        tags: list[str] = Input(default=[]),
        sizes: list[int] = Input(default=[]),
        images: list[Path] = Input(default=[]),
        extra: dict = Input(default={}),
        token: Secret = Input(default=None),
    ) -> str:
        return prompt
"#;

fn pairs(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn inputs(items: &[&str]) -> Result<Map<String, Value>, InputError> {
    request_inputs(&doc(RUNNER), &pairs(items), None, Path::new("/nonexistent"))
}

/// The error and its causes, as the CLI prints them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn error(items: &[&str]) -> String {
    chain(&inputs(items).expect_err("should be rejected"))
}

#[test]
fn coerces_by_schema_type() {
    let got = inputs(&[
        "prompt=\"abc\"",
        "count=7",
        "scale=2.5",
        "fast=true",
        "mode=b",
        "level=3",
        "tags=x",
        "tags=y",
        "sizes=[1,2]",
        "extra={\"k\": [1]}",
        "token=s3cret",
    ])
    .unwrap();
    assert_eq!(
        Value::Object(got),
        json!({
            "prompt": "abc", "count": 7, "scale": 2.5, "fast": true, "mode": "b", "level": 3,
            "tags": ["x", "y"], "sizes": [1, 2], "extra": {"k": [1]}, "token": "s3cret"
        })
    );
}

#[test]
fn one_value_for_an_array_is_a_one_element_array() {
    let got = inputs(&["prompt=ab", "sizes=4", "tags=only"]).unwrap();
    assert_eq!(got["sizes"], json!([4]));
    assert_eq!(got["tags"], json!(["only"]));
}

#[test]
fn number_inputs_keep_integers_integral() {
    let got = inputs(&["prompt=ab", "scale=3"]).unwrap();
    assert_eq!(got["scale"], json!(3));
}

#[test]
fn files_become_data_urls_relative_to_base_dir() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("in.png"), b"\x89PNG fake").unwrap();
    fs_err::write(dir.path().join("b.txt"), b"hi").unwrap();
    let got = request_inputs(
        &doc(RUNNER),
        &pairs(&[
            "prompt=ab",
            "image=@in.png",
            "images=@in.png",
            "images=@b.txt",
        ]),
        None,
        dir.path(),
    )
    .unwrap();
    assert_eq!(got["image"], json!("data:image/png;base64,iVBORyBmYWtl"));
    assert_eq!(
        got["images"],
        json!([
            "data:image/png;base64,iVBORyBmYWtl",
            "data:text/plain;base64,aGk="
        ])
    );
}

#[test]
fn missing_file_names_the_path() {
    let err = error(&["prompt=ab", "image=@nope.png"]);
    assert!(
        err.starts_with("Failed to read input file /nonexistent/nope.png: "),
        "{err}"
    );
}

#[test]
fn json_inline_file_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("x.png"), b"png").unwrap();
    fs_err::write(
        dir.path().join("req.json"),
        r#"{"prompt": "ab", "image": "@x.png"}"#,
    )
    .unwrap();
    let schema = doc(RUNNER);
    let inline = request_inputs(
        &schema,
        &[],
        Some(r#"{"prompt":"ab","count":3}"#),
        dir.path(),
    )
    .unwrap();
    assert_eq!(Value::Object(inline), json!({"prompt": "ab", "count": 3}));
    let file = request_inputs(&schema, &[], Some("@req.json"), dir.path()).unwrap();
    assert_eq!(file["image"], json!("data:image/png;base64,cG5n"));
    for arg in ["@-", "-"] {
        let mut stdin: &[u8] = br#"{"prompt": "xyz", "fast": false}"#;
        let got = request_inputs_from(&schema, &[], Some(arg), dir.path(), &mut stdin).unwrap();
        assert_eq!(Value::Object(got), json!({"prompt": "xyz", "fast": false}));
    }
}

#[test]
fn json_is_validated_too() {
    let schema = doc(RUNNER);
    let err = request_inputs(
        &schema,
        &[],
        Some(r#"{"prompt":"ab","count":"3"}"#),
        Path::new("."),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid input "count": expected integer, got string"#
    );
    let err = request_inputs(
        &schema,
        &[],
        Some(r#"{"prompt":"ab","count":null}"#),
        Path::new("."),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid input "count": must not be null (omit the input to use its default)"#
    );
}

#[test]
fn a_model_without_inputs() {
    let schema = doc(
        "from cog import BasePredictor\nclass Predictor(BasePredictor):\n    def predict(self) -> str:\n        return 'x'\n",
    );
    assert!(
        request_inputs(&schema, &[], None, Path::new("."))
            .unwrap()
            .is_empty()
    );
    let err = request_inputs(&schema, &pairs(&["a=1", "b=2"]), None, Path::new(".")).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown inputs "a", "b"; model does not accept inputs"#
    );
}

#[test]
fn error_messages() {
    let cases: &[(&str, &[&str])] = &[
        ("no equals sign", &["prompt"]),
        ("unknown input", &["prompt=ab", "promt=x"]),
        ("unknown inputs", &["prompt=ab", "zz=1", "aa=2"]),
        ("missing required", &["count=3"]),
        ("wrong type int", &["prompt=ab", "count=many"]),
        ("wrong type float for int", &["prompt=ab", "count=2.5"]),
        ("wrong type bool", &["prompt=ab", "fast=yes"]),
        ("wrong type number", &["prompt=ab", "scale=big"]),
        ("repeated scalar", &["prompt=ab", "count=1", "count=2"]),
        ("array item type", &["prompt=ab", "sizes=1", "sizes=x"]),
        ("choice", &["prompt=ab", "mode=c"]),
        ("integer choice", &["prompt=ab", "level=7"]),
        ("below minimum", &["prompt=ab", "count=0"]),
        ("above maximum", &["prompt=ab", "scale=10.5"]),
        ("too short", &["prompt=a"]),
        ("too long", &["prompt=abcdefghij"]),
        ("regex", &["prompt=AB"]),
        ("several at once", &["prompt=A", "count=0", "mode=z"]),
        ("object not json", &["prompt=ab", "extra=notjson"]),
    ];
    let mut report = String::new();
    for (label, flags) in cases {
        let _ = write!(
            report,
            "{label}: cog run {}\n{}\n\n",
            flags
                .iter()
                .map(|f| format!("-i {f}"))
                .collect::<Vec<_>>()
                .join(" "),
            error(flags)
        );
    }
    insta::assert_snapshot!(report);
}

#[test]
fn json_and_inputs_are_exclusive_and_json_must_be_an_object() {
    let schema = doc(RUNNER);
    let base = Path::new(".");
    assert_eq!(
        request_inputs(&schema, &pairs(&["prompt=ab"]), Some("{}"), base)
            .unwrap_err()
            .to_string(),
        "--json and -i/--input cannot be used together"
    );
    assert_eq!(
        request_inputs(&schema, &[], Some("[1]"), base)
            .unwrap_err()
            .to_string(),
        "--json input must be a JSON object of input names to values, got array"
    );
    let err = chain(&request_inputs(&schema, &[], Some("{nope"), base).unwrap_err());
    assert!(
        err.starts_with("Failed to parse --json input: key must be a string"),
        "{err}"
    );
}

#[test]
fn a_document_without_input_is_an_error() {
    let err = request_inputs(&json!({"openapi": "3.0.2"}), &[], None, Path::new(".")).unwrap_err();
    assert_eq!(err.to_string(), "OpenAPI schema is missing Input component");
}

// ---- outputs ----

fn out_doc(ret: &str, imports: &str) -> Value {
    doc(&format!(
        "from cog import BasePredictor, Path, ConcatenateIterator{imports}\nclass Predictor(BasePredictor):\n    def predict(self) -> {ret}:\n        pass\n"
    ))
}

#[test]
fn string_output_is_printed_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let schema = out_doc("str", "");
    assert_eq!(
        write_output(&schema, &json!("hello world"), None, dir.path()).unwrap(),
        vec!["hello world"]
    );
    let lines = write_output(&schema, &json!("hi"), Some(Path::new("o.txt")), dir.path()).unwrap();
    let path = dir.path().join("o.txt");
    assert_eq!(lines, vec![format!("Written output to {}", path.display())]);
    assert_eq!(fs_err::read_to_string(path).unwrap(), "hi");
}

#[test]
fn json_output_is_indented() {
    let dir = tempfile::tempdir().unwrap();
    let schema = out_doc("dict", "");
    let lines = write_output(&schema, &json!({"a": [1, 2]}), None, dir.path()).unwrap();
    assert_eq!(lines, vec!["{\n  \"a\": [\n    1,\n    2\n  ]\n}"]);
    assert!(
        write_output(&schema, &Value::Null, None, dir.path())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn concatenate_iterator_output_is_joined() {
    let dir = tempfile::tempdir().unwrap();
    let schema = out_doc("ConcatenateIterator[str]", "");
    let lines = write_output(&schema, &json!(["Hel", "lo", "!"]), None, dir.path()).unwrap();
    assert_eq!(lines, vec!["Hello!"]);
}

#[test]
fn file_output_is_decoded_with_its_extension() {
    let dir = tempfile::tempdir().unwrap();
    let schema = out_doc("Path", "");
    let lines = write_output(
        &schema,
        &json!("data:image/png;base64,iVBORyBmYWtl"),
        None,
        dir.path(),
    )
    .unwrap();
    let path = dir.path().join("output.png");
    assert_eq!(lines, vec![format!("Written output to {}", path.display())]);
    assert_eq!(fs_err::read(&path).unwrap(), b"\x89PNG fake");

    write_output(
        &schema,
        &json!("data:text/plain,a%20b"),
        Some(Path::new("named.bin")),
        dir.path(),
    )
    .unwrap();
    assert_eq!(fs_err::read(dir.path().join("named.bin")).unwrap(), b"a b");
}

#[test]
fn array_of_files_are_numbered() {
    let dir = tempfile::tempdir().unwrap();
    let schema = out_doc("list[Path]", "");
    let lines = write_output(
        &schema,
        &json!([
            "data:image/jpeg;base64,AAE=",
            "data:application/json;base64,e30="
        ]),
        None,
        dir.path(),
    )
    .unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        fs_err::read(dir.path().join("output.0.jpg")).unwrap(),
        [0, 1]
    );
    assert_eq!(
        fs_err::read(dir.path().join("output.1.json")).unwrap(),
        b"{}"
    );
}

#[test]
fn bad_file_outputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let schema = out_doc("Path", "");
    let err = write_output(&schema, &json!("/tmp/x.png"), None, dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Failed to decode dataurl: expected a data: or http(s) URL, got "/tmp/x.png""#
    );
    let err = write_output(
        &schema,
        &json!("data:image/png;base64,!!"),
        None,
        dir.path(),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("Failed to decode dataurl: "),
        "{err}"
    );
    let err = write_output(&schema, &json!(3), None, dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to convert prediction output to string: got number"
    );
    let err = write_output(
        &schema,
        &json!("data:,x"),
        Some(Path::new("missing-dir/out")),
        dir.path(),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("Failed to write output "),
        "{err}"
    );
}

#[test]
fn http_file_outputs_are_downloaded() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/webp\r\nContent-Length: 4\r\nConnection: close\r\n\r\nRIFF")
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let schema = out_doc("Path", "");
    write_output(
        &schema,
        &json!(format!("http://127.0.0.1:{port}/files/result")),
        None,
        dir.path(),
    )
    .unwrap();
    server.join().unwrap();
    assert_eq!(
        fs_err::read(dir.path().join("output.webp")).unwrap(),
        b"RIFF"
    );
}
