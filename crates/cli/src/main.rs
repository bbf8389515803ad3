//! The `minifaas` binary: `serve` runs the server; every other subcommand is a client
//! that speaks the HTTP API with `minifaas-api` types.

mod bench;
mod client;

/// mimalloc: every request allocates (headers, bodies, WASI contexts) from many threads,
/// where glibc's malloc showed up as ~10% of the server's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "minifaas",
    version,
    about = "Functions as a Service in one binary"
)]
struct Cli {
    /// The server's URL.
    #[arg(
        long,
        global = true,
        env = "MINIFAAS_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// API key, sent as `Authorization: Bearer`.
    #[arg(long, global = true, env = "MINIFAAS_KEY", hide_env_values = true)]
    key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. Settings: defaults, then --config FILE, then env and flags.
    Serve {
        /// TOML config file (see README).
        #[arg(long, env = "MINIFAAS_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
        #[arg(long, env = "MINIFAAS_LISTEN")]
        listen: Option<String>,
        /// Data directory: database, blobs, caches (default ./data).
        #[arg(long, env = "MINIFAAS_DATA")]
        data: Option<PathBuf>,
        /// Invocations running at once, server-wide (default 256).
        #[arg(long, env = "MINIFAAS_MAX_CONCURRENCY")]
        max_concurrency: Option<usize>,
        /// Largest request body in bytes (default 6 MiB).
        #[arg(long, env = "MINIFAAS_MAX_BODY")]
        max_body: Option<usize>,
        /// Wall-clock limit of one build, in seconds (default 120).
        #[arg(long, env = "MINIFAAS_BUILD_TIMEOUT")]
        build_timeout: Option<u64>,
        /// Warm instances per function, its default `min_instances` (default 0).
        #[arg(long, env = "MINIFAAS_WORKERS")]
        workers: Option<usize>,
        /// Default balancing strategy: round-robin, fifo, least-loaded, weighted.
        #[arg(long, env = "MINIFAAS_STRATEGY")]
        strategy: Option<String>,
        /// Default per-function queue length (default 100).
        #[arg(long, env = "MINIFAAS_MAX_QUEUE")]
        max_queue: Option<usize>,
        /// Default seconds an idle instance is kept above min_instances (default 600).
        #[arg(long, env = "MINIFAAS_IDLE_TTL")]
        idle_ttl: Option<f64>,
        /// Seconds a request may wait for a slot before 503 (default 10).
        #[arg(long, env = "MINIFAAS_MAX_WAIT")]
        max_wait: Option<f64>,
        /// Serve without API keys: local development only (refused off loopback).
        #[arg(long)]
        no_auth: bool,
        /// The admin key's secret, instead of a generated one.
        #[arg(long, env = "MINIFAAS_ADMIN_KEY", hide_env_values = true)]
        admin_key: Option<String>,
        /// Keep no invocation records (ids, stats, metrics and logs stay).
        #[arg(long)]
        no_records: bool,
        /// Server log lines: human-readable text, or one JSON object per line.
        #[arg(long, env = "MINIFAAS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
    },
    /// Deploy a source file (language from the extension); updates it if it exists.
    Deploy {
        file: PathBuf,
        /// Function name (default: the file's stem).
        #[arg(long)]
        name: Option<String>,
        /// Language (default: from the extension).
        #[arg(long)]
        lang: Option<String>,
        /// Timeout in seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Memory limit, e.g. 128 or 128Mi.
        #[arg(long)]
        memory: Option<String>,
        /// Environment variable for the function, K=V (repeatable).
        #[arg(long = "env", value_name = "K=V")]
        env: Vec<String>,
    },
    /// Invoke a function and print its response body.
    Invoke {
        name: String,
        /// Request body: a string, @file, or - for stdin.
        #[arg(long, short = 'd')]
        data: Option<String>,
        /// HTTP method.
        #[arg(long, short = 'X', default_value = "POST")]
        method: String,
        /// Path below the function, e.g. /users/1?x=2.
        #[arg(long, default_value = "")]
        path: String,
    },
    /// Load-test a function: closed loop at -c, or open loop at --rate.
    Bench {
        /// Function name (or a full http:// URL to measure any server).
        name: String,
        /// Requests in flight at once.
        #[arg(short = 'c', long, default_value_t = 10)]
        concurrency: usize,
        /// Run for this long (e.g. 10s, 500ms).
        #[arg(short = 'd', long, conflicts_with = "requests")]
        duration: Option<String>,
        /// Send this many requests.
        #[arg(short = 'n', long)]
        requests: Option<u64>,
        /// Open loop: requests per second, latency measured from each intended send time.
        #[arg(long)]
        rate: Option<f64>,
        /// Request body: a string or @file.
        #[arg(long)]
        data: Option<String>,
        /// HTTP method.
        #[arg(long, short = 'X', default_value = "POST")]
        method: String,
        /// One JSON object instead of text and a progress bar.
        #[arg(long)]
        json: bool,
    },
    /// The seed's load injector: `load-injector <fn> <threads> <requests-per-thread>`.
    LoadInjector {
        name: String,
        threads: usize,
        requests_per_thread: u64,
    },
    /// List functions.
    Ls,
    /// Show a function.
    Get { name: String },
    /// A function's recent log lines (what it printed), with their invocation ids.
    Logs {
        name: String,
        /// Keep printing new lines as they come.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many recent lines.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Delete a function.
    Rm { name: String },
    /// What this machine gives the sandbox (each primitive, its cold-start cost) and
    /// which language toolchains are installed.
    CheckSystem {
        /// Runs per measurement.
        #[arg(long, default_value_t = 20)]
        rounds: u32,
    },
    /// API keys (admin scope).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create {
        /// invoke, manage or admin (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Requests per second this key may make.
        #[arg(long)]
        rate_limit: Option<f64>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never their secrets).
    Ls,
    /// Revoke a key at once.
    Rm { id: String },
}

/// The key to send: `--key`, else `MINIFAAS_KEY`, else, for a server on this machine,
/// the admin key it wrote to its data dir (`$MINIFAAS_DATA` or `./data`).
fn resolve_key(key: Option<String>, url: &str) -> Option<String> {
    if key.is_some() {
        return key;
    }
    let host = reqwest::Url::parse(url).ok()?.host_str()?.to_owned();
    let local = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !local {
        return None;
    }
    let data = std::env::var_os("MINIFAAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"));
    let text = std::fs::read_to_string(data.join("admin.key")).ok()?;
    let key = text.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

fn main() -> std::process::ExitCode {
    // Started by the server as its own sandbox helper: do that and nothing else (no
    // argument parsing, no runtime, no threads).
    if let Some(status) = minifaas_sandbox::run_if_helper() {
        std::process::exit(status);
    }
    let mut cli = Cli::parse();
    if let Command::CheckSystem { rounds } = cli.command {
        return match minifaas_server::check_system(rounds) {
            Ok(report) => {
                print!("{report}");
                std::process::ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if !matches!(cli.command, Command::Serve { .. }) {
        cli.key = resolve_key(cli.key.take(), &cli.url);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            data,
            max_concurrency,
            max_body,
            build_timeout,
            workers,
            strategy,
            max_queue,
            idle_ttl,
            max_wait,
            no_auth,
            admin_key,
            no_records,
            log_format,
        } => {
            init_tracing(&log_format);
            let config = minifaas_server::ServeConfig::resolve(
                config.as_deref(),
                minifaas_server::ServeOverrides {
                    listen,
                    data_dir: data,
                    max_concurrency,
                    max_body_bytes: max_body,
                    build_timeout_secs: build_timeout,
                    workers,
                    strategy,
                    max_queue,
                    idle_ttl_secs: idle_ttl,
                    max_wait_secs: max_wait,
                    no_auth,
                    admin_key,
                    no_records,
                },
            )?;
            let shutdown = CancellationToken::new();
            minifaas_server::cancel_on_signals(shutdown.clone())?;
            minifaas_server::serve(config, shutdown).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Bench {
            name,
            concurrency,
            duration,
            requests,
            rate,
            data,
            method,
            json,
        } => {
            let stop = match (duration, requests) {
                (_, Some(n)) => bench::Stop::After(n),
                (Some(d), None) => bench::Stop::For(bench::parse_duration(&d)?),
                (None, None) => bench::Stop::For(Duration::from_secs(10)),
            };
            if let Some(rate) = rate
                && (!rate.is_finite() || rate <= 0.0)
            {
                anyhow::bail!("--rate must be positive");
            }
            let body = match data.as_deref() {
                None => Vec::new(),
                Some(arg) if arg.starts_with('@') => std::fs::read(&arg[1..])?,
                Some(text) => text.as_bytes().to_vec(),
            };
            let report = bench::run(bench::BenchPlan {
                url: bench_url(&cli.url, &name),
                key: cli.key,
                method: reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())?,
                body,
                concurrency,
                stop,
                rate,
                progress: !json,
            })
            .await?;
            if json {
                println!("{}", report.json());
            } else {
                println!("{}", report.text());
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::LoadInjector {
            name,
            threads,
            requests_per_thread,
        } => {
            println!(
                "=== Load Injector ===\nFunction ID: {name}\nThreads: {threads}\nRequests per thread: {requests_per_thread}\nTotal requests: {}\n=====================",
                threads as u64 * requests_per_thread
            );
            let report = bench::run(bench::BenchPlan {
                url: bench_url(&cli.url, &name),
                key: cli.key,
                method: reqwest::Method::POST,
                body: Vec::new(),
                concurrency: threads,
                stop: bench::Stop::After(threads as u64 * requests_per_thread),
                rate: None,
                progress: false,
            })
            .await?;
            let total = report.requests.max(1) as f64;
            let errors = report.error_count();
            println!(
                "\n=== Results ===\nTotal requests: {}\nSuccessful: {} ({:.1}%)\nErrors: {} ({:.1}%)\nElapsed time: {:.2} seconds\nRequests/sec: {:.2}\n===============",
                report.requests,
                report.requests - errors,
                100.0 * (report.requests - errors) as f64 / total,
                errors,
                100.0 * errors as f64 / total,
                report.elapsed.as_secs_f64(),
                report.rps()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        command => {
            let client = client::Client::new(cli.url, cli.key)?;
            client.run(command).await
        }
    }
}

/// The server's logging: `MINIFAAS_LOG` filters what is printed (text or JSON, on
/// stderr); functions' output is always filed in the log book that
/// `/functions/:name/logs` and the invocation records read.
fn init_tracing(format: &str) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("MINIFAAS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let printed = if format == "json" {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    };
    // Only functions' output goes to the book, whatever MINIFAAS_LOG prints.
    let book = minifaas_server::function_log_layer().with_filter(
        tracing_subscriber::filter::Targets::new().with_target(
            minifaas_server::FUNCTION_OUTPUT_TARGET,
            tracing::Level::INFO,
        ),
    );
    tracing_subscriber::registry()
        .with(printed)
        .with(book)
        .init();
}

/// `/invoke/NAME` on the server, or NAME itself when it is a URL.
fn bench_url(base: &str, name: &str) -> String {
    if name.starts_with("http://") || name.starts_with("https://") {
        name.to_owned()
    } else {
        format!("{}/invoke/{name}", base.trim_end_matches('/'))
    }
}
