//! minifaas-server: the composition root.
//!
//! [`ServeConfig`] is validated in full before any socket is bound; then [`serve`] opens
//! the registry, finds the toolchains, creates the executors and the scheduler, loads
//! every stored function through the same path a deploy takes, binds, and serves until
//! the shutdown token fires (SIGINT/SIGTERM), letting requests in flight finish.
//! No business logic lives here: only wiring.

mod config;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use minifaas_build::{BuildOptions, CompilerBuilder, Toolchain, Toolchains};
use minifaas_core::{Executor, Invoker, Store, load_stored_version};
use minifaas_executor_process::{Interpreters, ProcessExecutor, ProcessOptions};
use minifaas_executor_wasm::{EngineOptions, WasmExecutor};
use minifaas_gateway::{AppState, GatewayLimits};
use minifaas_registry::SqliteStore;
use minifaas_scheduler::{Scheduler, SchedulerOptions, run_autoscaler};
use tokio_util::sync::CancellationToken;

pub use config::{ServeConfig, ServeOverrides};

/// Runs the server until `shutdown` is cancelled. Prints `listening on http://ADDR`
/// on stdout once the socket is bound (tests and scripts wait for that line).
pub async fn serve(config: ServeConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listen = config.validate()?;
    let data_dir = config.data_dir.clone();
    let cache_dir = data_dir.join("cache");

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data_dir)?);

    for primitive in minifaas_sandbox::isolation_report() {
        if !primitive.applied {
            tracing::warn!(
                primitive = primitive.name,
                without_it = primitive.without_it,
                "sandbox primitive not applied"
            );
        }
    }

    let toolchains = tokio::task::spawn_blocking(Toolchains::discover).await?;
    for (lang, toolchain) in toolchains.summary() {
        match toolchain {
            Toolchain::Ready { program, version } => {
                tracing::info!(lang, program = %program.display(), version, "toolchain ready")
            }
            Toolchain::Missing { reason } => {
                tracing::warn!(
                    lang,
                    reason,
                    "toolchain missing: deploys in this language will fail"
                )
            }
        }
    }
    let builder = Arc::new(CompilerBuilder::new(
        toolchains.clone(),
        &cache_dir,
        BuildOptions {
            time_limit: config.build_timeout,
            ..BuildOptions::default()
        },
    )?);

    let interpreters = Interpreters {
        python: toolchains.python.program().map(Path::to_owned),
        node: toolchains.node.program().map(Path::to_owned),
        php: toolchains.php.program().map(Path::to_owned),
    };
    let wasm = Arc::new(WasmExecutor::new(
        cache_dir.join("wasm"),
        EngineOptions::default(),
    )?);
    let process = Arc::new(ProcessExecutor::new(
        &cache_dir,
        interpreters,
        ProcessOptions::default(),
    )?);
    let executors: Vec<Arc<dyn Executor>> = vec![wasm, process];
    let scheduler = Arc::new(Scheduler::new(
        executors,
        SchedulerOptions {
            max_concurrency: config.max_concurrency,
            max_wait: config.max_queue_wait,
            min_instances: config.workers,
            strategy: config.strategy()?,
            max_queue: config.max_queue,
            idle_ttl: config.idle_ttl,
            weights: config.weights,
            ..SchedulerOptions::default()
        },
    ));
    let autoscaler = tokio::spawn(run_autoscaler(scheduler.clone(), shutdown.clone()));
    let invoker: Arc<dyn Invoker> = scheduler.clone();

    load_all(store.as_ref(), invoker.as_ref()).await?;

    let state = AppState {
        store,
        builder,
        invoker,
        limits: GatewayLimits {
            max_body_bytes: config.max_body_bytes,
            max_source_bytes: config.max_body_bytes,
        },
    };
    let app = minifaas_gateway::router(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, data = %data_dir.display(), "minifaas serving");
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{bound}")?;
        stdout.flush()?;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("serving HTTP")?;
    shutdown.cancel();
    let _ = autoscaler.await;
    tracing::info!("minifaas stopped");
    Ok(())
}

/// Loads every stored function through the deploy path's `prepare` + `activate`. A
/// function that fails to load is logged and left unserved; the others still serve.
async fn load_all(store: &dyn Store, invoker: &dyn Invoker) -> anyhow::Result<()> {
    let functions = store.list_functions().await?;
    let total = functions.len();
    let mut loaded = 0;
    for (function, version) in &functions {
        match load_stored_version(store, invoker, function, version).await {
            Ok(()) => loaded += 1,
            Err(err) => {
                tracing::error!(function = %function.name, version = version.version, %err, "could not load function")
            }
        }
    }
    tracing::info!(loaded, total, "functions loaded");
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        token.cancel();
    });
    Ok(())
}
