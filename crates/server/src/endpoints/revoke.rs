//! `POST /o/oauth2/revoke` (RFC 7009).
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use oauthd_store::TokenKind;

use crate::http::client_request::{self, Failure};
use crate::http::response::no_store;
use crate::state::AppState;

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = client_request::post_only(&method, "revocation") {
        return refused;
    }
    match revoke(&state, &headers, &body).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(failure) => failure.into_response(&headers),
    }
}

async fn revoke(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), Failure> {
    // RFC 7009 §2.1: the hint only speeds up the search; we look everywhere anyway.
    let (client, hash, info) = client_request::token_request(state, headers, body).await?;
    let now = state.now();
    let Some(info) = info else {
        // §2.2: an invalid token is not an error.
        return Ok(());
    };
    if info.client_id != client.client_id {
        // §2.1: only the client the token was issued to may revoke it. Answer as if done so
        // the caller learns nothing about other clients' tokens.
        tracing::warn!(event = "revocation_refused", client_id = %client.client_id, grant_id = %info.grant_id,
            "a client tried to revoke another client's token");
        return Ok(());
    }
    match info.kind {
        // §2.1: revoking a refresh token revokes its whole grant, access tokens included.
        TokenKind::Refresh => {
            state
                .store
                .revoke_grant(&info.grant_id, now, "revoked_by_client")
                .await?;
        }
        TokenKind::Access => {
            state.store.revoke_access_token(&hash, now).await?;
        }
    }
    tracing::info!(event = "token_revoked", client_id = %client.client_id, grant_id = %info.grant_id, kind = ?info.kind, "token revoked");
    Ok(())
}
