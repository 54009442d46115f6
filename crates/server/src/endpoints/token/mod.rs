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
    let client = client_request::authenticate(state, credentials).await?;
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
            authorization_code::exchange(
                state,
                &client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await
        }
        TokenGrant::RefreshToken {
            refresh_token,
            scope,
        } => refresh_token::refresh(state, &client, &refresh_token, scope.as_deref()).await,
    }
}
