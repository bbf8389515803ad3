//! The autoscaler: a background task that, for every serving pool, stops instances idle
//! past `idle_ttl` (down to `min_instances`), starts instances back up to
//! `min_instances`, and samples instances' resources for the weighted strategy.
//! Scaling up under load happens on the request path (a request that finds no free
//! slot starts an instance); this task only tends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::routes::Scheduler;

/// How often pools are tended: the granularity of `idle_ttl`.
const TICK: Duration = Duration::from_millis(100);

/// Runs until `shutdown` is cancelled.
pub async fn run_autoscaler(scheduler: Arc<Scheduler>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sample = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let sample = last_sample.elapsed() >= scheduler.options.sample_every;
        if sample {
            last_sample = Instant::now();
        }
        for pool in scheduler.pools() {
            let missing = pool.tend();
            if missing > 0 {
                tokio::spawn(pool.clone().warm(missing));
            }
            if sample {
                // /proc reads are quick but blocking: keep them off the async workers.
                let pool = pool.clone();
                let _ = tokio::task::spawn_blocking(move || pool.sample()).await;
            }
        }
    }
}
