//! A function's scheduling settings: its config keys over the server's defaults.

use std::time::Duration;

use minifaas_core::{Error, FunctionConfig, InstanceDefaults, Result};

use crate::strategy::Strategy;

/// Server-wide defaults (from `serve` flags), and the cap on everything.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Invocations running at once, server-wide (`max_concurrency`).
    pub max_concurrency: usize,
    /// How long a request may wait for a slot (queue and cold start) before 503.
    pub max_wait: Duration,
    pub strategy: Strategy,
    /// Instances kept warm per version unless its config says (`serve --workers`).
    pub min_instances: usize,
    /// Requests allowed to wait per function when all its capacity is busy.
    pub max_queue: usize,
    /// Seconds an idle instance is kept above `min_instances`.
    pub idle_ttl: Duration,
    /// Weights of the weighted strategy's score, and the EMA factor of its samples.
    pub weights: Weights,
    /// How often instances' CPU, memory and IO are sampled.
    pub sample_every: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            max_concurrency: 256,
            max_wait: Duration::from_secs(10),
            strategy: Strategy::RoundRobin,
            min_instances: 0,
            max_queue: 100,
            idle_ttl: Duration::from_secs(600),
            weights: Weights::default(),
            sample_every: Duration::from_millis(500),
        }
    }
}

/// The weighted strategy's score: `cpu·w_cpu + memory·w_memory + io·w_io`, each sample
/// smoothed as `ema = factor·new + (1 - factor)·ema`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub cpu: f64,
    pub memory: f64,
    pub io: f64,
    pub ema_factor: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            cpu: 0.5,
            memory: 0.3,
            io: 0.2,
            ema_factor: 0.7,
        }
    }
}

/// The settings one pool runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    pub strategy: Strategy,
    pub min_instances: usize,
    pub max_instances: usize,
    pub concurrency: usize,
    pub max_queue: usize,
    pub idle_ttl: Duration,
    pub memory_bytes: u64,
}

fn count(config: &FunctionConfig, key: &str, default: usize, max: usize) -> Result<usize> {
    match config.extra.get(key) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| *n as usize <= max)
            .map(|n| n as usize)
            .ok_or_else(|| {
                Error::invalid(
                    "invalid_config",
                    format!("{key} must be a whole number from 0 to {max}, got {value}"),
                )
            }),
    }
}

impl PoolSettings {
    /// Reads `strategy`, `min_instances`, `max_instances`, `concurrency`, `max_queue`
    /// and `idle_ttl` from the config; `InvalidInput` on a bad value.
    pub fn from_config(
        config: &FunctionConfig,
        defaults: InstanceDefaults,
        options: &SchedulerOptions,
    ) -> Result<Self> {
        let strategy = match config.extra.get("strategy") {
            None => options.strategy,
            Some(value) => value.as_str().and_then(Strategy::parse).ok_or_else(|| {
                Error::invalid(
                    "invalid_config",
                    format!(
                        "strategy must be one of round-robin, fifo, least-loaded, weighted; got {value}"
                    ),
                )
            })?,
        };
        let max_instances = count(config, "max_instances", defaults.max_instances, 1024)?.max(1);
        let min_instances = count(
            config,
            "min_instances",
            options.min_instances.min(max_instances),
            1024,
        )?;
        if min_instances > max_instances {
            return Err(Error::invalid(
                "invalid_config",
                format!(
                    "min_instances ({min_instances}) is more than max_instances ({max_instances})"
                ),
            ));
        }
        let concurrency = count(config, "concurrency", defaults.concurrency, 10_000)?;
        if concurrency == 0 {
            return Err(Error::invalid(
                "invalid_config",
                "concurrency must be at least 1",
            ));
        }
        let max_queue = count(config, "max_queue", options.max_queue, 100_000)?;
        let idle_ttl = match config.extra.get("idle_ttl") {
            None => options.idle_ttl,
            Some(value) => value
                .as_f64()
                .filter(|s| (0.0..=86_400.0 * 7.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Error::invalid(
                        "invalid_config",
                        format!(
                            "idle_ttl must be a number of seconds from 0 to 604800, got {value}"
                        ),
                    )
                })?,
        };
        Ok(Self {
            strategy,
            min_instances,
            max_instances,
            concurrency,
            max_queue,
            idle_ttl,
            memory_bytes: config.memory_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(config: serde_json::Value) -> Result<PoolSettings> {
        PoolSettings::from_config(
            &FunctionConfig::from_json(&config).unwrap(),
            InstanceDefaults {
                concurrency: 1,
                max_instances: 4,
            },
            &SchedulerOptions::default(),
        )
    }

    #[test]
    fn config_keys_override_defaults() {
        let s = settings(
            json!({"strategy": "fifo", "min_instances": 2, "max_instances": 3,
                                "concurrency": 2, "max_queue": 5, "idle_ttl": 0}),
        )
        .unwrap();
        assert_eq!(s.strategy, Strategy::Fifo);
        assert_eq!(
            (s.min_instances, s.max_instances, s.concurrency, s.max_queue),
            (2, 3, 2, 5)
        );
        assert_eq!(s.idle_ttl, Duration::ZERO);
        let d = settings(json!({})).unwrap();
        assert_eq!((d.max_instances, d.concurrency, d.max_queue), (4, 1, 100));
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in [
            json!({"strategy": "random"}),
            json!({"min_instances": 5, "max_instances": 2}),
            json!({"concurrency": 0}),
            json!({"max_queue": -1}),
            json!({"idle_ttl": "soon"}),
        ] {
            assert!(settings(bad.clone()).is_err(), "{bad}");
        }
    }
}
