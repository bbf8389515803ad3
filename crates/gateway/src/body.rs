//! Reading request bodies under the size limit.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use minifaas_core::{Error, Result};

/// The whole body, or `TooLarge` as soon as it is known to pass `limit`: from the
/// `Content-Length` header before reading anything, else while streaming.
pub(crate) async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    let too_large = || {
        Error::too_large(format!(
            "the request body is larger than the {limit} byte limit"
        ))
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(err) => {
            let inner = err.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(too_large())
            } else {
                Err(Error::invalid(
                    "body_unreadable",
                    format!("the request body could not be read: {inner}"),
                ))
            }
        }
    }
}

/// Parses a JSON body into `T` with an error that says what is wrong.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::invalid(
            "invalid_json",
            format!("the request body is not valid JSON for this endpoint: {e}"),
        )
    })
}
