//! `minifaas bench`: the load injector.
//!
//! Closed loop (`-c` workers, each sending its next request when the last answered) or
//! open loop (`--rate`: request `i` is due at `start + i/rate`, and its latency counts
//! from that due time, so a slow server cannot hide queueing by slowing the sender:
//! no coordinated omission). Latencies go into an HDR histogram (µs, 3 significant
//! digits).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use reqwest::Method;

/// What to send and how.
pub(crate) struct BenchPlan {
    pub url: String,
    pub key: Option<String>,
    pub method: Method,
    pub body: Vec<u8>,
    pub concurrency: usize,
    pub stop: Stop,
    pub rate: Option<f64>,
    pub progress: bool,
}

#[derive(Clone, Copy)]
pub(crate) enum Stop {
    After(u64),
    For(Duration),
}

/// What a run measured.
pub(crate) struct BenchReport {
    pub requests: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
    pub histogram: Histogram<u64>,
}

impl BenchReport {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "errors": self.error_count(),
            "errors_by_status": self.errors,
            "duration_s": self.elapsed.as_secs_f64(),
            "rps": self.rps(),
            "p50_ms": self.ms(0.5),
            "p90_ms": self.ms(0.9),
            "p99_ms": self.ms(0.99),
            "p999_ms": self.ms(0.999),
            "max_ms": self.histogram.max() as f64 / 1000.0,
        })
    }

    pub fn text(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "requests   {}\nerrors     {} ({errors})\nduration   {:.2} s\nrps        {:.1}\nlatency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.requests,
            self.error_count(),
            self.elapsed.as_secs_f64(),
            self.rps(),
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.ms(0.999),
            self.histogram.max() as f64 / 1000.0,
        )
    }
}

/// Parses `10s`, `500ms`, `2m` or a number of seconds.
pub(crate) fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let raw = raw.trim();
    let (number, scale) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60.0)
    } else {
        (raw, 1.0)
    };
    let value: f64 = number
        .parse()
        .with_context(|| format!("'{raw}' is not a duration like 10s or 500ms"))?;
    if !value.is_finite() || value <= 0.0 {
        bail!("the duration must be positive");
    }
    Ok(Duration::from_secs_f64(value * scale))
}

struct Shared {
    next: AtomicU64,
    done: AtomicU64,
}

/// Runs the plan and reports.
pub(crate) async fn run(plan: BenchPlan) -> anyhow::Result<BenchReport> {
    if plan.concurrency == 0 {
        bail!("-c must be at least 1");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .tcp_nodelay(true)
        .build()?;
    let plan = Arc::new(plan);
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });
    let started = Instant::now();
    let deadline = match plan.stop {
        Stop::For(duration) => Some(started + duration),
        Stop::After(_) => None,
    };
    let progress = plan.progress.then(|| {
        let bar = match plan.stop {
            Stop::After(n) => indicatif::ProgressBar::new(n),
            Stop::For(d) => indicatif::ProgressBar::new(d.as_millis() as u64),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency {
        let plan = plan.clone();
        let shared = shared.clone();
        let client = client.clone();
        workers.spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds");
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let index = shared.next.fetch_add(1, Ordering::Relaxed);
                if let Stop::After(n) = plan.stop
                    && index >= n
                {
                    break;
                }
                // When this request is due: now (closed loop) or on the rate's schedule.
                let due = match plan.rate {
                    Some(rate) => started + Duration::from_secs_f64(index as f64 / rate),
                    None => Instant::now(),
                };
                if let Some(deadline) = deadline
                    && due >= deadline
                {
                    break;
                }
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let mut request = client
                    .request(plan.method.clone(), &plan.url)
                    .body(plan.body.clone());
                if let Some(key) = &plan.key {
                    request = request.bearer_auth(key);
                }
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.bytes().await;
                        (!status.is_success()).then(|| status.as_u16().to_string())
                    }
                    Err(err) if err.is_connect() => Some("connect".to_owned()),
                    Err(err) if err.is_timeout() => Some("timeout".to_owned()),
                    Err(_) => Some("io".to_owned()),
                };
                let micros = due.elapsed().as_micros().max(1) as u64;
                let _ = histogram.record(micros.min(3_600_000_000));
                if let Some(kind) = outcome {
                    *errors.entry(kind).or_default() += 1;
                }
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
            (histogram, errors)
        });
    }

    let ticker = progress.clone().map(|bar| {
        let shared = shared.clone();
        let stop = plan.stop;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let done = shared.done.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                match stop {
                    Stop::After(_) => bar.set_position(done),
                    Stop::For(_) => bar.set_position(started.elapsed().as_millis() as u64),
                }
                bar.set_message(format!(
                    "{done} requests, {:.0} rps",
                    done as f64 / secs.max(1e-9)
                ));
            }
        })
    });

    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(result) = workers.join_next().await {
        let (part, part_errors) = result?;
        histogram.add(part)?;
        for (k, v) in part_errors {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(BenchReport {
        requests: histogram.len(),
        errors,
        elapsed,
        histogram,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
