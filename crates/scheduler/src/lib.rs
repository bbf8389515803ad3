//! minifaas-scheduler: which prepared version serves each function, and admission.
//!
//! Today it holds the route table (function name → the prepared current version) and a
//! server-wide concurrency limit; pools per version, balancing strategies, autoscaling
//! and per-function queues build on this. It sees executors only as `dyn Executor`.
//!
//! Invariants: the route table is swapped under a short lock and never held across an
//! await; an invocation holds an `Arc` to the version it started on, so replacing or
//! removing a version never cuts a request in flight (the old version drains by itself
//! when its last request ends).

mod routes;

pub use routes::Scheduler;
