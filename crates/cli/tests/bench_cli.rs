//! `minifaas bench` and the seed's `load-injector` form against a real server.

mod common;

use common::{deploy_ok, example, server};
use serde_json::Value;

#[tokio::test]
async fn bench_reports_requests_errors_and_percentiles() {
    let server = server();
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;

    let (ok, out, _) = common::cli(
        &server,
        &["bench", "hello", "-n", "200", "-c", "4", "--json"],
    );
    assert!(ok, "{out}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["requests"], 200);
    assert_eq!(report["errors"], 0);
    for key in ["rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"] {
        assert!(report[key].as_f64().unwrap() > 0.0, "{key}: {report}");
    }
    assert!(report["p50_ms"].as_f64() <= report["p99_ms"].as_f64());

    // Open loop: the rate sets how many requests a duration sends.
    let (ok, out, _) = common::cli(
        &server,
        &[
            "bench", "hello", "--rate", "100", "-d", "1s", "-c", "2", "--json",
        ],
    );
    assert!(ok, "{out}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    let sent = report["requests"].as_u64().unwrap();
    assert!((95..=101).contains(&sent), "{report}");

    // Errors are counted by status.
    let (ok, out, _) = common::cli(
        &server,
        &["bench", "missing", "-n", "5", "-c", "1", "--json"],
    );
    assert!(ok);
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["errors"], 5);
    assert_eq!(report["errors_by_status"]["404"], 5);

    // The seed's form.
    let (ok, out, _) = common::cli(&server, &["load-injector", "hello", "3", "10"]);
    assert!(ok);
    assert!(out.contains("Total requests: 30"), "{out}");
    assert!(out.contains("Successful: 30 (100.0%)"), "{out}");
}
