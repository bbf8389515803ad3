//! Script mode: a file without a handler runs once per invocation as a plain program,
//! the request body on stdin, the CGI environment, stdout as the (CGI) response.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use minifaas_core::cgi::{cgi_environment, parse_cgi_output};
use minifaas_core::{Error, Instance, InvokeRequest, InvokeResponse, Result};
use minifaas_sandbox::{Limits, SandboxedCommand};

pub(crate) struct PreparedScript {
    pub function: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub max_output_bytes: usize,
    /// What the script may see and use (the function's code, its memory).
    pub isolation: minifaas_sandbox::Isolation,
}

#[async_trait]
impl Instance for PreparedScript {
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let mut command = SandboxedCommand::new(&self.program, &self.cwd)
            .args(self.args.iter())
            .stdin(request.body.clone())
            .limits(Limits {
                wall_time: self.timeout,
                cpu_seconds: self.timeout.as_secs() + 1,
                max_output_bytes: self.max_output_bytes,
                ..Limits::default()
            })
            .isolate(self.isolation.clone());
        for (key, value) in self
            .env
            .iter()
            .cloned()
            .chain(cgi_environment(&self.function, &request))
        {
            command = command.env(key, value);
        }
        let outcome = command
            .run()
            .await
            .map_err(|e| Error::platform_ctx(&format!("starting script '{}'", self.function), e))?;
        if outcome.timed_out {
            return Err(Error::timeout(format!(
                "function '{}' did not finish within its {} s timeout",
                self.function,
                self.timeout.as_secs_f64()
            )));
        }
        if outcome.oom_killed {
            return Err(crate::memory_exceeded(
                &self.function,
                self.isolation.memory_bytes,
            ));
        }
        if !outcome.stderr.is_empty() {
            for line in String::from_utf8_lossy(&outcome.stderr).lines().take(200) {
                tracing::info!(target: minifaas_core::FUNCTION_OUTPUT_TARGET, function = self.function, invocation = request.id, "{line}");
            }
        }
        if outcome.output_truncated && outcome.stdout.len() >= self.max_output_bytes {
            return Err(Error::function_failed(
                "output_too_large",
                format!(
                    "function '{}' wrote more than {} bytes of output",
                    self.function, self.max_output_bytes
                ),
            ));
        }
        if !outcome.status.success() {
            let tail = String::from_utf8_lossy(&outcome.stderr);
            let tail = tail.trim_end();
            let skip = tail.chars().count().saturating_sub(1024);
            let tail: String = tail.chars().skip(skip).collect();
            return Err(Error::function_failed(
                "function_exit",
                format!(
                    "function '{}' exited with {}{}",
                    self.function,
                    outcome.status,
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!("; stderr: {tail}")
                    }
                ),
            ));
        }
        Ok(parse_cgi_output(bytes::Bytes::from(outcome.stdout)))
    }
}

/// An HTML page, served as is.
pub(crate) struct StaticPage {
    pub body: bytes::Bytes,
}

#[async_trait]
impl Instance for StaticPage {
    async fn invoke(&self, _request: InvokeRequest) -> Result<InvokeResponse> {
        Ok(InvokeResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: self.body.clone(),
        })
    }
}
