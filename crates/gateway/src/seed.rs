//! The seed API, with the shapes the earlier projects' clients expect:
//! `POST /deploy?name=&lang=` (raw body, or JSON `{"name","lang","code"}`),
//! `POST /invoke?fn=<id or name>` → `{"ok":true,"output":...}`,
//! `GET /function/:name` → the function with its code.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse as _;
use base64::Engine as _;
use minifaas_api::{
    SeedDeployQuery, SeedDeployRequest, SeedDeployResponse, SeedFunctionView, SeedInvokeQuery,
    SeedInvokeResponse,
};
use minifaas_core::{Error, Scope};
use serde_json::Value;

use crate::AppState;
use crate::body::{parse_json, read_limited};
use crate::deploy;
use crate::error::ApiError;
use crate::functions::invoke_request;

type ApiResult<T> = Result<T, ApiError>;

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

pub(crate) async fn deploy(
    State(state): State<AppState>,
    Query(query): Query<SeedDeployQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<SeedDeployResponse>)> {
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    // JSON when the client says so and the query does not carry the name (a JSON
    // source file deployed with ?name= is still a raw upload).
    let (name, lang, source) = match (query.name, is_json(&headers)) {
        (None, true) => {
            let request: SeedDeployRequest = parse_json(&bytes)?;
            (request.name, request.lang, bytes::Bytes::from(request.code))
        }
        (Some(name), _) => {
            let lang = query.lang.ok_or_else(|| {
                Error::invalid(
                    "missing_lang",
                    "add ?lang= (c, rust, go, wasm, ...) to the deploy URL",
                )
            })?;
            (name, lang, bytes)
        }
        (None, false) => {
            return Err(ApiError(Error::invalid(
                "missing_name",
                "add ?name=&lang= to the deploy URL, or send JSON {\"name\",\"lang\",\"code\"}",
            )));
        }
    };
    let (function, version) =
        deploy::create(&state, &name, Some(&lang), source, &Value::Null).await?;
    Ok((
        StatusCode::CREATED,
        Json(SeedDeployResponse {
            ok: true,
            id: function.id,
            name: function.name.to_string(),
            lang: version.lang.to_string(),
            wasm: version.lang.is_wasm(),
        }),
    ))
}

pub(crate) async fn invoke(
    State(state): State<AppState>,
    Query(query): Query<SeedInvokeQuery>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::response::Response> {
    let Some(key) = query.function else {
        state.auth.require(&headers, Scope::Invoke).await?;
        return Err(Error::invalid(
            "missing_fn",
            "add ?fn=<function id or name> to the invoke URL",
        )
        .into());
    };
    let name = state.invoker.resolve(&key);
    let (name, headers, bytes) =
        crate::functions::admit_invocation(&state, name, headers, body).await?;
    // The function sees the request without the seed API's own query string.
    let request = invoke_request(&method, "/", &Uri::from_static("/"), &headers, bytes);
    let (id, result) = crate::observe::run_invocation(&state, &name, request).await;
    let response = match result {
        Ok(response) => Json(SeedInvokeResponse {
            ok: true,
            output: String::from_utf8_lossy(&response.body).into_owned(),
        })
        .into_response(),
        Err(err) => ApiError(err).into_response(),
    };
    Ok(crate::observe::with_invocation_id(response, &id))
}

pub(crate) async fn get_function(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> ApiResult<Json<SeedFunctionView>> {
    // The seed looked functions up by name; ids are accepted too.
    let (function, version) = state
        .store
        .get_function(&key)
        .await?
        .ok_or_else(Error::function_not_found)?;
    let source = state.store.get_blob(&version.source_sha256).await?;
    let code = if version.lang.is_binary() {
        base64::engine::general_purpose::STANDARD.encode(&source)
    } else {
        String::from_utf8_lossy(&source).into_owned()
    };
    Ok(Json(SeedFunctionView {
        ok: true,
        id: function.id,
        name: function.name.to_string(),
        lang: version.lang.to_string(),
        size: version.source_size,
        code,
    }))
}
