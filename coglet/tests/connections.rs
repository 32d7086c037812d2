//! Connection limits (issue 22 item 3): the server as its own process (`examples/serve.rs`,
//! with the Rust test worker) at an open-files limit of 256, flooded over loopback with
//! connections that never finish their headers. `/health-check` must keep answering, and slow
//! and idle connections must be closed after their timeouts (`docs/server.md`, "Connections").
//!
//! Build the examples first when running this target alone:
//! `cargo build -p coglet --examples`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's open-files limit, as in the issue.
const SERVER_FD_LIMIT: u64 = 256;
const FLOOD: usize = 3000;
const HALF_SENT: &[u8] = b"GET /health-check HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "build the examples first (cargo build -p coglet --examples): {}",
        path.display()
    );
    path
}

fn set_open_files_limit(limit: u64) -> std::io::Result<()> {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const rlimit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Raises this (the client's) soft open-files limit so that it can hold the flood.
fn raise_own_limit(want: u64) {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut current) },
        0
    );
    if current.rlim_cur >= want {
        return;
    }
    assert!(
        current.rlim_max >= want,
        "the test client needs {want} open files; the hard limit is {}",
        current.rlim_max
    );
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: current.rlim_max,
    };
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) },
        0
    );
}

struct ServerProcess {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `examples/serve` at a 256-file limit with the given connection settings.
fn start_server(env: &[(&str, &str)]) -> ServerProcess {
    let dir = tempfile::tempdir().unwrap();
    let worker = serde_json::to_string(&[example("test_worker")]).unwrap();
    let mut command = Command::new(example("serve"));
    command
        .arg("127.0.0.1")
        .current_dir(dir.path())
        .env("PORT", "0")
        .env("COG_PREDICT_TYPE_STUB", "predict.py:Runner")
        .env("COGLET_WORKER_COMMAND", worker)
        .env("COG_LOG_LEVEL", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: only async-signal-safe work (one setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(|| set_open_files_limit(SERVER_FD_LIMIT));
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
        .to_owned();
    ServerProcess {
        child,
        addr,
        _dir: dir,
    }
}

/// One `GET /health-check` on a fresh connection; its status line and how long it took.
async fn health_check(addr: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let attempt = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(
                b"GET /health-check HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&response);
        if text.starts_with("HTTP/1.1 200") && text.contains("\"status\"") {
            Ok(())
        } else {
            Err(format!("answer: {text:?}"))
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

async fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let _ = s
                .write_all(b"GET /health-check HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
                .await;
            let mut body = Vec::new();
            let _ = s.read_to_end(&mut body).await;
            if String::from_utf8_lossy(&body).contains("\"READY\"") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the server never became READY");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the server has closed this connection (EOF or reset), looking for up to `wait`.
async fn is_closed(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A response (e.g. 408) before the close: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_answer_under_three_thousand_slow_connections_at_256_fds() {
    raise_own_limit(FLOOD as u64 + 512);
    let header_timeout = Duration::from_secs(8);
    let server = start_server(&[
        ("COGLET_HEADER_READ_TIMEOUT", "8"),
        ("COGLET_IDLE_TIMEOUT", "8"),
    ]);
    let addr = server.addr.clone();
    wait_ready(&addr).await;

    // Health checks every 50 ms for as long as the flood is being opened and held.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let checker = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                results.push(health_check(&addr).await);
                tokio::select! {
                    _ = stopped.changed() => return results,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
    };

    // The flood: 3,000 connections, each sending half a request head and nothing more.
    let flood_started = Instant::now();
    let mut slow = Vec::with_capacity(FLOOD);
    let mut refused = 0;
    for _ in 0..FLOOD {
        match TcpStream::connect(&addr).await {
            Ok(mut s) => {
                // The server may already have closed it to make room: that is fine.
                let _ = s.write_all(HALF_SENT).await;
                slow.push(s);
            }
            Err(_) => refused += 1,
        }
    }
    let flooded = flood_started.elapsed();
    // Hold them for a while with health checks still going.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..20 {
        health_check(&addr)
            .await
            .expect("a health check while 3,000 slow connections were open");
    }
    stop.send_replace(true);
    let results = checker.await.unwrap();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} health checks during the flood failed: {failures:?}",
        failures.len(),
        results.len()
    );
    assert!(
        results.len() >= 10,
        "only {} health checks ran",
        results.len()
    );
    let slowest = results.iter().flatten().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(2),
        "slowest health check {slowest:?}"
    );
    eprintln!(
        "flood of {FLOOD} opened in {flooded:?} ({refused} refused), {} health checks, slowest {slowest:?}",
        results.len()
    );

    // The server holds no more than its cap: most of the flood has been closed to make room,
    // while the latest ones are still open (their header timeout has not passed yet).
    let mut open = 0;
    for s in &mut slow {
        if !is_closed(s, Duration::from_millis(1)).await {
            open += 1;
        }
    }
    assert!(
        open < SERVER_FD_LIMIT as usize,
        "{open} slow connections still open at a {SERVER_FD_LIMIT}-file limit"
    );
    let latest = slow.len() - 20;
    for s in &mut slow[latest..] {
        assert!(
            !is_closed(s, Duration::from_millis(20)).await,
            "one of the latest slow connections was closed before its header timeout"
        );
    }

    // After the header read timeout every one of them is closed.
    tokio::time::sleep_until((flood_started + flooded + header_timeout).into()).await;
    let give_up = Instant::now() + Duration::from_secs(5);
    for (i, s) in slow.iter_mut().enumerate() {
        let wait = give_up.saturating_duration_since(Instant::now());
        assert!(
            is_closed(s, wait.max(Duration::from_millis(1))).await,
            "slow connection {i} still open {:?} after the flood",
            flood_started.elapsed()
        );
    }
    health_check(&addr)
        .await
        .expect("a health check after the flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed_after_their_timeouts() {
    let server = start_server(&[
        ("COGLET_HEADER_READ_TIMEOUT", "2"),
        ("COGLET_IDLE_TIMEOUT", "6"),
    ]);
    let addr = server.addr.clone();
    wait_ready(&addr).await;

    let started = Instant::now();
    // A connection that says nothing, one that stops halfway through its headers, and one
    // that completed a request and keeps the connection alive.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut partial = TcpStream::connect(&addr).await.unwrap();
    partial.write_all(HALF_SENT).await.unwrap();
    let mut kept = TcpStream::connect(&addr).await.unwrap();
    kept.write_all(b"GET /health-check HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!is_closed(&mut silent, Duration::from_millis(10)).await);
    assert!(!is_closed(&mut partial, Duration::from_millis(10)).await);
    assert!(!is_closed(&mut kept, Duration::from_millis(10)).await);

    // Header read timeout (2 s): the silent and the partial one go; the kept-alive one stays.
    tokio::time::sleep_until((started + Duration::from_secs(4)).into()).await;
    assert!(
        is_closed(&mut silent, Duration::from_millis(100)).await,
        "a connection that sent nothing is open after the header read timeout"
    );
    assert!(
        is_closed(&mut partial, Duration::from_millis(100)).await,
        "a connection with half-sent headers is open after the header read timeout"
    );
    assert!(
        !is_closed(&mut kept, Duration::from_millis(10)).await,
        "a kept-alive connection was closed before its idle timeout"
    );
    // It still serves requests.
    kept.write_all(b"GET /health-check HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let last_request = Instant::now();

    // Idle timeout (6 s after its last response).
    tokio::time::sleep_until((last_request + Duration::from_secs(4)).into()).await;
    assert!(!is_closed(&mut kept, Duration::from_millis(10)).await);
    tokio::time::sleep_until((last_request + Duration::from_secs(7)).into()).await;
    assert!(
        is_closed(&mut kept, Duration::from_secs(2)).await,
        "an idle kept-alive connection is open after the idle timeout"
    );
}

#[test]
fn invalid_connection_settings_fail_naming_the_variable() {
    let output = Command::new(example("serve"))
        .env("COGLET_IDLE_TIMEOUT", "soon")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("COGLET_IDLE_TIMEOUT=\"soon\" is not a number of seconds above 0"),
        "{stderr}"
    );
}
