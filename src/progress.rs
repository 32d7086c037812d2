//! Progress output for long work: indicatif bars on a TTY, plain lines otherwise, JSON lines on
//! request (`--progress=json`), nothing with `quiet`.
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Version of the `--progress=json` line format.
pub const JSON_PROGRESS_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ProgressMode {
    /// A TTY gets bars, anything else plain lines (`TERM=dumb` means plain).
    #[default]
    Auto,
    Tty,
    Plain,
    Quiet,
    Json,
}

impl ProgressMode {
    /// Cog's default: `$BUILDKIT_PROGRESS`, else `plain` when `TERM=dumb`, else auto.
    pub fn from_env() -> Self {
        match std::env::var("BUILDKIT_PROGRESS").as_deref() {
            Ok("tty") => Self::Tty,
            Ok("plain") => Self::Plain,
            Ok("quiet") => Self::Quiet,
            Ok("json") => Self::Json,
            _ if std::env::var("TERM").as_deref() == Ok("dumb") => Self::Plain,
            _ => Self::Auto,
        }
    }

    fn resolve(self) -> Self {
        match self {
            Self::Auto if std::io::stderr().is_terminal() => Self::Tty,
            Self::Auto => Self::Plain,
            other => other,
        }
    }
}

/// Shared progress reporter; cheap to clone.
#[derive(Clone)]
pub struct Progress {
    mode: ProgressMode,
    multi: Option<MultiProgress>,
    out: Arc<Mutex<()>>,
    start: Instant,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Self {
        let mode = mode.resolve();
        let multi = (mode == ProgressMode::Tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            mode,
            multi,
            out: Arc::new(Mutex::new(())),
            start: Instant::now(),
        }
    }

    /// A reporter that prints nothing (library callers, tests).
    pub fn quiet() -> Self {
        Self::new(ProgressMode::Quiet)
    }

    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// A one-off message (a step started or finished).
    pub fn message(&self, msg: &str) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Json => {
                self.json(&serde_json::json!({"event": "message", "message": msg}));
            }
            ProgressMode::Tty => {
                if let Some(m) = &self.multi {
                    let _ = m.println(msg);
                }
            }
            _ => self.plain(msg),
        }
    }

    /// A task measured in bytes (a pull, an upload) or items (`unit = "layers"`).
    pub fn task(&self, name: &str, total: Option<u64>, unit: Unit) -> Task {
        let bar = self.multi.as_ref().map(|m| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let template = match unit {
                Unit::Bytes => "{prefix:.bold} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
                Unit::Items => "{prefix:.bold} {bar:30} {pos}/{len}",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(name.to_string());
            m.add(bar)
        });
        if matches!(self.mode, ProgressMode::Plain) {
            self.plain(&format!("{name}: started"));
        }
        if self.mode == ProgressMode::Json {
            self.json(&serde_json::json!({"event": "start", "task": name, "total": total, "unit": unit.as_str()}));
        }
        Task {
            progress: self.clone(),
            name: name.to_string(),
            bar,
            done: 0,
            unit,
        }
    }

    fn plain(&self, msg: &str) {
        let _guard = self.out.lock();
        let secs = self.start.elapsed().as_secs_f64();
        let _ = writeln!(std::io::stderr(), "#{secs:>7.2}s {msg}");
    }

    fn json(&self, value: &serde_json::Value) {
        let _guard = self.out.lock();
        let mut line = serde_json::json!({"version": JSON_PROGRESS_VERSION, "elapsed_ms": self.start.elapsed().as_millis() as u64});
        if let (Some(obj), Some(extra)) = (line.as_object_mut(), value.as_object()) {
            obj.extend(extra.clone());
        }
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::Items => "items",
        }
    }
}

/// One unit of tracked work; finishing it (or dropping it) closes its bar.
pub struct Task {
    progress: Progress,
    name: String,
    bar: Option<ProgressBar>,
    done: u64,
    unit: Unit,
}

impl Task {
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn set_total(&mut self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    pub fn finish(mut self, summary: &str) {
        self.close(summary);
    }

    fn close(&mut self, summary: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Some(m) = &self.progress.multi {
                let _ = m.println(format!("{} {summary}", self.name));
            }
        }
        match self.progress.mode {
            ProgressMode::Plain => self.progress.plain(&format!("{}: {summary}", self.name)),
            ProgressMode::Json => self.progress.json(&serde_json::json!({
                "event": "done", "task": self.name, "done": self.done, "unit": self.unit.as_str(), "summary": summary
            })),
            _ => {}
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
