//! What can go wrong: [`SandboxError`] on the caller's side, [`StepError`] for what happened
//! inside the sandbox process (it crosses the process boundary as data, so its causes are
//! text), [`RootlessError`] for what an unprivileged user is missing.
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why [`run_steps`](super::run_steps) failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The command ran and exited with a non-zero code.
    #[error("`{command}` failed with exit code {exit_code}{}", tail_text(.tail))]
    CommandFailed {
        /// Index of the step in the slice given.
        step: usize,
        command: String,
        exit_code: i32,
        /// The last lines of its output (at most [`TAIL_LINES`](super::TAIL_LINES)).
        tail: Vec<String>,
    },
    /// The OCI runtime failed before the command started (its own message is in `tail`).
    #[error("runc could not start `{command}` (exit code {exit_code}){}", tail_text(.tail))]
    RuntimeFailed {
        step: usize,
        command: String,
        exit_code: i32,
        tail: Vec<String>,
    },
    #[error(
        "run step {step} (`{command}`) mounts the secret {id:?}, but no secret with that id was \
         given (cog build --secret id={id},src=PATH)"
    )]
    UnknownSecret {
        step: usize,
        command: String,
        id: String,
    },
    #[error("secret {id:?}: cannot read {}", .path.display())]
    SecretRead {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("secret {id:?}: the environment variable {var} is not set")]
    SecretEnv { id: String, var: String },
    /// `COG_MAX_UNPACKED_SIZE` or `COG_MAX_LAYER_RATIO` is not a size or a number.
    #[error("{0}")]
    Limits(String),
    #[error("secret {id:?} is {size} bytes; a secret may be at most {limit} bytes")]
    SecretTooLarge { id: String, size: u64, limit: u64 },
    #[error("run step {step}: {field} {value:?}: {reason}")]
    InvalidStep {
        step: usize,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("the layer {digest} below the run steps is not in the blob store at {}", .store.display())]
    MissingLayer {
        digest: layers::Digest,
        store: PathBuf,
    },
    #[error("cannot run build commands for {platform} on this {host} machine: {reason}")]
    ForeignPlatform {
        platform: String,
        host: String,
        reason: String,
    },
    #[error(transparent)]
    Rootless(#[from] RootlessError),
    #[error(
        "running build commands needs the OCI runtime `runc` (apt-get install runc), and it is \
         not on PATH"
    )]
    NoRuntime,
    #[error("cannot start the sandbox process {}", .program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the sandbox process {} ended without an answer ({status}){}",
        .program.display(),
        tail_text(.stderr)
    )]
    HelperDied {
        program: PathBuf,
        status: String,
        stderr: Vec<String>,
    },
    #[error("run step {step} (`{command}`)")]
    Step {
        step: usize,
        command: String,
        #[source]
        source: StepError,
    },
    #[error("secrets directory {}", .path.display())]
    SecretsDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the layer cache")]
    Store(#[source] layers::Error),
    #[error("removing the unpacked layers")]
    Cleanup(#[source] StepError),
}

fn tail_text(lines: &[String]) -> String {
    if lines.is_empty() {
        return " and printed nothing".to_string();
    }
    let mut text = String::from("; its last lines:");
    for line in lines {
        let _ = write!(text, "\n  {line}");
    }
    text
}

/// What failed inside the sandbox process, for one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum StepError {
    #[error("unpacking layer {layer}: entry {entry:?}: {reason}")]
    Entry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("unpacking layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    #[error(
        "layer {layer} unpacks to more than {limit} bytes, the limit on what a build unpacks \
         (set COG_MAX_UNPACKED_SIZE to raise it)"
    )]
    TooLarge { layer: String, limit: u64 },
    #[error(
        "layer {layer} expands more than {max_ratio} times ({compressed} compressed bytes \
         gave {inflated}), the limit on a layer's decompression ratio (set COG_MAX_LAYER_RATIO \
         to raise it)"
    )]
    Inflated {
        layer: String,
        compressed: u64,
        inflated: u64,
        max_ratio: u64,
    },
    #[error("mount target {target}: {reason}")]
    MountTarget { target: String, reason: String },
    #[error("capturing the command's changes: {path:?}: {reason}")]
    Capture { path: String, reason: String },
    #[error("{action}: {reason}")]
    System { action: String, reason: String },
}

impl StepError {
    pub(crate) fn system(action: impl Into<String>, err: &io::Error) -> Self {
        StepError::System {
            action: action.into(),
            reason: io_text(err),
        }
    }
}

/// An I/O error's text with the OS error behind an `fs-err` message.
pub(crate) fn io_text(err: &io::Error) -> String {
    match err.get_ref().and_then(std::error::Error::source) {
        Some(inner) => format!("{err}: {inner}"),
        None => err.to_string(),
    }
}

/// What a user without root lacks to run build commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootlessError {
    #[error(
        "running build commands without root needs `{tool}` (Debian package `uidmap`: \
         apt-get install uidmap), and it is not on PATH"
    )]
    MissingTool { tool: &'static str },
    #[error(
        "running build commands without root needs subordinate {kind} ids for the user {user} \
         (uid {uid}) in {file}; there are none: add them with `usermod --add-subuids \
         100000-165535 --add-subgids 100000-165535 {user}` (as root)"
    )]
    NoSubordinateIds {
        kind: &'static str,
        file: &'static str,
        user: String,
        uid: u32,
    },
    #[error(
        "running build commands without root needs user namespaces, and this kernel has them \
         turned off ({setting}); turn them on (as root: sysctl -w {setting_fix})"
    )]
    UserNamespacesDisabled {
        setting: String,
        setting_fix: String,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    MappingFailed {
        command: String,
        status: String,
        stderr: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_shows_its_exit_code_and_tail() {
        let err = SandboxError::CommandFailed {
            step: 1,
            command: "make".into(),
            exit_code: 2,
            tail: vec!["cc -c a.c".into(), "error: oops".into()],
        };
        assert_eq!(
            err.to_string(),
            "`make` failed with exit code 2; its last lines:\n  cc -c a.c\n  error: oops"
        );
        let quiet = SandboxError::CommandFailed {
            step: 0,
            command: "false".into(),
            exit_code: 1,
            tail: Vec::new(),
        };
        assert_eq!(
            quiet.to_string(),
            "`false` failed with exit code 1 and printed nothing"
        );
    }
}
