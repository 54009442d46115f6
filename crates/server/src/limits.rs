//! Limits on what a request may be, checked before any handler runs.
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The longest path and query accepted; authorization requests are far shorter.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The longest body accepted: every body we read is a small form.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The answer to a request over a limit, before anything parses it: 414 for an overlong URI
/// (RFC 9110 §15.5.15), 431 for oversized headers (RFC 6585 §5), 413 for a declared body
/// length over [`MAX_BODY_BYTES`] (RFC 9110 §15.5.14). A body that turns out longer than
/// it declared, or that declares nothing, is cut at the limit when it is read.
pub fn refusal<B>(request: &Request<B>) -> Option<Response> {
    let uri = request.uri();
    if uri.path().len() + uri.query().map_or(0, str::len) > MAX_URI_BYTES {
        return Some((StatusCode::URI_TOO_LONG, "The request URI is too long.\n").into_response());
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "The request headers are too large.\n",
            )
                .into_response(),
        );
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Some(
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request body is too large; send at most {} KiB.\n",
                    MAX_BODY_BYTES / 1024
                ),
            )
                .into_response(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn status(r: &Request<()>) -> Option<StatusCode> {
        refusal(r).map(|response| response.status())
    }

    #[test]
    fn requests_within_every_limit_pass() {
        let r = request("/o/oauth2/token?a=b", &[("content-length", "16384")]);
        assert_eq!(status(&r), None);
        assert_eq!(status(&request("/", &[])), None);
    }

    #[test]
    fn each_limit_has_its_status() {
        let long = format!("/o/oauth2/authorize?state={}", "s".repeat(MAX_URI_BYTES));
        assert_eq!(status(&request(&long, &[])), Some(StatusCode::URI_TOO_LONG));
        let big = "v".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            status(&request("/", &[("x-big", &big)])),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            status(&request("/", &[("content-length", "16385")])),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
        // A length that does not parse is left to hyper, which refuses it before this runs.
        assert_eq!(status(&request("/", &[("content-length", "x")])), None);
    }
}
