//! Per-request cost of the WASI path: instantiate from the `InstancePre` + run `_start`
//! of the hello module; and the per-version cost: loading precompiled code vs compiling.
//!
//! `cargo bench -p minifaas-executor-wasm`

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use minifaas_core::{
    Artifact, ArtifactKind, Executor, FunctionConfig, FunctionName, InvokeRequest,
};
use minifaas_executor_wasm::{EngineOptions, WasmExecutor};

fn hello_module(dir: &Path) -> Bytes {
    let out = dir.join("hello.wasm");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello.c");
    let status = std::process::Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2", "-s", "-o"])
        .arg(&out)
        .arg(source)
        .status()
        .expect("clang (run scripts/install-toolchains.sh)");
    assert!(status.success());
    Bytes::from(std::fs::read(out).unwrap())
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let artifact = Artifact::new(ArtifactKind::WasiModule, hello_module(dir.path()));
    let name = FunctionName::parse("hello").unwrap();
    let config = FunctionConfig::default();
    let executor =
        Arc::new(WasmExecutor::new(dir.path().join("cache"), EngineOptions::default()).unwrap());
    let prepared = runtime
        .block_on(executor.prepare(&name, &config, &artifact))
        .unwrap();
    let instance = runtime.block_on(prepared.start_instance()).unwrap();
    let request = InvokeRequest {
        method: "POST".into(),
        path: "/".into(),
        ..Default::default()
    };

    c.bench_function("wasm/instantiate+run hello", |b| {
        b.iter(|| {
            let response = runtime.block_on(instance.invoke(request.clone())).unwrap();
            assert_eq!(&response.body[..], b"Hello from FAAS!\n");
        })
    });

    c.bench_function("wasm/prepare from precompiled cache", |b| {
        b.iter(|| {
            runtime
                .block_on(executor.prepare(&name, &config, &artifact))
                .unwrap()
        })
    });

    let mut group = c.benchmark_group("wasm/compile");
    group.sample_size(10);
    group.bench_function("precompile hello (cold cache)", |b| {
        b.iter_batched(
            || {
                let cache = tempfile::tempdir().unwrap();
                let executor =
                    WasmExecutor::new(cache.path().to_owned(), EngineOptions::default()).unwrap();
                (cache, executor)
            },
            |(_cache, executor)| {
                runtime
                    .block_on(executor.prepare(&name, &config, &artifact))
                    .unwrap()
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
