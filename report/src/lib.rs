//! The one way the pipeline talks to the user while it works.
//!
//! Every stage (resolution, downloads, layer building, pulls and pushes, `build.run` commands)
//! reports to a [`Reporter`]; the CLI implements it with its printers (indicatif bars on a TTY,
//! plain lines, JSON lines, or nothing). Libraries never print. This follows uv's reporter
//! traits: the library says what happens, the front end decides how it looks.
use std::sync::Arc;

/// What a task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::Items => "items",
        }
    }
}

/// Receives what the pipeline has to say. Implementations must be cheap and must not block
/// for long: they are called from worker threads and async tasks.
pub trait Reporter: Send + Sync {
    /// A step started or finished (`Building Docker image from environment in cog.yaml...`).
    fn message(&self, text: &str);
    /// Something the user should know that does not stop the work.
    fn warning(&self, text: &str);
    /// A unit of tracked work (a pull, an upload, a layer) of `total` units when known.
    fn task(&self, name: &str, total: Option<u64>, unit: Unit) -> Task;
    /// One line a command printed (`build.run`, an sdist build), with the step it belongs to.
    fn output(&self, step: &str, line: &str);
}

/// A shared reporter, as stages hold it (in options structs too: it is `Debug` and defaults to
/// [`Quiet`]).
#[derive(Clone)]
pub struct SharedReporter(Arc<dyn Reporter>);

impl SharedReporter {
    pub fn new(reporter: impl Reporter + 'static) -> Self {
        Self(Arc::new(reporter))
    }
}

impl Default for SharedReporter {
    fn default() -> Self {
        Self::new(Quiet)
    }
}

impl std::fmt::Debug for SharedReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedReporter")
    }
}

impl std::ops::Deref for SharedReporter {
    type Target = dyn Reporter;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl AsRef<dyn Reporter> for SharedReporter {
    fn as_ref(&self) -> &(dyn Reporter + 'static) {
        self.0.as_ref()
    }
}

/// The handle of one task: counts progress, and says how it ended. Dropping it unfinished
/// closes it silently (an error elsewhere will say why).
pub struct Task(Box<dyn TaskSink>);

/// What a reporter does with a task's events.
pub trait TaskSink: Send {
    fn inc(&mut self, n: u64);
    fn set_total(&mut self, total: u64);
    fn finish(&mut self, summary: &str);
}

impl Task {
    pub fn new(sink: impl TaskSink + 'static) -> Self {
        Self(Box::new(sink))
    }

    /// A task nobody watches.
    pub fn silent() -> Self {
        Self::new(Silent)
    }

    pub fn inc(&mut self, n: u64) {
        self.0.inc(n);
    }

    pub fn set_total(&mut self, total: u64) {
        self.0.set_total(total);
    }

    pub fn finish(mut self, summary: &str) {
        self.0.finish(summary);
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Task")
    }
}

struct Silent;

impl TaskSink for Silent {
    fn inc(&mut self, _: u64) {}
    fn set_total(&mut self, _: u64) {}
    fn finish(&mut self, _: &str) {}
}

/// Reports nothing (library callers that do not care, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Reporter for Quiet {
    fn message(&self, _: &str) {}
    fn warning(&self, _: &str) {}
    fn task(&self, _: &str, _: Option<u64>, _: Unit) -> Task {
        Task::silent()
    }
    fn output(&self, _: &str, _: &str) {}
}

/// A shared [`Quiet`] reporter.
pub fn quiet() -> SharedReporter {
    SharedReporter::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    struct RecordedTask(Arc<Mutex<Vec<String>>>, String);

    impl TaskSink for RecordedTask {
        fn inc(&mut self, n: u64) {
            self.0.lock().unwrap().push(format!("{} +{n}", self.1));
        }
        fn set_total(&mut self, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} of {total}", self.1));
        }
        fn finish(&mut self, summary: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} done: {summary}", self.1));
        }
    }

    impl Reporter for Recorder {
        fn message(&self, text: &str) {
            self.0.lock().unwrap().push(text.to_owned());
        }
        fn warning(&self, text: &str) {
            self.0.lock().unwrap().push(format!("warning: {text}"));
        }
        fn task(&self, name: &str, _: Option<u64>, _: Unit) -> Task {
            Task::new(RecordedTask(self.0.clone(), name.to_owned()))
        }
        fn output(&self, step: &str, line: &str) {
            self.0.lock().unwrap().push(format!("[{step}] {line}"));
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn tasks_report_through_their_sink() {
        let recorder = Recorder::default();
        let events = recorder.0.clone();
        let reporter = SharedReporter::new(recorder);
        reporter.message("start");
        let mut task = reporter.task("pull", Some(10), Unit::Bytes);
        task.inc(4);
        task.set_total(12);
        task.finish("ok");
        reporter.output("run 1", "hello");
        reporter.warning("careful");
        quiet().task("x", None, Unit::Items).finish("nothing");
        assert_eq!(
            *events.lock().unwrap(),
            [
                "start",
                "pull +4",
                "pull of 12",
                "pull done: ok",
                "[run 1] hello",
                "warning: careful"
            ]
        );
    }
}
