//! The engine's configuration and the epoch ticker.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Tunables of the engine, with defaults sized for one node.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Instances that may exist at once (pool slots for instances, memories, stacks).
    pub max_instances: u32,
    /// How often the epoch advances: the granularity of time limits, and how long a
    /// module runs before yielding to other tasks.
    pub epoch_tick: Duration,
    /// Bytes of stdout kept per invocation; a function writing more fails (502).
    pub max_output_bytes: usize,
    /// Bytes of stderr kept per invocation (its log).
    pub max_log_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            epoch_tick: Duration::from_millis(5),
            max_output_bytes: 6 * 1024 * 1024,
            max_log_bytes: 64 * 1024,
        }
    }
}

pub(crate) fn build_engine(options: &EngineOptions) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(options.max_instances)
        .total_memories(options.max_instances)
        .total_tables(options.max_instances)
        .total_stacks(options.max_instances)
        // Go's runtime has large function tables.
        .table_elements(100_000)
        // Reset the first MiB of a slot in place between instances (memset, or only its
        // dirty pages with PAGEMAP_SCAN where the kernel has it) instead of returning it
        // to the kernel: madvise on every request costs TLB shootdowns on every core and
        // page faults on the next use. Isolation is the same: the contents are reset.
        .linear_memory_keep_resident(1024 * 1024)
        .table_keep_resident(64 * 1024)
        .async_stack_keep_resident(256 * 1024)
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .epoch_interruption(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    Engine::new(&config)
}

/// Advances the engine's epoch every tick on a dedicated thread. The thread holds only a
/// weak reference and stops once the engine is gone or the ticker is dropped.
pub(crate) struct EpochTicker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let weak = engine.weak();
        let stop_flag = stop.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop_flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
