//! Balancing strategies, admission, autoscaling and the instances API, against the real
//! server with real Python workers (each answers with its own pid).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{deploy_ok, server};
use minifaas_test_support::TestServer;
use serde_json::{Value, json};

/// Sleeps for the number of seconds in the body (default 0), answers which worker it is.
/// (A token, not `os.getpid()`: a sandboxed worker sees its own PID namespace, where pids
/// say nothing to the server.)
const PID_SLEEPER: &str = r#"
import os, time
WORKER = os.urandom(8).hex()
def handle(request):
    seconds = float(request.get_text() or 0)
    time.sleep(seconds)
    return {"worker": WORKER}
"#;

async fn worker_of_call(server: &TestServer, name: &str, body: &str) -> String {
    let response = server.invoke(name, body.to_owned()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["worker"].as_str().unwrap().to_owned()
}

async fn instances(server: &TestServer, function: &str) -> Vec<Value> {
    let list: Value = server
        .client()
        .get(server.endpoint("/instances"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["function"] == function)
        .cloned()
        .collect()
}

async fn wait_for_instances(server: &TestServer, function: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = instances(server, function).await;
        let ready = list.iter().filter(|i| i["state"] != "starting").count();
        if ready == count && list.len() == count {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{function}: wanted {count} instances, have {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counts(workers: &[String]) -> Vec<usize> {
    let mut by_worker: HashMap<&str, usize> = HashMap::new();
    for worker in workers {
        *by_worker.entry(worker).or_default() += 1;
    }
    let mut counts: Vec<usize> = by_worker.into_values().collect();
    counts.sort();
    counts
}

#[tokio::test]
async fn round_robin_spreads_and_fifo_packs() {
    let server = server();
    deploy_ok(
        &server,
        "rr",
        "python",
        PID_SLEEPER,
        json!({"strategy": "round-robin", "min_instances": 3}),
    )
    .await;
    deploy_ok(
        &server,
        "packed",
        "python",
        PID_SLEEPER,
        json!({"strategy": "fifo", "min_instances": 3}),
    )
    .await;
    wait_for_instances(&server, "rr", 3).await;
    wait_for_instances(&server, "packed", 3).await;

    let mut pids = Vec::new();
    for _ in 0..6 {
        pids.push(worker_of_call(&server, "rr", "").await);
    }
    assert_eq!(counts(&pids), [2, 2, 2], "{pids:?}");

    let mut pids = Vec::new();
    for _ in 0..6 {
        pids.push(worker_of_call(&server, "packed", "").await);
    }
    assert_eq!(counts(&pids), [6], "{pids:?}");

    // The instances API shows them, with their pids and samples.
    let list = instances(&server, "rr").await;
    assert_eq!(list.len(), 3);
    for instance in &list {
        assert!(instance["pid"].as_u64().unwrap() > 0);
        assert_eq!(instance["state"], "idle");
        assert_eq!(instance["version"], 1);
        for key in ["cpu", "memory", "io"] {
            assert!(instance[key].is_number(), "{key}: {instance}");
        }
        assert!(instance["started_at"].as_i64().unwrap() > 0);
    }
    let view: Value = server
        .client()
        .get(server.endpoint("/functions/rr"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["instances"], 3);
}

#[tokio::test]
async fn the_weighted_strategy_avoids_the_busy_instance() {
    let server = server();
    // Two workers; one is kept busy burning CPU while sequential calls arrive.
    let code = r#"
import os, time
WORKER = os.urandom(8).hex()
def handle(request):
    if request.get_text() == "burn":
        end = time.time() + 3
        while time.time() < end:
            pass
    return {"worker": WORKER}
"#;
    deploy_ok(
        &server,
        "weighted",
        "python",
        code,
        json!({"strategy": "weighted", "min_instances": 2, "concurrency": 2}),
    )
    .await;
    wait_for_instances(&server, "weighted", 2).await;
    let burner = {
        let client = server.client();
        let url = server.endpoint("/invoke/weighted");
        tokio::spawn(async move {
            client
                .post(url)
                .body("burn")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    // Let the sampler see the CPU use (samples every 500 ms, EMA-smoothed).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let busy = instances(&server, "weighted").await;
    let hot = busy
        .iter()
        .max_by(|a, b| a["cpu"].as_f64().partial_cmp(&b["cpu"].as_f64()).unwrap())
        .unwrap();
    assert!(hot["cpu"].as_f64().unwrap() > 0.3, "{busy:?}");
    let cool = busy.iter().find(|i| i["id"] != hot["id"]).unwrap();
    assert!(cool["cpu"].as_f64().unwrap() < hot["cpu"].as_f64().unwrap());
    // The burning instance has a free slot (concurrency 2) but the higher score: the
    // calls all go to the other worker, never to the burner's.
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(worker_of_call(&server, "weighted", "").await);
    }
    let burner_worker = burner.await.unwrap()["worker"].as_str().unwrap().to_owned();
    assert!(workers.iter().all(|w| *w != burner_worker), "{workers:?}");
    assert!(workers.iter().all(|w| *w == workers[0]), "{workers:?}");
}

#[tokio::test]
async fn eight_concurrent_calls_on_four_instances_take_two_rounds() {
    let server = server();
    deploy_ok(
        &server,
        "slow",
        "python",
        PID_SLEEPER,
        json!({"max_instances": 4, "min_instances": 4}),
    )
    .await;
    wait_for_instances(&server, "slow", 4).await;
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = server.client();
        let url = server.endpoint("/invoke/slow");
        calls.spawn(async move {
            client
                .post(url)
                .body("0.4")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let elapsed = started.elapsed();
    // Two rounds of 0.4 s: not one (all eight at once), not eight (one at a time).
    assert!(elapsed >= Duration::from_millis(790), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1600), "{elapsed:?}");
    assert_eq!(
        instances(&server, "slow").await.len(),
        4,
        "never more than max_instances"
    );
}

#[tokio::test]
async fn a_full_queue_sheds_load_with_429_and_retry_after() {
    let server = server();
    deploy_ok(
        &server,
        "narrow",
        "python",
        PID_SLEEPER,
        json!({"max_instances": 1, "min_instances": 1, "max_queue": 2}),
    )
    .await;
    wait_for_instances(&server, "narrow", 1).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..5 {
        let client = server.client();
        let url = server.endpoint("/invoke/narrow");
        calls.spawn(async move {
            // Stagger so the first is running and two are queued before the rest arrive.
            tokio::time::sleep(Duration::from_millis(50 * i)).await;
            let response = client.post(url).body("0.6").send().await.unwrap();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, retry, body)
        });
    }
    let mut statuses = Vec::new();
    while let Some(result) = calls.join_next().await {
        let (status, retry, body) = result.unwrap();
        if status == 429 {
            assert!(retry.is_some(), "429 without Retry-After");
            assert_eq!(body["code"], "queue_full");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn idle_instances_scale_to_zero_and_calls_in_flight_finish() {
    let server = server();
    deploy_ok(
        &server,
        "ephemeral",
        "python",
        PID_SLEEPER,
        json!({"idle_ttl": 1, "min_instances": 0}),
    )
    .await;
    // A call running longer than idle_ttl completes.
    let (status, _) = {
        let response = server.invoke("ephemeral", "1.6").await;
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 200);
    assert_eq!(instances(&server, "ephemeral").await.len(), 1);
    // Then, idle for longer than idle_ttl, it is stopped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !instances(&server, "ephemeral").await.is_empty() {
        assert!(Instant::now() < deadline, "did not scale to zero");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the next call starts one again (a cold start).
    worker_of_call(&server, "ephemeral", "").await;
    assert_eq!(instances(&server, "ephemeral").await.len(), 1);
}

#[tokio::test]
async fn deleting_an_instance_drains_it() {
    let server = server();
    deploy_ok(
        &server,
        "drained",
        "python",
        PID_SLEEPER,
        json!({"min_instances": 1, "max_instances": 2}),
    )
    .await;
    let list = wait_for_instances(&server, "drained", 1).await;
    let id = list[0]["id"].as_u64().unwrap();
    let pid = list[0]["pid"].as_u64().unwrap();
    let running = {
        let client = server.client();
        let url = server.endpoint("/invoke/drained");
        tokio::spawn(async move {
            client
                .post(url)
                .body("0.8")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    // Delete it only once the call runs on it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !instances(&server, "drained")
        .await
        .iter()
        .any(|i| i["id"] == id && i["in_flight"].as_u64() == Some(1))
    {
        assert!(Instant::now() < deadline, "the call never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = server
        .client()
        .delete(server.endpoint(&format!("/instances/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instance"]["state"], "draining");
    // New calls go elsewhere while it drains; the call in flight (on the only instance
    // there was) completes on it.
    let other = worker_of_call(&server, "drained", "").await;
    let drained_worker = running.await.unwrap()["worker"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(other, drained_worker);
    // Then it is gone, and its process too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while instances(&server, "drained")
        .await
        .iter()
        .any(|i| i["id"] == id)
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    );
    let response = server
        .client()
        .delete(server.endpoint("/instances/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn wasi_functions_go_through_the_same_admission() {
    let server = server();
    let code = "#include <stdio.h>\n#include <unistd.h>\nint main(void) { sleep(1); printf(\"done\"); return 0; }\n";
    deploy_ok(
        &server,
        "wasi-narrow",
        "c",
        code,
        json!({"max_instances": 1, "concurrency": 1, "max_queue": 0}),
    )
    .await;
    // The pre-warmed instance must be up: while it starts, a call finds no slot and
    // no queue and is shed too.
    wait_for_instances(&server, "wasi-narrow", 1).await;
    let first = {
        let client = server.client();
        let url = server.endpoint("/invoke/wasi-narrow");
        tokio::spawn(async move { client.post(url).send().await.unwrap().status().as_u16() })
    };
    // Once the first call holds the only slot, the second finds no room and no queue.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !instances(&server, "wasi-narrow")
        .await
        .iter()
        .any(|i| i["in_flight"].as_u64() == Some(1))
    {
        if first.is_finished() {
            let status = first.await.unwrap();
            panic!("the first call ended before it was seen running: {status}");
        }
        assert!(Instant::now() < deadline, "the first call never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = server.invoke("wasi-narrow", "").await;
    assert_eq!(second.status(), 429);
    assert_eq!(first.await.unwrap(), 200);
}
