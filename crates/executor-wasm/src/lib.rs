//! minifaas-executor-wasm: runs WASI preview-1 command modules with wasmtime.
//!
//! This is the only crate that links wasmtime. It owns:
//! - the one [`wasmtime::Engine`] (pooling allocator, copy-on-write memory images, epoch
//!   interruption) and the thread that advances its epoch (`engine.rs`);
//! - the cache of precompiled native code, keyed by artifact sha256 and engine
//!   compatibility, so a restart never recompiles (`module_cache.rs`);
//! - one `InstancePre` per function version, and a fresh `Store` + instance per request,
//!   with memory, output and time limits (`instance.rs`).
//!
//! Invariants: a request never sees state left by another (a new instance each time);
//! a running module yields to the async runtime at every epoch tick, so a busy loop
//! never stalls the server, and is interrupted once past its deadline.

mod engine;
mod instance;
mod module_cache;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use minifaas_core::{
    Artifact, ArtifactKind, Error, Executor, FunctionConfig, FunctionName, InstanceDefaults,
    PreparedFunction, Result, SharedInstance,
};
use wasmtime::{Engine, Linker};

use crate::engine::EpochTicker;
use crate::instance::{PreparedModule, StoreState};
use crate::module_cache::ModuleCache;

pub use crate::engine::EngineOptions;

/// The WASI executor: one engine, one linker, the module cache.
pub struct WasmExecutor {
    engine: Engine,
    linker: Arc<Linker<StoreState>>,
    cache: ModuleCache,
    options: EngineOptions,
    _ticker: EpochTicker,
    compiles: AtomicU64,
}

impl WasmExecutor {
    /// Creates the engine and its epoch ticker. `cache_dir` holds precompiled modules.
    pub fn new(cache_dir: PathBuf, options: EngineOptions) -> Result<Self> {
        let engine = engine::build_engine(&options)
            .map_err(|e| Error::platform_ctx("creating the wasmtime engine", e))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut StoreState| {
            &mut state.wasi
        })
        .map_err(|e| Error::platform_ctx("linking WASI preview 1", e))?;
        let cache = ModuleCache::new(cache_dir, &engine)?;
        // Without the ticker no time limit fires: refuse to run rather than run unbounded.
        let ticker = EpochTicker::start(&engine, options.epoch_tick)
            .map_err(|e| Error::platform_ctx("starting the wasm epoch thread", e))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
            options,
            _ticker: ticker,
            compiles: AtomicU64::new(0),
        })
    }

    /// How many modules this executor compiled (rather than loaded from the cache).
    pub fn compile_count(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Executor for WasmExecutor {
    fn kinds(&self) -> &'static [ArtifactKind] {
        &[ArtifactKind::WasiModule]
    }

    async fn prepare(
        &self,
        name: &FunctionName,
        config: &FunctionConfig,
        artifact: &Artifact,
    ) -> Result<Arc<dyn PreparedFunction>> {
        let (module, compiled) = self.cache.load_or_compile(&self.engine, artifact).await?;
        if compiled {
            self.compiles.fetch_add(1, Ordering::Relaxed);
        }
        let prepared = PreparedModule::new(
            &self.engine,
            &self.linker,
            &module,
            name,
            config,
            &self.options,
        )?;
        // Every request gets a fresh wasm instance from the InstancePre, so one shared
        // object serves as all of the scheduler's "instances" of this version.
        Ok(Arc::new(SharedInstance {
            instance: Arc::new(prepared),
            defaults: InstanceDefaults {
                concurrency: 64,
                max_instances: 16,
            },
        }))
    }
}
