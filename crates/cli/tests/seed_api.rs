//! The seed API, as the earlier projects' clients used it.

mod common;

use common::{example, server};
use serde_json::Value;

#[tokio::test]
async fn the_seed_transcript_works() {
    let server = server();
    let client = server.client();

    let response = client
        .post(server.endpoint("/deploy?name=hello&lang=c"))
        .body(example("hello.c"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let deployed: Value = response.json().await.unwrap();
    assert_eq!(deployed["ok"], true);
    assert_eq!(deployed["name"], "hello");
    assert_eq!(deployed["lang"], "c");
    assert_eq!(deployed["wasm"], true);
    let id = deployed["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("hello_"), "{id}");

    for key in [id.as_str(), "hello"] {
        let response = client
            .post(server.endpoint(&format!("/invoke?fn={key}")))
            .body(r#"{"input":"test data"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"ok": true, "output": "Hello from FAAS!\n"})
        );
    }

    let response = client
        .get(server.endpoint("/function/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["ok"], true);
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["name"], "hello");
    assert_eq!(view["lang"], "c");
    assert_eq!(view["code"], example("hello.c").as_str());
    assert_eq!(view["size"], example("hello.c").len());

    // A taken name.
    let response = client
        .post(server.endpoint("/deploy?name=hello&lang=c"))
        .body(example("hello.c"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        error["error"],
        "function name 'hello' already exists, please choose another name"
    );
    assert_eq!(error["ok"], false);

    // An unknown function.
    let response = client
        .post(server.endpoint("/invoke?fn=nonexistent"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["ok"], false);
    assert_eq!(error["error"], "function not found");
    let response = client
        .get(server.endpoint("/function/nonexistent"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_seed_deploy_accepts_a_json_body() {
    let server = server();
    let response = server
        .client()
        .post(server.endpoint("/deploy"))
        .header("Content-Type", "application/json")
        .body(
            serde_json::json!({
                "name": "test",
                "lang": "c",
                "code": "#include <stdio.h>\nint main() { printf(\"Test\"); return 0; }"
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = server
        .client()
        .post(server.endpoint("/invoke?fn=test"))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["output"], "Test");
}
