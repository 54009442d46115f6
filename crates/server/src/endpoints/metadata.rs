//! `GET /.well-known/oauth-authorization-server` (RFC 8414), generated from the route table
//! and the policy so that every advertised value is true.
use axum::Json;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;

use oauthd_core::client::GrantType;

use crate::routes;
use crate::state::AppState;

pub fn document(issuer: &str) -> serde_json::Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{}", routes::AUTHORIZE),
        "token_endpoint": format!("{issuer}{}", routes::TOKEN),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
    })
}

pub async fn get(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CACHE_CONTROL, "public, max-age=3600")],
        Json(document(&state.policy.issuer)),
    )
}
