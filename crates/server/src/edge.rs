//! What the server does around every request, whatever its route: the limits on its size,
//! the time it may take, its metrics and the headers every response carries.
//!
//! One async function around the route table rather than a stack of tower layers: each
//! layer boxed its future and cloned the service below it on every request, which cost
//! 12 % of the request thread's instructions (BENCHMARKS.md, eleventh session). Here the
//! whole request is one future, held by hyper in the connection's slot.
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, http};
use tower::ServiceExt as _;

use crate::{limits, ops, routes};

/// How long a request may take, from its head read to its response; then 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Headers every response carries unless its handler set its own: nothing loaded from
/// elsewhere, never framed (RFC 9700 §4.16), no referrer, no content sniffing.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
];

/// Answer one request: refuse it if it is too large, else route it within
/// [`REQUEST_TIMEOUT`]; count and time it; add the security headers.
pub async fn handle<B>(router: Router, request: http::Request<B>) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let endpoint = routes::endpoint(request.uri().path());
    let mut response = match limits::refusal(&request) {
        Some(refused) => refused,
        None => {
            // A body longer than the limit fails when a handler reads it: 413 from axum's
            // extractors, as for a declared length over it above.
            let request: Request = request
                .map(|body| Body::new(http_body_util::Limited::new(body, limits::MAX_BODY_BYTES)));
            match tokio::time::timeout(REQUEST_TIMEOUT, router.oneshot(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_elapsed) => (
                    StatusCode::REQUEST_TIMEOUT,
                    "The server did not answer in time; try again.\n",
                )
                    .into_response(),
            }
        }
    };
    ops::record_request(endpoint, response.status(), started.elapsed());
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.entry(name).or_insert(value);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};

    use super::*;

    fn request(method: &str, uri: &str, body: Body) -> http::Request<Body> {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .unwrap()
    }

    fn has_security_headers(response: &Response) -> bool {
        SECURITY_HEADERS
            .iter()
            .all(|(name, value)| response.headers().get(name) == Some(value))
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_takes_too_long_gets_408_with_the_security_headers() {
        let router = Router::new().route(
            routes::TOKEN,
            get(|| async {
                tokio::time::sleep(REQUEST_TIMEOUT * 2).await;
                "late"
            }),
        );
        let started = tokio::time::Instant::now();
        let response = handle(router, request("GET", routes::TOKEN, Body::empty())).await;
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), REQUEST_TIMEOUT);
        assert!(has_security_headers(&response));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_even_without_a_declared_length() {
        let router = Router::new().route(
            routes::TOKEN,
            post(|body: Bytes| async move { body.len().to_string() }),
        );
        let at_limit = Body::from(vec![b'a'; limits::MAX_BODY_BYTES]);
        let response = handle(router.clone(), request("POST", routes::TOKEN, at_limit)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let over = Body::from(vec![b'a'; limits::MAX_BODY_BYTES + 1]);
        let response = handle(router, request("POST", routes::TOKEN, over)).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(has_security_headers(&response));
    }

    #[tokio::test]
    async fn answers_are_counted_by_route_and_status_refusals_included() {
        let metrics = ops::prometheus();
        let router = Router::new().route(routes::JWKS, get(|| async { "keys" }));
        let long = format!("{}?x={}", routes::JWKS, "x".repeat(limits::MAX_URI_BYTES));
        for uri in [routes::JWKS, long.as_str(), "/nowhere"] {
            handle(router.clone(), request("GET", uri, Body::empty())).await;
        }
        let rendered = metrics.render();
        for labels in [
            r#"endpoint="/o/oauth2/jwks",status="200""#,
            r#"endpoint="/o/oauth2/jwks",status="414""#,
            r#"endpoint="unmatched",status="404""#,
        ] {
            assert!(
                rendered.contains(&format!("{}{{{labels}}}", ops::names::REQUESTS)),
                "{labels} in\n{rendered}"
            );
        }
    }
}
