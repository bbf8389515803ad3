//! The instances of one function version and the admission of its requests.
//!
//! A request takes a free slot on an instance the strategy picks; or starts an instance
//! if the pool is below `max_instances` (a cold start); or waits in the bounded queue;
//! or, the queue full, is shed (429). The wait (queue and cold start) is measured apart
//! from the run, and bounded by the scheduler's wait limit (503); the function's own
//! `timeout` covers only the run.
//!
//! Invariants: `in_flight` changes only under the pool lock; an instance is removed
//! (and so stopped) only under that lock with nothing in flight, so no request is ever
//! cut by scaling down or by `DELETE /instances/:id`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use minifaas_core::{
    Error, FunctionName, Instance, InstanceInfo, InstanceState, InvokeRequest, Observed,
    PreparedFunction, Result,
};
use tokio::sync::Notify;

use crate::sampler::{self, ProcSample};
use crate::settings::{PoolSettings, Weights};
use crate::strategy::{Candidate, Load, pick};

static NEXT_INSTANCE_ID: AtomicU64 = AtomicU64::new(1);

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One instance in a pool.
pub(crate) struct Slot {
    pub id: u64,
    instance: Arc<dyn Instance>,
    in_flight: AtomicUsize,
    draining: AtomicBool,
    started_at: SystemTime,
    last_used: Mutex<(Instant, SystemTime)>,
    load: Mutex<(Load, Option<ProcSample>)>,
}

impl Slot {
    fn new(instance: Arc<dyn Instance>) -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed),
            instance,
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            started_at: SystemTime::now(),
            last_used: Mutex::new((Instant::now(), SystemTime::now())),
            load: Mutex::new((Load::default(), None)),
        })
    }

    fn load(&self) -> Load {
        self.load.lock().map(|l| l.0).unwrap_or_default()
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .map(|l| l.0.elapsed())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct PoolState {
    /// In start order (FIFO packs onto the first).
    slots: Vec<Arc<Slot>>,
    starting: usize,
    waiting: usize,
}

pub(crate) struct Pool {
    pub name: FunctionName,
    pub version: u32,
    /// The config this version serves with (its access rules among it).
    pub config: minifaas_core::FunctionConfig,
    function: Arc<dyn PreparedFunction>,
    pub settings: PoolSettings,
    weights: Weights,
    state: Mutex<PoolState>,
    /// Signalled when a slot frees or an instance is added.
    freed: Notify,
    next: AtomicUsize,
}

enum Admission {
    Run(Arc<Slot>),
    Start,
    Wait,
    Shed,
}

impl Pool {
    pub(crate) fn new(
        name: FunctionName,
        version: u32,
        function: Arc<dyn PreparedFunction>,
        settings: PoolSettings,
        weights: Weights,
    ) -> Self {
        Self {
            name,
            version,
            config: minifaas_core::FunctionConfig::default(),
            function,
            settings,
            weights,
            state: Mutex::new(PoolState::default()),
            freed: Notify::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// This pool with its version's config.
    pub(crate) fn with_config(mut self, config: minifaas_core::FunctionConfig) -> Self {
        self.config = config;
        self
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn admit(&self) -> Admission {
        let mut state = self.state();
        let concurrency = self.settings.concurrency;
        let eligible: Vec<&Arc<Slot>> = state
            .slots
            .iter()
            .filter(|s| {
                !s.draining.load(Ordering::Relaxed)
                    && s.instance.is_usable()
                    && s.in_flight.load(Ordering::Relaxed) < concurrency
            })
            .collect();
        let candidates: Vec<Candidate> = eligible
            .iter()
            .map(|s| Candidate {
                in_flight: s.in_flight.load(Ordering::Relaxed),
                load: s.load(),
            })
            .collect();
        if let Some(index) = pick(
            self.settings.strategy,
            &candidates,
            &self.next,
            &self.weights,
        ) {
            let slot = eligible[index].clone();
            slot.in_flight.fetch_add(1, Ordering::Relaxed);
            return Admission::Run(slot);
        }
        let live = state
            .slots
            .iter()
            .filter(|s| s.instance.is_usable())
            .count();
        if live + state.starting < self.settings.max_instances {
            state.starting += 1;
            return Admission::Start;
        }
        if state.waiting < self.settings.max_queue {
            state.waiting += 1;
            return Admission::Wait;
        }
        Admission::Shed
    }

    /// Starts one instance in its own task (so a caller that goes away cannot leave
    /// the `starting` count behind) and adds it to the pool, idle.
    async fn start_instance(self: &Arc<Self>) -> Result<()> {
        let pool = self.clone();
        let task = tokio::spawn(async move {
            let started = pool.function.start_instance().await;
            let mut state = pool.state();
            state.starting -= 1;
            let outcome = match started {
                Ok(instance) => {
                    state.slots.push(Slot::new(instance));
                    Ok(())
                }
                Err(err) => Err(err),
            };
            drop(state);
            pool.freed.notify_one();
            outcome
        });
        task.await
            .map_err(|e| Error::platform_ctx("starting an instance", e))?
    }

    /// Admits and runs one request.
    pub(crate) async fn invoke(
        self: &Arc<Self>,
        request: InvokeRequest,
        max_wait: Duration,
    ) -> Result<Observed> {
        let arrived = Instant::now();
        let deadline = arrived + max_wait;
        let mut cold = false;
        let mut init = None;
        let slot = loop {
            match self.admit() {
                Admission::Run(slot) => break slot,
                Admission::Start => {
                    cold = true;
                    // The new instance joins the pool idle; the next admission usually
                    // takes it (a waiter woken first may take it instead: fair).
                    let starting = Instant::now();
                    self.start_instance().await?;
                    init = Some(starting.elapsed());
                }
                Admission::Wait => {
                    let waiting = WaitingGuard(self);
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let woken = tokio::time::timeout(remaining, self.freed.notified()).await;
                    drop(waiting);
                    if woken.is_err() {
                        return Err(Error::unavailable(
                            "wait_limit",
                            format!(
                                "function '{}' had no free instance within {} s; retry shortly",
                                self.name,
                                max_wait.as_secs_f64()
                            ),
                        ));
                    }
                }
                Admission::Shed => {
                    return Err(Error::new(
                        minifaas_core::ErrorKind::Overloaded,
                        "queue_full",
                        format!(
                            "function '{}' is at capacity and its queue of {} is full; retry shortly",
                            self.name, self.settings.max_queue
                        ),
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::unavailable(
                    "wait_limit",
                    format!(
                        "function '{}' had no free instance within {} s; retry shortly",
                        self.name,
                        max_wait.as_secs_f64()
                    ),
                ));
            }
        };
        let wait = arrived.elapsed();
        let running = InFlightGuard { pool: self, slot };
        let started = Instant::now();
        let response = running.slot.instance.invoke(request).await;
        let run = started.elapsed();
        let instance = running.slot.id;
        drop(running);
        Ok(Observed {
            response,
            version: self.version,
            wait,
            run,
            cold,
            init,
            instance,
        })
    }

    fn release(&self, slot: &Arc<Slot>) {
        let mut state = self.state();
        slot.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut used) = slot.last_used.lock() {
            *used = (Instant::now(), SystemTime::now());
        }
        let idle = slot.in_flight.load(Ordering::Relaxed) == 0;
        if !slot.instance.is_usable() || (idle && slot.draining.load(Ordering::Relaxed)) {
            state.slots.retain(|s| s.id != slot.id);
        }
        drop(state);
        self.freed.notify_one();
    }

    /// Scale-down and keep-warm, run by the autoscaler: stops instances idle past
    /// `idle_ttl` above `min_instances` and drained ones, drops dead ones, and returns
    /// how many instances to start to get back to `min_instances`.
    pub(crate) fn tend(&self) -> usize {
        let mut state = self.state();
        state.slots.retain(|s| s.instance.is_usable());
        state.slots.retain(|s| {
            !(s.draining.load(Ordering::Relaxed) && s.in_flight.load(Ordering::Relaxed) == 0)
        });
        let min = self.settings.min_instances;
        let ttl = self.settings.idle_ttl;
        // Retire the most recently started idle instances first: FIFO keeps the first.
        let mut index = state.slots.len();
        while index > 0 && state.slots.len() > min {
            index -= 1;
            let slot = &state.slots[index];
            if slot.in_flight.load(Ordering::Relaxed) == 0 && slot.idle_for() >= ttl {
                let retired = state.slots.remove(index);
                tracing::debug!(function = %self.name, instance = retired.id, "idle instance stopped");
            }
        }
        let live = state.slots.len() + state.starting;
        let missing = min.saturating_sub(live);
        state.starting += missing;
        missing
    }

    /// Reserves `count` instance starts (counted as starting) for `warm`.
    pub(crate) fn reserve(&self, count: usize) {
        self.state().starting += count;
    }

    /// Starts `count` instances reserved by `tend` or `reserve`.
    pub(crate) async fn warm(self: Arc<Self>, count: usize) {
        for _ in 0..count {
            if let Err(err) = self.start_instance().await {
                tracing::warn!(function = %self.name, %err, "could not start a warm instance");
            }
        }
    }

    /// Samples CPU, memory and IO of every process instance.
    pub(crate) fn sample(&self) {
        let slots: Vec<Arc<Slot>> = self.state().slots.clone();
        for slot in slots {
            let Some(pid) = slot.instance.pid() else {
                continue;
            };
            let Some(now) = sampler::read(pid) else {
                continue;
            };
            if let Ok(mut load) = slot.load.lock() {
                if let Some(before) = &load.1 {
                    let sample = sampler::load_between(before, &now, self.settings.memory_bytes);
                    load.0 = load.0.smoothed(sample, self.weights.ema_factor);
                }
                load.1 = Some(now);
            }
        }
    }

    /// Marks an instance draining: it takes no new request and is stopped once idle.
    pub(crate) fn drain(&self, id: u64) -> Option<InstanceInfo> {
        let mut state = self.state();
        let slot = state.slots.iter().find(|s| s.id == id)?.clone();
        slot.draining.store(true, Ordering::Relaxed);
        let info = self.info(&slot);
        if slot.in_flight.load(Ordering::Relaxed) == 0 {
            state.slots.retain(|s| s.id != id);
        }
        Some(info)
    }

    fn info(&self, slot: &Slot) -> InstanceInfo {
        let in_flight = slot.in_flight.load(Ordering::Relaxed);
        let state = if slot.draining.load(Ordering::Relaxed) {
            InstanceState::Draining
        } else if in_flight > 0 {
            InstanceState::Busy
        } else {
            InstanceState::Idle
        };
        let load = slot.load();
        InstanceInfo {
            id: slot.id,
            function: self.name.to_string(),
            version: self.version,
            pid: slot.instance.pid(),
            state,
            in_flight,
            cpu: load.cpu,
            memory: load.memory,
            io: load.io,
            started_at: unix_ms(slot.started_at),
            last_used_at: slot.last_used.lock().map(|l| unix_ms(l.1)).unwrap_or(0),
        }
    }

    /// Every instance, including those still starting (without an id yet: reported as
    /// `starting` entries with id 0).
    pub(crate) fn instances(&self) -> Vec<InstanceInfo> {
        let state = self.state();
        let mut list: Vec<InstanceInfo> = state.slots.iter().map(|s| self.info(s)).collect();
        for _ in 0..state.starting {
            list.push(InstanceInfo {
                id: 0,
                function: self.name.to_string(),
                version: self.version,
                pid: None,
                state: InstanceState::Starting,
                in_flight: 0,
                cpu: 0.0,
                memory: 0.0,
                io: 0.0,
                started_at: unix_ms(SystemTime::now()),
                last_used_at: 0,
            });
        }
        list
    }

    pub(crate) fn live_count(&self) -> usize {
        self.state().slots.len()
    }
}

/// Holds a slot for one request; gives it back however the request ends (including a
/// client that goes away mid-run).
struct InFlightGuard<'a> {
    pool: &'a Pool,
    slot: Arc<Slot>,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.pool.release(&self.slot);
    }
}

/// Counts a request in the queue while it waits.
struct WaitingGuard<'a>(&'a Pool);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.state().waiting -= 1;
    }
}
