//! Numbers about invocations: per-function statistics for `/stats` (counts,
//! percentiles from an HDR histogram, since the server started) and the Prometheus
//! metrics for `/metrics` (`prometheus-client`).
//!
//! Both are updated once per invocation, after it ran: one short lock, a histogram
//! record and a few atomic adds. A function's metric series are looked up (and their
//! labels allocated) once, when it is first seen, not per call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram as PromHistogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What one finished invocation contributes.
pub struct Sample<'a> {
    pub function: &'a str,
    pub status: u16,
    pub run: Duration,
    pub wait: Duration,
    pub cold: bool,
    pub init: Option<Duration>,
    /// Unix milliseconds.
    pub at: i64,
}

/// Per-function statistics since the server started.
pub struct FunctionStats {
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    /// Run time in microseconds.
    pub run_us: Histogram<u64>,
    pub last_invocation: Option<i64>,
}

/// A function's entry: its statistics and its own handles on the metric series (clones
/// of the families' members share their values).
struct Entry {
    stats: FunctionStats,
    durations: PromHistogram,
    queue_waits: PromHistogram,
    cold_starts: PromHistogram,
    /// One counter per status this function has answered with.
    by_status: Vec<(u16, Counter)>,
}

impl FunctionStats {
    pub(crate) fn new() -> Self {
        Self {
            invocations: 0,
            errors: 0,
            cold_starts: 0,
            run_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).expect("3 significant figures is valid")),
            last_invocation: None,
        }
    }

    /// Run-time percentile in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.run_us.is_empty() {
            return 0.0;
        }
        self.run_us.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        if self.run_us.is_empty() {
            return 0.0;
        }
        self.run_us.mean() / 1000.0
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvocationLabels {
    function: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct InstanceLabels {
    pub function: String,
    pub state: String,
}

fn seconds_histogram() -> PromHistogram {
    // 0.25 ms to ~2 min.
    PromHistogram::new(exponential_buckets(0.000_25, 2.0, 20))
}

pub struct Stats {
    started: Instant,
    functions: Mutex<HashMap<String, Entry>>,
    registry: Registry,
    invocations: Family<InvocationLabels, Counter>,
    durations: Family<FunctionLabels, PromHistogram>,
    cold_starts: Family<FunctionLabels, PromHistogram>,
    queue_waits: Family<FunctionLabels, PromHistogram>,
    pub(crate) instances: Family<InstanceLabels, Gauge>,
    pub(crate) in_flight: Gauge,
}

impl Default for Stats {
    fn default() -> Self {
        let mut registry = Registry::default();
        let invocations = Family::<InvocationLabels, Counter>::default();
        let durations = Family::<FunctionLabels, PromHistogram>::new_with_constructor(
            seconds_histogram as fn() -> PromHistogram,
        );
        let cold_starts = Family::<FunctionLabels, PromHistogram>::new_with_constructor(
            seconds_histogram as fn() -> PromHistogram,
        );
        let queue_waits = Family::<FunctionLabels, PromHistogram>::new_with_constructor(
            seconds_histogram as fn() -> PromHistogram,
        );
        let instances = Family::<InstanceLabels, Gauge>::default();
        let in_flight = Gauge::default();
        registry.register(
            "minifaas_invocations",
            "Invocations by function and HTTP status",
            invocations.clone(),
        );
        registry.register(
            "minifaas_invocation_duration_seconds",
            "Run time of invocations (queueing and cold start excluded)",
            durations.clone(),
        );
        registry.register(
            "minifaas_cold_start_seconds",
            "Time to start an instance for an invocation that found none free",
            cold_starts.clone(),
        );
        registry.register(
            "minifaas_queue_wait_seconds",
            "Time from arrival to the start of the run (queueing and cold start)",
            queue_waits.clone(),
        );
        registry.register(
            "minifaas_instances",
            "Live instances by function and state",
            instances.clone(),
        );
        registry.register(
            "minifaas_in_flight",
            "Invocations running or waiting right now",
            in_flight.clone(),
        );
        Self {
            started: Instant::now(),
            functions: Mutex::new(HashMap::new()),
            registry,
            invocations,
            durations,
            cold_starts,
            queue_waits,
            instances,
            in_flight,
        }
    }
}

/// Totals over every function, for `GET /stats`.
pub struct Totals {
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub uptime: Duration,
}

impl Stats {
    fn entry(&self, function: &str) -> Entry {
        let labels = FunctionLabels {
            function: function.to_owned(),
        };
        Entry {
            stats: FunctionStats::new(),
            durations: self.durations.get_or_create(&labels).clone(),
            queue_waits: self.queue_waits.get_or_create(&labels).clone(),
            cold_starts: self.cold_starts.get_or_create(&labels).clone(),
            by_status: Vec::new(),
        }
    }

    pub fn observe(&self, sample: Sample<'_>) {
        let mut functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match functions.get_mut(sample.function) {
            Some(entry) => entry,
            None => functions
                .entry(sample.function.to_owned())
                .or_insert_with(|| self.entry(sample.function)),
        };
        let stats = &mut entry.stats;
        stats.invocations += 1;
        stats.errors += u64::from(sample.status >= 400);
        stats.cold_starts += u64::from(sample.cold);
        let _ = stats
            .run_us
            .record((sample.run.as_micros() as u64).clamp(1, 3_600_000_000));
        stats.last_invocation = Some(sample.at);
        match entry.by_status.iter().find(|(s, _)| *s == sample.status) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let counter = self
                    .invocations
                    .get_or_create(&InvocationLabels {
                        function: sample.function.to_owned(),
                        status: sample.status.to_string(),
                    })
                    .clone();
                counter.inc();
                entry.by_status.push((sample.status, counter));
            }
        }
        entry.durations.observe(sample.run.as_secs_f64());
        entry.queue_waits.observe(sample.wait.as_secs_f64());
        if let Some(init) = sample.init {
            entry.cold_starts.observe(init.as_secs_f64());
        }
    }

    /// A function's statistics, through `read`.
    pub fn function<T>(&self, name: &str, read: impl FnOnce(&FunctionStats) -> T) -> Option<T> {
        let functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        functions.get(name).map(|entry| read(&entry.stats))
    }

    /// Forgets a deleted function.
    pub fn forget(&self, name: &str) {
        self.functions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    pub fn totals(&self) -> Totals {
        let functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        Totals {
            invocations: functions.values().map(|e| e.stats.invocations).sum(),
            errors: functions.values().map(|e| e.stats.errors).sum(),
            cold_starts: functions.values().map(|e| e.stats.cold_starts).sum(),
            uptime: self.started.elapsed(),
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Counts a request in flight while it lives.
pub(crate) struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    pub(crate) fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(function: &str, status: u16, run_ms: u64, cold: bool) -> Sample<'_> {
        Sample {
            function,
            status,
            run: Duration::from_millis(run_ms),
            wait: Duration::from_millis(1),
            cold,
            init: cold.then(|| Duration::from_millis(40)),
            at: 7,
        }
    }

    #[test]
    fn percentiles_follow_known_durations() {
        let stats = Stats::default();
        for ms in 1..=100 {
            stats.observe(sample("f", 200, ms, ms == 1));
        }
        stats.observe(sample("f", 502, 1, false));
        let (p50, p99, count, errors, cold) = stats
            .function("f", |f| {
                (
                    f.percentile_ms(0.5),
                    f.percentile_ms(0.99),
                    f.invocations,
                    f.errors,
                    f.cold_starts,
                )
            })
            .unwrap();
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        assert!((98.0..=100.5).contains(&p99), "{p99}");
        assert_eq!((count, errors, cold), (101, 1, 1));
    }

    #[test]
    fn metrics_use_prometheus_names() {
        let stats = Stats::default();
        stats.observe(sample("f", 200, 3, true));
        let text = stats.encode();
        for name in [
            "minifaas_invocations_total{function=\"f\",status=\"200\"} 1",
            "minifaas_invocation_duration_seconds_bucket",
            "minifaas_cold_start_seconds_count{function=\"f\"} 1",
            "minifaas_queue_wait_seconds_sum",
            "minifaas_in_flight",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
    }
}
