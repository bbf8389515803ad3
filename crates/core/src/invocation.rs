//! One invocation: the request a function receives and the response it gives, free of any
//! HTTP library so executors do not depend on the gateway's.

use bytes::Bytes;

/// The request handed to a function.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    /// The invocation's id (`X-Invocation-Id`): what its log lines are tagged with.
    pub id: String,
    /// HTTP method, upper case.
    pub method: String,
    /// The path below the function's route, always starting with `/`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// The response a function produced.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl InvokeResponse {
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The life stage of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Starting,
    Idle,
    Busy,
    Draining,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Idle => "idle",
            InstanceState::Busy => "busy",
            InstanceState::Draining => "draining",
        }
    }
}

/// A live instance, as `/instances` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceInfo {
    pub id: u64,
    pub function: String,
    pub version: u32,
    pub pid: Option<u32>,
    pub state: InstanceState,
    pub in_flight: usize,
    /// Latest smoothed samples: CPU in cores, memory as a fraction of the function's
    /// limit, IO in MiB/s.
    pub cpu: f64,
    pub memory: f64,
    pub io: f64,
    /// Unix milliseconds.
    pub started_at: i64,
    pub last_used_at: i64,
}

/// How one admitted invocation went, as the scheduler measured it.
#[derive(Debug)]
pub struct Observed {
    pub response: crate::Result<InvokeResponse>,
    pub version: u32,
    /// The instance that ran it (`/instances` id).
    pub instance: u64,
    /// From arrival to the start of the run: queueing and any cold start.
    pub wait: std::time::Duration,
    /// The run itself.
    pub run: std::time::Duration,
    /// Whether an instance was started for it.
    pub cold: bool,
    /// How long that instance took to start.
    pub init: Option<std::time::Duration>,
}

/// The stored record of one invocation (`GET /invocations/:id`).
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    pub id: String,
    pub function: String,
    /// 0 when the call never reached a version (unknown function, shed).
    pub version: u32,
    /// The HTTP status the caller got.
    pub status: u16,
    /// Unix milliseconds.
    pub started_at: i64,
    pub duration_ms: f64,
    pub wait_ms: f64,
    pub cold: bool,
    pub init_ms: Option<f64>,
    pub instance: Option<u64>,
    /// The error code, when the platform answered for the function.
    pub error: Option<String>,
    /// What the function printed during the call (capped).
    pub logs: String,
}

/// The `tracing` target executors log a function's output under; the gateway's log
/// book files the events with this target (fields `function`, `invocation`).
pub const FUNCTION_OUTPUT_TARGET: &str = "minifaas::function";

/// One line a function printed.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Unix milliseconds.
    pub at: i64,
    pub function: String,
    /// The invocation it was printed during, if known.
    pub invocation: Option<String>,
    pub line: String,
}
