//! Limits on what a request may be, checked before any handler runs.
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The longest path and query accepted; authorization requests are far shorter.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// 414 for an overlong URI (RFC 9110 §15.5.15) and 431 for oversized headers (RFC 6585 §5),
/// before anything parses them.
pub async fn request_size(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if uri.path().len() + uri.query().map_or(0, str::len) > MAX_URI_BYTES {
        return (StatusCode::URI_TOO_LONG, "The request URI is too long.\n").into_response();
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request headers are too large.\n",
        )
            .into_response();
    }
    next.run(request).await
}
