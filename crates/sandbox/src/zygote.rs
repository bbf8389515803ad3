//! A zygote (fork server): a long-lived process, started through [`WorkerCommand`]
//! with a control socket on fd 3, that forks a new worker per request.
//!
//! For each worker the server creates the worker's pipes itself (requests, responses,
//! log, and a one-byte "go" pipe) and passes the worker's ends to the zygote with
//! `SCM_RIGHTS`; the zygote forks, and the child places them on fds 3, 4, 1 and 2, leads
//! a new process group, and dies with the zygote (which dies with the server).
//!
//! The child itself answers `{"pid": N}`; the control socket has `SO_PASSCRED`, so the
//! kernel attaches the child's pid as the server sees it (a sandboxed zygote lives in
//! its own PID namespace, where N means nothing to the server). The server then moves
//! that pid into the worker's own cgroup and writes the go byte: the worker loads the
//! function's code only once its limits apply. The zygote reaps its children; the
//! server learns a worker ended from its pipes.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::process::Stdio;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, setsockopt, socketpair, sockopt,
};
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStderr, ChildStdout};

use crate::command::apply_child_limits;
use crate::worker::{REQUEST_FD, WorkerCommand};

/// A running zygote.
pub struct ZygoteProcess {
    pub child: Child,
    control: UnixStream,
    /// The zygote's own output, for the caller to forward (taken once).
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    /// The zygote's own cgroup (each worker gets its own).
    pub cgroup: Option<crate::CgroupBox>,
}

/// The server's ends of a forked worker's pipes.
pub struct ForkedWorker {
    pub pid: u32,
    pub requests: pipe::Sender,
    pub responses: pipe::Receiver,
    /// The worker's stdout and stderr (one pipe).
    pub log: pipe::Receiver,
    /// The worker's cgroup, with its memory and process limits.
    pub cgroup: Option<crate::CgroupBox>,
}

fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

impl WorkerCommand {
    /// Starts this command as a zygote: its fd 3 is a control socket.
    pub fn spawn_zygote(&self) -> std::io::Result<ZygoteProcess> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        setsockopt(&ours, sockopt::PassCred, &true).map_err(std::io::Error::from)?;
        let their_fd = theirs.as_raw_fd();
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
        // SAFETY: only raw system calls between fork and exec (see worker.rs).
        unsafe {
            command.pre_exec(move || {
                let high = crate::worker::dup_above(their_fd)?;
                crate::worker::dup_onto(high, REQUEST_FD)?;
                apply_child_limits(&limits)
            });
        }
        let mut child = command.spawn()?;
        drop(theirs);
        let std_stream = StdUnixStream::from(ours);
        std_stream.set_nonblocking(true)?;
        let control = UnixStream::from_std(std_stream)?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        Ok(ZygoteProcess {
            child,
            control,
            stdout,
            stderr,
            cgroup,
        })
    }
}

impl ZygoteProcess {
    /// Asks the zygote to fork a worker. `request` is the JSON the zygote reads (what to
    /// load, with which environment); `limits` gives the worker its own cgroup. One fork
    /// at a time per zygote (`&mut self`).
    pub async fn fork_worker(
        &mut self,
        request: &[u8],
        limits: Option<&crate::Isolation>,
    ) -> std::io::Result<ForkedWorker> {
        let (request_read, request_write) = cloexec_pipe()?;
        let (response_read, response_write) = cloexec_pipe()?;
        let (log_read, log_write) = cloexec_pipe()?;
        let (go_read, go_write) = cloexec_pipe()?;
        let mut frame = Vec::with_capacity(4 + request.len());
        frame.extend_from_slice(&(request.len() as u32).to_be_bytes());
        frame.extend_from_slice(request);
        let fds = [
            request_read.as_raw_fd(),
            response_write.as_raw_fd(),
            log_write.as_raw_fd(),
            go_read.as_raw_fd(),
        ];
        let socket_fd = self.control.as_raw_fd();
        let mut sent = 0;
        while sent < frame.len() {
            self.control.writable().await?;
            let chunk = &frame[sent..];
            // The descriptors travel with the first bytes only.
            let with_fds = sent == 0;
            let result = self.control.try_io(Interest::WRITABLE, || {
                let iov = [IoSlice::new(chunk)];
                let rights = [ControlMessage::ScmRights(&fds)];
                let cmsgs: &[ControlMessage] = if with_fds { &rights } else { &[] };
                sendmsg::<()>(socket_fd, &iov, cmsgs, MsgFlags::empty(), None)
                    .map_err(std::io::Error::from)
            });
            match result {
                Ok(n) => sent += n,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            }
        }
        // The zygote holds its copies now; ours of the child ends close here.
        drop((request_read, response_write, log_write, go_read));
        let (reply, sender) = self.read_reply().await?;
        let reported = parse_pid(&reply).ok_or_else(|| {
            std::io::Error::other(format!(
                "zygote could not fork: {}",
                String::from_utf8_lossy(&reply)
            ))
        })?;
        // The kernel's word for who sent the reply, in our PID namespace.
        let pid = sender.unwrap_or(reported);
        let cgroup = match (crate::active(), limits) {
            (Some(sandbox), Some(isolation)) => {
                let group = sandbox.cgroup_for(isolation)?;
                if let Some(group) = &group {
                    group.add(pid)?;
                }
                group
            }
            _ => None,
        };
        let mut go = pipe::Sender::from_owned_fd(go_write)?;
        tokio::io::AsyncWriteExt::write_all(&mut go, b"g").await?;
        Ok(ForkedWorker {
            pid,
            requests: pipe::Sender::from_owned_fd(request_write)?,
            responses: pipe::Receiver::from_owned_fd(response_read)?,
            log: pipe::Receiver::from_owned_fd(log_read)?,
            cgroup,
        })
    }

    /// One length-prefixed reply, and the pid of the process that sent it.
    async fn read_reply(&mut self) -> std::io::Result<(Vec<u8>, Option<u32>)> {
        let socket_fd = self.control.as_raw_fd();
        let mut received = Vec::new();
        let mut sender = None;
        loop {
            if received.len() >= 4 {
                let len = u32::from_be_bytes([received[0], received[1], received[2], received[3]])
                    as usize;
                if len > 64 * 1024 {
                    return Err(std::io::Error::other("zygote reply too large"));
                }
                if received.len() >= 4 + len {
                    return Ok((received[4..4 + len].to_vec(), sender));
                }
            }
            self.control.readable().await?;
            let mut chunk = [0u8; 4096];
            let result = self.control.try_io(Interest::READABLE, || {
                let mut iov = [std::io::IoSliceMut::new(&mut chunk)];
                let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
                let message =
                    recvmsg::<()>(socket_fd, &mut iov, Some(&mut space), MsgFlags::empty())
                        .map_err(std::io::Error::from)?;
                let mut pid = None;
                for cmsg in message.cmsgs().map_err(std::io::Error::from)? {
                    if let ControlMessageOwned::ScmCredentials(creds) = cmsg {
                        pid = u32::try_from(creds.pid()).ok().filter(|p| *p > 0);
                    }
                }
                Ok((message.bytes, pid))
            });
            match result {
                Ok((0, _)) => return Err(std::io::Error::other("the zygote closed its socket")),
                Ok((n, pid)) => {
                    received.extend_from_slice(&chunk[..n]);
                    sender = sender.or(pid);
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// False once the zygote has exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// `{"pid": N}` → N, without a JSON dependency here.
fn parse_pid(reply: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(reply).ok()?;
    let rest = text.split("\"pid\"").nth(1)?;
    let digits: String = rest
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok().filter(|pid| *pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(parse_pid(br#"{"pid": 1234}"#), Some(1234));
        assert_eq!(parse_pid(br#"{"pid":7}"#), Some(7));
        assert_eq!(parse_pid(br#"{"error": "no"}"#), None);
        assert_eq!(parse_pid(br#"{"pid": 0}"#), None);
    }
}
