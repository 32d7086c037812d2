//! The CLI's printers, the one place that writes progress to the terminal: indicatif bars on a
//! TTY, plain lines otherwise, JSON lines on request (`--progress=json`), nothing with `quiet`.
//! [`Printer`] implements [`report::Reporter`], which every stage of the pipeline reports to.
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use report::{Reporter, Task, TaskSink, Unit};

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

/// The terminal printer; cheap to clone.
#[derive(Clone)]
pub struct Printer {
    mode: ProgressMode,
    multi: Option<MultiProgress>,
    out: Arc<Mutex<()>>,
    start: Instant,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Printer {
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

    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// A line above any bars (TTY), or a plain line; JSON lines are written by the callers.
    fn line(&self, text: &str) {
        match self.mode {
            ProgressMode::Quiet | ProgressMode::Json => {}
            ProgressMode::Tty => {
                if let Some(m) = &self.multi {
                    let _ = m.println(text);
                }
            }
            _ => self.plain(text),
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

impl Reporter for Printer {
    fn message(&self, text: &str) {
        if self.mode == ProgressMode::Json {
            self.json(&serde_json::json!({"event": "message", "message": text}));
        }
        self.line(text);
    }

    fn warning(&self, text: &str) {
        match self.mode {
            ProgressMode::Json => {
                self.json(&serde_json::json!({"event": "warning", "message": text}));
            }
            // Warnings are shown even with `quiet`, as Cog's are.
            ProgressMode::Quiet => {
                let _guard = self.out.lock();
                let _ = writeln!(std::io::stderr(), "⚠ {text}");
            }
            _ => self.line(&format!("⚠ {text}")),
        }
    }

    fn task(&self, name: &str, total: Option<u64>, unit: Unit) -> Task {
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
        Task::new(PrintedTask {
            printer: self.clone(),
            name: name.to_string(),
            bar,
            done: 0,
            unit,
        })
    }

    fn output(&self, step: &str, line: &str) {
        match self.mode {
            ProgressMode::Json => {
                self.json(&serde_json::json!({"event": "output", "step": step, "line": line}));
            }
            ProgressMode::Quiet => {}
            // A prediction's own logs (no step) are shown as the model wrote them.
            _ if step.is_empty() => {
                let _guard = self.out.lock();
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            _ => self.line(&format!("[{step}] {line}")),
        }
    }
}

/// One unit of tracked work; finishing it (or dropping it) closes its bar.
struct PrintedTask {
    printer: Printer,
    name: String,
    bar: Option<ProgressBar>,
    done: u64,
    unit: Unit,
}

impl TaskSink for PrintedTask {
    fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn set_total(&mut self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    fn finish(&mut self, summary: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Some(m) = &self.printer.multi {
                let _ = m.println(format!("{} {summary}", self.name));
            }
        }
        match self.printer.mode {
            ProgressMode::Plain => self.printer.plain(&format!("{}: {summary}", self.name)),
            ProgressMode::Json => self.printer.json(&serde_json::json!({
                "event": "done", "task": self.name, "done": self.done, "unit": self.unit.as_str(), "summary": summary
            })),
            _ => {}
        }
    }
}

impl Drop for PrintedTask {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Printer {
    /// The command failed: `ⅹ message` (or a JSON `error` event), shown in every mode.
    pub fn error(&self, message: &str) {
        if self.mode == ProgressMode::Json {
            self.json(&serde_json::json!({"event": "error", "message": message}));
        } else {
            let _guard = self.out.lock();
            let _ = writeln!(std::io::stderr(), "ⅹ {message}");
        }
    }
}
