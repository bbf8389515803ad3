//! The server's configuration, checked before anything is bound or opened.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

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
    /// Warm workers started per process function at deploy and start-up, unless its
    /// config sets `min_instances`.
    pub workers: usize,
    /// Default balancing strategy: round-robin, fifo, least-loaded, weighted.
    pub strategy: String,
    /// Default per-function queue length.
    pub max_queue: usize,
    /// Default time an idle instance is kept above `min_instances`.
    pub idle_ttl: Duration,
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
        }
    }
}

impl ServeConfig {
    /// The default strategy, parsed.
    pub fn strategy(&self) -> anyhow::Result<minifaas_scheduler::Strategy> {
        minifaas_scheduler::Strategy::parse(&self.strategy).with_context(|| {
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
                "--listen '{}' is not an address like 127.0.0.1:8080",
                self.listen
            )
        })?;
        if self.max_concurrency == 0 {
            bail!("max concurrency must be at least 1");
        }
        if self.max_body_bytes == 0 {
            bail!("the body limit must be at least 1 byte");
        }
        if self.build_timeout.is_zero() {
            bail!("the build timeout must be positive");
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
}
