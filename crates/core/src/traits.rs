//! The traits the parts meet at. The gateway sees `dyn Store`, `dyn Builder` and
//! `dyn Invoker`; the scheduler sees `dyn Executor`; none of them names a concrete type
//! from another crate.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::FunctionConfig;
use crate::error::{Error, Result};
use crate::function::{Artifact, ArtifactKind, FunctionName, FunctionRecord, Lang, VersionRecord};
use crate::invocation::{InvokeRequest, InvokeResponse};

/// A new version to store: the upload and what the build made of it.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub lang: Lang,
    pub config: FunctionConfig,
    pub source: Bytes,
    pub artifact: Artifact,
}

/// The registry: functions, versions and the blobs they name.
///
/// Writing a version is atomic: blobs are durable before the row naming them commits, and
/// the function's current version flips in the same transaction as the row is inserted.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a function with its first version. `Conflict` if the name is taken.
    async fn create_function(
        &self,
        name: &FunctionName,
        version: NewVersion,
    ) -> Result<(FunctionRecord, VersionRecord)>;
    /// Adds a version and makes it current. `NotFound` if the function does not exist.
    async fn add_version(
        &self,
        name: &FunctionName,
        version: NewVersion,
    ) -> Result<(FunctionRecord, VersionRecord)>;
    /// A function and its current version, by name or by seed id.
    async fn get_function(
        &self,
        name_or_id: &str,
    ) -> Result<Option<(FunctionRecord, VersionRecord)>>;
    /// Every function with its current version, ordered by name.
    async fn list_functions(&self) -> Result<Vec<(FunctionRecord, VersionRecord)>>;
    /// Deletes a function and all its versions. Returns whether it existed.
    async fn delete_function(&self, name: &FunctionName) -> Result<bool>;
    /// The bytes of a blob by its sha256.
    async fn get_blob(&self, sha256: &str) -> Result<Bytes>;
}

/// Turns an upload into an artifact, sandboxed and time-limited.
#[async_trait]
pub trait Builder: Send + Sync + 'static {
    /// `BuildFailed` with the diagnostics when the source does not compile or its
    /// dependencies (`config.extra["dependencies"]`) do not install.
    async fn build(&self, lang: Lang, source: Bytes, config: &FunctionConfig) -> Result<Artifact>;
}

/// A function version loaded by an executor and ready to serve.
#[async_trait]
pub trait PreparedFunction: Send + Sync + 'static {
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse>;
}

/// Runs artifacts of one kind. `prepare` is called once per function version, at deploy
/// (where it also validates the artifact) and at start-up alike.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// The artifact kinds this executor runs.
    fn kinds(&self) -> &'static [ArtifactKind];
    async fn prepare(
        &self,
        name: &FunctionName,
        config: &FunctionConfig,
        artifact: &Artifact,
    ) -> Result<Arc<dyn PreparedFunction>>;
}

/// A version that an executor accepted, not yet serving.
#[derive(Clone)]
pub struct PreparedVersion {
    pub name: FunctionName,
    /// The function's seed id, an alias of its name for `/invoke?fn=`.
    pub id: String,
    pub version: u32,
    pub config: FunctionConfig,
    pub function: Arc<dyn PreparedFunction>,
}

/// What the gateway calls to run functions and to change which versions serve.
#[async_trait]
pub trait Invoker: Send + Sync + 'static {
    /// The name of the serving function called `name_or_id` (a name or a seed id).
    fn resolve(&self, name_or_id: &str) -> Option<FunctionName>;
    /// Runs one invocation of the function's current version.
    async fn invoke(&self, name: &FunctionName, request: InvokeRequest) -> Result<InvokeResponse>;
    /// Loads a version with the executor for its artifact (validating it).
    async fn prepare(
        &self,
        name: &FunctionName,
        config: &FunctionConfig,
        artifact: &Artifact,
    ) -> Result<Arc<dyn PreparedFunction>>;
    /// Makes a prepared version the one that serves; the previous one drains.
    fn activate(&self, version: PreparedVersion);
    /// Stops serving a function; invocations in flight complete.
    fn remove(&self, name: &FunctionName);
}

/// Loads a stored version and makes it serve: the one path shared by deploy and start-up.
pub async fn load_stored_version(
    store: &dyn Store,
    invoker: &dyn Invoker,
    function: &FunctionRecord,
    version: &VersionRecord,
) -> Result<()> {
    let bytes = store.get_blob(&version.artifact_sha256).await?;
    let artifact = Artifact::new(version.artifact_kind, bytes);
    if artifact.sha256 != version.artifact_sha256 {
        return Err(Error::platform(format!(
            "blob {} is corrupt (its content hashes to {})",
            version.artifact_sha256, artifact.sha256
        )));
    }
    let prepared = invoker
        .prepare(&version.name, &version.config, &artifact)
        .await?;
    invoker.activate(PreparedVersion {
        name: version.name.clone(),
        id: function.id.clone(),
        version: version.version,
        config: version.config.clone(),
        function: prepared,
    });
    Ok(())
}
