//! Running one sandboxed child to completion.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Limits on one child.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time before the whole process group is killed.
    pub wall_time: Duration,
    /// CPU seconds (RLIMIT_CPU), per process.
    pub cpu_seconds: u64,
    /// Largest file the child may write (RLIMIT_FSIZE).
    pub max_file_bytes: u64,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub max_open_files: u64,
    /// Bytes of stdout and of stderr kept; the rest is read and dropped.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(60),
            cpu_seconds: 120,
            max_file_bytes: 256 * 1024 * 1024,
            max_open_files: 1024,
            max_output_bytes: 64 * 1024,
        }
    }
}

/// A program to run, with everything it may see spelled out.
#[derive(Debug, Clone)]
pub struct SandboxedCommand {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    limits: Limits,
    stdin: Option<bytes::Bytes>,
    isolation: Option<crate::Isolation>,
}

/// How a child ended and what it wrote.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The wall-clock limit was reached and the child was killed.
    pub timed_out: bool,
    /// stdout or stderr went past `max_output_bytes`.
    pub output_truncated: bool,
    /// The kernel killed it (or one of its processes) at its cgroup's memory limit.
    pub oom_killed: bool,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }
}

impl SandboxedCommand {
    pub fn new(program: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: cwd.into(),
            limits: Limits::default(),
            stdin: None,
            isolation: None,
        }
    }

    /// Bytes written to the child's stdin (closed after them). Default: no stdin.
    pub fn stdin(mut self, input: bytes::Bytes) -> Self {
        self.stdin = Some(input);
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs the child in its own namespaces, filesystem view and cgroup (when the
    /// sandbox is initialized; see [`crate::init`]).
    pub fn isolate(mut self, isolation: crate::Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// Runs the child to completion (or to its time limit).
    pub async fn run(self) -> std::io::Result<Outcome> {
        let (program, args, cgroup) = match (crate::active(), &self.isolation) {
            (Some(sandbox), Some(isolation)) => {
                let wrapped = sandbox.wrap(&self.program, &self.args, &self.cwd, isolation)?;
                (wrapped.program, wrapped.args, wrapped.cgroup)
            }
            _ => (self.program.clone(), self.args.clone(), None),
        };
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let limits = self.limits.clone();
        // SAFETY: the closure runs between fork and exec; it only makes raw system calls
        // (prctl, setrlimit), which are async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || apply_child_limits(&limits));
        }
        let mut child = command.spawn()?;
        let pid = child.id();
        if let (Some(input), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // A child that exits without reading its input is not an error.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = pipe.write_all(&input).await;
            });
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let cap = self.limits.max_output_bytes;
        let read_out = read_capped(stdout, cap);
        let read_err = read_capped(stderr, cap);
        let wait = async {
            let (out, err, status) = tokio::join!(read_out, read_err, child.wait());
            (out, err, status)
        };
        match tokio::time::timeout(self.limits.wall_time, wait).await {
            Ok(((stdout, out_cut), (stderr, err_cut), status)) => Ok(Outcome {
                status: status?,
                stdout,
                stderr,
                timed_out: false,
                output_truncated: out_cut || err_cut,
                oom_killed: cgroup.as_ref().is_some_and(|c| c.oom_killed()),
            }),
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                let status = child.wait().await?;
                Ok(Outcome {
                    status,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    timed_out: true,
                    output_truncated: false,
                    oom_killed: cgroup.as_ref().is_some_and(|c| c.oom_killed()),
                })
            }
        }
    }
}

pub(crate) fn apply_child_limits(limits: &Limits) -> std::io::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    setrlimit(Resource::RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds)?;
    setrlimit(
        Resource::RLIMIT_FSIZE,
        limits.max_file_bytes,
        limits.max_file_bytes,
    )?;
    setrlimit(
        Resource::RLIMIT_NOFILE,
        limits.max_open_files,
        limits.max_open_files,
    )?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    Ok(())
}

pub(crate) fn kill_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // The child leads its own process group (process_group(0)), so its pid is the pgid.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Reads a pipe to its end, keeping at most `cap` bytes. Returns (bytes, truncated).
async fn read_capped<R: AsyncRead + Unpin>(reader: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut reader) = reader else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_a_program_with_only_the_given_environment() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = SandboxedCommand::new("/usr/bin/env", dir.path())
            .env("ONLY", "this")
            .run()
            .await
            .unwrap();
        assert!(outcome.success());
        assert_eq!(String::from_utf8_lossy(&outcome.stdout), "ONLY=this\n");
    }

    #[tokio::test]
    async fn kills_the_whole_group_at_the_time_limit() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let outcome = SandboxedCommand::new("/bin/sh", dir.path())
            .args(["-c", "sleep 30 & sleep 30"])
            .limits(Limits {
                wall_time: Duration::from_millis(200),
                ..Limits::default()
            })
            .run()
            .await
            .unwrap();
        assert!(outcome.timed_out);
        assert!(!outcome.success());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn caps_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = SandboxedCommand::new("/bin/sh", dir.path())
            .args(["-c", "head -c 100000 /dev/zero"])
            .limits(Limits {
                max_output_bytes: 1000,
                ..Limits::default()
            })
            .run()
            .await
            .unwrap();
        assert_eq!(outcome.stdout.len(), 1000);
        assert!(outcome.output_truncated);
    }

    #[tokio::test]
    async fn file_size_limit_applies() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = SandboxedCommand::new("/bin/sh", dir.path())
            .args(["-c", "head -c 100000 /dev/zero > big"])
            .limits(Limits {
                max_file_bytes: 4096,
                ..Limits::default()
            })
            .run()
            .await
            .unwrap();
        assert!(!outcome.success());
        let written = std::fs::metadata(dir.path().join("big")).unwrap().len();
        assert!(written <= 4096);
    }
}
