//! The dashboard in a real headless Chromium: it loads, lists the functions, shows an
//! invocation made through its form, and deploys a file through its other form. In
//! Debian's `chromium`, driven by
//! playwright-core from `tests/ui/`; `scripts/install-test-deps.sh` installs both).

mod common;

use common::{deploy_ok, server};
use serde_json::Value;

#[tokio::test]
async fn the_dashboard_lists_functions_and_shows_an_invocation_made_from_it() {
    let root = minifaas_test_support::repo_root();
    let script = root.join("tests/ui/dashboard.test.mjs");
    assert!(
        root.join("tests/ui/node_modules/playwright-core").is_dir()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Chromium and playwright-core: run scripts/install-test-deps.sh"
    );
    let server = server();
    let echo = r#"
def handle(request):
    print("the browser sent", request.get_text())
    return "echo: " + request.get_text()
"#;
    deploy_ok(&server, "echo", "python", echo, Value::Null).await;

    // The page itself is public; everything on it comes from the API with the key.
    let page = server
        .anonymous_client()
        .get(server.endpoint("/ui"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<title>minifaas</title>")
    );

    let url = server.url.clone();
    let upload = root.join("examples/hello.c");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args([&url, minifaas_test_support::ADMIN_KEY, "echo"])
            .arg(upload)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["output"], "echo: from the browser");
    assert_eq!(seen["logs"], "the browser sent from the browser\n");
    assert_eq!(seen["deployed"], "deployed hello (version 1)");
    assert_eq!(common::call(&server, "hello", "").await.0, 200);
    // The same invocation, through the API.
    let id = seen["id"].as_str().unwrap();
    let (_, record) = common::get_json(&server, &format!("/invocations/{id}")).await;
    assert_eq!(record["invocation"]["function"], "echo");
    assert_eq!(record["invocation"]["status"], 200);
}
