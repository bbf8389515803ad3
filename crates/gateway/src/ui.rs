//! The dashboard: one self-contained page (HTML, CSS and JavaScript, no CDN), embedded
//! in the binary. It asks for an API key once (or takes `#key=` from the URL), keeps it
//! in the browser's storage, and draws everything from the HTTP API.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("ui/dashboard.html");

pub(crate) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything it needs is on this page or this origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
}
