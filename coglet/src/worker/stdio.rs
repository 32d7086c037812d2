//! fd-level isolation of the worker: the control channel moves off fds 0/1 and fds 1/2 become
//! capture pipes, so nothing user code or its subprocesses print can corrupt the IPC.

use std::fs::File;
use std::io::{self, PipeReader};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

pub(crate) struct IsolatedStdio {
    pub control_in: File,
    pub control_out: File,
    pub stdout_capture: PipeReader,
    pub stderr_capture: PipeReader,
}

fn dup2(src: BorrowedFd<'_>, dst: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on a valid open fd; the target is one of the standard fds we mean to replace.
    let rc = unsafe { libc::dup2(src.as_raw_fd(), dst) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn std_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: fds 0/1/2 stay open for the life of the process: we only ever dup2 over them.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Moves the control channel (stdin/stdout) to close-on-exec fds >= 3, points fd 0 at
/// /dev/null and fds 1/2 at fresh pipes whose read ends are returned.
pub(crate) fn isolate() -> io::Result<IsolatedStdio> {
    // try_clone_to_owned uses F_DUPFD_CLOEXEC from 3 upwards: never lands on 0/1/2.
    let control_in: OwnedFd = std_fd(0).try_clone_to_owned()?;
    let control_out: OwnedFd = std_fd(1).try_clone_to_owned()?;
    let (stdout_capture, stdout_write) = io::pipe()?;
    let (stderr_capture, stderr_write) = io::pipe()?;
    let devnull = File::open("/dev/null")?;
    dup2(devnull.as_fd(), 0)?;
    dup2(stdout_write.as_fd(), 1)?;
    dup2(stderr_write.as_fd(), 2)?;
    Ok(IsolatedStdio {
        control_in: File::from(control_in),
        control_out: File::from(control_out),
        stdout_capture,
        stderr_capture,
    })
}
