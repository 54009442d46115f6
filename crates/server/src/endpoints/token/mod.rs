//! `POST /o/oauth2/token` (RFC 6749 §3.2, §4.1.3, §6): one module per grant.
mod authorization_code;
mod refresh_token;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use oauthd_core::client::ClientKind;
use oauthd_core::error::{ErrorCode, OAuthError};
use oauthd_core::token_request::{self, TokenGrant};
use oauthd_store::{NextRead, ReadAlongside};

use crate::http::client_request::{self, Failure};
use crate::state::AppState;

pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = client_request::post_only(&method, "token") {
        return refused;
    }
    match process(&state, &headers, &body).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(&headers),
    }
}

async fn process(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, Failure> {
    let params = client_request::form(headers, body)?;
    let credentials = client_request::credentials(headers, &params)?;
    let grant = token_request::parse_grant(&params)?;
    // The code or refresh token is read together with the client (one read transaction).
    let (hash, next) = match &grant {
        TokenGrant::AuthorizationCode { code, .. } => {
            let hash = code.hash();
            (hash.clone(), NextRead::Code(hash))
        }
        TokenGrant::RefreshToken { refresh_token, .. } => {
            let hash = refresh_token.hash();
            (hash.clone(), NextRead::RefreshState(hash))
        }
    };
    let (client, alongside) = client_request::authenticate(state, credentials, next).await?;
    if client.kind == ClientKind::ResourceServer {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "A resource server cannot obtain tokens.",
        )
        .into());
    }
    match grant {
        TokenGrant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let stored = match alongside {
                ReadAlongside::Code(stored) => stored,
                _ => state.store.code(&hash).await?,
            };
            authorization_code::exchange(
                state,
                &client,
                &code,
                hash,
                stored,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await
        }
        TokenGrant::RefreshToken { scope, .. } => {
            let current = match alongside {
                ReadAlongside::RefreshState(current) => current,
                _ => state.store.refresh_state(&hash).await?,
            };
            refresh_token::refresh(state, &client, &hash, current, scope.as_deref()).await
        }
    }
}
