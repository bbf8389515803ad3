//! The server's configuration: defaults, then the config file, then environment
//! variables and flags (the CLI passes both as [`ServeOverrides`]); all of it checked
//! before anything is bound or opened.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use minifaas_scheduler::{Strategy, Weights};
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `host:port` to listen on; port 0 picks a free one.
    pub listen: String,
    /// Where the database, blobs and caches live.
    pub data_dir: PathBuf,
    /// Invocations running at once, server-wide.
    pub max_concurrency: usize,
    /// How long an invocation may wait for a free slot before 503.
    pub max_queue_wait: Duration,
    /// Largest request body (invocations and deploys).
    pub max_body_bytes: usize,
    /// Wall-clock limit of one build.
    pub build_timeout: Duration,
    /// Warm instances kept per function unless its config sets `min_instances`.
    pub workers: usize,
    /// Default balancing strategy: round-robin, fifo, least-loaded, weighted.
    pub strategy: String,
    /// Default per-function queue length.
    pub max_queue: usize,
    /// Default time an idle instance is kept above `min_instances`.
    pub idle_ttl: Duration,
    /// The weighted strategy's weights and EMA factor.
    pub weights: Weights,
    /// Serve without API keys (local development; loopback addresses only).
    pub no_auth: bool,
    /// The admin key's secret, instead of a generated one (`MINIFAAS_ADMIN_KEY`).
    pub admin_key: Option<String>,
    /// Keep a record of every invocation (`GET /invocations/:id`).
    pub record_invocations: bool,
    /// How many records, and how old, are kept.
    pub retention: minifaas_gateway::Retention,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            max_concurrency: 256,
            max_queue_wait: Duration::from_secs(10),
            max_body_bytes: 6 * 1024 * 1024,
            build_timeout: Duration::from_secs(120),
            workers: 0,
            strategy: "round-robin".into(),
            max_queue: 100,
            idle_ttl: Duration::from_secs(600),
            weights: Weights::default(),
            no_auth: false,
            admin_key: None,
            record_invocations: true,
            retention: minifaas_gateway::Retention::default(),
        }
    }
}

/// Settings given by flags or environment variables; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct ServeOverrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_concurrency: Option<usize>,
    pub max_body_bytes: Option<usize>,
    pub build_timeout_secs: Option<u64>,
    pub workers: Option<usize>,
    pub strategy: Option<String>,
    pub max_queue: Option<usize>,
    pub idle_ttl_secs: Option<f64>,
    pub max_wait_secs: Option<f64>,
    pub no_auth: bool,
    pub admin_key: Option<String>,
    pub no_records: bool,
}

/// The config file (TOML). Unknown keys are an error: a typo must not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data: Option<PathBuf>,
    max_concurrency: Option<usize>,
    max_body: Option<usize>,
    build_timeout: Option<u64>,
    workers: Option<usize>,
    #[serde(default)]
    no_auth: bool,
    #[serde(default)]
    scheduler: FileScheduler,
    #[serde(default)]
    records: FileRecords,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScheduler {
    strategy: Option<String>,
    max_queue: Option<usize>,
    idle_ttl: Option<f64>,
    max_wait: Option<f64>,
    weights: Option<FileWeights>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecords {
    enabled: Option<bool>,
    max_records: Option<usize>,
    max_age_days: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWeights {
    cpu: f64,
    memory: f64,
    io: f64,
    ema_factor: f64,
}

fn seconds(
    value: f64,
    what: &str,
    range: std::ops::RangeInclusive<f64>,
) -> anyhow::Result<Duration> {
    if !value.is_finite() || !range.contains(&value) {
        bail!(
            "{what} must be between {} and {} seconds, got {value}",
            range.start(),
            range.end()
        );
    }
    Ok(Duration::from_secs_f64(value))
}

impl ServeConfig {
    /// Defaults, then `file` (if any), then `overrides`.
    pub fn resolve(file: Option<&Path>, overrides: ServeOverrides) -> anyhow::Result<Self> {
        let from_file: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("the config file {} is not valid", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut config = ServeConfig::default();
        let sched = from_file.scheduler;
        if let Some(v) = overrides.listen.or(from_file.listen) {
            config.listen = v;
        }
        if let Some(v) = overrides.data_dir.or(from_file.data) {
            config.data_dir = v;
        }
        if let Some(v) = overrides.max_concurrency.or(from_file.max_concurrency) {
            config.max_concurrency = v;
        }
        if let Some(v) = overrides.max_body_bytes.or(from_file.max_body) {
            config.max_body_bytes = v;
        }
        if let Some(v) = overrides.build_timeout_secs.or(from_file.build_timeout) {
            config.build_timeout = Duration::from_secs(v);
        }
        if let Some(v) = overrides.workers.or(from_file.workers) {
            config.workers = v;
        }
        if let Some(v) = overrides.strategy.or(sched.strategy) {
            config.strategy = v;
        }
        if let Some(v) = overrides.max_queue.or(sched.max_queue) {
            config.max_queue = v;
        }
        if let Some(v) = overrides.idle_ttl_secs.or(sched.idle_ttl) {
            config.idle_ttl = seconds(v, "idle_ttl", 0.0..=604_800.0)?;
        }
        if let Some(v) = overrides.max_wait_secs.or(sched.max_wait) {
            config.max_queue_wait = seconds(v, "max_wait", 0.001..=3600.0)?;
        }
        config.no_auth = overrides.no_auth || from_file.no_auth;
        let records = from_file.records;
        config.record_invocations = !overrides.no_records && records.enabled.unwrap_or(true);
        if let Some(max) = records.max_records {
            config.retention.max_records = max;
        }
        if let Some(days) = records.max_age_days {
            config.retention.max_age =
                seconds(days * 86_400.0, "records.max_age_days", 60.0..=3.2e8)?;
        }
        config.admin_key = overrides.admin_key.filter(|k| !k.is_empty());
        if let Some(w) = sched.weights {
            config.weights = Weights {
                cpu: w.cpu,
                memory: w.memory,
                io: w.io,
                ema_factor: w.ema_factor,
            };
        }
        Ok(config)
    }

    /// The default strategy, parsed.
    pub fn strategy(&self) -> anyhow::Result<Strategy> {
        Strategy::parse(&self.strategy).with_context(|| {
            format!(
                "strategy '{}' is not one of round-robin, fifo, least-loaded, weighted",
                self.strategy
            )
        })
    }

    /// Checks every setting; returns the address to bind.
    pub fn validate(&self) -> anyhow::Result<SocketAddr> {
        self.strategy()?;
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "listen address '{}' is not like 127.0.0.1:8080",
                self.listen
            )
        })?;
        if self.no_auth && !listen.ip().is_loopback() {
            bail!(
                "--no-auth serves every endpoint, deploy included, to anyone who can connect: \
                 it is only allowed on a loopback address, not {listen}"
            );
        }
        if let Some(key) = &self.admin_key
            && (key.len() < 16 || key.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bail!("MINIFAAS_ADMIN_KEY must be at least 16 characters, without spaces");
        }
        if self.max_concurrency == 0 {
            bail!("max_concurrency must be at least 1");
        }
        if self.max_body_bytes == 0 {
            bail!("the body limit must be at least 1 byte");
        }
        if self.build_timeout.is_zero() {
            bail!("the build timeout must be positive");
        }
        let w = &self.weights;
        let weights_ok = [w.cpu, w.memory, w.io]
            .iter()
            .all(|x| x.is_finite() && *x >= 0.0)
            && w.ema_factor > 0.0
            && w.ema_factor <= 1.0;
        if !weights_ok {
            bail!("weights must be non-negative and ema_factor in (0, 1]");
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating the data dir {}", self.data_dir.display()))?;
        Ok(listen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_address_is_rejected_before_binding() {
        let config = ServeConfig {
            listen: "localhost-ish".into(),
            ..ServeConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn no_auth_is_refused_off_loopback() {
        let open = ServeConfig {
            listen: "0.0.0.0:8080".into(),
            no_auth: true,
            ..ServeConfig::default()
        };
        assert!(open.validate().is_err());
        let dir = tempfile::tempdir().unwrap();
        let local = ServeConfig {
            listen: "127.0.0.1:0".into(),
            no_auth: true,
            data_dir: dir.path().to_owned(),
            ..ServeConfig::default()
        };
        assert!(local.validate().is_ok());
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minifaas.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:9000"
workers = 2
[scheduler]
strategy = "fifo"
idle_ttl = 30
[scheduler.weights]
cpu = 0.6
memory = 0.2
io = 0.2
ema_factor = 0.5
"#,
        )
        .unwrap();
        let config = ServeConfig::resolve(
            Some(&path),
            ServeOverrides {
                workers: Some(3),
                ..ServeOverrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000");
        assert_eq!(config.workers, 3);
        assert_eq!(config.strategy().unwrap(), Strategy::Fifo);
        assert_eq!(config.idle_ttl, Duration::from_secs(30));
        assert_eq!(config.weights.cpu, 0.6);
        assert_eq!(config.max_queue, 100);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        assert!(ServeConfig::resolve(Some(&path), ServeOverrides::default()).is_err());
        std::fs::write(&path, "[scheduler]\nstrategy = \"random\"\n").unwrap();
        let config = ServeConfig::resolve(Some(&path), ServeOverrides::default()).unwrap();
        assert!(config.validate().is_err());
        assert!(
            ServeConfig::resolve(
                Some(Path::new("/nonexistent.toml")),
                ServeOverrides::default()
            )
            .is_err()
        );
    }
}
