//! `/instances`: the live instances of every function, and stopping one.

use axum::Json;
use axum::extract::{Path, State};
use minifaas_api::{InstanceList, InstanceStopped, InstanceView};
use minifaas_core::{Error, InstanceInfo};

use crate::AppState;
use crate::error::ApiError;

fn view(info: InstanceInfo) -> InstanceView {
    InstanceView {
        id: info.id,
        function: info.function,
        version: info.version,
        pid: info.pid,
        state: info.state.as_str().to_owned(),
        in_flight: info.in_flight,
        cpu: info.cpu,
        memory: info.memory,
        io: info.io,
        started_at: info.started_at,
        last_used_at: info.last_used_at,
    }
}

pub(crate) async fn list(State(state): State<AppState>) -> Json<InstanceList> {
    Json(InstanceList {
        ok: true,
        instances: state.invoker.instances().into_iter().map(view).collect(),
    })
}

/// Drains the instance (no new requests) and stops it once its requests finish.
pub(crate) async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InstanceStopped>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| Error::invalid("invalid_id", format!("'{id}' is not an instance id")))?;
    let info = state.invoker.stop_instance(id)?;
    Ok(Json(InstanceStopped {
        ok: true,
        instance: view(info),
    }))
}
