//! One invocation: the request a function receives and the response it gives, free of any
//! HTTP library so executors do not depend on the gateway's.

use bytes::Bytes;

/// The request handed to a function.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
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
