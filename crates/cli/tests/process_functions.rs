//! Python, JavaScript and PHP functions in warm workers, script mode, and HTML.

mod common;

use std::time::{Duration, Instant};

use common::{call, deploy_ok, example, server};
use serde_json::{Value, json};

async fn call_json(
    server: &minifaas_test_support::TestServer,
    name: &str,
    body: Value,
) -> (u16, Value) {
    let response = server.invoke(name, body.to_string()).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_python_seed_examples_work() {
    let server = server();
    // No lang: Python, as in the seed.
    let (status, view) = server
        .deploy(json!({
            "name": "hello-world",
            "code": example("hello.py"),
            "config": {"execution_mode": "process", "timeout": 30, "memory": "128Mi"}
        }))
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["lang"], "python");
    assert_eq!(view["config"]["execution_mode"], "process");
    let (status, body) = call_json(
        &server,
        "hello-world",
        json!({"name": "AITest", "test": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"message": "Hello, World!", "data": {"name": "AITest", "test": true}})
    );

    deploy_ok(&server, "math", "python", &example("math.py"), Value::Null).await;
    let (_, body) = call_json(
        &server,
        "math",
        json!({"a": 6, "b": 7, "operation": "multiply"}),
    )
    .await;
    assert_eq!(
        body,
        json!({"result": 42, "operation": "multiply", "inputs": {"a": 6, "b": 7}})
    );
    let (_, body) = call_json(&server, "math", json!({"a": 1, "b": 2, "operation": "pow"})).await;
    assert_eq!(body, json!({"error": "Unsupported operation"}));

    // The seed API reaches Python functions too.
    let response = server
        .client()
        .post(server.endpoint("/deploy?name=greet&lang=python"))
        .body(example("greet.py"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let answer: Value = server
        .client()
        .post(server.endpoint("/invoke?fn=greet"))
        .body("Ada")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"ok": true, "output": "Hello, Ada!\n"}));
}

#[tokio::test]
async fn the_request_object_and_tuple_returns() {
    let server = server();
    let code = r#"
def handle(request):
    if request.path == "/created":
        return ("made it", 201, {"X-Id": "7"})
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query_params,
        "header": request.get_header("X-Test"),
        "headers_has_auth": "authorization" in request.headers,
        "text": request.get_text(),
        "json": request.get_json() if request.get_header("content-type") == "application/json" else None,
        "body_type": type(request.body).__name__,
    }
"#;
    deploy_ok(&server, "inspect", "python", code, Value::Null).await;
    let response = server
        .client()
        .put(server.endpoint("/invoke/inspect/a/b?x=1&y=2"))
        .header("X-Test", "yes")
        .body("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"method": "PUT", "path": "/a/b", "query": {"x": "1", "y": "2"}, "header": "yes",
               "headers_has_auth": false, "text": "plain", "json": null, "body_type": "bytes"})
    );

    let response = server
        .client()
        .get(server.endpoint("/invoke/inspect/created"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-id"], "7");
    assert_eq!(response.text().await.unwrap(), "made it");
}

#[tokio::test]
async fn print_does_not_corrupt_responses_and_state_stays_warm() {
    let server = server();
    let code = r#"
import sys
calls = 0
def handle(request):
    global calls
    calls += 1
    print("\x00\x00\x00\x10{\"status\": 500}", "noise " * 1000)
    sys.stdout.buffer.write(b"\xff\xfe raw bytes\n")
    print("to stderr", file=sys.stderr)
    return {"calls": calls}
"#;
    deploy_ok(
        &server,
        "chatty",
        "python",
        code,
        json!({"max_instances": 1}),
    )
    .await;
    for expected in 1..=3 {
        let (status, body) = call_json(&server, "chatty", Value::Null).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"calls": expected}));
    }
}

#[tokio::test]
async fn node_and_php_handlers() {
    let server = server();
    deploy_ok(
        &server,
        "hello-js",
        "javascript",
        &example("hello.js"),
        Value::Null,
    )
    .await;
    let (status, body) = call_json(&server, "hello-js", json!({"name": "Node"})).await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Hello, Node!", "method": "POST"}))
    );

    let code = r#"
let calls = 0;
exports.handle = async (request) => {
  calls += 1;
  console.log('log line', calls);
  if (request.path === '/teapot') return { statusCode: 418, headers: { 'X-Kind': 'teapot' }, body: 'short and stout' };
  return { calls, query: request.query_params, header: request.get_header('x-test') };
};
"#;
    deploy_ok(&server, "state-js", "js", code, json!({"max_instances": 1})).await;
    let response = server
        .client()
        .get(server.endpoint("/invoke/state-js/x?q=1"))
        .header("X-Test", "t")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"calls": 1, "query": {"q": "1"}, "header": "t"})
    );
    let response = server
        .client()
        .get(server.endpoint("/invoke/state-js/teapot"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 418);
    assert_eq!(response.headers()["x-kind"], "teapot");
    assert_eq!(response.text().await.unwrap(), "short and stout");

    deploy_ok(
        &server,
        "hello-php",
        "php",
        &example("hello.php"),
        Value::Null,
    )
    .await;
    let (status, body) = call_json(&server, "hello-php", json!({"name": "PHP"})).await;
    assert_eq!(
        (status, body),
        (200, json!({"message": "Hello, PHP!", "method": "POST"}))
    );
    let code = r#"<?php
function handle($request) {
    echo "this goes to the log\n";
    return response("gone", 410, ["X-Why" => "removed"]);
}
"#;
    deploy_ok(&server, "gone-php", "php", code, Value::Null).await;
    let response = server.invoke("gone-php", "").await;
    assert_eq!(response.status(), 410);
    assert_eq!(response.headers()["x-why"], "removed");
    assert_eq!(response.text().await.unwrap(), "gone");
}

#[tokio::test]
async fn script_mode_html_and_environment() {
    let server = server();
    deploy_ok(&server, "add", "js", &example("add.js"), Value::Null).await;
    assert_eq!(
        call(&server, "add", r#"{"a": 2, "b": 3}"#).await,
        (200, "{\"sum\":5}\n".into())
    );
    let code = "<?php echo 'script ', getenv('REQUEST_METHOD'), ' ', stream_get_contents(STDIN);";
    deploy_ok(&server, "php-script", "php", code, Value::Null).await;
    assert_eq!(
        call(&server, "php-script", "in").await,
        (200, "script POST in".into())
    );

    deploy_ok(&server, "page", "html", &example("index.html"), Value::Null).await;
    let response = server
        .client()
        .get(server.endpoint("/invoke/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), example("index.html"));

    // Node workers are generic ones specialized on first use: they still get the
    // function's own environment and directory.
    let code = "module.exports = async () => [process.env.GREETING, process.env.HOME, process.cwd().endsWith(require('path').basename(__dirname))];\n";
    for name in ["env-js-1", "env-js-2", "env-js-3"] {
        deploy_ok(
            &server,
            name,
            "js",
            code,
            json!({"environment": {"GREETING": name}}),
        )
        .await;
        let (status, body) = call_json(&server, name, Value::Null).await;
        assert_eq!((status, body), (200, json!([name, "/tmp", true])));
    }
    let code = "import os\ndef handle(request):\n    return os.environ.get('GREETING', 'unset')\n";
    deploy_ok(
        &server,
        "env-py",
        "python",
        code,
        json!({"environment": {"GREETING": "salut"}}),
    )
    .await;
    assert_eq!(call(&server, "env-py", "").await, (200, "salut".into()));
}

#[tokio::test]
async fn dependencies_install_into_the_function_and_failures_are_422() {
    let server = server();
    let code = "import six\ndef handle(request):\n    return {'six': six.__version__, 'where': six.__file__}\n";
    let view = deploy_ok(
        &server,
        "with-six",
        "python",
        code,
        json!({"dependencies": ["six==1.16.0"]}),
    )
    .await;
    assert_eq!(view["config"]["dependencies"], json!(["six==1.16.0"]));
    let (status, body) = call_json(&server, "with-six", Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["six"], "1.16.0");
    // Installed in the function's own directory, not globally.
    assert!(
        body["where"].as_str().unwrap().contains("/deps/six.py"),
        "{body}"
    );

    let (status, body) = server
        .deploy(
            json!({"name": "no-such-dep", "code": "def handle(r):\n    return 1\n",
                       "config": {"dependencies": ["minifaas-surely-no-such-package-4242"]}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("dependency install failed"),
        "{body}"
    );
    let (status, _) = server
        .deploy(
            json!({"name": "opt-dep", "code": "def handle(r):\n    return 1\n",
                       "config": {"dependencies": ["--index-url=http://example.invalid"]}}),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn syntax_and_load_errors_are_422_at_deploy() {
    let server = server();
    for (lang, code, expect) in [
        (
            "python",
            "def handle(request)\n    return 1\n",
            "SyntaxError",
        ),
        (
            "javascript",
            "module.exports = async (r) => {{ ;\n",
            "SyntaxError",
        ),
        (
            "php",
            "<?php function handle($r) { return 1 }\n",
            "syntax error",
        ),
        (
            "python",
            "import no_such_module_here\ndef handle(r):\n    return 1\n",
            "ModuleNotFoundError",
        ),
    ] {
        let (status, body) = server
            .deploy(json!({"name": "broken", "lang": lang, "code": code}))
            .await;
        assert_eq!(status, 422, "{lang}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(expect),
            "{lang}: {body}"
        );
    }
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
}

fn zombies_of(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == pid.to_string() {
            found.push(stat);
        }
    }
    found
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

#[tokio::test]
async fn crashes_and_timeouts_are_answered_and_the_next_call_works() {
    let mut server = server();
    let code = r#"
import os, time
def handle(request):
    what = request.get_text()
    if what == "crash":
        os._exit(3)
    if what == "loop":
        while True:
            pass
    if what == "raise":
        raise ValueError("bad input")
    return "fine"
"#;
    deploy_ok(
        &server,
        "fragile",
        "python",
        code,
        json!({"timeout": 1, "max_instances": 1}),
    )
    .await;
    let (status, body) = call(&server, "fragile", "crash").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("function_crashed"), "{body}");
    assert_eq!(call(&server, "fragile", "ok").await, (200, "fine".into()));

    let started = Instant::now();
    let (status, body) = call(&server, "fragile", "loop").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(
        elapsed < Duration::from_millis(1900),
        "answered after {elapsed:?}"
    );
    assert_eq!(call(&server, "fragile", "ok").await, (200, "fine".into()));

    let (status, body) = call(&server, "fragile", "raise").await;
    assert_eq!(status, 502);
    assert!(body.contains("ValueError: bad input"), "{body}");
    assert_eq!(call(&server, "fragile", "ok").await, (200, "fine".into()));

    // Every dead worker was reaped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(zombies_of(server.pid()), Vec::<String>::new());

    // Stopping the server leaves no worker behind.
    let marker = server.data_dir().to_str().unwrap().to_owned();
    assert!(
        !processes_mentioning(&marker)
            .iter()
            .all(|p| p.contains("serve")),
        "a worker is running"
    );
    server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(processes_mentioning(&marker), Vec::<String>::new());
}

#[tokio::test]
async fn fifty_concurrent_python_calls() {
    let server = server();
    let code = "def handle(request):\n    return {'echo': request.get_text()}\n";
    deploy_ok(&server, "echo", "python", code, Value::Null).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = server.client();
        let url = server.endpoint("/invoke/echo");
        calls.spawn(async move {
            let response = client.post(url).body(format!("n{i}")).send().await.unwrap();
            (
                i,
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        });
    }
    let mut seen = 0;
    while let Some(result) = calls.join_next().await {
        let (i, status, body) = result.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, json!({"echo": format!("n{i}")}));
        seen += 1;
    }
    assert_eq!(seen, 50);
}
