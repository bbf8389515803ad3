//! The route table and the [`Invoker`] on top of it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use minifaas_core::{
    Artifact, Error, Executor, FunctionConfig, FunctionName, InvokeRequest, InvokeResponse,
    Invoker, PreparedFunction, PreparedVersion, Result,
};
use tokio::sync::Semaphore;

/// Name → serving version, and seed id → name.
#[derive(Default)]
struct RouteTable {
    by_name: HashMap<FunctionName, Arc<PreparedVersion>>,
    by_id: HashMap<String, FunctionName>,
}

/// Routes invocations to the current version of each function.
pub struct Scheduler {
    executors: Vec<Arc<dyn Executor>>,
    routes: RwLock<RouteTable>,
    /// Server-wide cap on invocations running at once.
    admission: Arc<Semaphore>,
    /// How long a request may wait for a slot before 503.
    max_wait: Duration,
}

impl Scheduler {
    pub fn new(
        executors: Vec<Arc<dyn Executor>>,
        max_concurrency: usize,
        max_wait: Duration,
    ) -> Self {
        Self {
            executors,
            routes: RwLock::new(RouteTable::default()),
            admission: Arc::new(Semaphore::new(max_concurrency.max(1))),
            max_wait,
        }
    }

    fn route(&self, name: &FunctionName) -> Option<Arc<PreparedVersion>> {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    /// The version serving `name`, if any.
    pub fn serving_version(&self, name: &FunctionName) -> Option<u32> {
        self.route(name).map(|r| r.version)
    }

    /// How many functions are serving.
    pub fn function_count(&self) -> usize {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .by_name
            .len()
    }
}

#[async_trait]
impl Invoker for Scheduler {
    fn resolve(&self, name_or_id: &str) -> Option<FunctionName> {
        let table = self
            .routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(name) = FunctionName::parse(name_or_id)
            && table.by_name.contains_key(&name)
        {
            return Some(name);
        }
        table.by_id.get(name_or_id).cloned()
    }

    async fn invoke(&self, name: &FunctionName, request: InvokeRequest) -> Result<InvokeResponse> {
        let route = self.route(name).ok_or_else(Error::function_not_found)?;
        let permit =
            match tokio::time::timeout(self.max_wait, self.admission.clone().acquire_owned()).await
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
                        "every execution slot stayed busy; retry shortly",
                    ));
                }
            };
        let response = route.function.invoke(request).await;
        drop(permit);
        response
    }

    async fn prepare(
        &self,
        name: &FunctionName,
        config: &FunctionConfig,
        artifact: &Artifact,
    ) -> Result<Arc<dyn PreparedFunction>> {
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
        executor.prepare(name, config, artifact).await
    }

    fn activate(&self, version: PreparedVersion) {
        let name = version.name.clone();
        let number = version.version;
        let mut table = self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Two updates racing may finish out of order: never replace a newer version.
        if let Some(serving) = table.by_name.get(&name)
            && serving.version > number
        {
            tracing::info!(function = %name, version = number, serving = serving.version, "not activating an older version");
            return;
        }
        table.by_id.insert(version.id.clone(), name.clone());
        let previous = table.by_name.insert(name.clone(), Arc::new(version));
        drop(table);
        tracing::info!(function = %name, version = number, replaced = ?previous.map(|p| p.version), "version serving");
    }

    fn remove(&self, name: &FunctionName) {
        let mut table = self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let removed = table.by_name.remove(name);
        if let Some(removed) = &removed {
            table.by_id.remove(&removed.id);
        }
        drop(table);
        if removed.is_some() {
            tracing::info!(function = %name, "function removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// A function that echoes its body after a pause: a real `PreparedFunction`, used to
    /// test the scheduler's own behaviour (routing, draining) apart from any executor.
    struct Echo {
        pause: Duration,
        tag: &'static str,
    }

    #[async_trait]
    impl PreparedFunction for Echo {
        async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
            tokio::time::sleep(self.pause).await;
            let mut body = self.tag.as_bytes().to_vec();
            body.extend_from_slice(&request.body);
            Ok(InvokeResponse::ok(body))
        }
    }

    fn version(name: &FunctionName, n: u32, pause_ms: u64, tag: &'static str) -> PreparedVersion {
        PreparedVersion {
            name: name.clone(),
            id: format!("{name}_1"),
            version: n,
            config: FunctionConfig::default(),
            function: Arc::new(Echo {
                pause: Duration::from_millis(pause_ms),
                tag,
            }),
        }
    }

    #[tokio::test]
    async fn a_request_in_flight_finishes_on_the_version_it_started_on() {
        let scheduler = Arc::new(Scheduler::new(vec![], 8, Duration::from_secs(1)));
        let name = FunctionName::parse("f").unwrap();
        scheduler.activate(version(&name, 1, 200, "v1:"));
        let in_flight = {
            let scheduler = scheduler.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let request = InvokeRequest {
                    body: Bytes::from_static(b"x"),
                    ..Default::default()
                };
                scheduler.invoke(&name, request).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        scheduler.activate(version(&name, 2, 0, "v2:"));
        let next = scheduler
            .invoke(&name, InvokeRequest::default())
            .await
            .unwrap();
        assert_eq!(&next.body[..], b"v2:");
        let old = in_flight.await.unwrap().unwrap();
        assert_eq!(&old.body[..], b"v1:x");
        assert_eq!(scheduler.resolve("f_1"), Some(name.clone()));
        scheduler.activate(version(&name, 1, 0, "stale:"));
        assert_eq!(scheduler.serving_version(&name), Some(2));
        scheduler.remove(&name);
        assert_eq!(scheduler.resolve("f_1"), None);
        let err = scheduler
            .invoke(&name, InvokeRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code, "function_not_found");
    }

    #[tokio::test]
    async fn a_full_server_answers_unavailable_after_the_wait_limit() {
        let scheduler = Arc::new(Scheduler::new(vec![], 1, Duration::from_millis(50)));
        let name = FunctionName::parse("slow").unwrap();
        scheduler.activate(version(&name, 1, 300, ""));
        let busy = {
            let scheduler = scheduler.clone();
            let name = name.clone();
            tokio::spawn(async move { scheduler.invoke(&name, InvokeRequest::default()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = scheduler
            .invoke(&name, InvokeRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code, "no_capacity");
        assert!(busy.await.unwrap().is_ok());
    }
}
