//! A machine without some sandbox primitives (simulated with MINIFAAS_SANDBOX_WITHOUT):
//! the server starts anyway, says what is missing, functions still run, and the walls
//! that remain (Landlock, seccomp, no capabilities) still hold.

mod common;

use common::{call, deploy_ok, example};
use minifaas_test_support::TestServer;
use serde_json::{Value, json};

#[tokio::test]
async fn without_namespaces_and_cgroups_functions_run_behind_landlock() {
    let server = TestServer::start_with_env(
        env!("CARGO_BIN_EXE_minifaas"),
        &[],
        &[("MINIFAAS_SANDBOX_WITHOUT", "namespaces,cgroups")],
    );
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
    assert_eq!(
        call(&server, "hello", "").await,
        (200, "Hello from FAAS!\n".into())
    );
    let probe = r#"
import os, socket
def attempt(what):
    try:
        if what == "shadow":
            open("/etc/shadow").read()
        elif what == "database":
            open(os.environ["DATA_DIR"] + "/minifaas.db", "rb").read()
        elif what == "connect":
            socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), timeout=2).close()
        return "ESCAPED"
    except Exception as e:
        return "blocked: " + type(e).__name__
def handle(request):
    return attempt(request.get_text())
"#;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    deploy_ok(
        &server,
        "probe",
        "python",
        probe,
        json!({"environment": {"DATA_DIR": server.data_dir().to_str().unwrap(), "PORT": port}}),
    )
    .await;
    for what in ["shadow", "database", "connect"] {
        let (status, body) = call(&server, "probe", what).await;
        assert_eq!(status, 200, "{what}: {body}");
        assert!(body.starts_with("blocked"), "{what}: {body}");
    }

    // check-system says what is missing, and what that means.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_minifaas"))
        .args(["check-system", "--rounds", "1"])
        .env("MINIFAAS_SANDBOX_WITHOUT", "namespaces,cgroups")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("[NO ] namespaces") && report.contains("[NO ] cgroups"),
        "{report}"
    );
    assert!(report.contains("without it:"), "{report}");
    assert!(report.contains("[yes] Landlock"), "{report}");
}
