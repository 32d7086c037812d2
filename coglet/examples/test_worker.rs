//! A worker written in Rust, used by coglet's integration tests (and handy for benchmarks):
//! the server spawns it as its worker command. Its behaviour is chosen by the input:
//!
//! - `{"text": "x"}` -> `"hello x"`; `{"sleep": secs}` sleeps (cancelable)
//! - `{"fail": "msg"}` raises; `{"invalid": "msg"}` is an input error (422)
//! - `{"stream": n}` yields `n` items; `{"file": "name.txt"}` returns a file
//! - `{"missing_file": "name.txt"}` returns a file that does not exist (add `"streamed": true`
//!   to send it as a streamed item after one good chunk)
//! - `{"log": "line"}` logs through the sink and prints to fd 1 (captured, not in logs)
//! - `{"metric": n}` records metrics; `{"big": bytes}` returns a string that large
//! - `{"crash": true}` aborts the process (SIGABRT); `{"exit": code}` exits
//! - `{"thread": true}` (after any `sleep`) returns the name of the thread that ran it
//! - `{"echo": true}` returns the whole input object, as the worker received it
//!
//! Environment: `TEST_WORKER_SETUP_SLEEP` (seconds), `TEST_WORKER_SETUP_FAIL` (message),
//! `TEST_WORKER_UNHEALTHY` (a file: unhealthy while it exists),
//! `TEST_WORKER_CRASH_ONCE` (a file: crash during setup while it does not exist, then create it),
//! `TEST_WORKER_ONE_AT_A_TIME` (set: report `one_at_a_time`, as a sync Python runner does),
//! `TEST_WORKER_EVENT_LOOP` (set: serve on an event loop, as an async Python runner does: one
//! thread polls the dispatcher and runs each prediction on a thread named `event-loop-run`).

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use coglet::ipc::{LogSource, MetricMode, SlotId};
use coglet::worker::{
    Dispatcher, Output, OutputSink, PredictHandler, PredictOutcome, PredictRequest, SetupInfo,
    SetupRequest,
};
use serde_json::{Value, json};

struct Slot {
    canceled: Mutex<Option<String>>,
    wake: Condvar,
}

#[derive(Clone)]
struct TestWorker {
    slots: Arc<Vec<Slot>>,
}

impl TestWorker {
    fn slot(&self, slot: SlotId) -> &Slot {
        &self.slots[slot as usize]
    }

    /// Sleeps, returning false if canceled meanwhile.
    fn sleep(&self, slot: SlotId, id: &str, secs: f64) -> bool {
        let s = self.slot(slot);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut canceled = s.canceled.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if canceled.as_deref() == Some(id) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            canceled = s
                .wake
                .wait_timeout(canceled, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl PredictHandler for TestWorker {
    fn setup(&self, request: &SetupRequest) -> Result<SetupInfo, String> {
        println!("setting up {}", request.predictor_ref);
        std::io::stdout().flush().ok();
        if let Ok(marker) = std::env::var("TEST_WORKER_CRASH_ONCE")
            && !std::path::Path::new(&marker).exists()
        {
            std::fs::write(&marker, b"").ok();
            std::process::abort();
        }
        if let Some(secs) = std::env::var("TEST_WORKER_SETUP_SLEEP")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        if let Ok(msg) = std::env::var("TEST_WORKER_SETUP_FAIL") {
            eprintln!("about to fail");
            return Err(msg);
        }
        Ok(SetupInfo {
            schema: None,
            versions: [("python".to_string(), "3.test".to_string())].into(),
            one_at_a_time: std::env::var_os("TEST_WORKER_ONE_AT_A_TIME").is_some(),
        })
    }

    fn predict(&self, slot: SlotId, request: PredictRequest, sink: &OutputSink) -> PredictOutcome {
        let input = &request.input;
        if let Some(line) = input.get("log").and_then(Value::as_str) {
            sink.log(LogSource::Stdout, &format!("{line}\n")).ok();
            sink.log(LogSource::Stderr, "to stderr\n").ok();
            println!("fd-level print");
            std::io::stdout().flush().ok();
        }
        if let Some(n) = input.get("metric").and_then(Value::as_i64) {
            sink.metric("tokens", json!(n), MetricMode::Increment).ok();
            sink.metric("tokens", json!(n), MetricMode::Increment).ok();
            sink.metric("timing.pre", json!(0.5), MetricMode::Replace)
                .ok();
            if sink
                .metric("predict_time", json!(1), MetricMode::Replace)
                .is_ok()
            {
                return PredictOutcome::Failed("reserved metric name accepted".into());
            }
        }
        if let Some(secs) = input.get("sleep").and_then(Value::as_f64)
            && !self.sleep(slot, &request.id, secs)
        {
            return PredictOutcome::Canceled;
        }
        if input.get("crash").is_some() {
            std::process::abort();
        }
        if let Some(code) = input.get("exit").and_then(Value::as_i64) {
            std::process::exit(code as i32);
        }
        if let Some(msg) = input.get("fail").and_then(Value::as_str) {
            return PredictOutcome::Failed(msg.to_string());
        }
        if let Some(msg) = input.get("invalid").and_then(Value::as_str) {
            return PredictOutcome::InvalidInput(msg.to_string());
        }
        if let Some(n) = input.get("stream").and_then(Value::as_u64) {
            for i in 0..n {
                if sink.output(json!(format!("chunk {i}"))).is_err() {
                    break;
                }
                if let Some(delay) = input.get("delay").and_then(Value::as_f64)
                    && !self.sleep(slot, &request.id, delay)
                {
                    return PredictOutcome::Canceled;
                }
            }
            return PredictOutcome::Succeeded {
                output: None,
                is_stream: true,
            };
        }
        if let Some(name) = input.get("missing_file").and_then(Value::as_str) {
            let path = request.output_dir.join(name);
            if input.get("streamed").is_some() {
                if sink.output(json!("chunk 0")).is_err() || sink.file(path, None).is_err() {
                    return PredictOutcome::Failed("sink closed".into());
                }
                return PredictOutcome::Succeeded {
                    output: None,
                    is_stream: true,
                };
            }
            return PredictOutcome::Succeeded {
                output: Some(Output::File {
                    path,
                    mime_type: None,
                }),
                is_stream: false,
            };
        }
        if let Some(name) = input.get("file").and_then(Value::as_str) {
            std::fs::create_dir_all(&request.output_dir).ok();
            let path = request.output_dir.join(name);
            if let Err(e) = std::fs::write(&path, b"file contents") {
                return PredictOutcome::Failed(e.to_string());
            }
            return PredictOutcome::Succeeded {
                output: Some(Output::File {
                    path,
                    mime_type: None,
                }),
                is_stream: false,
            };
        }
        if let Some(n) = input.get("big").and_then(Value::as_u64) {
            return PredictOutcome::Succeeded {
                output: Some(Output::Json(Value::String("x".repeat(n as usize)))),
                is_stream: false,
            };
        }
        if input.get("echo").is_some() {
            return PredictOutcome::Succeeded {
                output: Some(Output::Json(input.clone())),
                is_stream: false,
            };
        }
        if input.get("thread").is_some() {
            let name = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string();
            return PredictOutcome::Succeeded {
                output: Some(Output::Json(Value::String(name))),
                is_stream: false,
            };
        }
        let text = input.get("text").and_then(Value::as_str).unwrap_or("world");
        let mut out = format!("hello {text}");
        if let Some(token) = request.context.get("token") {
            let _ = write!(out, " ({token})");
        }
        PredictOutcome::Succeeded {
            output: Some(Output::Json(Value::String(out))),
            is_stream: false,
        }
    }

    fn cancel(&self, slot: SlotId, prediction_id: &str) {
        let s = self.slot(slot);
        *s.canceled.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(prediction_id.to_string());
        s.wake.notify_all();
    }

    fn serve_on_event_loop(&self, dispatcher: &Arc<Dispatcher>) -> bool {
        if std::env::var_os("TEST_WORKER_EVENT_LOOP").is_none() {
            return false;
        }
        let worker = self.clone();
        let dispatcher = Arc::clone(dispatcher);
        std::thread::spawn(move || {
            loop {
                let mut fd = libc::pollfd {
                    fd: dispatcher.wake_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                if unsafe { libc::poll(&raw mut fd, 1, -1) } < 0 {
                    continue;
                }
                for started in dispatcher.take() {
                    let worker = worker.clone();
                    std::thread::Builder::new()
                        .name("event-loop-run".into())
                        .spawn(move || {
                            let ticket = started.ticket;
                            let outcome =
                                worker.predict(started.slot, started.request, ticket.sink());
                            ticket.finish(outcome);
                        })
                        .expect("spawn a prediction thread");
                }
            }
        });
        true
    }

    fn healthcheck(&self) -> Result<(), String> {
        match std::env::var("TEST_WORKER_UNHEALTHY") {
            Ok(path) if std::path::Path::new(&path).exists() => {
                Err("healthcheck returned False".into())
            }
            _ => Ok(()),
        }
    }
}

fn main() {
    let slots = std::env::var("TEST_WORKER_SLOTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let worker = TestWorker {
        slots: Arc::new(
            (0..slots)
                .map(|_| Slot {
                    canceled: Mutex::new(None),
                    wake: Condvar::new(),
                })
                .collect(),
        ),
    };
    if let Err(e) = coglet::worker::run(worker) {
        eprintln!("test worker: {e}");
        std::process::exit(1);
    }
}
