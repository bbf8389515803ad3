//! The traits the parts meet at. The gateway sees `dyn Store`, `dyn Builder` and
//! `dyn Invoker`; the scheduler sees `dyn Executor`; none of them names a concrete type
//! from another crate.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::auth::KeyRecord;
use crate::config::FunctionConfig;
use crate::error::{Error, Result};
use crate::function::{Artifact, ArtifactKind, FunctionName, FunctionRecord, Lang, VersionRecord};
use crate::invocation::{InstanceInfo, InvocationRecord, InvokeRequest, InvokeResponse, Observed};

/// The part of a function's config the gateway enforces before invoking it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FunctionAccess {
    pub public: bool,
    pub rate_limit: Option<f64>,
}

impl FunctionAccess {
    pub fn of(config: &FunctionConfig) -> Self {
        Self {
            public: config.public,
            rate_limit: config.rate_limit,
        }
    }
}

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
    /// Whether someone else (a hand edit, another process) committed a change since the
    /// last call: the change feed that keeps the serving versions in step with the store.
    async fn changed_elsewhere(&self) -> Result<bool>;
}

/// The API keys (hashed; the registry never sees a secret).
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Stores a new key. `Conflict` if its id or hash exists.
    async fn create_key(&self, key: KeyRecord) -> Result<()>;
    /// Every key, oldest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>>;
    /// The key whose secret hashes to `hash`.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>>;
    /// Revokes a key. Returns whether it existed.
    async fn delete_key(&self, id: &str) -> Result<bool>;
}

/// The invocation records (written in batches, off the request path).
#[async_trait]
pub trait InvocationStore: Send + Sync + 'static {
    async fn insert_invocations(&self, records: Vec<InvocationRecord>) -> Result<()>;
    async fn invocation(&self, id: &str) -> Result<Option<InvocationRecord>>;
    /// The newest records of a function, newest first, optionally of one status class
    /// (`Some(5)`: 5xx) or one exact status.
    async fn list_invocations(
        &self,
        function: &str,
        status: Option<u16>,
        limit: usize,
    ) -> Result<Vec<InvocationRecord>>;
    /// Keeps at most `keep` records and none older than `before` (Unix ms). Returns how
    /// many were removed.
    async fn prune_invocations(&self, keep: usize, before: i64) -> Result<usize>;
}

/// Turns an upload into an artifact, sandboxed and time-limited.
#[async_trait]
pub trait Builder: Send + Sync + 'static {
    /// `BuildFailed` with the diagnostics when the source does not compile or its
    /// dependencies (`config.extra["dependencies"]`) do not install.
    async fn build(&self, lang: Lang, source: Bytes, config: &FunctionConfig) -> Result<Artifact>;
}

/// What an executor suggests for its instances when the function's config is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceDefaults {
    /// Requests one instance takes at once.
    pub concurrency: usize,
    /// Instances one version may have.
    pub max_instances: usize,
}

/// A function version loaded by an executor: it starts instances; the scheduler decides
/// how many, and which one serves each request.
#[async_trait]
pub trait PreparedFunction: Send + Sync + 'static {
    fn defaults(&self) -> InstanceDefaults;
    /// Starts one instance (a cold start): a worker process, or for WASI a slot that
    /// runs each request in a fresh wasm instance.
    async fn start_instance(&self) -> Result<Arc<dyn Instance>>;
}

/// One running instance of a function version.
#[async_trait]
pub trait Instance: Send + Sync + 'static {
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse>;
    /// Its process, if it has one (for `/instances` and resource sampling).
    fn pid(&self) -> Option<u32> {
        None
    }
    /// False once it died or was killed: it must not be given more requests.
    fn is_usable(&self) -> bool {
        true
    }
}

/// A function whose instances hold no state of their own: every "instance" is the same
/// shared object (WASI, which makes a fresh wasm instance per request anyway; script
/// mode, a process per request; static pages).
pub struct SharedInstance {
    pub instance: Arc<dyn Instance>,
    pub defaults: InstanceDefaults,
}

#[async_trait]
impl PreparedFunction for SharedInstance {
    fn defaults(&self) -> InstanceDefaults {
        self.defaults
    }

    async fn start_instance(&self) -> Result<Arc<dyn Instance>> {
        Ok(self.instance.clone())
    }
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
    /// Who may call the serving version of `name` and how often (from its config).
    fn access(&self, name: &FunctionName) -> Option<FunctionAccess>;
    /// Every serving function: its version and the config it serves with.
    fn serving(&self) -> Vec<(FunctionName, u32, FunctionConfig)>;
    /// Runs one invocation of the function's current version, and says how it went
    /// (version, instance, wait, run, cold start). `Err` when it was never admitted
    /// (unknown function, queue full, no capacity); the function's own outcome is in
    /// `Observed::response`.
    async fn invoke(&self, name: &FunctionName, request: InvokeRequest) -> Result<Observed>;
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
    /// Every live instance.
    fn instances(&self) -> Vec<InstanceInfo>;
    /// How many instances the function's serving version has.
    fn live_instances(&self, name: &FunctionName) -> usize;
    /// Drains and stops one instance. `NotFound` if there is no such instance.
    fn stop_instance(&self, id: u64) -> Result<InstanceInfo>;
}

/// Loads a stored version and makes it serve: the one path shared by deploy and start-up.
/// Brings the serving versions in step with the store after a change made elsewhere (a
/// hand edit of the database, another process): loads every function whose current
/// version or config differs from what serves, through the same path as a deploy, and
/// stops serving those no longer stored. Returns how many functions changed.
pub async fn sync_stored_versions(store: &dyn Store, invoker: &dyn Invoker) -> Result<usize> {
    let stored = store.list_functions().await?;
    let serving = invoker.serving();
    let mut changed = 0;
    for (function, version) in &stored {
        let current = serving.iter().find(|(name, _, _)| *name == function.name);
        match current {
            Some((_, number, config))
                if *number == version.version && *config == version.config =>
            {
                continue;
            }
            // A version set back by hand: the newer one must go first (activation
            // never replaces a newer version on its own).
            Some((_, number, _)) if *number > version.version => invoker.remove(&function.name),
            _ => {}
        }
        load_stored_version(store, invoker, function, version).await?;
        changed += 1;
    }
    for (name, _, _) in serving {
        if !stored.iter().any(|(function, _)| function.name == name) {
            invoker.remove(&name);
            changed += 1;
        }
    }
    Ok(changed)
}

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
