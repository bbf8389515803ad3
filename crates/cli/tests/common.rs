//! Helpers shared by the integration tests (each test file is its own crate).
#![allow(dead_code)]

use minifaas_test_support::TestServer;
use serde_json::{Value, json};

pub fn server() -> TestServer {
    TestServer::start(env!("CARGO_BIN_EXE_minifaas"))
}

pub fn example(name: &str) -> String {
    std::fs::read_to_string(
        minifaas_test_support::repo_root()
            .join("examples")
            .join(name),
    )
    .expect("reading an example")
}

/// Deploys `code` as a function, asserting 201.
pub async fn deploy_ok(
    server: &TestServer,
    name: &str,
    lang: &str,
    code: &str,
    config: Value,
) -> Value {
    let (status, body) = server
        .deploy(json!({"name": name, "lang": lang, "code": code, "config": config}))
        .await;
    assert_eq!(status, 201, "deploying {name}: {body}");
    body
}

/// Invokes and returns (status, body text).
pub async fn call(server: &TestServer, name_and_path: &str, body: &str) -> (u16, String) {
    let response = server.invoke(name_and_path, body.to_owned()).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("reading the body"))
}
