//! `POST /o/oauth2/introspect` (RFC 7662), for resource servers.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use oauthd_core::client::ClientKind;
use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_store::{TokenKind, TokenStatus};

use crate::http::client_request::{self, Failure};
use crate::http::response::json_no_store;
use crate::issue::{audience, audience_claim};
use crate::state::AppState;

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = client_request::post_only(&method, "introspection") {
        return refused;
    }
    match introspect(&state, &headers, &body).await {
        Ok(answer) => answer,
        Err(failure) => failure.into_response(&headers),
    }
}

async fn introspect(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Failure> {
    // §2.1: the caller must authenticate; only APIs (resource servers) may ask.
    let (caller, _, info) = client_request::token_request(state, headers, body).await?;
    if caller.kind != ClientKind::ResourceServer {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "Only resource-server clients may introspect tokens.",
        )
        .into());
    }
    let Some(info) = info.filter(|i| i.status == TokenStatus::Active) else {
        // §2.2: nothing more for an inactive token, so nothing leaks about it.
        return Ok(json_no_store(serde_json::json!({ "active": false })));
    };
    let issuer = &state.policy.issuer;
    Ok(json_no_store(Active {
        active: true,
        scope: info.scope.to_string(),
        client_id: &info.client_id,
        username: &info.username,
        sub: &info.user_id,
        aud: audience_claim(&audience(&info.audience, issuer)),
        iss: issuer,
        exp: info.expires_at,
        iat: info.issued_at,
        token_type: match info.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        },
    }))
}

/// §2.2: what an active token is.
#[derive(serde::Serialize)]
struct Active<'a> {
    active: bool,
    scope: String,
    client_id: &'a str,
    username: &'a str,
    sub: &'a str,
    aud: serde_json::Value,
    iss: &'a str,
    exp: i64,
    iat: i64,
    token_type: &'static str,
}
