//! `/keys`: creating, listing and revoking API keys (admin scope).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use minifaas_api::{CreateKeyRequest, CreatedKey, KeyList, KeyRevoked, KeyView};
use minifaas_core::{Error, KeyRecord, Scopes};

use crate::AppState;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;

/// Longest key name accepted.
const MAX_KEY_NAME: usize = 128;

fn view(record: &KeyRecord) -> KeyView {
    KeyView {
        id: record.id.clone(),
        name: record.name.clone(),
        scopes: record
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        rate_limit: record.rate_limit,
        created_at: record.created_at,
    }
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let bytes = read_limited(&headers, body, 64 * 1024).await?;
    let request: CreateKeyRequest = parse_json(&bytes)?;
    let scopes = Scopes::parse(&request.scopes)?;
    let rate_limit = minifaas_core::auth::validate_rate_limit(request.rate_limit)?;
    let name = request.name.unwrap_or_default();
    if name.len() > MAX_KEY_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_key_name",
            format!("a key name is at most {MAX_KEY_NAME} printable characters"),
        )
        .into());
    }
    let (record, secret) = state.auth.create_key(name, scopes, rate_limit).await?;
    tracing::info!(key = %record.id, scopes = %record.scopes.joined(), "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            ok: true,
            key: secret,
            view: view(&record),
        }),
    ))
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    let keys = state.auth.list_keys().await?;
    Ok(Json(KeyList {
        ok: true,
        keys: keys.iter().map(view).collect(),
    }))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<KeyRevoked>, ApiError> {
    if !state.auth.revoke(&id).await? {
        return Err(Error::not_found(format!("no API key with id '{id}'")).into());
    }
    tracing::info!(key = %id, "API key revoked");
    Ok(Json(KeyRevoked { ok: true, id }))
}
