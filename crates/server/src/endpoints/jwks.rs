//! `GET /o/oauth2/jwks` (RFC 7517 §5): the published signing keys.
use axum::Json;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};

use crate::http::response::store_failure_json;
use crate::keys::KeyError;
use crate::state::AppState;

pub async fn get(State(state): State<AppState>) -> Response {
    match state.keys.jwks(state.now()).await {
        // Short enough that verifiers see a rotation long before the old key is withdrawn.
        Ok(set) => ([(CACHE_CONTROL, "public, max-age=300")], Json(set)).into_response(),
        Err(KeyError::Store(e)) => store_failure_json(&e),
        Err(e) => {
            tracing::error!(error = %e, "cannot publish the signing keys");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "The signing keys cannot be read.",
            )
                .into_response()
        }
    }
}
