//! Fuzz target for the server's HTTP inputs: raw requests (request line, headers, chunked and
//! JSON bodies, prediction ids) mutated from `fuzzing/corpus/http-request/` and sent over
//! loopback to the real server with the Rust test worker. No request may get a 500 or take the
//! server down, and `/health-check` answers after them all.
//! `COG_FUZZ_CASES=100000 cargo test -p coglet --test fuzz` runs longer.
//!
//! Build the examples first when running this target alone: `cargo build -p coglet --examples`.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use coglet::{ServeConfig, Server};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

fn test_worker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("test_worker");
    assert!(
        path.exists(),
        "build the examples first: {}",
        path.display()
    );
    path
}

/// Sends `request` on a fresh connection; the status code of the answer, if one came. A
/// request cut short gets no answer (the server waits for the rest): the wait is cut at 300 ms.
fn exchange(addr: &str, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // The server may close early on a bad request: a failed write is an answer too.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[test]
fn raw_http_requests() {
    let dir = tempfile::tempdir().unwrap();
    let schema_path = dir.path().join("openapi_schema.json");
    let schema = serde_json::json!({
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": {
            "Input": {"type": "object", "properties": {"text": {"type": "string"}}},
            "Output": {"type": "string"}
        }}
    });
    std::fs::write(&schema_path, schema.to_string()).unwrap();
    let config = ServeConfig {
        host: "127.0.0.1".into(),
        port: 0,
        predictor_ref: Some("predict.py:Runner".into()),
        worker_command: vec![test_worker().to_string_lossy().into_owned()],
        schema_path,
        work_dir: dir.path().join("work"),
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::bind(config)).unwrap();
    let addr = server.local_addr().unwrap().to_string();
    runtime.spawn(server.run());
    let health = b"GET /health-check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let ready = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        exchange(&addr, health) == Some(200)
    });
    assert!(ready, "the server did not come up");

    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<Option<u16>, usize>::new());
    let mut runner = TestRunner::new(fuzzing::config());
    let result = runner.run(&fuzzing::inputs("http-request"), |request| {
        let status = exchange(&addr, &request);
        *seen.lock().unwrap().entry(status).or_default() += 1;
        prop_assert!(
            status.is_none_or(|s| s < 500 || s == 503),
            "{} for {:?}",
            status.unwrap_or_default(),
            String::from_utf8_lossy(&request)
        );
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    assert_eq!(exchange(&addr, health), Some(200), "the server is still up");
    // The corpus reaches past the parser: some cases succeed, some are refused.
    let seen = seen.into_inner().unwrap();
    let any = |range: std::ops::Range<u16>| seen.keys().flatten().any(|s| range.contains(s));
    assert!(any(200..300) && any(400..500), "statuses seen: {seen:?}");
}
