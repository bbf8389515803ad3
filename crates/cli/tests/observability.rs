//! What users see of their functions: invocation records (successful, failed, cold),
//! logs by function and by invocation (also followed live), stats percentiles, and the
//! Prometheus metrics.

mod common;

use std::time::Duration;

use common::{deploy_ok, example, get_json as get, server};
use minifaas_test_support::TestServer;
use serde_json::{Value, json};

/// The talker, scaling to zero a moment after each call (so a call can be cold).
async fn deploy_ephemeral_talker(server: &TestServer) {
    deploy_ok(
        server,
        "talker",
        "python",
        TALKER,
        json!({"idle_ttl": 0.2, "min_instances": 0}),
    )
    .await;
}

async fn wait_for_no_instances(server: &TestServer, function: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = get(server, "/instances").await;
        let live = list["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["function"] == function);
        if !live {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not scale to zero"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Invokes; returns (status, invocation id, body).
async fn invoke(server: &TestServer, name: &str, body: &str) -> (u16, String, String) {
    let response = server.invoke(name, body.to_owned()).await;
    let status = response.status().as_u16();
    let id = response.headers()["x-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, id, response.text().await.unwrap())
}

const TALKER: &str = r#"
import time
def handle(request):
    text = request.get_text()
    print("working on", text)
    if text == "fail":
        print("about to fail")
        raise RuntimeError("asked to fail")
    if text.startswith("sleep "):
        time.sleep(float(text.split()[1]))
    return "done " + text
"#;

#[tokio::test]
async fn records_of_successful_failed_and_cold_calls() {
    let server = server();
    deploy_ephemeral_talker(&server).await;
    // Once it has scaled to zero, a call finds no instance and starts one: cold.
    wait_for_no_instances(&server, "talker").await;
    let (status, first, _) = invoke(&server, "talker", "first").await;
    assert_eq!(status, 200);
    let (_, second, _) = invoke(&server, "talker", "second").await;
    assert_ne!(first, second);
    let (status, record) = get(&server, &format!("/invocations/{first}")).await;
    assert_eq!(status, 200, "{record}");
    let record = &record["invocation"];
    assert_eq!(record["function"], "talker");
    assert_eq!(record["version"], 1);
    assert_eq!(record["status"], 200);
    assert_eq!(record["cold"], true);
    assert!(record["init_ms"].as_f64().unwrap() >= 0.0);
    assert!(record["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(record["wait_ms"].as_f64().unwrap() >= record["init_ms"].as_f64().unwrap());
    assert!(record["instance"].as_u64().is_some());
    assert!(record["started_at"].as_i64().unwrap() > 1_600_000_000_000);
    let (_, warm) = get(&server, &format!("/invocations/{second}")).await;
    assert_eq!(warm["invocation"]["cold"], false);
    assert!(warm["invocation"].get("init_ms").is_none());

    let (status, ok_id, body) = invoke(&server, "talker", "hello").await;
    assert_eq!((status, body.as_str()), (200, "done hello"));
    let (status, failed_id, _) = invoke(&server, "talker", "fail").await;
    assert_eq!(status, 502);
    let (_, failed) = get(&server, &format!("/invocations/{failed_id}")).await;
    let failed = &failed["invocation"];
    assert_eq!(failed["status"], 502);
    assert_eq!(failed["error"], "function_error");
    let logs = failed["logs"].as_str().unwrap();
    assert!(logs.contains("working on fail"), "{logs}");
    assert!(logs.contains("about to fail"), "{logs}");
    assert!(!logs.contains("hello"), "{logs}");
    let (_, ok) = get(&server, &format!("/invocations/{ok_id}")).await;
    assert_eq!(ok["invocation"]["logs"], "working on hello\n");

    // Listing, newest first, and by status class.
    let (_, list) = get(&server, "/functions/talker/invocations").await;
    let ids: Vec<&str> = list["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[..2], [failed_id.as_str(), ok_id.as_str()]);
    assert_eq!(ids.len(), 4);
    let (_, errors) = get(&server, "/functions/talker/invocations?status=5").await;
    assert_eq!(errors["invocations"].as_array().unwrap().len(), 1);
    let (status, _) = get(&server, "/invocations/inv_nothing").await;
    assert_eq!(status, 404);

    // Records survive a restart (written to the database in the background).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut server = server;
    server.restart();
    let (status, again) = get(&server, &format!("/invocations/{failed_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(again["invocation"]["error"], "function_error");
}

#[tokio::test]
async fn logs_by_function_and_followed_live() {
    let server = server();
    deploy_ok(&server, "talker", "python", TALKER, Value::Null).await;
    let (_, id, _) = invoke(&server, "talker", "one").await;
    let (_, logs) = get(&server, "/functions/talker/logs").await;
    let lines = logs["lines"].as_array().unwrap();
    let line = lines
        .iter()
        .find(|l| l["line"] == "working on one")
        .unwrap();
    assert_eq!(line["invocation"], id);
    assert!(line["at"].as_i64().unwrap() > 0);

    // Follow: the stream shows a line printed after it started.
    let mut stream = server
        .client()
        .get(server.endpoint("/functions/talker/logs?follow=1&limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let (_, live_id, _) = invoke(&server, "talker", "live").await;
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("working on live") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{seen}");
    assert!(seen.contains(&live_id), "{seen}");

    // The CLI prints the same lines.
    let (_, printed, _) = common::cli(&server, &["logs", "talker"]);
    assert!(printed.contains("working on live"), "{printed}");
    assert!(printed.contains(&live_id), "{printed}");
}

#[tokio::test]
async fn stats_percentiles_follow_known_durations() {
    let server = server();
    deploy_ok(&server, "talker", "python", TALKER, Value::Null).await;
    for _ in 0..10 {
        assert_eq!(invoke(&server, "talker", "sleep 0.005").await.0, 200);
    }
    for _ in 0..10 {
        assert_eq!(invoke(&server, "talker", "sleep 0.2").await.0, 200);
    }
    assert_eq!(invoke(&server, "talker", "fail").await.0, 502);
    let (status, stats) = get(&server, "/stats/functions/talker").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["invocations"], 21);
    assert_eq!(stats["errors"], 1);
    let p50 = stats["p50_ms"].as_f64().unwrap();
    let p95 = stats["p95_ms"].as_f64().unwrap();
    let p99 = stats["p99_ms"].as_f64().unwrap();
    assert!(p50 < 150.0, "{stats}");
    assert!(p95 >= 199.0 && p99 >= 199.0, "{stats}");
    assert!(stats["mean_ms"].as_f64().unwrap() >= 90.0, "{stats}");
    assert!(stats["last_invocation"].as_i64().is_some());
    let (_, platform) = get(&server, "/stats").await;
    assert_eq!(platform["functions"], 1);
    assert_eq!(platform["invocations"], 21);
    assert_eq!(platform["errors"], 1);
    assert!(platform["uptime_seconds"].as_f64().unwrap() > 0.0);
    let (status, _) = get(&server, "/stats/functions/nobody").await;
    assert_eq!(status, 404);
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn prometheus_metrics_are_named_and_increase() {
    let server = server();
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
    deploy_ephemeral_talker(&server).await;
    invoke(&server, "hello", "").await;
    wait_for_no_instances(&server, "talker").await;
    invoke(&server, "talker", "").await;
    let scrape = || async {
        let response = server
            .client()
            .get(server.endpoint("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    let before = scrape().await;
    for name in [
        "minifaas_invocations_total{function=\"hello\",status=\"200\"}",
        "minifaas_invocation_duration_seconds_bucket{",
        "minifaas_cold_start_seconds_count{function=\"talker\"} 1",
        "minifaas_queue_wait_seconds_sum{function=\"hello\"}",
        "minifaas_instances{",
        "minifaas_in_flight",
    ] {
        assert!(before.contains(name), "{name} missing from:\n{before}");
    }
    invoke(&server, "hello", "").await;
    invoke(&server, "hello", "").await;
    let after = scrape().await;
    let count = "minifaas_invocations_total{function=\"hello\",status=\"200\"}";
    assert_eq!(metric(&after, count), metric(&before, count) + 2.0);
    let durations = "minifaas_invocation_duration_seconds_count{function=\"hello\"}";
    assert_eq!(metric(&after, durations), metric(&before, durations) + 2.0);
    // An invoke key may not read metrics.
    let (status, _) = {
        let response = server
            .client_with_key("mfk_not_a_key_of_this_server")
            .get(server.endpoint("/metrics"))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 401);
}
