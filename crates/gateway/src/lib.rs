//! minifaas-gateway: the HTTP face of the platform.
//!
//! [`router`] builds every endpoint on an [`AppState`] of trait objects (`dyn Store`,
//! `dyn Builder`, `dyn Invoker`): the gateway never touches SQL, wasmtime or processes.
//!
//! - `error.rs`: the one mapping from [`minifaas_core::ErrorKind`] to an HTTP status and
//!   the JSON error body; a platform fault's detail goes to the log, never to the client;
//! - `body.rs`: reading bodies under the size limit (413 before buffering past it);
//! - `deploy.rs`: the deploy pipeline (validate → build → prepare → commit → activate);
//! - `functions.rs`: the main API (`/functions`, `/invoke/:name`, `/health`);
//! - `instances.rs`: `/instances` (list, drain one);
//! - `seed.rs`: the seed API (`/deploy`, `/invoke?fn=`, `/function/:name`).

mod body;
mod deploy;
mod error;
mod functions;
mod instances;
mod seed;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};
use minifaas_core::{Builder, Invoker, Store};

pub use error::ApiError;

/// Limits on what clients send.
#[derive(Debug, Clone)]
pub struct GatewayLimits {
    /// Largest request body, for invocations and deploys alike.
    pub max_body_bytes: usize,
    /// Largest source (or module) accepted at deploy.
    pub max_source_bytes: usize,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 6 * 1024 * 1024,
            max_source_bytes: 6 * 1024 * 1024,
        }
    }
}

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub builder: Arc<dyn Builder>,
    pub invoker: Arc<dyn Invoker>,
    pub limits: GatewayLimits,
}

/// Every endpoint of the platform.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(functions::health))
        // Seed API.
        .route("/deploy", post(seed::deploy))
        .route("/invoke", post(seed::invoke))
        .route("/function/{name}", get(seed::get_function))
        // Main API.
        .route("/functions", get(functions::list).post(functions::create))
        .route(
            "/functions/{name}",
            get(functions::get)
                .put(functions::update)
                .delete(functions::delete),
        )
        .route("/functions/{name}/code", get(functions::code))
        .route("/instances", get(instances::list))
        .route("/instances/{id}", axum::routing::delete(instances::stop))
        .route("/invoke/{name}", any(functions::invoke))
        .route("/invoke/{name}/{*rest}", any(functions::invoke))
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
