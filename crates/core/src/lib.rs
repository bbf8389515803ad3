//! minifaas-core: the domain of the platform, and the traits its parts meet at.
//!
//! Invariants:
//! - this crate does no IO: no files, sockets, processes, SQL or wasmtime; it only names
//!   things and checks values, so every other crate can depend on it cheaply;
//! - every error the platform returns is an [`Error`] with an [`ErrorKind`] saying whose
//!   fault it is (caller, function, overload, timeout, platform); the gateway alone maps
//!   kinds to HTTP statuses.

pub mod auth;
pub mod cgi;
pub mod config;
pub mod error;
pub mod function;
pub mod invocation;
pub mod traits;

pub use auth::{KeyRecord, Scope, Scopes};
pub use config::{FunctionConfig, parse_memory_mb};
pub use error::{Error, ErrorKind, Result};
pub use function::{
    Artifact, ArtifactKind, CODE_MANIFEST_FILE, FunctionName, FunctionRecord, Lang, VersionRecord,
    sha256_hex,
};
pub use invocation::{
    FUNCTION_OUTPUT_TARGET, InstanceInfo, InstanceState, InvocationRecord, InvokeRequest,
    InvokeResponse, LogLine, Observed,
};
pub use traits::{
    Builder, Executor, FunctionAccess, Instance, InstanceDefaults, InvocationStore, Invoker,
    KeyStore, NewVersion, PreparedFunction, PreparedVersion, SharedInstance, Store,
    load_stored_version, sync_stored_versions,
};
