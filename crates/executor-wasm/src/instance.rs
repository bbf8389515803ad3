//! One function version ready to run (`PreparedModule`), and one run of it: a fresh store
//! and instance per request, torn down when the request ends.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use minifaas_core::cgi::{cgi_environment, parse_cgi_output};
use minifaas_core::{
    Error, FunctionConfig, FunctionName, Instance, InvokeRequest, InvokeResponse, Result,
};
use wasmtime::{
    Engine, ExternType, InstancePre, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use crate::engine::EngineOptions;

/// What a store holds for one run.
pub(crate) struct StoreState {
    pub(crate) wasi: WasiP1Ctx,
    limits: StoreLimits,
    deadline: Instant,
}

/// A version linked against WASI and pre-instantiated, ready for many runs.
pub(crate) struct PreparedModule {
    engine: Engine,
    pre: InstancePre<StoreState>,
    name: String,
    timeout: Duration,
    memory_bytes: usize,
    environment: Vec<(String, String)>,
    max_output_bytes: usize,
    max_log_bytes: usize,
}

impl PreparedModule {
    pub(crate) fn new(
        engine: &Engine,
        linker: &Linker<StoreState>,
        module: &Module,
        name: &FunctionName,
        config: &FunctionConfig,
        options: &EngineOptions,
    ) -> Result<Self> {
        match module.get_export("_start") {
            Some(ExternType::Func(ty)) if ty.params().len() == 0 && ty.results().len() == 0 => {}
            _ => {
                return Err(Error::build_failed(
                    "the module is not a WASI command: it must export a `_start` function taking and returning nothing (build it as a program with a main function)",
                ));
            }
        }
        let memory_bytes = usize::try_from(config.memory_bytes()).unwrap_or(usize::MAX);
        for export in module.exports() {
            if let ExternType::Memory(memory) = export.ty() {
                let initial = memory.minimum().saturating_mul(memory.page_size());
                if initial > memory_bytes as u64 {
                    return Err(Error::invalid(
                        "memory_too_small",
                        format!(
                            "the module needs {} MB of memory at start, more than its memory limit of {} MB; raise `memory` in the config",
                            initial.div_ceil(1024 * 1024),
                            config.memory_mb
                        ),
                    ));
                }
            }
        }
        let pre = linker.instantiate_pre(module).map_err(|e| {
            Error::build_failed(format!(
                "the module cannot be linked: {e:#}. minifaas provides WASI preview 1 (wasi_snapshot_preview1) and nothing else"
            ))
        })?;
        Ok(Self {
            engine: engine.clone(),
            pre,
            name: name.to_string(),
            timeout: config.timeout,
            memory_bytes,
            environment: config
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            max_output_bytes: options.max_output_bytes,
            max_log_bytes: options.max_log_bytes,
        })
    }

    fn new_store(
        &self,
        request: &InvokeRequest,
        stdout: &MemoryOutputPipe,
        stderr: &MemoryOutputPipe,
    ) -> Store<StoreState> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdin(MemoryInputPipe::new(request.body.clone()))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg(&self.name)
            .envs(&cgi_environment(&self.name, request))
            .envs(&self.environment);
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.memory_bytes)
            .instances(1)
            .build();
        let mut store = Store::new(
            &self.engine,
            StoreState {
                wasi: wasi.build_p1(),
                limits,
                deadline: Instant::now() + self.timeout,
            },
        );
        store.limiter(|state| &mut state.limits);
        // At every epoch tick: stop if past the deadline, else yield to other tasks.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

#[async_trait]
impl Instance for PreparedModule {
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let stdout = MemoryOutputPipe::new(self.max_output_bytes);
        let stderr = MemoryOutputPipe::new(self.max_log_bytes);
        let mut store = self.new_store(&request, &stdout, &stderr);
        let run = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        // The epoch callback interrupts a module past its deadline; this outer limit only
        // covers time spent outside wasm (host calls), with a margin of a few ticks.
        let outcome = tokio::time::timeout(self.timeout + Duration::from_millis(250), run).await;
        drop(store);
        file_logs(&self.name, &request.id, &stderr.contents());
        let result = match outcome {
            Ok(result) => result,
            Err(_) => return Err(self.timed_out()),
        };
        match result {
            Ok(()) => Ok(parse_cgi_output(stdout.contents())),
            Err(err) => {
                if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    if exit.0 == 0 {
                        return Ok(parse_cgi_output(stdout.contents()));
                    }
                    return Err(Error::function_failed(
                        "function_exit",
                        format!(
                            "function '{}' exited with status {}{}",
                            self.name,
                            exit.0,
                            stderr_tail(&stderr.contents())
                        ),
                    ));
                }
                if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    return Err(self.timed_out());
                }
                if stdout.contents().len() >= self.max_output_bytes {
                    return Err(Error::function_failed(
                        "output_too_large",
                        format!(
                            "function '{}' wrote more than {} bytes of output",
                            self.name, self.max_output_bytes
                        ),
                    ));
                }
                Err(Error::function_failed(
                    "function_trap",
                    format!(
                        "function '{}' crashed: {}{}",
                        self.name,
                        trap_message(&err),
                        stderr_tail(&stderr.contents())
                    ),
                ))
            }
        }
    }
}

impl PreparedModule {
    fn timed_out(&self) -> Error {
        Error::timeout(format!(
            "function '{}' did not finish within its {} s timeout",
            self.name,
            self.timeout.as_secs_f64()
        ))
    }
}

/// The trap's own words (`wasm trap: ...`), without wasmtime's backtrace.
fn trap_message(err: &wasmtime::Error) -> String {
    match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}")
            .lines()
            .next()
            .unwrap_or("unknown error")
            .to_owned(),
    }
}

/// What the function wrote to stderr is its log: one event per line, tagged with the
/// invocation (the gateway's log book files them).
fn file_logs(function: &str, invocation: &str, stderr: &Bytes) {
    if stderr.is_empty() {
        return;
    }
    for line in String::from_utf8_lossy(stderr).lines() {
        tracing::info!(target: minifaas_core::FUNCTION_OUTPUT_TARGET, function, invocation, "{line}");
    }
}

/// The end of what the function wrote to stderr, to put in an error message.
fn stderr_tail(stderr: &Bytes) -> String {
    const TAIL: usize = 1024;
    if stderr.is_empty() {
        return String::new();
    }
    let start = stderr.len().saturating_sub(TAIL);
    let text = String::from_utf8_lossy(&stderr[start..]);
    format!("; stderr: {}", text.trim_end())
}
