//! C, Rust, Go and prebuilt WASI modules through the main API.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{call, deploy_ok, example, server};
use serde_json::{Value, json};

#[tokio::test]
async fn a_rust_function_upper_cases_its_input() {
    let server = server();
    deploy_ok(&server, "upper", "rust", &example("upper.rs"), Value::Null).await;
    let (status, body) = call(&server, "upper", "shout this").await;
    assert_eq!((status, body.as_str()), (200, "SHOUT THIS"));
}

#[tokio::test]
async fn a_go_function_says_hello() {
    let server = server();
    deploy_ok(&server, "hello-go", "go", &example("hello.go"), Value::Null).await;
    let (status, body) = call(&server, "hello-go", "").await;
    assert_eq!((status, body.as_str()), (200, "Hello from Go!\n"));
}

#[tokio::test]
async fn a_prebuilt_module_is_served() {
    // A module built outside minifaas, as TinyGo, Zig or AssemblyScript users bring.
    let dir = tempfile::tempdir().unwrap();
    let wasm_path = dir.path().join("hello.wasm");
    let c_path = minifaas_test_support::repo_root().join("examples/hello.c");
    let status = std::process::Command::new("clang")
        .args(["--target=wasm32-wasi", "-O2", "-o"])
        .arg(&wasm_path)
        .arg(&c_path)
        .status()
        .expect("clang");
    assert!(status.success());
    let module = std::fs::read(&wasm_path).unwrap();

    let server = server();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&module);
    let (status, view) = server
        .deploy(json!({"name": "prebuilt", "lang": "wasm", "code_base64": encoded}))
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["wasm"], true);
    let (status, body) = call(&server, "prebuilt", "").await;
    assert_eq!((status, body.as_str()), (200, "Hello from FAAS!\n"));

    // The seed API takes the module as the raw body.
    let response = server
        .client()
        .post(server.endpoint("/deploy?name=prebuilt-raw&lang=wasm"))
        .body(module.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, body) = call(&server, "prebuilt-raw", "").await;
    assert_eq!(body, "Hello from FAAS!\n");

    // Its code comes back as base64.
    let code: Value = server
        .client()
        .get(server.endpoint("/functions/prebuilt/code"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code["code_base64"], encoded.as_str());

    // Not a module at all.
    let (status, body) = server
        .deploy(json!({"name": "junk", "lang": "wasm", "code_base64": "aGVsbG8="}))
        .await;
    assert_eq!(status, 400, "{body}");
    // A truncated module: valid magic, broken body.
    let truncated = base64::engine::general_purpose::STANDARD.encode(&module[..module.len() / 2]);
    let (status, body) = server
        .deploy(json!({"name": "junk", "lang": "wasm", "code_base64": truncated}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not valid WebAssembly")
    );
}

#[tokio::test]
async fn cgi_output_sets_status_and_headers() {
    let server = server();
    deploy_ok(&server, "cgi", "c", &example("cgi.c"), Value::Null).await;
    let response = server
        .client()
        .put(server.endpoint("/invoke/cgi/users/7?verbose=1"))
        .header("User-Agent", "tester")
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-powered-by"], "minifaas");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"method": "PUT", "path": "/users/7", "query": "verbose=1", "agent": "tester", "body_bytes": 5})
    );

    let response = server
        .client()
        .get(server.endpoint("/invoke/cgi/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await.unwrap(), "nothing at /missing\n");
}

#[tokio::test]
async fn environment_reaches_the_function_and_the_api_key_does_not() {
    let server = server();
    let code = r#"
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    const char *auth = getenv("HTTP_AUTHORIZATION");
    printf("%s|%s", getenv("GREETING"), auth ? auth : "none");
    return 0;
}"#;
    deploy_ok(
        &server,
        "env",
        "c",
        code,
        json!({"environment": {"GREETING": "bonjour"}}),
    )
    .await;
    let response = server
        .client()
        .post(server.endpoint("/invoke/env"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "bonjour|none");
}

#[tokio::test]
async fn a_compile_error_is_a_422_and_registers_nothing() {
    let server = server();
    let (status, body) = server
        .deploy(json!({"name": "broken", "lang": "c", "code": "int main( { return 0 }"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(body["code"], "build_failed");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("main.c:1:"), "{error}");
    assert!(
        !error.contains(server.data_dir().to_str().unwrap()),
        "{error}"
    );

    let response = server
        .client()
        .get(server.endpoint("/functions/broken"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let list: Value = server
        .client()
        .get(server.endpoint("/functions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["functions"], json!([]));

    let (status, body) = server
        .deploy(json!({"name": "broken-rs", "lang": "rust", "code": "fn main() { let x: u8 = \"no\"; }"}))
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("mismatched types"),
        "{body}"
    );
}

#[tokio::test]
async fn an_infinite_loop_times_out_while_the_server_keeps_answering() {
    let server = server();
    deploy_ok(
        &server,
        "spin",
        "c",
        "int main(void) { volatile unsigned long n = 0; for (;;) n++; }",
        json!({"timeout": 1}),
    )
    .await;
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;

    let started = Instant::now();
    let spin = {
        let client = server.client();
        let url = server.endpoint("/invoke/spin");
        tokio::spawn(async move { client.post(url).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile other requests are answered.
    for _ in 0..5 {
        let (status, body) = call(&server, "hello", "").await;
        assert_eq!((status, body.as_str()), (200, "Hello from FAAS!\n"));
    }
    assert!(!spin.is_finished(), "the loop should still be running");
    let response = spin.await.unwrap();
    assert_eq!(response.status(), 504);
    let elapsed = started.elapsed();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "timeout");
    // Promptly: the 1 s timeout plus scheduling slack, far from a hang.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test]
async fn the_memory_limit_caps_linear_memory() {
    let server = server();
    // Grows its heap 1 MiB at a time, chaining the blocks (so the compiler cannot elide
    // the allocations), and reports how far it got.
    let code = r#"
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    void **head = NULL;
    int mib = 0;
    while (mib < 256) {
        void **block = malloc(1024 * 1024);
        if (!block) break;
        *block = head;
        head = block;
        mib++;
    }
    int walked = 0;
    for (void **b = head; b; b = *b) walked++;
    printf("%d", walked);
    return 0;
}"#;
    deploy_ok(
        &server,
        "greedy-small",
        "c",
        code,
        json!({"memory": "16Mi"}),
    )
    .await;
    deploy_ok(&server, "greedy-large", "c", code, json!({"memory": 512})).await;
    let (status, small) = call(&server, "greedy-small", "").await;
    assert_eq!(status, 200);
    let small: i32 = small.parse().unwrap();
    assert!(
        (1..16).contains(&small),
        "got {small} MiB under a 16 MiB cap"
    );
    let (_, large) = call(&server, "greedy-large", "").await;
    assert_eq!(large, "256");
}

#[tokio::test]
async fn a_trap_is_a_502_and_the_next_call_works() {
    let server = server();
    let code = r#"
#include <stdio.h>
#include <string.h>
int main(void) {
    char buf[8] = {0};
    fread(buf, 1, 7, stdin);
    if (strcmp(buf, "crash") == 0) __builtin_trap();
    printf("fine");
    return 0;
}"#;
    deploy_ok(&server, "fragile", "c", code, Value::Null).await;
    let (status, body) = call(&server, "fragile", "crash").await;
    assert_eq!(status, 502, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "function_trap");
    assert_eq!(call(&server, "fragile", "ok").await, (200, "fine".into()));
}

#[tokio::test]
async fn fifty_concurrent_invocations_all_succeed() {
    let server = server();
    deploy_ok(&server, "upper", "rust", &example("upper.rs"), Value::Null).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = server.client();
        let url = server.endpoint("/invoke/upper");
        calls.spawn(async move {
            let response = client
                .post(url)
                .body(format!("call {i}"))
                .send()
                .await
                .unwrap();
            (
                i,
                response.status().as_u16(),
                response.text().await.unwrap(),
            )
        });
    }
    let mut seen = 0;
    while let Some(result) = calls.join_next().await {
        let (i, status, body) = result.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, format!("CALL {i}"));
        seen += 1;
    }
    assert_eq!(seen, 50);
}
