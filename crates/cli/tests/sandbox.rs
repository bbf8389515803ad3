//! Escape attempts, as functions would make them (Python in a warm worker, C in
//! wasmtime): each is blocked, the server stays up, and the next request is served.
//! Also: compilers are sandboxed, and `check-system` reports every primitive.

mod common;

use common::{call, deploy_ok, example, server};
use serde_json::{Value, json};

/// One handler that tries the attack named in the body and says "blocked: ..." when it
/// failed, "ESCAPED: ..." when it worked.
const PYTHON_ESCAPES: &str = r#"
import ctypes, os, socket, time

def attempt(kind):
    if kind == "shadow":
        return "ESCAPED: " + open("/etc/shadow").read()[:40]
    if kind == "passwd":
        return "ESCAPED: " + open("/etc/passwd").read()[:40]
    if kind == "database":
        return "ESCAPED: %d bytes" % len(open(os.environ["DATA_DIR"] + "/minifaas.db", "rb").read())
    if kind == "admin-key":
        return "ESCAPED: " + open(os.environ["DATA_DIR"] + "/admin.key").read()
    if kind == "other-function":
        return "ESCAPED: %s" % os.listdir(os.environ["OTHER_CODE"])
    if kind == "root-home":
        return "ESCAPED: %s" % os.listdir("/root")
    if kind == "connect":
        s = socket.create_connection(("127.0.0.1", int(os.environ["SERVER_PORT"])), timeout=2)
        s.close()
        return "ESCAPED: connected"
    if kind == "write-outside-tmp":
        for path in ["/usr/x", "/etc/x", os.getcwd() + "/x", "/x"]:
            try:
                open(path, "w").write("x")
                return "ESCAPED: wrote " + path
            except OSError:
                pass
        raise PermissionError("every write outside /tmp failed")
    if kind == "mount":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0:
            return "ESCAPED: mounted"
        raise OSError(ctypes.get_errno(), "mount failed")
    if kind == "unshare":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER
            return "ESCAPED: new user namespace"
        raise OSError(ctypes.get_errno(), "unshare failed")
    if kind == "fork-bomb":
        children = 0
        try:
            for _ in range(5000):
                pid = os.fork()
                if pid == 0:
                    time.sleep(20)
                    os._exit(0)
                children += 1
        except OSError as e:
            raise OSError("stopped after %d processes: %s" % (children, e))
        return "ESCAPED: %d processes" % children
    if kind == "tmp":
        open("/tmp/scratch", "w").write("mine")
        return "ok: " + open("/tmp/scratch").read()
    if kind == "whoami":
        return "uid=%d hostname=%s" % (os.getuid(), socket.gethostname())
    raise ValueError("unknown attack " + kind)

def handle(request):
    try:
        return {"result": attempt(request.get_text())}
    except Exception as e:
        return {"result": "blocked: %s: %s" % (type(e).__name__, e)}
"#;

async fn attempt(server: &minifaas_test_support::TestServer, kind: &str) -> String {
    let (status, body) = call(server, "escape", kind).await;
    assert_eq!(status, 200, "{kind}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["result"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn python_functions_cannot_leave_their_sandbox() {
    let server = server();
    // Another function, whose code directory the attacker will look for.
    deploy_ok(
        &server,
        "victim",
        "python",
        "def handle(request):\n    return 'secret'\n",
        Value::Null,
    )
    .await;
    let code_root = server.data_dir().join("cache/code");
    let victim_dir = std::fs::read_dir(&code_root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .unwrap();
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    deploy_ok(
        &server,
        "escape",
        "python",
        PYTHON_ESCAPES,
        json!({"environment": {
            "DATA_DIR": server.data_dir().to_str().unwrap(),
            "OTHER_CODE": victim_dir.to_str().unwrap(),
            "SERVER_PORT": port,
        }}),
    )
    .await;

    for kind in [
        "shadow",
        "passwd",
        "database",
        "admin-key",
        "other-function",
        "root-home",
        "connect",
        "write-outside-tmp",
        "mount",
        "unshare",
        "fork-bomb",
    ] {
        let result = attempt(&server, kind).await;
        assert!(result.starts_with("blocked: "), "{kind}: {result}");
    }
    // The fork bomb hit the process limit, not the machine's.
    let bomb = attempt(&server, "fork-bomb").await;
    assert!(bomb.contains("stopped after"), "{bomb}");

    // What a function may do still works: its own /tmp, and it runs as nobody.
    assert_eq!(attempt(&server, "tmp").await, "ok: mine");
    assert_eq!(
        attempt(&server, "whoami").await,
        "uid=65534 hostname=minifaas"
    );
    // The server and the other function are fine.
    assert_eq!(call(&server, "victim", "").await, (200, "secret".into()));
}

#[tokio::test]
async fn a_function_past_its_memory_is_killed_and_answered_502() {
    let server = server();
    let hog = r#"
def handle(request):
    megabytes = int(request.get_text() or 1)
    data = b"x" * (megabytes * 1024 * 1024)
    return {"held": len(data)}
"#;
    deploy_ok(&server, "hog", "python", hog, json!({"memory": "64Mi"})).await;
    let (status, body) = call(&server, "hog", "8").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&server, "hog", "400").await;
    assert_eq!(status, 502, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], "memory_limit_exceeded", "{body}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("memory limit exceeded")
    );
    // The next request gets a fresh worker.
    assert_eq!(call(&server, "hog", "8").await.0, 200);
}

#[tokio::test]
async fn wasi_functions_have_no_way_out() {
    let server = server();
    let data_dir = server.data_dir().to_str().unwrap().to_owned();
    let escapes = format!(
        r#"#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
static void try_open(const char *path, const char *mode) {{
    FILE *f = fopen(path, mode);
    printf("%s:%s\n", path, f ? "ESCAPED" : "blocked");
    if (f) fclose(f);
}}
int main(void) {{
    try_open("/etc/shadow", "r");
    try_open("{data_dir}/minifaas.db", "r");
    try_open("/x", "w");
    try_open("/tmp/x", "w");
    DIR *d = opendir("{data_dir}/cache/code");
    printf("code-dir:%s\n", d ? "ESCAPED" : "blocked");
    /* Used, so the compiler cannot elide the allocation. */
    volatile char *big = malloc(512u * 1024 * 1024);
    if (big) big[1000] = 1;
    printf("malloc-past-memory:%s\n", big && big[1000] ? "ESCAPED" : "blocked");
    return 0;
}}"#
    );
    deploy_ok(&server, "wasi-escape", "c", &escapes, json!({"memory": 64})).await;
    let (status, body) = call(&server, "wasi-escape", "").await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 6, "{body}");
    for line in lines {
        assert!(line.ends_with(":blocked"), "{body}");
    }
    // There is no call to fork or to open a socket in WASI preview 1: a program that
    // tries does not even build.
    for (what, code) in [
        (
            "fork",
            "#include <unistd.h>\nint main(void) { return fork(); }",
        ),
        (
            "socket",
            "#include <sys/socket.h>\nint main(void) { return socket(AF_INET, SOCK_STREAM, 0); }",
        ),
    ] {
        let (status, body) = server
            .deploy(json!({"name": format!("try-{what}"), "lang": "c", "code": code}))
            .await;
        assert_eq!(status, 422, "{what}: {body}");
    }
    assert_eq!(call(&server, "wasi-escape", "").await.0, 200);
}

#[tokio::test]
async fn compilers_do_not_see_the_host() {
    let server = server();
    for path in ["/etc/passwd", "/etc/shadow", "/root/.bashrc"] {
        let code = format!("#include \"{path}\"\nint main(void) {{ return 0; }}\n");
        let (status, body) = server
            .deploy(json!({"name": "peek", "lang": "c", "code": code}))
            .await;
        assert_eq!(status, 422, "{path}: {body}");
        let text = body.to_string();
        assert!(text.contains("not found"), "{path}: {text}");
        assert!(!text.contains("root:x:0:0"), "{path}: {text}");
    }
    // The same compiler still builds a normal program.
    deploy_ok(&server, "hello", "c", &example("hello.c"), Value::Null).await;
}

#[test]
fn check_system_reports_every_primitive() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_minifaas"))
        .args(["check-system", "--rounds", "2"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let report = String::from_utf8_lossy(&output.stdout);
    for primitive in [
        "namespaces",
        "filesystem view",
        "cgroups",
        "seccomp",
        "no_new_privs",
        "Landlock",
        "rlimits",
        "cold-start cost",
        "toolchains",
    ] {
        assert!(report.contains(primitive), "{primitive}: {report}");
    }
}

/// The quick start serves with `--data ./data`: a relative data dir must work with the
/// sandbox, which mounts paths by name from other working directories.
#[tokio::test]
async fn a_relative_data_dir_works() {
    use std::io::BufRead as _;
    let cwd = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_minifaas"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data", "./data"])
        .current_dir(cwd.path())
        .env("MINIFAAS_ADMIN_KEY", minifaas_test_support::ADMIN_KEY)
        .env("MINIFAAS_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("the server exited").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let client = reqwest::Client::new();
    let auth = format!("Bearer {}", minifaas_test_support::ADMIN_KEY);
    let deployed = client
        .post(format!("{url}/deploy?name=hello&lang=c"))
        .header("authorization", &auth)
        .body(example("hello.c"))
        .send()
        .await
        .unwrap();
    let status = deployed.status();
    let body = deployed.text().await.unwrap();
    let invoked = client
        .post(format!("{url}/invoke/hello"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    let invoked = (invoked.status().as_u16(), invoked.text().await.unwrap());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 201, "{body}");
    assert_eq!(invoked, (200, "Hello from FAAS!\n".to_owned()));
}
