//! minifaas-scheduler: every invocation goes through here.
//!
//! - `routes.rs`: the route table (name → pool of the serving version, seed id → name)
//!   and the [`Invoker`](minifaas_core::Invoker) the gateway calls;
//! - `pool.rs`: the instances of one version and admission (free slot → cold start →
//!   bounded queue → 429), wait measured apart from run;
//! - `strategy.rs`: round-robin, fifo, least-loaded, weighted (the seed's score);
//! - `settings.rs`: per-function keys over server defaults;
//! - `autoscale.rs`: scale to `min_instances`, stop idle instances after `idle_ttl`;
//! - `sampler.rs`: CPU, memory and IO of process instances from `/proc`.
//!
//! It sees executors only as `dyn Executor` / `dyn PreparedFunction` / `dyn Instance`.
//! Invariants: the route table is swapped under a short lock and never held across an
//! await; a request holds an `Arc` to the pool it started on, so replacing or removing
//! a version never cuts a request in flight (the old pool and its instances are dropped
//! when its last request ends); an instance is stopped only with nothing in flight.

mod autoscale;
mod pool;
mod routes;
mod sampler;
mod settings;
mod strategy;

pub use autoscale::run_autoscaler;
pub use routes::Scheduler;
pub use settings::{PoolSettings, SchedulerOptions, Weights};
pub use strategy::{Load, Strategy, score};
