//! The route table (function name → the pool of its serving version) and the
//! [`Invoker`] on top of it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use minifaas_core::{
    Artifact, Error, Executor, FunctionConfig, FunctionName, InstanceDefaults, InstanceInfo,
    InvokeRequest, Invoker, Observed, PreparedFunction, PreparedVersion, Result,
};
use tokio::sync::Semaphore;

use crate::pool::Pool;
use crate::settings::{PoolSettings, SchedulerOptions};

/// Name → serving pool, and seed id → name.
#[derive(Default)]
struct RouteTable {
    by_name: HashMap<FunctionName, (String, Arc<Pool>)>,
    by_id: HashMap<String, FunctionName>,
}

/// Routes invocations to the pool of each function's current version.
pub struct Scheduler {
    executors: Vec<Arc<dyn Executor>>,
    routes: RwLock<RouteTable>,
    /// Server-wide cap on invocations running at once (`max_concurrency`).
    admission: Arc<Semaphore>,
    pub(crate) options: SchedulerOptions,
}

impl Scheduler {
    pub fn new(executors: Vec<Arc<dyn Executor>>, options: SchedulerOptions) -> Self {
        Self {
            executors,
            routes: RwLock::new(RouteTable::default()),
            admission: Arc::new(Semaphore::new(options.max_concurrency.max(1))),
            options,
        }
    }

    fn table(&self) -> std::sync::RwLockReadGuard<'_, RouteTable> {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pool(&self, name: &FunctionName) -> Option<Arc<Pool>> {
        self.table().by_name.get(name).map(|(_, pool)| pool.clone())
    }

    /// Every serving pool (for the autoscaler).
    pub(crate) fn pools(&self) -> Vec<Arc<Pool>> {
        self.table()
            .by_name
            .values()
            .map(|(_, pool)| pool.clone())
            .collect()
    }

    /// Admits and runs one invocation: the server-wide permit, then the pool.
    async fn admit_and_run(&self, name: &FunctionName, request: InvokeRequest) -> Result<Observed> {
        let pool = self.pool(name).ok_or_else(Error::function_not_found)?;
        let permit = match tokio::time::timeout(
            self.options.max_wait,
            self.admission.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return Err(Error::unavailable(
                    "shutting_down",
                    "the server is shutting down",
                ));
            }
            Err(_) => {
                return Err(Error::unavailable(
                    "no_capacity",
                    "every execution slot of the server stayed busy; retry shortly",
                ));
            }
        };
        let observed = pool.invoke(request, self.options.max_wait).await;
        drop(permit);
        observed
    }

    fn settings_for(
        &self,
        config: &FunctionConfig,
        defaults: InstanceDefaults,
    ) -> Result<PoolSettings> {
        PoolSettings::from_config(config, defaults, &self.options)
    }
}

#[async_trait]
impl Invoker for Scheduler {
    fn resolve(&self, name_or_id: &str) -> Option<FunctionName> {
        let table = self.table();
        if let Ok(name) = FunctionName::parse(name_or_id)
            && table.by_name.contains_key(&name)
        {
            return Some(name);
        }
        table.by_id.get(name_or_id).cloned()
    }

    fn access(&self, name: &FunctionName) -> Option<minifaas_core::FunctionAccess> {
        self.table()
            .by_name
            .get(name)
            .map(|(_, pool)| minifaas_core::FunctionAccess::of(&pool.config))
    }

    fn serving(&self) -> Vec<(FunctionName, u32, FunctionConfig)> {
        self.table()
            .by_name
            .iter()
            .map(|(name, (_, pool))| (name.clone(), pool.version, pool.config.clone()))
            .collect()
    }

    async fn invoke(&self, name: &FunctionName, request: InvokeRequest) -> Result<Observed> {
        self.admit_and_run(name, request).await
    }

    async fn prepare(
        &self,
        name: &FunctionName,
        config: &FunctionConfig,
        artifact: &Artifact,
    ) -> Result<Arc<dyn PreparedFunction>> {
        // Check the scheduling keys before paying for the executor's prepare.
        self.settings_for(
            config,
            InstanceDefaults {
                concurrency: 1,
                max_instances: 1024,
            },
        )?;
        let executor = self
            .executors
            .iter()
            .find(|e| e.kinds().contains(&artifact.kind))
            .ok_or_else(|| {
                Error::platform(format!(
                    "no executor for {} artifacts",
                    artifact.kind.as_str()
                ))
            })?;
        let function = executor.prepare(name, config, artifact).await?;
        self.settings_for(config, function.defaults())?;
        Ok(function)
    }

    fn activate(&self, version: PreparedVersion) {
        let name = version.name.clone();
        let number = version.version;
        let settings = match self.settings_for(&version.config, version.function.defaults()) {
            Ok(settings) => settings,
            Err(err) => {
                tracing::error!(function = %name, %err, "not activating: bad scheduling settings");
                return;
            }
        };
        let pool = Arc::new(
            Pool::new(
                name.clone(),
                number,
                version.function.clone(),
                settings,
                self.options.weights,
            )
            .with_config(version.config.clone()),
        );
        {
            let mut table = self
                .routes
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Two updates racing may finish out of order: never replace a newer version.
            if let Some((_, serving)) = table.by_name.get(&name)
                && serving.version > number
            {
                tracing::info!(function = %name, version = number, serving = serving.version, "not activating an older version");
                return;
            }
            table.by_id.insert(version.id.clone(), name.clone());
            let previous = table
                .by_name
                .insert(name.clone(), (version.id.clone(), pool.clone()));
            tracing::info!(function = %name, version = number, replaced = ?previous.map(|(_, p)| p.version), "version serving");
        }
        // Pre-warm: `min_instances`, and at least the one instance prepare started.
        let warm = pool.settings.min_instances.max(1);
        pool.reserve(warm);
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(pool.warm(warm));
        }
    }

    fn remove(&self, name: &FunctionName) {
        let mut table = self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let removed = table.by_name.remove(name);
        if let Some((id, _)) = &removed {
            table.by_id.remove(id);
        }
        drop(table);
        if removed.is_some() {
            tracing::info!(function = %name, "function removed");
        }
    }

    fn instances(&self) -> Vec<InstanceInfo> {
        let mut pools = self.pools();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pools.iter().flat_map(|p| p.instances()).collect()
    }

    fn stop_instance(&self, id: u64) -> Result<InstanceInfo> {
        self.pools()
            .iter()
            .find_map(|pool| pool.drain(id))
            .ok_or_else(|| {
                Error::new(
                    minifaas_core::ErrorKind::NotFound,
                    "instance_not_found",
                    format!("no instance {id}"),
                )
            })
    }

    fn live_instances(&self, name: &FunctionName) -> usize {
        self.pool(name).map(|p| p.live_count()).unwrap_or(0)
    }
}
