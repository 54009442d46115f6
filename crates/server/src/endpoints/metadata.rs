//! Server metadata: `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration` (OIDC Discovery §3), generated from the route
//! table and the policy so that every advertised value is true.
use axum::Json;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;

use oauthd_core::client::GrantType;

use crate::routes;
use crate::state::AppState;

pub fn document(issuer: &str) -> serde_json::Value {
    let auth_methods = ["none", "client_secret_basic", "client_secret_post"];
    let secret_methods = ["client_secret_basic", "client_secret_post"];
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{}", routes::AUTHORIZE),
        "token_endpoint": format!("{issuer}{}", routes::TOKEN),
        "revocation_endpoint": format!("{issuer}{}", routes::REVOKE),
        "introspection_endpoint": format!("{issuer}{}", routes::INTROSPECT),
        "jwks_uri": format!("{issuer}{}", routes::JWKS),
        "userinfo_endpoint": format!("{issuer}{}", routes::USERINFO),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": secret_methods,
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": ["openid", "profile", "email"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp",
                             "name", "preferred_username", "email", "email_verified"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    })
}

pub async fn oauth(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CACHE_CONTROL, "public, max-age=3600")],
        Json(document(&state.policy.issuer)),
    )
}

/// The OpenID Connect document is the same document: one source of truth.
pub async fn openid(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CACHE_CONTROL, "public, max-age=3600")],
        Json(document(&state.policy.issuer)),
    )
}
