//! Invocation records: every invocation gets an id (`X-Invocation-Id`) and a record
//! (status, timings, cold start, instance, its logs).
//!
//! Invariants: the request path never waits on the database. [`Recorder::record`] keeps
//! the record in a bounded in-memory list of recent ones (so `GET /invocations/:id`
//! answers at once) and hands it to [`run_recorder`] over a bounded channel; when that
//! channel is full the record is counted as dropped, never waited for. The writer task
//! inserts in batches and prunes by count and age.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use minifaas_core::{InvocationRecord, InvocationStore};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long records are kept, and how many.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_records: usize,
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_records: 100_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Recent records kept in memory (also those not yet written).
const RECENT: usize = 2048;
/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 8192;
/// Most records per database transaction.
const BATCH: usize = 4096;
/// Below this many waiting, the writer lets a batch gather for a moment first.
const SMALL_BATCH: usize = 256;

pub struct Recorder {
    enabled: bool,
    prefix: String,
    next: AtomicU64,
    recent: Mutex<VecDeque<InvocationRecord>>,
    queue: mpsc::Sender<InvocationRecord>,
    dropped: AtomicU64,
}

pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Recorder {
    /// A recorder and the receiving end for [`run_recorder`]. `enabled: false` still
    /// gives ids (and stats, metrics, logs) but keeps no records.
    pub fn new(enabled: bool) -> (Self, mpsc::Receiver<InvocationRecord>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let mut random = [0u8; 4];
        let _ = getrandom::fill(&mut random);
        let prefix = format!("inv_{:x}{}", unix_ms() / 1000, hex::encode(random));
        let recorder = Self {
            enabled,
            prefix,
            next: AtomicU64::new(1),
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            queue,
            dropped: AtomicU64::new(0),
        };
        (recorder, receiver)
    }

    /// A new invocation id: unique across restarts (time and random prefix), ordered
    /// within one server.
    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Zero-padded: ids sort (and are inserted into the primary key) in order.
        format!("{}_{n:010x}", self.prefix)
    }

    /// Keeps a finished invocation's record; never blocks.
    pub fn record(&self, record: InvocationRecord) {
        if !self.enabled {
            return;
        }
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(record.clone());
        }
        if self.queue.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records that could not be queued for writing (the database fell behind).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A recent record, from memory.
    pub fn recent(&self, id: &str) -> Option<InvocationRecord> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().find(|r| r.id == id).cloned()
    }

    /// Recent records of a function, newest first.
    pub fn recent_of(&self, function: &str, limit: usize) -> Vec<InvocationRecord> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .rev()
            .filter(|r| r.function == function)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Writes queued records in batches until `shutdown`, then writes what is left.
/// Prunes by the retention every minute.
pub async fn run_recorder(
    mut receiver: mpsc::Receiver<InvocationRecord>,
    store: Arc<dyn InvocationStore>,
    logs: &'static crate::logs::LogBook,
    retention: Retention,
    shutdown: CancellationToken,
) {
    let mut prune = tokio::time::interval(Duration::from_secs(60));
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    break;
                }
                // Under load the queue refills while a batch is written, so the next
                // one is large; when quiet, let a few gather into one transaction.
                if batch.len() < SMALL_BATCH {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                while batch.len() < BATCH {
                    match receiver.try_recv() {
                        Ok(record) => batch.push(record),
                        Err(_) => break,
                    }
                }
                write(&store, logs, &mut batch).await;
            }
            _ = prune.tick() => {
                let before = unix_ms() - retention.max_age.as_millis() as i64;
                match store.prune_invocations(retention.max_records, before).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::debug!(removed, "pruned invocation records"),
                    Err(err) => tracing::warn!(%err, "could not prune invocation records"),
                }
            }
            _ = shutdown.cancelled() => {
                while let Ok(record) = receiver.try_recv() {
                    batch.push(record);
                }
                write(&store, logs, &mut batch).await;
                break;
            }
        }
    }
}

async fn write(
    store: &Arc<dyn InvocationStore>,
    logs: &crate::logs::LogBook,
    batch: &mut Vec<InvocationRecord>,
) {
    if batch.is_empty() {
        return;
    }
    let records: Vec<InvocationRecord> = std::mem::take(batch)
        .into_iter()
        .map(|r| crate::observe::with_logs(r, logs))
        .collect();
    let count = records.len();
    if let Err(err) = store.insert_invocations(records).await {
        tracing::warn!(%err, count, "could not write invocation records");
    }
}
