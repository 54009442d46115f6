//! The one route table. Every path the server answers is here; the metadata document is
//! generated from these constants.
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{any, get};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::endpoints::{authorize, introspect, jwks, metadata, revoke, token, userinfo};
use crate::ops;
use crate::pages::{assets, consent, login, logout};
use crate::state::AppState;

pub const AUTHORIZE: &str = "/o/oauth2/authorize";
pub const TOKEN: &str = "/o/oauth2/token";
pub const REVOKE: &str = "/o/oauth2/revoke";
pub const INTROSPECT: &str = "/o/oauth2/introspect";
pub const JWKS: &str = "/o/oauth2/jwks";
pub const USERINFO: &str = "/o/oauth2/userinfo";
pub const METADATA: &str = "/.well-known/oauth-authorization-server";
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const LOGIN: &str = "/login";
pub const CONSENT: &str = "/consent";
pub const LOGOUT: &str = "/logout";
pub const ACCOUNT: &str = "/account";
pub const STYLESHEET: &str = "/assets/oauthd.css";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// Form bodies are small; anything larger is refused before it is read (413).
const BODY_LIMIT: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(AUTHORIZE, get(authorize::get))
        .route(TOKEN, any(token::handle))
        .route(REVOKE, any(revoke::handle))
        .route(INTROSPECT, any(introspect::handle))
        .route(JWKS, get(jwks::get))
        .route(USERINFO, get(userinfo::handle).post(userinfo::handle))
        .route(METADATA, get(metadata::oauth))
        .route(OPENID_CONFIGURATION, get(metadata::openid))
        .route(LOGIN, get(login::show).post(login::submit))
        .route(CONSENT, get(consent::show).post(consent::submit))
        .route(LOGOUT, get(logout::show).post(logout::submit))
        .route(ACCOUNT, get(login::account))
        .route(STYLESHEET, get(assets::stylesheet))
        .route(HEALTHZ, get(ops::healthz))
        .route(READYZ, get(ops::readyz))
        .route(METRICS, get(ops::metrics))
        .fallback(assets::not_found)
        .route_layer(axum::middleware::from_fn(ops::track))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // Outermost, so the refusals of the layers inside (413, 408) carry the headers too.
        // One layer for all of it: each layer is work on every request.
        .layer(axum::middleware::from_fn(edge))
}

/// The size limits on the request head, then the security headers on whatever answers.
async fn edge(request: Request, next: Next) -> Response {
    let mut response = crate::limits::request_size(request, next).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.entry(name).or_insert(value);
    }
    response
}
