//! Long-lived worker processes with a private pipe pair.
//!
//! The child gets the request pipe's read end as fd 3 and the response pipe's write end
//! as fd 4; its stdout and stderr are a third pipe, the function's log. So nothing a
//! function prints can reach the protocol, whatever the language.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use nix::fcntl::OFlag;
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout};

use crate::command::{Limits, apply_child_limits};

/// The protocol fds a worker finds open.
pub const REQUEST_FD: i32 = 3;
pub const RESPONSE_FD: i32 = 4;

/// A worker to start.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub limits: Limits,
    /// Namespaces, filesystem view and cgroup (when the sandbox is initialized).
    pub isolation: Option<crate::Isolation>,
}

/// A running worker and its pipes. Dropping it kills the child.
pub struct WorkerProcess {
    pub child: Child,
    /// Write end of the request pipe (the worker's fd 3).
    pub requests: pipe::Sender,
    /// Read end of the response pipe (the worker's fd 4).
    pub responses: pipe::Receiver,
    /// The worker's stdout and stderr: its log.
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// Its cgroup (memory, processes), removed when this is dropped.
    pub cgroup: Option<crate::CgroupBox>,
}

impl WorkerProcess {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the worker's whole process group (it leads one).
    pub fn kill_group(&self) {
        if let Some(pid) = self.child.id() {
            crate::command::kill_group(pid);
        }
    }
}

fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

impl WorkerCommand {
    /// Starts the worker. Must be called inside a tokio runtime.
    pub fn spawn(&self) -> std::io::Result<WorkerProcess> {
        let (request_read, request_write) = cloexec_pipe()?;
        let (response_read, response_write) = cloexec_pipe()?;
        let request_fd = request_read.as_raw_fd();
        let response_fd = response_write.as_raw_fd();

        let (program, args, cgroup) = self.wrapped()?;
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let limits = self.limits.clone();
        // SAFETY: between fork and exec only raw system calls (fcntl, dup2, prctl,
        // setrlimit) run; nothing allocates or takes a lock.
        unsafe {
            command.pre_exec(move || {
                // Move both ends above the target numbers first, so that placing one
                // cannot overwrite the other (either may already be 3 or 4).
                let high_request = dup_above(request_fd)?;
                let high_response = dup_above(response_fd)?;
                dup_onto(high_request, REQUEST_FD)?;
                dup_onto(high_response, RESPONSE_FD)?;
                apply_child_limits(&limits)
            });
        }
        let mut child = command.spawn()?;
        // The child holds its own copies; the parent keeps only its ends.
        drop(request_read);
        drop(response_write);
        let requests = pipe::Sender::from_owned_fd(request_write)?;
        let responses = pipe::Receiver::from_owned_fd(response_read)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("worker stdout not piped"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| std::io::Error::other("worker stderr not piped"))?;
        Ok(WorkerProcess {
            child,
            requests,
            responses,
            stdout,
            stderr,
            cgroup,
        })
    }

    /// The program and arguments to start (through the sandbox helper when the sandbox
    /// is initialized and this command has an isolation), and the child's cgroup.
    pub(crate) fn wrapped(
        &self,
    ) -> std::io::Result<(PathBuf, Vec<OsString>, Option<crate::CgroupBox>)> {
        match (crate::active(), &self.isolation) {
            (Some(sandbox), Some(isolation)) => {
                let wrapped = sandbox.wrap(&self.program, &self.args, &self.cwd, isolation)?;
                Ok((wrapped.program, wrapped.args, wrapped.cgroup))
            }
            _ => Ok((self.program.clone(), self.args.clone(), None)),
        }
    }
}

/// dup(fd) to a number of at least 10, close-on-exec (the copy is only a stepping stone).
pub(crate) fn dup_above(fd: i32) -> std::io::Result<i32> {
    // SAFETY: fcntl on an fd the child inherited; async-signal-safe.
    let new = unsafe { nix::libc::fcntl(fd, nix::libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(new)
}

/// dup2(from, to): `to` is then open and inherited across exec.
pub(crate) fn dup_onto(from: i32, to: i32) -> std::io::Result<()> {
    // SAFETY: dup2 on fds the child owns; async-signal-safe.
    if unsafe { nix::libc::dup2(from, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
