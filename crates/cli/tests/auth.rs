//! API keys, scopes and limits, as a client meets them: the auth matrix (every endpoint ×
//! no key, bad key, invoke, manage, admin), public functions, revocation, rate limits,
//! the body limit, the first start's admin key, and `--no-auth`.

mod common;

use common::{deploy_ok, example, server};
use minifaas_test_support::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

/// Creates a key with `scopes` (and a rate limit) through the API; returns its secret.
async fn create_key(server: &TestServer, scopes: &[&str], rate_limit: Option<f64>) -> String {
    let response = server
        .client()
        .post(server.endpoint("/keys"))
        .json(&json!({"scopes": scopes, "rate_limit": rate_limit, "name": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("key_"));
    body["key"].as_str().unwrap().to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    Nothing,
    Invoke,
    Manage,
    Admin,
}

struct Endpoint {
    method: Method,
    /// `{who}` is replaced by the caller's label, so creating calls do not collide.
    path: &'static str,
    body: Option<Value>,
    raw_body: Option<&'static str>,
    needs: Needs,
    /// Status when allowed.
    ok: u16,
}

fn endpoints() -> Vec<Endpoint> {
    let hello = example("hello.c");
    let e = |method: Method, path: &'static str, needs: Needs, ok: u16| Endpoint {
        method,
        path,
        body: None,
        raw_body: None,
        needs,
        ok,
    };
    vec![
        e(Method::GET, "/health", Needs::Nothing, 200),
        e(Method::POST, "/invoke?fn=hello", Needs::Invoke, 200),
        e(Method::POST, "/invoke/hello", Needs::Invoke, 200),
        e(Method::GET, "/invoke/hello/some/path", Needs::Invoke, 200),
        Endpoint {
            raw_body: Some("int main(void) { return 0; }"),
            ..e(
                Method::POST,
                "/deploy?name=seed-{who}&lang=c",
                Needs::Manage,
                201,
            )
        },
        e(Method::GET, "/function/hello", Needs::Manage, 200),
        e(Method::GET, "/functions", Needs::Manage, 200),
        Endpoint {
            body: Some(json!({"name": "made-by-{who}", "lang": "c", "code": hello})),
            ..e(Method::POST, "/functions", Needs::Manage, 201)
        },
        e(Method::GET, "/functions/hello", Needs::Manage, 200),
        e(Method::GET, "/functions/hello/code", Needs::Manage, 200),
        Endpoint {
            body: Some(json!({"config": {"timeout": 20}})),
            ..e(Method::PUT, "/functions/hello", Needs::Manage, 200)
        },
        e(
            Method::DELETE,
            "/functions/made-by-{who}",
            Needs::Manage,
            200,
        ),
        e(Method::GET, "/instances", Needs::Manage, 200),
        e(Method::DELETE, "/instances/999999", Needs::Manage, 404),
        e(Method::GET, "/keys", Needs::Admin, 200),
        Endpoint {
            body: Some(json!({"scopes": ["invoke"]})),
            ..e(Method::POST, "/keys", Needs::Admin, 201)
        },
        e(Method::DELETE, "/keys/key_000000000000", Needs::Admin, 404),
    ]
}

#[tokio::test]
async fn every_endpoint_answers_each_kind_of_caller_as_documented() {
    let server = server();
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
    let invoke = create_key(&server, &["invoke"], None).await;
    let manage = create_key(&server, &["manage"], None).await;
    let callers: [(&str, Option<&str>, &[Needs]); 5] = [
        ("none", None, &[Needs::Nothing]),
        (
            "bad",
            Some("mfk_not_a_key_of_this_server"),
            &[Needs::Nothing],
        ),
        ("invoke", Some(&invoke), &[Needs::Nothing, Needs::Invoke]),
        ("manage", Some(&manage), &[Needs::Nothing, Needs::Manage]),
        (
            "admin",
            Some(minifaas_test_support::ADMIN_KEY),
            &[Needs::Nothing, Needs::Invoke, Needs::Manage, Needs::Admin],
        ),
    ];
    let mut failures = Vec::new();
    for (who, key, allowed) in callers {
        let client = server.client_with_key(key.unwrap_or(""));
        for endpoint in endpoints() {
            let path = endpoint.path.replace("{who}", who);
            let mut request = client.request(endpoint.method.clone(), server.endpoint(&path));
            if let Some(body) = &endpoint.body {
                let text = body.to_string().replace("{who}", who);
                request = request
                    .header("content-type", "application/json")
                    .body(text);
            }
            if let Some(raw) = endpoint.raw_body {
                request = request.body(raw);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let expected = if allowed.contains(&endpoint.needs) {
                endpoint.ok
            } else if key.is_none() || who == "bad" {
                401
            } else {
                403
            };
            if status != expected {
                let body = response.text().await.unwrap_or_default();
                failures.push(format!(
                    "{who}: {} {path} → {status}, expected {expected}: {body}",
                    endpoint.method
                ));
            } else if status == 401 || status == 403 {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["ok"], false);
                assert!(body["error"].as_str().unwrap().len() > 10);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn public_functions_need_no_key_and_keys_never_reach_functions() {
    let server = server();
    let echo_auth = r#"#include <stdio.h>
#include <stdlib.h>
int main(void) {
    const char *auth = getenv("HTTP_AUTHORIZATION");
    printf("%s", auth ? auth : "none");
    return 0;
}"#;
    deploy_ok(&server, "private", "c", echo_auth, Value::Null).await;
    deploy_ok(&server, "hook", "c", echo_auth, json!({"public": true})).await;
    let anonymous = server.anonymous_client();

    // The platform key is stripped before a private function runs.
    let (status, body) = common::call(&server, "private", "").await;
    assert_eq!((status, body.as_str()), (200, "none"));

    // A public function runs for anyone and sees the caller's own Authorization.
    let response = anonymous
        .post(server.endpoint("/invoke/hook"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "none");
    let response = anonymous
        .post(server.endpoint("/invoke/hook"))
        .header("authorization", "Bearer webhook-signature")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Bearer webhook-signature");
    let seed = anonymous
        .post(server.endpoint("/invoke?fn=hook"))
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), 200);

    // Everything else about it still needs a key; unknown names do not leak.
    for path in ["/functions/hook", "/functions/hook/code"] {
        let response = anonymous.get(server.endpoint(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let unknown = anonymous
        .post(server.endpoint("/invoke/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let (status, _) = common::call(&server, "nothing-here", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn revoked_keys_stop_at_once_and_rate_limits_answer_429() {
    let server = server();
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
    let key = create_key(&server, &["invoke"], None).await;
    let client = server.client_with_key(&key);
    let url = server.endpoint("/invoke/hello");
    assert_eq!(client.post(&url).send().await.unwrap().status(), 200);

    let (_, list) = common::get_json(&server, "/keys").await;
    let keys = list["keys"].as_array().unwrap();
    assert!(
        keys.iter()
            .all(|k| k.get("key").is_none() && k.get("hash").is_none())
    );
    let listed = keys
        .iter()
        .find(|k| k["scopes"] == json!(["invoke"]))
        .unwrap();
    let id = listed["id"].as_str().unwrap();
    let revoked = server
        .client()
        .delete(server.endpoint(&format!("/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(client.post(&url).send().await.unwrap().status(), 401);

    // One request every ten seconds: the second in a row is refused with Retry-After.
    let slow = server.client_with_key(&create_key(&server, &["invoke"], Some(0.1)).await);
    assert_eq!(slow.post(&url).send().await.unwrap().status(), 200);
    let limited = slow.post(&url).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Other keys are not affected.
    assert_eq!(common::call(&server, "hello", "").await.0, 200);

    // A function's own rate limit applies to all callers together.
    deploy_ok(
        &server,
        "scarce",
        "c",
        &example("hello.c"),
        json!({"rate_limit": 0.1}),
    )
    .await;
    assert_eq!(common::call(&server, "scarce", "").await.0, 200);
    assert_eq!(common::call(&server, "scarce", "").await.0, 429);

    // Bad key requests are refused with what is wrong.
    let bad = server
        .client()
        .post(server.endpoint("/keys"))
        .json(&json!({"scopes": ["root"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = server
        .client()
        .post(server.endpoint("/keys"))
        .json(&json!({"scopes": ["invoke"], "rate_limit": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_body_past_the_limit_is_refused_and_the_server_keeps_serving() {
    let server = server();
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
    let admin = minifaas_test_support::ADMIN_KEY;
    // 7 MiB announced: 413 from the headers alone; then streamed without a length: 413.
    let head = "POST /invoke/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 7340032\r\n\r\n";
    let raw = common::raw_request(&server.url, admin, head).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains(r#""code":"too_large""#), "{raw}");
    let raw = common::chunked_request(&server.url, admin, "/invoke/hello", 7 << 20).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    // Without a key, an upload is refused before its body is read.
    let head = "POST /functions HTTP/1.1\r\nHost: x\r\nContent-Length: 7340032\r\n\r\n";
    let raw = common::raw_request(&server.url, "", head).await;
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    // Too many headers: 431 before any handler runs (hyper's limits: 100 headers).
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let raw = common::raw_request(&server.url, "", &head).await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw}");
    assert_eq!(common::call(&server, "hello", "").await.0, 200);
}

#[tokio::test]
async fn the_first_start_writes_an_admin_key_only_its_owner_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = TestServer::start_without_admin_key(env!("CARGO_BIN_EXE_minifaas"), &[]);
    let path = server.data_dir().join("admin.key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = server.generated_admin_key().unwrap();
    assert!(key.starts_with("mfk_"));
    let response = server
        .client_with_key(&key)
        .get(server.endpoint("/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["keys"][0]["scopes"], json!(["admin"]));
    // The secret is not in the database.
    let db = std::fs::read(server.data_dir().join("minifaas.db")).unwrap();
    assert!(!db.windows(key.len()).any(|w| w == key.as_bytes()));

    // The CLI finds the key in the data dir of a server on this machine.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_minifaas"))
        .args(["--url", &server.url, "keys", "ls"])
        .env_remove("MINIFAAS_KEY")
        .env("MINIFAAS_DATA", server.data_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("admin"));
}

#[tokio::test]
async fn no_auth_serves_locally_without_keys() {
    let server = TestServer::start_with(env!("CARGO_BIN_EXE_minifaas"), &["--no-auth"]);
    let response = server
        .anonymous_client()
        .get(server.endpoint("/functions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_minifaas"))
        .args(["serve", "--no-auth", "--listen", "0.0.0.0:0", "--data"])
        .arg(server.data_dir())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("loopback"));
}
