//! The client subcommands: each one HTTP request with `minifaas-api` types.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use minifaas_api::{
    CreateFunctionRequest, CreateKeyRequest, CreatedKey, Deleted, ErrorBody, FunctionList,
    FunctionView, KeyList, KeyRevoked, LogLineView, LogsView, UpdateFunctionRequest,
};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};

use crate::Command;

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub(crate) fn new(url: String, key: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().build()?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_owned(),
            key,
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        builder
            .send()
            .await
            .with_context(|| format!("cannot reach the minifaas server at {}", self.base))
    }

    pub(crate) async fn run(&self, command: Command) -> anyhow::Result<ExitCode> {
        match command {
            Command::Serve { .. }
            | Command::Bench { .. }
            | Command::LoadInjector { .. }
            | Command::CheckSystem { .. } => {
                unreachable!("handled by main")
            }
            Command::Deploy {
                file,
                name,
                lang,
                timeout,
                memory,
                env,
            } => {
                self.deploy(&file, name, lang, timeout, memory, env).await?;
            }
            Command::Invoke {
                name,
                data,
                method,
                path,
            } => return self.invoke(&name, data, &method, &path).await,
            Command::Ls => {
                let list: FunctionList =
                    json_or_error(self.send(self.request(Method::GET, "/functions")).await?)
                        .await?;
                println!(
                    "{:<24} {:<10} {:>7} {:>9}  ID",
                    "NAME", "LANG", "VERSION", "SIZE"
                );
                for f in list.functions {
                    println!(
                        "{:<24} {:<10} {:>7} {:>9}  {}",
                        f.name, f.lang, f.version, f.size, f.id
                    );
                }
            }
            Command::Get { name } => {
                let view: Value = json_or_error(
                    self.send(self.request(Method::GET, &format!("/functions/{name}")))
                        .await?,
                )
                .await?;
                println!("{}", serde_json::to_string_pretty(&view)?);
            }
            Command::Keys { action } => self.keys(action).await?,
            Command::Logs {
                name,
                follow,
                limit,
            } => self.logs(&name, follow, limit).await?,
            Command::Rm { name } => {
                let deleted: Deleted = json_or_error(
                    self.send(self.request(Method::DELETE, &format!("/functions/{name}")))
                        .await?,
                )
                .await?;
                println!("deleted {}", deleted.name);
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn logs(&self, name: &str, follow: bool, limit: usize) -> anyhow::Result<()> {
        let print = |line: &LogLineView| {
            let invocation = line.invocation.as_deref().unwrap_or("-");
            println!("{} {invocation} {}", format_ms(line.at), line.line);
        };
        if !follow {
            let view: LogsView = json_or_error(
                self.send(self.request(
                    Method::GET,
                    &format!("/functions/{name}/logs?limit={limit}"),
                ))
                .await?,
            )
            .await?;
            view.lines.iter().for_each(print);
            return Ok(());
        }
        let mut response = self
            .send(self.request(
                Method::GET,
                &format!("/functions/{name}/logs?limit={limit}&follow=1"),
            ))
            .await?;
        if !response.status().is_success() {
            json_or_error::<Value>(response).await?;
            return Ok(());
        }
        // Server-sent events: `data: {...}` lines.
        let mut pending = String::new();
        while let Some(chunk) = response.chunk().await? {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(data) = line.trim_end().strip_prefix("data: ")
                    && let Ok(log) = serde_json::from_str::<LogLineView>(data)
                {
                    print(&log);
                    std::io::stdout().flush()?;
                }
            }
        }
        Ok(())
    }

    async fn keys(&self, action: crate::KeysCommand) -> anyhow::Result<()> {
        match action {
            crate::KeysCommand::Create {
                scopes,
                rate_limit,
                name,
            } => {
                let request = CreateKeyRequest {
                    scopes,
                    rate_limit,
                    name,
                };
                let created: CreatedKey = json_or_error(
                    self.send(self.request(Method::POST, "/keys").json(&request))
                        .await?,
                )
                .await?;
                println!("{}", created.key);
                eprintln!(
                    "created {} ({}); the secret above is not shown again",
                    created.view.id,
                    created.view.scopes.join(",")
                );
            }
            crate::KeysCommand::Ls => {
                let list: KeyList =
                    json_or_error(self.send(self.request(Method::GET, "/keys")).await?).await?;
                for key in list.keys {
                    let rate = key
                        .rate_limit
                        .map(|r| format!("{r}/s"))
                        .unwrap_or_else(|| "unlimited".into());
                    println!(
                        "{}\t{}\t{}\t{}",
                        key.id,
                        key.scopes.join(","),
                        rate,
                        key.name
                    );
                }
            }
            crate::KeysCommand::Rm { id } => {
                let revoked: KeyRevoked = json_or_error(
                    self.send(self.request(Method::DELETE, &format!("/keys/{id}")))
                        .await?,
                )
                .await?;
                println!("revoked {}", revoked.id);
            }
        }
        Ok(())
    }

    async fn deploy(
        &self,
        file: &Path,
        name: Option<String>,
        lang: Option<String>,
        timeout: Option<f64>,
        memory: Option<String>,
        env: Vec<String>,
    ) -> anyhow::Result<()> {
        let source = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("the file has no name to use; pass --name")?;
        let name = name.unwrap_or_else(|| stem.to_ascii_lowercase().replace(['.', ' '], "-"));
        let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let lang = match lang {
            Some(lang) => lang,
            None if !extension.is_empty() => extension.to_owned(),
            None => bail!(
                "cannot tell the language of {}: pass --lang",
                file.display()
            ),
        };
        let mut config = Map::new();
        if let Some(timeout) = timeout {
            config.insert("timeout".into(), Value::from(timeout));
        }
        if let Some(memory) = memory {
            config.insert("memory".into(), Value::from(memory));
        }
        if !env.is_empty() {
            let mut vars = Map::new();
            for pair in env {
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("--env '{pair}' is not K=V"))?;
                vars.insert(k.to_owned(), Value::from(v));
            }
            config.insert("environment".into(), Value::Object(vars));
        }
        let config = (!config.is_empty()).then_some(Value::Object(config));
        let (code, code_base64) = match String::from_utf8(source) {
            Ok(text) if lang != "wasm" => (Some(text), None),
            Ok(text) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(text)),
            ),
            Err(err) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(err.into_bytes())),
            ),
        };
        let create = CreateFunctionRequest {
            name: name.clone(),
            lang: Some(lang.clone()),
            code: code.clone(),
            code_base64: code_base64.clone(),
            config: config.clone(),
        };
        let response = self
            .send(self.request(Method::POST, "/functions").json(&create))
            .await?;
        let view: FunctionView = if response.status() == StatusCode::CONFLICT {
            let update = UpdateFunctionRequest {
                lang: Some(lang),
                code,
                code_base64,
                config,
            };
            json_or_error(
                self.send(
                    self.request(Method::PUT, &format!("/functions/{name}"))
                        .json(&update),
                )
                .await?,
            )
            .await?
        } else {
            json_or_error(response).await?
        };
        println!(
            "deployed {} (version {}, {}, id {})",
            view.name, view.version, view.lang, view.id
        );
        Ok(())
    }

    async fn invoke(
        &self,
        name: &str,
        data: Option<String>,
        method: &str,
        path: &str,
    ) -> anyhow::Result<ExitCode> {
        let body = match data.as_deref() {
            None => Vec::new(),
            Some("-") => {
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf)?;
                buf
            }
            Some(arg) if arg.starts_with('@') => {
                std::fs::read(&arg[1..]).with_context(|| format!("reading {}", &arg[1..]))?
            }
            Some(text) => text.as_bytes().to_vec(),
        };
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .with_context(|| format!("'{method}' is not an HTTP method"))?;
        let path = if path.is_empty() || path.starts_with('/') || path.starts_with('?') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let response = self
            .send(
                self.request(method, &format!("/invoke/{name}{path}"))
                    .body(body),
            )
            .await?;
        let status = response.status();
        let is_platform_error = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
            && !status.is_success();
        let bytes = response.bytes().await?;
        if is_platform_error && let Ok(error) = serde_json::from_slice::<ErrorBody>(&bytes) {
            bail!("{} ({}, HTTP {})", error.error, error.code, status.as_u16());
        }
        std::io::stdout().write_all(&bytes)?;
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            eprintln!("HTTP {status}");
            ExitCode::FAILURE
        })
    }
}

/// The body as `T` on success; the server's error sentence otherwise.
async fn json_or_error<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> anyhow::Result<T> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        if let Ok(error) = serde_json::from_slice::<ErrorBody>(&bytes) {
            bail!("{} ({}, HTTP {})", error.error, error.code, status.as_u16());
        }
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
    }
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "unexpected answer from the server: {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// Unix milliseconds as `HH:MM:SS.mmm` (UTC).
fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day / 3600,
        day % 3600 / 60,
        day % 60,
        ms.rem_euclid(1000)
    )
}
