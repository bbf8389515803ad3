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

/// Runs the `minifaas` CLI against `server` with the admin key; returns (success,
/// stdout, stderr).
pub fn cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_minifaas"))
        .args(["--url", &server.url])
        .env("MINIFAAS_KEY", minifaas_test_support::ADMIN_KEY)
        .args(args)
        .output()
        .expect("running the minifaas CLI");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
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

/// `GET path` with the admin key; returns (status, JSON body or null).
pub async fn get_json(server: &TestServer, path: &str) -> (u16, Value) {
    let response = server
        .client()
        .get(server.endpoint(path))
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Invokes and returns (status, body text).
pub async fn call(server: &TestServer, name_and_path: &str, body: &str) -> (u16, String) {
    let response = server.invoke(name_and_path, body.to_owned()).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("reading the body"))
}

/// Sends `request` on a fresh connection and returns what the server answers.
pub async fn raw_request(url: &str, key: &str, request: &str) -> String {
    let request = with_key(request, key);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the server answers without waiting for the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// Streams a chunked body of `total` bytes (ignoring write errors once the server has
/// answered) and returns the answer.
pub async fn chunked_request(url: &str, key: &str, path: &str, total: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = with_key(
        &format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
        key,
    );
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 65536];
        for _ in 0..total / chunk.len() {
            writer
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            writer.write_all(&chunk).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await
    });
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), reader.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    writing.abort();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// `request` with an `Authorization: Bearer key` line after its request line (if `key`).
fn with_key(request: &str, key: &str) -> String {
    if key.is_empty() {
        return request.to_owned();
    }
    request.replacen("\r\n", &format!("\r\nAuthorization: Bearer {key}\r\n"), 1)
}
