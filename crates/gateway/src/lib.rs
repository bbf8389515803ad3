//! minifaas-gateway: the HTTP face of the platform.
//!
//! [`router`] builds every endpoint on an [`AppState`] of trait objects (`dyn Store`,
//! `dyn Builder`, `dyn Invoker`): the gateway never touches SQL, wasmtime or processes.
//!
//! - `auth.rs`: API keys, scopes and rate limits; each route group below names the scope
//!   it needs, and the invoke handlers ask [`Auth::authorize_invoke`] (public functions);
//! - `keys.rs`: `/keys` (admin);
//! - `observe.rs`: the measured, recorded invocation path and the endpoints that show
//!   records, logs, stats and metrics (`records.rs`, `logs.rs`, `stats.rs` hold them);
//! - `ui.rs`: the dashboard, one embedded page;
//! - `error.rs`: the one mapping from [`minifaas_core::ErrorKind`] to an HTTP status and
//!   the JSON error body; a platform fault's detail goes to the log, never to the client;
//! - `body.rs`: reading bodies under the size limit (413 before buffering past it);
//! - `deploy.rs`: the deploy pipeline (validate → build → prepare → commit → activate);
//! - `functions.rs`: the main API (`/functions`, `/invoke/:name`, `/health`);
//! - `instances.rs`: `/instances` (list, drain one);
//! - `seed.rs`: the seed API (`/deploy`, `/invoke?fn=`, `/function/:name`).

mod auth;
mod body;
mod deploy;
mod error;
mod functions;
mod instances;
mod keys;
mod logs;
mod observe;
mod records;
mod seed;
mod stats;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use minifaas_core::{Builder, Invoker, Scope, Store};

pub use auth::{Auth, AuthMode};
pub use error::ApiError;
pub use logs::{LogBook, LogLayer, log_book};
pub use observe::{INVOCATION_ID, Observability};
pub use records::{Recorder, Retention, run_recorder};
pub use stats::Stats;

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
    pub auth: Arc<Auth>,
    pub observe: Arc<Observability>,
    pub limits: GatewayLimits,
}

async fn require(state: &AppState, scope: Scope, request: Request, next: Next) -> Response {
    match state.auth.require(request.headers(), scope).await {
        Ok(_) => next.run(request).await,
        Err(err) => ApiError(err).into_response(),
    }
}

async fn manage_scope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, Scope::Manage, request, next).await
}

async fn admin_scope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, Scope::Admin, request, next).await
}

/// Every endpoint of the platform, grouped by the scope it needs.
pub fn router(state: AppState) -> Router {
    // No key: health. Invocations check their own (a public function needs none).
    let open = Router::new()
        .route("/health", get(functions::health))
        // The dashboard's page; the data it shows comes from the API, with a key.
        .route("/ui", get(ui::page))
        .route("/invoke", post(seed::invoke))
        .route("/invoke/{name}", any(functions::invoke))
        .route("/invoke/{name}/{*rest}", any(functions::invoke));
    let manage = Router::new()
        .route("/deploy", post(seed::deploy))
        .route("/function/{name}", get(seed::get_function))
        .route("/functions", get(functions::list).post(functions::create))
        .route(
            "/functions/{name}",
            get(functions::get)
                .put(functions::update)
                .delete(functions::delete),
        )
        .route("/functions/{name}/code", get(functions::code))
        .route("/instances", get(instances::list))
        .route("/instances/{id}", delete(instances::stop))
        .route("/invocations/{id}", get(observe::invocation))
        .route(
            "/functions/{name}/invocations",
            get(observe::list_invocations),
        )
        .route("/functions/{name}/logs", get(observe::logs))
        .route("/stats", get(observe::platform_stats))
        .route("/stats/functions/{name}", get(observe::function_stats))
        .route("/metrics", get(observe::metrics))
        .route_layer(from_fn_with_state(state.clone(), manage_scope));
    let admin = Router::new()
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", delete(keys::revoke))
        .route_layer(from_fn_with_state(state.clone(), admin_scope));
    Router::new()
        .merge(open)
        .merge(manage)
        .merge(admin)
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                // A 5xx a function caused is the function's (its record and the metrics
                // have it); the server's own faults are logged where they happen.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG))
                .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                    // Every line logged while serving a request carries its id.
                    static NEXT: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(1);
                    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info_span!(
                        "request",
                        id,
                        method = %request.method(),
                        path = %request.uri().path()
                    )
                }),
        )
        .with_state(state)
}
