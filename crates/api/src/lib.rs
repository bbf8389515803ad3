//! minifaas-api: the wire types of the HTTP API, shared by the gateway and the CLI.
//!
//! Plain serde structs and nothing else: no logic, no core types. Two families:
//! - the seed API (`/deploy`, `/invoke?fn=`, `/function/:name`), whose shapes are fixed by
//!   the earlier projects' clients;
//! - the main API (`/functions`, `/invoke/:name`, `/health`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every error: `{"ok": false, "error": "<sentence>", "code": "<snake_case>"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub ok: bool,
    pub error: String,
    pub code: String,
}

// ---- seed API ----

/// `POST /deploy?name=&lang=` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeedDeployQuery {
    pub name: Option<String>,
    pub lang: Option<String>,
}

/// `POST /deploy` with a JSON body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedDeployRequest {
    pub name: String,
    pub lang: String,
    pub code: String,
}

/// `201` answer of `POST /deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedDeployResponse {
    pub ok: bool,
    pub id: String,
    pub name: String,
    pub lang: String,
    pub wasm: bool,
}

/// `POST /invoke?fn=` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeedInvokeQuery {
    #[serde(rename = "fn")]
    pub function: Option<String>,
}

/// `200` answer of `POST /invoke?fn=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedInvokeResponse {
    pub ok: bool,
    pub output: String,
}

/// `GET /function/:name`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedFunctionView {
    pub ok: bool,
    pub id: String,
    pub name: String,
    pub lang: String,
    pub size: u64,
    pub code: String,
}

// ---- main API ----

/// `POST /functions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateFunctionRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Source as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Source (or a binary module) as standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// `PUT /functions/:name`: new code and/or config. Omitted parts are kept; given config
/// keys replace the stored ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateFunctionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// A function and its current version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionView {
    pub ok: bool,
    pub id: String,
    pub name: String,
    pub lang: String,
    /// Whether it runs as a WASI module.
    pub wasm: bool,
    pub version: u32,
    /// Source size in bytes.
    pub size: u64,
    pub config: Value,
    pub source_sha256: String,
    pub artifact_sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Live instances of the serving version.
    #[serde(default)]
    pub instances: usize,
}

/// `GET /functions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionList {
    pub ok: bool,
    pub functions: Vec<FunctionView>,
}

/// `GET /functions/:name/code`: text sources as `code`, binary ones as `code_base64`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeView {
    pub ok: bool,
    pub name: String,
    pub lang: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_base64: Option<String>,
}

/// `DELETE /functions/:name`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted {
    pub ok: bool,
    pub name: String,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub status: String,
    pub version: String,
}

/// One live instance, in `GET /instances`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: u64,
    pub function: String,
    pub version: u32,
    /// The worker process, for process instances.
    pub pid: Option<u32>,
    /// starting, idle, busy or draining.
    pub state: String,
    pub in_flight: usize,
    /// CPU in cores (smoothed).
    pub cpu: f64,
    /// Resident memory as a fraction of the function's limit (smoothed).
    pub memory: f64,
    /// Read + written MiB/s (smoothed).
    pub io: f64,
    /// Unix milliseconds.
    pub started_at: i64,
    pub last_used_at: i64,
}

/// `GET /instances`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceList {
    pub ok: bool,
    pub instances: Vec<InstanceView>,
}

/// `DELETE /instances/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStopped {
    pub ok: bool,
    pub instance: InstanceView,
}

/// `POST /keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// `invoke`, `manage`, `admin`.
    pub scopes: Vec<String>,
    /// Requests per second; absent means unlimited.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub rate_limit: Option<f64>,
    /// Unix seconds.
    pub created_at: i64,
}

/// The answer to `POST /keys`: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedKey {
    pub ok: bool,
    /// The secret, for `Authorization: Bearer`.
    pub key: String,
    #[serde(flatten)]
    pub view: KeyView,
}

/// `GET /keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyList {
    pub ok: bool,
    pub keys: Vec<KeyView>,
}

/// `DELETE /keys/:id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRevoked {
    pub ok: bool,
    pub id: String,
}

/// `GET /invocations/:id`: the record of one invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvocationView {
    pub id: String,
    pub function: String,
    pub version: u32,
    pub status: u16,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Run time.
    pub duration_ms: f64,
    /// Queueing and cold start, apart from run time.
    pub wait_ms: f64,
    pub cold: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<f64>,
    pub instance: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub logs: String,
}

/// `GET /invocations/:id` (wrapped).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvocationResponse {
    pub ok: bool,
    pub invocation: InvocationView,
}

/// `GET /functions/:name/invocations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvocationList {
    pub ok: bool,
    pub invocations: Vec<InvocationView>,
}

/// One line a function printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLineView {
    /// Unix milliseconds.
    pub at: i64,
    pub invocation: Option<String>,
    pub line: String,
}

/// `GET /functions/:name/logs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsView {
    pub ok: bool,
    pub function: String,
    pub lines: Vec<LogLineView>,
}

/// `GET /stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformStats {
    pub ok: bool,
    pub functions: usize,
    pub instances: usize,
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub uptime_seconds: f64,
    /// Records not written because the database fell behind.
    pub records_dropped: u64,
}

/// `GET /stats/functions/:name`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionStatsView {
    pub ok: bool,
    pub function: String,
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Unix milliseconds.
    pub last_invocation: Option<i64>,
    pub instances: usize,
}
