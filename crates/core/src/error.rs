//! Errors classified by their source. The message is a sentence the user can act on; the
//! code is a stable snake_case identifier clients can match on.

use std::fmt;

/// Who is at fault, which decides the HTTP status and whether the message may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or invalid input (400).
    InvalidInput,
    /// No key or an unknown key (401).
    Unauthorized,
    /// The key lacks the scope (403).
    Forbidden,
    /// Unknown function or route (404).
    NotFound,
    /// The name is taken (409).
    Conflict,
    /// The body or the source is larger than allowed (413).
    TooLarge,
    /// The compiler rejected the source (422); the message carries the diagnostics.
    BuildFailed,
    /// Rate limited or queue full (429).
    Overloaded,
    /// The function trapped, crashed, or produced a malformed response (502).
    FunctionFailed,
    /// No capacity right now, or the server is shutting down (503).
    Unavailable,
    /// The function ran past its time limit (504).
    Timeout,
    /// A fault of the platform itself (500). Its message is logged, never shown.
    Platform,
}

/// The one error type every part returns across a crate boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// Stable machine-readable identifier, e.g. `function_not_found`.
    pub code: &'static str,
    /// A sentence the user can act on (for `Platform`, the internal detail to log).
    pub message: String,
    /// For `Overloaded`: when trying again may succeed (seconds, at least 1).
    pub retry_after_secs: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// This error with a `Retry-After` hint.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", message)
    }

    /// The function named by the caller does not exist. The message is the seed API's.
    pub fn function_not_found() -> Self {
        Self::new(
            ErrorKind::NotFound,
            "function_not_found",
            "function not found",
        )
    }

    pub fn name_taken(name: &str) -> Self {
        Self::new(
            ErrorKind::Conflict,
            "name_taken",
            format!("function name '{name}' already exists, please choose another name"),
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, "too_large", message)
    }

    pub fn build_failed(diagnostics: impl Into<String>) -> Self {
        Self::new(ErrorKind::BuildFailed, "build_failed", diagnostics)
    }

    pub fn function_failed(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FunctionFailed, code, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, "timeout", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, code, message)
    }

    /// A fault of the platform. `detail` is for the server log only.
    pub fn platform(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Platform, "internal", detail)
    }

    /// Wraps an internal failure with what the platform was doing.
    pub fn platform_ctx(doing: &str, err: impl fmt::Display) -> Self {
        Self::platform(format!("{doing}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}
