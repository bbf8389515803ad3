//! One warm worker: a process running a language shim, one request at a time over its
//! private pipes. A spawned worker is reaped by its own task; a worker forked by the
//! Python zygote is reaped by the zygote, and seen to end when its log pipe closes.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use minifaas_core::{
    Error, FUNCTION_OUTPUT_TARGET, Instance, InvokeRequest, InvokeResponse, Result,
};
use minifaas_sandbox::{CgroupBox, WorkerCommand, WorkerProcess};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::unix::pipe;

use crate::protocol::{read_response, write_frame, write_request};
use crate::zygote::Zygote;

/// How a worker process comes to be.
pub(crate) enum Launch {
    /// A fresh interpreter running the shim.
    Spawn(WorkerCommand),
    /// A fork of the language's zygote; `request` tells it what to load.
    Fork {
        zygote: Arc<Zygote>,
        request: Vec<u8>,
    },
    /// A generic idle worker (already started, no code loaded) told what to load, or,
    /// when none is idle, a fresh one.
    Specialize {
        spares: Arc<Spares>,
        load: Vec<u8>,
        fallback: WorkerCommand,
    },
}

/// How to start a worker of one function version.
pub(crate) struct WorkerSpec {
    pub function: String,
    pub launch: Launch,
    pub startup_timeout: Duration,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// The function's memory limit, for the error when it is exceeded.
    pub memory_bytes: Option<u64>,
}

struct Pipes {
    requests: pipe::Sender,
    responses: pipe::Receiver,
}

/// A process that is running the shim, before or after its code is loaded.
pub(crate) struct Started {
    pid: Option<u32>,
    pipes: Pipes,
    /// Set once the process exited or was found broken.
    broken: Arc<AtomicBool>,
    exit_status: Arc<std::sync::Mutex<Option<String>>>,
    /// Its cgroup: says whether the kernel killed it at its memory limit.
    cgroup: Option<Arc<CgroupBox>>,
    /// The invocation running now: what its log lines are tagged with.
    current: CurrentInvocation,
    /// Its log pipes, to wait until what it printed during a call has been read.
    log_fds: Vec<std::os::fd::RawFd>,
}

/// The id of the invocation a worker is running, shared with its log readers.
pub(crate) type CurrentInvocation = Arc<std::sync::Mutex<Option<String>>>;

impl Started {
    /// Spawns `command`; its output goes to the log under `label`.
    pub(crate) fn spawn(command: &WorkerCommand, label: &str) -> Result<Started> {
        let process = command
            .spawn()
            .map_err(|e| Error::platform_ctx(&format!("starting a worker for '{label}'"), e))?;
        let WorkerProcess {
            mut child,
            requests,
            responses,
            stdout,
            stderr,
            cgroup,
        } = process;
        let pid = child.id();
        let current = CurrentInvocation::default();
        let log_fds = vec![stdout.as_raw_fd(), stderr.as_raw_fd()];
        forward_log(label.to_owned(), pid, stdout, None, Some(current.clone()));
        forward_log(label.to_owned(), pid, stderr, None, Some(current.clone()));
        let broken = Arc::new(AtomicBool::new(false));
        let exit_status = Arc::new(std::sync::Mutex::new(None));
        // The reaper: tokio's child handling collects the exit status (no zombies).
        {
            let broken = broken.clone();
            let exit_status = exit_status.clone();
            let label = label.to_owned();
            tokio::spawn(async move {
                let status = child.wait().await;
                broken.store(true, Ordering::Release);
                let text = match status {
                    Ok(status) => status.to_string(),
                    Err(err) => format!("unknown ({err})"),
                };
                tracing::debug!(function = label, pid, status = %text, "worker exited");
                if let Ok(mut slot) = exit_status.lock() {
                    *slot = Some(text);
                }
            });
        }
        Ok(Started {
            pid,
            pipes: Pipes {
                requests,
                responses,
            },
            broken,
            exit_status,
            cgroup: cgroup.map(Arc::new),
            current,
            log_fds,
        })
    }

    /// Forks from the zygote; the zygote reaps it, and its log pipe closing says it ended.
    async fn fork(zygote: &Zygote, request: &[u8], label: &str) -> Result<Started> {
        let forked = zygote
            .fork(request)
            .await
            .map_err(|e| Error::platform_ctx(&format!("forking a worker for '{label}'"), e))?;
        let broken = Arc::new(AtomicBool::new(false));
        let current = CurrentInvocation::default();
        let log_fds = vec![forked.log.as_raw_fd()];
        forward_log(
            label.to_owned(),
            Some(forked.pid),
            forked.log,
            Some(broken.clone()),
            Some(current.clone()),
        );
        Ok(Started {
            pid: Some(forked.pid),
            pipes: Pipes {
                requests: forked.requests,
                responses: forked.responses,
            },
            broken,
            exit_status: Arc::new(std::sync::Mutex::new(None)),
            cgroup: forked.cgroup.map(Arc::new),
            current,
            log_fds,
        })
    }

    pub(crate) fn is_usable(&self) -> bool {
        !self.broken.load(Ordering::Acquire)
    }

    pub(crate) fn kill(&self) {
        self.broken.store(true, Ordering::Release);
        if let Some(pid) = self.pid {
            minifaas_sandbox::kill_process_group(pid);
        }
    }

    /// Waits for the shim's `ready` frame (after it loaded the code, or, for a generic
    /// worker, after it started). Kills the process on any failure.
    pub(crate) async fn await_ready(
        &mut self,
        function: &str,
        timeout: Duration,
        max: usize,
    ) -> Result<()> {
        let ready =
            tokio::time::timeout(timeout, read_response(&mut self.pipes.responses, max)).await;
        let failure = match ready {
            Ok(Ok((header, _))) if header.ready == Some(true) => return Ok(()),
            Ok(Ok((header, _))) => format!(
                "function '{function}' failed to load: {}",
                header.error.unwrap_or_else(|| "no reason given".into())
            ),
            Ok(Err(err)) => {
                format!("function '{function}' exited while loading ({err}); see its log")
            }
            Err(_) => format!(
                "function '{function}' did not finish loading within {} s",
                timeout.as_secs()
            ),
        };
        self.kill();
        Err(Error::function_failed("function_load_failed", failure))
    }

    /// Sends a generic worker the frame that tells it what to load.
    async fn send_load(&mut self, load: &[u8]) -> std::io::Result<()> {
        write_frame(&mut self.pipes.requests, load, &[]).await
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // Whoever holds a process last stops it (its reaper, or the zygote, collects it).
        self.kill();
    }
}

pub(crate) struct Worker {
    pub pid: Option<u32>,
    spec: Arc<WorkerSpec>,
    function: String,
    process: tokio::sync::Mutex<Started>,
    broken: Arc<AtomicBool>,
    exit_status: Arc<std::sync::Mutex<Option<String>>>,
    cgroup: Option<Arc<CgroupBox>>,
    next_request: AtomicU64,
}

impl Worker {
    /// Starts a worker and waits until its handler is loaded.
    pub(crate) async fn start(spec: &Arc<WorkerSpec>) -> Result<Arc<Worker>> {
        let clock = Instant::now();
        let limit = spec.startup_timeout;
        let max = spec.max_response_bytes;
        let name = &spec.function;
        let started = match &spec.launch {
            Launch::Spawn(command) => {
                let mut started = Started::spawn(command, name)?;
                started.await_ready(name, limit, max).await?;
                started
            }
            Launch::Fork { zygote, request } => {
                let mut started = Started::fork(zygote, request, name).await?;
                started.await_ready(name, limit, max).await?;
                started
            }
            Launch::Specialize {
                spares,
                load,
                fallback,
            } => match spares.take() {
                Some(mut generic) => {
                    if let Err(err) = generic.send_load(load).await {
                        generic.kill();
                        return Err(Error::platform_ctx("specializing a generic worker", err));
                    }
                    generic.await_ready(name, limit, max).await?;
                    generic
                }
                None => {
                    let mut started = Started::spawn(fallback, name)?;
                    started
                        .send_load(load)
                        .await
                        .map_err(|e| Error::platform_ctx("loading a worker", e))?;
                    // A fresh generic worker says ready twice: started, then loaded.
                    started.await_ready(name, limit, max).await?;
                    started.await_ready(name, limit, max).await?;
                    started
                }
            },
        };
        tracing::debug!(
            function = %spec.function,
            pid = started.pid,
            ms = clock.elapsed().as_millis() as u64,
            "worker ready"
        );
        Ok(Arc::new(Worker {
            pid: started.pid,
            spec: spec.clone(),
            function: spec.function.clone(),
            broken: started.broken.clone(),
            exit_status: started.exit_status.clone(),
            cgroup: started.cgroup.clone(),
            process: tokio::sync::Mutex::new(started),
            next_request: AtomicU64::new(1),
        }))
    }

    fn kill(&self) {
        self.broken.store(true, Ordering::Release);
        if let Some(pid) = self.pid {
            minifaas_sandbox::kill_process_group(pid);
        }
    }
}

/// Generic idle workers of one language: started with no code, specialized on first
/// use, replaced in the background. For runtimes that cannot fork safely (Node).
pub(crate) struct Spares {
    command: WorkerCommand,
    label: String,
    target: usize,
    startup_timeout: Duration,
    idle: std::sync::Mutex<Vec<Started>>,
    starting: AtomicU64,
}

impl Spares {
    pub(crate) fn new(
        command: WorkerCommand,
        label: &str,
        target: usize,
        startup_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            command,
            label: label.to_owned(),
            target,
            startup_timeout,
            idle: std::sync::Mutex::new(Vec::new()),
            starting: AtomicU64::new(0),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Started>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle generic worker, if one is ready; starts replacements either way.
    fn take(self: &Arc<Self>) -> Option<Started> {
        let taken = {
            let mut idle = self.idle();
            idle.retain(Started::is_usable);
            idle.pop()
        };
        self.refill();
        taken
    }

    /// Starts generic workers in the background up to the target.
    pub(crate) fn refill(self: &Arc<Self>) {
        let have = self.idle().len() as u64 + self.starting.load(Ordering::Relaxed);
        for _ in have..self.target as u64 {
            self.starting.fetch_add(1, Ordering::Relaxed);
            let spares = self.clone();
            tokio::spawn(async move {
                let started = match Started::spawn(&spares.command, &spares.label) {
                    Ok(mut started) => started
                        .await_ready(&spares.label, spares.startup_timeout, 64 * 1024)
                        .await
                        .map(|()| started),
                    Err(err) => Err(err),
                };
                spares.starting.fetch_sub(1, Ordering::Relaxed);
                match started {
                    Ok(started) => spares.idle().push(started),
                    Err(err) => tracing::warn!(%err, "could not start a generic worker"),
                }
            });
        }
    }
}

#[async_trait]
impl Instance for Worker {
    fn pid(&self) -> Option<u32> {
        self.pid
    }

    fn is_usable(&self) -> bool {
        !self.broken.load(Ordering::Acquire)
    }

    /// Runs one request. A worker that times out is killed (504); one that dies or
    /// breaks the protocol is discarded (502); a handler exception leaves it usable.
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let spec = &self.spec;
        let request = &request;
        let mut process = self.process.lock().await;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let deadline_ms = SystemTime::now()
            .checked_add(spec.timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        set_current(&process.current, Some(request.id.clone()));
        let exchange = async {
            let Pipes {
                requests,
                responses,
            } = &mut process.pipes;
            write_request(requests, id, request, deadline_ms).await?;
            read_response(responses, spec.max_response_bytes).await
        };
        let outcome = tokio::time::timeout(spec.timeout, exchange).await;
        // What it printed during the call is in its log pipes by now: give the readers
        // a moment to file it. The id stays until the next call replaces it, so a line
        // read late still goes to this invocation.
        drain_logs(&process.log_fds).await;
        match outcome {
            Err(_) => {
                self.kill();
                Err(Error::timeout(format!(
                    "function '{}' did not finish within its {} s timeout",
                    self.function,
                    spec.timeout.as_secs_f64()
                )))
            }
            Ok(Err(err)) => {
                self.kill();
                // Give the reaper a moment to record how the process ended.
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(cgroup) = &self.cgroup
                    && cgroup.oom_killed()
                {
                    return Err(crate::memory_exceeded(&self.function, spec.memory_bytes));
                }
                let status = self.exit_status.lock().ok().and_then(|s| s.clone());
                let how = match status {
                    Some(status) => format!("its worker exited ({status})"),
                    None => format!("its worker broke the protocol ({err})"),
                };
                Err(Error::function_failed(
                    "function_crashed",
                    format!("function '{}' crashed: {how}; see its log", self.function),
                ))
            }
            Ok(Ok((header, body))) => {
                if let Some(error) = header.error {
                    return Err(Error::function_failed(
                        "function_error",
                        format!("function '{}' raised an error: {error}", self.function),
                    ));
                }
                Ok(InvokeResponse {
                    status: header.status.unwrap_or(200),
                    headers: header.headers,
                    body,
                })
            }
        }
    }
}

fn set_current(current: &CurrentInvocation, id: Option<String>) {
    if let Ok(mut slot) = current.lock() {
        *slot = id;
    }
}

/// Waits (briefly, bounded) until the log pipes hold nothing unread.
async fn drain_logs(fds: &[std::os::fd::RawFd]) {
    for _ in 0..50 {
        let pending: usize = fds
            .iter()
            .map(|fd| minifaas_sandbox::pipe_pending(*fd))
            .sum();
        tokio::task::yield_now().await;
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Forwards a worker's output to the server log, line by line, capped.
pub(crate) fn forward_log<R: AsyncRead + Unpin + Send + 'static>(
    function: String,
    pid: Option<u32>,
    stream: R,
    ended: Option<Arc<AtomicBool>>,
    current: Option<CurrentInvocation>,
) {
    tokio::spawn(async move {
        // Bytes, not str: a function printing invalid UTF-8 must not stop the draining
        // (a full pipe would block it forever).
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line[..line.len().min(4096)]);
                    let text = text.trim_end();
                    let invocation = current
                        .as_ref()
                        .and_then(|c| c.lock().ok().and_then(|id| id.clone()))
                        .unwrap_or_default();
                    tracing::info!(target: FUNCTION_OUTPUT_TARGET, function, pid, invocation, "{text}");
                }
            }
        }
        if let Some(ended) = ended {
            ended.store(true, Ordering::Release);
        }
    });
}
