//! The workers of one function version: the mechanics of keeping them (idle list,
//! start on demand up to a cap, pre-warming, retiring broken ones). How many to keep
//! and which to pick is policy, given by the caller.
//!
//! Invariant: a worker is either idle in the list or held by exactly one request.
//! When the pool is dropped (its version was replaced or deleted and its last request
//! finished), its idle workers are dropped and so stopped.

use std::sync::{Arc, Mutex};

use minifaas_core::{Error, InvokeRequest, InvokeResponse, Result};
use tokio::sync::Semaphore;

use crate::worker::{Worker, WorkerSpec};

pub(crate) struct Pool {
    spec: WorkerSpec,
    idle: Mutex<Vec<Arc<Worker>>>,
    /// One permit per worker that may exist (`max_instances`).
    slots: Arc<Semaphore>,
}

impl Pool {
    pub(crate) fn new(spec: WorkerSpec, max_instances: usize) -> Self {
        Self {
            spec,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(max_instances.max(1))),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Worker>>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts `count` workers now (the seeds' pre-forked workers). Fails with the load
    /// error if the handler does not load.
    pub(crate) async fn prewarm(&self, count: usize) -> Result<()> {
        for _ in 0..count {
            let worker = Worker::start(&self.spec).await?;
            self.idle().push(worker);
        }
        Ok(())
    }

    pub(crate) async fn invoke(&self, request: &InvokeRequest) -> Result<InvokeResponse> {
        let _slot =
            self.slots.acquire().await.map_err(|_| {
                Error::unavailable("draining", "the function is being replaced; retry")
            })?;
        let reused = loop {
            let candidate = self.idle().pop();
            match candidate {
                Some(worker) if worker.is_usable() => break Some(worker),
                Some(_) => continue, // exited while idle: drop it, look again
                None => break None,
            }
        };
        let worker = match reused {
            Some(worker) => worker,
            None => Worker::start(&self.spec).await?,
        };
        let result = worker.call(request, &self.spec).await;
        if worker.is_usable() {
            self.idle().push(worker);
        }
        result
    }
}
