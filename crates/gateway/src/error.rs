//! The one mapping from error kinds to HTTP responses.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use minifaas_api::ErrorBody;
use minifaas_core::{Error, ErrorKind};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::BuildFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::FunctionFailed => StatusCode::BAD_GATEWAY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Platform => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn body(message: String, code: &str) -> Json<ErrorBody> {
    Json(ErrorBody {
        ok: false,
        error: message,
        code: code.to_owned(),
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Error {
            kind,
            code,
            message,
            retry_after_secs,
        } = self.0;
        let status = status_of(kind);
        let message = if kind == ErrorKind::Platform {
            // The detail may name files or internals: log it, show a generic sentence.
            tracing::error!(code, detail = %message, "platform error");
            "the server hit an internal error; the details are in its log".to_owned()
        } else {
            message
        };
        let mut response = (status, body(message, code)).into_response();
        if matches!(kind, ErrorKind::Overloaded | ErrorKind::Unavailable) {
            let secs = retry_after_secs.unwrap_or(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub(crate) async fn no_route(method: Method, uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        body(
            format!("no endpoint {method} {}", uri.path()),
            "route_not_found",
        ),
    )
        .into_response()
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        body(
            format!("{} does not accept {method}", uri.path()),
            "method_not_allowed",
        ),
    )
        .into_response()
}

pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(detail, "a request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        body(
            "the server hit an internal error; the details are in its log".into(),
            "internal",
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_the_status_design_gives_it() {
        let cases = [
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::NotFound, 404),
            (ErrorKind::Conflict, 409),
            (ErrorKind::TooLarge, 413),
            (ErrorKind::BuildFailed, 422),
            (ErrorKind::Overloaded, 429),
            (ErrorKind::FunctionFailed, 502),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Timeout, 504),
            (ErrorKind::Platform, 500),
        ];
        for (kind, status) in cases {
            assert_eq!(status_of(kind).as_u16(), status, "{kind:?}");
        }
    }

    #[test]
    fn platform_details_are_not_shown() {
        let response = ApiError(Error::platform("open /secret/path: denied")).into_response();
        assert_eq!(response.status(), 500);
    }
}
