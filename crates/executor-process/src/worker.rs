//! One warm worker: a process running a language shim, one request at a time over its
//! private pipes. A spawned worker is reaped by its own task; a worker forked by the
//! Python zygote is reaped by the zygote, and seen to end when its log pipe closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use minifaas_core::{Error, Instance, InvokeRequest, InvokeResponse, Result};
use minifaas_sandbox::{WorkerCommand, WorkerProcess};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::unix::pipe;

use crate::protocol::{read_response, write_request};
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
}

/// How to start a worker of one function version.
pub(crate) struct WorkerSpec {
    pub function: String,
    pub launch: Launch,
    pub startup_timeout: Duration,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

struct Pipes {
    requests: pipe::Sender,
    responses: pipe::Receiver,
}

pub(crate) struct Worker {
    pub pid: Option<u32>,
    spec: Arc<WorkerSpec>,
    function: String,
    pipes: tokio::sync::Mutex<Pipes>,
    /// Set once the process exited or was found broken: never used again.
    broken: Arc<AtomicBool>,
    exit_status: Arc<std::sync::Mutex<Option<String>>>,
    next_request: AtomicU64,
}

impl Worker {
    /// Starts a worker and waits until its handler is loaded.
    pub(crate) async fn start(spec: &Arc<WorkerSpec>) -> Result<Arc<Worker>> {
        let started = Instant::now();
        let broken = Arc::new(AtomicBool::new(false));
        let exit_status = Arc::new(std::sync::Mutex::new(None));
        let (pid, requests, mut responses) = match &spec.launch {
            Launch::Spawn(command) => {
                let process = command.spawn().map_err(|e| {
                    Error::platform_ctx(&format!("starting a worker for '{}'", spec.function), e)
                })?;
                let WorkerProcess {
                    mut child,
                    requests,
                    responses,
                    stdout,
                    stderr,
                } = process;
                let pid = child.id();
                forward_log(spec.function.clone(), pid, stdout, None);
                forward_log(spec.function.clone(), pid, stderr, None);
                // The reaper: tokio's child handling collects the exit status (no zombies).
                let broken = broken.clone();
                let exit_status = exit_status.clone();
                let function = spec.function.clone();
                tokio::spawn(async move {
                    let status = child.wait().await;
                    broken.store(true, Ordering::Release);
                    let text = match status {
                        Ok(status) => status.to_string(),
                        Err(err) => format!("unknown ({err})"),
                    };
                    tracing::debug!(function, pid, status = %text, "worker exited");
                    if let Ok(mut slot) = exit_status.lock() {
                        *slot = Some(text);
                    }
                });
                (pid, requests, responses)
            }
            Launch::Fork { zygote, request } => {
                let forked = zygote.fork(request).await.map_err(|e| {
                    Error::platform_ctx(&format!("forking a worker for '{}'", spec.function), e)
                })?;
                // The zygote reaps it; its log pipe closing says it ended.
                forward_log(
                    spec.function.clone(),
                    Some(forked.pid),
                    forked.log,
                    Some(broken.clone()),
                );
                (Some(forked.pid), forked.requests, forked.responses)
            }
        };

        let ready = tokio::time::timeout(
            spec.startup_timeout,
            read_response(&mut responses, spec.max_response_bytes),
        )
        .await;
        let kill = || {
            if let Some(pid) = pid {
                minifaas_sandbox::kill_process_group(pid);
            }
        };
        match ready {
            Ok(Ok((header, _))) if header.ready == Some(true) => {}
            Ok(Ok((header, _))) => {
                kill();
                return Err(Error::function_failed(
                    "function_load_failed",
                    format!(
                        "function '{}' failed to load: {}",
                        spec.function,
                        header.error.unwrap_or_else(|| "no reason given".into())
                    ),
                ));
            }
            Ok(Err(err)) => {
                kill();
                return Err(Error::function_failed(
                    "function_load_failed",
                    format!(
                        "function '{}' exited while loading ({err}); see its log",
                        spec.function
                    ),
                ));
            }
            Err(_) => {
                kill();
                return Err(Error::function_failed(
                    "function_load_failed",
                    format!(
                        "function '{}' did not finish loading within {} s",
                        spec.function,
                        spec.startup_timeout.as_secs()
                    ),
                ));
            }
        }
        tracing::debug!(
            function = spec.function,
            pid,
            ms = started.elapsed().as_millis() as u64,
            "worker ready"
        );
        Ok(Arc::new(Worker {
            pid,
            spec: spec.clone(),
            function: spec.function.clone(),
            pipes: tokio::sync::Mutex::new(Pipes {
                requests,
                responses,
            }),
            broken,
            exit_status,
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
        let mut pipes = self.pipes.lock().await;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let deadline_ms = SystemTime::now()
            .checked_add(spec.timeout)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let exchange = async {
            let Pipes {
                requests,
                responses,
            } = &mut *pipes;
            write_request(requests, id, request, deadline_ms).await?;
            read_response(responses, spec.max_response_bytes).await
        };
        match tokio::time::timeout(spec.timeout, exchange).await {
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

impl Drop for Worker {
    fn drop(&mut self) {
        // A worker nobody holds any more is stopped (its reaper collects it).
        self.kill();
    }
}

/// Forwards a worker's output to the server log, line by line, capped.
pub(crate) fn forward_log<R: AsyncRead + Unpin + Send + 'static>(
    function: String,
    pid: Option<u32>,
    stream: R,
    ended: Option<Arc<AtomicBool>>,
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
                    tracing::info!(target: "minifaas::function", function, pid, "{text}");
                }
            }
        }
        if let Some(ended) = ended {
            ended.store(true, Ordering::Release);
        }
    });
}
