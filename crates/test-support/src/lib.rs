//! minifaas-test-support: a real `minifaas serve` for integration tests.
//!
//! [`TestServer`] starts the binary on `127.0.0.1:0` with a temporary data dir, waits for
//! its `listening on` line, and kills it when dropped. It can be stopped and started
//! again on the same data dir (restart tests), gracefully or with SIGKILL.
//! Only a dev-dependency: nothing in the product links it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The admin key every [`TestServer`] is started with (`MINIFAAS_ADMIN_KEY`), unless
/// started with [`TestServer::start_without_admin_key`].
pub const ADMIN_KEY: &str = "mfk_test_admin_0123456789abcdef";

pub struct TestServer {
    binary: PathBuf,
    data: tempfile::TempDir,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    admin_key: Option<String>,
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl TestServer {
    /// Starts `binary serve` on a free port with a fresh data dir.
    pub fn start(binary: impl AsRef<Path>) -> Self {
        Self::start_with(binary, &[])
    }

    /// As [`TestServer::start`], with extra `serve` arguments.
    pub fn start_with(binary: impl AsRef<Path>, extra_args: &[&str]) -> Self {
        Self::start_inner(binary.as_ref(), extra_args, Some(ADMIN_KEY))
    }

    /// As [`TestServer::start_with`], with extra environment variables.
    pub fn start_with_env(
        binary: impl AsRef<Path>,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut server = Self::unstarted(binary.as_ref(), extra_args, Some(ADMIN_KEY));
        server.extra_env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        server.spawn();
        server
    }

    /// Starts a server that must create its own first admin key (in `admin.key`).
    pub fn start_without_admin_key(binary: impl AsRef<Path>, extra_args: &[&str]) -> Self {
        Self::start_inner(binary.as_ref(), extra_args, None)
    }

    fn start_inner(binary: &Path, extra_args: &[&str], admin_key: Option<&str>) -> Self {
        let mut server = Self::unstarted(binary, extra_args, admin_key);
        server.spawn();
        server
    }

    fn unstarted(binary: &Path, extra_args: &[&str], admin_key: Option<&str>) -> Self {
        let data = tempfile::Builder::new()
            .prefix("minifaas-test-")
            .tempdir()
            .expect("creating a temp data dir");
        Self {
            binary: binary.to_owned(),
            data,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            extra_env: Vec::new(),
            admin_key: admin_key.map(str::to_owned),
            child: None,
            url: String::new(),
        }
    }

    fn spawn(&mut self) {
        let mut command = Command::new(&self.binary);
        command.env_remove("MINIFAAS_ADMIN_KEY");
        if let Some(key) = &self.admin_key {
            command.env("MINIFAAS_ADMIN_KEY", key);
        }
        command.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(self.data.path())
            .args(&self.extra_args)
            .env(
                "MINIFAAS_LOG",
                std::env::var("MINIFAAS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting minifaas serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.trim().to_owned();
                    }
                }
                _ => {
                    let status = child.wait().ok();
                    panic!("minifaas serve exited before listening: {status:?}");
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        self.url = url;
        self.child = Some(child);
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data dir (after `stop` or `kill`).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A client that sends the admin key with every request.
    pub fn client(&self) -> reqwest::Client {
        let key = self
            .admin_key
            .clone()
            .or_else(|| self.generated_admin_key())
            .unwrap_or_default();
        self.client_with_key(&key)
    }

    /// A client that sends `key` as its bearer token (none if empty).
    pub fn client_with_key(&self, key: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if !key.is_empty() {
            let value = format!("Bearer {key}")
                .parse()
                .expect("a key is a valid header value");
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .default_headers(headers)
            .build()
            .expect("building an HTTP client")
    }

    /// A client without any key.
    pub fn anonymous_client(&self) -> reqwest::Client {
        self.client_with_key("")
    }

    /// The admin key the server wrote to its data dir on first start, if it did.
    pub fn generated_admin_key(&self) -> Option<String> {
        std::fs::read_to_string(self.data.path().join("admin.key"))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `POST /functions`; returns (status, body).
    pub async fn deploy(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .client()
            .post(self.endpoint("/functions"))
            .json(&body)
            .send()
            .await
            .expect("POST /functions");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// Any method on `/invoke/NAME[PATH]`; returns the raw response.
    pub async fn invoke(
        &self,
        name_and_path: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client()
            .post(self.endpoint(&format!("/invoke/{name_and_path}")))
            .body(body)
            .send()
            .await
            .expect("POST /invoke")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The repository's root (for `examples/`, `tests/ui/`): from the running test's own
/// crate (cargo sets `CARGO_MANIFEST_DIR` when it runs tests), so that a build shared by
/// two checkouts never points one at the other's files.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(&manifest_dir)
        .to_owned()
}
