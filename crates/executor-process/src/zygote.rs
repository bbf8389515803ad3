//! The Python fork server of one function version, started on first use and restarted
//! if it dies. One per version, so that its sandbox shows that version's code only.

use minifaas_sandbox::{ForkedWorker, WorkerCommand, ZygoteProcess};

use crate::worker::forward_log;

pub(crate) struct Zygote {
    command: WorkerCommand,
    process: tokio::sync::Mutex<Option<ZygoteProcess>>,
}

impl Zygote {
    pub(crate) fn new(command: WorkerCommand) -> Self {
        Self {
            command,
            process: tokio::sync::Mutex::new(None),
        }
    }

    /// Forks a worker; `request` is the zygote's JSON (code dir, entry, environment).
    /// Each worker gets the zygote's own limits, in a cgroup of its own.
    pub(crate) async fn fork(&self, request: &[u8]) -> std::io::Result<ForkedWorker> {
        let mut guard = self.process.lock().await;
        let running = match guard.as_mut() {
            Some(process) => process.is_running(),
            None => false,
        };
        if !running {
            let mut process = self.command.spawn_zygote()?;
            if let Some(stdout) = process.stdout.take() {
                forward_log(
                    "python-zygote".into(),
                    process.child.id(),
                    stdout,
                    None,
                    None,
                );
            }
            if let Some(stderr) = process.stderr.take() {
                forward_log(
                    "python-zygote".into(),
                    process.child.id(),
                    stderr,
                    None,
                    None,
                );
            }
            tracing::info!(pid = process.child.id(), "python zygote started");
            *guard = Some(process);
        }
        let Some(process) = guard.as_mut() else {
            return Err(std::io::Error::other("no zygote"));
        };
        match process
            .fork_worker(request, self.command.isolation.as_ref())
            .await
        {
            Ok(worker) => Ok(worker),
            Err(err) => {
                // Start a fresh zygote next time.
                *guard = None;
                Err(err)
            }
        }
    }
}
