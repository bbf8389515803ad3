//! Functions over their life: update, delete, restart, crash in the middle of a deploy,
//! and the input errors on the way.

mod common;

use std::time::Duration;

use common::{call, chunked_request, deploy_ok, example, raw_request, server};
use serde_json::{Value, json};

fn hello_saying(text: &str) -> String {
    format!("#include <stdio.h>\nint main(void) {{ printf(\"{text}\"); return 0; }}\n")
}

fn cached_modules(dir: &std::path::Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("cache/wasm"))
        .unwrap()
        .flatten()
        .map(|e| (e.path(), e.metadata().unwrap().modified().unwrap()))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn functions_survive_a_restart_without_recompiling() {
    let mut server = server();
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
    deploy_ok(
        &server,
        "upper",
        "rust",
        &example("upper.rs"),
        json!({"timeout": 5, "custom": "kept"}),
    )
    .await;
    let before = cached_modules(server.data_dir());
    assert_eq!(before.len(), 2);

    server.restart();

    assert_eq!(
        call(&server, "hello", "").await,
        (200, "Hello from FAAS!\n".into())
    );
    assert_eq!(call(&server, "upper", "abc").await, (200, "ABC".into()));
    let view: Value = server
        .client()
        .get(server.endpoint("/functions/upper"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["config"]["timeout"], 5);
    assert_eq!(view["config"]["custom"], "kept");
    // The precompiled native code was loaded, not rebuilt.
    assert_eq!(cached_modules(server.data_dir()), before);
}

#[tokio::test]
async fn an_update_makes_a_new_version_and_delete_removes_the_function() {
    let server = server();
    let created = deploy_ok(&server, "greet", "c", &hello_saying("v1"), Value::Null).await;
    assert_eq!(created["version"], 1);
    let client = server.client();

    let updated: Value = client
        .put(server.endpoint("/functions/greet"))
        .json(&json!({"code": hello_saying("v2")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["version"], 2, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(call(&server, "greet", "").await.1, "v2");

    // Config alone: a new version with the same code.
    let updated: Value = client
        .put(server.endpoint("/functions/greet"))
        .json(&json!({"config": {"timeout": 2}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["version"], 3);
    assert_eq!(updated["config"]["timeout"], 2);
    assert_eq!(call(&server, "greet", "").await.1, "v2");

    // A failed build leaves the serving version alone.
    let response = client
        .put(server.endpoint("/functions/greet"))
        .json(&json!({"code": "not C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(call(&server, "greet", "").await.1, "v2");

    let code: Value = client
        .get(server.endpoint("/functions/greet/code"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code["code"], hello_saying("v2").as_str());

    let response = client
        .delete(server.endpoint("/functions/greet"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(call(&server, "greet", "").await.0, 404);
    let response = client
        .get(server.endpoint("/functions/greet"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = client
        .delete(server.endpoint("/functions/greet"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = client
        .put(server.endpoint("/functions/greet"))
        .json(&json!({"code": hello_saying("v9")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // The name is free again, and the blobs of the deleted function are gone.
    let recreated = deploy_ok(&server, "greet", "c", &hello_saying("again"), Value::Null).await;
    assert_eq!(recreated["version"], 1);
    assert_eq!(call(&server, "greet", "").await.1, "again");
    let blobs = std::fs::read_dir(server.data_dir().join("blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 2, "one source and one module");
}

#[tokio::test]
async fn a_kill_in_the_middle_of_a_deploy_leaves_the_old_or_the_new_version() {
    let mut server = server();
    deploy_ok(&server, "flip", "c", &hello_saying("old"), Value::Null).await;
    for round in 0..3 {
        let update = {
            let client = server.client();
            let url = server.endpoint("/functions/flip");
            let code = hello_saying(&format!("new{round}"));
            tokio::spawn(async move { client.put(url).json(&json!({"code": code})).send().await })
        };
        // Kill at different points of the build/commit sequence.
        tokio::time::sleep(Duration::from_millis(20 + 60 * round)).await;
        server.kill();
        let _ = update.await;
        server.restart();
        let (status, body) = call(&server, "flip", "").await;
        assert_eq!(status, 200);
        assert!(
            body == "old" || body.starts_with("new"),
            "round {round}: {body}"
        );
        let view: Value = server
            .client()
            .get(server.endpoint("/functions/flip"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let version = view["version"].as_u64().unwrap();
        let code: Value = server
            .client()
            .get(server.endpoint("/functions/flip/code"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            code["code"].as_str().unwrap().contains(&body),
            "version {version} serves {body}"
        );
    }
}

#[tokio::test]
async fn bad_names_languages_and_bodies_are_400s() {
    let server = server();
    let client = server.client();
    let long = "a".repeat(64);
    for name in ["../x", "", long.as_str(), "Hello", "a/b"] {
        let (status, body) = server
            .deploy(json!({"name": name, "lang": "c", "code": example("hello.c")}))
            .await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert_eq!(body["code"], "invalid_name");
        let response = client
            .post(server.endpoint("/deploy"))
            .query(&[("name", name), ("lang", "c")])
            .body(example("hello.c"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{name:?}");
    }
    let (status, body) = server
        .deploy(json!({"name": "x", "lang": "cobol", "code": "IDENTIFICATION DIVISION."}))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_lang")));
    let (status, body) = server.deploy(json!({"name": "x", "lang": "c"})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("missing_code")));
    let (status, body) = server
        .deploy(
            json!({"name": "x", "lang": "c", "code": "int main(){}", "config": {"memory": "lots"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_config"))
    );
    let response = client
        .post(server.endpoint("/functions"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");

    // Nothing was registered by any of these.
    let list: Value = client
        .get(server.endpoint("/functions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["functions"], json!([]));
}

#[tokio::test]
async fn oversized_bodies_and_unknown_routes_get_json_errors() {
    let server = server();
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
    // Announce a 7 MiB body and send none of it: the answer comes from the headers alone,
    // before anything is buffered.
    let raw = raw_request(
        &server.url,
        minifaas_test_support::ADMIN_KEY,
        "POST /invoke/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 7340032\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains(r#""ok":false"#), "{raw}");
    // A chunked body, with no length announced, is cut off at the limit too.
    let raw = chunked_request(
        &server.url,
        minifaas_test_support::ADMIN_KEY,
        "/invoke/hello",
        7 * 1024 * 1024,
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    // The server is fine afterwards.
    assert_eq!(call(&server, "hello", "").await.0, 200);

    let response = server
        .client()
        .get(server.endpoint("/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "route_not_found");
    let response = server
        .client()
        .delete(server.endpoint("/functions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let response = server
        .client()
        .get(server.endpoint("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_cli_deploys_invokes_lists_and_removes() {
    let server = server();
    let run = |args: &[&str]| common::cli(&server, args);
    let hello = minifaas_test_support::repo_root().join("examples/hello.c");
    let hello = hello.to_str().unwrap();
    let (ok, out, err) = run(&["deploy", hello]);
    assert!(ok, "{err}");
    assert!(out.contains("deployed hello (version 1"), "{out}");
    let (ok, out, _) = run(&["invoke", "hello"]);
    assert!(ok);
    assert_eq!(out, "Hello from FAAS!\n");
    // Deploying again updates.
    let (ok, out, _) = run(&["deploy", hello, "--timeout", "3", "--env", "A=1"]);
    assert!(ok);
    assert!(out.contains("version 2"), "{out}");
    let (ok, out, _) = run(&["ls"]);
    assert!(ok);
    assert!(out.contains("hello") && out.contains(" c "), "{out}");
    let (ok, out, _) = run(&["get", "hello"]);
    assert!(ok);
    let view: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["config"]["environment"]["A"], "1");
    let (ok, _, _) = run(&["rm", "hello"]);
    assert!(ok);
    let (ok, _, err) = run(&["invoke", "hello"]);
    assert!(!ok);
    assert!(err.contains("function not found"), "{err}");
}
