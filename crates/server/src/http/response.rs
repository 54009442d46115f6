//! Response builders: JSON OAuth errors, HTML pages, redirects.
use askama::Template;
use axum::Json;
use axum::http::header::{CACHE_CONTROL, LOCATION, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_store::StoreError;

use crate::pages::templates::ErrorPage;

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// 200 with a JSON body that must not be cached: token, introspection and userinfo answers.
pub fn json_no_store(body: impl serde::Serialize) -> Response {
    no_store((StatusCode::OK, Json(body)).into_response())
}

/// RFC 6749 §5.2: JSON error, 400, or 401 for `invalid_client` (with a Basic challenge when
/// the client tried Basic).
pub fn oauth_error(error: &OAuthError, basic_tried: bool) -> Response {
    let status = match error.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body =
        serde_json::json!({ "error": error.code.as_str(), "error_description": error.description });
    let mut response = no_store((status, Json(body)).into_response());
    if error.code == ErrorCode::InvalidClient && basic_tried {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"oauthd\""),
        );
    }
    response
}

/// A store failure seen by an API client: logged in full, answered without internals.
pub fn store_failure_json(e: &StoreError) -> Response {
    tracing::error!(error = ?e, "storage failure");
    oauth_error(
        &OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "The server cannot reach its database; try again shortly.",
        ),
        false,
    )
}

pub fn page<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        // Pages carry CSRF tokens and request ids: never from a cache (Back shows the server's
        // current answer, not a stale form).
        Ok(html) => no_store((status, Html(html)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response()
        }
    }
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        &ErrorPage {
            title: title.to_owned(),
            message: message.to_owned(),
        },
    )
}

/// A store failure seen by a person in a browser.
pub fn store_failure_page(e: &StoreError) -> Response {
    tracing::error!(error = ?e, "storage failure");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The server cannot reach its database right now. Please try again in a moment.",
    )
}

/// 303 See Other: after a POST it makes the browser GET the target (RFC 9700 §4.12).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The redirect address is not valid.",
        ),
    }
}
