//! The main API: `/functions`, `/invoke/:name[/*rest]`, `/health`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use minifaas_api::{
    CodeView, CreateFunctionRequest, Deleted, FunctionList, FunctionView, Health,
    UpdateFunctionRequest,
};
use minifaas_core::{
    Error, FunctionName, FunctionRecord, InvokeRequest, InvokeResponse, VersionRecord,
};
use serde_json::Value;

use crate::AppState;
use crate::body::{parse_json, read_limited};
use crate::deploy;
use crate::error::ApiError;

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn view(
    state: &AppState,
    function: &FunctionRecord,
    version: &VersionRecord,
) -> FunctionView {
    FunctionView {
        ok: true,
        id: function.id.clone(),
        name: function.name.to_string(),
        lang: version.lang.to_string(),
        wasm: version.lang.is_wasm(),
        version: version.version,
        size: version.source_size,
        config: version.config.to_json(),
        source_sha256: version.source_sha256.clone(),
        artifact_sha256: version.artifact_sha256.clone(),
        created_at: function.created_at,
        updated_at: function.updated_at,
        instances: state.invoker.live_instances(&function.name),
    }
}

pub(crate) async fn health() -> Json<Health> {
    Json(Health {
        ok: true,
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<FunctionList>> {
    let functions = state.store.list_functions().await?;
    Ok(Json(FunctionList {
        ok: true,
        functions: functions.iter().map(|(f, v)| view(&state, f, v)).collect(),
    }))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<FunctionView>)> {
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let request: CreateFunctionRequest = parse_json(&bytes)?;
    let source = deploy::decode_source(request.code, request.code_base64)?.ok_or_else(|| {
        Error::invalid(
            "missing_code",
            "the request needs the function's source in `code` or `code_base64`",
        )
    })?;
    let config = request.config.unwrap_or(Value::Null);
    let (function, version) = deploy::create(
        &state,
        &request.name,
        request.lang.as_deref(),
        source,
        &config,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state, &function, &version))))
}

async fn find(state: &AppState, raw_name: &str) -> ApiResult<(FunctionRecord, VersionRecord)> {
    let name = FunctionName::parse(raw_name)?;
    state
        .store
        .get_function(name.as_str())
        .await?
        .filter(|(f, _)| f.name == name)
        .ok_or_else(|| ApiError(Error::function_not_found()))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<FunctionView>> {
    let (function, version) = find(&state, &name).await?;
    Ok(Json(view(&state, &function, &version)))
}

pub(crate) async fn code(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CodeView>> {
    let (function, version) = find(&state, &name).await?;
    let source = state.store.get_blob(&version.source_sha256).await?;
    let (code, code_base64) = match (version.lang.is_binary(), std::str::from_utf8(&source)) {
        (false, Ok(text)) => (Some(text.to_owned()), None),
        _ => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&source)),
        ),
    };
    Ok(Json(CodeView {
        ok: true,
        name: function.name.to_string(),
        lang: version.lang.to_string(),
        version: version.version,
        code,
        code_base64,
    }))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<FunctionView>> {
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let request: UpdateFunctionRequest = parse_json(&bytes)?;
    let source = deploy::decode_source(request.code, request.code_base64)?;
    if source.is_none() && request.config.is_none() && request.lang.is_none() {
        return Err(ApiError(Error::invalid(
            "empty_update",
            "an update needs new `code`/`code_base64` and/or `config`",
        )));
    }
    let config = request.config.unwrap_or(Value::Null);
    let (function, version) =
        deploy::update(&state, &name, request.lang.as_deref(), source, &config).await?;
    Ok(Json(view(&state, &function, &version)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let name = deploy::delete(&state, &name).await?;
    Ok(Json(Deleted {
        ok: true,
        name: name.to_string(),
    }))
}

/// Headers a function may not set: they describe the connection, which is the server's.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "te",
    "trailer",
];

/// The function's own response: its status, its headers, its body.
pub(crate) fn into_http(response: InvokeResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut http = Response::new(Body::from(response.body.clone()));
    *http.status_mut() = status;
    let headers = http.headers_mut();
    for (name, value) in &response.headers {
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if !headers.contains_key(header::CONTENT_TYPE) {
        let content_type = if std::str::from_utf8(&response.body).is_ok() {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        };
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    http
}

/// Who may call `name` (its key, or a public function), its rate limits, then the body
/// under the limit. Returns the function, the headers it may see (the platform key
/// removed) and the body. Shared by `/invoke/:name` and the seed's `/invoke?fn=`.
pub(crate) async fn admit_invocation(
    state: &AppState,
    name: Option<FunctionName>,
    mut headers: HeaderMap,
    body: Body,
) -> Result<(FunctionName, HeaderMap, bytes::Bytes), ApiError> {
    let access = name.as_ref().and_then(|n| state.invoker.access(n));
    state
        .auth
        .authorize_invoke(&headers, name.as_ref(), access)
        .await?;
    let name = name.ok_or_else(Error::function_not_found)?;
    crate::auth::strip_platform_credentials(&mut headers, access);
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    Ok((name, headers, bytes))
}

/// The request as a function sees it.
pub(crate) fn invoke_request(
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> InvokeRequest {
    InvokeRequest {
        id: String::new(),
        method: method.as_str().to_owned(),
        path: path.to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
    }
}

pub(crate) async fn invoke(
    State(state): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let mut name = "";
    let mut rest = "";
    for (key, value) in &params {
        match key.as_str() {
            "name" => name = value,
            "rest" => rest = value,
            _ => {}
        }
    }
    let name = FunctionName::parse(name).ok();
    let (name, headers, bytes) = admit_invocation(&state, name, headers, body).await?;
    let path = format!("/{rest}");
    let request = invoke_request(&method, &path, &uri, &headers, bytes);
    let (id, result) = crate::observe::run_invocation(&state, &name, request).await;
    let response = match result {
        Ok(response) => into_http(response).into_response(),
        Err(err) => ApiError(err).into_response(),
    };
    Ok(crate::observe::with_invocation_id(response, &id))
}
