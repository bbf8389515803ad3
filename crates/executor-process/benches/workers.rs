//! Per language (Python, JavaScript, PHP): the cold start of a new function (prepare,
//! which starts its first worker, plus the first call), the warm round trip of a no-op
//! handler (p50/p99 over sequential calls), and the resident memory of one idle worker.
//!
//! `cargo bench -p minifaas-executor-process`

use std::time::{Duration, Instant};

use bytes::Bytes;
use minifaas_build::{BuildOptions, CompilerBuilder, Toolchains};
use minifaas_core::{Builder, Executor, FunctionConfig, FunctionName, InvokeRequest, Lang};
use minifaas_executor_process::{Interpreters, ProcessExecutor, ProcessOptions};

const NOOP: [(Lang, &str); 3] = [
    (Lang::Python, "def handle(request):\n    return 'ok'\n"),
    (
        Lang::JavaScript,
        "module.exports = async (request) => 'ok';\n",
    ),
    (
        Lang::Php,
        "<?php function handle($request) { return 'ok'; }\n",
    ),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// (RSS, PSS) of a process in MiB: PSS splits pages shared with the zygote fairly.
fn memory_mib(pid: u32) -> (f64, f64) {
    let field = |file: &str, name: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse::<f64>().ok())
            })
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("status", "VmRSS:"), field("smaps_rollup", "Pss:"))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toolchains = Toolchains::discover();
    let builder =
        CompilerBuilder::new(toolchains.clone(), dir.path(), BuildOptions::default()).unwrap();
    let interpreters = Interpreters {
        python: toolchains.python.program().map(Into::into),
        node: toolchains.node.program().map(Into::into),
        php: toolchains.php.program().map(Into::into),
    };
    let executor =
        ProcessExecutor::new(dir.path(), interpreters.clone(), ProcessOptions::default()).unwrap();
    // The same, starting every Python worker as a fresh interpreter (no zygote).
    let spawning = ProcessExecutor::new(
        &dir.path().join("spawn"),
        interpreters,
        ProcessOptions {
            python_zygote: false,
            node_spares: 0,
            ..ProcessOptions::default()
        },
    )
    .unwrap();
    let config = FunctionConfig::default();
    let request = InvokeRequest {
        method: "POST".into(),
        path: "/".into(),
        ..Default::default()
    };
    println!(
        "{:<22} {:>12} {:>12} {:>12} {:>13} {:>13}",
        "language", "cold ms p50", "warm µs p50", "warm µs p99", "idle RSS MiB", "idle PSS MiB"
    );
    let runs = [
        ("python (zygote fork)", NOOP[0], &executor),
        ("python (fresh spawn)", NOOP[0], &spawning),
        ("javascript (spare)", NOOP[1], &executor),
        ("javascript (fresh)", NOOP[1], &spawning),
        ("php", NOOP[2], &executor),
    ];
    for (label, (lang, code), executor) in runs {
        let artifact = runtime
            .block_on(builder.build(lang, Bytes::from_static(code.as_bytes()), &config))
            .unwrap();
        let name = FunctionName::parse("noop").unwrap();

        let mut cold = Vec::new();
        for _ in 0..20 {
            // Let generic workers refill between cold starts, as between deploys.
            std::thread::sleep(Duration::from_millis(150));
            let started = Instant::now();
            let prepared = runtime
                .block_on(executor.prepare(&name, &config, &artifact))
                .unwrap();
            let instance = runtime.block_on(prepared.start_instance()).unwrap();
            runtime.block_on(instance.invoke(request.clone())).unwrap();
            cold.push(started.elapsed());
        }
        cold.sort();

        let prepared = runtime
            .block_on(executor.prepare(&name, &config, &artifact))
            .unwrap();
        let instance = runtime.block_on(prepared.start_instance()).unwrap();
        let mut warm = Vec::new();
        for _ in 0..200 {
            runtime.block_on(instance.invoke(request.clone())).unwrap();
        }
        for _ in 0..3000 {
            let started = Instant::now();
            let response = runtime.block_on(instance.invoke(request.clone())).unwrap();
            warm.push(started.elapsed());
            assert_eq!(&response.body[..], b"ok");
        }
        warm.sort();
        let (rss_mib, pss_mib) = instance
            .pid()
            .map(memory_mib)
            .unwrap_or((f64::NAN, f64::NAN));
        println!(
            "{:<22} {:>12.1} {:>12.0} {:>12.0} {:>13.1} {:>13.1}",
            label,
            percentile(&cold, 0.5).as_secs_f64() * 1e3,
            percentile(&warm, 0.5).as_secs_f64() * 1e6,
            percentile(&warm, 0.99).as_secs_f64() * 1e6,
            rss_mib,
            pss_mib
        );
        drop(instance);
        drop(prepared);
    }
}
