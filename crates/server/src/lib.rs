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
use minifaas_core::{
    Executor, InvocationStore, Invoker, KeyStore, Scope, Scopes, Store, load_stored_version,
};
use minifaas_executor_process::{Interpreters, ProcessExecutor, ProcessOptions};
use minifaas_executor_wasm::{EngineOptions, WasmExecutor};
use minifaas_gateway::{AppState, Auth, AuthMode, GatewayLimits, Observability, Recorder};
use minifaas_registry::SqliteStore;
use minifaas_scheduler::{Scheduler, SchedulerOptions, run_autoscaler};
use tokio_util::sync::CancellationToken;

pub use config::{ServeConfig, ServeOverrides};

/// Runs the server until `shutdown` is cancelled. Prints `listening on http://ADDR`
/// on stdout once the socket is bound (tests and scripts wait for that line).
pub async fn serve(config: ServeConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listen = config.validate()?;
    // Absolute from here on: children start in other directories, and the sandbox
    // mounts these paths by name (`./data` in the quick start is relative).
    let data_dir = std::fs::canonicalize(&config.data_dir)
        .with_context(|| format!("finding the data dir {}", config.data_dir.display()))?;
    let cache_dir = data_dir.join("cache");

    let registry = Arc::new(SqliteStore::open(&data_dir)?);
    let store: Arc<dyn Store> = registry.clone();
    let keys: Arc<dyn KeyStore> = registry.clone();
    let records: Arc<dyn InvocationStore> = registry;
    let auth = Arc::new(Auth::new(
        keys,
        if config.no_auth {
            AuthMode::Disabled
        } else {
            AuthMode::Required
        },
    ));
    bootstrap_admin_key(&auth, &config).await?;

    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    start_sandbox(&cache_dir).await?;
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
    let change_feed = tokio::spawn(follow_hand_edits(
        store.clone(),
        invoker.clone(),
        shutdown.clone(),
    ));

    let (recorder, queued_records) = Recorder::new(config.record_invocations);
    let record_writer = tokio::spawn(minifaas_gateway::run_recorder(
        queued_records,
        records.clone(),
        minifaas_gateway::log_book(),
        config.retention,
        shutdown.clone(),
    ));
    let observe = Arc::new(Observability {
        recorder,
        records,
        stats: minifaas_gateway::Stats::default(),
        logs: minifaas_gateway::log_book(),
    });
    let state = AppState {
        store,
        builder,
        invoker,
        auth,
        observe,
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
    let _ = change_feed.await;
    // The records still queued are written before the process ends.
    let _ = record_writer.await;
    tracing::info!("minifaas stopped");
    Ok(())
}

pub use minifaas_core::FUNCTION_OUTPUT_TARGET;

/// The `tracing` layer that files functions' output for logs and invocation records.
pub fn function_log_layer() -> minifaas_gateway::LogLayer {
    minifaas_gateway::LogLayer
}

/// Probes the machine's isolation primitives once (through this binary in helper mode)
/// and logs, as a warning, every one it lacks and what that means.
async fn start_sandbox(cache_dir: &Path) -> anyhow::Result<()> {
    let helper = std::env::current_exe().context("finding this program's path")?;
    let scratch = cache_dir.to_owned();
    let sandbox =
        tokio::task::spawn_blocking(move || minifaas_sandbox::init(helper, &scratch)).await?;
    for primitive in sandbox.report() {
        if primitive.available {
            tracing::debug!(primitive = primitive.name, detail = %primitive.detail, "sandbox primitive in use");
        } else {
            tracing::warn!(
                primitive = primitive.name,
                detail = %primitive.detail,
                without_it = primitive.without_it,
                "sandbox primitive missing on this machine"
            );
        }
    }
    Ok(())
}

/// `minifaas check-system`: every sandbox primitive (present or not, what minifaas does
/// without it, what it costs a cold start) and every language toolchain.
pub fn check_system(rounds: u32) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let helper = std::env::current_exe().context("finding this program's path")?;
    let scratch = tempfile::Builder::new()
        .prefix("minifaas-check-")
        .tempdir()
        .context("creating a scratch dir")?;
    let sandbox = minifaas_sandbox::init(helper, scratch.path());
    let mut out = String::new();
    writeln!(out, "sandbox primitives")?;
    for p in sandbox.report() {
        let mark = if p.available { "yes" } else { "NO " };
        writeln!(out, "  [{mark}] {:<70} {}", p.name, p.detail)?;
        if !p.available {
            writeln!(out, "        without it: {}", p.without_it)?;
        }
    }
    writeln!(
        out,
        "\ncold-start cost (mean of {rounds} runs of /bin/true)"
    )?;
    let mut previous = None;
    for (layer, cost) in sandbox.measure_costs(rounds) {
        let ms = cost.as_secs_f64() * 1000.0;
        let delta = previous
            .map(|p: f64| format!("{:+.2} ms", ms - p))
            .unwrap_or_default();
        writeln!(out, "  {layer:<50} {ms:>7.2} ms  {delta}")?;
        if !layer.contains("cgroup") {
            previous = Some(ms);
        }
    }
    writeln!(out, "\ntoolchains")?;
    let toolchains = Toolchains::discover();
    for (lang, toolchain) in toolchains.summary() {
        match toolchain {
            Toolchain::Ready { program, version } => {
                writeln!(out, "  [yes] {lang:<24} {} ({version})", program.display())?
            }
            Toolchain::Missing { reason } => writeln!(out, "  [NO ] {lang:<24} {reason}")?,
        }
    }
    Ok(out)
}

/// Makes sure an admin can get in: `MINIFAAS_ADMIN_KEY` is stored as an admin key; else,
/// when no key exists at all (first start), one is generated, written to
/// `<data>/admin.key` (mode 0600) and printed once on stdout.
async fn bootstrap_admin_key(auth: &Auth, config: &ServeConfig) -> anyhow::Result<()> {
    if auth.mode() == AuthMode::Disabled {
        tracing::warn!("--no-auth: every endpoint, deploy included, is open to this machine");
        return Ok(());
    }
    let admin = Scopes::new([Scope::Admin]);
    if let Some(secret) = &config.admin_key {
        if auth
            .ensure_key("admin (MINIFAAS_ADMIN_KEY)".into(), admin, secret)
            .await?
        {
            tracing::info!("stored the admin key given by MINIFAAS_ADMIN_KEY");
        }
        return Ok(());
    }
    if auth.has_keys().await? {
        return Ok(());
    }
    let (record, secret) = auth.create_key("admin".into(), admin, None).await?;
    let path = config.data_dir.join("admin.key");
    write_secret_file(&path, &secret)
        .with_context(|| format!("writing the admin key to {}", path.display()))?;
    tracing::info!(key = %record.id, path = %path.display(), "created the first admin key");
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "admin key (shown once; also in {}): {secret}",
        path.display()
    )?;
    stdout.flush()?;
    Ok(())
}

/// Writes `secret` to a file only its owner may read, created that way (no window in
/// which another user could open it).
fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An older file keeps its mode through open(): set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{secret}")?;
    file.sync_all()
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

/// Picks up changes made to the database by anyone but this server (edits by hand,
/// another process) within half a second: `PRAGMA data_version`, then the same load
/// path as a deploy for whatever differs from what serves.
async fn follow_hand_edits(
    store: Arc<dyn Store>,
    invoker: Arc<dyn Invoker>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match store.changed_elsewhere().await {
            Ok(true) => {
                match minifaas_core::sync_stored_versions(store.as_ref(), invoker.as_ref()).await {
                    Ok(changed) => {
                        tracing::info!(changed, "picked up changes made to the database elsewhere")
                    }
                    Err(err) => {
                        tracing::error!(%err, "could not apply changes made to the database elsewhere")
                    }
                }
            }
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, "could not check the database for outside changes"),
        }
    }
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
